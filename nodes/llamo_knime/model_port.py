"""The LLaMo model port: settings only (no live objects), loaded by each consuming node.

KNIME runs every node in its own Python process, so the Model Selector passes *which* model,
*where* to run it and which answer cache to use; the consuming node loads it in its own
execute (sizes checked, sha256 verified once per file state: the Model Selector's execute
verifies in full), or, for a model served by ``llamo serve`` (source ``server``), sends its
rows to the server's URL with the token of a KNIME credentials flow variable: the port
carries the variable's *name*, never the token. Unknown or missing keys get defaults, so
saved workflows keep loading (a 0.1.0 port's empty ``server_url`` placeholder included).
"""

from __future__ import annotations

from typing import Any

import knime.extension as knext

SOURCES = ("embedded", "local", "server")


class LlamoModelSpec(knext.PortObjectSpec):
    """Which model (embedded, a local directory in our format, or a LLaMo server) and which
    device.

    For a server, configure knows only the URL and the credentials variable's name; the
    model's name, checksum, tasks and retrieval default are filled in when the Model
    Selector executes (it asks the server): :attr:`known` says whether they are.
    """

    def __init__(
        self,
        source: str = "embedded",
        model_dir: str = "",
        device: str = "auto",
        model_name: str = "",
        model_sha256: str = "",
        answer_cache: bool = True,
        cache_path: str = "",
        tasks: list[str] | None = None,
        retrieval: bool = False,
        server_url: str = "",
        server_credentials: str = "",
    ) -> None:
        self.source = source
        self.model_dir = model_dir
        self.device = device
        self.model_name = model_name
        self.model_sha256 = model_sha256
        #: reuse answers across executions and workflows (``llamo annotate``'s cache)
        self.answer_cache = answer_cache
        #: the cache file ("" = the default, ``~/.cache/llamo-plugin/answers.sqlite``)
        self.cache_path = cache_path
        #: the tasks the model was trained for (its config); empty: unknown (older port)
        self.tasks = list(tasks or [])
        #: whether the model's descriptions are retrieval-augmented by default (its config)
        self.retrieval = bool(retrieval)
        #: the ``llamo serve`` URL (source "server"); a 0.1.0 placeholder, "", otherwise
        self.server_url = server_url
        #: the name of the KNIME credentials flow variable whose password is the server's
        #: bearer token ("" = no token: a loopback server without one)
        self.server_credentials = server_credentials

    @property
    def known(self) -> bool:
        """Whether the model's name, checksum, tasks and retrieval default are known (always
        for a local model; for a server once the Model Selector has executed)."""
        return self.source != "server" or bool(self.model_sha256)

    def check_task(self, task: str) -> None:
        """Configure-time refusal of a task the model was not trained for (its answers would
        be noise printed as answers)."""
        if self.tasks and task not in self.tasks:
            raise knext.InvalidParametersError(
                f"the model {self.model_name or self.source!r} was not trained for the {task} "
                f"task (it declares: {', '.join(self.tasks)}); select a model that was, e.g. "
                "the converted official LLaMo checkpoint"
            )

    def serialize(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> LlamoModelSpec:
        known = set(vars(cls()))
        return cls(**{k: v for k, v in data.items() if k in known})

    def validate_context(self, ctx: Any) -> None:
        """Raise InvalidParametersError when the model cannot be used: an unknown source, a
        local directory without a manifest, a malformed server URL, or (given a context) a
        credentials variable that does not reach the node."""
        from pathlib import Path

        if self.source not in SOURCES:
            raise knext.InvalidParametersError(f"unknown model source {self.source!r}")
        if self.source == "local" and not (Path(self.model_dir) / "manifest.json").is_file():
            raise knext.InvalidParametersError(
                f"{self.model_dir!r} is not a LLaMo model directory (no manifest.json); "
                "convert the official checkpoint with `llamo convert-checkpoint`"
            )
        if self.source == "server":
            from llamo_plugin.errors import ConfigError
            from llamo_plugin.serve.client import normalize_url

            try:
                normalize_url(self.server_url)
            except ConfigError as exc:
                raise knext.InvalidParametersError(str(exc)) from None
            name = self.server_credentials
            if ctx is not None and name and name not in ctx.get_credential_names():
                raise knext.InvalidParametersError(self._no_credentials())

    def _no_credentials(self) -> str:
        return (
            f"no credentials flow variable {self.server_credentials!r} reaches this node (the "
            f"token for the LLaMo server at {self.server_url}): connect a Credentials "
            "Configuration node, or choose another variable in the LLaMo Model Selector"
        )

    def server_token(self, ctx: Any) -> str | None:
        """The server's bearer token: the password of the credentials flow variable (None
        when no variable is chosen). InvalidParametersError when the variable is missing or
        its password is empty (a Credentials Configuration node that does not save the
        password forgets it when the workflow is closed)."""
        name = self.server_credentials
        if not name:
            return None
        try:
            password = ctx.get_credentials(name).password
        except KeyError:
            raise knext.InvalidParametersError(self._no_credentials()) from None
        if not password:
            raise knext.InvalidParametersError(
                f"the credentials flow variable {name!r} has an empty password (the token for "
                f"the LLaMo server at {self.server_url}); enter it again in the Credentials "
                "Configuration node"
            )
        return str(password)

    def server_client(self, ctx: Any) -> Any:
        """A :class:`~llamo_plugin.serve.client.LlamoClient` for this server, with the token
        from ``ctx``'s credentials."""
        from llamo_plugin.serve.client import LlamoClient

        return LlamoClient(self.server_url, self.server_token(ctx))

    def load_pipeline(self) -> Any:
        if self.source == "server":
            raise RuntimeError("a served model is not loaded: its rows go to the server")
        from llamo_plugin.cache import default_cache_path
        from llamo_plugin.runtime import load_pipeline

        model_dir = self.model_dir if self.source == "local" else None
        cache = None
        if self.answer_cache:
            cache = self.cache_path.strip() or default_cache_path()
        return load_pipeline(model_dir, device=self.device, cache_path=cache)


class LlamoModelObject(knext.PortObject):
    """All state is in the spec."""

    def serialize(self) -> bytes:
        return b""

    @classmethod
    def deserialize(cls, spec: LlamoModelSpec, storage: bytes) -> LlamoModelObject:
        return cls(spec)


llamo_model_port_type = knext.port_type(
    "LLaMo Model", LlamoModelObject, LlamoModelSpec, id="org.llamo.model"
)
