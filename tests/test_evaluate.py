"""The evaluation CLI (``python -m torchrl_newt.evaluate``) and the open-loop planner.

A tiny checkpoint in our format is built in the test (no training): a custom-size
``NewtWorldModel`` with Newt's frozen CLIP rows for its tasks, padded to 16 observation / 4 action
dims, with cheap planner settings in its ``"args"``. Episodes run on ``mujoco-reacher``
(50 steps) with one torch thread (the planner is overhead-bound; threads only contend).
"""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from torchrl_newt import evaluate as ev
from torchrl_newt.envs import make_env, task_tensors
from torchrl_newt.envs.registry import UnknownTaskError
from torchrl_newt.interop import (
    CheckpointFormatError,
    CheckpointMismatchError,
    LoadedWorldModel,
    load_world_model,
    save_newt_checkpoint,
)
from torchrl_newt.modules import NewtWorldModel, TDMPC2Planner, newt_task_embeddings
from torchrl_newt.modules.open_loop import OpenLoopPlanner

pytest.importorskip("mujoco")
pytest.importorskip("gymnasium")

TASK = "mujoco-reacher"  # 50-step episodes, obs 11, action 2
TRAIN_TASKS = [TASK, "pygame-landing"]
PLANNER_ARGS = dict(horizon=3, plan_iterations=1, plan_samples=16, plan_elites=4, plan_pi_trajs=2,
                    constrained_planning="off", demos=None)


def tiny_world_model(tasks=TRAIN_TASKS, learnable: bool = False) -> NewtWorldModel:
    torch.manual_seed(0)
    table = {"num_tasks": len(tasks), "task_dim": 8} if learnable else {"task_embeddings": newt_task_embeddings(tasks)}
    return NewtWorldModel(16, 4, enc_dim=16, mlp_dim=16, latent_dim=16, num_q=2, **table)


def save_ours(path, wm: NewtWorldModel, tasks=TRAIN_TASKS):
    """The example's checkpoint layout: {"agent": {"world_model.*"}, "tasks", "args", "state"}."""
    torch.save({"agent": {f"world_model.{k}": v for k, v in wm.state_dict().items()}, "tasks": list(tasks),
                "args": dict(PLANNER_ARGS), "state": {"frames": 123}}, path)
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return save_ours(tmp_path_factory.mktemp("ckpt") / "checkpoint.pt", tiny_world_model())


@pytest.fixture(autouse=True)
def _one_thread(one_thread):  # every test here (tests/conftest.py)
    yield


def run_cli(ckpt, tmp_path, *extra):
    return ev.main(["--checkpoint", str(ckpt), "--tasks", TASK, "--episodes", "1", "--output-dir",
                    str(tmp_path / "out"), "--device", "cpu", "--quiet", *extra])


# ------------------------------------------------------------------------------ the CLI end to end
def test_cli_scores_table_video_and_open_loop(ckpt, tmp_path, capsys):
    out = run_cli(ckpt, tmp_path, "--open-loop", "1,5", "--video", str(tmp_path / "videos"), "--video-size", "64")
    printed = capsys.readouterr().out
    # the score table and the open-loop table (one column per K) are printed
    assert "MMBench score (mean of domain means)" in printed and TASK in printed
    assert "K=1" in printed and "K=5" in printed and "closed" in printed
    data = json.loads((tmp_path / "out" / ev.FINAL_SCORES_FILE).read_text())
    row = data["tasks"][TASK]
    assert set(row) == {"score", "return", "success"} and 0.0 <= row["score"] <= 1.0
    assert data["domains"] == {"mujoco": row["score"]} and data["mmbench_score"] == row["score"]
    assert data["episodes"] == 1 and data["checkpoint_format"] == "torchrl_newt" and data["frames"] == 123
    assert data["checkpoint"].endswith("checkpoint.pt")
    assert data["planner"]["source"] == "checkpoint args" and data["planner"]["num_samples"] == 16
    assert set(data["open_loop"]) == {"1", "5"} and data["open_loop"]["1"][TASK] == row["score"]
    assert 0.0 <= data["open_loop"]["5"][TASK] <= 1.0 and set(data["open_loop_mmbench_score"]) == {"1", "5"}
    assert out["results"][TASK]["score"] == row["score"]
    # one video per task, non-empty, in the format the installed writers give
    fmt = ev.video_backend()
    video = tmp_path / "videos" / f"{TASK}.{fmt}"
    assert video.is_file() and video.stat().st_size > 0 and data["videos"] == [str(video)]
    if fmt == "mp4":
        import imageio.v2 as imageio

        reader = imageio.get_reader(video)
        assert reader.count_frames() == 51  # reset frame + 50 steps
        reader.close()


# ------------------------------------------------------------------------------ open loop
def _env_and_planner(ckpt, ks=(1,)):
    loaded = load_world_model(ckpt)
    wm, _ = ev.eval_world_model(loaded, [TASK])
    settings, _ = ev.planner_settings(loaded)
    planner = TDMPC2Planner(wm, discount=task_tensors([TASK])["discount"], **settings)
    env = make_env([TASK], seed=3, obs_pad=16, action_pad=4)
    env.append_transform(planner.make_primer())
    max_len = max(planner.horizon, *ks)
    env.append_transform(OpenLoopPlanner(planner, max(ks), max_len=max_len).make_primer())
    return env, planner, max_len


def test_open_loop_k1_equals_closed_loop(ckpt):
    env, planner, max_len = _env_and_planner(ckpt)

    def run(policy, fn=ev.run_episodes):
        torch.manual_seed(0)
        env.set_seed(3)
        return fn(env, policy, [TASK], 1)

    try:
        closed = run(planner)
        assert run(OpenLoopPlanner(planner, 1, max_len=max_len)) == closed
        assert run(planner, ev.evaluate) == closed  # the step loop equals env.rollout
    finally:
        env.close()


def test_open_loop_replays_plan_and_extends_past_horizon(ckpt):
    env, planner, max_len = _env_and_planner(ckpt, ks=(5,))
    policy = OpenLoopPlanner(planner, 5, max_len=max_len)
    seen = []
    calls = []
    plan = planner.plan

    def counting_plan(*args, **kwargs):
        calls.append(1)
        return plan(*args, **kwargs)

    planner.plan = counting_plan
    try:
        torch.manual_seed(0)
        td = env.reset()
        for _ in range(11):
            td = policy(td)
            seen.append((td["action"].clone(), td["next", "open_loop", "plan"].clone()))
            _, td = env.step_and_maybe_reset(td)
    finally:
        env.close()
    assert len(calls) == 3  # steps 0, 5 and 10
    first_plan = seen[0][1][0]
    for t in range(5):
        assert torch.equal(seen[t][0][0], first_plan[t])  # replayed blindly
    assert first_plan[3:].abs().sum() > 0  # steps past H=3 come from the policy prior rollout
    assert (first_plan[:, 2:] == 0).all()  # masked action dims stay zero
    assert not torch.equal(seen[5][1], seen[0][1])  # replanned at step 5


# ------------------------------------------------------------------------------ checkpoints and task rows
def test_newt_checkpoint_and_rows_by_name(tmp_path):
    wm = tiny_world_model()
    path = save_newt_checkpoint(wm, tmp_path / "newt.pt")
    loaded = load_world_model(path)
    settings, source = ev.planner_settings(loaded)
    assert source == "Newt's defaults" and settings["num_samples"] == 512 and settings["prior_weight"] == 0.0
    # a 2-row Newt table has no task names: every task gets its CLIP instruction row
    model, unseen = ev.eval_world_model(loaded, ["og-point-arena", TASK])
    assert unseen == ["og-point-arena", TASK]
    assert torch.equal(model.task_embeddings, newt_task_embeddings(["og-point-arena", TASK]))
    # ours: rows are taken by name from the checkpoint
    table = torch.randn(2, 512)
    ours = NewtWorldModel(16, 4, enc_dim=16, mlp_dim=16, latent_dim=16, num_q=2, task_embeddings=table)
    model, unseen = ev.eval_world_model(LoadedWorldModel(ours, tasks=TRAIN_TASKS, format="torchrl_newt"),
                                        ["pygame-landing"])
    assert unseen == [] and torch.equal(model.task_embeddings, table[1:])


def test_learnable_rows_by_name_and_unknown_task(tmp_path):
    wm = tiny_world_model(learnable=True)
    path = save_ours(tmp_path / "ours.pt", wm)
    loaded = load_world_model(path)
    weight = loaded.world_model.task_embedding.weight.detach().clone()
    model, _ = ev.eval_world_model(loaded, ["pygame-landing"])
    assert torch.equal(model.task_embedding.weight, weight[1:])
    with pytest.raises(CheckpointMismatchError, match="learned task embeddings only for its training tasks"):
        ev.eval_world_model(load_world_model(path), ["og-point-arena"])


# ------------------------------------------------------------------------------ bad input: one clear error each
def test_error_unknown_task(ckpt, tmp_path):
    with pytest.raises(UnknownTaskError, match="walker-wlak"):
        run_cli(ckpt, tmp_path, "--tasks", "walker-wlak")


def test_error_padding_cannot_hold_task(ckpt, tmp_path):
    with pytest.raises(CheckpointMismatchError, match=r"cannot hold task\(s\) walker-walk \(obs_dim 24 > 16, action_dim 6 > 4\)"):
        ev.main(["--checkpoint", str(ckpt), "--tasks", f"walker-walk,{TASK}", "--output-dir", str(tmp_path)])


def test_error_open_loop_zero(ckpt, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        run_cli(ckpt, tmp_path, "--open-loop", "0")
    assert info.value.code == 2
    assert "--open-loop takes integers >= 1" in capsys.readouterr().err
    with pytest.raises(ValueError, match="open-loop k must be an integer >= 1"):
        OpenLoopPlanner(TDMPC2Planner(tiny_world_model()), 0)


def test_error_unwritable_video_folder(ckpt, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="--video .*cannot write there"):
        run_cli(ckpt, tmp_path, "--video", str(blocker / "videos"))


def test_error_missing_video_writer(ckpt, tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("imageio", "imageio_ffmpeg", "PIL") else real(name, *a))
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'torchrl_newt\[video\]'"):
        run_cli(ckpt, tmp_path, "--video", str(tmp_path / "videos"))


def test_error_missing_and_foreign_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        ev.main(["--checkpoint", str(tmp_path / "nope.pt"), "--tasks", TASK])
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointFormatError, match="neither a Newt checkpoint"):
        ev.main(["--checkpoint", str(foreign), "--tasks", TASK])
