"""Data-parallel training: a 2-process gloo run on CPU (torchrun) against a single-process run."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from torchrl_newt.launch import TaskIndexMap, read_launch_env, split_batch_size, split_tasks

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _load_worker():
    spec = importlib.util.spec_from_file_location("newt_ddp_worker", HERE / "ddp_worker.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "SUBMITIT_")) and k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK",
                                                                      "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    return env


def _torchrun(nproc: int, script: Path, *args: str, timeout: float = 150.0) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           str(script), *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=_clean_env(), capture_output=True, text=True, timeout=timeout,
                          check=False)
    if proc.returncode != 0:
        raise AssertionError(f"torchrun failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def test_split_helpers_cover_everything_once():
    tasks = [f"t{i}" for i in range(7)]
    shards = [split_tasks(tasks, r, 3) for r in range(3)]
    assert sorted(t for shard in shards for t in shard) == sorted(tasks)
    assert sum(split_batch_size(10, r, 3) for r in range(3)) == 10
    with pytest.raises(ValueError, match="at least one task"):
        split_tasks(tasks[:2], 0, 3)
    with pytest.raises(ValueError, match="cannot be split"):
        split_batch_size(2, 0, 3)


def test_launch_env_torchrun_beats_slurm_and_batch_scripts_are_single():
    env = read_launch_env({"RANK": "0", "WORLD_SIZE": "2", "SLURM_PROCID": "0", "SLURM_STEP_NUM_TASKS": "4"})
    assert env.launcher == "torchrun" and env.world_size == 2
    # an sbatch script with --ntasks=4 but no srun step is one process
    assert read_launch_env({"SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_JOB_ID": "7"}).world_size == 1


def test_task_index_map_spec():
    from torchrl.data import Categorical, Composite

    t = TaskIndexMap([2, 0], num_tasks=5)
    spec = t.transform_observation_spec(Composite(task=Categorical(2, shape=(2,), dtype=torch.int64), shape=(2,)))
    assert spec["task"].n == 5
    with pytest.raises(ValueError, match="out of range"):
        TaskIndexMap([0, 5], num_tasks=5)


@pytest.mark.distributed
def test_two_process_gloo_matches_single_process(tmp_path):
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    _torchrun(2, HERE / "ddp_worker.py", "--out", str(tmp_path))
    r0, r1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert r0["world_size"] == r1["world_size"] == 2 and r0["backend"] == "gloo"
    assert r0["tasks"] == r1["tasks"] == {"a": 0, "b": 1, "c": 0}  # gathered in global order
    for setting in ("exact", "stochastic"):
        assert r0[setting].keys() == r1[setting].keys()
        for k in r0[setting]:  # the all-reduced ranks stay bit-identical
            assert torch.equal(r0[setting][k], r1[setting][k]), f"{setting}: {k} differs across ranks"
    # the same updates in one process on the full batch: equal up to float reassociation
    worker = _load_worker()
    torch.set_num_threads(1)
    single = worker.train(0, 1, exact=True)
    for k, v in single.items():
        torch.testing.assert_close(r0["exact"][k], v, rtol=1e-4, atol=1e-5, msg=lambda m, k=k: f"{k}: {m}")
    initial = worker.train(0, 1, exact=True, steps=0)
    moved = [k for k, v in initial.items() if v.is_floating_point() and not torch.equal(v, single[k])]
    assert any("encoder" in k for k in moved) and any("policy" in k for k in moved) and any("target" in k for k in moved)


@pytest.mark.distributed
@pytest.mark.dmc
def test_training_example_data_parallel_under_torchrun(tmp_path):
    """The example on 3 short tasks over 2 ranks (2 + 1 lanes): one gathered score table, rank 0
    checkpoints (with both ranks' RNG states), and a torchrun relaunch resumes."""
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    tasks = "test-cartpole-short,test-reacher-short,test-finger-short"
    common = ["--tasks", tasks, "--output-dir", str(tmp_path / "run"), "--quiet", "--plan-samples", "32",
              "--plan-elites", "4", "--plan-pi-trajs", "4", "--plan-iterations", "2", "--batch-size", "8",
              "--eval-every", "60", "--no-language", "--seed-episodes", "1"]
    out = tmp_path / "out"
    proc = _torchrun(2, HERE / "example_worker.py", str(out), "--", *common, "--frames", "120")
    assert "data-parallel rank 1/2 (gloo)" in proc.stderr
    r0, r1 = (json.loads(Path(f"{out}.rank{r}").read_text()) for r in range(2))
    assert r0 == r1  # every rank ends with the same gathered table and counters
    assert list(r0["results"]) == tasks.split(",")  # global task order, from both ranks
    assert r0["frames"] == 120 and r0["updates"] > 0 and r0["history"] == 2
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert ckpt["tasks"] == tasks.split(",") and len(ckpt["rng_ranks"]) == 2
    # each rank resumes its own collector: 120 frames over 3 lanes are 80 on rank 0 (2 lanes), 40 on rank 1
    assert [c["frames"] for c in ckpt["collector_ranks"]] == [80, 40]
    assert ckpt["agent"]["world_model.task_embedding.weight"].shape[0] == 3  # the full task table
    assert (tmp_path / "run" / "learning_curve.png").is_file()
    _torchrun(2, HERE / "example_worker.py", str(out), "--", *common, "--frames", "180", "--resume")
    resumed = json.loads(Path(f"{out}.rank1").read_text())
    assert resumed["frames"] == 180 and resumed["history"] == 3 and resumed["updates"] > r0["updates"]
