"""Slurm launching on a real (local, single-node) cluster: a single-task array job, and a job
that is preempted, requeued and resumes from its checkpoint."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import torch

from torchrl_newt.launch.slurm import (
    RESULT_FILE,
    SlurmConfig,
    TrainJob,
    collect_results,
    make_executor,
    read_result,
    submit_array,
    submit_training,
)

pytestmark = [pytest.mark.slurm, pytest.mark.dmc]

CUSTOM = {
    "slurm-cartpole-short": {"base": "cartpole-balance", "episode_length": 12},
    "slurm-reacher-short": {"base": "reacher-easy", "episode_length": 12},
}
SMALL = ["--plan-samples", "32", "--plan-elites", "4", "--plan-pi-trajs", "4", "--plan-iterations", "2",
         "--batch-size", "8", "--no-language", "--seed-episodes", "1", "--quiet", "--threads", "1"]


def _config(tmp_path: Path, **kw) -> SlurmConfig:
    kw.setdefault("timeout_min", 5)
    return SlurmConfig(folder=tmp_path / "submitit" / "%j", cluster="slurm", cpus_per_task=1, job_name="newt-test",
                       signal_delay_s=30, **kw)


def _wait(jobs, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(j.done() for j in jobs):
        if time.monotonic() > deadline:
            for j in jobs:
                j.cancel(check=False)
            logs = "\n".join(f"--- {j.job_id}\n{(j.stderr() or '')[-2000:]}" for j in jobs)
            pytest.fail(f"Slurm jobs did not finish within {timeout_s} s:\n{logs}")
        time.sleep(0.5)


def _scontrol(job_id: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, timeout=20,
                         check=False).stdout
    return dict(tok.split("=", 1) for tok in out.split() if "=" in tok)


def test_array_of_single_task_runs(slurm_cluster, tmp_path):
    root = tmp_path / "runs"
    argv = SMALL + ["--frames", "40", "--eval-every", "40"]
    jobs, finished = submit_array(_config(tmp_path, array_parallelism=2), list(CUSTOM), root, argv,
                                  custom_tasks=CUSTOM)
    assert not finished and list(jobs) == list(CUSTOM)
    assert len({j.job_id.split("_")[0] for j in jobs.values()}) == 1  # one array
    # submitting again while they run re-attaches the running jobs instead of duplicating them
    again, _ = submit_array(_config(tmp_path), list(CUSTOM), root, argv, custom_tasks=CUSTOM)
    assert {t: j.job_id for t, j in again.items()} == {t: j.job_id for t, j in jobs.items()}
    _wait(list(jobs.values()), timeout_s=150)
    results = collect_results(jobs, finished)
    for task, res in results.items():
        assert set(res["results"]) == {task}
        assert 0.0 <= res["results"][task]["score"] <= 1.0
        assert res["frames"] >= 40 and res["updates"] > 0
        assert read_result(root / task) == res
        assert (root / task / "checkpoint.pt").is_file()
    # a second sweep submits nothing: the finished runs are recognised by their result files
    jobs2, finished2 = submit_array(_config(tmp_path), list(CUSTOM), root, argv, custom_tasks=CUSTOM)
    assert not jobs2 and finished2 == results


def test_data_parallel_training_job(slurm_cluster, tmp_path):
    """2 Slurm tasks (ranks) on the node: torch.distributed from the submitit job environment."""
    out_dir = tmp_path / "run"
    argv = SMALL + ["--tasks", ",".join(CUSTOM), "--frames", "80", "--eval-every", "40"]
    job = submit_training(_config(tmp_path, tasks_per_node=2), argv, out_dir, custom_tasks=CUSTOM)
    _wait([job], timeout_s=150)
    rank0, rank1 = job.results()
    assert rank0 == rank1 and list(rank0["results"]) == list(CUSTOM)  # one gathered table
    assert rank0["frames"] == 80 and rank0["updates"] > 0
    log = job.stderr() or ""
    assert "data-parallel rank 0/2 (gloo)" in log and "via submitit" in log, log[-3000:]
    assert read_result(out_dir) == rank0
    assert len(torch.load(out_dir / "checkpoint.pt", weights_only=False)["rng_ranks"]) == 2


def test_preempted_job_is_requeued_and_resumes(slurm_cluster, tmp_path):
    out_dir = tmp_path / "run"
    task = "slurm-cartpole-short"
    argv = SMALL + ["--tasks", task, "--frames", "400", "--eval-every", "40"]
    job = make_executor(_config(tmp_path)).submit(TrainJob(argv, out_dir, custom_tasks=CUSTOM))
    deadline = time.monotonic() + 120
    while (job.stderr() or "").count("checkpoint written") < 2:  # two evaluations: 80 frames
        assert not job.done(), f"job ended before it could be preempted:\n{job.stderr()}"
        assert time.monotonic() < deadline, f"no checkpoint after 120 s:\n{job.stderr()}"
        time.sleep(0.25)
    # preemption as Slurm does it: the job's processes get the requeue signal (USR2)
    subprocess.run(["scancel", "--signal=USR2", job.job_id], check=True, timeout=20)
    deadline = time.monotonic() + 60
    while not (_scontrol(job.job_id).get("Restarts") == "1" and _scontrol(job.job_id).get("JobState") == "PENDING"):
        assert time.monotonic() < deadline, f"job was not requeued:\n{job.stderr()}"
        time.sleep(0.25)
    # Slurm holds a requeued job for 2 minutes (EligibleTime); let it start now
    subprocess.run(["scontrol", "update", f"JobId={job.job_id}", "StartTime=now"], check=True, timeout=20)
    _wait([job], timeout_s=120)
    result = job.result()
    assert int(_scontrol(job.job_id).get("Restarts", "0")) == 1
    log = job.stderr() or ""
    assert "requeueing" in log and "Requeued job" in log and "resumed from" in log, log[-3000:]
    resumed_at = int(log.split("resumed from", 1)[1].split(" at ", 1)[1].split()[0])
    assert resumed_at >= 80  # the step counter continued from the checkpoint, not from zero
    assert result["frames"] >= 400
    frames = [h["frames"] for h in result["history"]]
    assert frames == sorted(set(frames)) and frames[0] == 40  # every evaluation once, in order
    assert resumed_at in frames and frames[-1] >= 400  # evaluations from before the preemption are kept
    assert not list(out_dir.glob(".*.tmp"))  # no partial checkpoint left behind
    assert torch.load(out_dir / "checkpoint.pt", weights_only=False)["state"]["frames"] == result["frames"]
    assert read_result(out_dir) == result and (out_dir / RESULT_FILE).is_file()
