"""Tests of Newt checkpoint interoperability (torchrl_newt.interop).

Official-format state dicts are built by hand here from the facts of Newt's ``WorldModel``
(``tdmpc2/common/world_model.py`` and ``layers.py`` at commit 75def92): every network is an
``nn.Sequential`` of ``NormedLinear`` blocks (``weight``, ``bias``, ``ln.weight``, ``ln.bias``),
the last one a plain ``Linear`` for reward/policy/Q heads, and inputs are concatenated as
``[obs, e]`` (encoder), ``[z, e]`` (policy) and ``[z, e, a]`` (dynamics, reward, Q).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from torchrl_newt.envs.registry import list_tasks
from torchrl_newt.interop import (
    CheckpointFormatError,
    CheckpointMismatchError,
    inspect_newt_state_dict,
    load_newt_checkpoint,
    load_target_q_state,
    load_world_model,
    save_newt_checkpoint,
    target_q_state,
)
from torchrl_newt.modules import MODEL_SIZES, NewtWorldModel
from torchrl_newt.objectives import TDMPC2ActorLoss, TDMPC2WorldModelLoss

pytestmark = pytest.mark.filterwarnings("ignore:No target network updater")


# ------------------------------------------------------------------ a hand-built official file
def official_model_sd(
    obs: int, act: int, task_dim: int, num_tasks: int, enc: int, mlp: int, lat: int, n_enc: int, num_q: int,
    *, bins: int = 101, device: str = "cpu", seed: int = 0, mask_rows: int | None = None,
) -> dict[str, torch.Tensor]:
    """Newt's ``WorldModel.state_dict()`` for these sizes, with random values (meta: shapes only)."""
    g = torch.Generator().manual_seed(seed)

    def t(*shape, loc=0.0, scale=0.3):
        if device == "meta":
            return torch.empty(*shape, device="meta")
        return torch.randn(*shape, generator=g) * scale + loc

    sd: dict[str, torch.Tensor] = {}

    def mlp_(prefix: str, dims: list[int], last_ln: bool) -> None:
        for i in range(len(dims) - 1):
            sd[f"{prefix}.{i}.weight"] = t(dims[i + 1], dims[i])
            sd[f"{prefix}.{i}.bias"] = t(dims[i + 1], scale=0.1)
            if i < len(dims) - 2 or last_ln:
                sd[f"{prefix}.{i}.ln.weight"] = t(dims[i + 1], loc=1.0, scale=0.1)
                sd[f"{prefix}.{i}.ln.bias"] = t(dims[i + 1], scale=0.1)

    if task_dim:
        sd["_task_emb.weight"] = t(num_tasks, task_dim)
    masks = torch.zeros(mask_rows or num_tasks, act, device=device)
    if device != "meta":
        for i in range(masks.shape[0]):
            masks[i, : 1 + i % act] = 1.0
    sd["_action_masks"] = masks
    mlp_("_encoder.state", [obs + task_dim] + [enc] * max(n_enc - 1, 1) + [lat], True)
    mlp_("_dynamics", [lat + task_dim + act, mlp, mlp, lat], True)
    mlp_("_reward", [lat + task_dim + act, mlp, mlp, bins], False)
    mlp_("_pi", [lat + task_dim, mlp, mlp, 2 * act], False)
    for which in ("online", "target"):
        for q in range(num_q):
            mlp_(f"_Qs.{which}._Qs.{q}", [lat + task_dim + act, mlp, mlp, bins], False)
    sd["log_std_min"] = torch.tensor(-10.0, device=device)
    sd["log_std_dif"] = torch.tensor(12.0, device=device)
    return sd


def official_file(path, sd, scale=2.0, prefix=""):
    torch.save(
        {
            "model": {prefix + k: v for k, v in sd.items()},
            "optim": {"state": {}, "param_groups": []},
            "pi_optim": {"state": {}, "param_groups": []},
            "scale": {"value": torch.tensor([scale]), "_percentiles": torch.tensor([5.0, 95.0])},
        },
        path,
    )
    return path


TINY = dict(obs=10, act=3, task_dim=5, num_tasks=4, enc=12, mlp=20, lat=16, n_enc=2, num_q=2)


# ------------------------------------------------------------------ an independent reference forward
def ref_simnorm(x, dim=8):
    return F.softmax(x.unflatten(-1, (-1, dim)), -1).flatten(-2)


def ref_mlp(sd, prefix, x):
    i = 0
    while f"{prefix}.{i}.weight" in sd:
        x = F.linear(x, sd[f"{prefix}.{i}.weight"], sd[f"{prefix}.{i}.bias"])
        if f"{prefix}.{i}.ln.weight" in sd:
            x = F.layer_norm(x, x.shape[-1:], sd[f"{prefix}.{i}.ln.weight"], sd[f"{prefix}.{i}.ln.bias"])
            x = ref_simnorm(x) if f"{prefix}.{i + 1}.weight" not in sd else F.mish(x)
        i += 1
    return x


def ref_outputs(sd, obs, z, a, task):
    e = sd["_task_emb.weight"][task] if "_task_emb.weight" in sd else obs[..., :0]
    zea = torch.cat([z, e, a], -1)
    n_q = sum(1 for k in sd if k.startswith("_Qs.online._Qs.") and k.endswith(".0.weight"))
    mean, log_std = ref_mlp(sd, "_pi", torch.cat([z, e], -1)).chunk(2, -1)
    lo, dif = sd["log_std_min"], sd["log_std_dif"]
    return {
        "encode": ref_mlp(sd, "_encoder.state", torch.cat([obs, e], -1)),
        "next": ref_mlp(sd, "_dynamics", zea),
        "reward": ref_mlp(sd, "_reward", zea),
        "q": torch.stack([ref_mlp(sd, f"_Qs.online._Qs.{q}", zea) for q in range(n_q)]),
        "pi_mean": torch.tanh(mean),
        "pi_log_std": lo + 0.5 * dif * (torch.tanh(log_std) + 1),
    }


def our_outputs(wm, obs, z, a, task):
    task = task if wm.task_dim else None
    pi = wm.pi(z, task, deterministic=True)
    return {
        "encode": wm.encode(obs, task),
        "next": wm.next(z, a, task),
        "reward": wm.reward(z, a, task),
        "q": wm.q(z, a, task),
        "pi_mean": pi.mean,
        "pi_log_std": pi.log_std,
    }


def inputs(arch_obs, lat, act, num_tasks, n=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, arch_obs, generator=g)
    z = ref_simnorm(torch.randn(n, lat, generator=g))
    a = torch.rand(n, act, generator=g) * 2 - 1
    task = torch.randint(num_tasks, (n,), generator=g)
    return obs, z, a, task


def randomize_(module: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)


# ------------------------------------------------------------------ tests
@pytest.mark.parametrize("prefix", ["", "module."])
def test_load_matches_reference_forward(tmp_path, prefix):
    sd = official_model_sd(**TINY)
    path = official_file(tmp_path / "newt.pt", sd, scale=4.25, prefix=prefix)
    loaded = load_newt_checkpoint(path)
    wm = loaded.world_model
    assert loaded.format == "newt" and loaded.size is None and loaded.num_tasks == 4
    assert loaded.scale == 4.25 and loaded.tasks is None
    assert torch.equal(loaded.action_masks, sd["_action_masks"])
    assert (wm.obs_dim, wm.action_dim, wm.task_dim, wm.latent_dim, wm.num_q) == (10, 3, 5, 16, 2)
    assert sorted(loaded.extra) == ["optim", "pi_optim"]
    args = inputs(10, 16, 3, 4)
    with torch.no_grad():
        ours, ref = our_outputs(wm, *args), ref_outputs(sd, *args)
    for key in ref:
        assert torch.allclose(ours[key], ref[key], atol=1e-5), key
    # the target heads are kept, in our stacked qnet layout
    assert torch.equal(loaded.target_q["biases.2"][1], sd["_Qs.target._Qs.1.2.bias"])
    assert not torch.equal(loaded.target_q["biases.2"], wm.qnet.biases[2].detach())


def test_first_layer_column_permutation():
    L, D, A = TINY["lat"], TINY["task_dim"], TINY["act"]
    sd = official_model_sd(**TINY)
    # label every column of the reference's first layers by its index in [z, e, a]
    labels = torch.arange(L + D + A, dtype=torch.float32)
    for key in ("_dynamics.0.weight", "_Qs.online._Qs.1.0.weight"):
        sd[key] = labels.expand(TINY["mlp"], -1) * 0.01 + torch.randn(TINY["mlp"], 1) * 0.001
    wm = load_newt_checkpoint({"model": sd}).world_model
    expected_order = list(range(L)) + list(range(L + D, L + D + A)) + list(range(L, L + D))  # ours: [z, a, e]
    got = (wm.dynamics.weights[0][0] - sd["_dynamics.0.weight"][0, 0]).div(0.01).round().long().tolist()
    assert got == expected_order
    got_q = (wm.qnet.weights[0][1][0] - sd["_Qs.online._Qs.1.0.weight"][0, 0]).div(0.01).round().long().tolist()
    assert got_q == expected_order
    # pre-activations: reference W [z, e, a] + b == our first layer on (z, a) with task e
    obs, z, a, task = inputs(10, L, A, 4)
    e = sd["_task_emb.weight"][task]
    with torch.no_grad():
        ref = F.linear(torch.cat([z, e, a], -1), sd["_dynamics.0.weight"], sd["_dynamics.0.bias"])
        ours = wm.dynamics._first((z, a), wm.task_table(), task, None)
        assert torch.allclose(ours, ref, atol=1e-5)
        ref_q = F.linear(torch.cat([z, e, a], -1), sd["_Qs.online._Qs.1.0.weight"], sd["_Qs.online._Qs.1.0.bias"])
        ours_q = wm.qnet._first((z, a), wm.task_table(), task, None)[1]
        assert torch.allclose(ours_q, ref_q, atol=1e-5)


def test_size_s_soup_file(tmp_path):
    enc, mlp, lat, n_enc, n_q = MODEL_SIZES["S"]
    sd = official_model_sd(128, 16, 512, 200, enc, mlp, lat, n_enc, n_q)
    path = official_file(tmp_path / "soup-S.pt", sd, prefix="module.")
    loaded = load_newt_checkpoint(path, size="S", num_tasks=200, obs_dim=128)
    assert loaded.size == "S" and loaded.num_tasks == 200
    assert loaded.tasks == list_tasks()  # a 200-row soup table: MMBench order
    wm = loaded.world_model
    assert wm.task_embeddings.shape == (200, 512) and not wm.task_embeddings.requires_grad
    args = inputs(128, lat, 16, 200, n=3)
    with torch.no_grad():
        ours, ref = our_outputs(wm, *args), ref_outputs(sd, *args)
    for key in ("next", "q", "pi_mean"):
        assert torch.allclose(ours[key], ref[key], atol=1e-4), key
    # bad expectations: one clear error each
    with pytest.raises(CheckpointMismatchError, match=r"size-B.*size S"):
        load_newt_checkpoint(path, size="B")
    with pytest.raises(CheckpointMismatchError, match="10 tasks.*200 tasks"):
        load_world_model(path, num_tasks=10)
    with pytest.raises(CheckpointMismatchError, match="obs_dim=64"):
        load_newt_checkpoint(path, obs_dim=64)


@pytest.mark.parametrize("size", ["S", "B", "L", "XL"])
def test_size_inference_on_shapes(size):
    enc, mlp, lat, n_enc, n_q = MODEL_SIZES[size]
    sd = official_model_sd(128, 16, 512, 200, enc, mlp, lat, n_enc, n_q, device="meta")
    arch = inspect_newt_state_dict({"module." + k: v for k, v in sd.items()})
    assert arch.size == size and arch.num_tasks == 200 and arch.task_dim == 512
    assert (arch.obs_dim, arch.action_dim, arch.num_bins) == (128, 16, 101)
    # single-task files: no task table, no task columns, one mask row per env
    single = official_model_sd(128, 16, 0, 1, enc, mlp, lat, n_enc, n_q, device="meta", mask_rows=10)
    arch = inspect_newt_state_dict(single)
    assert arch.size == size and arch.task_dim == 0 and arch.num_tasks == 1


def test_single_task_b_file(tmp_path):
    enc, mlp, lat, n_enc, n_q = MODEL_SIZES["B"]
    sd = official_model_sd(24, 6, 0, 1, enc, mlp, lat, n_enc, n_q, mask_rows=10)
    loaded = load_world_model(official_file(tmp_path / "walker-walk.pt", sd), size="B", num_tasks=1)
    wm = loaded.world_model
    assert loaded.size == "B" and wm.task_dim == 0 and wm.num_tasks is None
    assert loaded.action_masks.shape == (10, 6)
    args = inputs(24, lat, 6, 1, n=2)
    with torch.no_grad():
        ours, ref = our_outputs(wm, *args), ref_outputs(sd, *args)
    for key in ("encode", "reward", "q"):
        assert torch.allclose(ours[key], ref[key], atol=1e-4), key
    # writing it back gives the same keys and shapes
    saved = torch.load(save_newt_checkpoint(wm, tmp_path / "back.pt", action_masks=loaded.action_masks))["model"]
    assert {k: v.shape for k, v in saved.items()} == {k: v.shape for k, v in sd.items()}


@pytest.mark.parametrize("learnable", [False, True])
def test_round_trip(tmp_path, learnable):
    kw = dict(enc_dim=12, mlp_dim=20, latent_dim=16, num_q=3)
    if learnable:
        wm = NewtWorldModel(10, 3, num_tasks=4, task_dim=5, **kw)
    else:
        wm = NewtWorldModel(10, 3, task_embeddings=torch.randn(4, 5), **kw)
    randomize_(wm)
    wm.eval()
    wm_loss, actor_loss = TDMPC2WorldModelLoss(wm), TDMPC2ActorLoss(wm)
    target = {k: v + 0.5 for k, v in target_q_state(wm_loss).items()}
    load_target_q_state(wm_loss, target)
    actor_loss.running_scale.value.fill_(7.0)
    masks = (torch.arange(3) < torch.tensor([[1], [2], [3], [3]])).float()
    path = save_newt_checkpoint(wm, tmp_path / "rt.pt", target_q=wm_loss, scale=actor_loss, action_masks=masks)

    raw = torch.load(path, weights_only=True)
    official = official_model_sd(10, 3, 5, 4, 12, 20, 16, 2, 3)
    assert {k: v.shape for k, v in raw["model"].items()} == {k: v.shape for k, v in official.items()}  # strict load
    assert raw["scale"]["value"].tolist() == [7.0]

    loaded = load_newt_checkpoint(path, num_tasks=4)
    assert torch.equal(loaded.action_masks, masks) and loaded.scale == 7.0
    args = inputs(10, 16, 3, 4)
    with torch.no_grad():
        before, after = our_outputs(wm, *args), our_outputs(loaded.world_model, *args)
    for key in before:
        assert torch.allclose(before[key], after[key], atol=1e-6, rtol=0), key
    for key, value in target.items():
        assert torch.equal(loaded.target_q[key], value), key
    # and back into fresh losses
    new_wm_loss, new_actor_loss = TDMPC2WorldModelLoss(loaded.world_model), TDMPC2ActorLoss(loaded.world_model)
    loaded.apply_to(new_wm_loss, new_actor_loss)
    assert all(torch.equal(target_q_state(new_wm_loss)[k], v) for k, v in target.items())
    assert float(new_actor_loss.running_scale.value) == 7.0


def test_load_world_model_reads_our_checkpoints(tmp_path):
    wm = NewtWorldModel(10, 3, task_embeddings=torch.randn(4, 5), enc_dim=12, mlp_dim=20, latent_dim=16, num_q=2)
    randomize_(wm, seed=3)

    class Agent(nn.Module):  # the example's layout: world_model, wm_loss, actor_loss
        def __init__(self):
            super().__init__()
            self.world_model = wm
            self.wm_loss = TDMPC2WorldModelLoss(wm)
            self.actor_loss = TDMPC2ActorLoss(wm)

    agent = Agent()
    load_target_q_state(agent.wm_loss, {k: v * 2 for k, v in target_q_state(agent.wm_loss).items()})
    agent.actor_loss.running_scale.value.fill_(3.0)
    tasks = ["walker-walk", "cheetah-run", "mw-reach", "hopper-hop"]
    torch.save({"agent": agent.state_dict(), "tasks": tasks, "state": {"frames": 5}, "args": {"size": "S"}},
               tmp_path / "checkpoint.pt")
    loaded = load_world_model(tmp_path / "checkpoint.pt", num_tasks=4)
    assert loaded.format == "torchrl_newt" and loaded.tasks == tasks and loaded.scale == 3.0
    assert loaded.extra["state"] == {"frames": 5}
    assert all(torch.equal(loaded.target_q[k], v) for k, v in target_q_state(agent.wm_loss).items())
    args = inputs(10, 16, 3, 4)
    with torch.no_grad():
        a, b = our_outputs(wm.eval(), *args), our_outputs(loaded.world_model, *args)
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(CheckpointFormatError, match="not a Newt one"):
        load_newt_checkpoint(tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointMismatchError, match="size-S"):
        load_world_model(tmp_path / "checkpoint.pt", size="S")


def test_bad_files(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointFormatError, match="neither a Newt checkpoint"):
        load_world_model(tmp_path / "other.pt")
    with pytest.raises(CheckpointFormatError, match="neither a Newt checkpoint"):
        load_newt_checkpoint(tmp_path / "other.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointFormatError, match="not a torch checkpoint"):
        load_world_model(tmp_path / "text.pt")
    with pytest.raises(FileNotFoundError):
        load_world_model(tmp_path / "missing.pt")
    broken = official_model_sd(**TINY)
    del broken["_Qs.online._Qs.1.1.ln.bias"]
    with pytest.raises(CheckpointFormatError, match="lacks '_Qs.online._Qs.1.1.ln.bias'"):
        load_newt_checkpoint({"model": broken})
    with pytest.raises(ValueError, match="unknown model size"):
        load_newt_checkpoint({"model": official_model_sd(**TINY)}, size="M")
