"""The official-checkpoint converter (reference §11).

Two levels:

* the full 7B layout, transcribed independently from the spec table
  (``tests/helpers/official_layout.py``), checked on the meta device (shapes only, no memory);
* a tiny synthetic checkpoint made the way the original made its file (a peft-wrapped Llama
  in bf16, fp32 GNN/projector, ``mllm.`` prefix, Lightning metadata with pickled objects),
  converted, reloaded and run.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import torch

from llamo_plugin.checkpoint.convert_llamo import (
    build_converted_model,
    convert_official_checkpoint,
    convert_state_dict,
    infer_llamo_config,
    infer_lm_config,
    load_official_state_dict,
    map_official_key,
    prepare_tokenizer,
)
from llamo_plugin.checkpoint.format import load_model
from llamo_plugin.config import DecodeConfig, GraphEncoderConfig, LlamoConfig, ProjectorConfig
from llamo_plugin.errors import CheckpointError, UntrustedPickleError
from llamo_plugin.model.factory import TINY_LM_CONFIG, tiny_tokenizer
from llamo_plugin.model.llamo import LlamoModel
from tests.helpers.official_layout import meta_state_dict, official_layout

#: Llama-2-7b-chat-hf's config.json (public values; vocabulary before LLaMo's ``<pad>``).
LLAMA2_7B_CHAT_CONFIG: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "bos_token_id": 1,
    "eos_token_id": 2,
    "hidden_act": "silu",
    "hidden_size": 4096,
    "initializer_range": 0.02,
    "intermediate_size": 11008,
    "max_position_embeddings": 4096,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 32,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": None,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "use_cache": True,
    "vocab_size": 32000,
}
LLAMA2_7B_SUMMARY = {
    "vocab_size": 32001,
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "rms_norm_eps": 1e-5,
    "max_position_embeddings": 4096,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 32000,
    "dtype": "bfloat16",
}
GNN, AB, LM = "mllm.graph_model.molecule_node_model.", "mllm.abstractor.", "mllm.language_model."
LORA_TARGETS = ("q_proj", "v_proj")


def llama2_7b_config() -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=32001,
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        pad_token_id=32000,
    )


def our_name(official: str) -> str:
    """Our graph key for an official GNN/projector key (written here, independently)."""
    name = official.removeprefix("mllm.")
    name = name.replace("graph_model.molecule_node_model.", "encoder.", 1)
    return name.replace("abstractor.", "projector.", 1)


# --------------------------------------------------------------------------- 7B layout
def test_layout_has_the_spec_key_counts() -> None:
    layout = official_layout()
    assert len(layout) == 565
    count = {p: sum(k.startswith(p) for k in layout) for p in (GNN, "mllm.ln_graph_model.", AB, LM)}
    assert count == {GNN: 99, "mllm.ln_graph_model.": 2, AB: 45, LM: 419}
    assert sum(".cross_attention." in k for k in layout) == 24
    assert sum(".lora_" in k for k in layout) == 128


def test_every_7b_key_maps_onto_our_model_shapes() -> None:
    """Each official key is mapped (or dead) onto a tensor of our 7B model with its shape,
    and every tensor of our model is covered. The model comes from our defaults plus the
    Llama-2-7B config, not from the converter's inference."""
    layout = official_layout()
    with torch.device("meta"):
        from transformers import LlamaForCausalLM

        model = LlamoModel(LlamoConfig(), LlamaForCausalLM(llama2_7b_config()), tiny_tokenizer())
    graph_sd, lm_sd = model.graph.state_dict(), model.lm.state_dict()
    covered_graph, covered_lm, dead = set(), set(), []
    for name, (shape, _) in layout.items():
        hit = map_official_key(name)
        assert hit is not None, name
        target, new = hit
        if target == "dead":
            dead.append(name)
        elif target in ("graph", "level_attention"):
            if target == "level_attention":  # one shared module in our default layout
                index = new.split(".")[2]
                new = new.replace(f"cross_attention.{index}.", "cross_attention.0.")
            assert tuple(graph_sd[new].shape) == shape, name
            covered_graph.add(new)
        elif target == "lm":
            assert tuple(lm_sd[new].shape) == shape, name
            covered_lm.add(new)
        else:  # LoRA: A [r, in], B [out, r] around the base weight [out, in]
            out_features, in_features = lm_sd[new].shape
            assert shape == ((8, in_features) if target == "lora_A" else (out_features, 8))
    assert sorted(dead) == ["mllm.ln_graph_model.bias", "mllm.ln_graph_model.weight"]
    assert covered_graph == set(graph_sd)
    assert covered_lm == set(lm_sd)
    assert map_official_key("mllm.graph_model.graph_pred_linear.weight") is None


def test_7b_conversion_on_meta_device() -> None:
    """The whole core at full size, shapes only: report counts, inferred configs, strict
    assignment into a 7B LlamoModel built on meta."""
    graph_sd, lm_sd, report = convert_state_dict(meta_state_dict(official_layout()))
    assert (report.n_keys, report.n_graph, report.n_projector, report.n_lm) == (565, 99, 45, 419)
    assert report.n_lora_merged == 64 and report.lora_scaling == 4.0
    assert report.dead_keys == ("mllm.ln_graph_model.bias", "mllm.ln_graph_model.weight")
    assert report.shared_attention_identical
    assert all(t.dtype == torch.bfloat16 for t in lm_sd.values())
    assert all(t.dtype in (torch.float32, torch.int64) for t in graph_sd.values())

    config = infer_llamo_config(graph_sd)
    assert config.graph == GraphEncoderConfig()
    assert config.projector == ProjectorConfig()  # 4096 out, 6 levels, shared, motif first
    lm_config = infer_lm_config(lm_sd)
    from llamo_plugin.checkpoint.convert_llamo import lm_config_summary

    assert lm_config_summary(lm_config) == LLAMA2_7B_SUMMARY
    based = infer_lm_config(lm_sd, base_config=LLAMA2_7B_CHAT_CONFIG)
    assert lm_config_summary(based) == LLAMA2_7B_SUMMARY  # vocab 32000 -> 32001, dtype bf16
    with pytest.raises(CheckpointError, match="num_hidden_layers"):
        infer_lm_config(lm_sd, base_config={**LLAMA2_7B_CHAT_CONFIG, "num_hidden_layers": 40})
    model = build_converted_model(config, lm_config, tiny_tokenizer(), graph_sd, lm_sd)
    assert model.graph.num_graph_tokens == 28
    _, fp16_sd, _ = convert_state_dict(meta_state_dict(official_layout()), dtype=torch.float16)
    assert {t.dtype for t in fp16_sd.values()} == {torch.float16}
    assert infer_lm_config(fp16_sd).dtype == torch.float16


# ------------------------------------------------------------------ synthetic checkpoint
def _vanished_class_instance() -> tuple[Any, types.ModuleType]:
    """An object whose class lives in a module that will not be importable at load time
    (as Lightning's AttributeDict or an omegaconf config is not installed here)."""
    module = types.ModuleType("llamo_test_vanished_lightning")

    class AttributeDict(dict):  # type: ignore[type-arg]
        pass

    AttributeDict.__module__ = module.__name__
    AttributeDict.__qualname__ = "AttributeDict"
    module.AttributeDict = AttributeDict  # type: ignore[attr-defined]
    return AttributeDict(lr=1e-4, stage="stage2"), module


def _random_graph_tensors(layout: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Random fp32 GNN/projector tensors for the layout's graph keys; the six level-MHA
    copies are one tensor object (shared storage, as in the official file)."""
    g = torch.Generator().manual_seed(1)
    out: dict[str, torch.Tensor] = {}
    for name, (shape, dtype) in layout.items():
        if not name.startswith((GNN, AB, "mllm.ln_graph_model.")):
            continue
        if dtype == torch.int64:
            out[name] = torch.tensor(17)
        elif name.endswith("running_var"):
            out[name] = torch.rand(shape, generator=g) + 0.5
        elif name.endswith("query_tokens"):
            out[name] = torch.randn(shape, generator=g)
        elif name.endswith(("norm.weight", "norms.0.weight", ".1.weight")) and len(shape) == 1:
            out[name] = 1 + 0.1 * torch.randn(shape, generator=g)
        else:
            out[name] = 0.05 * torch.randn(shape, generator=g)
    for name in list(out):
        if ".cross_attention." in name and ".cross_attention.0." not in name:
            index = name.split(".cross_attention.")[1].split(".", 1)[0]
            out[name] = out[name.replace(f".cross_attention.{index}.", ".cross_attention.0.")]
    return out


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> types.SimpleNamespace:
    """A tiny checkpoint laid out like the official one, plus the models it came from."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer()
    hf_config = LlamaConfig(
        **TINY_LM_CONFIG,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    peft_model = get_peft_model(
        LlamaForCausalLM(hf_config),
        LoraConfig(
            task_type="CAUSAL_LM",
            r=8,
            lora_alpha=32,
            lora_dropout=0.0,
            target_modules=list(LORA_TARGETS),
        ),
    )
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:  # B starts at 0; make the adapter matter
                param.normal_(0.0, 0.05)
    peft_model = peft_model.to(torch.bfloat16).eval()

    layout = official_layout(2, 64, 128, len(tokenizer), 8, 64)
    sd = _random_graph_tensors(layout)
    sd.update({"mllm.language_model." + k: v for k, v in peft_model.state_dict().items()})
    instance, module = _vanished_class_instance()
    sys.modules[module.__name__] = module  # importable while saving only
    path = tmp_path_factory.mktemp("official") / "llamo.ckpt"
    try:
        torch.save(
            {
                "state_dict": sd,
                "epoch": 0,
                "global_step": 10,
                "pytorch-lightning_version": "2.2.1",
                "hyper_parameters": {
                    "args": argparse.Namespace(lora_r=8, stage="2"),
                    "config": instance,
                },
            },
            path,
        )
    finally:
        del sys.modules[module.__name__]
    return types.SimpleNamespace(
        path=path,
        sd=sd,
        layout=layout,
        peft_model=peft_model,
        hf_config=hf_config,
        tokenizer=tokenizer,
    )


@pytest.fixture(scope="module")
def converted(
    source: types.SimpleNamespace, tmp_path_factory: pytest.TempPathFactory
) -> types.SimpleNamespace:
    out = tmp_path_factory.mktemp("converted") / "model"
    report = convert_official_checkpoint(
        source.path,
        out,
        source.tokenizer,
        trust_pickle=True,
        base_config=source.hf_config.to_dict(),
    )
    return types.SimpleNamespace(path=out, report=report, model=load_model(out))


def test_synthetic_checkpoint_matches_the_spec_layout(source: types.SimpleNamespace) -> None:
    """peft's real key names, shapes and dtypes agree with the layout transcribed from §11
    (175 keys for a 2-layer LLM, as the spec's own tiny check found)."""
    got = {k: (tuple(v.shape), v.dtype) for k, v in source.sd.items()}
    assert got == source.layout
    assert len(got) == 175


def test_pickled_metadata_needs_trust(source: types.SimpleNamespace, tmp_path: Path) -> None:
    with pytest.raises(UntrustedPickleError, match="--trust-pickle"):
        convert_official_checkpoint(source.path, tmp_path / "m", source.tokenizer)
    assert not (tmp_path / "m").exists()


def test_report(converted: types.SimpleNamespace) -> None:
    r = converted.report
    assert (r.n_keys, r.n_graph, r.n_projector, r.n_lm) == (175, 99, 45, 29)
    assert r.n_lora_merged == 4 and r.lora_scaling == 4.0
    assert r.dead_keys == ("mllm.ln_graph_model.bias", "mllm.ln_graph_model.weight")
    assert r.shared_attention_identical and r.shared_level_attention
    assert {"epoch", "hyper_parameters", "global_step"} <= set(r.metadata_keys)
    manifest = json.loads((converted.path / "manifest.json").read_text())
    assert r.model_sha256 == manifest["model_sha256"] == converted.model.checksum
    assert json.loads((converted.path / "lm" / "config.json").read_text())["dtype"] == "bfloat16"


def test_lm_weights_are_the_merged_source_weights(
    source: types.SimpleNamespace, converted: types.SimpleNamespace
) -> None:
    """Reference: peft's own merge done in fp32 (``merge_and_unload`` of an fp32 copy), then
    cast to bf16 -> bitwise equal to ours; every other LM tensor is copied bit for bit."""
    reference = copy.deepcopy(source.peft_model).float().merge_and_unload().to(torch.bfloat16)
    ref_sd, ours = reference.state_dict(), converted.model.lm.state_dict()
    assert set(ref_sd) == set(ours)
    base = {
        k.removeprefix("mllm.language_model.base_model.model."): v
        for k, v in source.sd.items()
        if k.startswith(LM)
    }
    merged = 0
    for name, tensor in ours.items():
        assert tensor.dtype == torch.bfloat16
        assert torch.equal(tensor, ref_sd[name]), name
        if name.endswith(tuple(f"{p}.weight" for p in LORA_TARGETS)):
            merged += 1
            assert not torch.equal(tensor, base[name.replace(".weight", ".base_layer.weight")])
        else:
            assert torch.equal(tensor, base[name]), name
    assert merged == 4


def test_logits_match_the_peft_adapter_model(
    source: types.SimpleNamespace, converted: types.SimpleNamespace
) -> None:
    """Converted LM vs the peft model running its (unmerged) adapter, both evaluated in fp32
    from their bf16 weights. The only difference left is the bf16 rounding of the merged q/v
    weights; the adapter's own effect on the logits is checked to be far larger, so a missing
    or mis-scaled merge fails."""
    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(0, len(source.tokenizer), (2, 24), generator=generator)
    adapter = copy.deepcopy(source.peft_model).float()
    ours = copy.deepcopy(converted.model.lm).float()
    with torch.no_grad():
        ref = adapter(input_ids=ids).logits
        with adapter.disable_adapter():
            no_lora = adapter(input_ids=ids).logits
        got = ours(input_ids=ids).logits
    error = (got - ref).abs().max().item()
    lora_effect = (no_lora - ref).abs().max().item()
    assert error < 0.02 * lora_effect, (error, lora_effect)
    torch.testing.assert_close(got, ref, rtol=0.0, atol=0.02 * lora_effect)


def test_graph_tensors_equal_their_source(
    source: types.SimpleNamespace, converted: types.SimpleNamespace
) -> None:
    graph_sd = converted.model.graph.state_dict()
    expected = {
        our_name(k) for k in source.sd if k.startswith((GNN, AB)) and ".cross_attention." not in k
    } | {
        f"projector.cross_attention.0.{p}"
        for p in ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias")
    }
    assert set(graph_sd) == expected
    for name, tensor in graph_sd.items():
        src = source.sd[
            "mllm."
            + name.replace("encoder.", "graph_model.molecule_node_model.", 1).replace(
                "projector.", "abstractor.", 1
            )
        ]
        assert tensor.dtype == src.dtype and torch.equal(tensor, src), name


def test_reload_and_generate(converted: types.SimpleNamespace) -> None:
    model = converted.model
    gens = model.generate(
        [
            model.prepare(s, "Could you give me a brief overview?")
            for s in ["CC(=O)Oc1ccccc1C(=O)O", "C"]
        ],
        DecodeConfig(max_new_tokens=4),
    )
    assert all(1 <= len(g.token_ids) <= 4 for g in gens)
    assert converted.model.config.projector.token_order == "motif_first"


def test_per_level_layout_gives_the_same_graph_tokens(
    source: types.SimpleNamespace, converted: types.SimpleNamespace, tmp_path: Path
) -> None:
    """Six private copies of the shared MHA (the official copies share storage, which must not
    turn into dropped aliases when saved) compute exactly what the shared module does."""
    out = tmp_path / "per_level"
    report = convert_official_checkpoint(
        source.path,
        out,
        source.tokenizer,
        trust_pickle=True,
        base_config=source.hf_config.to_dict(),
        shared_level_attention=False,
    )
    assert report.shared_attention_identical and not report.shared_level_attention
    per_level = load_model(out)
    assert len(per_level.graph.projector.cross_attention) == 6
    graphs = [
        converted.model.prepare(s, "Describe.").graph
        for s in ("CC(=O)Oc1ccccc1C(=O)O", "c1ccccc1O", "C")
    ]
    with torch.no_grad():
        torch.testing.assert_close(
            per_level.encode_graphs(graphs),
            converted.model.encode_graphs(graphs),
            rtol=1e-6,
            atol=1e-6,
        )


def test_unknown_key_fails_and_names_it(source: types.SimpleNamespace, tmp_path: Path) -> None:
    """A bare state dict (no Lightning metadata) loads with weights_only; an extra key fails."""
    path = tmp_path / "bare.ckpt"
    torch.save({**source.sd, "mllm.abstractor.prenorm.weight": torch.ones(3)}, path)
    assert set(load_official_state_dict(path, trust_pickle=False)) == set(source.sd) | {
        "mllm.abstractor.prenorm.weight"
    }
    with pytest.raises(CheckpointError, match=r"abstractor\.prenorm\.weight"):
        convert_official_checkpoint(
            path, tmp_path / "m", source.tokenizer, base_config=source.hf_config.to_dict()
        )
    assert not (tmp_path / "m").exists()


def test_non_identical_level_attention(source: types.SimpleNamespace) -> None:
    sd = dict(source.sd)
    key = "mllm.abstractor.cross_attention.3.in_proj_weight"
    sd[key] = sd[key].clone()
    sd[key][0, 0] += 1e-3
    with pytest.raises(CheckpointError, match=r"cross_attention\.3\.in_proj_weight"):
        convert_state_dict(sd)
    graph_sd, _, report = convert_state_dict(sd, shared_level_attention=False)
    assert not report.shared_attention_identical
    assert torch.equal(graph_sd["projector.cross_attention.3.in_proj_weight"], sd[key])
    zero = sd[key.replace(".3.", ".0.")]
    assert torch.equal(graph_sd["projector.cross_attention.5.in_proj_weight"], zero)


def test_inconsistent_lora_fails(source: types.SimpleNamespace) -> None:
    prefix = "mllm.language_model.base_model.model.model.layers.1.self_attn.v_proj."
    orphan = {k: v for k, v in source.sd.items() if k != prefix + "lora_B.default.weight"}
    with pytest.raises(CheckpointError, match="partner"):
        convert_state_dict(orphan)
    bare = {k: v for k, v in orphan.items() if k != prefix + "lora_A.default.weight"}
    with pytest.raises(CheckpointError, match="base_layer"):
        convert_state_dict(bare)
    renamed = {**source.sd, prefix + "weight": source.sd[prefix + "base_layer.weight"]}
    with pytest.raises(CheckpointError, match="both map"):
        convert_state_dict(renamed)


def _word_level_tokenizer(size: int, pad: str | None) -> Any:
    """A tokenizer with ``size`` tokens: <unk>, <s>, </s>, then filler words."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2} | {f"w{i}": i for i in range(3, size)}
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<unk>")),
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token=pad,
    )


def test_prepare_tokenizer_adds_llamo_pad() -> None:
    tok = prepare_tokenizer(_word_level_tokenizer(32000, None), 32001)
    assert (len(tok), tok.pad_token, tok.pad_token_id) == (32001, "<pad>", 32000)
    gguf_like = prepare_tokenizer(_word_level_tokenizer(32000, "<unk>"), 32001)
    assert gguf_like.pad_token_id == 32000
    with pytest.raises(CheckpointError, match="32002 rows"):
        prepare_tokenizer(_word_level_tokenizer(32000, None), 32002)
    with pytest.raises(CheckpointError, match="pad token id"):
        prepare_tokenizer(_word_level_tokenizer(32001, "<unk>"), 32001)


def test_cli(source: types.SimpleNamespace, tmp_path: Path) -> None:
    from llamo_plugin.cli import convert

    tok_dir = tmp_path / "tok"
    source.tokenizer.save_pretrained(tok_dir)
    config_json = tmp_path / "config.json"
    config_json.write_text(source.hf_config.to_json_string())
    parser = argparse.ArgumentParser()
    convert.add_arguments(parser)
    argv = [
        str(source.path),
        str(tmp_path / "m"),
        "--tokenizer",
        str(tok_dir),
        "--base-config",
        str(config_json),
        "--token-order",
        "motif_last",
    ]
    assert convert.run(parser.parse_args(argv)) == 2  # pickled metadata, no --trust-pickle
    assert convert.run(parser.parse_args([*argv, "--trust-pickle"])) == 0
    assert load_model(tmp_path / "m").config.projector.token_order == "motif_last"
    assert convert.run(parser.parse_args([*argv, "--trust-pickle"])) == 2  # exists
    code = (
        "import sys, llamo_plugin.cli.convert as c; "
        "assert callable(c.add_arguments) and callable(c.run); "
        "assert not {'torch', 'transformers'} & set(sys.modules), 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[3])


def test_real_llama2_vocabulary_from_gguf(tmp_path: Path) -> None:
    """The CLI's ``--tokenizer-gguf`` path with the real Llama-2 vocabulary (32000 tokens, no
    pad): ``<pad>`` becomes id 32000 and fits a 32001-row checkpoint; heads and the rest of
    the LM config are inferred from the shapes (no base config)."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from llamo_plugin.cli import convert
    from tests.helpers.llama2_vocab import fetch_gguf

    try:  # on a fresh machine this test may run before any other fetched the vocabulary
        gguf = fetch_gguf()
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"Llama-2 vocabulary unavailable: {exc}")
    torch.manual_seed(0)
    lm = LlamaForCausalLM(LlamaConfig(**TINY_LM_CONFIG, vocab_size=32001))
    lm = get_peft_model(lm, LoraConfig(r=8, lora_alpha=32, target_modules=list(LORA_TARGETS)))
    sd = _random_graph_tensors(official_layout(2, 64, 128, 32001, 8, 64))
    lm_sd = lm.to(torch.bfloat16).state_dict()
    sd.update({"mllm.language_model." + k: v for k, v in lm_sd.items()})
    torch.save({"state_dict": sd, "epoch": 0}, tmp_path / "llamo.ckpt")
    parser = argparse.ArgumentParser()
    convert.add_arguments(parser)
    argv = [
        str(tmp_path / "llamo.ckpt"),
        str(tmp_path / "m"),
        "--tokenizer-gguf",
        str(gguf),
        "--num-attention-heads",
        "4",
    ]
    assert convert.run(parser.parse_args(argv)) == 0
    model = load_model(tmp_path / "m")
    assert (len(model.tokenizer), model.tokenizer.pad_token_id) == (32001, 32000)
    assert model.lm.config.pad_token_id == 32000 and model.lm.config.num_attention_heads == 4
    ids = model.prepare(
        "CC(=O)Oc1ccccc1C(=O)O", "Could you give me a brief overview of this molecule?"
    ).prompt.input_ids
    assert list(ids[:9]) == [1, 518, 25580, 29962, 3532, 14816, 29903, 6778, 13]  # spec §6
