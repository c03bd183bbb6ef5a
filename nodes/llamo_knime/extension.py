"""The five LLaMo nodes.

Model Selector -> Molecule Description / Molecular Property Prediction / IUPAC Name /
Molecule Q&A. Node ids and the model port id are stable: renaming a class here would orphan
saved workflows, so every node passes an explicit ``id``.
"""

from __future__ import annotations

import logging
from typing import Any

import knime.extension as knext

from .common import (
    TABLE_PORT,
    chosen_column,
    error_column_parameter,
    missing_parameter,
    model_column_parameter,
    node_columns,
    output_schema,
    pick_smiles_column,
    run_batches,
    smiles_parameter,
    unique_names,
)
from .model_port import LlamoModelObject, LlamoModelSpec, llamo_model_port_type

logger = logging.getLogger(__name__)

category = knext.category(
    path="/community",
    level_id="llamo",
    name="LLaMo",
    description="LLaMo molecular graph assistant: describe molecules, predict HOMO/LUMO/gap, "
    "name them and answer questions about them.",
    icon="icons/category.png",
)


class ModelSource(knext.EnumParameterOptions):
    EMBEDDED = ("Embedded default model", "The small LLaMo shipped with the extension (offline).")
    LOCAL = (
        "Local model directory",
        "A model directory in our format, e.g. the official LLaMo "
        "checkpoint converted with `llamo convert-checkpoint`.",
    )
    SERVER = (
        "LLaMo server",
        "A model served by `llamo serve`, loaded once for every node and workflow: the nodes "
        "send their rows to the server URL (since 0.4.0).",
    )


class Retrieval(knext.EnumParameterOptions):
    AUTO = ("Automatic", "On for models trained with retrieved neighbours, off otherwise.")
    ON = ("On", "The prompt carries the most similar annotated molecules.")
    OFF = ("Off", "The model describes the molecule alone, as LLaMo does.")


class Device(knext.EnumParameterOptions):
    AUTO = ("Auto", "A GPU when one is available, else the CPU.")
    CPU = ("CPU", "Always the CPU.")
    CUDA = ("CUDA", "An NVIDIA GPU (fails if none is available).")


@knext.node(
    "LLaMo Model Selector",
    knext.NodeType.SOURCE,
    "icons/model_selector.png",
    category,
    keywords=["LLaMo", "molecule", "LLM", "model"],
    id="llamo-model-selector",
)
@knext.output_port(
    "LLaMo model", "Which LLaMo model to use and where to run it.", llamo_model_port_type
)
class ModelSelector:
    """Choose the LLaMo model for the downstream LLaMo nodes.

    The port carries settings only: each downstream node loads the model itself (KNIME runs
    every node in its own process). The embedded default model is a small LLaMo trained on
    open data (see its model card); a local directory can hold the official LLaMo checkpoint
    converted to our format. The model's checksums are verified when it is loaded.

    **LLaMo server**: a model served by `llamo serve` (see the extension's README) is loaded
    once, on the server's machine (e.g. one with a GPU), instead of in every node. Give its
    URL and, when the server needs a token, the name of a credentials flow variable whose
    password is the token (e.g. from a Credentials Configuration node); the token itself is
    never stored in this node's settings or its output port. Executing this node asks the
    server which model it serves (name, checksum, tasks) and checks the token. Device and
    answer cache are then the server's. A server on another machine should be reached over
    https: a token sent over plain http can be read on the way.
    """

    source = knext.EnumParameter(
        "Model", "Which model to use.", ModelSource.EMBEDDED.name, ModelSource
    )
    model_dir = knext.StringParameter(
        "Model directory", "A model directory in our format (only for a local model).", ""
    )
    device = knext.EnumParameter(
        "Device", "Where the language model runs.", Device.AUTO.name, Device
    )
    answer_cache = knext.BoolParameter(
        "Answer cache",
        "Reuse answers already computed for the same model, molecule, question and decoding "
        "settings (in this and other workflows, and by `llamo annotate`).",
        True,
        since_version="0.2.0",
    )
    cache_path = knext.StringParameter(
        "Answer cache file",
        "The cache file; empty for the default (~/.cache/llamo-plugin/answers.sqlite).",
        "",
        since_version="0.2.0",
    )
    server_url = knext.StringParameter(
        "Server URL",
        "Only for a LLaMo server: where `llamo serve` listens, e.g. `http://127.0.0.1:8000` "
        "(a server on another machine: `https://...`).",
        "",
        since_version="0.4.0",
    )
    server_credentials = knext.StringParameter(
        "Server token (credentials flow variable)",
        "Only for a LLaMo server that needs a token: the credentials flow variable whose "
        "password is the token (e.g. from a Credentials Configuration node; the user name is "
        "not used). The empty choice: no token (a server on this machine started without "
        "one).",
        "",
        since_version="0.4.0",
        choices=lambda ctx: ["", *ctx.get_credential_names()],
    )

    def _spec(self, ctx: Any, *, verify: bool = False) -> LlamoModelSpec:
        from pathlib import Path

        from llamo_plugin.checkpoint.format import read_manifest, verify_manifest
        from llamo_plugin.errors import CheckpointError
        from llamo_plugin.registry import embedded_model_dir

        source = {ModelSource.LOCAL.name: "local", ModelSource.SERVER.name: "server"}.get(
            self.source, "embedded"
        )
        spec = LlamoModelSpec(
            source=source,
            model_dir=self.model_dir.strip(),
            device=self.device.lower(),
            answer_cache=self.answer_cache,
            cache_path=self.cache_path.strip(),
        )
        if source == "server":
            return self._server_spec(ctx, spec, ask=verify)
        spec.validate_context(None)
        path = Path(spec.model_dir) if source == "local" else embedded_model_dir()
        try:
            # Execute verifies every sha256 (and leaves a stamp, so the downstream nodes
            # only check sizes); configure only reads the checksum.
            manifest = verify_manifest(path) if verify else read_manifest(path)
        except (CheckpointError, OSError, ValueError) as exc:
            raise knext.InvalidParametersError(f"unusable model {str(path)!r}: {exc}") from None
        spec.model_sha256 = manifest["model_sha256"]
        spec.model_name = path.name
        config = _declared_config(path)
        spec.tasks = list(config.tasks)
        spec.retrieval = config.retrieval.default
        return spec

    def _server_spec(self, ctx: Any, spec: LlamoModelSpec, *, ask: bool) -> LlamoModelSpec:
        """The server's spec: configure checks the URL's form and that the credentials
        variable reaches the node (no request: configure runs whenever a workflow loads);
        execute (``ask``) asks the server for its model and checks the token."""
        from llamo_plugin.errors import ConfigError
        from llamo_plugin.serve.client import normalize_url, sends_token_in_clear

        try:
            spec.server_url = normalize_url(self.server_url)
        except ConfigError as exc:
            raise knext.InvalidParametersError(str(exc)) from None
        spec.server_credentials = self.server_credentials.strip()
        spec.validate_context(ctx)
        if spec.server_credentials and sends_token_in_clear(spec.server_url):
            ctx.set_warning(
                f"the token is sent unencrypted to {spec.server_url}: use https for a server "
                "on another machine"
            )
        if ask:
            info = _ask_server(spec.server_client(ctx), spec.server_credentials)
            spec.model_name = info.model
            spec.model_sha256 = info.model_sha256
            spec.tasks = list(info.tasks)
            spec.retrieval = info.retrieval
        return spec

    def configure(self, ctx: Any) -> LlamoModelSpec:
        return self._spec(ctx)

    def execute(self, ctx: Any) -> LlamoModelObject:
        return LlamoModelObject(self._spec(ctx, verify=True))


def _ask_server(client: Any, credentials: str) -> Any:
    """The served model (``/health``), the token checked (``/v1/models``); a server error
    becomes an InvalidParametersError (unreachable, token refused) or a RuntimeError."""
    from llamo_plugin.serve.client import ServerError

    try:
        info = client.health()
        client.check_token()
    except ServerError as exc:
        raise _node_error(exc, credentials) from None
    if info.status != "ok":
        raise RuntimeError(f"the LLaMo server at {client.url} is {info.status}")
    return info


def _node_error(exc: Any, credentials: str) -> Exception:
    """A client error as the node reports it: the settings' fault (unreachable URL, token
    refused: InvalidParametersError, a configuration error) or the server's (RuntimeError).
    The messages name the URL and the credentials variable, never the token."""
    from llamo_plugin.serve.client import ServerAuthError, ServerUnreachableError

    message = str(exc)
    if isinstance(exc, ServerAuthError):
        if credentials:
            message += (
                f"; the token is the password of the credentials flow variable "
                f"{credentials!r} chosen in the LLaMo Model Selector"
            )
        else:
            message += "; choose the credentials flow variable holding it in the Model Selector"
        return knext.InvalidParametersError(message)
    if isinstance(exc, ServerUnreachableError):
        return knext.InvalidParametersError(message)
    return RuntimeError(message)


def _declared_config(path: Any) -> Any:
    """A model directory's config (the tasks it declares, its retrieval default)."""
    import json

    from llamo_plugin.checkpoint.format import CONFIG
    from llamo_plugin.config import LlamoConfig

    try:
        return LlamoConfig.from_dict(json.loads((path / CONFIG).read_text()))
    except Exception as exc:  # any broken config: one clear configure error
        msg = f"unusable model config in {str(path)!r}: {exc}"
        raise knext.InvalidParametersError(msg) from None


def _model_label(pipe: Any) -> str:
    return f"{pipe.model.config.name} sha256:{pipe.model.checksum}"


def _execute(node: Any, ctx: Any, model: Any, table: Any) -> Any:
    from llamo_plugin.annotate import Annotator

    spec = model.spec
    spec.validate_context(ctx)
    options = node._options()
    if spec.source == "server":
        return _execute_on_server(node, ctx, spec, options, table)
    pipe = spec.load_pipeline()
    try:
        annotator = Annotator(pipe, options)
        out = _annotate_table(node, ctx, table, options, annotator, _model_label(pipe))
    finally:
        pipe.close()
    return out


def _execute_on_server(node: Any, ctx: Any, spec: Any, options: Any, table: Any) -> Any:
    """The rows go to the LLaMo server (the node's options as the request), in requests of
    a few dozen rows, cancellation checked between them; the same columns and row statuses
    as a local model's."""
    from llamo_plugin.errors import ConfigError
    from llamo_plugin.serve.client import RemoteAnnotator, ServerError

    client = spec.server_client(ctx)
    try:
        info = client.health()
        if spec.known and info.model_sha256 != spec.model_sha256:
            raise RuntimeError(
                f"the LLaMo server at {client.url} now serves {info.label}, not the model the "
                f"LLaMo Model Selector found there ({spec.model_name} "
                f"sha256:{spec.model_sha256}): execute the Model Selector again"
            )
        annotator = RemoteAnnotator(client, options, info)
        return _annotate_table(node, ctx, table, options, annotator, info.label)
    except ServerError as exc:
        raise _node_error(exc, spec.server_credentials) from None
    except ConfigError as exc:  # a task the served model was not trained for
        raise knext.InvalidParametersError(str(exc)) from None


def _annotate_table(
    node: Any, ctx: Any, table: Any, options: Any, annotator: Any, model_label: str
) -> Any:
    """The output table: ``annotator`` (an Annotator, or a RemoteAnnotator for a server)
    run on ``table`` batch by batch."""
    keys, wanted, kinds = node_columns(node, options, annotator.retrieval)
    names = unique_names(wanted, table.schema.column_names)
    question_column = options.question_column or None
    out = run_batches(
        ctx,
        table,
        node.smiles_column,
        annotator,
        keys,
        names,
        kinds,
        model_label,
        question_column,
    )
    stats = annotator.stats
    if stats.rows and sum(stats.errors.values()) == stats.rows:
        ctx.set_warning("every row had a missing or invalid SMILES")
    return out


def _configure(node: Any, ctx: Any, spec: Any, schema: Any) -> Any:
    spec.validate_context(ctx)
    pick_smiles_column(node, schema)
    options = node._options()
    if spec.source == "server" and options.reference_table:
        raise knext.InvalidParametersError(
            "a LLaMo server retrieves from its own reference table (llamo serve "
            "--reference-table): leave the reference table empty"
        )
    for task in options.tasks:
        spec.check_task(task)
    if not spec.known and options.uses_retrieval(True) != options.uses_retrieval(False):
        return None  # the columns depend on the served model: known once the Selector ran
    _, wanted, kinds = node_columns(node, options, options.uses_retrieval(spec.retrieval))
    return output_schema(schema, unique_names(wanted, schema.column_names), kinds)


class _AnnotatingNode:
    """What the four annotating nodes share: configure and execute run the task columns of
    ``_options()`` (their names from ``_labels()``) through the library's Annotator. No
    parameters here: each node declares its own, so KNIME's dialogs list them in order."""

    def _options(self) -> Any:
        raise NotImplementedError

    def _labels(self) -> dict[str, str]:
        return {}

    def configure(self, ctx: Any, model_spec: Any, schema: Any) -> Any:
        return _configure(self, ctx, model_spec, schema)

    def execute(self, ctx: Any, model: Any, table: Any) -> Any:
        return _execute(self, ctx, model, table)


@knext.node(
    "Molecule Description",
    knext.NodeType.PREDICTOR,
    "icons/description.png",
    category,
    keywords=["LLaMo", "caption", "description", "SMILES"],
    id="llamo-description",
)
@knext.input_port("LLaMo model", "From the LLaMo Model Selector.", llamo_model_port_type)
@knext.input_table("Molecules", "A table with a SMILES column.")
@knext.output_table("Described molecules", "The input table with the description columns.")
class MoleculeDescription(_AnnotatingNode):
    """Describe each molecule in words, as LLaMo does.

    Appends a **Description** column: the model's greedy answer to "Could you give me a brief
    overview of this molecule?" (ChEBI-style text). Optionally adds the most similar molecule
    of the bundled reference set (ChEBI-20 validation molecules, Morgan fingerprints, Tanimoto):
    its SMILES, its similarity (0-1) and its caption, useful to judge the description. A
    missing or invalid SMILES gives missing outputs and a reason in the error column. The
    model column names the model and its checksum.
    """

    smiles_column = smiles_parameter()
    description_column = knext.StringParameter(
        "Description column", "Name of the new column.", "Description"
    )
    nearest = knext.BoolParameter(
        "Add the most similar reference molecule", "Adds its SMILES, similarity and caption.", False
    )
    retrieval = knext.EnumParameter(
        "Retrieval-augmented description",
        "Give the model the most similar annotated molecules (SMILES, similarity, caption) in "
        "its prompt. Automatic: on for models trained with them (the embedded model), off "
        "otherwise. The molecules used are listed in a 'Description neighbours' column.",
        Retrieval.AUTO.name,
        Retrieval,
        style=knext.EnumParameter.Style.VALUE_SWITCH,
        since_version="0.3.0",
    )
    neighbours = knext.IntParameter(
        "Neighbours",
        "How many similar molecules the prompt carries (0: the model's setting).",
        0,
        min_value=0,
        max_value=8,
        since_version="0.3.0",
    )
    reference_table = knext.StringParameter(
        "Reference table",
        "An annotated table (TSV or CSV with smiles and caption or description columns, "
        "optionally cid or id) to retrieve from; empty for the bundled ChEBI-20 validation "
        "set (3,301 molecules, CC BY 4.0).",
        "",
        since_version="0.3.0",
    )
    on_missing = missing_parameter()
    error_column = error_column_parameter()
    model_column = model_column_parameter()

    def _options(self) -> Any:
        from pathlib import Path

        from llamo_plugin.annotate import AnnotateOptions

        table = self.reference_table.strip()
        if table and not Path(table).is_file():
            raise knext.InvalidParametersError(f"reference table {table!r} is not a file")
        return AnnotateOptions(
            tasks=("description",),
            nearest_neighbour=self.nearest,
            retrieval=self.retrieval.lower(),
            neighbours=self.neighbours,
            reference_table=self.reference_table.strip(),
            fail_on_error=self.on_missing == "FAIL",
        )

    def _labels(self) -> dict[str, str]:
        return {"description": self.description_column}


@knext.node(
    "Molecular Property Prediction",
    knext.NodeType.PREDICTOR,
    "icons/property.png",
    category,
    keywords=["LLaMo", "HOMO", "LUMO", "gap", "QM9"],
    id="llamo-property",
)
@knext.input_port("LLaMo model", "From the LLaMo Model Selector.", llamo_model_port_type)
@knext.input_table("Molecules", "A table with a SMILES column.")
@knext.output_table("Molecules with properties", "The input table with the property columns.")
class PropertyPrediction(_AnnotatingNode):
    """Predict HOMO, LUMO and HOMO-LUMO gap energies, as LLaMo does on QM9.

    Appends one double column per chosen property, in Hartree (optionally also in eV,
    1 Hartree = 27.2114 eV): the number in the model's answer. The embedded model was trained
    on QM9 (small organic molecules with up to 9 heavy atoms of C, N, O, F): values for larger
    or other molecules are extrapolations. An answer without a number gives a missing value.
    """

    smiles_column = smiles_parameter()
    homo = knext.BoolParameter("HOMO", "Highest occupied molecular orbital energy.", True)
    lumo = knext.BoolParameter("LUMO", "Lowest unoccupied molecular orbital energy.", True)
    gap = knext.BoolParameter("HOMO-LUMO gap", "LUMO minus HOMO.", True)
    add_ev = knext.BoolParameter("Also in eV", "Adds the same values in electronvolts.", False)
    on_missing = missing_parameter()
    error_column = error_column_parameter()
    model_column = model_column_parameter()

    def _props(self) -> tuple[str, ...]:
        chosen = tuple(
            p for p, on in (("homo", self.homo), ("lumo", self.lumo), ("gap", self.gap)) if on
        )
        if not chosen:
            raise knext.InvalidParametersError("choose at least one property")
        return chosen

    def _options(self) -> Any:
        from llamo_plugin.annotate import AnnotateOptions

        return AnnotateOptions(
            tasks=("property",),
            properties=self._props(),
            add_ev=self.add_ev,
            fail_on_error=self.on_missing == "FAIL",
        )


@knext.node(
    "IUPAC Name",
    knext.NodeType.PREDICTOR,
    "icons/iupac.png",
    category,
    keywords=["LLaMo", "IUPAC", "name", "OPSIN"],
    id="llamo-iupac",
)
@knext.input_port("LLaMo model", "From the LLaMo Model Selector.", llamo_model_port_type)
@knext.input_table("Molecules", "A table with a SMILES column.")
@knext.output_table("Named molecules", "The input table with the name columns.")
class IupacName(_AnnotatingNode):
    """Name each molecule (IUPAC) and verify the name with OPSIN.

    Appends the **IUPAC name**, its **round trip** status (OPSIN parses the name back to:
    `exact` = the input structure; `stereo_differs` = same constitution, other or missing
    stereo; `different_structure`; `unparseable`) and its **source**: `model`, or
    `openclatura` when the model's name did not round-trip exactly and the rule-based name
    did (the fallback, on by default). Needs Java for OPSIN.
    """

    smiles_column = smiles_parameter()
    name_column = knext.StringParameter("Name column", "Name of the new name column.", "IUPAC name")
    fallback = knext.BoolParameter(
        "Fall back to the rule-based name",
        "Use openclatura's name when the model's name does not parse back to the molecule.",
        True,
    )
    on_missing = missing_parameter()
    error_column = error_column_parameter()
    model_column = model_column_parameter()

    def _options(self) -> Any:
        from llamo_plugin.annotate import AnnotateOptions

        return AnnotateOptions(
            tasks=("iupac",), iupac_fallback=self.fallback, fail_on_error=self.on_missing == "FAIL"
        )

    def _labels(self) -> dict[str, str]:
        name = self.name_column
        return {
            "iupac_name": name,
            "iupac_roundtrip": f"{name} round trip",
            "iupac_source": f"{name} source",
        }


@knext.node(
    "Molecule Q&A",
    knext.NodeType.PREDICTOR,
    "icons/qa.png",
    category,
    keywords=["LLaMo", "question", "answer", "chat"],
    id="llamo-qa",
)
@knext.input_port("LLaMo model", "From the LLaMo Model Selector.", llamo_model_port_type)
@knext.input_table("Molecules", "A table with a SMILES column (and optionally questions).")
@knext.output_table("Answers", "The input table with the answer column.")
class MoleculeQA(_AnnotatingNode):
    """Ask the model a free-form question about each molecule.

    One question for every row, or a question column (one per row). Appends the model's
    greedy **Answer**. The embedded model answers reliably only the question types it was
    trained on (formula, atom and ring counts, H-bond donors/acceptors, charge, functional
    groups, weight; see its model card). A missing question or SMILES gives a missing answer.
    """

    smiles_column = smiles_parameter()
    question = knext.StringParameter(
        "Question",
        "Asked for every row (when no question column is chosen).",
        "What is the molecular formula of this molecule?",
    )
    question_column = knext.ColumnParameter(
        "Question column",
        "Optional: one question per row (None: the question above for every row).",
        port_index=TABLE_PORT,
        include_none_column=True,
    )
    answer_column = knext.StringParameter("Answer column", "Name of the new column.", "Answer")
    on_missing = missing_parameter()
    error_column = error_column_parameter()
    model_column = model_column_parameter()

    def _options(self) -> Any:
        from llamo_plugin.annotate import AnnotateOptions
        from llamo_plugin.errors import ConfigError

        try:
            return AnnotateOptions(
                tasks=("qa",),
                question=self.question,
                question_column=chosen_column(self.question_column) or "",
                fail_on_error=self.on_missing == "FAIL",
            )
        except ConfigError as exc:  # neither a question nor a question column
            raise knext.InvalidParametersError("give a question or a question column") from exc

    def _labels(self) -> dict[str, str]:
        return {"answer": self.answer_column}

    def configure(self, ctx: Any, model_spec: Any, schema: Any) -> Any:
        question_column = chosen_column(self.question_column)
        if question_column is not None and question_column not in schema.column_names:
            raise knext.InvalidParametersError(f"column {question_column!r} is not in the input")
        return _configure(self, ctx, model_spec, schema)


class ReactionDirection(knext.EnumParameterOptions):
    FORWARD = ("Forward prediction", "Reactants and reagents in, the product out.")
    RETRO = ("Retrosynthesis", "A product in, reactants that could make it out.")


@knext.node(
    "Reaction Prediction",
    knext.NodeType.PREDICTOR,
    "icons/reaction.png",
    category,
    keywords=["LLaMo", "reaction", "retrosynthesis", "forward", "USPTO"],
    id="llamo-reaction",
)
@knext.input_port("LLaMo model", "From the LLaMo Model Selector.", llamo_model_port_type)
@knext.input_table("Reactions", "A table with a SMILES column: the reaction side.")
@knext.output_table("Predicted reactions", "The input table with the predicted SMILES.")
class ReactionPrediction(_AnnotatingNode):
    """Predict a reaction's product (forward) or a product's reactants (retrosynthesis), as
    LLaMo does on Mol-Instructions (USPTO).

    The SMILES column holds the given side of the reaction; several molecules are joined by
    `.` (one disconnected graph, as in LLaMo). Appends the model's answer as RDKit-canonical
    SMILES: **Predicted product** or **Predicted reactants** (missing, with a reason in the
    error column, when the answer is no valid SMILES). Needs a model trained for reactions,
    such as the converted official LLaMo checkpoint: the embedded model is not, and the node
    says so when it is configured.
    """

    smiles_column = smiles_parameter()
    direction = knext.EnumParameter(
        "Direction",
        "Forward prediction or retrosynthesis.",
        ReactionDirection.FORWARD.name,
        ReactionDirection,
        style=knext.EnumParameter.Style.VALUE_SWITCH,
    )
    on_missing = missing_parameter()
    error_column = error_column_parameter()
    model_column = model_column_parameter()

    def _options(self) -> Any:
        from llamo_plugin.annotate import AnnotateOptions

        task = "forward" if self.direction == ReactionDirection.FORWARD.name else "retro"
        return AnnotateOptions(tasks=(task,), fail_on_error=self.on_missing == "FAIL")
