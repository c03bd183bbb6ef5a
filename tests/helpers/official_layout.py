"""The official LLaMo checkpoint's key layout, transcribed from the spec table (reference §11).

Written from the table alone, not from our modules (deriving it from them would make the
converter tests circular). Sizes are parameters so the same layout serves the 7B shape check
and tiny synthetic checkpoints.
"""

from __future__ import annotations

import torch

#: OGB vocabulary sizes of the atom (9) and bond (3) embedding tables (§2, §11).
ATOM_VOCAB = (119, 5, 12, 12, 10, 6, 6, 2, 2)
BOND_VOCAB = (5, 6, 2)
GNN_LAYERS = 5
GNN_DIM = 300
LEVELS = 6
QUERIES = 4
MOTIF_DIM = 73
MLP_LINEARS = (0, 2, 4, 6, 8, 10)

Layout = dict[str, tuple[tuple[int, ...], torch.dtype]]


def official_layout(
    num_llm_layers: int = 32,
    hidden: int = 4096,
    intermediate: int = 11008,
    vocab: int = 32001,
    lora_r: int = 8,
    proj_out: int = 4096,
) -> Layout:
    """Every ``mllm.``-prefixed key of the official checkpoint -> (shape, dtype).

    GNN and projector tensors are fp32, LLM and LoRA tensors bf16, BatchNorm
    ``num_batches_tracked`` int64 scalars. 565 keys at the 7B defaults.
    """
    f32, bf16, i64 = torch.float32, torch.bfloat16, torch.int64
    out: Layout = {}

    def bn(prefix: str, size: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            out[f"{prefix}.{name}"] = ((size,), f32)
        out[f"{prefix}.num_batches_tracked"] = ((), i64)

    def mha(prefix: str) -> None:
        out[f"{prefix}.in_proj_weight"] = ((3 * GNN_DIM, GNN_DIM), f32)
        out[f"{prefix}.in_proj_bias"] = ((3 * GNN_DIM,), f32)
        out[f"{prefix}.out_proj.weight"] = ((GNN_DIM, GNN_DIM), f32)
        out[f"{prefix}.out_proj.bias"] = ((GNN_DIM,), f32)

    gnn = "mllm.graph_model.molecule_node_model"
    for i, size in enumerate(ATOM_VOCAB):
        out[f"{gnn}.atom_encoder.atom_embedding_list.{i}.weight"] = ((size, GNN_DIM), f32)
    for layer in range(GNN_LAYERS):
        p = f"{gnn}.gnns.{layer}"
        out[f"{p}.eps"] = ((1,), f32)
        out[f"{p}.mlp.0.weight"] = ((2 * GNN_DIM, GNN_DIM), f32)
        out[f"{p}.mlp.0.bias"] = ((2 * GNN_DIM,), f32)
        bn(f"{p}.mlp.1", 2 * GNN_DIM)
        out[f"{p}.mlp.3.weight"] = ((GNN_DIM, 2 * GNN_DIM), f32)
        out[f"{p}.mlp.3.bias"] = ((GNN_DIM,), f32)
        for j, size in enumerate(BOND_VOCAB):
            out[f"{p}.bond_encoder.bond_embedding_list.{j}.weight"] = ((size, GNN_DIM), f32)
    for layer in range(GNN_LAYERS):
        bn(f"{gnn}.batch_norms.{layer}", GNN_DIM)

    out["mllm.ln_graph_model.weight"] = ((GNN_DIM,), f32)
    out["mllm.ln_graph_model.bias"] = ((GNN_DIM,), f32)

    ab = "mllm.abstractor"
    out[f"{ab}.query_tokens"] = ((LEVELS, QUERIES, GNN_DIM), f32)
    out[f"{ab}.motif_query_tokens"] = ((QUERIES, GNN_DIM), f32)
    out[f"{ab}.motif_weight.weight"] = ((GNN_DIM, MOTIF_DIM), f32)
    mha(f"{ab}.motif_cross_attention")
    for level in range(LEVELS):
        mha(f"{ab}.cross_attention.{level}")
    out[f"{ab}.layer_norm.weight"] = ((GNN_DIM,), f32)
    out[f"{ab}.layer_norm.bias"] = ((GNN_DIM,), f32)
    for index in MLP_LINEARS:
        fan_in = GNN_DIM if index == 0 else proj_out
        out[f"{ab}.net.{index}.weight"] = ((proj_out, fan_in), f32)
        out[f"{ab}.net.{index}.bias"] = ((proj_out,), f32)

    lm = "mllm.language_model.base_model.model"
    out[f"{lm}.model.embed_tokens.weight"] = ((vocab, hidden), bf16)
    for layer in range(num_llm_layers):
        p = f"{lm}.model.layers.{layer}"
        for proj in ("q_proj", "v_proj"):
            out[f"{p}.self_attn.{proj}.base_layer.weight"] = ((hidden, hidden), bf16)
            out[f"{p}.self_attn.{proj}.lora_A.default.weight"] = ((lora_r, hidden), bf16)
            out[f"{p}.self_attn.{proj}.lora_B.default.weight"] = ((hidden, lora_r), bf16)
        for proj in ("k_proj", "o_proj"):
            out[f"{p}.self_attn.{proj}.weight"] = ((hidden, hidden), bf16)
        out[f"{p}.mlp.gate_proj.weight"] = ((intermediate, hidden), bf16)
        out[f"{p}.mlp.up_proj.weight"] = ((intermediate, hidden), bf16)
        out[f"{p}.mlp.down_proj.weight"] = ((hidden, intermediate), bf16)
        out[f"{p}.input_layernorm.weight"] = ((hidden,), bf16)
        out[f"{p}.post_attention_layernorm.weight"] = ((hidden,), bf16)
    out[f"{lm}.model.norm.weight"] = ((hidden,), bf16)
    out[f"{lm}.lm_head.weight"] = ((vocab, hidden), bf16)
    return out


def meta_state_dict(layout: Layout) -> dict[str, torch.Tensor]:
    """Meta-device tensors for ``layout`` (no memory); the six level-MHA copies are one tensor
    object each, as the official file stores one shared module six times."""
    sd = {k: torch.empty(shape, dtype=dtype, device="meta") for k, (shape, dtype) in layout.items()}
    for key in list(sd):
        if ".cross_attention." in key and ".cross_attention.0." not in key:
            index = key.split(".cross_attention.")[1].split(".", 1)[0]
            sd[key] = sd[key.replace(f".cross_attention.{index}.", ".cross_attention.0.")]
    return sd
