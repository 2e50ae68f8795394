"""Frames per second of the image path: uint8 frames -> ImageNet normalisation -> DINOv2 CLS.

The backbone has the DINOv2-base architecture (768 wide, 12 layers, 12 heads, patch 14, position
embeddings for 518 px interpolated to 224 px) built from a config with random weights, so the
compute is the real model's without downloading anything. Frames are 224x224 as in Newt.

    python benchmarks/vision_throughput.py                       # CPU, batch 1, 8, 32
    python benchmarks/vision_throughput.py --device cuda --dtype bfloat16 --batch-sizes 1 32 256

Prints a table and writes ``benchmarks/results/vision_throughput_<device>.md``.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import re
import time
from pathlib import Path

import torch

from torchrl_newt.modules.vision import DINOv2Features, build_tiny_dinov2

logger = logging.getLogger("vision_throughput")

RESULTS = Path(__file__).resolve().parent / "results"


def dinov2_base_random(seed: int = 0):
    """DINOv2-base architecture (as ``facebook/dinov2-base``'s config) with random weights."""
    return build_tiny_dinov2(
        768,
        num_layers=12,
        num_attention_heads=12,
        mlp_ratio=4,
        image_size=518,
        patch_size=14,
        layerscale_value=1.0,
        seed=seed,
    )


def device_label(device: torch.device) -> tuple[str, str]:
    """(file slug, human description) of the device."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return "cuda-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"), name
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return "cpu", f"{cpu}, {torch.get_num_threads()} torch threads"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    transform: DINOv2Features, batch: int, device: torch.device, *, warmup: int, min_time: float, min_iters: int
):
    frames = torch.randint(0, 256, (batch, 224, 224, 3), dtype=torch.uint8, device=device)
    for _ in range(warmup):
        transform.features(frames)
    _sync(device)
    times = []
    start = time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        transform.features(frames)
        _sync(device)
        times.append(time.perf_counter() - t0)
    times.sort()
    median = times[len(times) // 2]
    return {"batch": batch, "iters": len(times), "ms_per_batch": median * 1e3, "fps": batch / median}


def _fmt_load(load) -> str:
    return f"{load[0]:.2f}" if load else "n/a"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--min-time", type=float, default=5.0, help="seconds measured per batch size")
    p.add_argument("--min-iters", type=int, default=3)
    p.add_argument("--out", default=None, help="results file (default: results/vision_throughput_<device>.md)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    transform = DINOv2Features(dinov2_base_random()).to(device=device, dtype=dtype)
    params = sum(p.numel() for p in transform.backbone.parameters())
    slug, desc = device_label(device)
    logger.info("DINOv2-base (random weights, %.1fM params) on %s [%s], %s", params / 1e6, device, desc, args.dtype)

    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    rows = [
        measure(transform, b, device, warmup=args.warmup, min_time=args.min_time, min_iters=args.min_iters)
        for b in args.batch_sizes
    ]
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else None
    header = "| batch | frames/s | ms / batch | iterations |\n|---:|---:|---:|---:|"
    lines = [f"| {r['batch']} | {r['fps']:.2f} | {r['ms_per_batch']:.1f} | {r['iters']} |" for r in rows]
    table = "\n".join([header, *lines])
    logger.info("\n%s", table)

    out = Path(args.out) if args.out else RESULTS / f"vision_throughput_{slug}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        f"# DINOv2 image-path throughput ({slug})\n\n"
        f"- device: `{device}` ({desc})\n"
        f"- model: DINOv2-base architecture from config, random weights ({params / 1e6:.1f}M params), "
        f"{args.dtype}, 224x224 uint8 frames -> normalise -> CLS (768-d), `DINOv2Features.features`\n"
        f"- torch {torch.__version__}; median over >= {args.min_iters} timed iterations "
        f"and >= {args.min_time:g} s per batch size after {args.warmup} warm-up call(s)\n"
        f"- command: `PYTHONPATH=. python benchmarks/vision_throughput.py --device {args.device} --dtype {args.dtype} "
        f"--batch-sizes {' '.join(map(str, args.batch_sizes))}`\n"
        f"- host load average (1 min) before/after: {_fmt_load(load_before)} / {_fmt_load(load_after)} "
        f"on {os.cpu_count()} logical CPUs (a shared machine is slower than an idle one)\n\n"
        f"{table}\n"
    )
    logger.info("wrote %s", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
