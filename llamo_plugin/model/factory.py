"""Build LLaMo models with fresh (random) weights: tiny test models and training starts."""

from __future__ import annotations

from typing import Any

from llamo_plugin.config import LlamoConfig, ProjectorConfig
from llamo_plugin.model.llamo import LlamoModel

#: A tiny Llama (2 layers, width 64) for tests.
TINY_LM_CONFIG: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 512,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
}

_TINY_CORPUS = [
    "[INST] <<SYS>>\nThe following is a conversation between a curious human and AI assistant."
    "\n<</SYS>>\n\n",
    "CC(=O)Oc1ccccc1C(=O)O CCO c1ccccc1 CC(C)Cc1ccc(C(C)C(=O)O)cc1 [Na+].[Cl-] OCC(O)CO "
    "CN1C=NC2=C1C(=O)N(C(=O)N2C)C Brc1ccccc1 ClC(Cl)Cl C#N [NH4+] O=S(=O)(O)O [/INST]",
    "Could you give me a brief overview of this molecule? What is the IUPAC name of this "
    "molecule? Please provide the HOMO energy value for this molecule.",
    "The molecule is a member of benzoic acids. It is a monocarboxylic acid and a conjugate "
    "acid of a benzoate. 2-acetyloxybenzoic acid -0.2482 0.0123 0.2967",
]


def tiny_tokenizer(vocab_size: int = 320) -> Any:
    """A small BPE tokenizer trained on a fixed corpus (deterministic)."""
    from llamo_plugin.tokenizer.build import train_tokenizer

    return train_tokenizer(_TINY_CORPUS, vocab_size)


def build_random_model(
    lm_config: dict[str, Any],
    tokenizer: Any,
    config: LlamoConfig | None = None,
    *,
    seed: int = 0,
    lm_class: str = "LlamaForCausalLM",
) -> LlamoModel:
    """A LLaMo with random weights; the projector width follows ``lm_config["hidden_size"]``."""
    import torch
    import transformers

    torch.manual_seed(seed)
    hf_config_cls = getattr(transformers, lm_class.replace("ForCausalLM", "Config"))
    hf_config = hf_config_cls(
        **lm_config,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    lm = getattr(transformers, lm_class)(hf_config)
    config = config or LlamoConfig()
    config = config.replace(
        projector={**config.projector.to_dict(), "output_size": hf_config.hidden_size}
    )
    model = LlamoModel(config, lm, tokenizer)
    model.eval()
    return model


def tiny_random_model(seed: int = 0, **projector: Any) -> LlamoModel:
    """The tiny random LLaMo used by tests (never in place of a real model)."""
    config = LlamoConfig(
        name="tiny-random",
        projector=ProjectorConfig(**{"output_size": TINY_LM_CONFIG["hidden_size"], **projector}),
        description="Random weights; for tests only.",
    )
    return build_random_model(TINY_LM_CONFIG, tiny_tokenizer(), config, seed=seed)
