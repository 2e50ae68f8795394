"""End-to-end: the planner as a Collector policy, the single-task "import into another agent"
case, one full update from replay, and the training example on short episodes."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from torchrl.collectors import Collector
from torchrl.envs import GymEnv, InitTracker, TransformedEnv
from torchrl.envs.utils import ExplorationType
from torchrl.objectives import SoftUpdate

from torchrl_newt.data import MultitaskReplayBuffer
from torchrl_newt.envs import make_env, register_task, task_tensors
from torchrl_newt.modules import NewtWorldModel, TDMPC2Planner
from torchrl_newt.objectives import TDMPC2ActorLoss, TDMPC2WorldModelLoss, assert_finite_losses

pytestmark = pytest.mark.dmc
SMALL_PLANNER = dict(num_samples=32, num_elites=4, num_pi_trajs=4, iterations=2)
TASKS = ["cartpole-balance", "reacher-easy", "walker-stand"]


def _collector(env, policy, frames, **kw):
    return Collector(env, policy, frames_per_batch=frames, total_frames=frames, trust_policy=True,
                     auto_register_policy_transforms=False, exploration_type=ExplorationType.RANDOM, **kw)


def test_planner_in_collector_over_multitask_env():
    torch.manual_seed(0)
    consts = task_tensors(TASKS)
    wm = NewtWorldModel(128, 16, size="S", num_tasks=len(TASKS))
    planner = TDMPC2Planner(wm, discount=consts["discount"], **SMALL_PLANNER)
    env = make_env(TASKS, seed=0)
    env.append_transform(planner.make_primer())
    collector = _collector(env, planner, frames=3 * 4)
    batch = next(iter(collector))
    collector.shutdown()  # also closes the env
    assert batch.shape == (3, 4)
    # masked action dims exactly zero, valid ones used
    assert (batch["action"][~batch["action_mask"]] == 0).all()
    assert batch["action"].abs().max() <= 1
    # warm-start state travels step to step: next loc of step t is the loc read at step t+1
    loc, next_loc = batch["planner", "loc"], batch["next", "planner", "loc"]
    assert (loc[:, 0] == 0).all()  # primer zeros at reset
    assert torch.equal(loc[:, 1:], next_loc[:, :-1])
    assert next_loc.abs().sum() > 0


def test_planner_on_stock_torchrl_env_single_task():
    """Import into another agent: a single-task world model planning on GymEnv('Pendulum-v1')."""
    torch.manual_seed(0)
    env = TransformedEnv(GymEnv("Pendulum-v1"), InitTracker())
    wm = NewtWorldModel(obs_dim=3, action_dim=1, size="S")
    planner = TDMPC2Planner(wm, **SMALL_PLANNER)
    env.append_transform(planner.make_primer())
    collector = _collector(env, planner, frames=8)
    batch = next(iter(collector))
    collector.shutdown()
    assert batch.shape == (8,) and batch["action"].shape == (8, 1)
    assert (batch["action"].abs() <= 1).all()
    assert torch.equal(batch["planner", "loc"][1:], batch["next", "planner", "loc"][:-1])
    # and the losses train on that data directly
    td = batch.unsqueeze(0)[:, :3]
    losses = TDMPC2WorldModelLoss(wm)(td)
    actor = TDMPC2ActorLoss(wm)(td)
    assert torch.isfinite(losses["loss_value"]) and torch.isfinite(actor["loss_pi"])


def test_one_full_update_from_replay():
    torch.manual_seed(0)
    consts = task_tensors(TASKS)
    wm = NewtWorldModel(128, 16, size="S", num_tasks=len(TASKS))
    planner = TDMPC2Planner(wm, discount=consts["discount"], **SMALL_PLANNER)
    env = make_env(TASKS, seed=1)
    env.append_transform(planner.make_primer())
    collector = _collector(env, planner, frames=3 * 8, init_random_frames=3 * 8)
    rb = MultitaskReplayBuffer(1000, slice_len=3, batch_size=16)
    for batch in collector:
        batch["action"] = batch["action"] * batch["action_mask"]
        rb.extend(batch)
    collector.shutdown()  # also closes the env
    wm_loss = TDMPC2WorldModelLoss(wm, discount=consts["discount"])
    actor_loss = TDMPC2ActorLoss(wm)
    updater = SoftUpdate(wm_loss, tau=0.01)
    model_params = [p for n, p in wm.named_parameters() if not n.startswith("policy.")]
    opt = torch.optim.Adam(model_params, lr=3e-4)
    pi_opt = torch.optim.Adam(wm.policy.parameters(), lr=3e-4, eps=1e-5)
    sample = rb.sample()
    assert sample.shape == (16, 3)
    before = [p.detach().clone() for p in model_params]
    target_before = wm_loss.target_qvalue_network_params.clone()
    losses = wm_loss(sample)
    assert_finite_losses(losses, step=0)
    (losses["loss_consistency"] + losses["loss_reward"] + losses["loss_value"]).backward()
    opt.step()
    actor = actor_loss(sample)
    (actor["loss_pi"] + actor["loss_bc"]).backward()
    pi_opt.step()
    updater.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model_params))
    changed = (wm_loss.target_qvalue_network_params - target_before).abs().sum()
    assert float(sum(changed.values(True, True))) > 0


def _load_example():
    """The example script, loaded from its path as a user runs it."""
    path = Path(__file__).resolve().parents[1] / "examples" / "newt_mmbench.py"
    spec = importlib.util.spec_from_file_location("newt_mmbench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_packaged_entry_point_is_the_example_composition():
    """``python -m torchrl_newt.train`` and the Slurm launchers run exactly the example's program
    (the package ships the example file as ``torchrl_newt.train``), and the example composes the
    library pieces itself within about 300 lines."""
    import torchrl_newt.train as train
    from torchrl_newt.launch.slurm import DEFAULT_ENTRY_POINT

    example = Path(__file__).resolve().parents[1] / "examples" / "newt_mmbench.py"
    assert Path(train.__file__).read_text() == example.read_text()
    assert DEFAULT_ENTRY_POINT == "torchrl_newt.train:main"
    source = example.read_text()
    assert len(source.splitlines()) <= 300
    for piece in ("build_env(", "Collector(", "MultitaskReplayBuffer(", "TDMPC2WorldModelLoss(", "TDMPC2ActorLoss(",
                  "TDMPC2Planner(", "NewtTrainer(", "trainer.step(", "for batch in collector"):
        assert piece in source, piece


def test_training_example_runs_and_resumes(tmp_path):
    for name, base in (("test-cartpole-short", "cartpole-balance"), ("test-reacher-short", "reacher-easy")):
        register_task(name, base=base, episode_length=12, overwrite=True)
    example = _load_example()
    common = ["--tasks", "test-cartpole-short,test-reacher-short", "--output-dir", str(tmp_path), "--quiet",
              "--plan-samples", "32", "--plan-elites", "4", "--plan-pi-trajs", "4", "--plan-iterations", "2",
              "--batch-size", "8", "--eval-every", "40", "--no-language", "--seed-episodes", "1"]
    out = example.main(common + ["--frames", "80"])
    assert out["state"]["frames"] >= 80 and out["state"]["updates"] > 0
    assert set(out["results"]) == {"test-cartpole-short", "test-reacher-short"}
    assert all(0.0 <= r["score"] <= 1.0 for r in out["results"].values())
    assert (tmp_path / "checkpoint.pt").is_file() and (tmp_path / "learning_curve.png").is_file()
    assert list((tmp_path / "logs").rglob("*.csv"))
    final = json.loads((tmp_path / "final_scores.json").read_text())
    assert set(final["tasks"]) == {"test-cartpole-short", "test-reacher-short"}
    for task, row in final["tasks"].items():  # the random column beside each score, on the final eval's seeds
        assert set(row) == {"score", "random", "return", "success"} and 0.0 <= row["random"] <= 1.0
        assert row["score"] == out["results"][task]["score"]
    assert final["frames"] == out["state"]["frames"] and final["updates"] == out["state"]["updates"]
    assert final["random_episodes"] == 10 and final["wall_s"] > 0
    resumed = example.main(common + ["--frames", "120", "--resume"])
    assert resumed["state"]["frames"] >= 120
    assert resumed["state"]["updates"] > out["state"]["updates"]
    assert len(resumed["state"]["history"]) > len(out["state"]["history"])


def test_example_rejects_unknown_task():
    example = _load_example()
    with pytest.raises(KeyError, match="Did you mean"):
        example.main(["--tasks", "walker-wlak", "--frames", "10"])


def _short_tasks():
    for name, base in (("test-cartpole-short", "cartpole-balance"), ("test-reacher-short", "reacher-easy")):
        register_task(name, base=base, episode_length=12, overwrite=True)
    return ["test-cartpole-short", "test-reacher-short"]


SMALL_ARGS = ["--quiet", "--plan-samples", "32", "--plan-elites", "4", "--plan-pi-trajs", "4",
              "--plan-iterations", "2", "--batch-size", "8", "--no-language"]


def test_training_example_pretrains_on_demo_files(tmp_path):
    """Demo files -> BC + world-model pretraining -> online training with half-demo batches."""
    from torchrl_newt.data import save_demos

    tasks = _short_tasks()
    env = make_env(tasks, seed=3)
    td = env.rollout(12, break_when_any_done=False)  # one full random episode per lane
    env.close()
    episodes = []
    for lane in range(len(tasks)):
        ep = td[lane]
        episodes.append({
            "observation": torch.cat([ep["observation"], ep["next", "observation"][-1:]]),
            "action": ep["action"] * ep["action_mask"],
            "reward": ep["next", "reward"].squeeze(-1),
            "action_mask": ep["action_mask"][0],
            "task": lane,
        })
    demo_file = save_demos(tmp_path / "demos" / "random.pt", episodes, tasks)
    example = _load_example()
    out = example.main(["--tasks", ",".join(tasks), "--output-dir", str(tmp_path / "run"), "--frames", "48",
                        "--eval-every", "48", "--demos", str(demo_file.parent), "--pretrain-updates", "6",
                        "--warmup-updates", "3", *SMALL_ARGS])
    assert out["state"]["pretrain_updates"] == 6
    assert out["state"]["updates"] > 0


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="wandb is not installed (pip install -e .[wandb])")
def test_training_example_logs_to_wandb_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    example = _load_example()
    example.main(["--tasks", ",".join(_short_tasks()), "--output-dir", str(tmp_path / "run"), "--frames", "48",
                  "--eval-every", "48", "--logger", "wandb", "--wandb-mode", "offline", *SMALL_ARGS])
    assert list(tmp_path.rglob("*.wandb")), "no offline wandb run was written"


def test_finetune_held_out_task_from_a_pretrained_checkpoint(tmp_path):
    """--finetune: pretrained weights (ours) on a held-out task beyond the 200, its own instruction
    row from the frozen table, planning from the first step (no random seeding)."""
    from torchrl_newt.envs import list_tasks
    from torchrl_newt.modules.language import task_embeddings

    held_out = "cartpole-balance-long-sparse"
    assert held_out in list_tasks(include_held_out=True) and held_out not in list_tasks()
    register_task("test-held-out-short", base=held_out, episode_length=10, overwrite=True)
    soup = ["cartpole-balance", "walker-stand"]
    wm = NewtWorldModel(128, 16, size="S", task_embeddings=task_embeddings(soup))
    torch.save({"world_model": wm.state_dict()}, tmp_path / "pretrained.pt")
    example = _load_example()
    args = ["--output-dir", str(tmp_path / "ft"), "--frames", "20", "--eval-every", "20", "--quiet",
            "--plan-samples", "16", "--plan-elites", "4", "--plan-pi-trajs", "2", "--plan-iterations", "1",
            "--batch-size", "4", "--threads", "1"]
    out = example.main(["--tasks", "test-held-out-short", "--finetune", str(tmp_path / "pretrained.pt"), *args])
    assert out["state"]["updates"] > 0  # updates from the first batch: no seeding episodes
    ckpt = torch.load(tmp_path / "ft" / "checkpoint.pt", weights_only=False)
    assert ckpt["agent"]["world_model.task_embeddings"].shape[0] == 1
    with pytest.raises(KeyError, match="Did you mean"):
        example.main(["--tasks", "cartpole-balance-long-sparce", "--finetune", str(tmp_path / "pretrained.pt"), *args])
    from torchrl_newt.interop import CheckpointMismatchError

    with pytest.raises(CheckpointMismatchError):
        example.main(["--tasks", "test-held-out-short", "--finetune", str(tmp_path / "pretrained.pt"), "--size", "B",
                      *args])
