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
    # The figures are consistent with one another, not just present.
    approx = pytest.approx
    ref = result["reference_mol_per_s"]
    runs = result["pipeline_runs_mol_per_s"]
    assert len(runs) == 3 and result["pipeline_mol_per_s"] == approx(sorted(runs)[1])  # median
    assert result["speedup_vs_reference"] == approx(result["pipeline_mol_per_s"] / ref)
    assert result["speedup_vs_reference_in_process"] == approx(
        result["pipeline_in_process_mol_per_s"] / ref
    )
    assert result["speedup_vs_reference_with_repeats"] == approx(
        result["pipeline_with_repeats_rows_per_s"] / ref
    )
    roofline = result["roofline_gflops"] * 1e9
    assert result["roofline_gflops"] == approx(max(result["roofline_gflops_measured"]))
    graph_flops = result["graph_encoder_mflop_per_mol"] * 1e6
    assert result["graph_encoder_efficiency"] == approx(
        graph_flops * result["graph_encoder_mol_per_s"] / roofline
    )
    lm_flops = result["lm_mflop_per_mol"] * 1e6
    assert lm_flops > graph_flops > 0  # the LM does most of the work per molecule
    assert result["pipeline_efficiency"] == approx(
        result["pipeline_mol_per_s"] * (graph_flops + lm_flops) / roofline
    )
    assert 0 < result["decode_efficiency"] < 1 and 0 < result["graph_encoder_efficiency"] < 2
    # The pipeline gives the reference path's answers (greedy, the same model), and lists
    # every row where it does not.
    assert result["identical_to_reference"] == 1.0 and result["differences"] == []
    assert result["cache_hit_mol_per_s"] > result["pipeline_with_repeats_rows_per_s"]
    assert result["roofline_gflops"] == max(result["roofline_gflops_measured"])
    assert len(result["roofline_gflops_measured"]) == 2


def test_cli_bench_retrieval_prompts(capsys: pytest.CaptureFixture) -> None:
    """``--retrieval``: the same comparison on retrieval-augmented description prompts."""
    from llamo_plugin.bench import bench_smiles
    from llamo_plugin.cli.main import main
    from llamo_plugin.registry import load_model_or_default
    from llamo_plugin.tasks import DESCRIPTION

    args = ["bench", "--molecules", "3", "--max-new-tokens", "2", "--workers", "1", "--json"]
    assert main([*args, "--retrieval"]) == 0
    result = json.loads(capsys.readouterr().out)
    model = load_model_or_default(None)
    plain = [
        len(model.prepare(s, DESCRIPTION.default_instruction).prompt.input_ids)
        for s in bench_smiles(3)
    ]
    assert result["retrieval"] is True
    assert result["mean_prompt_tokens"] > sum(plain) / 3 + 100  # 2 neighbours in each prompt
    assert result["identical_to_reference"] == 1.0  # the same prompts on both paths


def test_graph_encoder_flops_cover_the_gin_and_projector_gemms(tiny_model: object) -> None:
    """The counted FLOPs include at least the GIN MLPs over every colour class and the
    projector MLP over every graph token, and not much more (attention products are small)."""
    from llamo_plugin.bench import graph_encoder_flops
    from llamo_plugin.chem.featurize import featurize
    from llamo_plugin.chem.smiles import parse_smiles
    from llamo_plugin.graph.batching import collate_graphs
    from llamo_plugin.graph.refinement import refine_batch

    graphs = [featurize(parse_smiles(s)) for s in bench_smiles(12)]
    config = tiny_model.config  # type: ignore[attr-defined]
    d, layers = config.graph.hidden_size, config.graph.num_layers
    p = config.projector
    tokens = p.num_levels * p.queries_per_level + p.num_motif_queries
    net = 2 * p.input_size * p.output_size + (p.mlp_depth - 1) * 2 * p.output_size**2
    # One call of all 12 (small molecules: one bucket), refined as the encoder refines it.
    classes = refine_batch(collate_graphs(graphs), layers)
    rows = [len(c) for c in classes.parents]  # classes at levels 1..L
    # Each linear (d -> 2d or 2d -> d) costs 4 d^2 per row: layer 1's first linear runs on
    # the atom classes and distinct messages, layers 2..L's on their classes; the second
    # linears of layers 1..L-1 on their classes (the last one is folded into the projector).
    first_rows = len(classes.atom_classes) + len(classes.message_sources[0]) + sum(rows[1:])
    gin = (first_rows + sum(rows[:-1])) * 4 * d * d
    counted = graph_encoder_flops(tiny_model, graphs, 12)
    assert gin + len(graphs) * tokens * net <= counted <= 1.5 * (gin + len(graphs) * tokens * net)
    # Molecule by molecule nothing is shared between molecules: more FLOPs per molecule.
    assert graph_encoder_flops(tiny_model, graphs, 1) > counted


def test_decode_efficiency_is_over_the_given_roofline() -> None:
    from llamo_plugin.bench import _decode_efficiency

    result = _decode_efficiency({"1": 2e9, "8": 6e9, "64": 5e9}, roofline=10e9)
    assert result["efficiency_by_batch_size"] == pytest.approx({"1": 0.2, "8": 0.6, "64": 0.5})
    assert result["best_batch_size"] == 8 and result["decode_efficiency"] == pytest.approx(0.6)
