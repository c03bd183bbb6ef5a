"""The LLaMo model port: settings only (no live objects), loaded by each consuming node.

KNIME runs every node in its own Python process, so the Model Selector passes *which* model,
*where* to run it and which answer cache to use; the consuming node loads it in its own
execute (sizes checked, sha256 verified once per file state: the Model Selector's execute
verifies in full). Unknown or missing keys get defaults, so saved workflows keep loading.
"""

from __future__ import annotations

from typing import Any

import knime.extension as knext

SOURCES = ("embedded", "local")


class LlamoModelSpec(knext.PortObjectSpec):
    """Which model (embedded or a local directory in our format) and which device."""

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
        """Raise InvalidParametersError when the model cannot be used."""
        from pathlib import Path

        if self.source not in SOURCES:
            raise knext.InvalidParametersError(f"unknown model source {self.source!r}")
        if self.source == "local" and not (Path(self.model_dir) / "manifest.json").is_file():
            raise knext.InvalidParametersError(
                f"{self.model_dir!r} is not a LLaMo model directory (no manifest.json); "
                "convert the official checkpoint with `llamo convert-checkpoint`"
            )

    def load_pipeline(self) -> Any:
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
