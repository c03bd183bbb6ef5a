"""``llamo bench`` runs end to end on a tiny model and reports every required figure."""

from __future__ import annotations

import json

import pytest

from llamo_plugin.bench import bench_smiles, lm_flops_per_token, with_repeats


def test_bench_smiles_distinct_and_repeats() -> None:
    smiles = bench_smiles(40)
    assert len(set(smiles)) == 40
    rows = with_repeats(smiles, 0.3, seed=0)
    assert set(rows) == set(smiles)
    assert abs((len(rows) - 40) / len(rows) - 0.3) < 0.02


def test_flops_count_matmul_weights_only(tiny_model: object) -> None:
    lm = tiny_model.lm  # type: ignore[attr-defined]
    params = sum(p.numel() for p in lm.parameters())
    embed = lm.get_input_embeddings().weight.numel()
    tied = lm.config.tie_word_embeddings
    assert lm_flops_per_token(lm, 0) == pytest.approx(2 * (params if tied else params - embed))
    layers, hidden = lm.config.num_hidden_layers, lm.config.hidden_size
    assert lm_flops_per_token(lm, 10) - lm_flops_per_token(lm, 0) == 40 * layers * hidden


def test_cli_bench_json(capsys: pytest.CaptureFixture) -> None:
    from llamo_plugin.cli.main import main

    assert main(["bench", "--molecules", "6", "--max-new-tokens", "4", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    for key in (
        "speedup_vs_reference",
        "speedup_vs_reference_with_repeats",
        "cache_hit_mol_per_s",
        "graph_encoder_mol_per_s",
        "decode_efficiency",
        "identical_to_reference",
    ):
        assert isinstance(result[key], float) and result[key] >= 0, key
    assert result["molecules"] == 6 and result["decode"]["max_new_tokens"] == 4
    assert result["workers"] >= 1 and result["threads_per_worker"] >= 1
    assert len(result["pipeline_runs_mol_per_s"]) == 3
    assert result["pipeline_in_process_mol_per_s"] > 0
    assert 0 <= result["identical_to_reference"] <= 1
