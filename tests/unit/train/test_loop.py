"""Training loop: a tiny two-stage run learns, saves a loadable model, and resumes exactly."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from llamo_plugin.checkpoint.format import load_model
from llamo_plugin.errors import ConfigError
from llamo_plugin.train.batches import load_examples
from llamo_plugin.train.config import TrainConfig
from llamo_plugin.train.loop import train

SMILES = ["CC(=O)Oc1ccccc1C(=O)O", "CCO", "c1ccccc1", "OCC(O)CO", "CCN", "CC(=O)O", "C#N"]


def _write_data(root: Path) -> None:
    rng = random.Random(0)
    with open(root / "toy.jsonl", "w") as fh:
        for i in range(120):
            s = rng.choice(SMILES)
            rec = {
                "task": "qa",
                "smiles": s,
                "instruction": "How many heavy atoms?",
                "answer": str(len([c for c in s if c.isalpha()])),
                "split": "val" if i < 10 else "train",
                "source": "toy",
                "qtype": "atoms",
            }
            fh.write(json.dumps(rec) + "\n")


def _config(stages: list[dict]) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "name": "toy",
            "seed": 1,
            "lm": {
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "num_key_value_heads": 2,
                "max_position_embeddings": 256,
                "tie_word_embeddings": True,
            },
            "model": {
                "graph": {"num_layers": 2, "hidden_size": 32},
                "projector": {
                    "input_size": 32,
                    "num_levels": 3,
                    "num_heads": 2,
                    "mlp_depth": 2,
                    "output_size": 32,
                },
            },
            "tokenizer": {"vocab_size": 120},
            "stages": stages,
            "log_every_steps": 5,
            "num_threads": 1,
        }
    )


STAGE1 = {
    "name": "align",
    "data": [{"path": "toy.jsonl"}],
    "max_steps": 12,
    "warmup_steps": 2,
    "lr": 3e-3,
    "min_lr": 1e-3,
    "tokens_per_batch": 2048,
}
STAGE2 = {
    "name": "tune",
    "data": [{"path": "toy.jsonl"}],
    "trainable": ["projector", "lm"],
    "max_steps": 6,
    "warmup_steps": 2,
    "lr": 1e-3,
    "min_lr": 1e-4,
    "tokens_per_batch": 2048,
}


def test_val_split_is_not_trained_on(tmp_path) -> None:
    _write_data(tmp_path)
    assert len(load_examples(tmp_path / "toy.jsonl")) == 110
    assert len(load_examples(tmp_path / "toy.jsonl", split="val")) == 10


def test_two_stages_train_save_and_resume_identically(tmp_path) -> None:
    _write_data(tmp_path)
    full = train(_config([STAGE1, STAGE2]), tmp_path / "full", tmp_path)
    model = load_model(full)
    assert model.config.name == "toy"
    from llamo_plugin.pipeline import Pipeline

    answers = Pipeline(model).run(["CCO", "not smiles"], "How many heavy atoms?")
    assert answers[0].status == "ok" and answers[1].status == "invalid_smiles"

    # Interrupted run: stage 1 only, then the full recipe in the same directory resumes.
    train(_config([STAGE1]), tmp_path / "resumed", tmp_path)
    resumed = load_model(train(_config([STAGE1, STAGE2]), tmp_path / "resumed", tmp_path))
    a, b = model.state_dict(), resumed.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_frozen_parts_do_not_change(tmp_path) -> None:
    _write_data(tmp_path)
    train(_config([STAGE1]), tmp_path / "run", tmp_path)
    before = load_model(tmp_path / "run" / "model")
    after = load_model(train(_config([STAGE1, STAGE2]), tmp_path / "run", tmp_path))
    enc_a, enc_b = before.graph.encoder.state_dict(), after.graph.encoder.state_dict()
    assert all(torch.equal(enc_a[k], enc_b[k]) for k in enc_a)  # GIN frozen in stage 2
    proj_a, proj_b = before.graph.projector.state_dict(), after.graph.projector.state_dict()
    assert any(not torch.equal(proj_a[k], proj_b[k]) for k in proj_a)


def test_config_rejects_unknown_parts_and_keys() -> None:
    with pytest.raises(ConfigError, match="unknown trainable"):
        _config([{**STAGE1, "trainable": ["gnn"]}])
    with pytest.raises(ConfigError, match="unknown key"):
        _config([{**STAGE1, "epochs": 3}])
