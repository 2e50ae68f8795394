"""Shared helpers of the benchmark scripts."""

from __future__ import annotations

import platform
from pathlib import Path

import torch


def cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo`` (``"unknown-cpu"`` where unavailable)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown-cpu"


def device_label(device: torch.device | str | None = None) -> str:
    """A human-readable name of the device results were measured on (GPU name or CPU model)."""
    device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    n = torch.get_num_threads()
    return f"{cpu_name()}, {n} thread{'s' if n != 1 else ''}"


def plot_curves(curves: dict[str, dict[int, float]], path: Path, title: str, xlabel: str = "env steps",
                hlines: dict[str, float] | None = None) -> None:
    """Score curves (``{label: {x: score}}``) and dashed reference levels (``{label: score}``) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, curve in curves.items():
        xs = sorted(curve)
        ax.plot(xs, [curve[x] for x in xs], marker="o", label=label)
    for (label, level), (color, style) in zip((hlines or {}).items(),
                                              [("gray", "--"), ("tab:purple", ":"), ("tab:brown", "-.")] * 3):
        ax.axhline(level, color=color, ls=style, lw=1.5, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("score")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title, fontsize=9)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")
