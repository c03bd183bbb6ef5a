"""The embedded model's name, as its config states it (the tests follow the shipped model)."""

from __future__ import annotations

import json

from llamo_plugin.registry import embedded_model_dir

EMBEDDED_NAME: str = json.loads((embedded_model_dir() / "llamo_config.json").read_text())["name"]
