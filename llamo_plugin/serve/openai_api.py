"""OpenAI-compatible ``POST /v1/chat/completions`` and ``GET /v1/models``.

So that existing OpenAI clients (the ``openai`` library, KNIME's AI extension nodes with a
custom base URL, ...) can talk to LLaMo:

- the molecule travels in the last user message as a ``<smiles>…</smiles>`` span (or in the
  extra body field ``smiles``); the rest of that message is the instruction. Earlier turns
  and system messages are accepted and not used (LLaMo answers one instruction about one
  molecule, with its own system prompt);
- decoding is greedy, as LLaMo's always is: ``temperature``, ``top_p`` and ``seed`` are
  accepted and ignored (any value gives the same answer); ``max_tokens`` (or
  ``max_completion_tokens``) caps the answer (at most the server's ``max_new_tokens``);
  ``stop`` strings cut the answer after decoding. What cannot be honoured is refused with a
  400 naming the field: ``n`` > 1, penalties, ``logit_bias``, ``logprobs``, tools and
  functions, a non-text ``response_format``, audio;
- the response has OpenAI's schema (``id``, ``object``, ``created``, ``model``,
  ``choices[0].message``, ``finish_reason`` ``stop`` or ``length``, ``usage``) plus a
  ``llamo`` object (canonical SMILES, applicability domain, whether the answer came from the
  cache, the model checksum). ``usage.prompt_tokens`` counts LLaMo's prompt with its graph
  tokens; ``completion_tokens`` the answer re-tokenised;
- ``stream: true`` sends the answer as server-sent events in OpenAI's chunk format; the
  micro-batched decoder finishes an answer before it is sent, so it arrives as one chunk.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from llamo_plugin.config import DecodeConfig
from llamo_plugin.errors import brief
from llamo_plugin.serve.batcher import BatchKey, MicroBatcher
from llamo_plugin.serve.config import ServeConfig
from llamo_plugin.serve.context import RequestContext
from llamo_plugin.serve.errors import ApiError, bad_request, invalid

#: The pipeline's task name for chat answers (part of the answer cache key).
CHAT_TASK = "chat"
SMILES_SPAN = re.compile(r"<smiles>(.*?)</smiles>", re.DOTALL | re.IGNORECASE)

#: OpenAI parameters accepted and ignored: greedy decoding gives one answer whatever they say.
IGNORED = frozenset(
    {
        "temperature",
        "top_p",
        "seed",
        "user",
        "metadata",
        "store",
        "service_tier",
        "prompt_cache_key",
        "safety_identifier",
        "reasoning_effort",
        "verbosity",
        "parallel_tool_calls",
    }
)
#: OpenAI parameters refused unless they have their neutral value (which is accepted).
NEUTRAL: dict[str, tuple[Any, ...]] = {
    "n": (None, 1),
    "frequency_penalty": (None, 0, 0.0),
    "presence_penalty": (None, 0, 0.0),
    "logit_bias": (None, {}),
    "logprobs": (None, False),
    "top_logprobs": (None, 0),
    "tools": (None, []),
    "tool_choice": (None, "none"),
    "functions": (None, []),
    "function_call": (None, "none"),
    "response_format": (None, {"type": "text"}),
    "audio": (None,),
    "modalities": (None, ["text"]),
    "prediction": (None,),
    "web_search_options": (None,),
}
USED = (
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "stream",
    "stream_options",
    "stop",
    "smiles",
)


@dataclass(frozen=True)
class ChatRequest:
    """A parsed chat completion request: one molecule, one instruction."""

    model: str
    smiles: str
    instruction: str
    max_tokens: int
    stream: bool = False
    include_usage: bool = False
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChatAnswer:
    """The pipeline's answer to a :class:`ChatRequest`, before stop strings are applied."""

    row: Any
    decode: DecodeConfig
    prompt_tokens: int = 0
    completion_tokens: int = 0
    domain: str | None = None


def _message_text(message: Any, index: int) -> str:
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise invalid(f"messages[{index}]: expected an object with a 'role'", param="messages")
    content = message.get("content")
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise bad_request(
                    f"messages[{index}]: only text content is supported, not {kind!r}",
                    "unsupported_content",
                    param="messages",
                )
            texts.append(str(part.get("text", "")))
        return "\n".join(texts)
    raise invalid(
        f"messages[{index}].content: expected a string or a list of parts", param="messages"
    )


def _int_field(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise invalid(f"{name}: expected a positive integer, got {brief(value, 40)}", param=name)
    return value


def parse_chat_request(
    body: Any, config: ServeConfig, model_name: str, default_max: int
) -> ChatRequest:
    """Check a chat completion body: 422 for the wrong shape or unknown fields, 400 for what
    this server cannot do or a message without a molecule, 404 for another model's name."""
    if not isinstance(body, dict):
        raise invalid(f"expected a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - set(USED) - IGNORED - set(NEUTRAL))
    if unknown:
        raise invalid(f"unknown field(s) {unknown}", param=unknown[0])
    for name, neutral in NEUTRAL.items():
        if body.get(name) not in neutral:
            raise bad_request(
                f"{name}={brief(body[name], 60)} is not supported: LLaMo decodes one greedy "
                "text answer",
                "unsupported_parameter",
                param=name,
            )
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("missing field 'model' (see GET /v1/models)", param="model")
    if model != model_name:
        raise ApiError(
            404,
            "model_not_found",
            f"model {brief(model, 80)} is not served here; this server serves {model_name!r}",
            param="model",
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("'messages' must be a non-empty list", param="messages")
    texts = [_message_text(m, i) for i, m in enumerate(messages)]
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    if not users:
        raise bad_request("no user message", "missing_user_message", param="messages")
    text = texts[users[-1]]
    spans = SMILES_SPAN.findall(text)
    if len(spans) > 1:
        raise bad_request(
            f"one molecule per request: the user message has {len(spans)} <smiles> spans",
            "several_molecules",
            param="messages",
        )
    extra = body.get("smiles")
    if extra is not None and not isinstance(extra, str):
        raise invalid("smiles: expected a string", param="smiles")
    if spans:
        smiles = spans[0].strip()
        if extra is not None and extra.strip() != smiles:
            raise bad_request(
                "the <smiles> span and the 'smiles' field name different molecules",
                "conflicting_smiles",
                param="smiles",
            )
        instruction = SMILES_SPAN.sub(" ", text)
    elif extra is not None:
        smiles, instruction = extra.strip(), text
    else:
        raise bad_request(
            "no molecule: put its SMILES in the user message as <smiles>…</smiles> (or in "
            f"the body field 'smiles'); the message was {brief(text, 120)}",
            "missing_smiles",
            param="messages",
        )
    instruction = " ".join(instruction.split())
    max_tokens = _int_field(body, "max_completion_tokens") or _int_field(body, "max_tokens")
    if max_tokens is not None and max_tokens > config.max_new_tokens:
        raise bad_request(
            f"max_tokens={max_tokens} is over this server's limit of {config.max_new_tokens}",
            "max_tokens_too_large",
            param="max_tokens",
        )
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and (
        not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop)
    ):
        raise invalid("stop: expected a string or a list of non-empty strings", param="stop")
    stream = body.get("stream", False)
    options = body.get("stream_options") or {}
    if not isinstance(stream, bool) or not isinstance(options, dict):
        raise invalid("stream must be true or false, stream_options an object", param="stream")
    return ChatRequest(
        model=model,
        smiles=smiles,
        instruction=instruction,
        max_tokens=max_tokens or min(default_max, config.max_new_tokens),
        stream=stream,
        include_usage=bool(options.get("include_usage", False)),
        stop=tuple(stop or ()),
    )


def chat_decode(model_decode: DecodeConfig, max_tokens: int) -> DecodeConfig:
    """The decoding of a chat answer: the model's own settings with the request's cap."""
    return model_decode.replace(max_new_tokens=max_tokens)


def answer_chat(
    batcher: MicroBatcher, request: ChatRequest, ctx: RequestContext, limits: Any
) -> ChatAnswer:
    """Queue the request's one row, wait for it (in a worker thread), count its tokens."""
    from llamo_plugin.chem.domain import domain_status
    from llamo_plugin.chem.smiles import parse_smiles, prompt_smiles
    from llamo_plugin.prompt.assemble import encode_conversation

    model = batcher.model
    decode = chat_decode(model.config.decode, request.max_tokens)
    job = batcher.submit(
        BatchKey(CHAT_TASK, decode, limits), [request.smiles], [request.instruction]
    )
    row = ctx.wait(job)[0]
    ctx.record(CHAT_TASK, decode, [row], [request.instruction])
    if row.status != "ok":
        return ChatAnswer(row, decode)
    mol = parse_smiles(request.smiles, limits)
    prompt = encode_conversation(
        model.tokenizer,
        prompt_smiles(mol, model.config.prompt.max_smiles_chars),
        request.instruction,
        config=model.config.prompt,
        num_graph_tokens=model.graph.num_graph_tokens,
    )
    completion = model.tokenizer.encode(row.text, add_special_tokens=False)
    return ChatAnswer(
        row,
        decode,
        prompt_tokens=len(prompt.input_ids),
        completion_tokens=len(completion),
        domain=domain_status(request.smiles, model.config.domain),
    )


def _finish(answer: ChatAnswer, request: ChatRequest) -> tuple[str, str]:
    """(content, finish_reason) after the stop strings."""
    text = answer.row.text
    cuts = [i for i in (text.find(s) for s in request.stop) if i >= 0]
    if cuts:
        return text[: min(cuts)], "stop"
    return text, "length" if answer.row.stop_reason == "length" else "stop"


def _usage(answer: ChatAnswer) -> dict[str, int]:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }


def _extension(answer: ChatAnswer, checksum: str) -> dict[str, Any]:
    return {
        "smiles": answer.row.canonical_smiles,
        "domain": answer.domain,
        "cached": answer.row.cached,
        "model_sha256": checksum,
        "decode": answer.decode.to_dict(),
    }


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def chat_response(answer: ChatAnswer, request: ChatRequest, checksum: str) -> dict[str, Any]:
    """A ``chat.completion`` object."""
    content, finish = _finish(answer, request)
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "system_fingerprint": f"llamo-{checksum[:16]}",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": _usage(answer),
        "llamo": _extension(answer, checksum),
    }


def chat_stream(answer: ChatAnswer, request: ChatRequest, checksum: str) -> Iterator[str]:
    """The answer as server-sent events of ``chat.completion.chunk`` objects, then
    ``data: [DONE]``."""
    content, finish = _finish(answer, request)
    base = {
        "id": completion_id(),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": request.model,
        "system_fingerprint": f"llamo-{checksum[:16]}",
    }

    def event(delta: dict[str, Any], finish_reason: str | None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return f"data: {json.dumps({**base, 'choices': [choice], **extra})}\n\n"

    yield event({"role": "assistant", "content": ""}, None)
    yield event({"content": content}, None)
    yield event({}, finish, llamo=_extension(answer, checksum))
    if request.include_usage:
        yield f"data: {json.dumps({**base, 'choices': [], 'usage': _usage(answer)})}\n\n"
    yield "data: [DONE]\n\n"


def models_response(name: str, checksum: str, created: int) -> dict[str, Any]:
    """``GET /v1/models``: the one model this server holds."""
    return {"object": "list", "data": [model_entry(name, checksum, created)]}


def model_entry(name: str, checksum: str, created: int) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": "llamo",
        "sha256": checksum,
    }
