"""``POST /v1/annotate``: a batch of table rows in, the task columns out.

The body is a JSON object: ``smiles`` (a list of strings or nulls, one per row), optionally
``questions`` (per-row questions for the ``qa`` task) and ``ids`` (any scalars, echoed back
so a client can check that nothing was lost or reordered), and the
:class:`~llamo_plugin.annotate.AnnotateOptions` fields a client may choose (``tasks``,
``properties``, ``add_ev``, ``iupac_fallback``, ``question``, ``nearest_neighbour``,
``retrieval``, ``neighbours``, and any field added there later). The fields that concern the
server's own files and limits (``reference_table``, ``limits``) are the server's to set;
``question_column`` is ``questions`` here and ``fail_on_error`` is the client's to apply.

The answer is exactly what :class:`~llamo_plugin.annotate.Annotator` appends to a table in
``llamo annotate`` and the KNIME nodes (the same code runs), column by column, with the
model's name and sha256 checksum, the settings used (options, SMILES limits, decoding per
task) and per-request counts. Bad rows are data: a missing value and a ``llamo_error`` that
starts with the row status (``invalid_smiles``, ``too_large``, ...), never a failed request.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llamo_plugin.annotate import AnnotateOptions, Annotator
from llamo_plugin.errors import ConfigError, brief
from llamo_plugin.serve.config import ServeConfig
from llamo_plugin.serve.context import BatchedPipeline, RequestContext, request_scope
from llamo_plugin.serve.errors import invalid, too_large

#: AnnotateOptions fields a client may not set, and why
SERVER_FIELDS = {
    "reference_table": "the reference table is chosen when the server starts "
    "(llamo serve --reference-table), never by a client",
    "limits": "SMILES limits are the server's (--max-smiles-chars, --max-atoms)",
    "question_column": "send per-row questions as the list 'questions'",
    "fail_on_error": "every row comes back with its status; a client fails on llamo_error itself",
}
#: request fields besides the options
ROW_FIELDS = ("smiles", "questions", "ids")


@dataclass(frozen=True)
class AnnotateRequest:
    """A parsed ``/v1/annotate`` body."""

    smiles: tuple[Any, ...]
    options: AnnotateOptions
    questions: tuple[Any, ...] | None = None
    ids: tuple[Any, ...] | None = None


def client_fields() -> list[str]:
    """The fields a body may have."""
    names = [f.name for f in dataclasses.fields(AnnotateOptions) if f.name not in SERVER_FIELDS]
    return [*ROW_FIELDS, *names]


def _column(body: dict[str, Any], name: str, kinds: tuple[type, ...], what: str) -> tuple[Any, ...]:
    values = body[name]
    if not isinstance(values, list):
        raise invalid(f"{name}: expected a list, got {type(values).__name__}", param=name)
    for i, v in enumerate(values):
        if v is not None and (not isinstance(v, kinds) or isinstance(v, bool)):
            raise invalid(
                f"{name}[{i}]: expected {what}, got {type(v).__name__} {brief(v, 60)}",
                param=name,
            )
    return tuple(values)


def parse_annotate_request(body: Any, config: ServeConfig) -> AnnotateRequest:
    """Check a body against the endpoint's fields and the server's limits: 422 for the wrong
    shape, unknown or server-only fields and invalid options; 413 for too many rows."""
    if not isinstance(body, dict):
        raise invalid(f"expected a JSON object, got {type(body).__name__}")
    for name, why in SERVER_FIELDS.items():
        if name in body:
            raise invalid(f"{name} cannot be set per request: {why}", param=name)
    known = client_fields()
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise invalid(f"unknown field(s) {unknown}; this endpoint takes {known}")
    if "smiles" not in body:
        raise invalid("missing field 'smiles': a list of SMILES strings", param="smiles")
    if isinstance(body["smiles"], list) and len(body["smiles"]) > config.max_rows:
        raise too_large(
            f"{len(body['smiles']):,} rows; this server takes at most {config.max_rows:,} per "
            "request (send the table in several requests)",
            code="too_many_rows",
        )
    smiles = _column(body, "smiles", (str,), "a SMILES string or null")
    questions = ids = None
    if "questions" in body:
        questions = _column(body, "questions", (str,), "a question string or null")
    if "ids" in body:
        ids = _column(body, "ids", (str, int, float), "a string or number")
    for name, values in (("questions", questions), ("ids", ids)):
        if values is not None and len(values) != len(smiles):
            raise invalid(f"{len(values)} {name} for {len(smiles)} SMILES", param=name)
    fields = {k: v for k, v in body.items() if k not in ROW_FIELDS}
    for name in ("tasks", "properties"):  # "description,property" as well as a list
        if isinstance(fields.get(name), str):
            fields[name] = [t.strip() for t in fields[name].split(",") if t.strip()]
    if questions is not None:
        if str(fields.get("question", "")).strip():
            raise invalid("give one 'question' for every row or per-row 'questions', not both")
        fields["question_column"] = "questions"
    fields["reference_table"] = config.reference_table
    fields["limits"] = config.limits.to_dict()
    try:
        options = AnnotateOptions.from_dict(fields)
    except ConfigError as exc:
        raise invalid(str(exc), code="invalid_options") from None
    if questions is not None and "qa" not in options.tasks:
        raise invalid("'questions' are for the qa task; add it to 'tasks'", param="questions")
    return AnnotateRequest(smiles, options, questions, ids)


class AnnotatorPool:
    """One :class:`Annotator` per distinct options, shared by the requests that use them (an
    Annotator holds its loaded reference table: 1.5 s to load the bundled one); at most
    ``size`` of them, the least recently used dropped first."""

    def __init__(self, pipeline: BatchedPipeline, size: int = 32) -> None:
        self.pipeline = pipeline
        self.size = size
        self._lock = threading.Lock()
        self._annotators: OrderedDict[AnnotateOptions, Annotator] = OrderedDict()

    def get(self, options: AnnotateOptions) -> Annotator:
        """The Annotator for ``options`` (``ConfigError`` for a task the model was not
        trained for)."""
        with self._lock:
            annotator = self._annotators.get(options)
            if annotator is None:
                annotator = Annotator(self.pipeline, options)
                self._annotators[options] = annotator
                while len(self._annotators) > self.size:
                    self._annotators.popitem(last=False)
            self._annotators.move_to_end(options)
            return annotator


def _json_value(value: Any) -> Any:
    """NaN and infinities are not JSON: a missing value."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run_annotate(
    pool: AnnotatorPool, request: AnnotateRequest, ctx: RequestContext
) -> dict[str, Any]:
    """Annotate the request's rows (in a worker thread: this blocks while the batcher runs
    them) and build the response body."""
    t0 = time.perf_counter()
    annotator = pool.get(request.options)
    questions = list(request.questions) if request.questions is not None else None
    with request_scope(ctx):
        out = annotator.annotate(list(request.smiles), questions)
    columns = {c.key: [_json_value(v) for v in out[c.key]] for c in annotator.columns()}
    errors = Counter(e.split(":", 1)[0] for e in out["llamo_error"] if e is not None)
    model = pool.pipeline.model
    options = request.options
    settings = {
        k: v
        for k, v in options.to_dict().items()
        if k not in ("question_column", "reference_table", "fail_on_error")
    }
    settings["questions"] = "per row" if questions is not None else None
    settings["retrieval_used"] = annotator.retrieval
    if annotator.retrieval or (options.nearest_neighbour and "description" in options.tasks):
        table = options.reference_table
        settings["reference_table"] = Path(table).name if table else "bundled (ChEBI-20 validation)"
        settings["reference_table_sha256"] = annotator.reference().checksum
    settings["decode"] = ctx.decodes
    body: dict[str, Any] = {
        "model": model.config.name,
        "model_sha256": pool.pipeline.model_checksum,
        "rows": len(request.smiles),
    }
    if request.ids is not None:
        body["ids"] = list(request.ids)
    body["columns"] = columns
    body["column_types"] = {c.key: c.kind for c in annotator.columns()}
    body["settings"] = settings
    body["stats"] = {
        "errors": dict(errors),
        "answers": ctx.stats.rows,
        "distinct": ctx.stats.unique,
        "cache_hits": ctx.stats.cache_hits,
        "generated": ctx.stats.generated,
        "seconds": round(time.perf_counter() - t0, 4),
    }
    return body


def row_statuses(body: dict[str, Any]) -> Counter[str]:
    """Rows of a response by status (``ok`` or the status its ``llamo_error`` starts with)."""
    errors = body["columns"]["llamo_error"]
    return Counter("ok" if e is None else e.split(":", 1)[0] for e in errors)
