"""CLIP text embeddings: Newt's shipped table, texts, pooling, batching, caching, offline behaviour, CLI.

The shipped-table tests need neither ``transformers`` nor weights nor network; the comparison with
``../shared/mmbench/clip_text_embeddings.json`` skips, naming the path, where that file is absent.
The model-path tests run on a tiny random CLIP text model built from a config (no weights are
downloaded) and skip without ``transformers``. The comparisons with real CLIP run only where its
weights are on this machine (Hugging Face cache or ``TORCHRL_NEWT_CLIP_PATH``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import socket
import sys
from pathlib import Path

import pytest
import torch

import torchrl_newt.modules
from torchrl_newt.envs.registry import MissingDependencyError, UnknownTaskError, get_task, list_tasks, register_task
from torchrl_newt.modules import language as lang
from torchrl_newt.modules import pretrained
from torchrl_newt.modules.language import (
    CLIPTextEmbedder,
    LanguageModelUnavailable,
    MissingTaskEmbeddingError,
    build_tiny_clip_text,
    load_newt_table,
    load_task_table,
    mean_pool,
    model_fingerprint,
    newt_task_embeddings,
    save_task_table,
    task_embeddings,
    task_embeddings_or_none,
    task_texts,
)

pytestmark = pytest.mark.language

TASKS = ["walker-walk", "cartpole-swingup", "cheetah-run", "mujoco-ant"]
REFERENCE_JSON = Path(__file__).resolve().parents[3] / "shared" / "mmbench" / "clip_text_embeddings.json"
HAS_TRANSFORMERS = importlib.util.find_spec("transformers") is not None
needs_transformers = pytest.mark.skipif(
    not HAS_TRANSFORMERS, reason="needs transformers (pip install -e .[language])"
)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    pytest.importorskip("transformers", reason="needs transformers (pip install -e .[language])")
    path = tmp_path_factory.mktemp("tiny-clip")
    build_tiny_clip_text(path)
    return path


@pytest.fixture(scope="module")
def tiny(tiny_dir) -> CLIPTextEmbedder:
    return CLIPTextEmbedder.from_pretrained(tiny_dir, device="cpu")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Fail loudly if anything tries to reach the Hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    try:
        import huggingface_hub
    except ImportError:  # nothing could download anyway
        return

    def _boom(*args, **kwargs):
        raise AssertionError("a test tried to download from the Hugging Face Hub")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", _boom)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", _boom)


# ---------------------------------------------------------------------------------------------
# Newt's shipped table: the default for MMBench tasks (no weights, no transformers, no network)
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference() -> dict:
    """The exported Newt embeddings, read at run time (skips, naming the path, where absent)."""
    if not REFERENCE_JSON.is_file():
        pytest.skip(f"{REFERENCE_JSON} is absent (the ../shared checkout beside the repository)")
    return json.loads(REFERENCE_JSON.read_text())


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No socket, no transformers, no model resolution or loading, and an empty cache root."""

    def _no(*args, **kwargs):
        raise AssertionError("the shipped table must not need the network, transformers or CLIP weights")

    monkeypatch.setattr(socket.socket, "connect", _no)
    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` raises ImportError
    monkeypatch.setattr(lang, "_resolve_pretrained", _no)
    monkeypatch.setattr(lang, "_model_embeddings", _no)
    monkeypatch.setattr(CLIPTextEmbedder, "from_pretrained", classmethod(_no))
    monkeypatch.setenv("TORCHRL_NEWT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TORCHRL_NEWT_CLIP_PATH", raising=False)
    yield
    assert not (tmp_path / "cache").exists(), "the shipped table must not write the embedding cache"


def test_shipped_table_layout_and_provenance():
    t = load_newt_table()
    assert t.embeddings.shape == (234, 512) and t.embeddings.dtype == torch.float32
    assert torch.isfinite(t.embeddings).all()
    # MMBench order: the 200 training tasks in soup order, then the 34 held-out tasks
    from torchrl_newt.envs._mmbench_facts import TASK_ROWS

    # MMBench order from the registry facts (other tests may register tasks of their own)
    assert list(t.names) == [row[0] for row in TASK_ROWS]
    assert list(t.names) == [n for n in list_tasks(include_held_out=True) if n in set(t.names)]
    mmbench = set(t.names)
    assert list(t.names[:200]) == [n for n in list_tasks() if n in mmbench]
    assert list(t.names[200:]) == [n for n in list_tasks("held-out") if n in mmbench]
    assert list(t.texts) == [get_task(n).text for n in t.names]
    assert t.meta["model"] == lang.DEFAULT_CLIP_MODEL
    assert t.meta["text_template"] == "{embodiment}. {instruction}."
    assert t.meta["dim"] == lang.CLIP_TEXT_DIM == 512
    assert "last_hidden_state" in t.meta["pooling"] and "nicklashansen/newt" in t.meta["upstream"]
    # package data: small, and shipped by setup.py
    assert lang.NEWT_TABLE_FILE.stat().st_size < 700_000
    setup_py = (Path(lang.__file__).resolve().parents[2] / "setup.py").read_text()
    assert '"modules/data/*.npz"' in setup_py
    # callers get copies
    t.embeddings.zero_()
    assert load_newt_table().embeddings.abs().sum() > 0


def test_shipped_table_equals_the_reference_json(reference):
    t = load_newt_table()
    vectors = reference["embeddings"]
    assert set(vectors) == set(t.names) and len(vectors) == 234
    for key in ("model", "text_template", "pooling", "dim", "precision"):
        assert t.meta[key] == reference[key], key
    expected = torch.tensor([vectors[n] for n in t.names], dtype=torch.float32)
    assert torch.equal(t.embeddings, expected)
    # a few individual values, against the JSON as read now
    for name, dim in [("walker-stand", 0), ("walker-stand", 4), ("mujoco-ant", 511), (t.names[-1], 257)]:
        assert t.embeddings[t.names.index(name), dim].item() == pytest.approx(vectors[name][dim], rel=1e-6, abs=0)
    assert t.meta["source_sha256"] == hashlib.sha256(REFERENCE_JSON.read_bytes()).hexdigest(), (
        f"{REFERENCE_JSON} changed; rebuild the table with `python scripts/make_clip_table.py`"
    )


def test_mmbench_tasks_default_to_the_shipped_table_offline(offline):
    t = load_newt_table()
    names = list(t.names)
    # every entry point, all 234 tasks, by name, TaskSpec or exact text
    for table in (
        task_embeddings(names),
        torchrl_newt.modules.task_embeddings(names),
        task_embeddings_or_none(names, device="cpu"),
        task_embeddings(names, source="newt"),
        newt_task_embeddings(names),
    ):
        assert table.dtype == torch.float32 and table.device.type == "cpu"
        assert torch.equal(table, t.embeddings)
    some = ["mujoco-ant", get_task("walker-walk"), get_task("cheetah-run").text, "mujoco-ant"]
    rows = [t.names.index(n) for n in ("mujoco-ant", "walker-walk", "cheetah-run", "mujoco-ant")]
    assert torch.equal(task_embeddings(some), t.embeddings[rows])
    # results are fresh tensors, not views into the cached table
    out = task_embeddings(["walker-walk"])
    out.zero_()
    assert torch.equal(task_embeddings(["walker-walk"]), t.embeddings[[t.names.index("walker-walk")]])


def test_tasks_sharing_a_text_share_a_row():
    a, b = newt_task_embeddings(["walker-stand", "walker-stand-incline"])
    assert get_task("walker-stand").text == get_task("walker-stand-incline").text and torch.equal(a, b)


def test_source_argument_is_validated(tmp_path):
    with pytest.raises(ValueError, match="source must be"):
        task_embeddings(TASKS, source="bogus")
    with pytest.raises(ValueError, match="source='clip'"):
        task_embeddings(TASKS, tmp_path / "some-model", source="newt")
    with pytest.raises(ValueError, match="allow_download=True"):  # still checked when the table answers
        task_embeddings(TASKS, local_files_only=False)


def test_user_task_and_edited_instruction_are_not_in_the_table(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("TORCHRL_NEWT_CLIP_PATH", raising=False)
    monkeypatch.setattr(lang, "_WARNED", set())
    spec = register_task("newt-table-user-task", base="walker-walk", instruction="Cartwheel sideways", overwrite=True)
    edited = dataclasses.replace(get_task("walker-walk"), instruction="Moonwalk in small circles")
    for tasks in (["walker-walk", spec.name], [edited]):
        with pytest.raises(MissingTaskEmbeddingError, match="source='clip'"):
            newt_task_embeddings(tasks)
        with pytest.raises(MissingTaskEmbeddingError):
            task_embeddings(tasks, source="newt")
    # without CLIP weights: a clear error naming the task, and the learnable fallback, as before
    empty = {"hf_cache_dir": tmp_path / "empty-hf", "cache_dir": tmp_path}
    with pytest.raises((LanguageModelUnavailable, MissingDependencyError), match="newt-table-user-task"):
        task_embeddings(["walker-walk", spec.name], **empty)
    with caplog.at_level(logging.WARNING, logger="torchrl_newt.modules.language"):
        assert task_embeddings_or_none(["walker-walk", spec.name], **empty) is None
    assert any("newt-table-user-task" in r.getMessage() for r in caplog.records)
    assert task_embeddings_or_none(["walker-walk"], **empty) is not None


@needs_transformers
def test_user_task_uses_clip_alongside_table_rows(tmp_path, monkeypatch):
    """Table rows for MMBench tasks, the (stand-in, 512-d) CLIP model for a user task, in one table."""
    model_dir = tmp_path / "clip-512"
    stand_in = build_tiny_clip_text(model_dir, hidden_size=512, num_layers=1)
    monkeypatch.setenv("TORCHRL_NEWT_CLIP_PATH", str(model_dir))
    spec = register_task("newt-table-mixed-task", base="cheetah-run", instruction="Run backward", overwrite=True)
    out = task_embeddings(["walker-walk", spec.name, "cheetah-run"], cache_dir=tmp_path / "cache")
    torch.testing.assert_close(out[[0, 2]], newt_task_embeddings(["walker-walk", "cheetah-run"]), rtol=0, atol=0)
    torch.testing.assert_close(out[1:2], stand_in([spec.text]), atol=1e-5, rtol=1e-5)
    assert torch.equal(task_embeddings_or_none(["walker-walk", spec.name], cache_dir=tmp_path / "cache"), out[:2])
    # a model of another width cannot be mixed with the 512-d rows
    small = tmp_path / "clip-32"
    build_tiny_clip_text(small)
    monkeypatch.setenv("TORCHRL_NEWT_CLIP_PATH", str(small))
    with pytest.raises(ValueError, match="cannot be mixed"):
        task_embeddings(["walker-walk", spec.name], cache_dir=tmp_path / "cache")


# ---------------------------------------------------------------------------------------------
# texts
# ---------------------------------------------------------------------------------------------
def test_template_texts_are_exact():
    assert get_task("walker-walk").text == (
        "2D walker with 6 controllable joints across 2 legs. Walk forward at moderate speed."
    )
    texts = task_texts(["walker-walk", get_task("walker-walk"), "A raw instruction."])
    assert texts[0] == texts[1] == get_task("walker-walk").text
    assert texts[2] == "A raw instruction."
    for name in ("cartpole-swingup", "mujoco-ant"):
        spec = get_task(name)
        assert task_texts([name]) == [f"{spec.embodiment}. {spec.instruction}."]


def test_texts_match_the_benchmark_facts(shared_dir):
    facts = json.loads((shared_dir / "mmbench" / "tasks.json").read_text())["tasks"]
    for name, row in facts.items():
        assert task_texts([name]) == [f"{row['embodiment']}. {row['instruction']}."], name


def test_unknown_task_name_is_an_error_not_a_raw_text():
    with pytest.raises(UnknownTaskError, match="walker-walk"):
        task_texts(["walker-wlak"])
    with pytest.raises(ValueError):
        task_texts(["   "])


# ---------------------------------------------------------------------------------------------
# pooling maths
# ---------------------------------------------------------------------------------------------
def test_mean_pool_hand_computed():
    h = torch.tensor(
        [
            [[1.0, 0.0], [2.0, 4.0], [3.0, 8.0], [9.0, 9.0]],  # 3 real tokens + 1 pad
            [[1.0, 1.0], [1.0, 3.0], [4.0, 2.0], [2.0, 2.0]],  # 4 real tokens
        ]
    )
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    expected = torch.tensor([[2.0, 4.0], [2.0, 2.0]])
    torch.testing.assert_close(mean_pool(h, mask), expected)
    # without padding, the masked mean is the plain mean over all positions (the reference recipe)
    torch.testing.assert_close(mean_pool(h[1:]), expected[1:])
    torch.testing.assert_close(mean_pool(h[:1, :3]), expected[:1])


def test_embedding_follows_the_reference_recipe(tiny):
    """One text per call, padding=True, truncation=True, mean over all positions (BOS/EOS included)."""
    text = get_task("walker-walk").text
    enc = tiny.tokenizer(text, padding=True, truncation=True, return_tensors="pt")
    assert enc["input_ids"][0, 0] == tiny.tokenizer.bos_token_id
    assert enc["input_ids"][0, -1] == tiny.tokenizer.eos_token_id
    with torch.no_grad():
        ref = tiny.text_model(**enc).last_hidden_state.mean(dim=1)
    torch.testing.assert_close(tiny([text]), ref)


def test_batched_with_padding_equals_one_text_per_call(tiny):
    texts = task_texts(TASKS) + [
        "Short.",
        "A much longer raw instruction, with many more tokens in it than the others.",
    ]
    enc = tiny.tokenizer(texts, padding=True, return_tensors="pt")
    assert (enc["attention_mask"] == 0).any(), "the batch must contain padding for this test to mean anything"
    batched = tiny(texts, batch_size=64)
    single = torch.cat([tiny([t], batch_size=1) for t in texts])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(tiny(texts, batch_size=3), single, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# task_embeddings end to end
# ---------------------------------------------------------------------------------------------
def test_task_embeddings_end_to_end(tiny_dir, tiny, tmp_path):
    spec = get_task("cheetah-run")
    table = task_embeddings(["walker-walk", spec, "Pick up the cube."], tiny_dir, device="cpu", cache_dir=tmp_path)
    assert table.shape == (3, 32) and table.dtype == torch.float32 and table.device.type == "cpu"
    expected = tiny([get_task("walker-walk").text, spec.text, "Pick up the cube."])
    torch.testing.assert_close(table, expected, atol=1e-5, rtol=1e-5)
    # duplicates are fine and come out identical
    dup = task_embeddings(["walker-walk", "walker-walk"], tiny_dir, cache_dir=tmp_path)
    assert torch.equal(dup[0], dup[1])
    # an embedder object works too, and gives the same result
    torch.testing.assert_close(task_embeddings(["walker-walk"], tiny, use_cache=False), table[:1], atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_task_embeddings_on_cuda(tiny_dir, tmp_path):
    cpu = task_embeddings(TASKS, tiny_dir, device="cpu", use_cache=False)
    gpu = task_embeddings(TASKS, tiny_dir, device="cuda", use_cache=False)
    assert gpu.device.type == "cpu"
    torch.testing.assert_close(gpu, cpu, atol=1e-4, rtol=1e-4)


def test_new_task_from_register_task(tiny_dir, tiny, tmp_path):
    spec = register_task(
        "my-task", base="walker-walk", instruction="Walk backward while keeping the torso upright", overwrite=True
    )
    assert (
        spec.text
        == "2D walker with 6 controllable joints across 2 legs. Walk backward while keeping the torso upright."
    )
    emb = task_embeddings(["my-task"], tiny_dir, cache_dir=tmp_path)
    torch.testing.assert_close(emb, tiny([spec.text]), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(emb, task_embeddings(["walker-walk"], tiny_dir, cache_dir=tmp_path))


# ---------------------------------------------------------------------------------------------
# cache
# ---------------------------------------------------------------------------------------------
class _CountingLoads:
    def __init__(self, monkeypatch):
        self.loads = 0
        self.texts: list[str] = []
        original_load = CLIPTextEmbedder.from_pretrained.__func__
        original_forward = CLIPTextEmbedder.forward

        def load(cls, *args, **kwargs):
            self.loads += 1
            return original_load(cls, *args, **kwargs)

        def forward(module, texts, **kwargs):
            self.texts += list(texts)
            return original_forward(module, texts, **kwargs)

        monkeypatch.setattr(CLIPTextEmbedder, "from_pretrained", classmethod(load))
        monkeypatch.setattr(CLIPTextEmbedder, "forward", forward)


def test_cache_hit_miss_and_invalidation(tiny_dir, tmp_path, monkeypatch):
    counter = _CountingLoads(monkeypatch)
    cache = tmp_path / "cache"
    first = task_embeddings(TASKS, tiny_dir, cache_dir=cache)
    assert counter.loads == 1 and len(counter.texts) == len(TASKS)
    files = list((cache / "text_embeddings").iterdir())
    assert len(files) == 1 and files[0].suffix == ".pt", "atomic writes leave no temporary files behind"

    # hit: the model is not even loaded
    again = task_embeddings(list(reversed(TASKS)), tiny_dir, cache_dir=cache)
    assert counter.loads == 1
    assert torch.equal(again, first.flip(0))

    # editing an instruction recomputes that text only
    register_task("cache-variant", base="walker-walk", instruction="Hop on one leg", overwrite=True)
    task_embeddings(TASKS + ["cache-variant"], tiny_dir, cache_dir=cache)
    assert counter.loads == 2 and counter.texts[-1] == get_task("cache-variant").text
    register_task("cache-variant", base="walker-walk", instruction="Hop on the other leg", overwrite=True)
    n = len(counter.texts)
    task_embeddings(["cache-variant"], tiny_dir, cache_dir=cache)
    assert counter.loads == 3 and counter.texts[n:] == [get_task("cache-variant").text]

    # same files under another model id (path): a separate cache entry
    other = tmp_path / "copy"
    shutil.copytree(tiny_dir, other)
    assert torch.equal(task_embeddings(TASKS, other, cache_dir=cache), first)
    assert counter.loads == 4
    assert len(list((cache / "text_embeddings").iterdir())) == 2

    # a changed config (new weights) under the same path invalidates the entry
    fp_before = model_fingerprint(other)[1]
    build_tiny_clip_text(other, seed=1, num_layers=1)
    assert model_fingerprint(other)[1] != fp_before
    changed = task_embeddings(TASKS, other, cache_dir=cache)
    assert counter.loads == 5 and not torch.allclose(changed, first)

    # use_cache=False never reads nor writes
    task_embeddings(TASKS, tiny_dir, cache_dir=tmp_path / "unused", use_cache=False)
    assert counter.loads == 6 and not (tmp_path / "unused").exists()


@needs_transformers
def test_fingerprint_tracks_large_weight_files_by_stat(tmp_path, monkeypatch):
    path = tmp_path / "m"
    build_tiny_clip_text(path)
    monkeypatch.setattr(pretrained, "_SMALL_FILE", 0)  # treat every file as a large one (never read)
    fp = model_fingerprint(path)[1]
    assert model_fingerprint(path)[1] == fp
    os.utime(path / "model.safetensors", ns=(1, 1))
    assert model_fingerprint(path)[1] != fp


def test_corrupt_cache_file_is_ignored(tiny_dir, tmp_path):
    first = task_embeddings(TASKS[:1], tiny_dir, cache_dir=tmp_path)
    (path,) = (tmp_path / "text_embeddings").iterdir()
    path.write_bytes(b"not a torch file")
    torch.testing.assert_close(task_embeddings(TASKS[:1], tiny_dir, cache_dir=tmp_path), first)


# ---------------------------------------------------------------------------------------------
# offline behaviour
# ---------------------------------------------------------------------------------------------
@needs_transformers
def test_offline_error_is_clear(tmp_path, monkeypatch):
    monkeypatch.delenv("TORCHRL_NEWT_CLIP_PATH", raising=False)
    with pytest.raises(LanguageModelUnavailable) as info:
        task_embeddings(
            TASKS,
            "openai/clip-vit-base-patch32",
            source="clip",
            hf_cache_dir=tmp_path / "empty-hf",
            cache_dir=tmp_path,
        )
    msg = str(info.value)
    assert "openai/clip-vit-base-patch32" in msg and "allow_download=True" in msg and "TORCHRL_NEWT_CLIP_PATH" in msg
    with pytest.raises(LanguageModelUnavailable, match="not available offline"):
        task_embeddings(TASKS, tmp_path / "no" / "such" / "dir", cache_dir=tmp_path)
    with pytest.raises(LanguageModelUnavailable):
        CLIPTextEmbedder.from_pretrained("openai/clip-vit-base-patch32", hf_cache_dir=tmp_path / "empty-hf")
    with pytest.raises(ValueError, match="allow_download=True"):
        task_embeddings(TASKS, "openai/clip-vit-base-patch32", local_files_only=False)


def test_env_var_points_the_default_id_to_a_local_copy(tiny_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHRL_NEWT_CLIP_PATH", str(tiny_dir))
    table = task_embeddings(TASKS[:2], source="clip", cache_dir=tmp_path)
    assert table.shape == (2, 32)
    # MMBench tasks still come from Newt's table by default; the model is not even needed
    assert torch.equal(task_embeddings(TASKS[:2], cache_dir=tmp_path), newt_task_embeddings(TASKS[:2]))


def test_hf_cache_snapshot_is_found_offline(tiny_dir, tmp_path):
    """A model laid out like a Hugging Face cache snapshot loads by its hub id, without network."""
    repo = tmp_path / "hf" / "models--someone--tiny-clip"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for f in tiny_dir.iterdir():
        blob = repo / "blobs" / f"blob{f.name.replace('.', '')}"
        shutil.copy(f, blob)
        (snap / f.name).symlink_to(blob)
    table = task_embeddings(TASKS[:2], "someone/tiny-clip", hf_cache_dir=tmp_path / "hf", cache_dir=tmp_path)
    torch.testing.assert_close(table, task_embeddings(TASKS[:2], tiny_dir, use_cache=False))


def test_fallback_returns_none_with_one_warning(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(lang, "_WARNED", set())
    missing = tmp_path / "no-clip-here"
    with caplog.at_level(logging.WARNING, logger="torchrl_newt.modules.language"):
        assert task_embeddings_or_none(TASKS, missing, cache_dir=tmp_path) is None
        assert task_embeddings_or_none(TASKS, missing, cache_dir=tmp_path) is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "falling back to learnable task embeddings" in warnings[0].getMessage()


def test_fallback_passes_through_when_available(tiny_dir, tmp_path):
    assert task_embeddings_or_none(TASKS, tiny_dir, cache_dir=tmp_path).shape == (len(TASKS), 32)


def test_missing_transformers_names_the_extra(tmp_path, monkeypatch, tiny_dir):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingDependencyError, match=r"pip install -e \.\[language\]"):
        task_embeddings(TASKS, tiny_dir, use_cache=False)
    monkeypatch.setattr(lang, "_WARNED", set())
    assert task_embeddings_or_none(TASKS, tiny_dir, use_cache=False) is None


# ---------------------------------------------------------------------------------------------
# precomputed tables and the CLI
# ---------------------------------------------------------------------------------------------
def test_table_roundtrip_and_errors(tmp_path):
    names = ["walker-walk", "walker-run", "cartpole-swingup"]
    table = torch.randn(3, 8)
    path = save_task_table(tmp_path / "t.pt", names, table)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    out = load_task_table(path, ["cartpole-swingup", get_task("walker-walk")])
    torch.testing.assert_close(out, table[[2, 0]])
    with pytest.raises(MissingTaskEmbeddingError, match="cheetah-run, mujoco-ant"):
        load_task_table(path, ["walker-walk", "cheetah-run", "mujoco-ant"])
    with pytest.raises(ValueError, match="duplicate"):
        save_task_table(tmp_path / "d.pt", ["walker-walk", "walker-walk"], torch.zeros(2, 8))
    with pytest.raises(ValueError, match="len\\(names\\)"):
        save_task_table(tmp_path / "d.pt", names, torch.zeros(2, 8))
    with pytest.raises(FileNotFoundError, match="torchrl_newt.embed"):
        load_task_table(tmp_path / "absent.pt", names)


def test_table_detects_edited_instructions(tmp_path):
    register_task("table-variant", base="walker-walk", instruction="Crawl", overwrite=True)
    path = save_task_table(tmp_path / "t.pt", ["table-variant"], torch.ones(1, 4))
    register_task("table-variant", base="walker-walk", instruction="Sprint", overwrite=True)
    with pytest.raises(ValueError, match="changed"):
        load_task_table(path, ["table-variant"])
    assert load_task_table(path, ["table-variant"], check_texts=False).shape == (1, 4)


def test_cli_precomputes_a_table(tiny_dir, tmp_path, caplog):
    from torchrl_newt.embed import main, parse_task_selection

    assert len(parse_task_selection("mmbench")) == 200
    assert parse_task_selection("domain:dmcontrol")[0] == "walker-stand"
    assert parse_task_selection("walker-walk,walker-walk,walker-run") == ["walker-walk", "walker-run"]
    with pytest.raises(UnknownTaskError):
        parse_task_selection("walker-wlak")

    out = tmp_path / "table.pt"
    args = ["--tasks", "walker-walk,cartpole-swingup", "--model", str(tiny_dir), "--out", str(out), "--device", "cpu"]
    assert main([*args, "--cache-dir", str(tmp_path / "c")]) == 0
    table = load_task_table(out, ["cartpole-swingup", "walker-walk"])
    expected = task_embeddings(["cartpole-swingup", "walker-walk"], tiny_dir, use_cache=False)
    torch.testing.assert_close(table, expected, atol=1e-5, rtol=1e-5)
    blob = torch.load(out, weights_only=True)
    assert blob["model"] == str(tiny_dir.resolve()) and blob["fingerprint"] == model_fingerprint(tiny_dir)[1]
    assert main([*args, "--no-cache"]) == 0
    # unavailable weights: exit code 2 with a clear message, no traceback
    assert main(["--tasks", "walker-walk", "--model", str(tmp_path / "nothing"), "--out", str(out)]) == 2


def test_cli_full_mmbench_table(tiny_dir, tmp_path):
    from torchrl_newt.embed import main

    out = tmp_path / "mmbench.pt"
    assert main(["--tasks", "mmbench", "--model", str(tiny_dir), "--out", str(out), "--no-cache"]) == 0
    blob = torch.load(out, weights_only=True)
    assert blob["table"].shape == (200, 32) and blob["names"][:2] == ["walker-stand", "walker-walk"]


# ---------------------------------------------------------------------------------------------
# the real model (only where its weights are on this machine)
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def real_clip() -> str:
    """A local directory with the real CLIP ViT-B/32 weights; skips, naming what is missing, otherwise."""
    pytest.importorskip("transformers", reason="needs transformers (pip install -e .[language])")
    env = os.environ.get("TORCHRL_NEWT_CLIP_PATH")
    if env and Path(env).is_dir():
        return env
    try:
        directory, _ = lang._resolve_pretrained(
            lang.DEFAULT_CLIP_MODEL, revision=None, hf_cache_dir=None, env_var=None, default_id=None
        )
    except Exception:  # noqa: BLE001
        directory = None
    if directory is None:
        pytest.skip(
            f"real CLIP weights are not available locally: {lang.DEFAULT_CLIP_MODEL} is not in the Hugging Face "
            f"cache ({lang._hf_cache_location(None)}) and TORCHRL_NEWT_CLIP_PATH is "
            + (f"not a directory ({env})" if env else "unset")
        )
    return str(directory)


def test_real_clip_reproduces_the_shipped_table(real_clip, tmp_path):
    names = ["walker-walk", "cheetah-run", "mw-assembly", "ms-pick-cube", "pygame-reacher-easy"]
    ours = task_embeddings(names, real_clip, source="clip", cache_dir=tmp_path)
    cos = torch.nn.functional.cosine_similarity(ours, newt_task_embeddings(names), dim=-1)
    worst = int(cos.argmin())
    assert cos.min() >= 0.999, f"{names[worst]}: cosine {cos[worst]:.6f}"


def test_real_clip_matches_reference_embeddings(real_clip, reference, tmp_path):
    names = list(reference["embeddings"])
    expected = torch.tensor([reference["embeddings"][n] for n in names])
    ours = task_embeddings(names, real_clip, source="clip", cache_dir=tmp_path)
    assert ours.shape == expected.shape == (len(names), reference["dim"])
    cos = torch.nn.functional.cosine_similarity(ours, expected, dim=-1)
    worst = int(cos.argmin())
    assert cos.min() > 0.999, f"{names[worst]}: cosine {cos[worst]:.6f}"


def test_incomplete_local_checkout_is_unavailable(tiny_dir, tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(tiny_dir / "config.json", partial / "config.json")  # no weights, no tokenizer
    with pytest.raises(LanguageModelUnavailable, match="could not be loaded"):
        task_embeddings(TASKS, partial, cache_dir=tmp_path)
    assert task_embeddings_or_none(TASKS, partial, cache_dir=tmp_path) is None


def test_checkout_without_tokenizer_files_is_unavailable(tiny_dir, tmp_path):
    partial = tmp_path / "no-tokenizer"
    partial.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_dir / name, partial / name)
    with pytest.raises(LanguageModelUnavailable, match="no tokenizer files"):
        task_embeddings(TASKS, partial, cache_dir=tmp_path)
