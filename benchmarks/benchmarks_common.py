"""Shared helpers of the benchmark scripts."""

from __future__ import annotations

import platform
from pathlib import Path

import torch


def device_label(device: torch.device | str | None = None) -> str:
    """A human-readable name of the device results were measured on (GPU name or CPU model)."""
    device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {torch.get_num_threads()} threads"
    except OSError:
        pass
    return f"{platform.processor() or 'CPU'}, {torch.get_num_threads()} threads"
