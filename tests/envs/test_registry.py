"""The MMBench task registry: names, order, facts, score rules, user tasks."""

import json
import math

import pytest
import torch

from torchrl_newt.envs import (
    ScoreRule,
    UnknownTaskError,
    discount_heuristic,
    get_task,
    list_tasks,
    register_task,
)
from torchrl_newt.envs.registry import MMBENCH_DOMAINS


def test_soup_and_held_out_sizes():
    soup = list_tasks()
    held_out = list_tasks("held-out")
    assert len(soup) == 200 and len(set(soup)) == 200
    assert len(held_out) == 34 and not set(soup) & set(held_out)
    assert list_tasks(include_held_out=True)[:234] == soup + held_out


def test_task_ids_follow_order():
    names = list_tasks(include_held_out=True)[:234]
    assert [get_task(n).task_id for n in names] == list(range(234))
    assert all(get_task(n).in_soup for n in names[:200])
    assert not any(get_task(n).in_soup for n in names[200:])


def test_domains_cover_soup():
    soup = set(list_tasks())
    by_domain = [n for d in MMBENCH_DOMAINS for n in list_tasks(d)]
    assert set(by_domain) == soup and len(by_domain) == 200
    assert len(list_tasks("dmcontrol")) == 21


def test_unknown_task_lists_close_matches():
    with pytest.raises(UnknownTaskError, match="walker-walk"):
        get_task("walker-wlak")
    with pytest.raises(KeyError):  # UnknownTaskError is a KeyError
        get_task("definitely-not-a-task-xyz")
    with pytest.raises(ValueError, match="unknown domain"):
        list_tasks("dmcontroll")


def test_register_task_variant():
    spec = register_task(
        "test-walker-walk-slow", base="walker-walk", domain="test-user", instruction="Walk slowly", overwrite=True
    )
    assert spec.text.endswith("Walk slowly.")
    assert (spec.obs_dim, spec.action_dim, spec.episode_length) == (24, 6, 500)
    assert spec.task_id >= 234 and not spec.in_soup
    assert get_task("test-walker-walk-slow") is spec
    with pytest.raises(ValueError, match="already registered"):
        register_task("test-walker-walk-slow", base="walker-walk", domain="test-user")
    with pytest.raises(ValueError, match="MMBench task"):
        register_task("walker-walk", base="walker-run", overwrite=True)


def test_register_task_from_scratch():
    spec = register_task(
        "test-toy-from-scratch", domain="toy", instruction="Do it", embodiment="A toy",
        obs_dim=3, action_dim=2, episode_length=100, overwrite=True,
    )
    assert spec.discount == discount_heuristic(100) == 0.95
    assert spec.score == ScoreRule("return", 0.0, 100.0)
    with pytest.raises(ValueError, match="needs"):
        register_task("test-toy-incomplete", domain="toy", instruction="x", embodiment="y")
    with pytest.raises(ValueError, match="action dimension"):
        register_task("test-toy-no-action", base="walker-walk", domain="test-user", action_dim=0, overwrite=True)


@pytest.mark.parametrize(
    "rule, ret, success, expected",
    [
        (ScoreRule("return", 0.0, 1000.0), 512.0, False, 0.512),
        (ScoreRule("return", 0.0, 1000.0), 1500.0, False, 1.5),  # no clipping
        (ScoreRule("return_clip", 0.0, 250.0), 300.0, False, 1.0),
        (ScoreRule("return_clip", -100.0, 100.0), 0.0, False, 0.5),
        (ScoreRule("return_clip", -100.0, 100.0), -500.0, True, 0.0),
        (ScoreRule("success"), 3.0, True, 1.0),
        (ScoreRule("success"), 1e6, False, 0.0),
    ],
)
def test_score_rule(rule, ret, success, expected):
    assert rule(ret, success) == pytest.approx(expected)
    out = rule.torch(torch.tensor([ret]), torch.tensor([float(success)]))
    assert out.item() == pytest.approx(expected)


def test_score_rule_validation():
    with pytest.raises(ValueError):
        ScoreRule("returns")
    with pytest.raises(ValueError):
        ScoreRule("return_clip", 1.0, 1.0)


@pytest.mark.parametrize("T, expected", [(25, 0.95), (100, 0.95), (500, 0.99), (1000, 0.995), (10_000, 0.995)])
def test_discount_heuristic(T, expected):
    assert discount_heuristic(T) == pytest.approx(expected)


def test_discounts_in_range():
    for name in list_tasks(include_held_out=True):
        assert 0.9 <= get_task(name).discount <= 1.0, name


def _expected_score(score: dict) -> ScoreRule:
    if score["type"] == "return":
        return ScoreRule("return", 0.0, float(score["divisor"]))
    if score["type"] == "return_clip":
        return ScoreRule("return_clip", float(score["low"]), float(score["high"]))
    return ScoreRule("success")


def test_facts_match_mmbench(shared_dir):
    facts = json.loads((shared_dir / "mmbench" / "tasks.json").read_text())
    tasks = facts["tasks"]
    assert list_tasks() == list(facts["soup"])
    held_out = [n for n in tasks if n not in set(facts["soup"])]
    assert [n for n in list_tasks("held-out") if get_task(n).task_id < len(tasks)] == held_out
    for domain, names in facts["domains"].items():
        # other tests may register user tasks: compare the benchmark's own tasks only
        assert [n for n in list_tasks(domain) if get_task(n).task_id < len(tasks)] == names, domain
    for name, t in tasks.items():
        spec = get_task(name)
        assert spec.domain == t["domain"], name
        assert spec.builder_domain == t.get("base_domain", t["domain"]), name
        assert spec.instruction == t["instruction"], name
        assert spec.embodiment == t["embodiment"], name
        assert spec.obs_dim == t.get("obs_dim"), name
        assert spec.action_dim == t["action_dim"], name
        assert spec.episode_length == t["max_episode_steps"], name
        assert spec.in_soup == t["in_soup"], name
        assert spec.success_defined == bool(t.get("success_defined", False)), name
        assert spec.action_repeat == int(t["source"].get("action_repeat", 1)), name
        assert spec.score == _expected_score(t["score"]), name
        assert math.isclose(spec.discount, t["discount_effective"]), name
        if t["discount"] is None:
            assert math.isclose(spec.discount, discount_heuristic(spec.episode_length)), name
        else:
            assert math.isclose(spec.discount, t["discount"]), name
        if t["in_soup"]:
            assert spec.task_id == t["soup_index"], name
        for key in ("domain", "task", "action_repeat"):
            if key in t["source"] and t["source"].get("kind") == "dm_control":
                assert spec.source[key] == t["source"][key], name


def test_missing_simulator_names_the_pip_extra():
    from torchrl_newt.envs import MissingDependencyError, make_env, register_domain, register_task

    register_domain("test-missing-sim", lambda spec, **kw: None, extra="fancysim", requires=("no_such_module_xyz",))
    register_task("test-missing-sim-task", domain="test-missing-sim", instruction="Do it", embodiment="A thing",
                  obs_dim=3, action_dim=1, episode_length=10, base_domain="test-missing-sim", overwrite=True)
    with pytest.raises(MissingDependencyError, match=r"test-missing-sim-task.*no_such_module_xyz.*\[fancysim\]"):
        make_env(["test-missing-sim-task"])


def test_one_score_implementation_for_scalars_tensors_and_lanes():
    """ScoreRule.__call__, ScoreRule.torch and the batched env all go through score_episodes."""
    from torchrl_newt.envs import SCORE_KINDS, score_episodes

    rules = [ScoreRule("return", 0.0, 1000.0), ScoreRule("return_clip", -100.0, 100.0), ScoreRule("success")]
    assert [SCORE_KINDS[r.code] for r in rules] == [r.kind for r in rules]
    code, low, high = ScoreRule.stack(rules)
    returns = torch.tensor([1500.0, 0.0, 7.0])
    success = torch.tensor([0.0, 0.0, 1.0])
    batched = score_episodes(code, low, high, returns, success)
    for rule, ret, succ, score in zip(rules, returns, success, batched):
        assert rule(ret.item(), bool(succ)) == pytest.approx(score.item())
        assert rule.torch(ret, succ).item() == pytest.approx(score.item())
    torch.testing.assert_close(batched, torch.tensor([1.5, 0.5, 1.0]))
    import inspect

    from torchrl_newt.envs import vector

    source = inspect.getsource(vector.MultitaskVecEnv._score)
    assert "score_episodes" in source and "clamp" not in source and "minimum" not in source
