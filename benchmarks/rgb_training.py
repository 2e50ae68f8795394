"""Training speed of the main job with image observations (``--obs rgb``) against state only.

Runs ``python -m torchrl_newt.train`` (the package's copy of ``examples/newt_mmbench.py``) twice on the same
tasks, budget and settings: once on states, once with ``--obs rgb`` (every lane renders 224x224
frames, a frozen DINOv2 encodes them, the world model sees state + 768 features). The backbone has
the DINOv2-base architecture built from its config with random weights, saved to a temporary folder
(the compute of ``facebook/dinov2-base`` without downloading it; pass ``--vision-model`` to use real
weights). Reports env frames/s and updates/s of each run, from the runs' own ``final_scores.json``
(``frames``, ``updates``, ``wall_s``: evaluation included), and writes
``benchmarks/results/rgb_training_<device>.md``.

    python benchmarks/rgb_training.py                          # CPU: mujoco-reacher (50-step episodes), 100 frames
    python benchmarks/rgb_training.py --device cuda --frames 20000 --tasks walker-walk,cheetah-run,cup-catch
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks_common import device_label  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", default="mujoco-reacher")
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--utd", type=float, default=0.1)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--vision-model", default=None, help="real DINOv2 weights (default: DINOv2-base config, random weights)")
    p.add_argument("--output", default=None, help="result file (default benchmarks/results/rgb_training_<device>.md)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from torchrl_newt.modules.vision import build_tiny_dinov2
    from torchrl_newt.train import main as train

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        vision = args.vision_model
        if vision is None:
            vision = str(Path(tmp) / "dinov2-base-random")
            build_tiny_dinov2(768, num_layers=12, num_attention_heads=12, image_size=518).save_pretrained(vision)
        for obs in ("state", "rgb"):
            out_dir = Path(tmp) / obs
            argv_run = ["--tasks", args.tasks, "--frames", str(args.frames), "--utd", str(args.utd),
                        "--eval-every", str(args.frames), "--eval-episodes", "1", "--random-episodes", "0",
                        "--device", args.device, "--output-dir", str(out_dir), "--logger", "none", "--quiet",
                        "--obs", obs, "--distributed", "off"]
            if obs == "rgb":
                argv_run += ["--vision-model", vision]
            if args.threads:
                argv_run += ["--threads", str(args.threads)]
            train(argv_run)
            facts = json.loads((out_dir / "final_scores.json").read_text())
            rows.append({"obs": obs, "frames": facts["frames"], "updates": facts["updates"], "wall_s": facts["wall_s"],
                         "device": facts.get("device")})
    device = rows[0]["device"] or ("cuda" if torch.cuda.is_available() else "cpu")
    lines = [
        f"# Main job with image observations vs states ({device_label()})",
        "",
        f"Tasks {args.tasks}; {args.frames:,} env frames, UTD {args.utd}, model S, the CPU planner defaults; "
        "wall time includes the seeding episodes, the updates and one final evaluation episode per task. "
        "RGB: 224x224 frames, DINOv2-base "
        + ("(random weights, same compute)" if args.vision_model is None else f"from {args.vision_model}")
        + f"; device {device}.",
        f"Command: `python benchmarks/rgb_training.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
        "",
        "| observations | frames | updates | wall s | frames/s | updates/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['obs']} | {r['frames']:,} | {r['updates']:,} | {r['wall_s']:.0f} | "
                     f"{r['frames'] / r['wall_s']:.1f} | {r['updates'] / r['wall_s']:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.output) if args.output else RESULTS / f"rgb_training_{device.split(':')[0]}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    return rows


if __name__ == "__main__":
    main()
