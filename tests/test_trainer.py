"""NewtTrainer (the update step and its schedules) and the training program's resume guarantees:
exact resume, no duplicated logs, compact replay checkpoints, file hygiene, flag validation."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from tensordict import TensorDict

from torchrl_newt.checkpoint import CheckpointError, atomic_save, compact_replay_state, remove_stale_temp_files
from torchrl_newt.modules import NewtWorldModel
from torchrl_newt.objectives import NonFiniteLossError, TDMPC2ActorLoss, TDMPC2WorldModelLoss
from torchrl_newt.trainer import NewtTrainer

B, T = 4, 3


def _batch(obs_dim=6, action_dim=2) -> TensorDict:
    return TensorDict({
        "observation": torch.randn(B, T, obs_dim), "action": torch.rand(B, T, action_dim) * 2 - 1,
        "task": torch.zeros(B, T, dtype=torch.long), "action_mask": torch.ones(B, T, action_dim, dtype=torch.bool),
        ("next", "observation"): torch.randn(B, T, obs_dim), ("next", "reward"): torch.randn(B, T, 1),
    }, batch_size=[B, T])


def _trainer(**kw) -> NewtTrainer:
    wm = NewtWorldModel(6, 2, enc_dim=16, mlp_dim=16, latent_dim=16, num_q=2, num_tasks=1)
    return NewtTrainer(wm, TDMPC2WorldModelLoss(wm), TDMPC2ActorLoss(wm), **kw)


class _Replay:
    def __init__(self, batch):
        self.batch, self.calls = batch, 0

    def sample(self, batch_size=None):
        self.calls += 1
        return self.batch


def test_optimizers_follow_parameter_groups():
    tr = _trainer(lr=1e-3, enc_lr_scale=0.5)
    assert [g["name"] for g in tr.model_optim.param_groups] == ["encoder", "model", "policy"]
    assert [g["lr"] for g in tr.model_optim.param_groups] == [5e-4, 1e-3, 1e-3]
    assert tr.pi_optim.defaults["eps"] == 1e-5
    n_policy = len(list(tr.world_model.policy.parameters()))
    assert len(tr.pi_optim.param_groups[0]["params"]) == n_policy


def test_update_moves_model_policy_and_target_and_leaves_batch_alone():
    torch.manual_seed(0)
    tr = _trainer()
    batch = _batch()
    keys = set(batch.keys(True, True))
    wm = tr.world_model
    enc, pi = wm.encoder.weights[0].detach().clone(), wm.policy.weights[0].detach().clone()
    target = tr.wm_loss.target_qvalue_network_params.clone()
    metrics = tr.update(batch)
    assert not torch.equal(enc, wm.encoder.weights[0]) and not torch.equal(pi, wm.policy.weights[0])
    moved = (tr.wm_loss.target_qvalue_network_params.detach() - target.detach()).abs().sum()
    assert float(sum(moved.values(True, True))) > 0
    assert {"loss_consistency", "loss_value", "loss_pi", "grad_norm"} <= set(metrics.keys())
    assert "latent" not in metrics.keys() and "td_error" not in metrics.keys()
    if "latent" not in keys:  # the loss API that returns latents never writes into the sample
        assert set(batch.keys(True, True)) == keys


def test_pretraining_trains_policy_jointly_with_warmup():
    torch.manual_seed(0)
    tr = _trainer(lr=1e-3, warmup_updates=4)
    pi_opt_state = len(tr.pi_optim.state)
    tr.pretrain_step(_batch())
    assert [g["lr"] for g in tr.model_optim.param_groups] == pytest.approx([0.3 * 2.5e-4, 2.5e-4, 2.5e-4])
    assert len(tr.pi_optim.state) == pi_opt_state  # no max-Q step in pretraining
    assert tr.pretrain_updates == 1 and tr.updates == 0 and tr.wm_loss.prior_coef == 0
    tr.end_pretraining()
    assert tr.model_optim.param_groups[1]["lr"] == 1e-3


def test_update_credit_burst_then_utd_and_schedule():
    class Planner:
        weight = None

        def set_prior_weight(self, w):
            self.weight = w

    torch.manual_seed(0)
    planner = Planner()
    tr = _trainer(utd=0.1, start_frames=20, planner=planner, constrained=True, constraint_start=20,
                  constraint_final=100)
    replay = _Replay(_batch())
    assert tr.step(replay, 10) is None and replay.calls == 0 and planner.weight == 1.0
    tr.step(replay, 30)  # burst: 0.1 x 30 steps
    assert tr.updates == 3 and planner.weight == pytest.approx(0.9)
    tr.step(replay, 40)  # 0.1 x 10 new steps
    assert tr.updates == 4 and tr.update_credit == pytest.approx(0.0, abs=1e-9)
    state = tr.state_dict()
    tr2 = _trainer(utd=0.1, start_frames=20)
    tr2.load_state_dict(state)
    assert (tr2.updates, tr2.frames) == (4, 40)
    assert tr2.model_optim.state_dict()["state"].keys() == tr.model_optim.state_dict()["state"].keys()


def test_non_finite_loss_raises_by_default():
    tr = _trainer()
    batch = _batch()
    batch["next", "reward"][:] = float("nan")
    with pytest.raises(NonFiniteLossError, match="update step 0"):
        tr.update(batch)


def test_priorities_go_to_the_replay():
    from torchrl_newt.data import MultitaskReplayBuffer

    torch.manual_seed(0)
    rb = MultitaskReplayBuffer(200, slice_len=T, mode="prioritized", batch_size=B)
    n, steps = 1, 20
    rb.extend(TensorDict({
        "observation": torch.randn(n, steps, 6), "action": torch.zeros(n, steps, 2),
        "task": torch.zeros(n, steps, dtype=torch.long), "action_mask": torch.ones(n, steps, 2, dtype=torch.bool),
        "step_count": torch.arange(steps)[None, :, None], ("collector", "traj_ids"): torch.zeros(n, steps, dtype=torch.long),
        ("next", "observation"): torch.randn(n, steps, 6), ("next", "reward"): torch.randn(n, steps, 1),
    }, batch_size=[n, steps]))
    before = rb._sampler.state_dict().get("max_priority")
    tr = _trainer(utd=1.0)
    tr.step(rb, 2)
    assert tr.updates == 2
    assert rb._sampler.state_dict().get("max_priority") != before


# ---------------------------------------------------------------------------------------- files
def test_checkpoint_mode_follows_umask(tmp_path):
    old = os.umask(0o022)
    try:
        assert (atomic_save({"a": 1}, tmp_path / "c.pt").stat().st_mode & 0o777) == 0o644
        os.umask(0o077)
        assert (atomic_save({"a": 1}, tmp_path / "d.pt").stat().st_mode & 0o777) == 0o600
    finally:
        os.umask(old)


def test_stale_temp_files_are_removed_and_others_kept(tmp_path):
    (tmp_path / ".checkpoint.pt.abc123.tmp").write_bytes(b"x")
    (tmp_path / "notes.tmp").write_text("mine")
    assert [p.name for p in remove_stale_temp_files(tmp_path)] == [".checkpoint.pt.abc123.tmp"]
    assert (tmp_path / "notes.tmp").is_file()


def test_replay_checkpoint_size_follows_the_data():
    from torchrl_newt.data import MultitaskReplayBuffer

    rb = MultitaskReplayBuffer(1_000_000, slice_len=2)
    rb.extend(TensorDict({"observation": torch.randn(2, 10, 128), "task": torch.zeros(2, 10, dtype=torch.long),
                          "step_count": torch.arange(10).expand(2, 10),
                          ("collector", "traj_ids"): torch.tensor([[0], [1]]).expand(2, 10)}, batch_size=[2, 10]))
    state = compact_replay_state(rb.state_dict())
    nbytes = sum(t.numel() * t.element_size() for t in _tensors(state))
    assert nbytes < 50_000  # 20 steps, not the 1M-step capacity (~0.5 GB of observations)


def _tensors(d):
    for v in d.values():
        if isinstance(v, dict):
            yield from _tensors(v)
        elif isinstance(v, torch.Tensor):
            yield v


# ---------------------------------------------------------------------------------------- program
TINY = ["--quiet", "--plan-samples", "16", "--plan-elites", "4", "--plan-pi-trajs", "2", "--plan-iterations", "1",
        "--batch-size", "8", "--no-language", "--threads", "1"]


def _ten_step_tasks() -> list[str]:
    from torchrl_newt.envs import register_task

    names = []
    for name, base in (("test-cartpole-ten", "cartpole-balance"), ("test-reacher-ten", "reacher-easy")):
        register_task(name, base=base, episode_length=10, overwrite=True)
        names.append(name)
    return names


def _csv_logs(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*.csv"))
            if "elapsed" not in p.name}


@pytest.mark.dmc
def test_killed_and_resumed_run_reproduces_the_uninterrupted_run(tmp_path, monkeypatch):
    """Two tasks with 10-step episodes (every checkpoint lands on an episode boundary): the run is
    trained to 80 frames, keeping a copy of its checkpoint at 40 frames. A second folder holds the
    same files as the finished run but that 40-frame checkpoint (a run killed after logging past it)
    plus a partial checkpoint write; resuming it must reproduce the uninterrupted run exactly: eval
    history, final weights and optimiser states, replay contents, and the CSV logs (no row twice)."""
    import torchrl_newt.recipe as recipe
    import torchrl_newt.train as train

    tasks = _ten_step_tasks()
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    real_save = recipe.atomic_save

    def save_and_keep(obj, path):
        out = real_save(obj, path)
        shutil.copy(out, snaps / f"{obj['state']['frames']}.pt")
        return out

    monkeypatch.setattr(recipe, "atomic_save", save_and_keep)
    common = ["--tasks", ",".join(tasks), "--eval-every", "40", "--save-replay", "--seed-episodes", "1", *TINY]
    full = train.main(common + ["--output-dir", str(tmp_path / "full"), "--frames", "80"])
    monkeypatch.setattr(recipe, "atomic_save", real_save)
    assert sorted(p.name for p in snaps.iterdir()) == ["40.pt", "80.pt"]

    killed = tmp_path / "killed"
    shutil.copytree(tmp_path / "full", killed)
    shutil.copy(snaps / "40.pt", killed / "checkpoint.pt")
    (killed / ".checkpoint.pt.x7k2q.tmp").write_bytes(b"partial write")
    resumed = train.main(common + ["--output-dir", str(killed), "--frames", "80", "--resume"])

    assert [h["frames"] for h in resumed["state"]["history"]] == [40, 80]
    assert resumed["state"]["history"] == full["state"]["history"]
    assert resumed["state"]["updates"] == full["state"]["updates"]
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)
    b = torch.load(killed / "checkpoint.pt", weights_only=False)
    for k, v in a["agent"].items():
        assert torch.equal(v, b["agent"][k]), k
    assert a["trainer"]["model_optim"]["state"][0]["exp_avg"].equal(b["trainer"]["model_optim"]["state"][0]["exp_avg"])
    assert a["replay"]["_storage"]["_storage"]["observation"].equal(b["replay"]["_storage"]["_storage"]["observation"])
    assert _csv_logs(tmp_path / "full" / "logs") == _csv_logs(killed / "logs")  # nothing logged twice
    assert not list(killed.glob(".*.tmp"))
    assert (killed / "checkpoint.pt").stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("argv, message", [
    (["--frames", "0"], "--frames: must be positive"),
    (["--eval-every", "0"], "--eval-every: must be positive"),
    (["--checkpoint-every", "0"], "--checkpoint-every: must be positive"),
    (["--frames", "-5"], "--frames: must be positive"),
])
def test_bad_flags_fail_with_one_clear_error(argv, message, capsys):
    from torchrl_newt.recipe import parse_args

    with pytest.raises(SystemExit) as err:
        parse_args(argv)
    assert err.value.code == 2
    assert message in capsys.readouterr().err


def test_task_listed_twice_is_rejected():
    from torchrl_newt.train import main

    with pytest.raises(ValueError, match="lists cartpole-balance twice"):
        main(["--tasks", "cartpole-balance,reacher-easy,cartpole-balance", "--frames", "10"])


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"PK\x03\x04 truncated", "truncated or not a torch checkpoint"),
    ("foreign", "not a training checkpoint"),
    ("size", "holds a size-B model"),
])
def test_resume_rejects_bad_checkpoints(tmp_path, content, message):
    from torchrl_newt.train import main

    path = tmp_path / "bad.pt"
    if content == "foreign":
        torch.save({"model": {"weights": torch.zeros(1)}}, path)
    elif content == "size":
        torch.save({"agent": {}, "state": {}, "tasks": ["cartpole-balance"], "args": {"size": "B"}}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        main(["--tasks", "cartpole-balance", "--frames", "10", "--no-language", "--output-dir", str(tmp_path / "o"),
              "--resume", str(path), "--logger", "none"])


def test_random_baseline_is_reproducible_and_leaves_the_training_rng_alone(monkeypatch):
    """The ``random`` column depends only on (seed, frames): not on what training drew from the RNG."""
    pytest.importorskip("gymnasium", reason="needs gymnasium[mujoco] for mujoco-reacher")
    pytest.importorskip("mujoco", reason="needs mujoco for mujoco-reacher")

    cuda_seeds = []  # fork_rng(devices=[]) would not restore a reseeded CUDA generator
    monkeypatch.setattr(torch.cuda, "manual_seed_all", cuda_seeds.append)
    from torchrl_newt.envs import make_env
    from torchrl_newt.recipe import random_baseline

    env = make_env(["mujoco-reacher"], seed=0)
    state = {"history": [{"frames": 400}]}
    try:
        torch.manual_seed(123)
        first = random_baseline(env, state, tasks=["mujoco-reacher"], local_tasks=["mujoco-reacher"], episodes=2, seed=1)
        after = torch.rand(3)
        torch.manual_seed(123)
        assert torch.equal(torch.rand(3), after)  # the global stream continued as if nothing had run
        torch.manual_seed(999)  # a different training history
        second = random_baseline(env, state, tasks=["mujoco-reacher"], local_tasks=["mujoco-reacher"], episodes=2, seed=1)
        other = random_baseline(env, {"history": [{"frames": 800}]}, tasks=["mujoco-reacher"],
                                local_tasks=["mujoco-reacher"], episodes=2, seed=1)
    finally:
        env.close()
    assert cuda_seeds == [123, 123, 999]  # this test's own torch.manual_seed calls only: CUDA's stream untouched
    assert first == second
    assert first != other  # another evaluation point gets other seeds
    r = first["mujoco-reacher"]
    assert r["return"] < 0 and 0.0 <= r["score"] <= 1.0  # Reacher's reward is a negative distance and control cost
    assert random_baseline(env, state, tasks=["mujoco-reacher"], local_tasks=["mujoco-reacher"], episodes=0,
                           seed=1) is None
