"""Learning benchmark: TD-MPC2 / Newt components learning one DMControl task on CPU.

Runs ``examples/newt_mmbench.py`` on a single task with a fixed step budget and periodic
deterministic evaluation, evaluates a uniformly random policy on the same task for reference,
and writes the curve (table + PNG) under ``benchmarks/results/``. This is a benchmark, not a
test: it takes several minutes.

    python benchmarks/learning.py                                  # cartpole-balance, 8k steps, UTD 1
    python benchmarks/learning.py --task pendulum-swingup --frames 20000
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import logging
import time
from pathlib import Path

import torch
from torchrl.envs.utils import ExplorationType, set_exploration_type

from torchrl_newt.envs import get_task, make_env

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks_common import device_label, plot_curves  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _example():
    spec = importlib.util.spec_from_file_location("newt_mmbench", ROOT / "examples" / "newt_mmbench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@torch.no_grad()
def random_policy_score(task: str, episodes: int, seed: int) -> float:
    """Mean score of uniformly random (masked) actions over ``episodes`` episodes."""
    env = make_env([task], seed=seed)
    steps = get_task(task).episode_length * episodes
    with set_exploration_type(ExplorationType.RANDOM):
        td = env.rollout(steps, break_when_any_done=False)
    env.close()
    done = td["next", "done"].squeeze(-1)
    return float(td["next", "score"].squeeze(-1)[done].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="cartpole-balance")
    parser.add_argument("--frames", type=int, default=8_000)
    parser.add_argument("--eval-every", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--utd", type=float, default=1.0, help="updates per env step (TD-MPC2's single-task default)")
    parser.add_argument("--tag", default="", help="suffix of the result files (e.g. the variant an --extra option selects)")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more options for the example")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    suffix = (f"_{args.tag}" if args.tag else "") + ("" if args.seed == 1 else f"_seed{args.seed}")
    out_dir = RESULTS / f"learning_{args.task}{suffix}"  # run folder (not committed)
    t0 = time.time()
    ex = _example()
    run = ex.main([
        "--tasks", args.task, "--frames", str(args.frames), "--eval-every", str(args.eval_every),
        "--seed", str(args.seed), "--utd", str(args.utd), "--output-dir", str(out_dir), "--no-language",
        "--eval-episodes", "2", "--seed-episodes", "1", "--logger", "csv", "--quiet",
        "--plan-samples", "128", "--plan-iterations", "4", "--plan-elites", "16", "--plan-pi-trajs", "8",
        *args.extra,
    ])
    elapsed = time.time() - t0
    torch.manual_seed(args.seed)
    rand = random_policy_score(args.task, episodes=5, seed=args.seed + 123)
    history = run["state"]["history"]
    device = "cuda" if torch.cuda.is_available() else "cpu"

    lines = [
        f"# Learning: {args.task} ({device_label()})",
        "",
        f"Budget: {args.frames:,} env steps (action repeat {get_task(args.task).action_repeat}), UTD {args.utd}, "
        f"model S, batch 256, planner 128 samples x 4 iterations; deterministic evaluation of 2 episodes every "
        f"{args.eval_every:,} steps; wall time {elapsed / 60:.1f} min on {device}.",
        f"Random policy (5 episodes): score {rand:.3f}.",
        f"Command: `{' '.join(['python benchmarks/learning.py', *sys.argv[1:]])}`",
        "",
        "| env steps | score | return | vs random |",
        "|---:|---:|---:|---:|",
    ]
    for h in history:
        r = h["results"][args.task]
        lines.append(f"| {h['frames']:,} | {r['score']:.3f} | {r['return']:.1f} | {r['score'] - rand:+.3f} |")
    final = history[-1]["results"][args.task]["score"]
    lines += ["", f"Final score {final:.3f} vs random {rand:.3f}: {'learned' if final > rand + 0.1 else 'NOT learned'}."]
    text = "\n".join(lines) + "\n"
    print(text)
    stem = f"learning_{args.task}_{device}{suffix}"
    (RESULTS / f"{stem}.md").write_text(text)
    _plot(history, args.task, rand, RESULTS / f"{stem}.png")


def _plot(history, task, rand, path) -> None:
    plot_curves({"TD-MPC2 (torchrl_newt)": {h["frames"]: h["results"][task]["score"] for h in history}}, path,
                task, hlines={"random policy": rand})


if __name__ == "__main__":
    main()
