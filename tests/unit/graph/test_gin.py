"""Tests for llamo_plugin.graph.gin: the 5 x 300 GIN of reference §3 (PyG MessagePassing)."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import MessagePassing

from llamo_plugin.checkpoint.convert_llamo import map_official_key
from llamo_plugin.config import GraphEncoderConfig
from llamo_plugin.graph.data import collate_pyg
from llamo_plugin.graph.gin import FeatureEmbedding, GINConv, GINEncoder
from tests.helpers.official_layout import official_layout

from .helpers import BIG_SMILES, HIDDEN, batch_inputs, graphs, rescale_


def _encoder(seed: int = 0, **kwargs: int) -> GINEncoder:
    torch.manual_seed(seed)
    enc = GINEncoder(GraphEncoderConfig(hidden_size=HIDDEN, **kwargs))
    return rescale_(enc, seed).eval()


def _inputs(smiles: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    t = batch_inputs(graphs(smiles))
    return t["atom_features"], t["edge_index"], t["bond_features"]


def test_parameter_count_matches_reference() -> None:
    with torch.device("meta"):
        enc = GINEncoder(GraphEncoderConfig())
    assert sum(p.numel() for p in enc.parameters()) == 1_885_205


def test_state_dict_keys_follow_checkpoint_names() -> None:
    with torch.device("meta"):
        enc = GINEncoder(GraphEncoderConfig())
    sd = enc.state_dict()
    assert len(sd) == 99  # reference §11: "GNN 99" keys
    for col, size in enumerate((119, 5, 12, 12, 10, 6, 6, 2, 2)):
        assert sd[f"atom_encoder.atom_embedding_list.{col}.weight"].shape == (size, 300)
    for layer in range(5):
        p = f"gnns.{layer}."
        assert sd[p + "eps"].shape == (1,)
        assert sd[p + "mlp.0.weight"].shape == (600, 300)
        assert sd[p + "mlp.0.bias"].shape == (600,)
        assert sd[p + "mlp.1.running_var"].shape == (600,)
        assert sd[p + "mlp.1.num_batches_tracked"].shape == ()
        assert sd[p + "mlp.3.weight"].shape == (300, 600)
        for col, size in enumerate((5, 6, 2)):
            assert sd[p + f"bond_encoder.bond_embedding_list.{col}.weight"].shape == (size, 300)
        assert sd[f"batch_norms.{layer}.running_mean"].shape == (300,)


def test_state_dict_keys_are_the_converters_targets() -> None:
    """Our GIN keys are exactly where the converter puts the official GNN keys (the
    MessagePassing base class adds no parameter or buffer)."""
    with torch.device("meta"):
        enc = GINEncoder(GraphEncoderConfig())
    targets = set()
    for name in official_layout():
        hit = map_official_key(name)
        if hit is not None and hit[1].startswith("encoder."):
            targets.add(hit[1].removeprefix("encoder."))
    assert len(targets) == 99
    assert set(enc.state_dict()) == targets


def test_layers_are_pyg_message_passing() -> None:
    enc = _encoder()
    for layer in enc.gnns:
        assert isinstance(layer, GINConv) and isinstance(layer, MessagePassing)
        assert layer.aggr == "add" and layer.flow == "source_to_target"


def test_reference_init() -> None:
    torch.manual_seed(0)
    enc = GINEncoder(GraphEncoderConfig(hidden_size=64))
    for layer in enc.gnns:
        for lin in (layer.mlp[0], layer.mlp[3]):
            assert 0.015 < lin.weight.std().item() < 0.025
            assert torch.count_nonzero(lin.bias) == 0
        assert layer.eps.item() == 0.0
    emb = enc.atom_encoder.atom_embedding_list[0].weight
    assert 0.015 < emb.std().item() < 0.025


def test_feature_embedding_sums_columns() -> None:
    torch.manual_seed(0)
    emb = FeatureEmbedding((3, 4), 5, "tables")
    x = torch.tensor([[0, 3], [2, 1]])
    expected = emb.tables[0].weight[x[:, 0]] + emb.tables[1].weight[x[:, 1]]
    torch.testing.assert_close(emb(x), expected)


@pytest.mark.parametrize("num_layers", [5, 2])
def test_returns_all_levels(num_layers: int) -> None:
    enc = _encoder(num_layers=num_layers)
    x, ei, bf = _inputs(["CC(=O)Oc1ccccc1C(=O)O", "[Na+].[Cl-]"])
    with torch.no_grad():
        levels = enc(x, ei, bf)
    assert len(levels) == num_layers + 1
    for h in levels:
        assert h.shape == (x.shape[0], HIDDEN)
        assert h.dtype == torch.float32
        assert torch.isfinite(h).all()
    # level 0 is the atom embedding
    torch.testing.assert_close(levels[0], enc.atom_encoder(x))


def test_relu_on_all_but_last_level() -> None:
    enc = _encoder()
    with torch.no_grad():
        levels = enc(*_inputs(["CC(=O)Oc1ccccc1C(=O)O", "CCO", "c1ccncc1", "C"]))
    assert (levels[0] < 0).any()  # embeddings are not rectified
    for h in levels[1:-1]:
        assert (h >= 0).all()
    assert (levels[-1] < 0).any()


def _reference_layer(
    layer: GINConv, h: torch.Tensor, edge_index: torch.Tensor, bond: torch.Tensor
) -> torch.Tensor:
    """m_i = sum over edges j->i of ReLU(h_j + BondEmb(e_ji)); out = MLP((1 + eps) h_i + m_i)."""
    bond_emb = layer.bond_encoder(bond)
    agg = torch.zeros_like(h)
    for e in range(edge_index.shape[1]):
        src, dst = int(edge_index[0, e]), int(edge_index[1, e])
        agg[dst] += torch.relu(h[src] + bond_emb[e])
    return layer.mlp((1 + layer.eps) * h + agg)


def test_layers_match_naive_message_passing() -> None:
    enc = _encoder()
    x, ei, bf = _inputs(["CC(=O)Oc1ccccc1C(=O)O", "C=CC#N", "[He]"])
    with torch.no_grad():
        levels = enc(x, ei, bf)
        h = levels[0]
        for i, (layer, norm) in enumerate(zip(enc.gnns, enc.batch_norms, strict=True)):
            h = norm(_reference_layer(layer, h, ei, bf))
            if i < len(enc.gnns) - 1:
                h = torch.relu(h)
            torch.testing.assert_close(levels[i + 1], h, atol=1e-5, rtol=1e-5)


def _index_add_layer(
    layer: GINConv, h: torch.Tensor, edge_index: torch.Tensor, bond: torch.Tensor
) -> torch.Tensor:
    """The layer as written before torch_geometric (gather, ``index_add``, MLP)."""
    messages = torch.relu(h.index_select(0, edge_index[0]) + layer.bond_encoder(bond))
    aggregated = h.new_zeros(h.shape, dtype=messages.dtype).index_add(0, edge_index[1], messages)
    return layer.mlp((1 + layer.eps) * h + aggregated)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_message_passing_equals_index_add_on_random_graphs(seed: int) -> None:
    """Random multigraphs (self-loop edges, isolated and high-degree nodes, unsorted
    edges): the MessagePassing layer equals the index_add formulation, values and
    gradients, in training mode (batch statistics) and in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    enc = _encoder(seed)
    layer = enc.gnns[seed % len(enc.gnns)]
    n, e = 40 + 10 * seed, 150
    edge_index = torch.randint(0, n - 5, (2, e), generator=gen)  # the last 5 nodes isolated
    edge_index[1, :20] = 0  # one node with a large in-degree
    bond = torch.stack([torch.randint(0, v, (e,), generator=gen) for v in (5, 6, 2)], dim=1)
    for training in (True, False):
        layer.train(training)
        h = torch.randn(n, HIDDEN, generator=gen, requires_grad=True)
        got = layer(h, edge_index, bond)
        (grad_got,) = torch.autograd.grad(got.square().sum(), h)
        want = _index_add_layer(layer, h, edge_index, bond)
        (grad_want,) = torch.autograd.grad(want.square().sum(), h)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(grad_got, grad_want, atol=1e-5, rtol=1e-5)
    layer.eval()


def test_message_passing_equals_index_add_under_bf16_autocast() -> None:
    """Training runs under bf16 autocast, where the node states are bf16 and the bond
    embeddings fp32: the layer still matches the index_add formulation bit for bit."""
    enc = _encoder().train()
    batch = collate_pyg(graphs(["CC(=O)Oc1ccccc1C(=O)O", "CCO", "c1ccncc1"]))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = enc.atom_encoder(batch.x)
        for layer, norm in zip(enc.gnns, enc.batch_norms, strict=True):
            got = layer(h, batch.edge_index, batch.edge_attr)
            want = _index_add_layer(layer, h, batch.edge_index, batch.edge_attr)
            assert got.dtype == want.dtype and torch.equal(got, want)
            h = torch.relu(norm(want))
        assert h.dtype == torch.bfloat16  # the later layers did see bf16 states


def test_encoder_on_pyg_batch_tensors() -> None:
    """The encoder takes the PyG batch's tensors and gives what the numpy collation gives."""
    enc = _encoder()
    smiles = ["CC(=O)Oc1ccccc1C(=O)O", "[Na+].[Cl-]", "C1CC1N"]
    batch = collate_pyg(graphs(smiles))
    with torch.no_grad():
        via_pyg = enc(batch.x, batch.edge_index, batch.edge_attr)
        via_numpy = enc(*_inputs(smiles))
    for a, b in zip(via_pyg, via_numpy, strict=True):
        assert torch.equal(a, b)


def test_message_flows_from_source_to_target_without_self_loops() -> None:
    enc = _encoder()
    layer = enc.gnns[0]
    x = torch.tensor([[5, 0, 4, 5, 3, 0, 2, 0, 0], [7, 0, 2, 5, 1, 0, 2, 0, 0]])
    h = enc.atom_encoder(x)
    one_way = torch.tensor([[0], [1]])  # a single directed edge 0 -> 1
    bond = torch.tensor([[0, 0, 0]])
    none = torch.zeros((2, 0), dtype=torch.int64)
    with torch.no_grad():
        directed = layer(h, one_way, bond)
        isolated = layer(h, none, torch.zeros((0, 3), dtype=torch.int64))
        alone = layer.mlp((1 + layer.eps) * h)
    torch.testing.assert_close(isolated, alone)  # no self-loop message
    torch.testing.assert_close(directed[0], isolated[0])  # the source receives nothing
    assert not torch.allclose(directed[1], isolated[1])  # the target does


def test_molecules_do_not_interact() -> None:
    enc = _encoder()
    with torch.no_grad():
        together = enc(*_inputs(["CCO", BIG_SMILES]))
        alone = enc(*_inputs(["CCO"]))
    for a, b in zip(together, alone, strict=True):
        torch.testing.assert_close(a[:3], b, atol=1e-5, rtol=1e-5)


def test_eval_is_deterministic() -> None:
    enc = _encoder()
    inputs = _inputs(["CC(C)Cc1ccc(C(C)C(=O)O)cc1"])
    with torch.no_grad():
        first = enc(*inputs)
        second = enc(*inputs)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)
