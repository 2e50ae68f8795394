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


def _actor_input(td, latent):
    """The replay batch with batch size [B] and the world-model loss's [B, T + 1, L] latents."""
    out = td.exclude("next")
    out.batch_size = td.shape[:1]
    out.set("latent", latent)
    return out


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
    wm_out = wm_loss(td)
    assert not wm_out["latent"].requires_grad
    losses = actor_loss(_actor_input(td, wm_out["latent"]))
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


# ------------------------------------------------------------------ outputs, no writes into the batch
def test_world_model_loss_outputs_and_leaves_batch_alone():
    wm = _wm()
    loss_fn = TDMPC2WorldModelLoss(wm, prior_coef=1.0)
    td = _batch(B=6, T=3)
    before = td.clone()
    torch.manual_seed(0)
    out = loss_fn(td)
    assert set(out.keys()) == {
        "loss_consistency", "loss_reward", "loss_value", "loss_prior", "prior_bc", "td_target", "latent", "td_error"
    }
    assert set(td.keys(True, True)) == set(before.keys(True, True))
    assert (td == before).all()
    # latent: z_0..z_T of the rollout, detached
    with torch.no_grad():
        task = td["task"]
        z = [wm.encode(td["observation"][:, 0], task[:, 0])]
        for t in range(3):
            z.append(wm.next(z[-1], td["action"][:, t], task[:, t]))
    assert out["latent"].shape == (6, 4, z[0].shape[-1]) and not out["latent"].requires_grad
    assert torch.allclose(out["latent"], torch.stack(z, 1), atol=1e-6)
    # td_error: one priority per sample, the rho-weighted value CE summed over time
    assert out["td_error"].shape == (6,) and not out["td_error"].requires_grad
    assert out["loss_value"].item() == pytest.approx(0.1 * out["td_error"].mean().item(), rel=1e-6)
    # zero Q heads: uniform logits, CE = log(101) at every step, weights 8/15 + 4/15 + 2/15
    assert torch.allclose(out["td_error"], torch.full((6,), math.log(101) * 14 / 15), rtol=1e-5)
    # the same call twice gives the same losses: nothing depends on what an earlier call left behind
    torch.manual_seed(0)
    again = loss_fn(td)
    for key in ("loss_consistency", "loss_reward", "loss_value", "loss_prior", "td_error"):
        assert torch.equal(again[key], out[key]), key


def test_actor_loss_reads_latents_instead_of_encoding():
    wm = _wm()
    torch.nn.init.normal_(wm.qnet.weights[-1], std=0.1)
    actor_loss = TDMPC2ActorLoss(wm, bc_coef=1.0).eval()
    td = _batch(T=2)
    latent = torch.randn(6, 3, wm.latent_dim)  # not the encoding of td's observations
    torch.manual_seed(1)
    from_latents = actor_loss(_actor_input(td, latent))
    with torch.no_grad():
        task = torch.cat([td["task"], td["task"][:, -1:]], 1)
        mask = torch.cat([td["action_mask"], td["action_mask"][:, -1:]], 1).float()
        torch.manual_seed(1)
        pi = wm.pi(latent, task, mask)
        q = wm.q_value(latent, pi.action, task, reduce="avg")
        rho = torch.tensor([4 / 7, 2 / 7, 1 / 7])
        expected = ((-1e-4 * pi.scaled_entropy - q).squeeze(-1) * rho).sum(-1).mean()
    assert from_latents["loss_pi"].item() == pytest.approx(expected.item(), rel=1e-5)
    # a [] batch works too
    flat = _actor_input(td, latent)
    flat.batch_size = []
    torch.manual_seed(1)
    assert actor_loss(flat)["loss_pi"].item() == pytest.approx(expected.item(), rel=1e-5)
    # latents that do not have T + 1 steps for a [B, T] batch are refused
    wrong = td.exclude("next")
    wrong.set("latent", latent[:, :-1])
    with pytest.raises(ValueError, match=r"T \+ 1"):
        actor_loss(wrong)


# ------------------------------------------------------------------ prioritized replay weights
def _one_hot_weights(B, T, i):
    w = torch.zeros(B, T)
    w[i] = 0.7  # any positive value: the weighted mean normalises by the sum of weights
    return w


@pytest.mark.parametrize("prior_coef", [0.0, 1.0])
def test_world_model_loss_applies_priority_weights(prior_coef):
    wm = _wm()
    torch.nn.init.normal_(wm.qnet.weights[-1], std=0.1)  # samples get different value losses
    torch.nn.init.normal_(wm.reward_head.weights[-1], std=0.1)
    loss_fn = TDMPC2WorldModelLoss(wm, prior_coef=prior_coef)
    td = _batch(B=5, T=3)
    i = 3
    td_w = td.clone()
    td_w["priority_weight"] = _one_hot_weights(5, 3, i)
    torch.manual_seed(0)
    weighted = loss_fn(td_w)
    torch.manual_seed(0)
    plain = loss_fn(td)
    # per-sample losses by hand from the unweighted run's building blocks
    rho = torch.tensor([8 / 15, 4 / 15, 2 / 15])
    with torch.no_grad():
        task = td["task"]
        z = [wm.encode(td["observation"][:, 0], task[:, 0])]
        for t in range(3):
            z.append(wm.next(z[-1], td["action"][:, t], task[:, t]))
        zs = torch.stack(z, 1)
        target = wm.encode(td["next", "observation"], task)
        consistency = ((zs[:, 1:] - target).pow(2).mean(-1) * rho).sum(-1)
        reward_ce = wm.two_hot_loss(wm.reward(zs[:, :-1], td["action"], task), td["next", "reward"]).squeeze(-1)
        reward = (reward_ce * rho).sum(-1)
    assert weighted["loss_consistency"].item() == pytest.approx(20 * consistency[i].item(), rel=1e-5)
    assert weighted["loss_reward"].item() == pytest.approx(0.1 * reward[i].item(), rel=1e-5)
    assert plain["loss_consistency"].item() == pytest.approx(20 * consistency.mean().item(), rel=1e-5)
    assert not math.isclose(plain["loss_consistency"].item(), weighted["loss_consistency"].item(), rel_tol=1e-3)
    # the value loss of the weighted run is sample i's priority (td_error is never weighted)
    assert weighted["loss_value"].item() == pytest.approx(0.1 * weighted["td_error"][i].item(), rel=1e-5)
    assert torch.allclose(weighted["td_error"], plain["td_error"], rtol=1e-5)
    assert not math.isclose(plain["loss_value"].item(), weighted["loss_value"].item(), rel_tol=1e-3)
    if prior_coef:
        # replay the loss's random draws (target action, target heads, prior action) by hand
        with torch.no_grad():
            mask = td["action_mask"].float()
            torch.manual_seed(0)
            wm.pi(target, task, mask)
            torch.randperm(wm.num_q)
            pi = wm.pi(zs[:, :-1], task, mask)
            bc = ((pi.action - td["action"]).pow(2) * mask).sum(-1) / mask.sum(-1)
            prior = ((bc - 1e-4 * pi.scaled_entropy.squeeze(-1)) * rho).mean(-1)  # [B]
        assert weighted["loss_prior"].item() == pytest.approx(prior[i].item(), rel=1e-4)
        assert plain["loss_prior"].item() == pytest.approx(prior.mean().item(), rel=1e-4)
    # set_keys renames the weight key; use_prioritized_weights=False ignores it
    loss_fn.set_keys(priority_weight="_weight")
    td_k = td.clone()
    td_k["_weight"] = td_w["priority_weight"]
    assert loss_fn(td_k)["loss_consistency"].item() == pytest.approx(weighted["loss_consistency"].item(), rel=1e-6)
    ignoring = TDMPC2WorldModelLoss(wm, use_prioritized_weights=False)
    assert ignoring(td_w)["loss_consistency"].item() == pytest.approx(plain["loss_consistency"].item(), rel=1e-6)


def test_actor_loss_applies_priority_weights():
    wm = _wm()
    torch.nn.init.normal_(wm.qnet.weights[-1], std=0.1)
    actor_loss = TDMPC2ActorLoss(wm, bc_coef=1.0).eval()
    td = _batch(B=5, T=2)
    i = 1
    td_w = td.clone()
    td_w["priority_weight"] = _one_hot_weights(5, 2, i)
    torch.manual_seed(0)
    weighted = actor_loss(td_w)
    torch.manual_seed(0)
    with torch.no_grad():
        task = torch.cat([td["task"], td["task"][:, -1:]], 1)
        obs = torch.cat([td["observation"], td["next", "observation"][:, -1:]], 1)
        mask = torch.cat([td["action_mask"], td["action_mask"][:, -1:]], 1).float()
        zs = wm.encode(obs, task)
        pi = wm.pi(zs, task, mask)
        q = wm.q_value(zs, pi.action, task, reduce="avg")
        rho = torch.tensor([4 / 7, 2 / 7, 1 / 7])
        per_sample = ((-1e-4 * pi.scaled_entropy - q).squeeze(-1) * rho).sum(-1)
        bc = (((pi.action[:, :2] - td["action"]).pow(2) * mask[:, :2]).sum(-1) / 2 * rho[:2]).sum(-1)
    assert weighted["loss_pi"].item() == pytest.approx(per_sample[i].item(), rel=1e-5)
    assert weighted["loss_bc"].item() == pytest.approx(bc[i].item(), rel=1e-5)
    assert not math.isclose(per_sample.mean().item(), per_sample[i].item(), rel_tol=1e-3)
    # [B] weights next to given latents work the same way
    flat_w = _actor_input(td, zs)
    flat_w["priority_weight"] = _one_hot_weights(5, 2, i)[:, 0]
    torch.manual_seed(0)
    assert actor_loss(flat_w)["loss_pi"].item() == pytest.approx(per_sample[i].item(), rel=1e-5)


# ------------------------------------------------------------------ terminations
def test_td_target_stops_at_termination():
    wm = _wm()
    loss_fn = TDMPC2WorldModelLoss(wm, discount=torch.tensor([0.9, 0.5]))
    with torch.no_grad():  # every target head predicts expm1(2) through its bias
        loss_fn.target_qvalue_network_params["biases", "2"].zero_()
        loss_fn.target_qvalue_network_params["biases", "2"][:, 60] = 30.0
    value = math.expm1(2.0)
    td = _batch(B=6, T=1)
    terminated = torch.tensor([True, False, True, False, False, True]).reshape(6, 1, 1)
    td["next", "terminated"] = terminated
    gamma = torch.tensor([0.9, 0.5])[td["task"][:, 0]]
    r = td["next", "reward"][:, 0, 0]
    y = torch.where(terminated.reshape(6), r, r + gamma * value)  # y = r + gamma (1 - term) Q'
    assert loss_fn(td)["td_target"].item() == pytest.approx(y.mean().item(), rel=1e-3)
    # per sample: the value CE of an online Q ensemble that predicts expm1(2) sharply is ~0 where the
    # target bootstraps and large where it stops at the reward
    with torch.no_grad():
        wm.qnet.weights[-1].zero_()
        wm.qnet.biases[-1].zero_()
        wm.qnet.biases[-1][:, 60] = 30.0
    td["next", "reward"].zero_()  # y = 0 (terminated) or gamma * expm1(2) (bootstrapped)
    prio = loss_fn(td)["td_error"]
    assert (prio[terminated.reshape(6)] > 1.0).all()
    # bootstrapped targets gamma * expm1(2) fall between bins (CE of the sharp bin-60 guess > 0)
    # but far below the terminated samples' CE
    assert prio[~terminated.reshape(6)].max() < prio[terminated.reshape(6)].min()
    td_none = td.exclude(("next", "terminated"))
    assert loss_fn(td_none)["td_target"].item() == pytest.approx((r + gamma * value).mean().item(), rel=1e-3)
