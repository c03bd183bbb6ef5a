"""Stage 0: supervised GIN pretraining targets, masking, learning, and the trainer hook."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from llamo_plugin.config import GraphEncoderConfig
from llamo_plugin.errors import ConfigError
from llamo_plugin.graph.gin import GINEncoder
from llamo_plugin.train.graph_pretrain import (
    COUNT_TARGETS,
    PUBCHEM_TARGETS,
    QM9_TARGETS,
    TARGETS,
    GraphPretrainConfig,
    count_targets,
    load_pretrain_set,
    masked_mse,
    pretrain_graph_encoder,
)

QM9_LIKE = ["CCO", "CC(=O)O", "c1ccccc1", "CCN", "OCC(O)CO", "C#N", "CC(C)O", "CCCl", "FC(F)F"]


def _write(root: Path) -> None:
    rng = random.Random(0)
    with open(root / "prop_train.jsonl", "w") as fh, open(root / "prop_val.jsonl", "w") as fv:
        for i, s in enumerate(QM9_LIKE * 4):
            split = "val" if i >= len(QM9_LIKE) * 3 else "train"
            n = sum(c.isalpha() for c in s)
            for q, v in (("homo", -0.2 - 0.01 * n), ("lumo", 0.01 * n), ("gap", 0.2 + 0.02 * n)):
                rec = {
                    "smiles": s,
                    "qtype": q,
                    "answer": f"{v + rng.gauss(0, 1e-4):.4f}",
                    "split": split,
                }
                (fv if split == "val" else fh).write(json.dumps(rec) + "\n")
    with open(root / "desc.jsonl", "w") as fh:
        fh.write(json.dumps({"smiles": "CC(=O)Oc1ccccc1C(=O)O", "split": "train"}) + "\n")
        fh.write(json.dumps({"smiles": "not-a-smiles", "split": "train"}) + "\n")


def test_count_targets_are_rdkit_exact() -> None:
    from rdkit import Chem

    aspirin = Chem.MolFromSmiles("CC(=O)Oc1ccccc1C(=O)O")
    values = dict(zip(COUNT_TARGETS, count_targets(aspirin), strict=True))
    assert values["n_C"] == 9 and values["n_O"] == 4 and values["n_heavy"] == 13
    assert values["n_H"] == 8 and values["rings"] == 1 and values["aromatic_rings"] == 1
    assert values["charge"] == 0 and values["mol_weight"] == pytest.approx(1.8016, abs=1e-3)


def test_masked_mse_ignores_missing_targets() -> None:
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    target = torch.tensor([[1.0, float("nan")], [1.0, 4.0]])
    assert float(masked_mse(pred, target)) == pytest.approx(4.0 / 3)


def test_load_set_masks_chebi_properties_and_skips_bad(tmp_path: Path) -> None:
    _write(tmp_path)
    cfg = GraphPretrainConfig(
        property_file="prop_train.jsonl",
        val_file="prop_val.jsonl",
        molecule_files=("desc.jsonl",),
        max_steps=1,
    )
    train = load_pretrain_set(cfg, tmp_path, "train")
    val = load_pretrain_set(cfg, tmp_path, "val")
    assert len(train.graphs) == len(QM9_LIKE) + 1  # unique QM9 molecules + aspirin; bad skipped
    assert train.targets.shape == (len(train.graphs), len(TARGETS))
    n_values = len(QM9_TARGETS) + len(PUBCHEM_TARGETS)  # no QM9 or PubChem value for aspirin
    assert np.isnan(train.targets[-1, :n_values]).all()
    assert np.isfinite(train.targets[-1, n_values:]).all()
    assert len(val.graphs) == len(QM9_LIKE)


def test_pubchem_gap_is_its_own_target(tmp_path: Path) -> None:
    _write(tmp_path)
    for split in ("train", "val"):
        with open(tmp_path / f"gap_{split}.jsonl", "w") as fh:
            rec = {"task": "property", "smiles": "CC(=O)Oc1ccccc1C(=O)O", "instruction": "q",
                   "answer": "4.95", "source": "pubchem-gap-iqspr", "split": split,
                   "qtype": "gap_pubchem_ev"}  # fmt: skip
            fh.write(json.dumps(rec) + "\n")
    cfg = GraphPretrainConfig(
        property_file="prop_train.jsonl",
        val_file="prop_val.jsonl",
        molecule_files=(),
        pubchem_gap_file="gap_train.jsonl",
        max_steps=1,
    )
    for split in ("train", "val"):
        data = load_pretrain_set(cfg, tmp_path, split)
        col = TARGETS.index("gap_pubchem_ev")
        known = np.isfinite(data.targets[:, col])
        assert known.sum() == 1 and data.targets[known, col][0] == pytest.approx(4.95)
        # the QM9 gap column is not filled from the PubChem value (different level of theory)
        assert np.isnan(data.targets[known, TARGETS.index("gap")]).all()


def test_pretraining_learns(tmp_path: Path) -> None:
    _write(tmp_path)
    cfg = GraphPretrainConfig(
        property_file="prop_train.jsonl",
        val_file="prop_val.jsonl",
        molecule_files=(),
        max_minutes=0,
        max_steps=150,
        batch_size=8,
        lr=3e-3,
        warmup_steps=10,
    )
    torch.manual_seed(0)
    untrained = pretrain_graph_encoder(
        GINEncoder(GraphEncoderConfig(hidden_size=32)), cfg.replace(max_steps=1), tmp_path
    )
    encoder = GINEncoder(GraphEncoderConfig(hidden_size=32))
    trained = pretrain_graph_encoder(encoder, cfg, tmp_path)
    assert trained["steps"] == 150 and not encoder.training
    assert trained["val_mae_hartree"]["gap"] < untrained["val_mae_hartree"]["gap"]


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ConfigError):
        GraphPretrainConfig(max_minutes=0, max_steps=0)
    with pytest.raises(ConfigError):
        GraphPretrainConfig.from_dict({"batch_size": 1})
    with pytest.raises(ConfigError, match="unknown"):
        GraphPretrainConfig.from_dict({"epochs": 3})


def test_split_digits_tokenizer() -> None:
    from llamo_plugin.tokenizer.build import train_tokenizer

    texts = ["-0.2482 0.1234 CC1=CC=CC=C1 c1ccccc1", "-0.2668 12 O=C1CCC1"] * 20
    tok = train_tokenizer(texts, 120, split_digits=True)
    assert tok.tokenize("-0.2482") == ["▁-", "0", ".", "2", "4", "8", "2"]
    assert tok.decode(tok.encode("-0.2482 CC1=CC=CC=C1", add_special_tokens=False)) == (
        "-0.2482 CC1=CC=CC=C1"
    )
