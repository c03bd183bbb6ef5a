"""Annotate a table of molecules: the columns the KNIME nodes and ``llamo annotate`` append.

:class:`Annotator` takes one batch of rows of a larger table (the SMILES column, and the
question column for Q&A) and returns the columns of the requested tasks, row-aligned (the
caller keeps its input columns untouched and appends these):

- ``description``: the model's description (+ optionally the most similar molecule of a
  reference set: ``nn_smiles``, ``nn_similarity``, ``nn_caption``);
- ``property``: ``homo_hartree``, ``lumo_hartree``, ``gap_hartree`` (float, missing when the
  answer holds no number; optionally ``*_ev``);
- ``iupac``: ``iupac_name``, ``iupac_roundtrip`` (OPSIN parses the name back to: ``exact`` /
  ``stereo_differs`` / ``different_structure`` / ``unparseable``), ``iupac_source``
  (``model``, or ``openclatura`` when the model's name did not round-trip exactly and the
  rule-based fallback did);
- ``qa``: ``answer`` to one question for all rows or a question column;
- always ``llamo_domain``: ``in_domain``, or ``outside: <reasons>`` when the molecule's
  elements, size, charges or radicals lie outside what the model was trained on (its answers
  are then extrapolation; :mod:`llamo_plugin.chem.domain`), missing for invalid rows;
- always ``llamo_error``: why a row has missing outputs, starting with a status
  (``invalid_smiles``, ``too_large``, ``missing_instruction``, ``unparseable_answer``,
  ``unreadable_record``) and quoting the input briefly; missing otherwise.

Bad rows are data: they get missing outputs and an error, never an exception (unless
``fail_on_error``, which raises :class:`RowError` naming the first bad row).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from llamo_plugin.chem.smiles import SmilesLimits
from llamo_plugin.config import DecodeConfig, FrozenConfig
from llamo_plugin.errors import ConfigError, LlamoError, brief
from llamo_plugin.tasks import STATUS_COLUMNS, OutputColumn

logger = logging.getLogger(__name__)

TASKS = ("description", "property", "iupac", "qa", "forward", "retro")
PROPERTY_NAMES = ("homo", "lumo", "gap")
HARTREE_TO_EV = 27.211386245988
DOMAIN_COLUMN, ERROR_COLUMN = (c.key for c in STATUS_COLUMNS)


class RowError(LlamoError):
    """A bad row when the caller asked to fail instead of writing a missing value.

    Attributes: ``row`` (index in the batch), ``reason``.
    """

    def __init__(self, row: int, value: Any, reason: str) -> None:
        super().__init__(f"row {row} ({brief(value)}): {reason}")
        self.row = row
        self.reason = reason


@dataclass(frozen=True)
class AnnotateOptions(FrozenConfig):
    """What to append. Unknown keys are rejected (saved settings stay meaningful)."""

    tasks: tuple[str, ...] = ("description",)
    properties: tuple[str, ...] = PROPERTY_NAMES
    add_ev: bool = False
    iupac_fallback: bool = True
    question: str = ""
    question_column: str = ""
    nearest_neighbour: bool = False
    #: retrieval-augmented descriptions: "auto" (the model's default), "on" or "off"
    retrieval: str = "auto"
    #: neighbours per description prompt (0: the model's setting)
    neighbours: int = 0
    #: annotated table (TSV/CSV: smiles + caption/description [+ id]) to retrieve from and
    #: to take the nearest neighbour from; "" = the bundled ChEBI-20 validation set
    reference_table: str = ""
    fail_on_error: bool = False
    #: SMILES length and atom-count caps (longer or larger rows get status ``too_large``)
    limits: SmilesLimits = field(default_factory=SmilesLimits)

    def __post_init__(self) -> None:
        bad = set(self.tasks) - set(TASKS)
        if bad or not self.tasks:
            raise ConfigError(f"tasks must be among {TASKS}, got {list(self.tasks)}")
        if set(self.properties) - set(PROPERTY_NAMES) or not self.properties:
            raise ConfigError(f"properties must be among {PROPERTY_NAMES}")
        if "qa" in self.tasks and not (self.question.strip() or self.question_column):
            raise ConfigError("the qa task needs a question or a question column")
        if self.retrieval not in ("auto", "on", "off"):
            raise ConfigError(f"retrieval must be auto, on or off, got {self.retrieval!r}")
        if not 0 <= self.neighbours <= 8:
            raise ConfigError("neighbours must be between 0 (the model's) and 8")

    def uses_retrieval(self, model_default: bool) -> bool:
        """Whether description prompts carry neighbours, given the model's default
        (``RetrievalConfig.default``: on for a model trained with them)."""
        if "description" not in self.tasks or self.retrieval == "off":
            return False
        return self.retrieval == "on" or bool(model_default)


def output_columns(options: AnnotateOptions, retrieval: bool = False) -> list[OutputColumn]:
    """Every appended column, in order (declared in :mod:`llamo_plugin.tasks`);
    ``retrieval``: descriptions are retrieval-augmented (:meth:`AnnotateOptions.uses_retrieval`)."""
    from llamo_plugin import tasks as t

    cols: list[OutputColumn] = []
    if "description" in options.tasks:
        cols += t.DESCRIPTION_COLUMNS
        if retrieval:
            cols += t.RETRIEVAL_COLUMNS
        if options.nearest_neighbour:
            cols += t.NEAREST_COLUMNS
    if "property" in options.tasks:
        for p in options.properties:
            cols += t.property_columns(p, add_ev=options.add_ev)
    if "iupac" in options.tasks:
        cols += t.IUPAC_COLUMNS
    if "qa" in options.tasks:
        cols += t.QA_COLUMNS
    if "forward" in options.tasks:
        cols += t.FORWARD_COLUMNS
    if "retro" in options.tasks:
        cols += t.RETRO_COLUMNS
    return cols + list(t.STATUS_COLUMNS)


def append_columns(frame: Any, out: dict[str, list[Any]], columns: Sequence[OutputColumn]) -> Any:
    """A copy of ``frame`` (pandas, the input rows) with the task columns of ``out``
    (:meth:`Annotator.annotate`) appended in ``columns`` order; a name the input already uses
    gets the suffix ``_llamo`` (the input's column is never overwritten)."""
    frame = frame.copy()
    for column in columns:
        key = column.key
        frame[key if key not in frame.columns else f"{key}_llamo"] = out[key]
    return frame


def check_model_tasks(options: AnnotateOptions, model_tasks: Sequence[str], model: str) -> None:
    """``ConfigError`` when ``options`` ask for a task the model was not trained for (its
    answers would be noise printed as answers)."""
    missing = [t for t in options.tasks if t not in model_tasks]
    if missing:
        raise ConfigError(
            f"model {model!r} was not trained for the task(s) {', '.join(missing)}; it "
            f"declares {', '.join(model_tasks)} (llamo_config.json 'tasks')"
        )


@dataclass
class AnnotateStats:
    """Counters over every batch annotated so far."""

    rows: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    cache_hits: int = 0
    generated: int = 0
    unparseable_numbers: int = 0
    iupac_fallbacks: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "errors": dict(self.errors),
            "cache_hits": self.cache_hits,
            "generated": self.generated,
            "unparseable_numbers": self.unparseable_numbers,
            "iupac_fallbacks": self.iupac_fallbacks,
        }


def _error_kind(message: str) -> str:
    """The status an error text starts with (``invalid_smiles: ...`` -> ``invalid_smiles``)."""
    return message.split(":", 1)[0]


class Annotator:
    """Appends task columns to batches of rows with one :class:`~llamo_plugin.pipeline.Pipeline`."""

    def __init__(self, pipeline: Any, options: AnnotateOptions) -> None:
        config = pipeline.model.config
        check_model_tasks(options, config.tasks, config.name)
        self.pipeline = pipeline
        self.options = options
        self.stats = AnnotateStats()
        self._nn: Any = None
        self.retrieval = options.uses_retrieval(config.retrieval.default)
        if self.retrieval or (options.nearest_neighbour and "description" in options.tasks):
            self.reference()  # a bad reference table fails here, before any row is answered

    def columns(self) -> list[OutputColumn]:
        """The columns :meth:`annotate` returns, in order."""
        return output_columns(self.options, self.retrieval)

    def reference(self) -> Any:
        """The annotated reference table (loaded once)."""
        if self._nn is None:
            import csv

            from llamo_plugin.retrieval import NearestNeighbours

            path = self.options.reference_table or None
            try:
                self._nn = NearestNeighbours.from_table(path)
            except (OSError, ValueError, KeyError, csv.Error) as exc:
                raise ConfigError(f"reference table {brief(path, 120)}: {exc}") from None
        return self._nn

    def _run(
        self, smiles: Sequence[Any], instruction: Any, task: str, decode: DecodeConfig, **kw: Any
    ) -> list[Any]:
        rows = self.pipeline.run(
            smiles, instruction, task=task, decode=decode, limits=self.options.limits, **kw
        )
        self.stats.cache_hits += self.pipeline.stats.cache_hits
        self.stats.generated += self.pipeline.stats.generated
        return rows

    def annotate(
        self,
        smiles: Sequence[Any],
        questions: Sequence[Any] | None = None,
        *,
        progress: Any = None,
        should_stop: Any = None,
        read_errors: Sequence[str | None] | None = None,
    ) -> dict[str, list[Any]]:
        """Output columns (name -> values, one per row) for one batch of SMILES.

        ``questions``: per-row questions (the ``question_column``); else ``options.question``.
        ``read_errors``: per row, why the table reader could not read it (the row's error
        then says so rather than "missing SMILES").
        """
        from llamo_plugin.tasks import (
            FORWARD,
            IUPAC,
            PROPERTIES,
            QA_MAX_NEW_TOKENS,
            RETRO,
            Property,
            parse_number,
        )

        opts = self.options
        n = len(smiles)
        out: dict[str, list[Any]] = {}
        errors: list[str | None] = list(read_errors) if read_errors is not None else [None] * n
        kw = {"progress": progress, "should_stop": should_stop}

        def note(rows: list[Any]) -> None:
            for i, r in enumerate(rows):
                if r.status != "ok" and errors[i] is None:
                    errors[i] = r.error or r.status

        if "description" in opts.tasks:
            out.update(self._descriptions(smiles, note, kw))
        if "property" in opts.tasks:
            for name in opts.properties:
                spec = PROPERTIES[Property(name)]
                rows = self._run(
                    smiles,
                    spec.default_instruction,
                    "property",
                    spec.decode_config(),
                    **kw,
                )
                note(rows)
                values = []
                for i, r in enumerate(rows):
                    v = parse_number(r.text) if r.status == "ok" else None
                    if r.status == "ok" and v is None:
                        self.stats.unparseable_numbers += 1
                        if errors[i] is None:
                            errors[i] = f"unparseable_answer: {name}: {brief(r.text, 100)}"
                    values.append(v)
                out[f"{name}_hartree"] = values
                if opts.add_ev:
                    out[f"{name}_ev"] = [None if v is None else v * HARTREE_TO_EV for v in values]
        if "iupac" in opts.tasks:
            rows = self._run(
                smiles,
                IUPAC.default_instruction,
                "iupac",
                DecodeConfig(max_new_tokens=IUPAC.max_new_tokens),
                **kw,
            )
            note(rows)
            out.update(self._iupac_columns(rows))
        if "qa" in opts.tasks:
            if questions is not None:
                instr: Any = [q if isinstance(q, str) else "" for q in questions]
            else:
                instr = opts.question
            rows = self._run(
                smiles, instr, "qa", DecodeConfig(max_new_tokens=QA_MAX_NEW_TOKENS), **kw
            )
            note(rows)
            out["answer"] = [r.text if r.status == "ok" else None for r in rows]
        for task, key in (("forward", "forward_product"), ("retro", "retro_reactants")):
            if task in opts.tasks:
                spec = FORWARD if task == "forward" else RETRO
                decode = DecodeConfig(max_new_tokens=spec.max_new_tokens)
                rows = self._run(smiles, spec.default_instruction, task, decode, **kw)
                note(rows)
                out[key] = self._smiles_answers(rows, task, errors)
        out[DOMAIN_COLUMN] = self._domain_column(smiles)
        out[ERROR_COLUMN] = errors
        self.stats.rows += n
        for e in errors:
            if e is not None:
                self.stats.errors[_error_kind(e)] += 1
        if opts.fail_on_error:
            bad = next((i for i, e in enumerate(errors) if e is not None), None)
            if bad is not None:
                raise RowError(bad, smiles[bad], str(errors[bad]))
        return out

    def _descriptions(self, smiles: Sequence[Any], note: Any, kw: dict[str, Any]) -> dict[str, Any]:
        """The description column (retrieval-augmented when switched on: the prompt carries
        the nearest annotated molecules, decoding adds the model's copy bias, the answer
        cache keys the reference table's checksum), the neighbours used, and optionally the
        nearest neighbour's columns."""
        from llamo_plugin.tasks import DESCRIPTION

        model_cfg = self.pipeline.model.config
        decode = model_cfg.decode.replace(max_new_tokens=DESCRIPTION.max_new_tokens)
        out: dict[str, Any] = {}
        if self.retrieval:
            from llamo_plugin.retrieval import neighbours_label, with_retrieved

            index = self.reference()
            k = self.options.neighbours or model_cfg.retrieval.neighbours
            instructions, hits = with_retrieved(
                index, list(smiles), DESCRIPTION.default_instruction, k
            )
            decode = model_cfg.retrieval.decode_for(decode)
            task = f"description+retrieval:{index.checksum[:16]}"
            rows = self._run(smiles, instructions, task, decode, **kw)
        else:
            rows = self._run(smiles, DESCRIPTION.default_instruction, "description", decode, **kw)
        note(rows)
        out["description"] = [r.text if r.status == "ok" else None for r in rows]
        if self.retrieval:
            out["description_neighbours"] = [
                neighbours_label(h) if r.status == "ok" else None
                for h, r in zip(hits, rows, strict=True)
            ]
        if self.options.nearest_neighbour:
            nearest = self.reference().query(list(smiles))
            out["nn_smiles"] = [h.smiles if h else None for h in nearest]
            out["nn_similarity"] = [h.similarity if h else None for h in nearest]
            out["nn_caption"] = [h.caption if h else None for h in nearest]
        return out

    @staticmethod
    def _smiles_answers(rows: list[Any], task: str, errors: list[str | None]) -> list[Any]:
        """Reaction answers as RDKit-canonical SMILES; an answer that is no valid SMILES
        gives a missing value and ``unparseable_answer``."""
        from llamo_plugin.chem.smiles import parse_smiles
        from llamo_plugin.errors import InvalidSmilesError

        values: list[Any] = []
        for i, r in enumerate(rows):
            value = None
            if r.status == "ok":
                try:
                    value = parse_smiles(r.text.replace(" ", "")).isomeric_smiles
                except InvalidSmilesError:
                    if errors[i] is None:
                        errors[i] = f"unparseable_answer: {task}: {brief(r.text, 100)}"
            values.append(value)
        return values

    def _domain_column(self, smiles: Sequence[Any]) -> list[str | None]:
        """``llamo_domain`` per row (each distinct SMILES checked once)."""
        from llamo_plugin.chem.domain import domain_status

        domain = self.pipeline.model.config.domain
        seen: dict[Any, str | None] = {}
        out: list[str | None] = []
        for s in smiles:
            key = s if isinstance(s, str) else None
            if key not in seen:
                seen[key] = domain_status(s, domain) if key is not None else None
            out.append(seen[key])
        return out

    def _iupac_columns(self, rows: list[Any]) -> dict[str, list[Any]]:
        """Names, OPSIN round-trip statuses and sources (with the openclatura fallback)."""
        from llamo_plugin.chem.naming import verify_names

        ok = [i for i, r in enumerate(rows) if r.status == "ok"]
        names: list[Any] = [None] * len(rows)
        status: list[Any] = [None] * len(rows)
        source: list[Any] = [None] * len(rows)
        if ok:
            verified = verify_names(
                [rows[i].text for i in ok],
                [rows[i].canonical_smiles for i in ok],
                fallback=self.options.iupac_fallback,
            )
            for i, v in zip(ok, verified, strict=True):
                names[i], status[i], source[i] = v.name, v.status, v.source
                self.stats.iupac_fallbacks += v.source == "openclatura"
        return {"iupac_name": names, "iupac_roundtrip": status, "iupac_source": source}
