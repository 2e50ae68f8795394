"""Build ``torchrl_newt/modules/data/mmbench_clip_text.npz``: Newt's CLIP task embeddings as package data.

Provenance of the vectors:

* They are Newt's frozen CLIP instruction embeddings: the ``text_embedding`` field of every task in
  ``tasks.json`` of https://github.com/nicklashansen/newt (234 tasks: the 200 MMBench training tasks
  and the 34 held-out tasks), as exported to ``../shared/mmbench/clip_text_embeddings.json``
  (values rounded to 6 significant digits there).
* Model: the text tower of CLIP ``openai/clip-vit-base-patch32`` (``transformers.CLIPTextModel``).
* Text: ``f"{embodiment}. {instruction}."`` with the task's embodiment and instruction strings
  (:attr:`torchrl_newt.envs.TaskSpec.text`).
* Pooling: mean over all token positions (BOS and EOS included) of ``last_hidden_state``, one text
  per call (so no padding), no projection, no normalisation; 512 dims.

The output holds ``names`` (MMBench order: the 200 training tasks in soup order, then the 34
held-out tasks, i.e. ``list_tasks(include_held_out=True)``), ``texts`` (the embedded text of each
row), ``embeddings`` (float32 ``[234, 512]``) and ``meta`` (a JSON string: the header fields of the
source file, its SHA-256 and the upstream reference). The zip members carry a fixed timestamp, so
rebuilding from the same JSON gives identical bytes. The loader is
:func:`torchrl_newt.modules.language.newt_task_embeddings`.

Usage (from the repository root)::

    python scripts/make_clip_table.py                      # ../shared/mmbench/clip_text_embeddings.json
    python scripts/make_clip_table.py PATH/TO/clip_text_embeddings.json --out OTHER.npz
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import sys
import zipfile
from pathlib import Path

import numpy as np

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(_REPO))

from torchrl_newt.envs.registry import get_task, list_tasks  # noqa: E402

logger = logging.getLogger("make_clip_table")

DEFAULT_JSON = _REPO.parent / "shared" / "mmbench" / "clip_text_embeddings.json"
DEFAULT_OUT = _REPO / "torchrl_newt" / "modules" / "data" / "mmbench_clip_text.npz"
EXPECTED = {"model": "openai/clip-vit-base-patch32", "text_template": "{embodiment}. {instruction}.", "dim": 512}
UPSTREAM = "nicklashansen/newt tasks.json `text_embedding`"


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an ``.npz`` (zip of ``.npy`` members) with fixed timestamps, atomically."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, member.getvalue())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)


def build(source: Path, out: Path) -> Path:
    """Read the exported JSON, check it against the task registry, and write the ``.npz``."""
    raw = source.read_bytes()
    blob = json.loads(raw)
    for key, value in EXPECTED.items():
        if blob.get(key) != value:
            raise ValueError(f"{source}: header {key}={blob.get(key)!r}, expected {value!r}")
    vectors: dict[str, list[float]] = blob["embeddings"]
    names = list_tasks(include_held_out=True)  # MMBench order (soup order, then held-out)
    if set(names) != set(vectors):
        raise ValueError(
            f"{source}: task names differ from the registry's MMBench tasks; only in the file: "
            f"{sorted(set(vectors) - set(names))}, only in the registry: {sorted(set(names) - set(vectors))}"
        )
    texts = [get_task(n).text for n in names]
    tasks_json = source.with_name("tasks.json")  # cross-check the texts where the facts file is beside it
    if tasks_json.is_file():
        facts = json.loads(tasks_json.read_text())["tasks"]
        for name, text in zip(names, texts):
            expected = blob["text_template"].format(**facts[name])
            if text != expected:
                raise ValueError(f"{name}: registry text {text!r} differs from {tasks_json}: {expected!r}")
    table = np.asarray([vectors[n] for n in names], dtype=np.float32)
    if table.shape != (len(names), blob["dim"]) or not np.isfinite(table).all():
        raise ValueError(f"{source}: expected finite [{len(names)}, {blob['dim']}] vectors, got {table.shape}")
    meta = {k: v for k, v in blob.items() if k != "embeddings"}
    meta.update(source_file=source.name, source_sha256=hashlib.sha256(raw).hexdigest(), upstream=UPSTREAM)
    _write_npz(
        out,
        {
            "names": np.asarray(names, dtype=np.str_),
            "texts": np.asarray(texts, dtype=np.str_),
            "embeddings": table,
            "meta": np.asarray(json.dumps(meta, sort_keys=True), dtype=np.str_),
        },
    )
    logger.info("wrote %s: %d tasks x %d dims, %.1f KiB", out, *table.shape, out.stat().st_size / 1024)
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", nargs="?", type=Path, default=DEFAULT_JSON, help="default: %(default)s")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: %(default)s")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not args.json.is_file():
        logger.error("no such file: %s", args.json)
        return 2
    build(args.json, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
