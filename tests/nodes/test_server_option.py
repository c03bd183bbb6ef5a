"""The Model Selector's "LLaMo server" option, run as KNIME runs the nodes (harness.py): a real
``llamo serve`` on loopback (uvicorn, the embedded model, a bearer token) and the token in a
KNIME credentials flow variable.

The server-mode nodes give exactly the local embedded model's tables (invalid rows
included); a wrong or missing token, a server that is down and a credentials variable that
does not reach the node are clear configure or execute errors naming the URL, never the
token; settings saved by 0.3.0 load with the server settings defaulted.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import knime.extension as knext
import pandas as pd
import pytest
from knime.extension import parameter as kp

from . import harness
from .harness import JavaSide, load_extension, run

pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")

ext = load_extension()

TOKEN = "knime-test-token-0123456789abcdef"
CREDENTIALS = "llamo-server"
#: 8 rows in input batches of 3: duplicates, a missing, an empty and an invalid SMILES
SMILES = ["CCO", None, "c1ccccc1O", "not a smiles", "CCO", "", "CC(=O)O", "C1CC("]
QUESTIONS = ["How many rings does this molecule have?", "x", None, "x", "What is it?", "x", "", "x"]
HOMO_EV = {"homo": True, "lumo": False, "gap": False, "add_ev": True}


def java(**credentials: str) -> JavaSide:
    """KNIME's side of a node whose flow variables carry these credentials (name ->
    password)."""
    return JavaSide(credentials={k: ("knime", v) for k, v in credentials.items()})


def with_token() -> JavaSide:
    return java(**{CREDENTIALS: TOKEN})


def server_settings(url: str, credentials: str = CREDENTIALS) -> dict[str, Any]:
    """The Model Selector's dialog in server mode (no token: the credentials left empty)."""
    settings = {"source": "SERVER", "server_url": url}
    if credentials:
        settings["server_credentials"] = credentials
    return settings


def molecules() -> Any:
    return knext.Table.from_pandas(pd.DataFrame({"smiles": SMILES, "question": QUESTIONS}))


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "BATCH_ROWS", 3)


@pytest.fixture(scope="module")
def pipeline() -> Iterator[Any]:
    """The embedded model for the servers (no answer cache: every answer is decoded)."""
    from llamo_plugin.runtime import load_pipeline

    pipe = load_pipeline(None)
    yield pipe
    pipe.close()


@pytest.fixture(scope="module")
def server(pipeline: Any) -> Iterator[Any]:
    """``llamo serve`` on 127.0.0.1 (an ephemeral port), requiring a token."""
    from llamo_plugin.serve.config import ServeConfig
    from llamo_plugin.serve.server import background_server

    with background_server(
        lambda: pipeline, ServeConfig(port=0), token=TOKEN, close_pipeline=False
    ) as s:
        yield s


@pytest.fixture(scope="module")
def served(server: Any) -> Any:
    """The Model Selector's port in server mode (executed: the server was asked)."""
    return run(ext.ModelSelector, settings=server_settings(server.url), java=with_token())


def test_selector_asks_the_server_and_keeps_the_token_out(
    server: Any, served: Any, pipeline: Any
) -> None:
    spec = served.spec
    config = pipeline.model.config
    assert (spec.source, spec.server_url, spec.server_credentials) == (
        "server",
        server.url,
        CREDENTIALS,
    )
    assert (spec.model_name, spec.model_sha256) == (config.name, pipeline.model.checksum)
    assert spec.tasks == list(config.tasks) and spec.retrieval is config.retrieval.default
    saved = json.dumps(spec.serialize())  # what KNIME stores in the workflow
    assert TOKEN not in saved and TOKEN.encode() not in served.serialize()
    configured = harness.configure(
        ext.ModelSelector, settings=server_settings(server.url), java=with_token()
    )
    assert configured.sent[0]["model_sha256"] == ""  # configure asks no server
    assert TOKEN not in json.dumps(configured.saved)


def test_server_mode_gives_the_local_tables(served: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Description, Property and Q&A (a question column) nodes: the same table, cell for
    cell, through the server as with the embedded model loaded by the node."""
    caplog.set_level(logging.DEBUG)
    local = run(ext.ModelSelector, settings={"answer_cache": False})
    table = molecules()
    nodes = [
        (ext.PropertyPrediction, HOMO_EV),
        (ext.MoleculeQA, {"question_column": "question", "on_missing": "MISSING"}),
        (ext.MoleculeDescription, {"nearest": True}),
    ]
    for node, settings in nodes:
        want = run(node, local, table, settings=settings).to_pandas()
        got = run(node, served, table, settings=settings, java=with_token()).to_pandas()
        pd.testing.assert_frame_equal(got, want)
        assert got["LLaMo error"].notna().sum() >= 4  # the bad rows are data, not failures
    spec = served.spec
    assert got["LLaMo model"].iloc[0] == f"{spec.model_name} sha256:{spec.model_sha256}"
    assert TOKEN not in caplog.text


def test_fail_mode_and_cancel_through_the_server(
    served: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llamo_plugin.serve import client

    table = knext.Table.from_pandas(
        pd.DataFrame({"smiles": ["CCO", "C1CC(", "CC"]}, index=["first", "second", "third"])
    )
    with pytest.raises(RuntimeError, match="RowID second: invalid_smiles"):
        run(
            ext.PropertyPrediction,
            served,
            table,
            settings={**HOMO_EV, "on_missing": "FAIL"},
            java=with_token(),
        )
    monkeypatch.setattr(client, "ROWS_PER_REQUEST", 1)  # cancel polled between requests
    side = with_token()
    side.cancel_after = 2
    with pytest.raises(RuntimeError, match="canceled"):
        run(ext.PropertyPrediction, served, table, settings=HOMO_EV, java=side)
    assert side.polls == 3  # one input batch: before it, then before each request


def test_configure_checks_the_served_model(server: Any, served: Any) -> None:
    table = molecules()
    with pytest.raises(knext.InvalidParametersError, match="not trained for the forward task"):
        run(ext.ReactionPrediction, served, table, java=with_token())
    with pytest.raises(knext.InvalidParametersError, match="its own reference table"):
        run(
            ext.MoleculeDescription,
            served,
            table,
            settings={"reference_table": __file__},
            java=with_token(),
        )
    # Before the Selector has executed, the columns that depend on the served model's
    # retrieval default are unknown: the Description node cannot configure yet; the others can.
    configured = harness.configure(
        ext.ModelSelector, settings=server_settings(server.url), java=with_token()
    )
    unasked = ext.LlamoModelObject(ext.LlamoModelSpec.deserialize(configured.sent[0]))
    description = harness.configure(ext.MoleculeDescription, unasked, table, java=with_token())
    assert description.sent == [None]
    off = harness.configure(
        ext.MoleculeDescription, unasked, table, settings={"retrieval": "OFF"}, java=with_token()
    )
    assert "Description" in knext.Schema.deserialize(off.sent[0]).column_names
    props = harness.configure(ext.PropertyPrediction, unasked, table, java=with_token())
    assert "HOMO (Hartree)" in knext.Schema.deserialize(props.sent[0]).column_names


def test_wrong_or_missing_token(server: Any) -> None:
    with pytest.raises(knext.InvalidParametersError) as err:
        run(
            ext.ModelSelector,
            settings=server_settings(server.url),
            java=java(**{CREDENTIALS: "wrong-token-0123456789"}),
        )
    message = str(err.value)
    assert f"the LLaMo server at {server.url} refused the token (401" in message
    assert f"the credentials flow variable {CREDENTIALS!r}" in message
    assert TOKEN not in message and "wrong-token" not in message
    with pytest.raises(knext.InvalidParametersError, match="needs a token"):
        run(ext.ModelSelector, settings=server_settings(server.url, ""))
    with pytest.raises(knext.InvalidParametersError, match="has an empty password"):
        run(ext.ModelSelector, settings=server_settings(server.url), java=java(**{CREDENTIALS: ""}))


def test_server_down_at_execute(pipeline: Any) -> None:
    """The Selector ran while the server was up; the node executes after it stopped."""
    from llamo_plugin.serve.config import ServeConfig
    from llamo_plugin.serve.server import background_server

    with background_server(
        lambda: pipeline, ServeConfig(port=0), token=TOKEN, close_pipeline=False
    ) as gone:
        url = gone.url
        model = run(ext.ModelSelector, settings=server_settings(url), java=with_token())
    table = molecules()
    configured = harness.configure(
        ext.PropertyPrediction, model, table, settings=HOMO_EV, java=with_token()
    )
    with pytest.raises(knext.InvalidParametersError) as err:
        harness.execute(configured, with_token())
    assert str(err.value).startswith(f"cannot reach the LLaMo server at {url}: connection refused")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(knext.InvalidParametersError, match=f"cannot reach .* at {nobody}"):
        run(ext.ModelSelector, settings=server_settings(nobody), java=with_token())


def test_missing_credentials_variable(server: Any, served: Any) -> None:
    """The variable was there when the settings were chosen, and is gone later."""
    configured = harness.configure(
        ext.ModelSelector, settings=server_settings(server.url), java=with_token()
    )
    missing = f"no credentials flow variable {CREDENTIALS!r} reaches this node"
    with pytest.raises(knext.InvalidParametersError, match=missing):
        harness.reconfigure(configured, JavaSide())
    with pytest.raises(knext.InvalidParametersError, match=missing):
        harness.execute(configured, JavaSide())
    table = molecules()
    with pytest.raises(knext.InvalidParametersError, match=missing):  # a downstream node
        harness.configure(ext.PropertyPrediction, served, table, settings=HOMO_EV)
    node = harness.configure(
        ext.PropertyPrediction, served, table, settings=HOMO_EV, java=with_token()
    )
    with pytest.raises(knext.InvalidParametersError, match=missing):
        harness.execute(node, JavaSide())
    with pytest.raises(harness.SettingsError, match="not one of"):  # the dialog offers names
        harness.configure(ext.ModelSelector, settings=server_settings(server.url))


def test_bad_urls_at_configure() -> None:
    cases = {
        "": "no server URL",
        "localhost:8000": "not an http:// or https:// URL",
        "http://user:secret@127.0.0.1:8000": "must not carry a user name or password",
    }
    for url, message in cases.items():
        with pytest.raises(knext.InvalidParametersError, match=message):
            harness.configure(ext.ModelSelector, settings=server_settings(url, ""))  # no token
    side = with_token()
    harness.configure(
        ext.ModelSelector, settings=server_settings("http://llamo.example.org:8000"), java=side
    )
    assert side.warnings == [
        "the token is sent unencrypted to http://llamo.example.org:8000: use https for a "
        "server on another machine"
    ]


def test_settings_saved_by_older_versions_load() -> None:
    """A 0.3.0 (and a 0.1.0) Model Selector's settings: the server settings are defaulted and
    the node still configures the embedded model."""
    factory = ext.ModelSelector
    saved = {
        "0.3.0": {
            "source": "EMBEDDED",
            "model_dir": "",
            "device": "AUTO",
            "answer_cache": True,
            "cache_path": "",
        },
        "0.1.0": {"source": "LOCAL", "model_dir": "/old/model", "device": "CPU"},
    }
    for version, model in saved.items():
        kp.validate_parameters(factory(), {"model": model}, version)  # no "Parameter missing"
        node = factory()
        kp.inject_parameters(node, {"model": model}, version)
        assert (node.server_url, node.server_credentials) == ("", "")
        assert node.source == model["source"]
    with pytest.raises(ValueError, match="Parameter missing"):  # saved by 0.4.0: required
        kp.validate_parameters(factory(), {"model": saved["0.3.0"]}, "0.4.0")
    node = factory()
    kp.inject_parameters(node, {"model": saved["0.3.0"]}, "0.3.0")
    spec = node.configure(knext.ConfigurationContext(JavaSide(), {}))
    assert spec.source == "embedded" and spec.server_url == "" and spec.known
