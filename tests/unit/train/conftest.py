"""A small copy of ``../shared/data`` (QM9 cut to its first rows) and a build context on it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

#: QM9 rows kept: the first ones are the smallest molecules, many of them evaluation
#: molecules (FreeSolv, PubChem CID 1-1000, RDKit's NCI set), so exclusion is exercised.
QM9_ROWS = 2500
SMALL_PLAN = {"n_description_val": 30, "n_qm9_val": 20, "n_property_test": 100}


@pytest.fixture(scope="session")
def small_data_dir(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``shared/data`` with every folder linked and QM9 cut to :data:`QM9_ROWS` rows."""
    src = shared_dir / "data"
    dst = tmp_path_factory.mktemp("data")
    for folder in src.iterdir():
        if folder.name != "qm9":
            (dst / folder.name).symlink_to(folder, target_is_directory=True)
    (dst / "qm9").mkdir()
    with (
        (src / "qm9" / "qm9_scalar_properties.csv").open() as fin,
        (dst / "qm9" / "qm9_scalar_properties.csv").open("w") as fout,
    ):
        for i, line in enumerate(fin):
            if i > QM9_ROWS:
                break
            fout.write(line)
    return dst


@pytest.fixture(scope="session")
def build_cache_dir(small_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh cache dir holding only the evaluation keys (computed once, then reused from the
    user cache: they depend only on the evaluation files, which are the real ones here)."""
    from llamo_plugin.train.exclusion import _eval_cache_path, eval_keys
    from llamo_plugin.train.sources import default_cache_dir

    eval_keys(small_data_dir)
    cache = tmp_path_factory.mktemp("cache")
    user = _eval_cache_path(small_data_dir, default_cache_dir())
    shutil.copy(user, _eval_cache_path(small_data_dir, cache))
    return cache


@pytest.fixture(scope="session")
def small_context(
    small_data_dir: Path, build_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """A build context on the small data, with empty (temporary) committed-split folder."""
    from llamo_plugin.train.context import make_context

    return make_context(
        small_data_dir,
        cache_dir=build_cache_dir,
        splits_dir=tmp_path_factory.mktemp("splits"),
        **SMALL_PLAN,
    )
