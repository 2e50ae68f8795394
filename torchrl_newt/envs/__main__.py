"""List the registered tasks: ``python -m torchrl_newt.envs`` (console script ``torchrl-newt-tasks``).

The table says, for each task, its facts (dims, episode length, discount, score rule) and:

* **fidelity**, how it relates to Newt's own environment code (nicklashansen/newt at commit
  75def92, ``tdmpc2/envs/``):

  - ``golden``: checked step by step against the reference's recorded seed-1 trajectory
    (``tests/envs/test_golden.py``; the golden folder's task list, read at run time from
    ``$TORCHRL_NEWT_SHARED`` or ``../shared`` next to the checkout when present, else the list
    shipped here as :data:`SHIPPED_GOLDEN_TASKS`), minus the known differences;
  - ``newt``: implemented from Newt's definition, no golden trajectory to check it against;
  - ``differs``: known to differ, with a short reason (Meta-World: Newt's private v2 fork cannot be
    installed, we build v3; the tasks the golden test lists as known differences; held-out tasks
    that Newt's code at 75def92 does not define);
  - ``custom``: registered by the user (:func:`~torchrl_newt.envs.register_task`).

* **downloads**: the ManiSkill asset packs a task needs beyond the wheel (``ycb``, ``xarm6``,
  ``anymal_c``), marked ``(missing)`` when not downloaded on this machine;
* **status**: ``not checked`` unless ``--check`` is given, which builds, resets and steps every
  selected task and reports ``ok`` or the error (the exit code is then 1 if any task failed).

Without ``--check`` the listing builds nothing and imports no simulator of its own, so it is fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from torchrl_newt.envs._mmbench_facts import TASK_ROWS
from torchrl_newt.envs.registry import ScoreRule, TaskSpec, build_raw_task, get_task, list_tasks

__all__ = [
    "FIDELITY_VALUES",
    "GOLDEN_KNOWN_DIFFERENCES",
    "METAWORLD_NOTE",
    "NOT_IN_NEWT_AT_COMMIT",
    "SHIPPED_GOLDEN_TASKS",
    "check_task",
    "fidelity",
    "golden_tasks",
    "main",
    "newt_source",
    "required_downloads",
    "score_text",
    "shared_dir",
    "task_rows",
]

logger = logging.getLogger(__name__)

#: The values of the ``fidelity`` column.
FIDELITY_VALUES = ("golden", "newt", "differs", "custom")

#: Why the Meta-World tasks differ from Newt's.
METAWORLD_NOTE = (
    "Newt used a private Meta-World v2 fork that cannot be installed; we build metaworld 3.1.1's v3 "
    "goal-observable envs: success (the score) is comparable in spirit, rewards/returns are not identical"
)

_NO_XML = "Newt's MJCF model of this body is not available; ours is a reconstruction, so rollouts drift"
#: Golden tasks that ``tests/envs/test_golden.py`` lists as known differences (its
#: ``KNOWN_TRAJECTORY_DIFFERENCES`` and ``KNOWN_PROBE_DIFFERENCES``), with a short reason.
#: ``tests/envs/test_task_table.py`` keeps the two in sync.
GOLDEN_KNOWN_DIFFERENCES: dict[str, str] = {
    **{
        t: _NO_XML
        for t in (
            "jumper-jump", "giraffe-run", "spinner-spin", "spinner-spin-backward", "spinner-jump",
            "spinner-spin-four", "spinner-spin-backward-four", "spinner-jump-four",
        )
    },
    **{
        t: "incline angle fitted to the golden data, not read from Newt's walker_incline.xml; "
        "diverges after ~94 steps"
        for t in ("walker-stand-incline", "walker-walk-incline", "walker-run-incline")
    },
    **{
        t: "golden recorded with other MuJoCo/dm_control builds (~1e-2 drift); Newt's own wrapper run "
        "here gives exactly our trajectory"
        for t in ("rd-open-slide", "rd-push-red")
    },
    "pygame-spaceship": "Newt's unseeded constructor reset draws an asteroid that survives the seeded "
    "reset; it cannot be derived from the seed",
}

_LATER_NEWT = (
    "not defined by Newt at commit 75def92 (make_env raises 'Unknown task'); follows a later Newt "
    "revision (the tdmpc2/ copy in github.com/Harshit2807161/newt-exp)"
)
#: Held-out tasks that Newt's code at 75def92 does not define.
NOT_IN_NEWT_AT_COMMIT: dict[str, str] = {
    t: _LATER_NEWT
    for t in (
        "pygame-point-maze-var5", "pygame-point-maze-var6", "pygame-point-maze-var7",
        "pygame-point-maze-var8", "pygame-reacher-var1", "pygame-reacher-var2",
    )
}

# BEGIN SHIPPED_GOLDEN_TASKS (generated: python scripts/gen_domains_table.py --golden-list)
#: The tasks of the golden folder (``../shared/mmbench/golden/*.json``), used when it is absent.
SHIPPED_GOLDEN_TASKS: tuple[str, ...] = (
    "acrobot-swingup",
    "atari-boxing",
    "atari-ms-pacman",
    "atari-pong",
    "bipedal-walker-flat",
    "bipedal-walker-hills",
    "bipedal-walker-obstacles",
    "bipedal-walker-rugged",
    "bipedal-walker-uneven",
    "cartpole-balance",
    "cartpole-balance-long-sparse",
    "cartpole-balance-sparse",
    "cartpole-balance-two-poles-sparse",
    "cartpole-swingup",
    "cartpole-swingup-sparse",
    "cheetah-jump",
    "cheetah-run",
    "cheetah-run-back",
    "cheetah-run-backward",
    "cheetah-run-front",
    "cup-catch",
    "cup-spin",
    "finger-spin",
    "finger-turn-easy",
    "finger-turn-hard",
    "fish-swim",
    "giraffe-run",
    "hopper-hop",
    "hopper-hop-backward",
    "hopper-stand",
    "jumper-jump",
    "lunarlander-hover",
    "lunarlander-land",
    "lunarlander-takeoff",
    "ms-cartpole-balance",
    "ms-pick-cube",
    "ms-reach",
    "mujoco-ant",
    "mujoco-halfcheetah",
    "mujoco-hopper",
    "mujoco-inverted-pendulum",
    "mujoco-reacher",
    "mujoco-walker",
    "og-ant",
    "og-ant-arena",
    "og-ant-bottleneck",
    "og-ant-circle",
    "og-ant-maze",
    "og-ant-spiral",
    "og-antball",
    "og-point-arena",
    "og-point-bottleneck",
    "og-point-circle",
    "og-point-maze",
    "og-point-spiral",
    "og-point-var1",
    "og-point-var2",
    "pendulum-spin",
    "pendulum-swingup",
    "pygame-air-hockey",
    "pygame-bird-attack",
    "pygame-cartpole-balance",
    "pygame-cartpole-balance-sparse",
    "pygame-cartpole-swingup",
    "pygame-cartpole-swingup-sparse",
    "pygame-cartpole-tremor",
    "pygame-chase-evade",
    "pygame-coconut-dodge",
    "pygame-coinrun",
    "pygame-cowboy",
    "pygame-highway",
    "pygame-landing",
    "pygame-point-maze-var1",
    "pygame-point-maze-var2",
    "pygame-point-maze-var3",
    "pygame-point-maze-var4",
    "pygame-pong",
    "pygame-reacher-easy",
    "pygame-reacher-hard",
    "pygame-rocket-collect",
    "pygame-spaceship",
    "quadruped-run",
    "quadruped-walk",
    "rd-open-slide",
    "rd-push-red",
    "reacher-easy",
    "reacher-hard",
    "reacher-three-easy",
    "reacher-three-hard",
    "spinner-jump",
    "spinner-jump-four",
    "spinner-spin",
    "spinner-spin-backward",
    "spinner-spin-backward-four",
    "spinner-spin-four",
    "walker-arabesque",
    "walker-headstand",
    "walker-legs-up",
    "walker-lie-down",
    "walker-run",
    "walker-run-backward",
    "walker-run-incline",
    "walker-stand",
    "walker-stand-incline",
    "walker-walk",
    "walker-walk-backward",
    "walker-walk-incline",
)
# END SHIPPED_GOLDEN_TASKS

_NEWT = "tdmpc2/envs/"


def shared_dir() -> Path:
    """``$TORCHRL_NEWT_SHARED``, else the ``shared`` folder next to the checkout (as the tests)."""
    env = os.environ.get("TORCHRL_NEWT_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared"


def golden_tasks() -> tuple[frozenset[str], str]:
    """The tasks with a golden trajectory, and where that list came from.

    Returns:
        ``(tasks, origin)``: the stems of ``mmbench/golden/*.json`` in the shared folder when it
        exists (``origin`` is its path), else :data:`SHIPPED_GOLDEN_TASKS` (``origin`` is
        ``"shipped list"``).

    Examples:
        >>> tasks, origin = golden_tasks()
        >>> "walker-walk" in tasks, "mw-assembly" in tasks
        (True, False)
    """
    folder = shared_dir() / "mmbench" / "golden"
    if folder.is_dir():
        found = frozenset(p.stem for p in folder.glob("*.json"))
        if found:
            return found, str(folder)
    logger.debug("golden folder %s not found; using the shipped list", folder)
    return frozenset(SHIPPED_GOLDEN_TASKS), "shipped list"


def _is_mmbench(spec: TaskSpec) -> bool:
    return 0 <= spec.task_id < len(TASK_ROWS) and spec.name == TASK_ROWS[spec.task_id][0]


def fidelity(spec: TaskSpec | str, golden: Iterable[str] | None = None) -> tuple[str, str]:
    """How a task relates to Newt's definition: ``(value, reason)``.

    Args:
        spec: the task (or its name).
        golden: the tasks with a golden trajectory (default: :func:`golden_tasks`).

    Returns:
        One of :data:`FIDELITY_VALUES` and a short reason (``""`` for ``golden`` and ``newt``).

    Examples:
        >>> fidelity("walker-walk")
        ('golden', '')
        >>> fidelity("mw-assembly")[0], fidelity("rd-push-green")[0], fidelity("jumper-jump")[0]
        ('differs', 'newt', 'differs')
    """
    spec = get_task(spec)
    golden = golden_tasks()[0] if golden is None else frozenset(golden)
    if not _is_mmbench(spec):
        return "custom", "registered by the user, not an MMBench task"
    if spec.builder_domain == "metaworld":
        return "differs", METAWORLD_NOTE
    if spec.name in GOLDEN_KNOWN_DIFFERENCES:
        return "differs", GOLDEN_KNOWN_DIFFERENCES[spec.name]
    if spec.name in NOT_IN_NEWT_AT_COMMIT:
        return "differs", NOT_IN_NEWT_AT_COMMIT[spec.name]
    if spec.name in golden:
        return "golden", ""
    return "newt", ""


def newt_source(spec: TaskSpec | str) -> list[str]:
    """The files of Newt's code (commit 75def92) that define a task: the suite's loader, then its
    task module where it has one (``[]`` for user tasks and tasks Newt does not define).

    Examples:
        >>> newt_source("cheetah-jump")
        ['tdmpc2/envs/dmcontrol.py', 'tdmpc2/envs/tasks/cheetah.py']
        >>> newt_source("pygame-air-hockey")
        ['tdmpc2/envs/pygame.py', 'tdmpc2/envs/tasks/pygame/air_hockey.py']
        >>> newt_source("walker-walk"), newt_source("og-point-var1")[1]
        (['tdmpc2/envs/dmcontrol.py'], 'tdmpc2/envs/tasks/ogbench_maze.py')
    """
    spec = get_task(spec)
    if not _is_mmbench(spec) or spec.name in NOT_IN_NEWT_AT_COMMIT:
        return []
    src, domain, name = dict(spec.source), spec.builder_domain, spec.name
    if domain in ("dmcontrol", "dmcontrol-ext"):
        files = [_NEWT + "dmcontrol.py"]
        if src.get("kind") == "dm_control_custom":
            files.append(f"{_NEWT}tasks/{src['domain']}.py")
        return files
    if domain == "pygame":
        game = name.removeprefix("pygame-")
        for family, module in (("cartpole", "cartpole"), ("point-maze", "point_maze"), ("reacher", "reacher")):
            if game.startswith(family):
                game = module
        return [_NEWT + "pygame.py", f"{_NEWT}tasks/pygame/{game.replace('-', '_')}.py"]
    if domain == "box2d":
        module = "bipedal_walker" if name.startswith("bipedal-walker") else "lunarlander"
        return [_NEWT + "box2d.py", f"{_NEWT}tasks/{module}.py"]
    if domain == "maniskill":
        return [_NEWT + "maniskill.py"] + ([src["custom_env_file"]] if src.get("custom_env_file") else [])
    if domain == "ogbench":
        entry = str(src.get("entry_point", ""))
        return [_NEWT + "ogbench.py"] + ([entry.split(":")[0]] if entry.startswith(_NEWT) else [])
    if domain == "mujoco":
        return [_NEWT + "mujoco.py"]
    if domain in ("metaworld", "robodesk", "atari"):
        return [f"{_NEWT}{domain}.py"]
    return []


def required_downloads(spec: TaskSpec | str) -> tuple[str, ...]:
    """Asset packs a task needs beyond its pip extra (ManiSkill's ``ycb``/``xarm6``/``anymal_c``).

    Examples:
        >>> required_downloads("ms-pick-apple"), required_downloads("ms-pick-cube"), required_downloads("walker-walk")
        (('ycb',), (), ())
    """
    spec = get_task(spec)
    if spec.builder_domain != "maniskill":
        return ()
    from torchrl_newt.envs.domains import maniskill  # light: imports no simulator

    return tuple(maniskill.required_assets(spec))


def _missing_downloads(spec: TaskSpec) -> list[str]:
    if not required_downloads(spec):
        return []
    from torchrl_newt.envs.domains import maniskill

    return list(maniskill.missing_assets(spec))


def score_text(rule: ScoreRule) -> str:
    """The score rule as a short formula of the episode return ``R``.

    Examples:
        >>> score_text(ScoreRule("return", 0.0, 1000.0)), score_text(ScoreRule("success"))
        ('R/1000', 'success')
        >>> score_text(ScoreRule("return_clip", 0.0, 250.0)), score_text(ScoreRule("return_clip", -3.0, 3.0))
        ('clip(R,0,250)/250', '(clip(R,-3,3)+3)/6')
    """
    if rule.kind == "success":
        return "success"
    if rule.kind == "return":
        return f"R/{rule.high:g}"
    lo, hi = rule.low, rule.high
    if lo == 0:
        return f"clip(R,0,{hi:g})/{hi:g}"
    shift = f"+{-lo:g}" if lo < 0 else f"-{lo:g}"
    return f"(clip(R,{lo:g},{hi:g}){shift})/{hi - lo:g}"


def check_task(spec: TaskSpec | str, seed: int = 0) -> str:
    """Build, reset and step a task once: ``"ok"`` or ``"error: <type>: <message>"``.

    Examples:
        >>> status = check_task("pygame-cartpole-balance")  # needs pygame-ce (the ``arcade`` extra)
        >>> status == "ok" or status.startswith("error: MissingDependencyError")
        True
    """
    spec = get_task(spec)
    raw = None
    try:
        raw = build_raw_task(spec)
        obs = np.asarray(raw.reset(seed=seed))
        if obs.shape != (raw.obs_dim,):
            raise RuntimeError(f"reset gave an observation of shape {obs.shape}, expected ({raw.obs_dim},)")
        action = np.random.default_rng(seed).uniform(-1.0, 1.0, raw.action_dim).astype(np.float32)
        obs, reward, _ = raw.step(action)
        if not (np.all(np.isfinite(obs)) and np.isfinite(float(reward))):
            raise RuntimeError("non-finite observation or reward after one step")
        return "ok"
    except Exception as err:  # noqa: BLE001 - report every failure, go on with the next task
        logger.debug("check of %s failed", spec.name, exc_info=True)
        message = " ".join(str(err).split())
        return f"error: {type(err).__name__}: {message}"
    finally:
        if raw is not None:
            try:
                raw.close()
            except Exception:  # noqa: BLE001
                logger.debug("closing %s failed", spec.name, exc_info=True)


def _select(domain: str | None, held_out: bool, all_tasks: bool, tasks: Sequence[str] | None) -> list[str]:
    if tasks:
        names = [get_task(t).name for t in tasks]
        if domain is not None:
            keep = set(list_tasks(domain))
            names = [n for n in names if n in keep]
        return names
    if domain is not None:
        return list_tasks(domain)
    if held_out and not all_tasks:
        return list_tasks("held-out")
    return list_tasks(include_held_out=all_tasks)


def task_rows(
    domain: str | None = None,
    held_out: bool = False,
    *,
    all_tasks: bool = False,
    tasks: Sequence[str] | None = None,
    check: bool = False,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """One dict per task with its facts, fidelity, downloads and (with ``check``) build status.

    Args:
        domain: keep only this MMBench domain (``"held-out"`` for the held-out tasks).
        held_out: list the held-out tasks (alone, unless ``domain`` or ``all_tasks`` is given).
        all_tasks: list the 200 MMBench tasks and the held-out (and user) tasks.
        tasks: list exactly these tasks (filtered by ``domain`` if given).
        check: build, reset and step each task (:func:`check_task`); otherwise ``status`` is
            ``"not checked"``.
        progress: show a progress bar on stderr while checking.

    Raises:
        ValueError: unknown domain.
        UnknownTaskError: unknown task name.

    Examples:
        >>> row = task_rows("dmcontrol")[0]
        >>> row["name"], row["obs_dim"], row["action_dim"], row["episode_length"], row["discount"]
        ('walker-stand', 24, 6, 500, 0.99)
        >>> row["fidelity"], row["status"], row["newt_source"]
        ('golden', 'not checked', ['tdmpc2/envs/dmcontrol.py'])
    """
    names = _select(domain, held_out, all_tasks, tasks)
    golden, _ = golden_tasks()
    rows = []
    for name in names:
        spec = get_task(name)
        value, note = fidelity(spec, golden)
        rows.append(
            {
                "task_id": spec.task_id,
                "name": spec.name,
                "domain": spec.domain,
                "simulator": spec.builder_domain,
                "obs_dim": spec.obs_dim,
                "action_dim": spec.action_dim,
                "episode_length": spec.episode_length,
                "action_repeat": spec.action_repeat,
                "discount": spec.discount,
                "score": spec.score.kind,
                "score_rule": score_text(spec.score),
                "fidelity": value,
                "fidelity_note": note,
                "newt_source": newt_source(spec),
                "downloads": list(required_downloads(spec)),
                "downloads_missing": _missing_downloads(spec),
                "status": "not checked",
            }
        )
    if check:
        _check_rows(rows, progress)
    return rows


def _check_rows(rows: list[dict[str, Any]], progress: bool) -> None:
    bar = None
    if progress:
        try:
            from tqdm import tqdm

            bar = tqdm(total=len(rows), desc="checking", unit="task", file=sys.stderr, dynamic_ncols=True)
        except ImportError:
            bar = None
    for i, row in enumerate(rows):
        if bar is not None:
            bar.set_postfix_str(row["name"])
        elif progress:
            sys.stderr.write(f"\r[{i + 1}/{len(rows)}] {row['name']:<40}")
            sys.stderr.flush()
        start = time.perf_counter()
        row["status"] = check_task(row["name"])
        row["check_s"] = round(time.perf_counter() - start, 3)
        if row["status"] != "ok":
            logger.info("%s: %s", row["name"], row["status"])
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    elif progress and rows:
        sys.stderr.write("\n")


def _downloads_cell(row: dict[str, Any]) -> str:
    return ",".join(f"{p} (missing)" if p in row["downloads_missing"] else p for p in row["downloads"]) or "-"


def _status_cell(status: str, width: int = 60) -> str:
    return status if len(status) <= width else status[: width - 3] + "..."


def _format_table(rows: list[dict[str, Any]]) -> str:
    cols = [
        ("task_id", "id"),
        ("name", "task"),
        ("domain", "domain"),
        ("obs_dim", "obs"),
        ("action_dim", "act"),
        ("episode_length", "T"),
        ("discount", "gamma"),
        ("score_rule", "score"),
        ("fidelity", "fidelity"),
        ("downloads", "downloads"),
        ("status", "status"),
    ]

    def cell(row: dict[str, Any], key: str) -> str:
        if key == "downloads":
            return _downloads_cell(row)
        if key == "status":
            return _status_cell(row["status"])
        return "-" if row[key] is None else str(row[key])

    cells = [[cell(r, k) for k, _ in cols] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (_, h) in enumerate(cols)]
    lines = ["  ".join(h.ljust(w) for (_, h), w in zip(cols, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _group_names(names: list[str]) -> str:
    if len(names) > 6 and all(n.startswith("mw-") for n in names):
        return f"mw-* ({len(names)} tasks)"
    return ", ".join(names)


def _format_notes(rows: list[dict[str, Any]], golden_origin: str, checked: bool) -> str:
    by_reason: dict[str, list[str]] = {}
    for r in rows:
        if r["fidelity"] in ("differs", "custom"):
            by_reason.setdefault(r["fidelity_note"], []).append(r["name"])
    counts = {v: sum(r["fidelity"] == v for r in rows) for v in FIDELITY_VALUES}
    lines = []
    if by_reason:
        lines.append("")
        lines.append("Known differences from Newt:")
        lines += [f"  {_group_names(names)}: {reason}" for reason, names in by_reason.items()]
    downloads = [r["name"] for r in rows if r["downloads"]]
    missing = {p for r in rows for p in r["downloads_missing"]}
    if downloads:
        lines.append("")
        lines.append(
            f"{_plural(len(downloads), 'task')} need{'s' if len(downloads) == 1 else ''} ManiSkill asset packs: "
            + (
                " && ".join(f"python -m mani_skill.utils.download_asset {p}" for p in sorted(missing))
                if missing
                else "all downloaded"
            )
        )
    failed = [r for r in rows if r["status"] not in ("ok", "not checked")]
    if failed:
        lines.append("")
        lines.append("Failed checks:")
        lines += [f"  {r['name']}: {r['status']}" for r in failed]
    lines.append("")
    fid = ", ".join(f"{counts[v]} {v}" for v in FIDELITY_VALUES if counts[v] or v != "custom")
    lines.append(f"{_plural(len(rows), 'task')}: {fid} (golden list: {golden_origin})")
    if checked:
        ok = sum(r["status"] == "ok" for r in rows)
        lines.append(f"checked: {ok} built, reset and stepped ok, {len(failed)} failed")
    else:
        lines.append("buildability not checked (run with --check to build, reset and step each task)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the task table (or JSON) to stdout.

    Returns:
        0, or 1 when ``--check`` found a task that failed to build, reset or step.

    Examples:
        >>> main(["--domain", "dmcontrol", "--json"])  # doctest: +ELLIPSIS
        [
          {
            "task_id": 0,
            "name": "walker-stand",
        ...
        0
    """
    parser = argparse.ArgumentParser(
        prog="torchrl-newt-tasks",
        description="List the MMBench tasks torchrl_newt knows, how each relates to Newt's definition "
        "(golden: checked against Newt's recorded trajectory; newt: implemented from Newt's code, not "
        "checked; differs: known to differ) and, with --check, whether it builds here.",
    )
    parser.add_argument("--domain", help="only this domain (e.g. dmcontrol, metaworld, held-out)")
    parser.add_argument("--held-out", action="store_true", help="list the 34 held-out tasks")
    parser.add_argument("--all", dest="all_tasks", action="store_true", help="list all 234 tasks (and user tasks)")
    parser.add_argument("--task", action="append", metavar="NAME", help="only this task (repeatable)")
    parser.add_argument(
        "--check", action="store_true", help="build, reset and step each selected task; report ok/error per task"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar while checking")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        rows = task_rows(
            args.domain,
            held_out=args.held_out,
            all_tasks=args.all_tasks,
            tasks=args.task,
            check=args.check,
            progress=args.check and not args.no_progress,
        )
    except (ValueError, KeyError) as err:  # unknown domain / UnknownTaskError
        parser.error(str(err))
    if not rows:
        parser.error("no task matches the selection")
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        sys.stdout.write(_format_table(rows) + "\n")
        sys.stdout.write(_format_notes(rows, golden_tasks()[1], args.check) + "\n")
    return 1 if args.check and any(r["status"] != "ok" for r in rows) else 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    raise SystemExit(main())
