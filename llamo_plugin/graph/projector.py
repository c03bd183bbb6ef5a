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
        """``[B, num_levels * queries_per_level, input_size]`` from dense levels ``[B, A, d]``
        (padding positions are ignored); see :meth:`level_tokens_flat`."""
        batch, atoms = node_mask.shape
        dense_index = torch.nonzero(node_mask.reshape(-1), as_tuple=False).squeeze(1)
        flat = [h.reshape(batch * atoms, -1).index_select(0, dense_index) for h in levels]
        return self.level_tokens_flat(flat, dense_index, node_mask)

    def _level_attention_weights(self) -> tuple[torch.Tensor, ...]:
        """Per-level in/out projections stacked over levels: ``w_in [L', 3d, d]``,
        ``b_in [L', 3d]``, ``w_out [L', d, d]``, ``b_out [L', d]`` (``L'`` = 1 when shared)."""
        mods = self.cross_attention
        return (
            torch.stack([m.in_proj_weight for m in mods]),
            torch.stack([m.in_proj_bias for m in mods]),
            torch.stack([m.out_proj.weight for m in mods]),
            torch.stack([m.out_proj.bias for m in mods]),
        )

    def folded_level_queries(self) -> torch.Tensor:
        """Each level's queries folded into the atom space: ``[L, H * q, d]``.

        ``(W_k h + b_k) . q = h . (W_k^T q) + const`` and softmax ignores the constant, so the
        attention scores of an atom state ``h`` are ``h @ folded[l].T`` (head-major columns),
        already scaled by ``head_dim ** -0.5``.
        """
        c = self.config
        n_levels, d, heads, n_q = c.num_levels, c.input_size, c.num_heads, c.queries_per_level
        head_dim = d // heads
        w_in, b_in, _, _ = self._level_attention_weights()  # leading dim L' (1 or L)
        w_q, w_k = w_in[:, :d], w_in[:, d : 2 * d]  # [L', d, d]
        b_q = b_in[:, :d]
        q = torch.matmul(self.query_tokens, w_q.transpose(1, 2)) + b_q[:, None]  # [L, q, d]
        qh = q.view(n_levels, n_q, heads, head_dim).transpose(1, 2)  # [L, H, q, hd]
        w_kh = w_k.view(-1, heads, head_dim, d)  # [L', H, hd, d]
        folded = torch.matmul(qh * head_dim**-0.5, w_kh)  # [L, H, q, d]
        return folded.reshape(n_levels, heads * n_q, d)

    def level_value_heads(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Each level's value projection split by head: ``w [L, H, hd, d]``, ``b [L, H, hd]``
        (a broadcast view of one module's weights when the attention is shared)."""
        c = self.config
        d, heads = c.input_size, c.num_heads
        w_in, b_in, _, _ = self._level_attention_weights()
        w_vh = w_in[:, 2 * d :].reshape(-1, heads, d // heads, d)
        b_vh = b_in[:, 2 * d :].reshape(-1, heads, d // heads)
        shape = (c.num_levels, *w_vh.shape[1:])
        return w_vh.expand(shape), b_vh.expand(shape[:3])

    def level_tokens_from_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """Attention outputs from the probability-weighted atom averages.

        ``sum_a p_a (W_v h_a + b_v) = W_v (sum_a p_a h_a) + b_v`` because the weights sum to
        1, so atoms are averaged first (``pooled``) and projected after.

        Shapes: pooled ``[L, B, H * q, d]`` (head-major) -> ``[B, L * q, d]``.
        """
        batch = pooled.shape[1]
        w_vh, b_vh = self.level_value_heads()  # [L, H, hd, d], [L, H, hd]
        values = self.level_values(pooled, w_vh, b_vh)  # [L, H, B*q, hd]
        return self.level_tokens_from_values(self.concat_heads(values, batch))

    def level_values(
        self, pooled: torch.Tensor, w_vh: torch.Tensor, b_vh: torch.Tensor
    ) -> torch.Tensor:
        """Each head's value projection of its pooled rows, as one matmul per level and head
        over all molecules (``B * q`` rows, not ``q``).

        Shapes: pooled ``[L, B, H * q, e]`` (head-major), w_vh ``[L, H, hd, e]``, b_vh
        ``[L, H, hd]`` -> ``[L, H, B * q, hd]``.
        """
        n_levels, batch, _, width = pooled.shape
        heads = w_vh.shape[1]
        pooled = pooled.view(n_levels, batch, heads, -1, width).transpose(1, 2)
        pooled = pooled.reshape(n_levels, heads, -1, width)  # [L, H, B*q, e]
        return torch.matmul(pooled, w_vh.transpose(-1, -2)) + b_vh[:, :, None]

    @staticmethod
    def concat_heads(values: torch.Tensor, batch: int) -> torch.Tensor:
        """``[L, H, B * q, hd]`` -> ``[B, L, q, H * hd]`` (heads concatenated, as in
        ``nn.MultiheadAttention``)."""
        n_levels, heads, rows, head_dim = values.shape
        values = values.view(n_levels, heads, batch, rows // batch, head_dim)
        return values.permute(2, 0, 3, 1, 4).reshape(batch, n_levels, -1, heads * head_dim)

    def level_tokens_from_values(self, values: torch.Tensor) -> torch.Tensor:
        """The attention's output projection on the heads' values (concatenated).

        Shapes: values ``[B, L, q, d]`` -> level tokens ``[B, L * q, d]`` (level-major).
        """
        batch, n_levels, n_q, d = values.shape
        _, _, w_out, b_out = self._level_attention_weights()  # [L', d, d], [L', d]
        if w_out.shape[0] == 1:  # shared attention: one matmul over every level's values
            out = torch.matmul(values.reshape(-1, d), w_out[0].t()) + b_out[0]
            return out.view(batch, n_levels * n_q, d)
        per_level = values.transpose(0, 1).reshape(n_levels, batch * n_q, d)
        out = torch.matmul(per_level, w_out.transpose(1, 2)) + b_out[:, None]  # [L, B*q, d]
        return out.view(n_levels, batch, n_q, d).transpose(0, 1).reshape(batch, -1, d)

    def level_tokens_flat(
        self, levels: list[torch.Tensor], node_dense_index: torch.Tensor, node_mask: torch.Tensor
    ) -> torch.Tensor:
        """Per-level cross-attention of the level queries to the molecule's atoms.

        Mathematically the same as ``nn.MultiheadAttention`` with the same weights, rearranged
        so that no per-atom key or value projection is computed (the attention has only
        ``queries_per_level`` queries but ``N`` atoms): see :meth:`folded_level_queries` and
        :meth:`level_tokens_from_pooled`.

        Shapes:
            levels: ``num_levels`` tensors ``[N, d]``; node_dense_index ``[N]`` (into
            ``B * A``); node_mask ``[B, A]`` -> ``[B, num_levels * queries_per_level, d]``
        """
        batch, atoms = node_mask.shape
        folded = self.folded_level_queries()  # [L, Hq, d]
        n_levels, hq, d = folded.shape
        h = torch.stack(levels, dim=0)  # [L, N, d]
        scores = torch.matmul(h, folded.transpose(1, 2))  # [L, N, Hq]
        num_nodes = h.shape[1]
        flat = torch.cat([scores.permute(1, 0, 2), h.permute(1, 0, 2)], dim=2)  # [N, L, Hq+d]
        flat = flat.reshape(num_nodes, n_levels * (hq + d))
        dense = flat.new_zeros(batch * atoms, flat.shape[1]).index_copy(0, node_dense_index, flat)
        dense = dense.view(batch, atoms, n_levels, hq + d).permute(2, 0, 1, 3)
        s_dense, h_dense = dense[..., :hq], dense[..., hq:]  # [L, B, A, *]
        s_dense = s_dense.masked_fill(~node_mask[None, :, :, None], float("-inf"))
        probs = torch.softmax(s_dense, dim=2)  # over atoms
        pooled = torch.matmul(probs.transpose(2, 3), h_dense)  # [L, B, Hq, d]
        return self.level_tokens_from_pooled(pooled)

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

    def motif_tokens_folded(self, motifs: torch.Tensor, motif_mask: torch.Tensor) -> torch.Tensor:
        """:meth:`motif_tokens` rearranged so that nothing is projected per motif.

        The motif values are ``W_m x`` (no bias) for the 73-dim motif vectors ``x``, so the
        key and value projections fold through ``W_m``: scores are
        ``x . ((W_k W_m)^T q) + const`` (softmax ignores the constant) and outputs are
        ``(W_v W_m) (sum_j p_j x_j) + b_v``. Same weights and result, in the 73-dim motif
        space instead of ``M`` projections to ``[input_size, 2 * input_size]``.

        Shapes: motifs ``[B, M, 73]``, motif_mask ``[B, M]`` -> ``[B, num_motif_queries, d]``.
        """
        attn = self.motif_cross_attention
        d, heads = attn.embed_dim, attn.num_heads
        head_dim = d // heads
        n_q = self.motif_query_tokens.shape[0]
        batch = motifs.shape[0]
        w_m = self.motif_weight.weight  # [d, 73]
        w_q, w_k, w_v = (
            attn.in_proj_weight[:d],
            attn.in_proj_weight[d : 2 * d],
            attn.in_proj_weight[2 * d :],
        )
        b_q, b_v = attn.in_proj_bias[:d], attn.in_proj_bias[2 * d :]
        q = torch.matmul(self.motif_query_tokens, w_q.t()) + b_q  # [m, d]
        qh = q.view(n_q, heads, head_dim).transpose(0, 1)  # [H, m, hd]
        w_km = torch.matmul(w_k, w_m).view(heads, head_dim, -1)  # [H, hd, 73]
        folded = torch.matmul(qh * head_dim**-0.5, w_km).reshape(heads * n_q, -1)  # [H*m, 73]
        has_motifs = motif_mask.any(dim=1)  # [B]
        first = torch.zeros_like(motif_mask)
        first[:, 0] = True
        safe_mask = motif_mask | (first & ~has_motifs[:, None])
        x = motifs.to(w_m.dtype)
        scores = torch.matmul(x, folded.t())  # [B, M, H*m]
        scores = scores.masked_fill(~safe_mask[:, :, None], float("-inf"))
        probs = torch.softmax(scores, dim=1)
        pooled = torch.matmul(probs.transpose(1, 2), x)  # [B, H*m, 73]
        pooled = pooled.view(batch, heads, n_q, -1)
        w_vm = torch.matmul(w_v, w_m).view(heads, head_dim, -1)  # [H, hd, 73]
        out = torch.matmul(pooled, w_vm.transpose(1, 2)) + b_v.view(heads, 1, head_dim)
        out = out.transpose(1, 2).reshape(batch, n_q, d)  # heads concatenated
        out = attn.out_proj(out)
        queries = self.motif_query_tokens.expand(batch, -1, -1)
        return torch.where(has_motifs[:, None, None], out, queries)

    def forward(
        self,
        levels: list[torch.Tensor],
        node_mask: torch.Tensor,
        motifs: torch.Tensor,
        motif_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Dense levels ``[B, A, d]`` (tests, tools); the graph tokenizer uses
        :meth:`forward_flat`."""
        batch, atoms = node_mask.shape
        dense_index = torch.nonzero(node_mask.reshape(-1), as_tuple=False).squeeze(1)
        flat = [h.reshape(batch * atoms, -1).index_select(0, dense_index) for h in levels]
        return self.forward_flat(flat, dense_index, node_mask, motifs, motif_mask)

    def forward_flat(
        self,
        levels: list[torch.Tensor],
        node_dense_index: torch.Tensor,
        node_mask: torch.Tensor,
        motifs: torch.Tensor,
        motif_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Graph tokens ``[B, T, D]`` from flat levels ``[N, d]`` (see
        :meth:`level_tokens_flat`)."""
        level = self.level_tokens_flat(levels, node_dense_index, node_mask)
        return self.tokens_from_parts(level, self.motif_tokens(motifs, motif_mask))

    def tokens_from_parts(self, level: torch.Tensor, motif: torch.Tensor) -> torch.Tensor:
        """Concatenate level ``[B, L*q, d]`` and motif ``[B, m, d]`` tokens in the configured
        order, layer-normalise in fp32 and map to the LLM width: ``[B, T, D]``."""
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
        batch, num_tokens, width = tokens.shape
        # 2-D rows: each linear exports as one Gemm with its bias (no MatMul + Add).
        out = self.net(tokens.reshape(batch * num_tokens, width).to(self.net[0].weight.dtype))
        return out.view(batch, num_tokens, -1)
