"""Unit tests of the world model's building blocks and components."""

import math

import pytest
import torch
from torchrl.objectives import symexp, symlog

from torchrl_newt.modules import MODEL_SIZES, NewtWorldModel, SimNorm, TaskMLP, simnorm


def test_simnorm_groups_are_simplices():
    x = torch.randn(5, 384) * 10
    z = simnorm(x, 8).view(5, 48, 8)
    assert torch.allclose(z.sum(-1), torch.ones(5, 48), atol=1e-6)
    assert (z >= 0).all()
    # invariant to a constant shift inside each group, unlike a plain softmax over everything
    shift = torch.randn(5, 48, 1).expand(5, 48, 8).reshape(5, 384)
    assert torch.allclose(simnorm(x + shift, 8), simnorm(x, 8), atol=1e-6)
    with pytest.raises(ValueError, match="does not divide"):
        SimNorm(7)(torch.randn(2, 16))


def test_two_hot_round_trip():
    wm = NewtWorldModel(obs_dim=4, action_dim=2, size="S")
    values = torch.tensor([-250.0, -3.7, -0.2, 0.0, 0.4, 12.0, 900.0])
    # encode a value two-hot in symlog space, then decode the logits of that distribution
    bins = wm.bins
    x = symlog(values).clamp(bins[0], bins[-1])
    idx = ((x - bins[0]) / (bins[1] - bins[0])).floor().long().clamp(0, len(bins) - 2)
    upper = (x - bins[idx]) / (bins[1] - bins[0])
    probs = torch.zeros(len(values), len(bins))
    probs[torch.arange(len(values)), idx] = 1 - upper
    probs[torch.arange(len(values)), idx + 1] += upper
    decoded = wm.decode(probs.clamp_min(1e-12).log()).squeeze(-1)
    assert torch.allclose(decoded, values, rtol=1e-3, atol=1e-3)
    # the two-hot cross-entropy is minimised by exactly that distribution
    ce_true = wm.two_hot_loss(probs.clamp_min(1e-12).log(), values.unsqueeze(-1))
    ce_other = wm.two_hot_loss(torch.zeros_like(probs), values.unsqueeze(-1))
    assert (ce_true < ce_other).all()
    assert torch.allclose(symexp(symlog(values)), values, rtol=1e-5)


@pytest.mark.parametrize("size,expected", [("S", 2_143_284), ("B", 7_261_566)])
def test_parameter_counts_match_newt(size, expected):
    wm = NewtWorldModel(obs_dim=128, action_dim=16, size=size, task_embeddings=torch.randn(4, 512))
    learnable = sum(p.numel() for p in wm.parameters() if p.requires_grad)
    assert learnable == expected
    assert wm.qnet.num_members == MODEL_SIZES[size][4]


def test_task_projection_equals_concatenation():
    """The factorised first layer computes exactly Linear(cat(x, e_task))."""
    mlp = TaskMLP(6, [16], 3, task_dim=5)
    table = torch.randn(4, 5)
    x, task = torch.randn(7, 6), torch.randint(4, (7,))
    ref = torch.nn.functional.linear(torch.cat([x, table[task]], -1), mlp.weights[0], mlp.biases[0])
    ref = torch.nn.functional.mish(torch.nn.functional.layer_norm(ref, (16,), mlp.norm_weights[0], mlp.norm_biases[0]))
    ref = torch.nn.functional.linear(ref, mlp.weights[1], mlp.biases[1])
    assert torch.allclose(mlp(x, task_table=table, task=task), ref, atol=1e-6)


def test_ensemble_members_equal_separate_mlps():
    ens = TaskMLP(6, [16, 16], 3, task_dim=5, num_members=3)
    torch.nn.init.normal_(ens.weights[-1])
    table, x, task = torch.randn(4, 5), torch.randn(2, 7, 6), torch.randint(4, (2, 7))
    out = ens(x, task_table=table, task=task)
    for m in range(3):
        single = TaskMLP(6, [16, 16], 3, task_dim=5)
        with torch.no_grad():
            for name in ("weights", "biases", "norm_weights", "norm_biases"):
                for p_s, p_e in zip(getattr(single, name), getattr(ens, name)):
                    p_s.copy_(p_e[m])
        assert torch.allclose(out[m], single(x, task_table=table, task=task), atol=1e-5)
    sub = ens(x, task_table=table, task=task, members=torch.tensor([2, 0]))
    assert torch.allclose(sub, out[[2, 0]], atol=1e-6)


def test_policy_masked_dims_are_exactly_zero():
    wm = NewtWorldModel(obs_dim=8, action_dim=16, size="S", num_tasks=2)
    torch.nn.init.normal_(wm.policy.weights[-1])
    mask = torch.zeros(10, 16, dtype=torch.bool)
    mask[:, :3] = True
    out = wm.pi(wm.encode(torch.randn(10, 8), torch.zeros(10, dtype=torch.long)), torch.zeros(10, dtype=torch.long), mask)
    assert (out.action[:, 3:] == 0).all() and (out.mean[:, 3:] == 0).all()
    assert (out.action[:, :3] != 0).all()
    assert out.action.abs().max() <= 1


def test_policy_entropies_match_newt_by_hand():
    """Newt's definitions (reference common/world_model.py:160-194), worked out by hand for a
    policy with constant outputs and no noise: raw mean (0.5, -0.3, 0.7), raw log-std 0 -> log-std
    -10 + 6 * (tanh(0) + 1) = -4 on the two valid dims; the third dim is masked."""
    wm = NewtWorldModel(obs_dim=4, action_dim=3, size="S")
    with torch.no_grad():
        wm.policy.weights[-1].zero_()
        wm.policy.biases[-1].copy_(torch.tensor([0.5, -0.3, 0.7, 0.0, 0.0, 0.4]))
    out = wm.pi(wm.encode(torch.randn(1, 4)), action_mask=torch.tensor([[1.0, 1.0, 0.0]]), deterministic=True)
    c = 0.5 * math.log(2 * math.pi)
    pre = 2 * (4.0 - c) + (0.0 - c)  # all padded dims count; a masked dim gives the constant
    squash = math.log(1 - math.tanh(0.5) ** 2 + 1e-6) + math.log(1 - math.tanh(-0.3) ** 2 + 1e-6) + math.log(1 + 1e-6)
    log_prob = pre - squash
    assert out.log_prob.item() == pytest.approx(log_prob, rel=1e-5)
    assert out.entropy.item() == pytest.approx(-log_prob, rel=1e-5)
    # scaled entropy: -log_prob * (n_valid * pre) / (log_prob + 1e-8) = -2 * pre (to float precision)
    assert out.scaled_entropy.item() == pytest.approx(-log_prob * (2 * pre) / (log_prob + 1e-8), rel=1e-5)
    assert out.scaled_entropy.item() == pytest.approx(-2 * pre, rel=1e-5)
    assert out.action.tolist()[0] == pytest.approx([math.tanh(0.5), math.tanh(-0.3), 0.0], abs=1e-6)


def test_q_heads_have_no_dropout_by_default():
    """Newt's Q heads have no dropout; TD-MPC2's 0.01 is an option."""
    wm = NewtWorldModel(obs_dim=4, action_dim=2, size="S").train()
    z, a = wm.encode(torch.randn(64, 4)), torch.zeros(64, 2)
    torch.nn.init.normal_(wm.qnet.weights[-1])
    assert torch.equal(wm.q(z, a), wm.q(z, a))  # deterministic in training mode
    tdmpc2 = NewtWorldModel(obs_dim=4, action_dim=2, size="S", q_dropout=0.5).train()
    torch.nn.init.normal_(tdmpc2.qnet.weights[-1])
    z = tdmpc2.encode(torch.randn(64, 4))
    assert not torch.equal(tdmpc2.q(z, a), tdmpc2.q(z, a))


def test_zero_initialised_heads_and_learnable_table_norm():
    wm = NewtWorldModel(obs_dim=8, action_dim=2, size="S", num_tasks=3)
    z = wm.encode(torch.randn(4, 8), torch.arange(4) % 3)
    a = torch.zeros(4, 2)
    assert torch.allclose(wm.decode(wm.reward(z, a, torch.arange(4) % 3)), torch.zeros(4, 1), atol=1e-5)
    assert torch.allclose(wm.q_value(z, a, torch.arange(4) % 3), torch.zeros(4, 1), atol=1e-5)
    assert (wm.task_table().norm(dim=-1) <= 1 + 1e-6).all()


def test_bad_inputs_raise_clear_errors():
    wm = NewtWorldModel(obs_dim=8, action_dim=2, size="S", num_tasks=3)
    with pytest.raises(ValueError, match="expected observations with 8 features"):
        wm.encode(torch.randn(4, 9), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="task id tensor is required"):
        wm.encode(torch.randn(4, 8))
    with pytest.raises(ValueError, match="unknown model size"):
        NewtWorldModel(size="M")


def test_sparse_dropout_is_bernoulli_and_masks_gradients():
    from torchrl_newt.modules.layers import dropout

    torch.manual_seed(0)
    p, n, reps = 0.01, 50_000, 40
    drops = torch.stack([(dropout(torch.ones(n), p) == 0) for _ in range(reps)]).float()
    # per-draw count ~ Binomial(n, p): mean n*p, std sqrt(n*p*(1-p)) ~ 22
    counts = drops.sum(1)
    assert abs(counts.mean().item() - n * p) < 4 * (n * p * (1 - p)) ** 0.5 / reps**0.5
    assert counts.std().item() > 5  # the count is random, not fixed at n*p
    # positions are spread uniformly: every decile of the tensor gets its share
    per_decile = drops.view(reps, 10, -1).sum((0, 2)) / (reps * n / 10)
    assert ((per_decile - p).abs() < 0.003).all()
    # kept entries are scaled by 1/(1-p); gradients are zero exactly where the input was dropped
    x = torch.randn(3, 64, 256, requires_grad=True)
    y = dropout(x, p)
    y.sum().backward()
    dropped = y == 0
    assert dropped.any()
    torch.testing.assert_close(x.grad[dropped], torch.zeros(int(dropped.sum())))
    torch.testing.assert_close(x.grad[~dropped], torch.full((int((~dropped).sum()),), 1 / (1 - p)))
    with pytest.raises(ValueError, match="dropout probability"):
        dropout(x, 1.0)


@pytest.mark.parametrize("members", [None, 3])
def test_split_input_parts_broadcast_like_concatenation(members):
    """A tuple of input parts gives Linear(cat(parts)), and a shared part may broadcast."""
    torch.manual_seed(0)
    mlp = TaskMLP(10, [16], 3, task_dim=5, num_members=members)
    torch.nn.init.normal_(mlp.weights[-1])
    table, task = torch.randn(4, 5), torch.tensor([[1], [3]])  # [N, 1] ids shared by the samples
    z, a = torch.randn(2, 1, 7), torch.randn(2, 6, 3)  # one latent per row, 6 samples of actions
    ref = mlp(torch.cat([z.expand(2, 6, 7), a], -1), task_table=table, task=task)
    out = mlp((z, a), task_table=table, task=task)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="input of size 10"):
        mlp((z, a[..., :2]), task_table=table, task=task)


@pytest.mark.parametrize("conditioned", [True, False])
def test_tensordict_views_match_the_methods(conditioned):
    """Each TensorDict view (encoder/dynamics/reward/policy/qvalue_module) equals the method it wraps."""
    from tensordict import TensorDict

    torch.manual_seed(0)
    wm = NewtWorldModel(obs_dim=6, action_dim=3, size="S", num_tasks=2 if conditioned else None)
    task = torch.tensor([0, 1, 1, 0]) if conditioned else None
    obs, action = torch.randn(4, 6), torch.rand(4, 3) * 2 - 1
    mask = torch.tensor([[1, 1, 0]] * 4, dtype=torch.bool)
    td = TensorDict(observation=obs, action=action, action_mask=mask, batch_size=[4])
    if conditioned:
        td["task"] = task

    z = wm.encode(obs, task)
    wm.encoder_module()(td)
    torch.testing.assert_close(td["latent"], z)
    wm.dynamics_module()(td)
    torch.testing.assert_close(td["next", "latent"], wm.next(z, action, task))
    wm.reward_module()(td)
    torch.testing.assert_close(td["reward_pred"], wm.decode(wm.reward(z, action, task)))
    policy = wm.policy_module(out_keys=("pi_action", "loc", "log_std"), deterministic=True)
    policy(td)
    expected = wm.pi(z, task, mask, deterministic=True)
    torch.testing.assert_close(td["pi_action"], expected.action)
    torch.testing.assert_close(td["loc"], expected.mean)
    torch.testing.assert_close(td["log_std"], expected.log_std)
    assert (td["pi_action"][:, 2] == 0).all()
    wm.qvalue_module()(td)
    assert td["state_action_value"].shape == (4, 1)
    # Q is the mean of 2 random heads: with identical heads every draw gives the same value
    torch.manual_seed(1)
    heads = torch.randperm(wm.num_q)[:2]
    torch.manual_seed(1)
    wm.qvalue_module(out_key="q")(td)
    torch.testing.assert_close(td["q"], wm.decode(wm.q(z, action, task, heads=heads)).mean(0))
    # the views share the model's parameters
    assert {id(p) for p in wm.encoder_module().parameters()} == {id(p) for p in wm.parameters()}
