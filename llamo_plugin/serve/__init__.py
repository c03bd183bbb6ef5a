"""``llamo serve``: one loaded model behind an HTTP API (FastAPI on uvicorn).

- ``POST /v1/annotate``: a table's SMILES column (and optional per-row questions) in, the
  columns :class:`~llamo_plugin.annotate.Annotator` appends out (per-row ``llamo_error`` and
  ``llamo_domain``), with the model's name and checksum and the settings used;
- ``POST /v1/chat/completions`` and ``GET /v1/models``: OpenAI-compatible; the molecule
  travels in the user message as a ``<smiles>…</smiles>`` span (or the body field ``smiles``);
- ``GET /health`` and ``GET /metrics`` (Prometheus text format).

Modules, one per stage of a request: :mod:`.config` (the frozen :class:`ServeConfig`: bind
address, limits, batching, timeouts), :mod:`.auth` (bearer token: where it comes from, when
it is required, the constant-time check), :mod:`.batcher` (the micro-batching queue in front
of the one pipeline), :mod:`.context` (a request's deadline and cancellation, and the
pipeline view :class:`~llamo_plugin.annotate.Annotator` runs on), :mod:`.annotate_api` and
:mod:`.openai_api` (request parsing and responses of the two APIs), :mod:`.metrics`,
:mod:`.errors` (HTTP errors as JSON), :mod:`.app` (the FastAPI app) and :mod:`.server`
(uvicorn on a bound socket, graceful shutdown). Design notes: ``docs/serving.md``.

Importing this package imports neither FastAPI nor uvicorn (the ``serve`` extra); the
modules that need them import them at their top and are imported by ``llamo serve`` only
when it runs.
"""
