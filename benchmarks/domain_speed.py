"""Stepping speed of the Meta-World, ManiSkill3, OGBench, RoboDesk and Atari MMBench domains.

For a few representative tasks per domain (all buildable tasks with ``--all``), measures on one
CPU core with uniformly random actions:

``raw``
    agent steps/s of the bare :class:`~torchrl_newt.envs.RawTask` (numpy in/out; each agent step is
    ``action_repeat`` simulator steps; episodes reset at the task's episode length);
``sim``
    the same in simulator steps/s (``raw x action_repeat``);
``stack``
    agent steps/s of the full TorchRL lane (:func:`torchrl_newt.envs.make_lane_env`: padding,
    masking, truncation, scoring) driven with ``step_and_maybe_reset`` (first task of each domain).

Writes ``benchmarks/results/domain_speed_<device>.md`` (device named from ``/proc/cpuinfo``)::

    python benchmarks/domain_speed.py                         # representative tasks
    python benchmarks/domain_speed.py --domains atari ogbench --all
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import statistics
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")  # before torchrl (which imports mujoco)

import numpy as np
from benchmarks_common import cpu_name  # noqa: E402  (benchmarks/ is the script's folder)

log = logging.getLogger("domain_speed")

REPRESENTATIVE = {
    "metaworld": ["mw-reach", "mw-pick-place", "mw-door-open", "mw-assembly"],
    "maniskill": ["ms-cartpole-balance", "ms-push-cube", "ms-pick-cube", "ms-ant-walk"],
    "ogbench": ["og-point-maze", "og-ant-maze", "og-ant", "og-antball"],
    "robodesk": ["rd-open-drawer", "rd-push-red"],
    "atari": ["atari-pong", "atari-ms-pacman", "atari-seaquest", "atari-boxing"],
}
STEPS = {"metaworld": 600, "maniskill": 150, "ogbench": 600, "robodesk": 60, "atari": 1500}


def raw_steps_per_second(task: str, steps: int, seed: int = 0) -> float:
    """Random-action agent steps per second of a raw task (resetting at the episode length).

    Examples:
        >>> raw_steps_per_second("atari-pong", steps=50) > 0
        True
    """
    from torchrl_newt.envs import build_raw_task, get_task

    spec = get_task(task)
    raw = build_raw_task(task, seed=seed)
    actions = np.random.default_rng(seed).uniform(-1, 1, (steps, raw.action_dim)).astype(np.float32)
    raw.reset(seed=seed)
    raw.step(actions[0])  # warm-up (lazy allocations)
    t, start = 1, time.perf_counter()
    for i in range(steps):
        if t >= spec.episode_length:
            raw.reset()
            t = 0
        raw.step(actions[i])
        t += 1
    sps = steps / (time.perf_counter() - start)
    raw.close()
    return sps


def stack_steps_per_second(task: str, steps: int, seed: int = 0) -> float:
    """Random-action agent steps per second of the full TorchRL lane of a task."""
    import torch

    from torchrl_newt.envs import make_lane_env

    env = make_lane_env(task, seed=seed)
    td = env.reset()
    spec = env.action_spec
    gen = torch.Generator().manual_seed(seed)
    actions = torch.rand((steps, *spec.shape), generator=gen) * 2 - 1
    td["action"] = actions[0]
    _, td = env.step_and_maybe_reset(td)
    start = time.perf_counter()
    for i in range(steps):
        td["action"] = actions[i]
        _, td = env.step_and_maybe_reset(td)
    sps = steps / (time.perf_counter() - start)
    env.close()
    return sps


def main() -> None:
    from torchrl_newt.envs import get_task, list_tasks

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", nargs="*", default=list(REPRESENTATIVE))
    parser.add_argument("--all", action="store_true", help="every task of the domains (slow)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the steps per task")
    parser.add_argument("--no-stack", action="store_true", help="skip the full-stack measurement")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    import torch

    torch.set_num_threads(1)
    device = cpu_name()
    rows, summary = [], []
    for domain in args.domains:
        tasks = list_tasks(domain) if args.all else REPRESENTATIVE[domain]
        steps = max(10, int(STEPS[domain] * args.scale))
        agent_sps = []
        for task in tasks:
            spec = get_task(task)
            try:
                sps = raw_steps_per_second(task, steps)
            except Exception as err:  # noqa: BLE001  (missing simulator / assets: report and go on)
                log.warning("%-28s skipped: %s", task, str(err).splitlines()[0][:160])
                rows.append((domain, task, None, None, f"skipped: {type(err).__name__}"))
                continue
            agent_sps.append(sps)
            rows.append((domain, task, sps, sps * spec.action_repeat, ""))
            log.info("%-28s %9.0f agent steps/s %9.0f sim steps/s", task, sps, sps * spec.action_repeat)
        stack = None
        if agent_sps and not args.no_stack:
            first = next(r[1] for r in rows if r[0] == domain and r[2] is not None)
            stack = stack_steps_per_second(first, steps)
            log.info("%-28s %9.0f agent steps/s through the full stack", first, stack)
        if agent_sps:
            summary.append((domain, statistics.median(agent_sps), stack))
    slug = re.sub(r"[^A-Za-z0-9]+", "-", device).strip("-").lower()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"domain_speed_{slug}.md"
    lines = [
        f"# Domain stepping speed on {device}",
        "",
        (
            "One core, uniformly random actions, episodes reset at the task's episode length. *Agent* "
            "steps include the task's action repeat (*sim* = agent x repeat). *Stack* is the full "
            "TorchRL lane (`make_lane_env`, padding/masking/truncation/score) on the domain's first task. "
            "Shared machine: expect run-to-run noise of +-30%."
        ),
        "",
        "| domain | median agent steps/s | stack agent steps/s (first task) |",
        "|---|---:|---:|",
        *[f"| {d} | {m:,.0f} | {'-' if s is None else f'{s:,.0f}'} |" for d, m, s in summary],
        "",
        "| domain | task | agent steps/s | sim steps/s | note |",
        "|---|---|---:|---:|---|",
        *[
            f"| {d} | {t} | {'-' if a is None else f'{a:,.0f}'} | {'-' if s is None else f'{s:,.0f}'} | {n} |"
            for d, t, a, s, n in rows
        ],
        "",
    ]
    path.write_text("\n".join(lines))
    log.info("wrote %s", path)


if __name__ == "__main__":
    main()
