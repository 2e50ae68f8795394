"""The task table of ``python -m torchrl_newt.envs`` tells the truth about each task.

Expected values are worked out independently of the CLI's code: Meta-World is Newt's uninstallable
v2 fork (so ``differs``); ``walker-walk`` has a golden trajectory and is not among the golden test's
known differences (``golden``); ``rd-push-green`` has no golden file (``newt``); the YCB/xArm6/ANYmal-C
tasks are the ManiSkill tasks that need asset packs; Newt's source files per task are read from the
reference's task-facts file when ``../shared`` is present. The consistency tests tie the CLI's
shipped tables to ``tests/envs/test_golden.py`` and to the golden folder, and ``docs/domains.md`` to
the generator script.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from torchrl_newt.envs import registry
from torchrl_newt.envs.__main__ import (
    GOLDEN_KNOWN_DIFFERENCES,
    SHIPPED_GOLDEN_TASKS,
    main,
    shared_dir,
    task_rows,
)

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = shared_dir() / "mmbench" / "golden"
TASKS_JSON = shared_dir() / "mmbench" / "tasks.json"


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table(capsys, *argv: str) -> tuple[dict[str, dict[str, str]], str]:
    """Run the CLI; return its table rows by task name (cells cut at the header's column starts)."""
    assert main(list(argv)) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = lines[0]
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    names = header.split()
    rows = {}
    for line in lines[2:]:
        if not line.strip():
            break
        cells = [line[a:b].strip() for a, b in zip(starts, starts[1:] + [None])]
        row = dict(zip(names, cells))
        rows[row["task"]] = row
    return rows, out


def _json(capsys, *argv: str) -> dict[str, dict]:
    assert main([*argv, "--json"]) == 0
    return {r["name"]: r for r in json.loads(capsys.readouterr().out)}


def test_fidelity_column(capsys):
    rows, out = _table(
        capsys, "--task", "mw-assembly", "--task", "walker-walk", "--task", "rd-push-green",
        "--task", "jumper-jump", "--task", "pygame-point-maze-var5",
    )
    assert rows["mw-assembly"]["fidelity"] == "differs"
    assert rows["walker-walk"]["fidelity"] == "golden"
    assert rows["rd-push-green"]["fidelity"] == "newt"
    assert rows["jumper-jump"]["fidelity"] == "differs"
    assert rows["pygame-point-maze-var5"]["fidelity"] == "differs"
    # the reasons are printed below the table
    assert "v2 fork" in out and "MJCF" in out and "75def92" in out
    assert "5 tasks: 1 golden, 1 newt, 3 differs" in out


def test_status_says_not_checked_without_check(capsys):
    rows, out = _table(capsys, "--domain", "dmcontrol")
    assert len(rows) == 21
    assert {r["status"] for r in rows.values()} == {"not checked"}
    assert "installed" not in out and "buildable here" not in out
    assert "run with --check" in out


def test_downloads_column(capsys):
    rows = _json(
        capsys, "--task", "ms-pick-apple", "--task", "ms-push-pear", "--task", "ms-anymal-reach",
        "--task", "ms-reach-xarm6", "--task", "ms-pick-cube", "--task", "walker-walk",
    )
    assert rows["ms-pick-apple"]["downloads"] == ["ycb"]
    assert rows["ms-push-pear"]["downloads"] == ["ycb"]
    assert rows["ms-anymal-reach"]["downloads"] == ["anymal_c"]
    assert rows["ms-reach-xarm6"]["downloads"] == ["xarm6"]
    assert rows["ms-pick-cube"]["downloads"] == [] and rows["walker-walk"]["downloads"] == []
    assert set(rows["ms-pick-apple"]["downloads_missing"]) <= {"ycb"}


def test_every_task_listed_once_with_a_status(capsys):
    rows = _json(capsys, "--all")
    mmbench = {n: r for n, r in rows.items() if r["fidelity"] != "custom"}
    assert len(mmbench) == 234
    assert sum(n.startswith("mw-") for n in mmbench) == 49
    assert all(r["fidelity"] == "differs" for n, r in mmbench.items() if n.startswith("mw-"))
    assert all(r["fidelity_note"] for r in mmbench.values() if r["fidelity"] == "differs")
    # 13 + 11 YCB tasks (pick/push), 2 xArm6, 1 ANYmal-C
    assert sum(bool(r["downloads"]) for r in mmbench.values()) == 27


def test_newt_source(capsys):
    rows = _json(capsys, "--task", "cheetah-jump", "--task", "pygame-cowboy", "--task", "mw-assembly",
                 "--task", "og-ant-spiral", "--task", "walker-walk")
    assert rows["cheetah-jump"]["newt_source"] == ["tdmpc2/envs/dmcontrol.py", "tdmpc2/envs/tasks/cheetah.py"]
    assert rows["pygame-cowboy"]["newt_source"] == ["tdmpc2/envs/pygame.py", "tdmpc2/envs/tasks/pygame/cowboy.py"]
    assert rows["mw-assembly"]["newt_source"] == ["tdmpc2/envs/metaworld.py"]
    assert rows["og-ant-spiral"]["newt_source"] == ["tdmpc2/envs/ogbench.py", "tdmpc2/envs/tasks/ogbench_maze.py"]
    assert rows["walker-walk"]["newt_source"] == ["tdmpc2/envs/dmcontrol.py"]


@pytest.mark.skipif(not TASKS_JSON.is_file(), reason=f"{TASKS_JSON} not found")
def test_newt_source_matches_reference_facts():
    """Every task's Python source files agree with the reference's own task-facts file."""
    facts = json.loads(TASKS_JSON.read_text())["tasks"]
    rows = {r["name"]: r for r in task_rows(all_tasks=True)}
    for name, fact in facts.items():
        paths = set(re.findall(r"tdmpc2/[A-Za-z0-9_/.]+\.py", json.dumps(fact["source"])))
        assert set(rows[name]["newt_source"]) == paths, name


def test_unknown_domain_errors_clearly():
    proc = subprocess.run(
        [sys.executable, "-m", "torchrl_newt.envs", "--domain", "not-a-domain"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert proc.returncode == 2
    assert "unknown domain 'not-a-domain'" in proc.stderr and "metaworld" in proc.stderr
    assert proc.stdout == ""


def test_unknown_task_errors_clearly(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--task", "cheetah-rn"])
    assert exc.value.code == 2
    assert "unknown task 'cheetah-rn'" in capsys.readouterr().err


def test_check_builds_resets_and_steps(capsys, monkeypatch):
    """--check reports ok for a task that builds and the error for one that does not (exit 1)."""
    pytest.importorskip("pygame")

    def broken_builder(spec, **kwargs):
        raise RuntimeError("simulator exploded")

    monkeypatch.setitem(
        registry._DOMAINS, "toy-broken", registry.DomainInfo("toy-broken", broken_builder, extra="toy")
    )
    base = registry.get_task("pygame-cartpole-balance")
    toy = dataclasses.replace(base, name="toy-broken-task", base_domain="toy-broken", task_id=10_000)
    monkeypatch.setitem(registry._TASKS, toy.name, toy)

    code = main(["--task", "pygame-cartpole-balance", "--task", "toy-broken-task", "--check", "--json",
                 "--no-progress"])
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert code == 1
    assert rows["pygame-cartpole-balance"]["status"] == "ok"
    assert rows["toy-broken-task"]["status"] == "error: RuntimeError: simulator exploded"
    assert rows["toy-broken-task"]["fidelity"] == "custom"

    assert main(["--task", "pygame-cartpole-balance", "--check", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"pygame-cartpole-balance\s.*\sok$", out, re.M)
    assert "checked: 1 built, reset and stepped ok, 0 failed" in out


def test_known_differences_match_the_golden_test():
    """The CLI's golden known differences are exactly the tasks test_golden.py expects to fail."""
    golden_test = _load(Path(__file__).with_name("test_golden.py"), "_golden_tables")
    expected = set(golden_test.KNOWN_TRAJECTORY_DIFFERENCES) | set(golden_test.KNOWN_PROBE_DIFFERENCES)
    assert set(GOLDEN_KNOWN_DIFFERENCES) == expected


@pytest.mark.skipif(not GOLDEN.is_dir(), reason=f"golden folder {GOLDEN} not found")
def test_shipped_golden_list_matches_the_folder():
    on_disk = sorted(p.stem for p in GOLDEN.glob("*.json"))
    assert list(SHIPPED_GOLDEN_TASKS) == on_disk, "run python scripts/gen_domains_table.py --golden-list"


def test_golden_rows_are_the_golden_files_minus_known_differences(capsys):
    rows = _json(capsys, "--all")
    golden = {n for n, r in rows.items() if r["fidelity"] == "golden"}
    assert golden == set(SHIPPED_GOLDEN_TASKS) - set(GOLDEN_KNOWN_DIFFERENCES)


def test_docs_table_is_up_to_date():
    gen = _load(ROOT / "scripts" / "gen_domains_table.py", "_gen_domains_table")
    text = (ROOT / "docs" / "domains.md").read_text()
    assert gen.splice(text, gen.generate()) == text, "run python scripts/gen_domains_table.py"
    table = text[text.index(gen.BEGIN) : text.index(gen.END)]
    assert len(re.findall(r"^\| \d+ \| `", table, re.M)) == 234
    assert all(f"`{t}`" in table for t in ("walker-walk", "mw-assembly", "pygame-reacher-var2"))


def test_cli_docstring_examples():
    """pytest's ``--doctest-modules`` skips ``__main__.py``; run its examples here."""
    import doctest

    from torchrl_newt.envs import __main__ as cli

    result = doctest.testmod(cli, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 10
