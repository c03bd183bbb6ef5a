"""Tests for llamo_plugin.config: strict from_dict, round trips, cross-field validation."""

from __future__ import annotations

import dataclasses
import json

import pytest

from llamo_plugin.config import (
    LLAMO_SYSTEM_MESSAGE,
    OGB_ATOM_VOCAB,
    OGB_BOND_VOCAB,
    DecodeConfig,
    GraphEncoderConfig,
    LlamoConfig,
    ProjectorConfig,
    PromptConfig,
)
from llamo_plugin.errors import ConfigError, LlamoError

ALL_CONFIGS = [GraphEncoderConfig, ProjectorConfig, PromptConfig, DecodeConfig, LlamoConfig]


def test_defaults_match_reference() -> None:
    cfg = LlamoConfig()
    assert cfg.graph.num_layers == 5
    assert cfg.graph.hidden_size == 300
    assert cfg.graph.atom_vocab_sizes == (119, 5, 12, 12, 10, 6, 6, 2, 2) == OGB_ATOM_VOCAB
    assert cfg.graph.bond_vocab_sizes == (5, 6, 2) == OGB_BOND_VOCAB
    assert cfg.projector.input_size == 300
    assert cfg.projector.output_size == 4096
    assert cfg.projector.num_levels == 6
    assert cfg.projector.motif_feature_size == 73
    assert cfg.projector.num_heads == 4
    assert cfg.projector.mlp_depth == 6
    assert cfg.projector.shared_level_attention is True
    assert cfg.projector.token_order == "motif_first"
    assert cfg.prompt.max_smiles_chars == 128
    assert cfg.prompt.graph_placeholder == "<graph>"
    assert cfg.prompt.system_message == LLAMO_SYSTEM_MESSAGE
    assert LLAMO_SYSTEM_MESSAGE == (
        "The following is a conversation between a curious human and AI assistant."
    )
    assert cfg.decode.max_new_tokens == 512


def test_num_graph_tokens_default_is_28() -> None:
    assert ProjectorConfig().num_graph_tokens == 28


def test_num_graph_tokens_follows_fields() -> None:
    cfg = ProjectorConfig(num_levels=3, queries_per_level=2, num_motif_queries=1)
    assert cfg.num_graph_tokens == 7


@pytest.mark.parametrize("cls", ALL_CONFIGS)
def test_from_dict_rejects_unknown_key(cls: type) -> None:
    with pytest.raises(ConfigError, match="num_eos_tokn"):
        cls.from_dict({"num_eos_tokn": 1})


def test_unknown_key_error_is_a_llamo_value_error() -> None:
    with pytest.raises(ValueError) as info:
        DecodeConfig.from_dict({"temperature": 0.7})
    assert isinstance(info.value, LlamoError)
    assert "temperature" in str(info.value)


def test_nested_unknown_key_names_the_path() -> None:
    with pytest.raises(ConfigError, match=r"graph.*bogus"):
        LlamoConfig.from_dict({"graph": {"bogus": 1}})


@pytest.mark.parametrize(
    ("cls", "data"),
    [
        (GraphEncoderConfig, {"num_layers": "5"}),
        (GraphEncoderConfig, {"num_layers": 5.0}),
        (GraphEncoderConfig, {"hidden_size": None}),
        (GraphEncoderConfig, {"batch_norm_eps": "1e-5"}),
        (GraphEncoderConfig, {"atom_vocab_sizes": "119"}),
        (GraphEncoderConfig, {"atom_vocab_sizes": [119, 5, 12, 12, 10, 6, 6, 2, "2"]}),
        (ProjectorConfig, {"shared_level_attention": 1}),
        (ProjectorConfig, {"shared_level_attention": "true"}),
        (ProjectorConfig, {"token_order": "levels_first"}),
        (PromptConfig, {"system_message": 3}),
        (PromptConfig, {"template": "chatml"}),
        (DecodeConfig, {"repetition_penalty": "1.0"}),
        (LlamoConfig, {"graph": 5}),
        (LlamoConfig, {"name": ["llamo"]}),
        (LlamoConfig, {"projector": {"output_size": "4096"}}),
    ],
)
def test_from_dict_rejects_wrong_types(cls: type, data: dict) -> None:
    with pytest.raises(ConfigError):
        cls.from_dict(data)


@pytest.mark.parametrize(
    ("cls", "key"),
    [
        (GraphEncoderConfig, "num_layers"),
        (GraphEncoderConfig, "hidden_size"),
        (ProjectorConfig, "output_size"),
        (ProjectorConfig, "queries_per_level"),
        (PromptConfig, "max_smiles_chars"),
        (DecodeConfig, "max_new_tokens"),
        (LlamoConfig, "format_version"),
    ],
)
def test_from_dict_rejects_bool_for_int(cls: type, key: str) -> None:
    with pytest.raises(ConfigError, match="bool"):
        cls.from_dict({key: True})


def test_bool_is_not_a_float_either() -> None:
    with pytest.raises(ConfigError):
        DecodeConfig.from_dict({"repetition_penalty": True})


def test_int_is_accepted_for_float_and_coerced() -> None:
    cfg = DecodeConfig.from_dict({"repetition_penalty": 2})
    assert cfg.repetition_penalty == 2.0
    assert isinstance(cfg.repetition_penalty, float)


def test_list_is_coerced_to_tuple() -> None:
    cfg = GraphEncoderConfig.from_dict({"bond_vocab_sizes": [5, 6, 3]})
    assert cfg.bond_vocab_sizes == (5, 6, 3)
    assert isinstance(cfg.bond_vocab_sizes, tuple)


def test_from_dict_rejects_non_mapping() -> None:
    with pytest.raises(ConfigError):
        LlamoConfig.from_dict([("name", "x")])  # type: ignore[arg-type]


def test_nested_from_dict_builds_nested_configs() -> None:
    cfg = LlamoConfig.from_dict(
        {
            "name": "tiny",
            "graph": {"num_layers": 2, "hidden_size": 16},
            "projector": {"num_levels": 3, "input_size": 16, "output_size": 8},
            "decode": {"max_new_tokens": 7},
        }
    )
    assert isinstance(cfg.graph, GraphEncoderConfig)
    assert isinstance(cfg.projector, ProjectorConfig)
    assert cfg.graph.num_layers == 2
    assert cfg.projector.output_size == 8
    assert cfg.decode.max_new_tokens == 7
    assert cfg.prompt == PromptConfig()  # untouched section keeps its defaults
    assert cfg.projector.num_graph_tokens == 3 * 4 + 4


@pytest.mark.parametrize(
    "cfg",
    [
        LlamoConfig(),
        LlamoConfig(
            name="variant",
            description="paper order, per-level attention",
            graph=GraphEncoderConfig(num_layers=3, hidden_size=64, batch_norm_eps=1e-3),
            projector=ProjectorConfig(
                num_levels=4,
                input_size=64,
                output_size=128,
                shared_level_attention=False,
                token_order="motif_last",
            ),
            prompt=PromptConfig(max_smiles_chars=64, include_smiles=False),
            decode=DecodeConfig(max_new_tokens=16, no_repeat_ngram_size=3),
        ),
    ],
)
def test_round_trip_through_json(cfg: LlamoConfig) -> None:
    data = cfg.to_dict()
    assert isinstance(data["graph"], dict)
    assert isinstance(data["graph"]["atom_vocab_sizes"], list)
    again = LlamoConfig.from_dict(json.loads(json.dumps(data)))
    assert again == cfg
    assert again.to_dict() == data


def test_to_dict_has_every_field() -> None:
    data = ProjectorConfig().to_dict()
    assert set(data) == {f.name for f in dataclasses.fields(ProjectorConfig)}
    assert data["token_order"] == "motif_first"


def test_num_levels_must_equal_num_layers_plus_one() -> None:
    with pytest.raises(ConfigError, match="num_levels"):
        LlamoConfig(graph=GraphEncoderConfig(num_layers=4))
    with pytest.raises(ConfigError, match="num_levels"):
        LlamoConfig.from_dict({"projector": {"num_levels": 5}})
    ok = LlamoConfig(
        graph=GraphEncoderConfig(num_layers=4), projector=ProjectorConfig(num_levels=5)
    )
    assert ok.projector.num_levels == 5


def test_projector_width_must_equal_graph_width() -> None:
    with pytest.raises(ConfigError):
        LlamoConfig(graph=GraphEncoderConfig(hidden_size=64))


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (GraphEncoderConfig, {"num_layers": 0}),
        (GraphEncoderConfig, {"hidden_size": 0}),
        (GraphEncoderConfig, {"atom_vocab_sizes": (119, 5)}),
        (GraphEncoderConfig, {"bond_vocab_sizes": (5, 6, 2, 2)}),
        (ProjectorConfig, {"input_size": 30, "num_heads": 4}),
        (ProjectorConfig, {"mlp_depth": 0}),
        (PromptConfig, {"max_smiles_chars": -1}),
        (DecodeConfig, {"max_new_tokens": 0}),
        (DecodeConfig, {"repetition_penalty": 0.0}),
        (DecodeConfig, {"no_repeat_ngram_size": -1}),
        (LlamoConfig, {"format_version": 2}),
    ],
)
def test_invalid_values_rejected(cls: type, kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        cls(**kwargs)
    with pytest.raises(ConfigError):
        cls.from_dict(kwargs)


def test_configs_are_frozen() -> None:
    cfg = LlamoConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.projector.output_size = 8  # type: ignore[misc]
    assert cfg.projector.output_size == 4096


def test_replace_revalidates() -> None:
    cfg = ProjectorConfig()
    changed = cfg.replace(output_size=32)
    assert changed.output_size == 32
    assert cfg.output_size == 4096
    with pytest.raises(ConfigError):
        cfg.replace(output_size="32")
    with pytest.raises(ConfigError):
        cfg.replace(bogus=1)
