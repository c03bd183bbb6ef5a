"""Tests for llamo_plugin.graph.projector: the multi-level projector of reference §5."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from llamo_plugin.config import ProjectorConfig
from llamo_plugin.graph.projector import MultiLevelProjector

from .helpers import HIDDEN, OUTPUT, rescale_, small_configs

MHA_PARAMS = 361_200
MLP_PARAMS = 85_139_456
PROJECTOR_PARAMS = 85_892_756


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _projector(seed: int = 0, **kwargs: object) -> MultiLevelProjector:
    _, cfg = small_configs(**kwargs)
    torch.manual_seed(seed)
    return rescale_(MultiLevelProjector(cfg), seed).eval()


def _levels(
    batch: int, atoms: list[int], num_levels: int = 6, seed: int = 1
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Random dense levels; padding positions hold garbage (large values), not zeros."""
    gen = torch.Generator().manual_seed(seed)
    width = max(atoms)
    mask = torch.zeros(batch, width, dtype=torch.bool)
    for b, n in enumerate(atoms):
        mask[b, :n] = True
    levels = []
    for _ in range(num_levels):
        h = torch.randn(batch, width, HIDDEN, generator=gen)
        h = torch.where(mask[..., None], h, 100.0 + torch.randn(h.shape, generator=gen))
        levels.append(h)
    return levels, mask


def _motifs(counts: list[int], width: int = 4, seed: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    motifs = (torch.rand(len(counts), width, 73, generator=gen) < 0.2).float()
    mask = torch.zeros(len(counts), width, dtype=torch.bool)
    for b, n in enumerate(counts):
        mask[b, :n] = True
    return motifs, mask


def test_parameter_counts_at_llm_width() -> None:
    with torch.device("meta"):
        proj = MultiLevelProjector(ProjectorConfig())
    assert _count(proj) == PROJECTOR_PARAMS
    assert _count(proj.net) == MLP_PARAMS
    assert _count(proj.motif_cross_attention) == MHA_PARAMS
    assert len(proj.cross_attention) == 1
    assert _count(proj.cross_attention[0]) == MHA_PARAMS


def test_parameter_count_with_per_level_attention() -> None:
    with torch.device("meta"):
        proj = MultiLevelProjector(ProjectorConfig(shared_level_attention=False))
    assert len(proj.cross_attention) == 6
    assert all(_count(m) == MHA_PARAMS for m in proj.cross_attention)
    assert _count(proj) == PROJECTOR_PARAMS + 5 * MHA_PARAMS


def test_parameter_shapes_follow_checkpoint_names() -> None:
    with torch.device("meta"):
        proj = MultiLevelProjector(ProjectorConfig())
    sd = proj.state_dict()
    assert sd["query_tokens"].shape == (6, 4, 300)
    assert sd["motif_query_tokens"].shape == (4, 300)
    assert sd["motif_weight.weight"].shape == (300, 73)
    assert "motif_weight.bias" not in sd
    for prefix in ("cross_attention.0.", "motif_cross_attention."):
        assert sd[prefix + "in_proj_weight"].shape == (900, 300)
        assert sd[prefix + "in_proj_bias"].shape == (900,)
        assert sd[prefix + "out_proj.weight"].shape == (300, 300)
        assert sd[prefix + "out_proj.bias"].shape == (300,)
    assert sd["layer_norm.weight"].shape == (300,)
    linears = sorted(int(k.split(".")[1]) for k in sd if k.startswith("net.") and "weight" in k)
    assert linears == [0, 2, 4, 6, 8, 10]
    assert sd["net.0.weight"].shape == (4096, 300)
    assert sd["net.10.weight"].shape == (4096, 4096)
    assert isinstance(proj.net[1], nn.SiLU)


def test_reference_init() -> None:
    torch.manual_seed(0)
    proj = MultiLevelProjector(ProjectorConfig(input_size=64, output_size=256))
    for lin in [proj.motif_weight, *(m for m in proj.net if isinstance(m, nn.Linear))]:
        assert 0.017 < lin.weight.std().item() < 0.023
        if lin.bias is not None:
            assert torch.count_nonzero(lin.bias) == 0
    for attn in [*proj.cross_attention, proj.motif_cross_attention]:
        assert 0.015 < attn.out_proj.weight.std().item() < 0.025
        assert torch.count_nonzero(attn.out_proj.bias) == 0
        assert torch.count_nonzero(attn.in_proj_bias) == 0
        assert attn.in_proj_weight.std().item() > 0.05  # torch's xavier_uniform is kept
    assert 0.85 < proj.query_tokens.std().item() < 1.15
    assert 0.8 < proj.motif_query_tokens.std().item() < 1.2
    assert torch.equal(proj.layer_norm.weight, torch.ones(64))
    assert torch.equal(proj.layer_norm.bias, torch.zeros(64))


@pytest.mark.parametrize("shared", [True, False])
def test_level_tokens_match_per_level_attention(shared: bool) -> None:
    proj = _projector(shared_level_attention=shared)
    levels, mask = _levels(3, [5, 2, 1])
    with torch.no_grad():
        out = proj.level_tokens(levels, mask)
        expected = []
        for level, keys in enumerate(levels):
            attn = proj.cross_attention[0 if shared else level]
            for b in range(3):
                n = int(mask[b].sum())
                q = proj.query_tokens[level]
                o, _ = attn(q, keys[b, :n], keys[b, :n], need_weights=False)
                expected.append((b, level, o))
    assert out.shape == (3, 24, HIDDEN)
    for b, level, o in expected:
        torch.testing.assert_close(out[b, 4 * level : 4 * level + 4], o, atol=1e-5, rtol=1e-5)


def test_shared_and_per_level_attention_agree_with_copied_weights() -> None:
    shared = _projector(shared_level_attention=True)
    per_level = _projector(seed=5, shared_level_attention=False)
    state = {k: v for k, v in shared.state_dict().items() if not k.startswith("cross_attention")}
    for level in range(6):
        for k, v in shared.cross_attention[0].state_dict().items():
            state[f"cross_attention.{level}.{k}"] = v
    per_level.load_state_dict(state)
    levels, mask = _levels(2, [4, 3])
    motifs, motif_mask = _motifs([2, 0])
    with torch.no_grad():
        a = shared(levels, mask, motifs, motif_mask)
        b = per_level(levels, mask, motifs, motif_mask)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_per_level_attention_uses_different_modules() -> None:
    proj = _projector(shared_level_attention=False)
    assert len(proj.cross_attention) == 6
    assert len({id(m) for m in proj.cross_attention}) == 6
    levels, mask = _levels(2, [4, 3])
    motifs, motif_mask = _motifs([2, 1])
    with torch.no_grad():
        out = proj(levels, mask, motifs, motif_mask)
        before = proj.level_tokens(levels, mask)
        proj.cross_attention[3].out_proj.bias.add_(1.0)
        after = proj.level_tokens(levels, mask)
    assert out.shape == (2, 28, OUTPUT)
    changed = (before - after).abs().amax(dim=(0, 2)) > 0
    assert changed.tolist() == [i // 4 == 3 for i in range(24)]


def test_motif_tokens_raw_queries_without_motifs() -> None:
    proj = _projector()
    motifs, mask = _motifs([3, 0, 1, 0])
    motifs[1] = 1.0  # garbage in a molecule without motifs must be ignored
    with torch.no_grad():
        out = proj.motif_tokens(motifs, mask)
    assert out.shape == (4, 4, HIDDEN)
    assert torch.isfinite(out).all()
    assert torch.equal(out[1], proj.motif_query_tokens)
    assert torch.equal(out[3], proj.motif_query_tokens)
    assert not torch.allclose(out[0], proj.motif_query_tokens)
    assert not torch.allclose(out[2], proj.motif_query_tokens)


def test_motif_tokens_match_unbatched_attention_and_ignore_padding() -> None:
    proj = _projector()
    motifs, mask = _motifs([3, 1])
    with torch.no_grad():
        out = proj.motif_tokens(motifs, mask)
        padded = motifs.clone()
        padded[~mask] = 5.0  # garbage in padded motif slots
        out_padded = proj.motif_tokens(padded, mask)
        for b, n in enumerate([3, 1]):
            t = proj.motif_weight(motifs[b, :n])
            ref, _ = proj.motif_cross_attention(proj.motif_query_tokens, t, t)
            torch.testing.assert_close(out[b], ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_padded, out, atol=1e-6, rtol=1e-6)


def test_folded_motif_tokens_equal_multihead_attention() -> None:
    """The folded form (keys/values through the motif embedding, pooling in motif space)
    computes what nn.MultiheadAttention computes, padding and motif-free molecules included."""
    proj = _projector()
    motifs, mask = _motifs([3, 0, 1, 4, 2])
    motifs[~mask] = 7.0  # garbage in padded slots
    with torch.no_grad():
        want = proj.motif_tokens(motifs, mask)
        got = proj.motif_tokens_folded(motifs, mask)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert torch.equal(got[1], proj.motif_query_tokens)


def test_forward_shape_dtype_and_no_nan() -> None:
    proj = _projector()
    levels, mask = _levels(3, [6, 1, 3])
    motifs, motif_mask = _motifs([0, 0, 2])
    with torch.no_grad():
        out = proj(levels, mask, motifs, motif_mask)
    assert out.shape == (3, 28, OUTPUT)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_padded_atoms_are_ignored() -> None:
    proj = _projector()
    levels, mask = _levels(2, [5, 2])
    motifs, motif_mask = _motifs([1, 2])
    with torch.no_grad():
        out = proj(levels, mask, motifs, motif_mask)
        trimmed = proj([h[1:, :2] for h in levels], mask[1:, :2], motifs[1:], motif_mask[1:])
    torch.testing.assert_close(out[1:], trimmed, atol=1e-5, rtol=1e-5)


def _expected_motif_slot(proj: MultiLevelProjector) -> torch.Tensor:
    return proj.net(proj.layer_norm(proj.motif_query_tokens))


@pytest.mark.parametrize(
    ("order", "motif_slots"), [("motif_first", slice(0, 4)), ("motif_last", slice(24, 28))]
)
def test_motif_slots_without_motifs(order: str, motif_slots: slice) -> None:
    proj = _projector(token_order=order)
    levels, mask = _levels(2, [3, 2])
    motifs, motif_mask = _motifs([0, 2])
    with torch.no_grad():
        out = proj(levels, mask, motifs, motif_mask)
        expected = _expected_motif_slot(proj)
    torch.testing.assert_close(out[0, motif_slots], expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(out[1, motif_slots], expected, atol=1e-3)


def test_token_order_permutes_tokens() -> None:
    first = _projector(token_order="motif_first")
    last = _projector(seed=9, token_order="motif_last")
    last.load_state_dict(first.state_dict())
    levels, mask = _levels(2, [4, 2])
    motifs, motif_mask = _motifs([2, 0])
    with torch.no_grad():
        a = first(levels, mask, motifs, motif_mask)
        b = last(levels, mask, motifs, motif_mask)
    torch.testing.assert_close(b[:, 24:], a[:, :4], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(b[:, :24], a[:, 4:], atol=1e-6, rtol=1e-6)
    assert not torch.allclose(a, b)


def test_level_blocks_sit_after_motif_tokens() -> None:
    proj = _projector()
    levels, mask = _levels(1, [4])
    motifs, motif_mask = _motifs([2])
    with torch.no_grad():
        before = proj(levels, mask, motifs, motif_mask)
        proj.query_tokens[2].add_(1.0)  # only level 2's queries change
        after = proj(levels, mask, motifs, motif_mask)
    changed = (before - after).abs().amax(dim=(0, 2)) > 0
    assert changed.tolist() == [4 + 8 <= i < 4 + 12 for i in range(28)]


def test_layer_norm_is_applied_before_mlp() -> None:
    proj = _projector(mlp_depth=1)
    levels, mask = _levels(1, [3])
    motifs, motif_mask = _motifs([0])
    with torch.no_grad():
        out = proj(levels, mask, motifs, motif_mask)
        x = torch.cat([proj.motif_query_tokens[None], proj.level_tokens(levels, mask)], dim=1)
        ref = proj.net(
            nn.functional.layer_norm(
                x, (HIDDEN,), proj.layer_norm.weight, proj.layer_norm.bias, 1e-5
            )
        )
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    assert len(proj.net) == 1
