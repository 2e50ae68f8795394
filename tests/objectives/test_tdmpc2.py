"""Tests of the TD-MPC2 / Newt losses: hand-computed values, gradient routing, targets, errors."""

import math

import pytest
import torch
from tensordict import TensorDict
from torchrl.objectives import SoftUpdate

from torchrl_newt.modules import NewtWorldModel
from torchrl_newt.objectives import (
    NonFiniteLossError,
    RunningScale,
    TDMPC2ActorLoss,
    TDMPC2WorldModelLoss,
    assert_finite_losses,
)


def _batch(B=6, T=3, obs_dim=5, action_dim=4, num_tasks=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(B, T, action_dim, dtype=torch.bool)
    mask[:, :, 2:] = False
    action = (torch.rand(B, T, action_dim, generator=g) * 2 - 1) * mask
    return TensorDict(
        {
            "observation": torch.randn(B, T, obs_dim, generator=g),
            "action": action,
            "action_mask": mask,
            "task": torch.randint(num_tasks, (B, 1), generator=g).expand(B, T).clone(),
            "next": {"observation": torch.randn(B, T, obs_dim, generator=g), "reward": torch.randn(B, T, 1, generator=g)},
        },
        batch_size=[B, T],
    )


def _wm(**kw):
    torch.manual_seed(0)
    return NewtWorldModel(obs_dim=5, action_dim=4, size="S", num_tasks=2, **kw)


def test_world_model_loss_hand_computed():
    wm = _wm()
    loss_fn = TDMPC2WorldModelLoss(wm, discount=torch.tensor([0.9, 0.5]))
    td = _batch(T=2)
    losses = loss_fn(td)
    # freshly initialised reward and Q heads are zero: uniform logits -> CE = log(num_bins)
    assert losses["loss_reward"].item() == pytest.approx(0.1 * math.log(101), rel=1e-5)
    assert losses["loss_value"].item() == pytest.approx(0.1 * math.log(101), rel=1e-5)
    # consistency with rho = 0.5 over T = 2 steps: weights 2/3 and 1/3
    with torch.no_grad():
        task = td["task"]
        z0 = wm.encode(td["observation"][:, 0], task[:, 0])
        z1 = wm.next(z0, td["action"][:, 0], task[:, 0])
        z2 = wm.next(z1, td["action"][:, 1], task[:, 1])
        target = wm.encode(td["next", "observation"], task)
        e1 = (z1 - target[:, 0]).pow(2).mean(-1)
        e2 = (z2 - target[:, 1]).pow(2).mean(-1)
        expected = 20 * (2 / 3 * e1 + 1 / 3 * e2).mean()
    assert losses["loss_consistency"].item() == pytest.approx(expected.item(), rel=1e-5)
    # the TD target of a zero target-Q is the reward itself
    assert losses["td_target"].item() == pytest.approx(td["next", "reward"].mean().item(), rel=1e-5, abs=1e-6)


def test_td_target_uses_per_task_discount_and_target_heads():
    wm = _wm()
    loss_fn = TDMPC2WorldModelLoss(wm, discount=torch.tensor([0.9, 0.5]))
    # make every target head predict the same constant value through its bias
    with torch.no_grad():
        loss_fn.target_qvalue_network_params["biases", "2"].zero_()
        loss_fn.target_qvalue_network_params["biases", "2"][:, 60] = 30.0  # bin 60 of [-10, 10] = symlog 2
    td = _batch(T=1)
    loss_fn(td)
    value = math.expm1(2.0)
    gamma = torch.tensor([0.9, 0.5])[td["task"][:, 0]]
    expected = (td["next", "reward"][:, 0, 0] + gamma * value).mean()
    losses = loss_fn(td)
    assert losses["td_target"].item() == pytest.approx(expected.item(), rel=1e-3)


def test_world_model_loss_gradients_skip_policy():
    wm = _wm()
    loss_fn = TDMPC2WorldModelLoss(wm)
    losses = loss_fn(_batch())
    sum(v for k, v in losses.items() if k.startswith("loss_")).backward()
    for name, p in wm.named_parameters():
        if name.startswith("policy."):
            assert p.grad is None, name
    for prefix in ("encoder.", "dynamics.", "reward_head.", "qnet.", "task_embedding."):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in wm.named_parameters() if n.startswith(prefix)), prefix


def test_world_model_loss_bc_term_trains_policy():
    wm = _wm()
    loss_fn = TDMPC2WorldModelLoss(wm, bc_coef=1.0)
    losses = loss_fn(_batch())
    assert "loss_bc" in losses.keys()
    losses["loss_bc"].backward()
    assert all(p.grad is not None for n, p in wm.named_parameters() if n.startswith("policy."))


def test_actor_loss_gradients_reach_only_policy():
    wm = _wm()
    torch.nn.init.normal_(wm.qnet.weights[-1], std=0.1)  # non-trivial Q so the max-Q term matters
    wm_loss, actor_loss = TDMPC2WorldModelLoss(wm), TDMPC2ActorLoss(wm)
    td = _batch()
    wm_loss(td)  # writes detached latents into td
    assert "latent" in td.keys()
    losses = actor_loss(td)
    (losses["loss_pi"] + losses["loss_bc"]).backward()
    for name, p in wm.named_parameters():
        if name.startswith("policy."):
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name


def test_actor_loss_hand_computed_with_zero_q():
    wm = _wm()
    actor_loss = TDMPC2ActorLoss(wm, entropy_coef=0.5, bc_coef=0.0)
    td = _batch(T=1)
    torch.manual_seed(123)
    losses = actor_loss(td)
    torch.manual_seed(123)
    with torch.no_grad():
        task = torch.cat([td["task"], td["task"]], 1)
        obs = torch.cat([td["observation"], td["next", "observation"]], 1)
        mask = torch.cat([td["action_mask"], td["action_mask"]], 1)
        pi = wm.pi(wm.encode(obs, task), task, mask)
        expected = (-0.5 * pi.scaled_entropy.squeeze(-1) * torch.tensor([2 / 3, 1 / 3])).sum(-1).mean()
    assert losses["loss_pi"].item() == pytest.approx(expected.item(), rel=1e-4)
    assert "loss_bc" not in losses.keys()


def test_actor_bc_prior_is_masked():
    wm = _wm()
    actor_loss = TDMPC2ActorLoss(wm, bc_coef=1.0)
    td = _batch()
    base = actor_loss(td)["loss_bc"]
    td2 = td.clone()
    td2["action"][..., 2:] = 0.9  # changes only masked-out dims
    assert actor_loss(td2)["loss_bc"].item() == pytest.approx(base.item(), rel=1e-6)


def test_running_scale_percentile_range():
    scale = RunningScale(tau=1.0)
    scale.update(torch.arange(101.0))
    assert scale.value.item() == pytest.approx(90.0)
    scale.update(torch.zeros(10))  # range below 1 is clamped
    assert scale.value.item() == pytest.approx(1.0)
    assert torch.allclose(scale(torch.tensor([2.0])), torch.tensor([2.0]))


def test_soft_update_moves_targets_by_tau():
    wm = _wm()
    loss_fn = TDMPC2WorldModelLoss(wm)
    updater = SoftUpdate(loss_fn, tau=0.01)
    with torch.no_grad():
        wm.qnet.biases[0].add_(1.0)
    before = loss_fn.target_qvalue_network_params["biases", "0"].clone()
    updater.step()
    after = loss_fn.target_qvalue_network_params["biases", "0"]
    assert torch.allclose(after - before, torch.full_like(before, 0.01), atol=1e-6)


def test_bad_batches_and_nan_losses():
    wm = _wm()
    loss_fn = TDMPC2WorldModelLoss(wm)
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        loss_fn(_batch()[:, 0])
    td = _batch().exclude("task")
    with pytest.raises(KeyError, match="task"):
        loss_fn(td)
    td = _batch()
    td["next", "reward"][0, 0] = float("nan")
    losses = loss_fn(td)
    with pytest.raises(NonFiniteLossError, match=r"loss_(reward|value).*step 7"):
        assert_finite_losses(losses, step=7)
