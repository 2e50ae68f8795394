"""Newt against the paper's baselines on the main job's default soup, at equal env steps, on CPU.

Reads a finished main-job run (``python examples/newt_mmbench.py --output-dir RUN``: its
``final_scores.json`` and ``checkpoint.pt``), then, on the same tasks and evaluation settings:

* generates ``--num-demos`` demonstrations per task from that run's checkpoint with Newt's
  acceptance rule (``torchrl_newt.demos``), for behaviour cloning;
* trains multitask BC on them (``examples/baselines/bc.py``; BC takes no env steps);
* trains PPO and FastTD3-style TD3 (``examples/baselines/ppo.py``, ``td3.py``) for the run's number
  of env steps, evaluating at the same points as the Newt run.

Writes one table (final score per task and the MMBench score, beside uniform random actions) to
``benchmarks/results/baselines_<device>.md`` and the MMBench score against env steps to ``.png``.

    python examples/newt_mmbench.py --output-dir runs/newt-default     # the main job, ~12 min on CPU
    python benchmarks/baselines.py --newt-run runs/newt-default --threads 1
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import logging
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks_common import device_label, plot_curves  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"baseline_{name}", ROOT / "examples" / "baselines" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--newt-run", required=True, help="output folder of a finished main-job run")
    p.add_argument("--num-demos", type=int, default=4, help="demonstrations per task for BC")
    p.add_argument("--bc-samples", type=int, default=100_000, help="demo transitions BC trains on")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--work", default=None, help="run folders (default benchmarks/results/baselines_runs)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    from torchrl_newt.data import save_demos
    from torchrl_newt.demos import generate_demos
    from torchrl_newt.evaluate import mmbench_score

    run = Path(args.newt_run)
    newt = json.loads((run / "final_scores.json").read_text())
    ckpt = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
    tasks = list(newt["tasks"])
    frames = int(newt["frames"])
    train_args = ckpt["args"]
    eval_every, episodes = int(train_args["eval_every"]), int(train_args["eval_episodes"])
    work = Path(args.work) if args.work else RESULTS / "baselines_runs"
    common = ["--tasks", ",".join(tasks), "--seed", str(train_args["seed"]), "--eval-episodes", str(episodes),
              "--logger", "csv", "--quiet"] + (["--threads", str(args.threads)] if args.threads else [])
    t0 = time.time()

    # demos belong to one checkpoint and count: a folder per (checkpoint content, --num-demos), never stale
    digest = hashlib.sha256((run / "checkpoint.pt").read_bytes()).hexdigest()[:12]
    demo_dir = work / "demos" / f"{digest}-n{args.num_demos}"
    for task in tasks:
        if not (demo_dir / f"{task}.pt").exists():
            demos = generate_demos(run / "checkpoint.pt", task, args.num_demos, seed=train_args["seed"],
                                   max_attempts=40 * args.num_demos)
            save_demos(demo_dir, demos, [task], format="newt")
    runs = {
        "BC": _script("bc").main(common + ["--demos", str(demo_dir), "--frames", str(args.bc_samples),
                                            "--output-dir", str(work / "bc")]),
        "PPO": _script("ppo").main(common + ["--frames", str(frames), "--eval-every", str(eval_every),
                                              "--output-dir", str(work / "ppo")]),
        "TD3": _script("td3").main(common + ["--frames", str(frames), "--eval-every", str(eval_every),
                                              "--batch-size", "256", "--utd", "1", "--output-dir", str(work / "td3")]),
    }

    random = {t: {"score": newt["tasks"][t]["random"]} for t in tasks}
    columns = {"random": random, "Newt (torchrl_newt)": newt["tasks"], **{k: v["results"] for k, v in runs.items()}}
    lines = [
        f"# Newt vs baselines on the main job's default soup ({device_label()})",
        "",
        f"Tasks {', '.join(tasks)}; {frames:,} env steps for Newt (its run `{run}`: "
        f"{newt.get('updates', '?')} updates, {newt.get('wall_s', 0) / 60:.1f} min), PPO and TD3; BC trains on "
        f"{args.num_demos} demonstrations per task generated from the Newt run's checkpoint with Newt's acceptance "
        f"rule ({args.bc_samples:,} demo transitions, no env steps). Final evaluation: {episodes} deterministic "
        f"episodes per task; random: uniform random actions on the Newt run's final evaluation seeds. "
        f"Total benchmark time {(time.time() - t0) / 60:.1f} min.",
        f"Command: `python benchmarks/baselines.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
        "",
        "| task | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for t in tasks:
        lines.append(f"| {t} | " + " | ".join(f"{c[t]['score']:.3f}" for c in columns.values()) + " |")
    lines.append("| **MMBench score** | " + " | ".join(f"**{mmbench_score(c):.3f}**" for c in columns.values()) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"baselines_{device}.md").write_text(text)
    curves = {"Newt (torchrl_newt)": {h["frames"]: h["mean_score"] for h in ckpt["state"]["history"]}}
    for name in ("PPO", "TD3"):
        curves[name] = {h["frames"]: h["mmbench_score"] for h in runs[name]["state"]["history"]}
    plot_curves(curves, RESULTS / f"baselines_{device}.png", f"MMBench score, {len(tasks)} tasks ({device_label()})",
                hlines={"BC (final)": mmbench_score(runs["BC"]["results"]), "random": mmbench_score(random)})
    return {"columns": columns, "runs": runs}


if __name__ == "__main__":
    main()
