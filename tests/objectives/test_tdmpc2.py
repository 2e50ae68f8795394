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


@pytest.mark.parametrize("time_weights, w", [("newt", (4 / 7, 2 / 7)), ("horizon", (2 / 3, 1 / 3))])
def test_world_model_loss_hand_computed(time_weights, w):
    wm = _wm()
    loss_fn = TDMPC2WorldModelLoss(wm, discount=torch.tensor([0.9, 0.5]), time_weights=time_weights)
    td = _batch(T=2)
    losses = loss_fn(td)
    # Newt normalises rho^t over T + 1 = 3 terms (1, 1/2, 1/4 -> 4/7, 2/7, 1/7) and uses the first
    # T = 2; the "horizon" variant normalises over the 2 terms used (2/3, 1/3).
    # freshly initialised reward and Q heads are zero: uniform logits -> CE = log(num_bins)
    assert losses["loss_reward"].item() == pytest.approx(0.1 * math.log(101) * sum(w), rel=1e-5)
    assert losses["loss_value"].item() == pytest.approx(0.1 * math.log(101) * sum(w), rel=1e-5)
    with torch.no_grad():
        task = td["task"]
        z0 = wm.encode(td["observation"][:, 0], task[:, 0])
        z1 = wm.next(z0, td["action"][:, 0], task[:, 0])
        z2 = wm.next(z1, td["action"][:, 1], task[:, 1])
        target = wm.encode(td["next", "observation"], task)
        e1 = (z1 - target[:, 0]).pow(2).mean(-1)
        e2 = (z2 - target[:, 1]).pow(2).mean(-1)
        expected = 20 * (w[0] * e1 + w[1] * e2).mean()
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


def _fixed_policy(wm, mean_raw: float, log_std_raw: float) -> None:
    """Make the policy head output constants: zero last-layer weights, biases set by hand."""
    with torch.no_grad():
        wm.policy.weights[-1].zero_()
        A = wm.action_dim
        wm.policy.biases[-1][:A] = mean_raw
        wm.policy.biases[-1][A:] = log_std_raw


def test_world_model_loss_prior_term_trains_policy():
    wm = _wm()
    loss_fn = TDMPC2WorldModelLoss(wm, prior_coef=1.0)
    losses = loss_fn(_batch())
    assert "loss_prior" in losses.keys()
    losses["loss_prior"].backward()
    assert all(p.grad is not None for n, p in wm.named_parameters() if n.startswith("policy."))
    # the term flows through the rolled-out latents into the encoder as well (as in Newt)
    loss_fn2 = TDMPC2WorldModelLoss(_wm(), prior_coef=1.0)
    loss_fn2(_batch())["loss_prior"].backward()
    assert any(p.grad is not None for n, p in loss_fn2.world_model.named_parameters() if n.startswith("encoder."))


def test_world_model_prior_term_hand_computed():
    """prior = mean_{b,t} rho_t * (masked BC of the sampled action - entropy_coef * scaled_entropy)."""
    wm = _wm()
    # policy: tanh mean 0.5 raw on every dim, log-std at its minimum -10 (noise ~ 4.5e-5)
    _fixed_policy(wm, 0.5, -1e3)
    td = _batch(B=4000, T=3)
    td["action"].zero_()
    loss_fn = TDMPC2WorldModelLoss(wm, prior_coef=2.0, entropy_coef=0.0)
    losses = loss_fn(td)
    # masked BC per step = tanh(0.5)^2 on the 2 valid dims; weights 8/15, 4/15, 2/15 (over T + 1 = 4)
    expected = 2.0 * math.tanh(0.5) ** 2 * (8 / 15 + 4 / 15 + 2 / 15) / 3
    assert losses["loss_prior"].item() == pytest.approx(expected, rel=1e-3)
    # the entropy part: scaled entropy = -n_valid * pre-squash log-prob, whose expectation is
    # 2 valid dims * (10 - log sqrt(2 pi) - E[eps^2] / 2) + 2 masked dims * (-log sqrt(2 pi))
    c = 0.5 * math.log(2 * math.pi)
    scaled_entropy = -2 * (2 * (10 - c - 0.5) - 2 * c)
    loss_e = TDMPC2WorldModelLoss(wm, prior_coef=1.0, entropy_coef=1e-2)(td)["loss_prior"].item()
    bc = expected / 2.0
    assert loss_e == pytest.approx(bc - 1e-2 * scaled_entropy * (14 / 15) / 3, rel=2e-3)


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


@pytest.mark.parametrize("bc_target", ["sample", "mean"])
def test_actor_bc_target_and_weights(bc_target):
    """Newt's BC prior compares the *sampled* action; weights rho[:-1] of the T + 1 normalisation."""
    wm = _wm()
    _fixed_policy(wm, 0.5, -1e3 if bc_target == "mean" else 1e3)  # std e^-10 or e^2
    td = _batch(T=2)
    td["action"].zero_()
    losses = TDMPC2ActorLoss(wm, bc_coef=1.0, bc_target=bc_target)(td)
    if bc_target == "mean":
        # tanh(0.5)^2 on each valid dim, weights 4/7 + 2/7 (rho over T + 1 = 3 terms)
        assert losses["loss_bc"].item() == pytest.approx(math.tanh(0.5) ** 2 * 6 / 7, rel=1e-5)
    else:
        # wide noise: samples spread over (-1, 1), far from tanh(0.5)^2 ~ 0.21 (E[tanh(u)^2] ~ 0.8)
        assert losses["loss_bc"].item() > 0.5 * 6 / 7


def _constant_q(wm, bin_index: int = 60, logit: float = 30.0) -> float:
    """Make every Q head predict one bin (bin 60 of [-10, 10] is symlog 2): returns the value."""
    with torch.no_grad():
        wm.qnet.weights[-1].zero_()
        wm.qnet.biases[-1].zero_()
        wm.qnet.biases[-1][:, bin_index] = logit
    return math.expm1(2.0)


@pytest.mark.parametrize("order", ["after", "before"])
def test_running_scale_divides_before_update(order):
    wm = _wm()
    q = _constant_q(wm)
    actor_loss = TDMPC2ActorLoss(wm, entropy_coef=0.0, bc_coef=0.0, scale_tau=1.0, scale_update=order)
    actor_loss.running_scale.value.fill_(4.0)
    losses = actor_loss(_batch(T=1))
    # Q is the same everywhere: the 5-95 range is 0, clamped to 1, and tau = 1 sets the scale to 1
    assert actor_loss.running_scale.value.item() == pytest.approx(1.0)
    divisor = 4.0 if order == "after" else 1.0  # Newt: this batch is divided by the old scale
    assert losses["q_scale"].item() == pytest.approx(divisor)
    assert losses["loss_pi"].item() == pytest.approx(-q / divisor, rel=1e-4)
    # in eval mode the scale is left alone
    actor_loss.running_scale.value.fill_(4.0)
    actor_loss.eval()
    actor_loss(_batch(T=1))
    assert actor_loss.running_scale.value.item() == pytest.approx(4.0)


def test_actor_bc_prior_is_masked():
    wm = _wm()
    actor_loss = TDMPC2ActorLoss(wm, bc_coef=1.0)
    td = _batch()
    torch.manual_seed(0)
    base = actor_loss(td)["loss_bc"]
    td2 = td.clone()
    td2["action"][..., 2:] = 0.9  # changes only masked-out dims
    torch.manual_seed(0)
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
