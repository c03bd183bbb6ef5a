"""/v1/annotate bodies: AnnotateOptions fields (validated by AnnotateOptions itself), rows,
per-row questions and ids; server-only fields and oversized requests refused."""

from __future__ import annotations

from typing import Any

import pytest

from llamo_plugin.serve.annotate_api import parse_annotate_request
from llamo_plugin.serve.config import ServeConfig
from llamo_plugin.serve.errors import ApiError

CFG = ServeConfig(max_rows=3, max_smiles_chars=100, reference_table="/srv/ref.tsv")


def error(body: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        parse_annotate_request(body, CFG)
    return info.value


def test_options_rows_and_server_settings() -> None:
    req = parse_annotate_request(
        {
            "smiles": ["CCO", None],
            "tasks": "property,qa",
            "properties": ["gap"],
            "questions": ["How many rings?", None],
            "ids": ["a", 7],
        },
        CFG,
    )
    assert req.options.tasks == ("property", "qa") and req.options.properties == ("gap",)
    assert req.questions == ("How many rings?", None) and req.ids == ("a", 7)
    # the server's own table and limits, whatever the client
    assert req.options.reference_table == "/srv/ref.tsv"
    assert req.options.limits.max_chars == 100
    assert parse_annotate_request({"smiles": []}, CFG).options.tasks == ("description",)


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ([1, 2], 422, "expected a JSON object"),
        ({"tasks": ["description"]}, 422, "missing field 'smiles'"),
        ({"smiles": "CCO"}, 422, "expected a list"),
        ({"smiles": ["CCO", 5]}, 422, "smiles[1]: expected a SMILES string or null, got int"),
        ({"smiles": ["C"] * 4}, 413, "at most 3 per request"),
        ({"smiles": ["C"], "reference_table": "/etc/passwd"}, 422, "chosen when the server starts"),
        ({"smiles": ["C"], "limits": {"max_chars": 10**9}}, 422, "server's"),
        ({"smiles": ["C"], "fail_on_error": True}, 422, "cannot be set per request"),
        ({"smiles": ["C"], "task": "description"}, 422, "unknown field(s) ['task']"),
        ({"smiles": ["C"], "tasks": ["poetry"]}, 422, "tasks must be among"),
        ({"smiles": ["C"], "tasks": ["qa"]}, 422, "needs a question"),
        ({"smiles": ["C"], "questions": ["q"]}, 422, "add it to 'tasks'"),
        ({"smiles": ["C"], "tasks": ["qa"], "questions": ["q", "r"]}, 422, "2 questions for 1"),
        ({"smiles": ["C"], "tasks": ["qa"], "question": "q", "questions": ["r"]}, 422, "not both"),
        ({"smiles": ["C"], "ids": [[1]]}, 422, "ids[0]"),
        ({"smiles": ["C"], "neighbours": 99}, 422, "neighbours must be between"),
    ],
)
def test_refused_clearly(body: Any, status: int, words: str) -> None:
    err = error(body)
    assert err.status == status
    assert words in err.message
