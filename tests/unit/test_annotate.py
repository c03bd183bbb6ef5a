"""Annotator: the columns the nodes and ``llamo annotate`` append, row by row."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from llamo_plugin.annotate import (
    ERROR_COLUMN,
    HARTREE_TO_EV,
    AnnotateOptions,
    Annotator,
    RowError,
    output_columns,
)
from llamo_plugin.chem.opsin import java_available
from llamo_plugin.errors import ConfigError
from llamo_plugin.pipeline import Pipeline

TABLE = ["CCO", None, "C1CC(", "", "OCC", "c1ccccc1O", "[Na+].[Cl-]"]


def _annotator(model: Any, **opts: Any) -> Annotator:
    return Annotator(Pipeline(model, chunk_size=4), AnnotateOptions(**opts))


def test_columns_declared_match_columns_produced(tiny_model: Any) -> None:
    opts = {
        "tasks": ("description", "property", "qa"),
        "question": "How many rings?",
        "add_ev": True,
        "nearest_neighbour": True,
    }
    ann = _annotator(tiny_model, **opts)
    out = ann.annotate(TABLE)
    assert list(out) == [c.key for c in output_columns(AnnotateOptions(**opts))]
    assert all(len(v) == len(TABLE) for v in out.values())
    errors = out[ERROR_COLUMN]
    assert [e is None for e in errors] == [True, False, False, False, True, True, True]
    for col, values in out.items():
        if col != ERROR_COLUMN:
            assert all(values[i] is None for i in (1, 2, 3)), col  # missing, not made up
    assert out["description"][0] == out["description"][4]  # CCO == OCC
    assert out["nn_similarity"][0] is not None and 0 <= out["nn_similarity"][0] <= 1
    for h, ev in zip(out["homo_hartree"], out["homo_ev"], strict=True):
        assert (h is None) == (ev is None)
        if h is not None:
            assert math.isclose(ev, h * HARTREE_TO_EV)
    s = ann.stats.as_dict()
    assert s["rows"] == 7 and sum(s["errors"].values()) == 3
    assert s["errors"] == {"invalid_smiles": 3}
    assert [e.split(":")[0] for e in errors if e] == ["invalid_smiles"] * 3
    assert errors[2] == "invalid_smiles: unparseable: 'C1CC('"
    assert out["llamo_domain"] == ["in_domain", None, None, None] + ["in_domain"] * 3


def test_question_column_and_missing_question(tiny_model: Any) -> None:
    ann = _annotator(tiny_model, tasks=("qa",), question_column="q")
    out = ann.annotate(["CCO", "CCO", "CCO"], questions=["Rings?", None, "Charge?"])
    assert out["answer"][1] is None
    assert out[ERROR_COLUMN][1] == "missing_instruction: no question"
    assert out["answer"][0] is not None and out["answer"][2] is not None


def test_fail_on_error_names_the_row(tiny_model: Any) -> None:
    ann = _annotator(tiny_model, tasks=("description",), fail_on_error=True)
    with pytest.raises(RowError, match=r"row 2 .*C1CC\("):
        ann.annotate(["CCO", "CC", "C1CC("])


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError):
        AnnotateOptions(tasks=("summarise",))
    with pytest.raises(ConfigError):
        AnnotateOptions(tasks=("qa",))
    with pytest.raises(ConfigError):
        AnnotateOptions(properties=("dipole",))
    with pytest.raises(ConfigError, match="unknown"):
        AnnotateOptions.from_dict({"tasks": ["iupac"], "fallback": True})


@pytest.mark.skipif(not java_available(), reason="OPSIN needs Java")
def test_iupac_roundtrip_and_fallback(tiny_model: Any) -> None:
    smiles = ["CCO", "c1ccccc1O", "not smiles"]
    plain = _annotator(tiny_model, tasks=("iupac",), iupac_fallback=False).annotate(smiles)
    # A random tiny model's names do not parse back to the molecule.
    assert plain["iupac_source"][:2] == ["model", "model"]
    assert all(s != "exact" for s in plain["iupac_roundtrip"][:2])
    assert plain["iupac_name"][2] is None and plain["iupac_roundtrip"][2] is None
    ann = _annotator(tiny_model, tasks=("iupac",))
    out = ann.annotate(smiles)
    assert out["iupac_source"][:2] == ["openclatura", "openclatura"]
    assert out["iupac_roundtrip"][:2] == ["exact", "exact"]
    assert out["iupac_name"][0] == "ethanol" and out["iupac_name"][1] == "phenol"
    assert ann.stats.iupac_fallbacks == 2


def test_every_missing_output_says_why(tiny_model: Any) -> None:
    """Refused inputs, unparseable answers and rows the reader could not read all get a
    status in the error column; long inputs are quoted briefly."""

    class WordyPipeline(Pipeline):
        """The real pipeline, with every answer replaced by words without a number."""

        def run(self, *args: Any, **kw: Any) -> list[Any]:
            rows = super().run(*args, **kw)
            return [replace(r, text="about minus a quarter") if r.text else r for r in rows]

    ann = Annotator(
        WordyPipeline(tiny_model, chunk_size=4),
        AnnotateOptions(tasks=("property",), properties=("homo",)),
    )
    smiles = ["CCO", "C" * 100_000, "CCö", None, "C[Pt]C"]
    read_errors = [None, None, None, "unreadable_record: RDKit could not read SD record 4", None]
    out = ann.annotate(smiles, read_errors=read_errors)
    errors = out[ERROR_COLUMN]
    assert errors[1].startswith("too_large: 100,000 characters (limit 5,000): 'CCC")
    assert len(errors[1]) < 300
    assert errors[2].startswith("invalid_smiles: bad_character")
    assert errors[3] == read_errors[3]
    for i in (0, 4):
        assert out["homo_hartree"][i] is None
        assert errors[i].startswith("unparseable_answer: homo: ")
    assert out["llamo_domain"] == ["in_domain", None, None, None, "outside: element Pt"]
    assert ann.stats.as_dict()["errors"] == {
        "unparseable_answer": 2,
        "too_large": 1,
        "invalid_smiles": 1,
        "unreadable_record": 1,
    }


def test_reaction_answers_are_canonical_smiles_or_unparseable(tiny_model: Any) -> None:
    """Forward/retro answers become RDKit-canonical SMILES; a non-SMILES answer gives a
    missing value and ``unparseable_answer``; a model not declaring the task is refused."""
    from llamo_plugin.tasks import OFFICIAL_TASKS

    answers = iter(["OC C", "the product is ethanol"])

    class FixedPipeline(Pipeline):
        def run(self, *args: Any, **kw: Any) -> list[Any]:
            rows = super().run(*args, **kw)
            return [replace(r, text=next(answers)) if r.text else r for r in rows]

    with pytest.raises(ConfigError, match="not trained for the task"):
        Annotator(Pipeline(tiny_model), AnnotateOptions(tasks=("forward",)))
    model = tiny_random_model_with_tasks(OFFICIAL_TASKS)
    ann = Annotator(FixedPipeline(model), AnnotateOptions(tasks=("forward",)))
    out = ann.annotate(["CC=O.[H][H]", "CC(=O)O.CCO", "C1CC("])
    assert out["forward_product"] == ["CCO", None, None]
    assert out[ERROR_COLUMN][1].startswith("unparseable_answer: forward: ")
    assert out[ERROR_COLUMN][2].startswith("invalid_smiles")


def tiny_random_model_with_tasks(tasks: tuple[str, ...]) -> Any:
    from llamo_plugin.model.factory import tiny_random_model

    model = tiny_random_model(seed=0)
    model.config = model.config.replace(tasks=tasks)
    return model


def test_retrieval_augmented_descriptions(tiny_model: Any, tmp_path: Any) -> None:
    from llamo_plugin.cache import AnswerCache
    from llamo_plugin.config import RetrievalConfig

    assert not tiny_model.config.retrieval.default  # auto: off for a model not trained so
    plain = _annotator(tiny_model, tasks=("description",))
    assert not plain.retrieval and "description_neighbours" not in plain.annotate(["CCO"])
    table = tmp_path / "ref.csv"
    table.write_text("id,smiles,caption\nA,CCO,The molecule is ethanol.\nB,CCCO,Propanol.\n")
    cache = AnswerCache(tmp_path / "answers.sqlite")
    pipe = Pipeline(tiny_model, cache=cache)
    opts = AnnotateOptions(tasks=("description",), retrieval="on", reference_table=str(table))
    ann = Annotator(pipe, opts)
    assert [c.key for c in ann.columns()] == [
        "description", "description_neighbours", "llamo_domain", "llamo_error"
    ]  # fmt: skip
    out = ann.annotate(["OCC", "C1CC(", "CCCO"])
    assert list(out) == [c.key for c in ann.columns()]
    assert out["description_neighbours"] == ["A (1.00); B (0.56)", None, "B (1.00); A (0.56)"]
    assert out["description"][1] is None and out["llamo_error"][1].startswith("invalid_smiles")
    # the answer cache keys the reference table: another table, another key
    table.write_text("id,smiles,caption\nA,CCO,Another caption.\nB,CCCO,Propanol.\n")
    again = Annotator(pipe, opts)
    again.annotate(["OCC"])
    assert again.stats.cache_hits == 0 and again.stats.generated == 1
    same = Annotator(pipe, opts)
    same.annotate(["OCC"])
    assert same.stats.cache_hits == 1
    # a model trained with retrieval: auto switches it on, "off" switches it off
    trained = replace(
        tiny_model.config, retrieval=RetrievalConfig(default=True, neighbours=1, copy_bias=2.0)
    )
    tiny_model.config, saved = trained, tiny_model.config
    try:
        auto = Annotator(Pipeline(tiny_model), AnnotateOptions(reference_table=str(table)))
        assert auto.retrieval
        assert auto.annotate(["CCO"])["description_neighbours"] == ["A (1.00)"]
        off = AnnotateOptions(retrieval="off", reference_table=str(table))
        assert not Annotator(Pipeline(tiny_model), off).retrieval
    finally:
        tiny_model.config = saved
    pipe.close()


def test_bad_reference_table_is_one_clear_error(tiny_model: Any, tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match=r"reference table .*missing\.tsv"):
        _annotator(tiny_model, retrieval="on", reference_table=str(tmp_path / "missing.tsv"))
    bad = tmp_path / "bad.csv"
    bad.write_text("name,text\nx,y\n")
    with pytest.raises(ConfigError, match="no SMILES column"):
        _annotator(tiny_model, retrieval="on", reference_table=str(bad))
    with pytest.raises(ConfigError, match="retrieval must be"):
        AnnotateOptions(retrieval="maybe")
