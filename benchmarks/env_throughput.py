"""Environment throughput of the multitask stack on the 14 Gymnasium MuJoCo + Box2D tasks.

Every mode steps all tasks once per batched step (one lane per task) with uniform random
actions, resetting each lane at its task's episode length, and counts *lane steps* (one agent
step of one task, i.e. ``action_repeat`` simulator steps):

``raw``
    the bare :class:`~torchrl_newt.envs.RawTask` objects stepped in a Python loop (numpy in/out,
    no padding, no tensors): the simulator cost the others are measured against.
``gym-sync`` / ``gym-async``
    the reference design: each raw task behind a padded ``gymnasium.Env`` (observation padded
    to 128, action to 16, time limit at the episode length), batched by
    ``gymnasium.vector.SyncVectorEnv`` / ``AsyncVectorEnv`` (one worker process per task).
``stack-serial`` / ``stack-parallel``
    ``torchrl_newt.envs.make_env(tasks, parallel=False/True)`` (the default ``"vector"`` backend,
    :class:`~torchrl_newt.envs.MultitaskVecEnv`): padding, masking, task ids, truncation and
    episode score done once per batched step, lanes in this process or dealt to one worker
    process per core; driven with ``step_and_maybe_reset`` as collectors do.
``lanes-serial`` / ``lanes-parallel``
    ``make_env(..., backend="transforms")``: the per-lane TorchRL transform stack in a
    ``SerialEnv`` / ``ParallelEnv`` (one worker process per task), for comparison.

    python benchmarks/env_throughput.py                      # all modes, 300 batched steps
    python benchmarks/env_throughput.py --modes raw stack-serial --profile

Prints a table and writes ``benchmarks/results/env_throughput_<device>.md``. Goals (see
``shared/notes/performance-targets.md``): the stack at least as fast as ``AsyncVectorEnv``,
and its per-step overhead at most 1.5x the raw simulators (``stack-serial`` vs ``raw``, both in
one process). With ``--profile`` the serial stack runs under cProfile and the top entries are
appended to the results file
(from a separate, untimed run).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import platform
import pstats
import sys
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np
import torch

from torchrl_newt.envs import build_raw_task, get_task, list_tasks

logger = logging.getLogger("env_throughput")

RESULTS = Path(__file__).resolve().parent / "results"
OBS_PAD, ACT_PAD = 128, 16
MODES = ("raw", "gym-sync", "gym-async", "stack-serial", "stack-parallel", "lanes-serial", "lanes-parallel")


def default_tasks() -> list[str]:
    """The 14 Gymnasium MuJoCo and Box2D MMBench tasks."""
    return list_tasks("mujoco") + list_tasks("box2d")


def cpu_description() -> str:
    """CPU model (from ``/proc/cpuinfo``) and core count."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


# -- the reference design: padded gymnasium envs -----------------------------------------------
def padded_gym_env(task: str, seed: int):
    """A raw task behind a ``gymnasium.Env`` with padded spaces and a time limit.

    Mirrors what the TorchRL stack does (padding, truncation at the episode length, episode
    return and score at the end) so the vector envs do the same work.
    """
    import gymnasium as gym

    class PaddedTask(gym.Env):
        metadata = {"render_modes": []}

        def __init__(self) -> None:
            self.spec_ = get_task(task)
            self.raw = build_raw_task(task)
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS_PAD,), np.float32)
            self.action_space = gym.spaces.Box(-1.0, 1.0, (ACT_PAD,), np.float32)
            self._obs = np.zeros(OBS_PAD, np.float32)
            self._t, self._return, self._seed = 0, 0.0, seed

        def _pad(self, obs: np.ndarray) -> np.ndarray:
            out = self._obs.copy()
            out[: obs.shape[0]] = obs
            return out

        def reset(self, *, seed: int | None = None, options: dict | None = None):
            super().reset(seed=seed)
            seed, self._seed = (self._seed if seed is None else seed), None
            self._t, self._return = 0, 0.0
            return self._pad(self.raw.reset(seed=seed)), {}

        def step(self, action: np.ndarray):
            obs, reward, info = self.raw.step(action[: self.raw.action_dim])
            self._t += 1
            self._return += reward
            truncated = self._t >= self.spec_.episode_length
            if truncated:
                info = {"score": self.spec_.score(self._return, info.get("success", False))}
            return self._pad(obs), reward, False, truncated, info

        def close(self) -> None:
            self.raw.close()

    return PaddedTask()


# -- measurements --------------------------------------------------------------------------------
def run_raw(tasks: list[str], steps: int, warmup: int, seed: int) -> float:
    raws = [build_raw_task(t) for t in tasks]
    lengths = [get_task(t).episode_length for t in tasks]
    dims = [r.action_dim for r in raws]
    rng = np.random.default_rng(seed)
    for i, r in enumerate(raws):
        r.reset(seed=seed + i)
    t_count = [0] * len(raws)

    def one_step() -> None:
        actions = rng.uniform(-1, 1, (len(raws), ACT_PAD)).astype(np.float32)
        for i, r in enumerate(raws):
            r.step(actions[i, : dims[i]])
            t_count[i] += 1
            if t_count[i] >= lengths[i]:
                r.reset()
                t_count[i] = 0

    for _ in range(warmup):
        one_step()
    start = time.perf_counter()
    for _ in range(steps):
        one_step()
    elapsed = time.perf_counter() - start
    for r in raws:
        r.close()
    return elapsed


def run_gym_vector(tasks: list[str], steps: int, warmup: int, seed: int, asynchronous: bool) -> float:
    import gymnasium as gym

    fns = [(lambda t=t, i=i: padded_gym_env(t, seed + i)) for i, t in enumerate(tasks)]
    cls = gym.vector.AsyncVectorEnv if asynchronous else gym.vector.SyncVectorEnv
    t0 = time.perf_counter()
    venv = cls(fns)
    rng = np.random.default_rng(seed)
    venv.reset(seed=seed)
    logger.debug("%s ready in %.1f s", cls.__name__, time.perf_counter() - t0)
    try:
        for _ in range(warmup):
            venv.step(rng.uniform(-1, 1, (len(tasks), ACT_PAD)).astype(np.float32))
        start = time.perf_counter()
        for _ in range(steps):
            venv.step(rng.uniform(-1, 1, (len(tasks), ACT_PAD)).astype(np.float32))
        return time.perf_counter() - start
    finally:
        venv.close()


def run_stack(
    tasks: list[str], steps: int, warmup: int, seed: int, parallel: bool, profile: bool = False, backend: str = "vector"
) -> tuple[float, str]:
    from torchrl_newt.envs.factory import make_env

    env = make_env(tasks, parallel=parallel, seed=seed, backend=backend)
    try:
        td = env.reset()
        n = len(tasks)

        def loop(k: int) -> None:
            nonlocal td
            for _ in range(k):
                td.set("action", torch.rand(n, ACT_PAD) * 2 - 1)
                _, td = env.step_and_maybe_reset(td)

        loop(warmup)
        start = time.perf_counter()
        loop(steps)
        elapsed = time.perf_counter() - start
        report = ""
        if profile:  # a separate, untimed run: cProfile itself roughly doubles the step time
            prof = cProfile.Profile()
            prof.enable()
            loop(steps)
            prof.disable()
            buf = io.StringIO()
            stats = pstats.Stats(prof, stream=buf)
            stats.sort_stats("cumulative").print_stats(r"(torchrl|tensordict|torchrl_newt)", 40)
            report = buf.getvalue()
        return elapsed, report
    finally:
        env.close()


def raw_per_task(tasks: list[str], steps: int, seed: int) -> dict[str, float]:
    """Agent steps per second of each bare raw task (random actions)."""
    out = {}
    rng = np.random.default_rng(seed)
    for t in tasks:
        raw = build_raw_task(t)
        raw.reset(seed=seed)
        actions = rng.uniform(-1, 1, (steps, raw.action_dim)).astype(np.float32)
        start = time.perf_counter()
        for a in actions:
            raw.step(a)
        out[t] = steps / (time.perf_counter() - start)
        raw.close()
    return out


def measure(mode: str, tasks: list[str], steps: int, warmup: int, seed: int, profile: bool) -> tuple[float, str]:
    runners: dict[str, Callable[[], Any]] = {
        "raw": lambda: (run_raw(tasks, steps, warmup, seed), ""),
        "gym-sync": lambda: (run_gym_vector(tasks, steps, warmup, seed, asynchronous=False), ""),
        "gym-async": lambda: (run_gym_vector(tasks, steps, warmup, seed, asynchronous=True), ""),
        "stack-serial": lambda: run_stack(tasks, steps, warmup, seed, parallel=False, profile=profile),
        "stack-parallel": lambda: run_stack(tasks, steps, warmup, seed, parallel=True),
        "lanes-serial": lambda: run_stack(tasks, steps, warmup, seed, parallel=False, backend="transforms"),
        "lanes-parallel": lambda: run_stack(tasks, steps, warmup, seed, parallel=True, backend="transforms"),
    }
    return runners[mode]()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=None, help="task names (default: the 14 MuJoCo + Box2D tasks)")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--steps", type=int, default=300, help="timed batched steps per mode")
    parser.add_argument("--warmup", type=int, default=20, help="untimed batched steps per mode")
    parser.add_argument("--per-task-steps", type=int, default=300, help="steps per task for the raw per-task table (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="cProfile the serial stack and append the top entries")
    parser.add_argument("--out", type=Path, default=RESULTS / "env_throughput_cpu.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)

    tasks = args.tasks or default_tasks()
    n = len(tasks)
    device = cpu_description()
    logger.info("device: %s; %d tasks; %d timed batched steps per mode", device, n, args.steps)

    results: dict[str, float] = {}
    profile_report = ""
    for mode in args.modes:
        t0 = time.perf_counter()
        elapsed, report = measure(mode, tasks, args.steps, args.warmup, args.seed, args.profile)
        profile_report = profile_report or report
        results[mode] = elapsed
        logger.info("%-15s %8.0f lane-steps/s  (%.1f s timed, %.1f s with setup)", mode, n * args.steps / elapsed, elapsed, time.perf_counter() - t0)

    raw_t = results.get("raw")
    ref_t = results.get("gym-async")
    rows = [
        "| mode | lane-steps/s | batched steps/s | us per lane-step | time vs raw | speed vs AsyncVectorEnv |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for mode, elapsed in results.items():
        per = elapsed / (n * args.steps) * 1e6
        vs_raw = f"{elapsed / raw_t:.2f}x" if raw_t else "-"
        vs_ref = f"{ref_t / elapsed:.2f}x" if ref_t else "-"
        rows.append(f"| {mode} | {n * args.steps / elapsed:,.0f} | {args.steps / elapsed:,.1f} | {per:,.0f} | {vs_raw} | {vs_ref} |")
    table = "\n".join(rows)

    goals = []
    if raw_t and "stack-serial" in results:
        ratio = results["stack-serial"] / raw_t
        goals.append(f"- overhead (stack-serial / raw, same process): {ratio:.2f}x (goal <= 1.5x): {'met' if ratio <= 1.5 else 'MISSED'}")
    if ref_t:
        stack = {m: results[m] for m in ("stack-serial", "stack-parallel") if m in results}
        if stack:
            best = min(stack, key=stack.get)
            speed = ref_t / stack[best]
            goals.append(f"- best stack ({best}) vs AsyncVectorEnv: {speed:.2f}x (goal >= 1x): {'met' if speed >= 1 else 'MISSED'}")

    per_task = raw_per_task(tasks, args.per_task_steps, args.seed) if args.per_task_steps else {}
    task_rows = ["| task | action repeat | raw agent steps/s |", "|---|---:|---:|"]
    task_rows += [f"| {t} | {get_task(t).action_repeat} | {v:,.0f} |" for t, v in per_task.items()]

    text = "\n".join(
        [
            "# Environment throughput: Gymnasium MuJoCo + Box2D tasks",
            "",
            f"Device: {device}. Python {platform.python_version()}, torch {torch.__version__}, "
            f"1 torch thread. {n} tasks (one lane each), {args.steps} timed batched steps after {args.warmup} "
            "warm-up steps, uniform random actions, lanes reset at their episode lengths.",
            "Shared machine: other jobs may run at the same time; expect +-20 % noise.",
            "",
            f"Command: `{' '.join(['python benchmarks/env_throughput.py', *(sys.argv[1:] if argv is None else argv)])}`",
            "",
            table,
            "",
            *goals,
            "",
            *(["## Raw tasks alone", "", *task_rows, ""] if per_task else []),
            *(["## cProfile of stack-serial (separate run; cumulative time, TorchRL/tensordict/torchrl_newt frames)", "", "```", profile_report.strip(), "```", ""] if profile_report else []),
        ]
    )
    print(table)
    print("\n".join(goals))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    logger.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
