"""What the four annotating nodes share: SMILES column choice, unique output names, missing
values vs failing, the batch loop with progress and cancellation, typed output columns.

The nodes are thin: :class:`llamo_plugin.annotate.Annotator` computes the columns, exactly as
``llamo annotate`` does.
"""

from __future__ import annotations

import logging
from typing import Any

import knime.extension as knext

logger = logging.getLogger(__name__)

#: Input port of the molecule table: every annotating node takes the LLaMo model port first
#: (input 0) and the table second. KNIME checks each column parameter against the spec at its
#: ``port_index`` before configure and when building the dialog (a non-table -> TypeError).
TABLE_PORT = 1


class MissingHandling(knext.EnumParameterOptions):
    MISSING = (
        "Output missing values",
        "A missing or invalid SMILES gives missing outputs and an entry in the error column.",
    )
    FAIL = ("Fail", "The node fails at the first missing or invalid SMILES, naming the row.")


def smiles_types() -> list[Any]:
    """Column types accepted as SMILES: plain strings and KNIME's SMILES types."""
    types = [knext.string()]
    try:
        from knime.types.chemistry import SmilesAdapterValue, SmilesValue

        types += [knext.logical(SmilesValue), knext.logical(SmilesAdapterValue)]
    except (ImportError, TypeError):  # chemistry types not installed
        pass
    return types


def is_smiles_column(column: Any) -> bool:
    return column.ktype in smiles_types()


def smiles_parameter() -> Any:
    return knext.ColumnParameter(
        "SMILES column",
        "The column holding the molecules (string or SMILES type). "
        "Chosen automatically when empty: a SMILES-typed column first, then a string column "
        "named like 'smiles', then the first string column.",
        port_index=TABLE_PORT,
        column_filter=is_smiles_column,
    )


def chosen_column(value: str | None) -> str | None:
    """A column parameter's value, or None for "no column".

    KNIME gives ``None`` (nothing chosen; a saved ``""`` reads back as None) or, from 5.8
    on, the string ``"<none>"`` (``knext.ColumnParameter.NONE``) when "None" is selected.
    """
    if value is None or value == "" or value == knext.ColumnParameter.NONE:
        return None
    return value


def missing_parameter() -> Any:
    return knext.EnumParameter(
        "If a SMILES is missing or invalid",
        "What to do with bad rows.",
        MissingHandling.MISSING.name,
        MissingHandling,
        style=knext.EnumParameter.Style.VALUE_SWITCH,
    )


def error_column_parameter() -> Any:
    return knext.StringParameter(
        "Error column",
        "Says why a row has missing outputs (missing when the row is fine).",
        "LLaMo error",
    )


def model_column_parameter() -> Any:
    return knext.StringParameter(
        "Model column",
        "The model (name and sha256 checksum) that produced the row's outputs.",
        "LLaMo model",
    )


def node_columns(
    node: Any, options: Any, retrieval: bool = False
) -> tuple[list[str], list[str], list[str]]:
    """A node's appended columns (keys, KNIME names, kinds): the task columns declared in
    :mod:`llamo_plugin.tasks` for ``options`` (named by their labels, or by the node's own
    name settings, ``node._labels()``), then the domain and error columns, then the model
    column. ``retrieval``: descriptions are retrieval-augmented (adds the neighbours column)."""
    from llamo_plugin.annotate import ERROR_COLUMN, output_columns

    labels = {ERROR_COLUMN: node.error_column, **node._labels()}
    columns = output_columns(options, retrieval)
    return (
        [*(c.key for c in columns), "__model__"],
        [*(labels.get(c.key, c.label) for c in columns), node.model_column],
        [*(c.kind for c in columns), "str"],
    )


def pick_smiles_column(node: Any, schema: Any) -> str:
    """Check or auto-select the SMILES column (assigned back to the node)."""
    columns = [c for c in schema if is_smiles_column(c)]
    chosen = chosen_column(node.smiles_column)
    if chosen is None:
        if not columns:
            raise knext.InvalidParametersError("the input table has no string or SMILES column")
        typed = [c for c in columns if c.ktype != knext.string()]  # KNIME SMILES types first
        named = [c for c in columns if "smiles" in c.name.lower()]
        node.smiles_column = chosen = (typed or named or columns)[0].name  # KNIME keeps it
    elif chosen not in schema.column_names:
        raise knext.InvalidParametersError(f"column {chosen!r} is not in the input")
    elif not any(c.name == chosen for c in columns):
        raise knext.InvalidParametersError(f"column {chosen!r} is not a string or SMILES column")
    return chosen


def unique_names(wanted: list[str], existing: list[str]) -> list[str]:
    """KNIME-style collision handling: ``name (#1)``, ``name (#2)``, ...; empty names rejected."""
    taken = set(existing)
    out = []
    for name in wanted:
        if not name.strip():
            raise knext.InvalidParametersError("output column names must not be empty")
        candidate, n = name, 0
        while candidate in taken:
            n += 1
            candidate = f"{name} ({'#'}{n})"
        taken.add(candidate)
        out.append(candidate)
    return out


def output_schema(schema: Any, names: list[str], kinds: list[str]) -> Any:
    cols = [
        knext.Column(knext.double() if k == "float" else knext.string(), n)
        for n, k in zip(names, kinds, strict=True)
    ]
    return schema.append(cols).get()


def run_batches(
    ctx: Any,
    table: Any,
    smiles_column: str,
    annotator: Any,
    keys: list[str],
    names: list[str],
    kinds: list[str],
    model_label: str,
    question_column: str | None = None,
) -> Any:
    """Annotate ``table`` batch by batch; returns a BatchOutputTable with input columns kept."""

    from llamo_plugin.annotate import RowError
    from llamo_plugin.errors import CancelledError

    out = knext.BatchOutputTable.create(row_ids="keep")
    total = max(table.num_rows, 1)
    done = 0

    def cancelled() -> bool:
        return bool(ctx.is_canceled())

    for batch in table.batches():
        if cancelled():
            raise RuntimeError("Execution canceled.")
        arrow = batch.to_pyarrow()  # in KNIME a pyarrow.RecordBatch, <RowID> first
        smiles = _texts(arrow, smiles_column)
        questions = None if question_column is None else _texts(arrow, question_column)
        try:
            values = annotator.annotate(smiles, questions, should_stop=cancelled)
        except CancelledError as exc:
            raise RuntimeError("Execution canceled.") from exc
        except RowError as exc:
            row_id = arrow.column(0).to_pylist()[exc.row]
            raise RuntimeError(f"RowID {row_id}: {exc.reason}") from exc
        values["__model__"] = [model_label] * len(smiles)
        # One output batch per input batch: KNIME's writer takes batches of the first
        # batch's size (only the last may be smaller), as KNIME's input batches are.
        out.append(_with_columns(arrow, [values[k] for k in keys], names, kinds))
        done += batch.num_rows
        ctx.set_progress(min(done / total, 1.0), f"{done} of {table.num_rows} rows")
    if out.num_batches == 0:  # zero-row input: zero rows with the typed columns
        out.append(_with_columns(table.to_pyarrow(), [[] for _ in keys], names, kinds))
    return out


def _texts(arrow: Any, name: str) -> list[str | None]:
    """A column's cells as plain strings (None for missing).

    ``arrow`` is a ``pyarrow.RecordBatch`` in KNIME (a ``pyarrow.Table`` for a whole table);
    both take a column index. SMILES-typed columns are KNIME extension arrays whose cells
    decode to ``SmilesValue`` (a ``str`` subclass); ``str()`` makes them plain strings.
    """
    index = arrow.schema.get_field_index(name)
    if index < 0:  # -1 would silently pick the last column
        raise KeyError(f"column {name!r} is not in the input")
    return [None if v is None else str(v) for v in arrow.column(index).to_pylist()]


def _with_columns(arrow: Any, columns: list[list[Any]], names: list[str], kinds: list[str]) -> Any:
    """``arrow`` (first column ``<RowID>``) plus the new columns, typed explicitly (an all-missing
    column must still be a string/double column, not Arrow ``null``)."""
    import pyarrow as pa

    arrays, fields = list(arrow.columns), list(arrow.schema)
    for values, name, kind in zip(columns, names, kinds, strict=True):
        typ = pa.float64() if kind == "float" else pa.string()
        arrays.append(pa.array(values, type=typ))
        fields.append(pa.field(name, typ))
    return knext.Table.from_pyarrow(pa.Table.from_arrays(arrays, schema=pa.schema(fields)))
