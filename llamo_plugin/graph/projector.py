"""Stage 3: LLaMo's multi-level graph projector (``MLPMultilevelProjector``; reference §5).

For each of the ``L = num_levels`` node-state levels, ``q = queries_per_level`` learnable
queries cross-attend to that level's atoms; ``num_motif_queries`` motif queries attend to the
molecule's functional-group vectors (or are used raw when there are none). The tokens are
concatenated (motif first, as in the released code; ``token_order="motif_last"`` gives the
paper's order), layer-normalised in fp32 and mapped by a SiLU MLP to the LLM width.

Attribute names follow the original (``query_tokens``, ``cross_attention``,
``motif_query_tokens``, ``motif_weight``, ``motif_cross_attention``, ``layer_norm``, ``net``).
With ``shared_level_attention`` (the released code) ``cross_attention`` holds one module used by
every level; otherwise one per level (the paper's ``Attn^(l)``).
"""

from __future__ import annotations

import torch
from torch import nn

from llamo_plugin.config import ProjectorConfig


class MultiLevelProjector(nn.Module):
    """Graph tokens from every GIN level plus functional-group motifs.

    Shapes (B molecules, A = max atoms, M = max motifs, D = output_size):
        levels: ``num_levels`` tensors ``[B, A, input_size]`` (dense node states)
        node_mask: ``[B, A]`` bool, True at real atoms
        motifs: ``[B, M, motif_feature_size]`` float; motif_mask: ``[B, M]`` bool
        -> ``[B, num_graph_tokens, D]`` float32
    """

    def __init__(self, config: ProjectorConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.query_tokens = nn.Parameter(
            torch.randn(c.num_levels, c.queries_per_level, c.input_size)
        )
        n_attn = 1 if c.shared_level_attention else c.num_levels
        self.cross_attention = nn.ModuleList(
            nn.MultiheadAttention(c.input_size, c.num_heads, batch_first=True)
            for _ in range(n_attn)
        )
        self.motif_query_tokens = nn.Parameter(torch.randn(c.num_motif_queries, c.input_size))
        self.motif_weight = nn.Linear(c.motif_feature_size, c.input_size, bias=False)
        self.motif_cross_attention = nn.MultiheadAttention(
            c.input_size, c.num_heads, batch_first=True
        )
        self.layer_norm = nn.LayerNorm(c.input_size, eps=c.layer_norm_eps)
        layers: list[nn.Module] = [nn.Linear(c.input_size, c.output_size)]
        for _ in range(c.mlp_depth - 1):
            layers += [nn.SiLU(), nn.Linear(c.output_size, c.output_size)]
        self.net = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The original's effective init: N(0, 0.02) linears, randn queries, default MHA in-proj."""
        for module in [self.motif_weight, *self.net]:
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for attn in [*self.cross_attention, self.motif_cross_attention]:
            nn.init.normal_(attn.out_proj.weight, std=0.02)
            nn.init.zeros_(attn.out_proj.bias)

    def level_tokens(self, levels: list[torch.Tensor], node_mask: torch.Tensor) -> torch.Tensor:
        """``[B, num_levels * queries_per_level, input_size]``: per-level cross-attention."""
        c = self.config
        batch = node_mask.shape[0]
        ignore = ~node_mask  # key_padding_mask: True = ignore
        if c.shared_level_attention:
            # All levels through the one shared module in a single call: [L*B, A, d].
            keys = torch.stack(levels, dim=0).flatten(0, 1)
            queries = self.query_tokens[:, None].expand(-1, batch, -1, -1).flatten(0, 1)
            out, _ = self.cross_attention[0](
                queries,
                keys,
                keys,
                key_padding_mask=ignore.repeat(c.num_levels, 1),
                need_weights=False,
            )
            out = out.unflatten(0, (c.num_levels, batch))  # [L, B, q, d]
        else:
            outs = []
            for level, (attn, keys) in enumerate(zip(self.cross_attention, levels, strict=True)):
                queries = self.query_tokens[level].expand(batch, -1, -1)
                o, _ = attn(queries, keys, keys, key_padding_mask=ignore, need_weights=False)
                outs.append(o)
            out = torch.stack(outs, dim=0)
        return out.permute(1, 0, 2, 3).flatten(1, 2)  # [B, L*q, d]

    def motif_tokens(self, motifs: torch.Tensor, motif_mask: torch.Tensor) -> torch.Tensor:
        """``[B, num_motif_queries, input_size]``; raw queries where a molecule has no motifs."""
        batch = motifs.shape[0]
        has_motifs = motif_mask.any(dim=1)  # [B]
        # A molecule without motifs attends to one dummy key (result discarded below), so that
        # no attention row is fully masked (which would give NaN).
        first = torch.zeros_like(motif_mask)
        first[:, 0] = True
        safe_mask = motif_mask | (first & ~has_motifs[:, None])
        values = self.motif_weight(motifs.to(self.motif_weight.weight.dtype))  # [B, M, d]
        queries = self.motif_query_tokens.expand(batch, -1, -1)
        out, _ = self.motif_cross_attention(
            queries, values, values, key_padding_mask=~safe_mask, need_weights=False
        )
        return torch.where(has_motifs[:, None, None], out, queries)

    def forward(
        self,
        levels: list[torch.Tensor],
        node_mask: torch.Tensor,
        motifs: torch.Tensor,
        motif_mask: torch.Tensor,
    ) -> torch.Tensor:
        level = self.level_tokens(levels, node_mask)
        motif = self.motif_tokens(motifs, motif_mask)
        if self.config.token_order == "motif_first":
            tokens = torch.cat([motif, level], dim=1)
        else:
            tokens = torch.cat([level, motif], dim=1)
        tokens = nn.functional.layer_norm(
            tokens.float(),
            self.layer_norm.normalized_shape,
            self.layer_norm.weight.float(),
            self.layer_norm.bias.float(),
            self.layer_norm.eps,
        )
        return self.net(tokens.to(self.net[0].weight.dtype))
