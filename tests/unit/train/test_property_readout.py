"""The property read-out stage: init_from, per-part learning rates, the auxiliary head, the
decoded validation that selects the stage's weights, and exact resume with all of it."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from llamo_plugin.checkpoint.format import load_model, save_model
from llamo_plugin.errors import ConfigError
from llamo_plugin.model.factory import tiny_random_model
from llamo_plugin.train.batches import Example
from llamo_plugin.train.config import TrainConfig
from llamo_plugin.train.decoded_eval import load_val_targets, score_targets
from llamo_plugin.train.loop import aux_target_stats, train

SMILES = ["CC(=O)Oc1ccccc1C(=O)O", "CCO", "c1ccccc1", "OCC(O)CO", "CCN", "CC(=O)O", "C#N"]


def _write_data(root: Path) -> None:
    rng = random.Random(0)
    with open(root / "property_train.jsonl", "w") as fh:
        for i in range(90):
            s = rng.choice(SMILES)
            value = -0.2 - 0.01 * len(s)
            for qtype, v in (("homo", value), ("gap", -value)):
                rec = {
                    "task": "property",
                    "smiles": s,
                    "instruction": f"Please provide the {qtype} of this molecule.",
                    "answer": f"{v:.4f}",
                    "split": "val" if i < 6 else "train",
                    "source": "toy",
                    "qtype": qtype,
                }
                fh.write(json.dumps(rec) + "\n")


@pytest.fixture
def init_dir(tmp_path) -> Path:
    save_model(tiny_random_model(seed=3), tmp_path / "init")
    return tmp_path / "init"


def _config(init_dir: Path, **stage: object) -> TrainConfig:
    base = {
        "name": "readout",
        "data": [{"path": "property_train.jsonl"}],
        "trainable": ["graph", "projector", "lm"],
        "lr_multipliers": {"graph": 0.1},
        "aux_property_weight": 0.5,
        "max_steps": 8,
        "warmup_steps": 2,
        "lr": 3e-3,
        "min_lr": 1e-3,
        "tokens_per_batch": 1024,
        "max_batch_size": 8,
        "decoded_eval": {"files": ["property_train.jsonl"], "molecules": 4, "every_minutes": 1e-4},
    }
    return TrainConfig.from_dict(
        {
            "name": "toy-v1",
            "seed": 1,
            "init_from": str(init_dir),
            "stages": [{**base, **stage}],
            "log_every_steps": 4,
            "num_threads": 1,
            "checkpoint_every_minutes": 1e-4,
        }
    )


def test_config_checks_lr_multipliers(init_dir) -> None:
    with pytest.raises(ConfigError, match="not trainable"):
        _config(init_dir, trainable=["projector", "lm"])  # graph multiplier, graph frozen
    with pytest.raises(ConfigError, match="positive"):
        _config(init_dir, lr_multipliers={"graph": 0})
    with pytest.raises(ConfigError, match="does not match"):  # unknown key "every"
        _config(init_dir, decoded_eval={"files": ["x"], "every": 3})


def test_readout_stage_trains_selects_and_resumes_exactly(tmp_path, init_dir) -> None:
    _write_data(tmp_path)
    start = load_model(init_dir)
    out = train(_config(init_dir), tmp_path / "full", tmp_path)
    model = load_model(out)
    assert model.config.name == "toy-v1"
    assert len(model.tokenizer) == len(start.tokenizer)  # the init model's tokenizer is kept
    # every part moved, the GIN least (its learning rate is a tenth)
    a, b = start.state_dict(), model.state_dict()
    moved = {k: float((a[k].float() - b[k].float()).abs().max()) for k in a}
    assert max(v for k, v in moved.items() if k.startswith("lm.")) > 0
    assert max(v for k, v in moved.items() if k.startswith("graph.encoder.")) > 0

    records = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").open()]
    evals = [r for r in records if "decoded_val" in r]
    assert len(evals) >= 2  # evaluated as training went
    final = records[-1]
    assert final["best_score"] == min(r["decoded_val"]["score"] for r in evals)
    assert evals[-1]["step"] == final["steps"]  # the end of the schedule is scored too
    # the saved model is the best-scoring one: re-scoring it gives the best score
    best = [r for r in evals if r["step"] == final["best_step"]][-1]
    assert best["best"]
    kept = torch.load(
        tmp_path / "full" / "checkpoints" / "best-readout.pt", map_location="cpu", weights_only=True
    )
    assert all(torch.equal(kept["model"][k], b[k]) for k in b)


def test_resume_mid_stage_is_exact(tmp_path, init_dir, monkeypatch) -> None:
    """A run stopped mid-pool and resumed ends with the uninterrupted run's last weights
    (no decoded selection here, so the saved model is the last step's; distinct answers, so
    a different batch would change them)."""
    with open(tmp_path / "property_train.jsonl", "w") as fh:
        for i in range(300):
            rec = {"task": "property", "smiles": SMILES[i % len(SMILES)], "qtype": "homo"}
            rec.update(instruction="Please provide the homo of this molecule.")
            rec.update(answer=f"{-0.1 - i / 1000:.4f}", split="train", source="toy")
            fh.write(json.dumps(rec) + "\n")
    config = _config(init_dir, decoded_eval=None)
    full = load_model(train(config, tmp_path / "full", tmp_path))

    from llamo_plugin.train import loop

    real = loop.Trainer._save_checkpoint

    class StopError(Exception):
        pass

    def save_then_stop(self, optimizer, sampler, batch_rng):  # type: ignore[no-untyped-def]
        real(self, optimizer, sampler, batch_rng)
        if self.state["step"] >= 4 and optimizer is not None:
            raise StopError

    monkeypatch.setattr(loop.Trainer, "_save_checkpoint", save_then_stop)
    with pytest.raises(StopError):
        train(config, tmp_path / "resumed", tmp_path)
    payload = torch.load(tmp_path / "resumed" / "checkpoints" / "last.pt", weights_only=True)
    pool = json.loads(payload["pool"])
    assert 0 < pool["cursor"] < len(pool["batches"])  # stopped in the middle of a pool
    monkeypatch.setattr(loop.Trainer, "_save_checkpoint", real)
    resumed = load_model(train(config, tmp_path / "resumed", tmp_path))
    a, b = full.state_dict(), resumed.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_aux_target_stats_and_val_targets(tmp_path) -> None:
    _write_data(tmp_path)
    stats = aux_target_stats(
        [[Example("C", "q", "-0.2500", "property", "homo"), Example("C", "q", "-0.1500",
          "property", "homo"), Example("C", "q", "text", "qa", "homo")]]
    )  # fmt: skip
    assert stats["homo"] == pytest.approx((-0.2, 0.05))
    rows = load_val_targets(tmp_path / "property_train.jsonl", molecules=2)
    assert set(rows) == {"homo", "gap"}
    assert len({s for s, _ in rows["homo"]}) <= 2


def test_score_is_relative_to_the_mean_predictor() -> None:
    refs = {"homo": [-0.3, -0.2, -0.1, -0.25]}
    mean_answers = {"homo": ["-0.2125"] * 4}
    exact = {"homo": ["-0.3000", "-0.2000", "-0.1000", "-0.2500"]}
    broken = {"homo": [None, "", "x", "-0.2000"]}
    assert score_targets(refs, mean_answers)["score"] == pytest.approx(1.0)
    assert score_targets(refs, exact)["score"] == pytest.approx(0.0)
    m = score_targets(refs, broken)
    assert m["targets"]["homo"]["n_unparseable"] == 3
    assert m["targets"]["homo"]["n_distinct"] == 1


def test_shared_prefix_forward_equals_the_plain_forward() -> None:
    from llamo_plugin.train.loop import forward_with_graph_tokens, shared_prefix

    model = tiny_random_model(seed=2)
    model.train()
    examples = [
        model.prepare(s, "Please provide the HOMO energy value.", answer=f"-0.{i}482")
        for i, s in enumerate(SMILES)
    ]
    fixed = shared_prefix(examples)
    assert fixed >= 5  # template + system message
    assert all(lab < 0 for e in examples for lab in e.prompt.labels[:fixed])
    plain, _ = forward_with_graph_tokens(model, examples, share_prefix=False)
    plain.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    shared, _ = forward_with_graph_tokens(model, examples, share_prefix=True)
    shared.loss.backward()
    assert float(shared.loss.detach()) == pytest.approx(float(plain.loss.detach()), rel=1e-5)
    for n, p in model.named_parameters():
        if n in grads:
            assert torch.allclose(p.grad, grads[n], atol=1e-5, rtol=1e-3), n


def test_decoded_description_validation(tmp_path, tiny_model, shared_dir) -> None:
    import json

    from llamo_plugin.errors import ConfigError
    from llamo_plugin.train.config import DecodedEvalConfig
    from llamo_plugin.train.decoded_eval import DecodedEval

    with pytest.raises(ConfigError, match="property, description or Q&A files"):
        DecodedEvalConfig(files=())
    records = tmp_path / "d.jsonl"
    rows = [("CCO", "The molecule is ethanol."), ("c1ccccc1", "The molecule is benzene.")]
    lines = []
    for (smiles, answer), split in zip(rows + rows, ["val", "val", "train", "train"], strict=True):
        rec = {"task": "description", "smiles": smiles, "instruction": "Describe it."}
        rec.update(answer=answer, source="t", split=split)
        lines.append(json.dumps(rec) + "\n")
    records.write_text("".join(lines))
    cfg = DecodedEvalConfig(files=(), description_files=(str(records),), description_rows=5)
    vocab = shared_dir / "data" / "scibert-vocab" / "vocab.txt"
    result = DecodedEval(cfg, tmp_path, vocab).run(tiny_model)
    assert result["description"]["n"] == 2  # the val records only
    assert result["score"] == pytest.approx(1 - result["description"]["bleu4"])


def test_decoded_qa_validation_scores_exact_matches(tmp_path, tiny_model) -> None:
    import json

    from llamo_plugin.errors import ConfigError
    from llamo_plugin.train.config import DecodedEvalConfig
    from llamo_plugin.train.decoded_eval import DecodedEval, _greedy_texts
    from llamo_plugin.train.decoded_eval import _val_rows as val_rows

    question = "How many rings does this molecule contain?"
    from llamo_plugin.tasks import QA_MAX_NEW_TOKENS

    own = _greedy_texts(tiny_model, [("CCO", question, "")], QA_MAX_NEW_TOKENS, 8)[0]
    assert own.strip()
    records = tmp_path / "qa.jsonl"
    rows = [("CCO", f"  {own.upper()}. ", "val"), ("c1ccccc1", own + " surely not", "val")]
    rows.append(("CCO", "ignored: a training record", "train"))
    with records.open("w") as fh:
        for smiles, answer, split in rows:
            rec = {"task": "qa", "smiles": smiles, "instruction": question, "answer": answer}
            fh.write(json.dumps({**rec, "source": "t", "split": split, "qtype": "rings"}) + "\n")
    assert len(val_rows((str(records),), tmp_path, 10)) == 2
    assert [r[0] for r in val_rows((str(records),), tmp_path, 1, spread=True)] == ["CCO"]
    cfg = DecodedEvalConfig(files=(), qa_files=(str(records),), qa_rows=10)
    result = DecodedEval(cfg, tmp_path).run(tiny_model)
    # the first answer is the model's own (case, spaces and a final stop aside), the second not
    assert result["qa"] == {"n": 2, "accuracy": 0.5}
    assert result["score"] == pytest.approx(0.5)
    train_only = tmp_path / "train_only.jsonl"
    train_only.write_text(records.read_text().splitlines()[-1] + "\n")
    with pytest.raises(ConfigError, match="no val records"):
        DecodedEval(DecodedEvalConfig(files=(), qa_files=(str(train_only),)), tmp_path)
