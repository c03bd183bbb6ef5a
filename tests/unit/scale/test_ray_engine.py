"""``llamo annotate --engine ray`` on a local 2-CPU Ray: the same rows as the local engine,
restart per shard, one-line errors (skipped without Ray)."""

from __future__ import annotations

import csv
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from llamo_plugin.annotate import AnnotateOptions
from llamo_plugin.checkpoint.format import save_model
from llamo_plugin.cli.main import main

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install '.[ray]')")
pytest.importorskip("ray.data")

pytestmark = pytest.mark.slow
ROWS = 2_000  # "a few thousand rows", split over three input files
SHARD_ROWS = 300


@pytest.fixture(scope="module")
def local_ray() -> Any:
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def model_dir(tiny_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ray") / "model"
    save_model(tiny_model, path)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of three tables (CSV, Parquet, SDF) with bad rows among good ones, and an
    empty one."""
    from rdkit import Chem

    ref = resources.files("llamo_plugin") / "resources/reference/chebi20_validation.tsv"
    with ref.open(encoding="utf-8") as fh:
        smiles = [row["smiles"] for row in csv.DictReader(fh, delimiter="\t")][:ROWS]
    smiles[7], smiles[11], smiles[1234] = "C1CC(", "", "[Xx]"
    folder = tmp_path_factory.mktemp("inputs")
    half = ROWS // 2
    pd.DataFrame({"id": range(half), "smiles": smiles[:half], "note": "a"}).to_csv(
        folder / "part_a.csv", index=False
    )
    pd.DataFrame({"id": range(half, ROWS - 20), "smiles": smiles[half:-20]}).to_parquet(
        folder / "part_b.parquet"
    )
    with Chem.SDWriter(str(folder / "part_c.sdf")) as w:
        for i, s in enumerate(smiles[-20:]):
            mol = Chem.MolFromSmiles(s) or Chem.MolFromSmiles("C")
            mol.SetProp("_Name", f"mol{i}")
            w.write(mol)
    # one record RDKit cannot read: a row with a status, not a lost row
    text = (folder / "part_c.sdf").read_text().split("$$$$\n")
    text[3] = text[3].replace("V2000", "V2999")
    (folder / "part_c.sdf").write_text("$$$$\n".join(text))
    (folder / "part_d.csv").write_text("id,smiles\n")  # a header without rows
    return folder


def _cli(model_dir: Path, *args: str) -> list[str]:
    return ["annotate", *args, "--model", str(model_dir), "--tasks", "property",
            "--properties", "gap", "--no-cache"]  # fmt: skip


def _ray_cli(model_dir: Path, src: Path, out: Path, *more: str) -> int:
    args = _cli(model_dir, str(src), "-o", str(out), "--engine", "ray",
                "--shard-rows", str(SHARD_ROWS), "--batch-rows", "128", *more)  # fmt: skip
    return main(args)


def _shards(out: Path, stem: str) -> pd.DataFrame:
    files = sorted(out.glob(f"{stem}-*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def test_same_rows_as_the_local_engine(
    local_ray: Any, model_dir: Path, inputs: Path, tmp_path: Path, capsys: Any
) -> None:
    out = tmp_path / "ray-out"
    assert _ray_cli(model_dir, inputs, out) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["rows"] == ROWS and summary["shards"] == 4 + 4 + 1
    assert summary["errors"] == {"invalid_smiles": 3, "unreadable_record": 1}
    assert not list(out.glob("part_d*"))  # nothing to write for the empty table
    for src in sorted(inputs.glob("part_[abc].*")):
        local = tmp_path / f"{src.stem}.parquet"
        assert main([*_cli(model_dir, str(src), "-o", str(local)), "--workers", "1"]) == 0
        expected = pd.read_parquet(local)
        got = _shards(out, src.stem)
        pd.testing.assert_frame_equal(got, expected)  # same rows, order, values and types
        assert got["gap_hartree"].notna().sum() >= len(got) - 3
    assert not (out / ".llamo-parts").exists() or not any((out / ".llamo-parts").iterdir())


def test_a_rerun_recomputes_only_unfinished_shards(
    local_ray: Any, model_dir: Path, inputs: Path, tmp_path: Path, caplog: Any
) -> None:
    from llamo_plugin.scale import RayOptions, annotate_with_ray
    from llamo_plugin.scale.shards import OutputFolder

    out = tmp_path / "out"
    options = AnnotateOptions(tasks=("property",), properties=("gap",))
    ropts = RayOptions(shard_rows=SHARD_ROWS, batch_rows=128)
    kw: dict[str, Any] = {"model": model_dir, "cache_path": None, "ray_options": ropts}
    first = annotate_with_ray(inputs, out, options, **kw)
    before = {p.name: (p.stat().st_mtime_ns, pd.read_parquet(p)) for p in out.glob("*.parquet")}
    # an interrupted run: one shard never written, one whose parts were all written (the
    # driver died before joining them), one with a part of its rows only
    (out / "part_a-00001.parquet").unlink()
    folder = OutputFolder(out)
    whole = before["part_b-00002.parquet"][1].assign(_llamo_row=range(SHARD_ROWS))
    (out / "part_b-00002.parquet").unlink()
    folder.write_part("part_b-00002", 0, whole.iloc[:100])
    folder.write_part("part_b-00002", 100, whole.iloc[100:])
    folder.write_row_count("part_b-00002", SHARD_ROWS)
    (out / "part_c-00000.parquet").unlink()
    folder.write_part("part_c-00000", 0, _with_rows(before["part_c-00000.parquet"][1].iloc[:5]))

    second = annotate_with_ray(inputs, out, options, **kw)
    assert first.rows == ROWS and second.rows == SHARD_ROWS + 20  # not part_b-00002's rows
    assert second.shards_skipped == first.shards - 2 and second.shards == first.shards
    for name, (mtime, frame) in before.items():
        path = out / name
        pd.testing.assert_frame_equal(pd.read_parquet(path), frame)
        kept = name not in ("part_a-00001.parquet", "part_b-00002.parquet", "part_c-00000.parquet")
        assert (path.stat().st_mtime_ns == mtime) == kept, name
    # another question into the same folder would mix two kinds of answers
    caplog.clear()
    assert _ray_cli(model_dir, inputs, out, "--ev") == 2
    assert "other settings" in caplog.text


def _with_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(_llamo_row=range(len(frame)))


def test_bad_rows_stop_the_run_only_when_asked(
    local_ray: Any, model_dir: Path, tmp_path: Path, caplog: Any
) -> None:
    src = tmp_path / "t.csv"
    pd.DataFrame({"smiles": ["CCO", "C1CC(", "c1ccccc1"]}).to_csv(src, index=False)
    assert _ray_cli(model_dir, src, tmp_path / "o1", "--fail-on-error") == 1
    assert "row 1 ('C1CC('): invalid_smiles" in caplog.text
    assert _ray_cli(model_dir, src, tmp_path / "o2") == 0
    table = pd.read_parquet(tmp_path / "o2" / "t-00000.parquet")
    assert table["llamo_error"].notna().tolist() == [False, True, False]


def test_unusable_input_is_a_one_line_error_before_any_work(
    model_dir: Path, tmp_path: Path, caplog: Any
) -> None:
    src = tmp_path / "t.csv"
    pd.DataFrame({"molecule": ["CCO"]}).to_csv(src, index=False)
    assert _ray_cli(model_dir, src, tmp_path / "o") == 2
    assert _ray_cli(model_dir, tmp_path / "missing", tmp_path / "o") == 2
    assert "no SMILES column" in caplog.text and "no such file or folder" in caplog.text
    assert not (tmp_path / "o").exists()  # refused before the output folder is made
