"""Demonstration generation (``python -m torchrl_newt.demos generate``).

The acceptance rule is checked against hand-worked numbers. The end-to-end run plans with a tiny
checkpoint in our format (no training; the layout of ``tests/test_evaluate.py``) on
``mujoco-reacher`` (50-step episodes, 11 observation dims, 2 action dims), while the simulator's
``_step``/``_reset`` are wrapped to record what every lane really received and returned, so the
stored episodes are compared with the simulator's own record. The error cases use toy tasks
registered for the test only (a constant-reward simulator of 5 steps), which makes their
outcomes known in advance.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
import torch

from torchrl_newt import demos as gen
from torchrl_newt.data.demos import load_demos
from torchrl_newt.envs import registry
from torchrl_newt.envs.base import RawTaskEnv
from torchrl_newt.envs.registry import UnknownTaskError
from torchrl_newt.interop import CheckpointMismatchError
from torchrl_newt.modules import NewtWorldModel, newt_task_embeddings

pytest.importorskip("mujoco")
pytest.importorskip("gymnasium")

TASK = "mujoco-reacher"  # 50 steps, obs 11, action 2, no success flag
PLANNER_ARGS = dict(horizon=2, plan_iterations=1, plan_samples=8, plan_elites=2, plan_pi_trajs=1,
                    constrained_planning="off", demos=None)


def save_ours(path, wm: NewtWorldModel, tasks):
    """The example's checkpoint layout: {"agent": {"world_model.*"}, "tasks", "args", "state"}."""
    torch.save({"agent": {f"world_model.{k}": v for k, v in wm.state_dict().items()}, "tasks": list(tasks),
                "args": dict(PLANNER_ARGS), "state": {"frames": 0}}, path)
    return path


def tiny_wm(obs_dim: int = 16, action_dim: int = 4, tasks=None) -> NewtWorldModel:
    torch.manual_seed(0)
    table = {"task_embeddings": newt_task_embeddings(tasks)} if tasks else {}
    return NewtWorldModel(obs_dim, action_dim, enc_dim=16, mlp_dim=16, latent_dim=16, num_q=2, **table)


@pytest.fixture(scope="module")
def multitask_ckpt(tmp_path_factory):
    tasks = [TASK, "pygame-landing"]
    return save_ours(tmp_path_factory.mktemp("ckpt") / "checkpoint.pt", tiny_wm(tasks=tasks), tasks)


@pytest.fixture(autouse=True)
def _one_thread(one_thread):  # every test here (tests/conftest.py)
    yield


def cli(ckpt, out, task=TASK, num_demos=2, *extra):
    return gen.main(["generate", "--checkpoint", str(ckpt), "--task", task, "--num-demos", str(num_demos),
                     "--out", str(out), "--device", "cpu", "--quiet", *extra])


# ------------------------------------------------------------------------------ the acceptance rule
def test_threshold_positive_median():
    # median of [10, 20, 30] is 20: 0.75 * 20 = 15
    assert gen.acceptance_threshold(-math.inf, [30.0, 10.0, 20.0]) == 15.0
    # even count: torch's median is the lower middle value, 20 of [10, 20, 30, 40]
    assert gen.acceptance_threshold(-math.inf, [40.0, 10.0, 30.0, 20.0]) == 15.0


def test_threshold_negative_and_zero_median():
    # median -20: 1.25 * -20 = -25 (below the median, so the better half passes)
    assert gen.acceptance_threshold(-math.inf, [-10.0, -20.0, -30.0]) == -25.0
    assert gen.acceptance_threshold(-math.inf, [0.0, 0.0, 5.0]) == 0.0  # median 0: 1.25 * 0


def test_threshold_never_decreases():
    t = gen.acceptance_threshold(-math.inf, [4.0, 8.0, 12.0])  # 0.75 * 8 = 6
    assert t == 6.0
    t = gen.acceptance_threshold(t, [20.0, 40.0, 60.0])  # 0.75 * 40 = 30
    assert t == 30.0
    assert gen.acceptance_threshold(t, [1.0, 2.0, 3.0]) == 30.0  # 1.5 < 30: kept
    assert gen.acceptance_threshold(-25.0, [-100.0, -100.0]) == -25.0  # -125 < -25: kept


def test_accept_return_strictly_above_threshold():
    assert gen.accept([1.0, 1.5, 2.0], [0.0, 0.0, 0.0], 1.5, "walker-walk").tolist() == [False, False, True]


@pytest.mark.parametrize("task, required", [
    ("mw-assembly", True), ("rd-open-slide", True), ("ms-pick-cube", True), ("ms-reach", True),
    ("ms-cartpole-balance", False), ("ms-cartpole-swingup-sparse", False), ("ms-hopper-hop", False),
    ("ms-ant-walk", False), ("walker-walk", False), ("pygame-landing", False), ("og-point-arena", False),
])
def test_success_requirement_per_prefix(task, required):
    assert gen.requires_success(task) is required
    # two good returns, only the second one succeeded
    expected = [False, True] if required else [True, True]
    assert gen.accept([5.0, 6.0], [0.0, 1.0], 1.0, task).tolist() == expected


# ------------------------------------------------------------------------------ end to end
@pytest.fixture
def recorded(monkeypatch):
    """Every lane's resets and steps as the simulator saw them: {env id: [episode, ...]}."""
    events = defaultdict(list)
    reset, step = RawTaskEnv._reset, RawTaskEnv._step

    def rec_reset(self, *args, **kwargs):
        out = reset(self, *args, **kwargs)
        events[id(self)].append({"obs": [out["observation"].clone()], "action": [], "reward": []})
        return out

    def rec_step(self, tensordict):
        out = step(self, tensordict)
        ep = events[id(self)][-1]
        ep["action"].append(torch.as_tensor(np.array(tensordict["action"].detach().cpu().numpy())).clone())
        ep["obs"].append(out["observation"].clone())
        ep["reward"].append(float(out["reward"]))
        return out

    monkeypatch.setattr(RawTaskEnv, "_reset", rec_reset)
    monkeypatch.setattr(RawTaskEnv, "_step", rec_step)
    return events


def test_cli_end_to_end(multitask_ckpt, tmp_path, recorded, capsys):
    out = tmp_path / "demos"
    result = cli(multitask_ckpt, out, TASK, 2)
    path = out / f"{TASK}.pt"
    assert result["path"] == path and path.is_file()
    assert sorted(p.name for p in out.iterdir()) == [f"{TASK}.pt"]  # no temporary file left
    assert f"{TASK}: 2 demos accepted" in capsys.readouterr().out

    # Newt's flat layout: 2 episodes x 51 rows, NaN first rows, episode ids, unpadded dims
    raw = torch.load(path, weights_only=False)
    assert raw.shape == (102,) and raw["obs"].shape == (102, 11) and raw["action"].shape == (102, 2)
    assert raw["episode"].tolist() == [0] * 51 + [1] * 51
    first = torch.tensor([0, 51])
    assert raw["action"][first].isnan().all() and raw["reward"][first].isnan().all()
    rest = torch.ones(102, dtype=torch.bool)
    rest[first] = False
    assert torch.isfinite(raw["action"][rest]).all() and torch.isfinite(raw["reward"][rest]).all()

    demos = load_demos(path, [TASK])
    assert demos.shape == (2,) and demos["length"].tolist() == [50, 50]
    assert demos["observation"].shape == (2, 51, 11) and demos["action"].shape == (2, 50, 2)
    assert demos["action_mask"].all() and demos["task"].tolist() == [0, 0]
    assert demos["action"].abs().max() <= 1.0

    # what the simulators received and returned, one 50-step episode per reset, lanes in order
    lanes = [eps for eps in recorded.values() if any(len(e["action"]) for e in eps)]
    assert len(lanes) == 4  # 2 * num_demos lanes
    episodes = [[e for e in eps if len(e["action"]) == 50] for eps in lanes]
    batch1 = [eps[0] for eps in episodes]  # the first batch, lane order
    returns = [sum(e["reward"]) for e in batch1]
    median = sorted(returns)[1]  # lower middle of 4
    threshold = (0.75 if median > 0 else 1.25) * median
    passed = [e for e, r in zip(batch1, returns) if r > threshold]
    assert len(passed) >= 3  # the lower median itself and above pass when it is negative or positive
    for i, ep in enumerate(passed[:2]):  # accepted in lane order, first batch is enough
        assert torch.equal(demos["action"][i], torch.stack(ep["action"]))
        assert torch.equal(demos["observation"][i], torch.stack(ep["obs"]))
        assert torch.allclose(demos["reward"][i], torch.tensor(ep["reward"]))
    assert result["report"].attempted == 4 and result["report"].batches == 1
    assert result["report"].threshold == pytest.approx(threshold, rel=1e-5)


# ------------------------------------------------------------------------------ toy tasks (errors)
class _Const:
    """A 5-step toy simulator: reward ``REWARD`` per step, success ``SUCCESS``."""

    obs_dim, action_dim = 3, 2

    def __init__(self, reward: float, success: float):
        self.reward, self.success, self.t = reward, success, 0

    def reset(self, seed=None):
        self.t = 0
        return np.zeros(3, np.float32)

    def step(self, action):
        self.t += 1
        return np.full(3, self.t, np.float32), self.reward, {"success": self.success}

    def render(self, width=224, height=224):
        return np.zeros((height, width, 3), np.uint8)

    def close(self):
        pass


TOYS = {"mw-toy-never": (1.0, 0.0), "toy-zero": (0.0, 0.0), "toy-one": (1.0, 0.0)}


@pytest.fixture
def toys(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "_TASKS", dict(registry._TASKS))
    monkeypatch.setattr(registry, "_DOMAINS", dict(registry._DOMAINS))
    registry.register_domain("toydemo", lambda spec, **kw: _Const(*TOYS[spec.name]), extra="toy")
    for name in TOYS:
        registry.register_task(name, domain="toydemo", instruction="Do nothing", embodiment="A point",
                               obs_dim=3, action_dim=2, episode_length=5, success_defined=True)
    return save_ours(tmp_path / "toy.pt", tiny_wm(), list(TOYS))


def test_impossible_task_reports_counts_and_threshold(toys, tmp_path):
    out = tmp_path / "demos"
    # success is required (mw-) but never happens: returns 5 each, threshold 0.75 * 5 = 3.75
    with pytest.raises(gen.DemoAcceptanceError, match=r"only 0 of 2 .* after 8 episodes .*threshold 3\.75") as info:
        cli(toys, out, "mw-toy-never", 2, "--max-attempts", "8")
    err = info.value
    assert (err.accepted, err.attempted, err.threshold) == (0, 8, 3.75) and isinstance(err, ValueError)
    assert list(out.iterdir()) == []  # nothing written
    # zero returns: threshold 1.25 * 0 = 0 and 0 > 0 fails; 5 attempts allow one whole batch of 4
    with pytest.raises(gen.DemoAcceptanceError, match=r"only 0 of 2 .* after 4 episodes .*threshold 0"):
        cli(toys, out, "toy-zero", 2, "--max-attempts", "5")
    assert list(out.iterdir()) == []


def test_toy_task_accepts_and_interrupted_write_leaves_nothing(toys, tmp_path, monkeypatch):
    out = tmp_path / "demos"
    res = cli(toys, out, "toy-one", 1)  # returns 5 > 3.75: the first of 2 lanes is kept
    assert res["report"].attempted == 2 and res["demos"]["episode_reward"].tolist() == [5.0]
    assert load_demos(res["path"], ["toy-one"])["observation"][0, :, 0].tolist() == [0, 1, 2, 3, 4, 5]

    import torchrl_newt.checkpoint as ckpt_mod

    def interrupted_save(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt_mod.torch, "save", interrupted_save)
    out2 = tmp_path / "demos2"
    with pytest.raises(KeyboardInterrupt):
        cli(toys, out2, "toy-one", 1)
    assert list(out2.iterdir()) == []


# ------------------------------------------------------------------------------ bad input
def test_error_checkpoint_for_another_task(tmp_path):
    single = save_ours(tmp_path / "single.pt", tiny_wm(), ["pygame-landing"])
    with pytest.raises(CheckpointMismatchError, match="single-task checkpoint for pygame-landing, not for mujoco-reacher"):
        cli(single, tmp_path / "out", TASK, 1)
    small = save_ours(tmp_path / "small.pt", tiny_wm(obs_dim=8), [TASK])
    with pytest.raises(CheckpointMismatchError, match=r"cannot hold task\(s\) mujoco-reacher \(obs_dim 11 > 8\)"):
        cli(small, tmp_path / "out", TASK, 1)
    assert not (tmp_path / "out" / f"{TASK}.pt").exists()


def test_error_unknown_task_and_bad_counts(multitask_ckpt, tmp_path):
    with pytest.raises(UnknownTaskError, match="mujoco-reacher"):
        cli(multitask_ckpt, tmp_path, "mujoco-reachr", 1)
    for n in ("0", "-3"):
        with pytest.raises(gen.DemoGenerationError, match="--num-demos must be >= 1"):
            cli(multitask_ckpt, tmp_path, TASK, n)
    with pytest.raises(gen.DemoGenerationError, match="at least one batch of 2 \\* num-demos = 4"):
        cli(multitask_ckpt, tmp_path, TASK, 2, "--max-attempts", "3")


def test_error_unwritable_out_checked_first(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    # the checkpoint does not exist: the folder error comes first, before loading or running
    with pytest.raises(ValueError, match="--out .*cannot write there"):
        cli(tmp_path / "missing.pt", blocker / "demos", TASK, 1)
    with pytest.raises(FileNotFoundError):
        cli(tmp_path / "missing.pt", tmp_path / "demos", TASK, 1)


def test_video_one_file_per_accepted_demo(toys, tmp_path):
    from torchrl_newt.evaluate import video_backend

    videos = tmp_path / "videos"
    cli(toys, tmp_path / "demos", "toy-one", 2, "--video", str(videos))
    # 4 lanes ran, the first 2 accepted (every return is 5 > 3.75): one video each, no temp folder
    fmt = video_backend()
    assert sorted(p.name for p in videos.iterdir()) == [f"toy-one-demo0.{fmt}", f"toy-one-demo1.{fmt}"]
    assert all(p.stat().st_size > 0 for p in videos.iterdir())


def test_error_unwritable_video_folder(toys, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="--video .*cannot write there"):
        cli(toys, tmp_path / "demos", "toy-one", 1, "--video", str(blocker / "videos"))
    assert not (tmp_path / "demos" / "toy-one.pt").exists()


def test_library_function_returns_unwritten_episodes(toys):
    loaded = gen._load(str(toys))[0]
    demos = gen.generate_demos(loaded, "toy-one", 1, seed=3)
    assert demos.shape == (1,) and demos["observation"].shape == (1, 6, 3) and demos["action"].shape == (1, 5, 2)
    assert demos["reward"].tolist() == [[1.0] * 5] and demos["success"].tolist() == [0.0]


def test_interrupted_run_leaves_no_file_and_no_temp_videos(toys, tmp_path, monkeypatch):
    def interrupt(self, action):
        raise KeyboardInterrupt

    monkeypatch.setattr(_Const, "step", interrupt)
    out, videos = tmp_path / "demos", tmp_path / "videos"
    with pytest.raises(KeyboardInterrupt):
        cli(toys, out, "toy-one", 1, "--video", str(videos))
    assert list(out.iterdir()) == [] and list(videos.iterdir()) == []
