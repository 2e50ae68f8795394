"""The paper's baselines (``examples/baselines/{bc,ppo,td3}.py``) on our env stack.

Tiny runs on two cheap tasks (``pygame-landing``: 2 action dims, 200 steps; ``mujoco-reacher``: 2
action dims, 50 steps) with tiny networks. Counters are checked against values worked out by hand
from the flags, BC against the constant actions its demos were generated with.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("pygame")
pytest.importorskip("mujoco")

from torchrl_newt.baselines import BaselineRun, make_bc_policy, task_table  # noqa: E402
from torchrl_newt.data import save_demos  # noqa: E402
from torchrl_newt.envs import MissingDependencyError, UnknownTaskError, get_task, register_domain, register_task  # noqa: E402
from torchrl_newt.envs.vector import MultitaskVecEnv  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TASKS = ["pygame-landing", "mujoco-reacher"]
TINY = ["--tasks", ",".join(TASKS), "--num-cells", "16", "--task-dim", "8", "--quiet", "--seed", "0"]
#: the constant action of each task in the BC demos (2 valid dims each)
CONST = {"pygame-landing": [0.5, -0.3], "mujoco-reacher": [-0.6, 0.2]}


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"baseline_{name}", ROOT / "examples" / "baselines" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ppo():
    return _script("ppo")


@pytest.fixture(scope="module")
def td3():
    return _script("td3")


@pytest.fixture(scope="module")
def bc():
    return _script("bc")


def _check_outputs(out_dir: Path, printed: str, method: str, frames: int, updates: int) -> dict:
    data = json.loads((out_dir / "final_scores.json").read_text())
    assert list(data["tasks"]) == TASKS
    assert data["method"] == method and data["frames"] == frames and data["updates"] == updates
    for row in data["tasks"].values():
        assert 0.0 <= row["score"] <= 1.0 and 0.0 <= row["random"] <= 1.0
    # one task per domain: domain means are the task scores, MMBench score their mean
    scores = [data["tasks"][t]["score"] for t in TASKS]
    assert data["domains"] == pytest.approx({"pygame": scores[0], "mujoco": scores[1]})
    assert data["mmbench_score"] == pytest.approx(sum(scores) / 2)
    # the printed table, with the random-action column
    assert "random" in printed.splitlines()[[i for i, ln in enumerate(printed.splitlines()) if ln.startswith("task")][0]]
    for t in TASKS:
        line = next(ln for ln in printed.splitlines() if ln.startswith(t))
        assert f"{data['tasks'][t]['score']:.3f}" in line and f"{data['tasks'][t]['random']:.3f}" in line
    assert "MMBench score (mean of domain means)" in printed
    ckpt = torch.load(out_dir / "checkpoint.pt", weights_only=False)
    assert ckpt["baseline"] == method and ckpt["tasks"] == TASKS
    assert ckpt["state"]["frames"] == frames and ckpt["state"]["updates"] == updates
    return ckpt


# ------------------------------------------------------------------------------------------ PPO
def test_ppo_tiny_run(ppo, tmp_path, capsys):
    out = tmp_path / "ppo"
    # 2 lanes x 100 steps = 200 frames per batch; 250 frames -> 2 batches; 2 epochs x 2 minibatches of 100
    result = ppo.main([*TINY, "--frames", "250", "--steps-per-batch", "100", "--epochs", "2",
                       "--minibatch-size", "100", "--output-dir", str(out), "--logger", "csv", "--eval-every", "200"])
    ckpt = _check_outputs(out, capsys.readouterr().out, "ppo", frames=400, updates=2 * 2 * 2)
    assert {"actor", "critic", "optimizer"} <= set(ckpt)
    assert result["state"]["frames"] == 400 and set(result["results"]) == set(TASKS)
    # --eval-every 200: evaluations after each batch (the last one is the final evaluation)
    assert [(h["frames"], h["updates"]) for h in result["state"]["history"]] == [(200, 4), (400, 8)]
    final = json.loads((out / "final_scores.json").read_text())
    assert result["state"]["history"][-1]["mmbench_score"] == pytest.approx(final["mmbench_score"])
    assert list((out / "logs" / "ppo").rglob("*.csv"))  # the csv logger wrote metrics


# ------------------------------------------------------------------------------------------ TD3
def test_td3_tiny_run(td3, tmp_path, capsys):
    out = tmp_path / "td3"
    # 2 lanes per task x 2 tasks = 4 frames per batch; 398 frames -> 100 batches = 400 frames.
    # Updates start at the batch reaching 100 frames (the 25th): 76 batches x utd 0.5 = 38 updates.
    result = td3.main([*TINY, "--frames", "398", "--lanes-per-task", "2", "--learning-starts", "100",
                       "--utd", "0.5", "--batch-size", "32", "--buffer-size", "1000", "--output-dir", str(out),
                       "--logger", "none"])
    ckpt = _check_outputs(out, capsys.readouterr().out, "td3", frames=400, updates=38)
    assert {"loss_module", "actor_optimizer", "critic_optimizer"} <= set(ckpt)
    assert any("target" in k for k in ckpt["loss_module"])  # the critics' target copies are saved too
    assert json.loads((out / "final_scores.json").read_text())["lanes_per_task"] == 2
    assert result["state"]["updates"] == 38


# ------------------------------------------------------------------------------------------ masks
@pytest.mark.parametrize("name", ["ppo", "td3"])
def test_masked_dims_are_zero_in_env_actions(name, ppo, td3, tmp_path, monkeypatch):
    """Every action a MultitaskVecEnv receives (training lanes and the policy's evaluation) is zero
    on the dims its task does not have; the random-action reference is stubbed out."""
    seen = []
    step = MultitaskVecEnv._step

    def recording_step(self, tensordict):
        seen.append((tensordict["action"].clone(), self._mask.clone()))
        return step(self, tensordict)

    monkeypatch.setattr(MultitaskVecEnv, "_step", recording_step)
    evaluate = BaselineRun.evaluate

    def no_random(self, policy, **kw):
        if policy is None:
            return {t: {"score": 0.0, "return": 0.0, "success": 0.0} for t in self.tasks}
        return evaluate(self, policy, **kw)

    monkeypatch.setattr(BaselineRun, "evaluate", no_random)
    common = [*TINY, "--output-dir", str(tmp_path), "--logger", "none", "--frames", "40"]
    if name == "ppo":
        ppo.main([*common, "--steps-per-batch", "20", "--minibatch-size", "20", "--epochs", "1"])
    else:
        td3.main([*common, "--lanes-per-task", "2", "--learning-starts", "8", "--batch-size", "8",
                  "--buffer-size", "100", "--exploration-noise", "0.5"])
    # 40 training steps per lane-copy batch, plus the policy's eval episodes (max 200 steps)
    assert len(seen) >= 40
    for action, mask in seen:
        assert mask.sum(-1).tolist() == [2, 2]
        assert bool((action[~mask] == 0).all())
    assert any(bool((a[m] != 0).any()) for a, m in seen)  # the valid dims do move


# ------------------------------------------------------------------------------------------ BC
def _write_demos(folder: Path, tasks=TASKS, episodes: int = 3, steps: int = 20) -> Path:
    gen = torch.Generator().manual_seed(0)
    eps = []
    for k, task in enumerate(tasks):
        dim, obs_dim = get_task(task).action_dim, get_task(task).obs_dim
        for _ in range(episodes):
            obs = torch.zeros(steps + 1, 128)
            obs[:, :obs_dim] = torch.randn(steps + 1, obs_dim, generator=gen)
            action = torch.zeros(steps, 16)
            action[:, :dim] = torch.tensor(CONST[task])
            eps.append({"observation": obs, "action": action, "reward": torch.zeros(steps),
                        "action_mask": torch.arange(16) < dim, "task": k})
    return save_demos(folder / "demos.pt", eps, tasks)


@pytest.mark.parametrize("single_task", [False, True])
def test_bc_fits_demonstrated_actions(bc, tmp_path, capsys, single_task):
    demo_dir = tmp_path / "demos"
    _write_demos(demo_dir)
    out = tmp_path / "bc"
    argv = [*TINY, "--num-cells", "64,64", "--demos", str(demo_dir), "--frames", str(64 * 300), "--batch-size",
            "64", "--lr", "3e-3", "--output-dir", str(out), "--logger", "none"]
    result = bc.main(argv + (["--single-task"] if single_task else []))
    policies = 2 if single_task else 1
    ckpt = _check_outputs(out, capsys.readouterr().out, "bc", frames=policies * 64 * 300, updates=policies * 300)
    assert result["state"]["demo_transitions"] == 2 * 3 * 20
    # rebuild the trained policy from the checkpoint and query it on fresh observations
    policy = make_bc_policy(2, table=task_table(TASKS), num_cells=(64, 64), task_dim=8, single_task=single_task)
    policy.load_state_dict(ckpt["policy"])
    from tensordict import TensorDict

    for k, task in enumerate(TASKS):
        obs = torch.zeros(16, 128)
        obs[:, : get_task(task).obs_dim] = torch.randn(16, get_task(task).obs_dim)
        td = TensorDict({"observation": obs, "task": torch.full((16,), k),
                         "action_mask": (torch.arange(16) < 2).expand(16, 16)}, [16])
        with torch.no_grad():
            action = policy(td)["action"]
        assert torch.allclose(action[:, :2], torch.tensor(CONST[task]).expand(16, 2), atol=0.05), (task, action[:, :2])
        assert bool((action[:, 2:] == 0).all())


# ------------------------------------------------------------------------------------------ bad input
def _argv(name: str, tmp_path: Path, tasks: str) -> list[str]:
    argv = ["--tasks", tasks, "--frames", "10", "--output-dir", str(tmp_path / "out"), "--quiet", "--logger", "none"]
    return argv + (["--demos", str(tmp_path)] if name == "bc" else [])


@pytest.mark.parametrize("name", ["bc", "ppo", "td3"])
def test_unknown_task(name, bc, ppo, td3, tmp_path):
    with pytest.raises(UnknownTaskError, match="pygame-landin"):
        {"bc": bc, "ppo": ppo, "td3": td3}[name].main(_argv(name, tmp_path, "pygame-landing,pygame-landinx"))
    assert not (tmp_path / "out").exists()  # raised before anything was set up


@pytest.fixture
def missing_sim_task():
    register_domain("test-baselines-missing-sim", lambda spec, **kw: None, extra="fancysim",
                    requires=("no_such_module_xyz",))
    register_task("test-baselines-missing-task", domain="test-baselines-missing-sim", instruction="Do it",
                  embodiment="A thing", obs_dim=3, action_dim=1, episode_length=10,
                  base_domain="test-baselines-missing-sim", overwrite=True)
    return "test-baselines-missing-task"


@pytest.mark.parametrize("name", ["bc", "ppo", "td3"])
def test_missing_simulator(name, bc, ppo, td3, tmp_path, missing_sim_task):
    with pytest.raises(MissingDependencyError, match=r"test-baselines-missing-task.*no_such_module_xyz.*\[fancysim\]"):
        {"bc": bc, "ppo": ppo, "td3": td3}[name].main(_argv(name, tmp_path, f"pygame-landing,{missing_sim_task}"))
    assert not (tmp_path / "out").exists()


def test_bc_missing_demos_for_a_task(bc, tmp_path):
    demo_dir = tmp_path / "demos"
    _write_demos(demo_dir, tasks=TASKS[:1])  # pygame-landing only
    argv = [*TINY, "--demos", str(demo_dir), "--frames", "64", "--output-dir", str(tmp_path / "out"), "--logger", "none"]
    with pytest.raises(ValueError, match=rf"mujoco-reacher in {demo_dir}"):
        bc.main(argv)
    assert not (tmp_path / "out").exists()  # raised before anything was set up


def test_bc_demo_folder_missing(bc, tmp_path):
    argv = [*TINY, "--demos", str(tmp_path / "nowhere"), "--frames", "64", "--output-dir", str(tmp_path / "out")]
    with pytest.raises(FileNotFoundError, match="nowhere"):
        bc.main(argv)


@pytest.mark.parametrize("name", ["bc", "ppo", "td3"])
@pytest.mark.parametrize("frames", ["0", "-5"])
def test_frames_must_be_positive(name, frames, bc, ppo, td3, tmp_path, capsys):
    argv = _argv(name, tmp_path, "pygame-landing")
    argv[argv.index("--frames") + 1] = frames
    with pytest.raises(SystemExit) as err:
        {"bc": bc, "ppo": ppo, "td3": td3}[name].main(argv)
    assert err.value.code == 2
    assert f"--frames: must be positive, got {frames}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bc_reads_newt_files_of_different_widths(bc, tmp_path):
    """Newt's demo files store each task unpadded (its own observation and action widths)."""
    from tensordict import TensorDict

    demo_dir = tmp_path / "newt-demos"
    demo_dir.mkdir()
    steps = 10
    for task in TASKS:
        spec = get_task(task)
        rows = steps + 1
        action = torch.full((rows, spec.action_dim), 0.25)
        reward = torch.zeros(rows)
        action[0], reward[0] = float("nan"), float("nan")
        torch.save(TensorDict({"obs": torch.randn(rows, spec.obs_dim), "action": action, "reward": reward,
                               "episode": torch.zeros(rows, dtype=torch.long)}, [rows]), demo_dir / f"{task}.pt")
    assert len({get_task(t).obs_dim for t in TASKS}) == 2  # the widths differ
    result = bc.main([*TINY, "--demos", str(demo_dir), "--frames", "32", "--batch-size", "16",
                      "--output-dir", str(tmp_path / "bc"), "--logger", "none"])
    assert result["state"]["demo_transitions"] == len(TASKS) * steps
