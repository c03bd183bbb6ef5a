"""Where ``llamo train`` runs: device and precision resolution, bf16 autocast, CUDA runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from llamo_plugin.checkpoint.format import load_model
from llamo_plugin.errors import ConfigError
from llamo_plugin.train.config import TrainConfig
from llamo_plugin.train.device import resolve
from llamo_plugin.train.loop import train
from tests.unit.train.test_loop import STAGE1, STAGE2, _config, _write_data

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _with(config: TrainConfig, **changes: str) -> TrainConfig:
    return TrainConfig.from_dict({**config.to_dict(), **changes})


def test_auto_is_cuda_with_bf16_when_visible_else_cpu_fp32() -> None:
    dev = resolve()
    if torch.cuda.is_available():
        assert dev.device.type == "cuda"
        assert dev.bf16 == (torch.cuda.get_device_capability(0) >= (8, 0))
    else:
        assert dev.device == torch.device("cpu") and not dev.bf16
    assert resolve("cpu", "bf16").bf16 and not resolve("cpu", "fp32").bf16


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_asking_for_cuda_without_one_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="sees no CUDA device"):
        resolve("cuda")


@pytest.mark.parametrize(("key", "value"), [("device", "gpu"), ("precision", "fp16")])
def test_config_rejects_unknown_device_or_precision(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=key):
        _with(_config([STAGE1]), **{key: value})


def test_bf16_autocast_on_cpu_trains_and_saves_fp32(tmp_path: Path) -> None:
    _write_data(tmp_path)
    config = _with(_config([{**STAGE1, "max_steps": 4}]), device="cpu", precision="bf16")
    model = load_model(train(config, tmp_path / "run", tmp_path))
    weights = model.state_dict()
    assert all(t.dtype == torch.float32 for t in weights.values() if t.is_floating_point())
    assert all(torch.isfinite(t).all() for t in weights.values() if t.is_floating_point())


@needs_cuda
def test_cuda_run_resumes_and_loads_on_cpu(tmp_path: Path) -> None:
    """Equal up to CUDA's nondeterministic summation order (atomics in scatter/index_add)."""
    _write_data(tmp_path)
    config = _with(_config([STAGE1, STAGE2]), device="cuda")
    full = load_model(train(config, tmp_path / "full", tmp_path))
    assert full.device == torch.device("cpu")
    train(_with(_config([STAGE1]), device="cuda"), tmp_path / "resumed", tmp_path)
    resumed = load_model(train(config, tmp_path / "resumed", tmp_path))
    a, b = full.state_dict(), resumed.state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float(), rtol=1e-3, atol=1e-4) for k in a)
    start = load_model(train(_with(_config([STAGE1]), device="cuda"), tmp_path / "x", tmp_path))
    assert any(not torch.equal(start.state_dict()[k], a[k]) for k in a)  # stage 2 changed it
