"""The main job with image observations (``--obs rgb``): frames -> frozen DINOv2 -> state + features.

A tiny DINOv2 built from a config stands in for ``facebook/dinov2-base`` (same code path, a
local folder, nothing downloaded).
"""

from __future__ import annotations

import math

import pytest
import torch
from tensordict import TensorDict

pytest.importorskip("transformers")

from torchrl_newt.envs import register_task  # noqa: E402
from torchrl_newt.modules.vision import build_tiny_dinov2  # noqa: E402
from torchrl_newt.train import cli, main  # noqa: E402

pytestmark = [pytest.mark.vision, pytest.mark.dmc]

HIDDEN = 32
TASK = "test-cartpole-rgb-short"
SMALL = ["--quiet", "--plan-samples", "16", "--plan-elites", "4", "--plan-pi-trajs", "2", "--plan-iterations", "1",
         "--batch-size", "4", "--threads", "1", "--no-language", "--seed-episodes", "1", "--random-episodes", "2"]


@pytest.fixture(scope="module")
def vision_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-dinov2")
    build_tiny_dinov2(HIDDEN).save_pretrained(path)
    register_task(TASK, base="cartpole-balance", episode_length=10, overwrite=True)
    return path


def test_rgb_run_sees_state_and_image_features(tmp_path, vision_dir):
    out_dir = tmp_path / "run"
    out = main(["--tasks", TASK, "--obs", "rgb", "--vision-model", str(vision_dir), "--frames", "20",
                "--eval-every", "20", "--output-dir", str(out_dir), *SMALL])
    assert out["state"]["updates"] > 0
    ckpt = torch.load(out_dir / "checkpoint.pt", weights_only=False)
    # the encoder's first layer reads 128 padded state dims + 32 image features
    task_dim = ckpt["agent"]["world_model.task_embedding.weight"].shape[-1]
    assert ckpt["agent"]["world_model.encoder.weights.0"].shape[-1] == 128 + HIDDEN + task_dim
    assert ckpt["args"]["obs"] == "rgb"
    # the checkpoint evaluates with the same image path
    from torchrl_newt.evaluate import main as evaluate

    res = evaluate(["--checkpoint", str(out_dir / "checkpoint.pt"), "--tasks", TASK, "--episodes", "1",
                    "--output-dir", str(tmp_path / "eval"), "--quiet", "--plan-samples", "8", "--plan-elites", "2",
                    "--plan-pi-trajs", "0", "--plan-iterations", "1"])
    assert 0.0 <= res["results"][TASK]["score"] <= 1.0


def test_rgb_without_vision_weights_is_one_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TORCHRL_NEWT_DINOV2_PATH", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = cli(["--tasks", "cartpole-balance", "--obs", "rgb", "--vision-model", str(tmp_path / "no-such-model"),
                "--frames", "10", "--output-dir", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "DINOv2" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_rgb_pretrains_on_newt_demo_files_with_image_features(tmp_path, vision_dir):
    # a Newt demo file (unpadded 5-d cartpole state, 1-d action, 'feat' rows) for the task, by hand
    rows = 11  # one episode of 10 steps
    obs = torch.randn(rows, 5)
    action = torch.full((rows, 1), 0.3)
    reward = torch.ones(rows)
    action[0], reward[0] = math.nan, math.nan
    feat = torch.randn(rows, HIDDEN)
    demo_dir = tmp_path / "demos"
    demo_dir.mkdir()
    torch.save(TensorDict({"obs": obs, "action": action, "reward": reward, "feat": feat,
                           "episode": torch.zeros(rows, dtype=torch.long)}, batch_size=[rows]), demo_dir / f"{TASK}.pt")
    out = main(["--tasks", TASK, "--obs", "rgb", "--vision-model", str(vision_dir), "--frames", "20",
                "--eval-every", "20", "--output-dir", str(tmp_path / "run"), "--demos", str(demo_dir),
                "--pretrain-updates", "3", "--warmup-updates", "2", *SMALL])
    assert out["state"]["pretrain_updates"] == 3 and out["state"]["updates"] > 0
