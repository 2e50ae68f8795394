"""DINOv2 frame features as a TorchRL transform, on tiny backbones built from configs."""

from __future__ import annotations

import sys

import pytest
import torch
from tensordict import TensorDict
from torchrl.data import Bounded, Composite, Unbounded
from torchrl.envs import EnvBase, TransformedEnv
from torchrl.envs.utils import check_env_specs

pytest.importorskip("transformers")

from torchrl_newt.envs.registry import MissingDependencyError
from torchrl_newt.modules.vision import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    DINOv2Features,
    VisionModelUnavailable,
    build_tiny_dinov2,
    load_dinov2,
    normalize_frames,
)

pytestmark = pytest.mark.vision

HIDDEN = 32


@pytest.fixture(scope="module")
def backbone():
    return build_tiny_dinov2(HIDDEN)


class FramesEnv(EnvBase):
    """A batched stand-in for ``make_env(..., from_pixels=True)``: N lanes, observation [N, 128]
    and uint8 frames [N, 224, 224, 3] that depend on the state."""

    def __init__(self, num_lanes: int = 3, obs_dim: int = 128):
        super().__init__(batch_size=torch.Size([num_lanes]))
        n = num_lanes
        self.observation_spec = Composite(
            observation=Unbounded(shape=(n, obs_dim)),
            pixels=Bounded(low=0, high=255, shape=(n, 224, 224, 3), dtype=torch.uint8),
            shape=(n,),
        )
        self.action_spec = Bounded(low=-1.0, high=1.0, shape=(n, 16))
        self.reward_spec = Unbounded(shape=(n, 1))
        self.obs_dim = obs_dim
        self.state = torch.zeros(n, obs_dim)

    def _frames(self) -> torch.Tensor:
        level = (self.state[:, :1].abs() * 40).clamp(0, 255).to(torch.uint8)
        frames = torch.arange(224 * 224 * 3, dtype=torch.int64).reshape(224, 224, 3) % 251
        return ((frames.unsqueeze(0) + level[:, :, None, None]) % 256).to(torch.uint8)

    def _obs(self) -> TensorDict:
        return TensorDict(observation=self.state.clone(), pixels=self._frames(), batch_size=self.batch_size)

    def _reset(self, tensordict):
        self.state = torch.randn(*self.batch_size, self.obs_dim, generator=self.rng)
        return self._obs()

    def _step(self, tensordict):
        action = tensordict["action"]
        self.state = self.state + action.sum(-1, keepdim=True)
        out = self._obs()
        out["reward"] = self.state[:, :1].clone()
        out["done"] = torch.zeros(*self.batch_size, 1, dtype=torch.bool)
        out["terminated"] = out["done"].clone()
        return out

    def _set_seed(self, seed):
        self.rng = torch.Generator().manual_seed(seed or 0)


def _env(backbone, **kwargs) -> TransformedEnv:
    base = FramesEnv()
    base.set_seed(0)
    return TransformedEnv(base, DINOv2Features(backbone, **kwargs))


def _reference(backbone, frames: torch.Tensor) -> torch.Tensor:
    x = frames.float() / 255.0
    mean = torch.tensor([0.485, 0.456, 0.406])
    std = torch.tensor([0.229, 0.224, 0.225])
    x = ((x - mean) / std).permute(0, 3, 1, 2)
    with torch.no_grad():
        return backbone(pixel_values=x).last_hidden_state[:, 0]


# ---------------------------------------------------------------------------------------------
def test_normalisation_constants():
    assert IMAGENET_MEAN == (0.485, 0.456, 0.406)
    assert IMAGENET_STD == (0.229, 0.224, 0.225)
    from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

    assert list(IMAGENET_MEAN) == list(IMAGENET_DEFAULT_MEAN) and list(IMAGENET_STD) == list(IMAGENET_DEFAULT_STD)


def test_normalize_frames_hand_computed():
    frames = torch.tensor([[[[0, 128, 255]]]], dtype=torch.uint8)  # [1, 1, 1, 3]
    out = normalize_frames(frames)
    assert out.shape == (1, 3, 1, 1)
    expected = torch.tensor([(0 / 255 - 0.485) / 0.229, (128 / 255 - 0.456) / 0.224, (255 / 255 - 0.406) / 0.225])
    torch.testing.assert_close(out.flatten(), expected)
    torch.testing.assert_close(normalize_frames(frames.float() / 255), out)
    with pytest.raises(ValueError, match="channels-last"):
        normalize_frames(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


def test_features_are_the_cls_token(backbone):
    frames = torch.randint(0, 256, (2, 3, 224, 224, 3), dtype=torch.uint8)  # extra leading dims
    t = DINOv2Features(backbone)
    feats = t.features(frames)
    assert feats.shape == (2, 3, HIDDEN) and feats.dtype == torch.float32
    torch.testing.assert_close(feats.reshape(6, HIDDEN), _reference(backbone, frames.reshape(6, 224, 224, 3)))
    # chunking does not change the result
    torch.testing.assert_close(DINOv2Features(backbone, max_batch_size=4).features(frames), feats)


def test_one_batched_forward_over_all_lanes(backbone):
    calls = []
    handle = backbone.register_forward_hook(lambda m, args, kw_or_out, *rest: calls.append(1), with_kwargs=False)
    try:
        env = _env(backbone)
        env.rollout(2)
    finally:
        handle.remove()
    # reset + 2 steps, each one forward on the 3 lanes at once
    assert len(calls) == 3


def test_transform_in_env_specs_and_values(backbone):
    env = _env(backbone)
    check_env_specs(env)
    spec = env.observation_spec
    assert "pixels" not in spec.keys()
    assert spec["observation"].shape == (3, 128 + HIDDEN) and spec["observation"].dtype == torch.float32

    def policy(td):
        return td.set("action", torch.full((3, 16), 0.25))

    base = FramesEnv()
    base.set_seed(0)
    raw = base.rollout(4, policy, break_when_any_done=False)
    env.set_seed(0)
    td = env.rollout(4, policy, break_when_any_done=False)
    assert "pixels" not in td.keys() and "pixels" not in td["next"].keys()
    assert td["observation"].shape == (3, 4, 128 + HIDDEN)
    torch.testing.assert_close(td["observation"][..., :128], raw["observation"])
    expected = _reference(backbone, raw["next", "pixels"].reshape(-1, 224, 224, 3)).reshape(3, 4, HIDDEN)
    torch.testing.assert_close(td["next", "observation"][..., 128:], expected)


def test_separate_key_and_keep_frames(backbone):
    env = _env(backbone, out_key="pixel_features", append=False, del_frames=False)
    check_env_specs(env)
    td = env.rollout(2)
    assert td["pixel_features"].shape == (3, 2, HIDDEN)
    assert td["observation"].shape == (3, 2, 128)
    assert td["pixels"].dtype == torch.uint8
    env = _env(backbone, out_key=("features", "rgb"), append=False)
    check_env_specs(env)
    assert env.rollout(2)["features", "rgb"].shape == (3, 2, HIDDEN)


def test_append_needs_the_target(backbone):
    t = DINOv2Features(backbone, out_key="state")
    td = TensorDict(pixels=torch.zeros(1, 224, 224, 3, dtype=torch.uint8), batch_size=[1])
    with pytest.raises(KeyError, match="append=False"):
        t(td)


def test_offline_forward_on_stored_frames(backbone):
    """The transform also maps tensordicts of frames (e.g. a replay buffer of frames) offline."""
    frames = torch.randint(0, 256, (5, 224, 224, 3), dtype=torch.uint8)
    td = TensorDict(observation=torch.zeros(5, 10), pixels=frames, batch_size=[5])
    out = DINOv2Features(backbone)(td)
    assert set(out.keys()) == {"observation"} and out["observation"].shape == (5, 10 + HIDDEN)
    torch.testing.assert_close(out["observation"][:, 10:], _reference(backbone, frames))


def test_frozen_and_state_dict(backbone):
    t = DINOv2Features(backbone)
    t.train()
    assert not t.backbone.training and not any(p.requires_grad for p in t.parameters())
    frames = torch.randint(0, 256, (1, 224, 224, 3), dtype=torch.uint8)
    assert not t.features(frames).requires_grad
    env = TransformedEnv(FramesEnv(), t)
    sd = env.state_dict()
    assert not any("backbone" in k for k in sd), "the frozen backbone is not checkpointed by default"
    env.load_state_dict(sd)  # strict load still works
    kept = DINOv2Features(backbone, persistent_backbone=True).state_dict()
    assert any(k.startswith("backbone.") for k in kept)


def test_moves_with_the_transform(backbone):
    t = DINOv2Features(build_tiny_dinov2(HIDDEN)).to(torch.float64)
    assert next(t.backbone.parameters()).dtype == torch.float64
    frames = torch.randint(0, 256, (2, 224, 224, 3), dtype=torch.uint8)
    assert t.features(frames).dtype == torch.float32
    if torch.cuda.is_available():
        t = DINOv2Features(build_tiny_dinov2(HIDDEN)).to("cuda")
        out = t.features(frames)
        assert out.device.type == "cpu"
        torch.testing.assert_close(
            out, DINOv2Features(build_tiny_dinov2(HIDDEN)).features(frames), atol=1e-4, rtol=1e-4
        )


def test_load_dinov2_offline_rules(tmp_path, monkeypatch):
    monkeypatch.delenv("TORCHRL_NEWT_DINOV2_PATH", raising=False)
    with pytest.raises(VisionModelUnavailable, match="allow_download=True"):
        load_dinov2("facebook/dinov2-base", hf_cache_dir=tmp_path / "empty-hf")
    with pytest.raises(VisionModelUnavailable):
        DINOv2Features("facebook/dinov2-base", hf_cache_dir=tmp_path / "empty-hf")
    saved = tmp_path / "tiny-dinov2"
    build_tiny_dinov2(HIDDEN).save_pretrained(saved)
    t = DINOv2Features(saved)
    assert t.feature_dim == HIDDEN and not t.backbone.training
    monkeypatch.setenv("TORCHRL_NEWT_DINOV2_PATH", str(saved))
    assert load_dinov2().config.hidden_size == HIDDEN


def test_missing_transformers_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingDependencyError, match=r"pip install -e \.\[vision\]"):
        load_dinov2(tmp_path)


def test_on_make_env_from_pixels(backbone):
    """The real batched env contract (skips only where dm_control, the simulator, is not installed)."""
    from torchrl_newt.envs import make_env

    try:
        env = make_env(["cartpole-swingup", "walker-walk"], from_pixels=True, seed=0)
    except MissingDependencyError as err:
        pytest.skip(str(err))
    try:
        assert "pixels" in env.observation_spec.keys()
        env = env.append_transform(DINOv2Features(backbone))
        check_env_specs(env)
        td = env.rollout(2)
        assert td["observation"].shape == (2, 2, 128 + HIDDEN)
        assert "pixels" not in td.keys(True, True) and "pixels" not in td["next"].keys()
    finally:
        env.close()


def test_old_and_new_import_paths_are_one_class():
    """DINOv2Features lives with the env transforms; the old module paths re-export it."""
    import torchrl_newt.modules as modules
    import torchrl_newt.modules.vision as modules_vision
    from torchrl_newt.envs.vision import DINOv2Features as moved

    assert moved is DINOv2Features is modules.DINOv2Features is modules_vision.DINOv2Features
    assert moved.__module__ == "torchrl_newt.envs.vision"
    with pytest.raises(AttributeError):
        modules_vision.NotAThing


def test_env_without_frames_is_a_clear_error(backbone):
    class NoFrames(FramesEnv):
        def __init__(self):
            super().__init__()
            del self.observation_spec["pixels"]

        def _obs(self):
            return TensorDict(observation=self.state.clone(), batch_size=self.batch_size)

    with pytest.raises(KeyError, match="from_pixels=True"):
        TransformedEnv(NoFrames(), DINOv2Features(backbone)).observation_spec
