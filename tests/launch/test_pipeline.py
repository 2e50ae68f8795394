"""Newt's three-stage recipe as Slurm commands: experts (array) -> demos (array) -> the multitask
model pretrained on the demos, end to end on the local Slurm cluster with two short tasks; and the
demo array's skip-existing and missing-expert behaviour without Slurm."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from torchrl_newt.launch.slurm import (
    JOB_FILE,
    DemoJob,
    MissingExpertError,
    SlurmConfig,
    collect_demos,
    demo_path,
    expert_checkpoint,
    read_result,
    submit_demo_array,
)

ROOT = Path(__file__).resolve().parents[2]
TASKS = {"pipe-cartpole-short": "cartpole-balance", "pipe-walker-short": "walker-stand"}
# a module registering the short tasks on import: what --import names, here and in every job
TASK_MODULE = "pipeline_test_tasks"
TASK_MODULE_SOURCE = (
    "from torchrl_newt.envs import register_task\n"
    + "".join(f"register_task({n!r}, base={b!r}, episode_length=12, overwrite=True)\n" for n, b in TASKS.items())
)
TINY = ["--plan-samples", "16", "--plan-elites", "4", "--plan-pi-trajs", "2", "--plan-iterations", "1",
        "--batch-size", "8", "--no-language", "--seed-episodes", "1", "--random-episodes", "1", "--logger", "none",
        "--quiet", "--threads", "1"]


def _example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _debug(tmp_path: Path) -> SlurmConfig:
    return SlurmConfig(folder=tmp_path / "submitit" / "%j", cluster="debug", timeout_min=5)


def _fake_expert(experts: Path, task: str, finished: bool = True) -> None:
    path = expert_checkpoint(experts, task)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not read by these tests")
    if finished:
        (path.parent / "result.json").write_text(json.dumps({"results": {}}))


# ---------------------------------------------------------------------------------------- no Slurm
def test_demo_array_skips_tasks_with_demo_files(tmp_path):
    demos = tmp_path / "demos"
    demos.mkdir()
    demo_path(demos, "walker-walk").write_bytes(b"x")
    # no expert at all: a task whose demo file exists needs none and is not submitted
    jobs, finished = submit_demo_array(_debug(tmp_path), ["walker-walk"], tmp_path / "experts", demos, 2)
    assert jobs == {}
    assert finished == {"walker-walk": {"task": "walker-walk", "path": str(demos / "walker-walk.pt"),
                                        "existing": True}}
    assert not (demos / ".jobs").exists() and not (tmp_path / "submitit").exists()
    assert collect_demos(jobs, finished) == finished
    # the job itself returns at once when the file is there (a requeued element never plans twice)
    assert DemoJob(tmp_path / "experts", demos, 2)("walker-walk")["existing"] is True


def test_demo_array_names_tasks_without_expert(tmp_path):
    experts, demos = tmp_path / "experts", tmp_path / "demos"
    _fake_expert(experts, "walker-walk")
    with pytest.raises(MissingExpertError) as info:
        submit_demo_array(_debug(tmp_path), ["walker-walk", "cheetah-run"], experts, demos, 2)
    assert info.value.tasks == ["cheetah-run"]
    msg = str(info.value)
    assert "no expert checkpoint for cheetah-run" in msg and str(expert_checkpoint(experts, "cheetah-run")) in msg
    assert "walker-walk" not in msg.split("(looked")[0]
    assert not demos.exists()  # nothing submitted
    # an expert whose run has not finished is not used either (its checkpoint is an intermediate one)
    _fake_expert(experts, "cheetah-run", finished=False)
    with pytest.raises(MissingExpertError, match=r"expert run of cheetah-run has not finished"):
        submit_demo_array(_debug(tmp_path), ["walker-walk", "cheetah-run"], experts, demos, 2)
    # skip_missing leaves such tasks out; the others are submitted (and recorded)
    jobs, finished = submit_demo_array(_debug(tmp_path), ["walker-walk", "cheetah-run", "hopper-hop"], experts,
                                       demos, 2, skip_missing=True)
    assert list(jobs) == ["walker-walk"] and not finished
    assert json.loads((demos / ".jobs" / "walker-walk.json").read_text())["cluster"] == "debug"
    jobs, _ = submit_demo_array(_debug(tmp_path), ["cheetah-run"], experts, demos, 2, require_finished=False)
    assert list(jobs) == ["cheetah-run"]


def test_demo_job_checks_its_expert_and_options(tmp_path):
    with pytest.raises(MissingExpertError, match=r"no expert checkpoint for walker-walk"):
        DemoJob(tmp_path / "experts", tmp_path / "demos", 1)("walker-walk")
    with pytest.raises(ValueError, match=r"DemoJob sets --out itself"):
        DemoJob("e", "d", 1, ["--out", "x"])
    with pytest.raises(ValueError, match=r"num_demos must be >= 1"):
        DemoJob("e", "d", 0)
    with pytest.raises(ValueError, match=r"single-process"):
        submit_demo_array(SlurmConfig(cluster="debug", tasks_per_node=2), ["walker-walk"], "e", "d", 1)


def test_demos_command_reports_existing_and_missing(tmp_path, capsys):
    demos_cli = _example("slurm_demos")
    experts, demos = tmp_path / "experts", tmp_path / "demos"
    demos.mkdir()
    demo_path(demos, "walker-walk").write_bytes(b"x")
    common = ["--experts", str(experts), "--out", str(demos), "--num-demos", "2", "--cluster", "debug",
              "--folder", str(tmp_path / "submitit" / "%j")]
    out = demos_cli.main(["--tasks", "walker-walk"] + common)
    assert out["walker-walk"]["existing"] is True
    printed = capsys.readouterr().out
    assert "0 demo job(s) submitted" in printed and "exists" in printed
    with pytest.raises(MissingExpertError, match=r"cheetah-run"):
        demos_cli.main(["--tasks", "walker-walk,cheetah-run"] + common)


# ---------------------------------------------------------------------------------------- Slurm
@contextmanager
def _deadline(seconds: int, job_prefix: str):
    """Fail (and cancel this test's Slurm jobs) if the block runs longer than ``seconds``."""

    def expire(signum, frame):
        raise TimeoutError(f"the pipeline did not finish within {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        for suffix in ("experts", "demos", "newt"):
            subprocess.run(["scancel", "--name", f"{job_prefix}-{suffix}"], capture_output=True, timeout=30,
                           check=False)


@pytest.mark.slurm
@pytest.mark.dmc
def test_three_stage_pipeline_on_slurm(slurm_cluster, tmp_path, monkeypatch, caplog, capsys):
    caplog.set_level(logging.INFO, logger="torchrl_newt.launch.slurm")
    # the module registering the short tasks, importable here and (PYTHONPATH, exported by sbatch) in the jobs
    (tmp_path / f"{TASK_MODULE}.py").write_text(TASK_MODULE_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.delitem(sys.modules, TASK_MODULE, raising=False)
    root, tasks = tmp_path / "pipeline", list(TASKS)
    experts, demos, newt = root / "experts", root / "demos", root / "newt"
    prefix = f"pipe{os.getpid()}"
    slurm = ["--cluster", "slurm", "--cpus-per-task", "1", "--time", "10", "--import", TASK_MODULE,
             "--folder", str(tmp_path / "submitit" / "%j")]
    durations = {}
    with _deadline(420, prefix):
        # stage 1: the experts, one array element each
        t0 = time.monotonic()
        experts_out = _example("slurm_array").main(
            ["--tasks", ",".join(tasks), "--root", str(experts), "--parallelism", "2", "--job-name",
             f"{prefix}-experts", *slurm, "--", *TINY, "--frames", "24", "--eval-every", "24"])
        durations["experts"] = time.monotonic() - t0
        assert set(experts_out) == set(tasks)
        for task in tasks:
            assert expert_checkpoint(experts, task).is_file() and read_result(experts / task) is not None

        # stage 2: the demos from the experts, one array element each
        t0 = time.monotonic()
        demo_args = ["--tasks", ",".join(tasks), "--experts", str(experts), "--out", str(demos), "--num-demos", "2",
                     "--parallelism", "2", "--job-name", f"{prefix}-demos", *slurm,
                     "--", "--device", "cpu", "--threads", "1", "--max-attempts", "16"]
        reports = _example("slurm_demos").main(demo_args)
        durations["demos"] = time.monotonic() - t0
        from torchrl_newt.data.demos import load_demos

        for task in tasks:
            assert reports[task]["accepted"] == 2 and reports[task]["attempted"] >= 4, reports[task]
            assert reports[task]["path"] == str(demo_path(demos, task)) and demo_path(demos, task).is_file()
            episodes = load_demos(demo_path(demos, task), [task])
            assert episodes.batch_size == torch.Size([2])
            assert episodes["action"].shape[:2] == (2, 12) and episodes["observation"].shape[1] == 13
        both = load_demos(sorted(demos.glob("*.pt")), tasks, obs_pad=24, action_pad=6)  # padded to the run's widths
        assert sorted(both["task"].tolist()) == [0, 0, 1, 1] and both["observation"].shape[-1] == 24
        # a second submission finds every demo file and submits nothing
        again = _example("slurm_demos").main(demo_args)
        assert all(r.get("existing") for r in again.values()) and set(again) == set(tasks)

        # stage 3: the multitask model, pretrained on the demos, then online on both tasks
        t0 = time.monotonic()
        result = _example("slurm_train").main(
            ["--output-dir", str(newt), "--job-name", f"{prefix}-newt", "--wait", *slurm,
             "--", "--tasks", ",".join(tasks), "--demos", str(demos), "--pretrain-updates", "4",
             "--warmup-updates", "2", *TINY, "--frames", "48", "--eval-every", "48"])
        durations["newt"] = time.monotonic() - t0
        assert set(result["results"]) == set(tasks)
        assert result["pretrain_updates"] == 4 and result["frames"] >= 48
        scores = json.loads((newt / "final_scores.json").read_text())
        assert set(scores["tasks"]) == set(tasks)
        ckpt = torch.load(newt / "checkpoint.pt", weights_only=False)
        assert ckpt["trainer"]["pretrain_updates"] == 4 and ckpt["args"]["demos"] == [str(demos)]
        assert read_result(newt) == result

    # the one-command pipeline over the same folders: every stage finds its outputs and skips (stages 1
    # and 2 submit nothing; stage 3's job returns the run's result.json: run in-process, ``debug``, to
    # spare this loaded machine another job start)
    t0 = time.monotonic()
    rerun = _example("slurm_pipeline").main(
        ["--tasks", ",".join(tasks), "--root", str(root), "--num-demos", "2", "--pretrain-updates", "4",
         "--cluster", "debug", "--cpus-per-task", "1", "--import", TASK_MODULE, "--job-name", prefix,
         "--folder", str(tmp_path / "submitit" / "%j"), "--expert-time", "10", "--demo-time", "10",
         "--train-time", "10"])
    durations["pipeline rerun"] = time.monotonic() - t0
    assert rerun == result
    assert "nothing to submit" in caplog.text and "no demos to generate" in caplog.text
    with capsys.disabled():
        print("\nstage durations: " + ", ".join(f"{k} {v:.0f}s" for k, v in durations.items()))
    assert JOB_FILE in os.listdir(experts / tasks[0])
