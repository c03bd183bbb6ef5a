"""Where training runs: device and precision (``TrainConfig.device`` / ``precision``).

``auto`` (the default of both) makes one config serve both machines: CUDA with bf16 autocast
(fp32 master weights, LLaMo's "bf16 mixed"; fp32 on a GPU older than Ampere) when a GPU is
visible, else the CPU in fp32 (bf16
autocast measured 6x slower than fp32 on CPUs without AVX512-BF16; ``precision: "bf16"``
still turns it on there).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Any

from llamo_plugin.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")


def check_device_name(name: str) -> None:
    """Raise :class:`ConfigError` unless ``name`` is ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    if name not in DEVICES and re.fullmatch(r"cuda:\d+", name) is None:
        raise ConfigError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', not {name!r}")


def check_precision(name: str) -> None:
    if name not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, not {name!r}")


@dataclass(frozen=True)
class TrainDevice:
    """The resolved device and whether the forward pass runs under bf16 autocast."""

    device: Any  # torch.device
    bf16: bool

    def autocast(self) -> Any:
        """The autocast context of a training forward pass (a no-op in fp32)."""
        import torch

        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def describe(self) -> str:
        return f"{self.device} ({'bf16 autocast' if self.bf16 else 'fp32'})"


def resolve(device: str = "auto", precision: str = "auto") -> TrainDevice:
    """The device and precision a run uses; a CUDA device that is not there is an error."""
    import torch

    check_device_name(device)
    check_precision(precision)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r}: torch {torch.__version__} sees no CUDA device")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) visible"
            )
    resolved = torch.device(device)
    if resolved.type != "cuda":
        return TrainDevice(resolved, precision == "bf16")
    # bf16 tensor cores from compute capability 8.0 (Ampere) on
    supported = torch.cuda.get_device_capability(resolved.index or 0) >= (8, 0)
    if precision == "bf16" and not supported:
        raise ConfigError(f"precision 'bf16': {device} does not support bfloat16")
    return TrainDevice(resolved, precision == "bf16" or (precision == "auto" and supported))
