"""Chat completion requests: the molecule in a <smiles> span or the 'smiles' field, the rest
of the last user message as the instruction; what greedy decoding cannot honour is refused."""

from __future__ import annotations

from typing import Any

import pytest

from llamo_plugin.serve.config import ServeConfig
from llamo_plugin.serve.errors import ApiError
from llamo_plugin.serve.openai_api import parse_chat_request
from tests.unit.serve.embedded import EMBEDDED_NAME

MODEL = EMBEDDED_NAME
CFG = ServeConfig(max_new_tokens=64)


def parse(**body: Any) -> Any:
    body.setdefault("model", MODEL)
    return parse_chat_request(body, CFG, MODEL, default_max=256)


def user(text: Any) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": text}]


def error(**body: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        parse(**body)
    return info.value


def test_span_and_instruction() -> None:
    req = parse(messages=user("What is the HOMO energy?\n  <smiles> CCO </smiles>  "))
    assert (req.smiles, req.instruction) == ("CCO", "What is the HOMO energy?")
    assert req.max_tokens == 64  # the model's 256, capped by the server
    parts = [
        {"type": "text", "text": "Describe"},
        {"type": "text", "text": "<SMILES>c1ccccc1</SMILES>"},
    ]
    assert parse(messages=user(parts)).smiles == "c1ccccc1"
    req = parse(messages=user("Describe this molecule."), smiles="CCO", max_tokens=8, stop="\n")
    assert (req.smiles, req.instruction, req.max_tokens, req.stop) == (
        "CCO",
        "Describe this molecule.",
        8,
        ("\n",),
    )
    # the last user message counts; earlier turns are context LLaMo does not use
    history = [*user("old <smiles>C</smiles>"), {"role": "assistant", "content": "x"}]
    req = parse(messages=[*history, {"role": "user", "content": "new <smiles>N</smiles>"}])
    assert (req.smiles, req.instruction) == ("N", "new")
    # sampling settings are accepted and ignored (greedy decoding)
    assert parse(messages=user("q <smiles>C</smiles>"), temperature=0.7, top_p=0.9, seed=3, n=1)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"messages": user("Describe this molecule.")}, 400, "missing_smiles"),
        ({"messages": user("<smiles>C</smiles> or <smiles>N</smiles>")}, 400, "several_molecules"),
        ({"messages": user("q <smiles>C</smiles>"), "smiles": "N"}, 400, "conflicting_smiles"),
        ({"messages": [{"role": "system", "content": "x"}]}, 400, "missing_user_message"),
        ({"messages": user([{"type": "image_url", "image_url": {}}])}, 400, "unsupported_content"),
        ({"messages": user("q <smiles>C</smiles>"), "n": 2}, 400, "unsupported_parameter"),
        ({"messages": user("q <smiles>C</smiles>"), "tools": [{}]}, 400, "unsupported_parameter"),
        (
            {"messages": user("q <smiles>C</smiles>"), "logprobs": True},
            400,
            "unsupported_parameter",
        ),
        ({"messages": user("q <smiles>C</smiles>"), "max_tokens": 65}, 400, "max_tokens_too_large"),
        ({"messages": user("q <smiles>C</smiles>"), "max_tokens": 0}, 422, "invalid_body"),
        ({"messages": user("q <smiles>C</smiles>"), "colour": "blue"}, 422, "invalid_body"),
        ({"messages": "q <smiles>C</smiles>"}, 422, "invalid_body"),
        ({"messages": user("q <smiles>C</smiles>"), "model": "gpt-4o"}, 404, "model_not_found"),
    ],
)
def test_refused_clearly(body: dict[str, Any], status: int, code: str) -> None:
    err = error(**body)
    assert (err.status, err.code) == (status, code)
    assert err.body()["error"]["message"]  # says what is wrong


def test_quotes_inputs_briefly() -> None:
    err = error(messages=user("x" * 10_000))
    assert len(err.message) < 400 and "10,000 characters" in err.message
