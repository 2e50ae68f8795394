"""Replay sampling latency: why a pure-torch sum tree, and what each sampling mode costs.

Part 1 compares three ways to draw ``batch`` indices proportionally to weights over
``capacity`` slice starts, in the setting of prioritized replay where the weights of
``batch`` starts change after every update (one "PER step" = draw + priority update):

* ``sum-tree``: :class:`torchrl_newt.data.SumTree`, O(batch * log capacity) per step;
* ``cumsum+searchsorted``: the prefix sum must be recomputed after each update, O(capacity);
* ``multinomial``: :func:`torch.multinomial` over the weight vector, O(capacity).

Part 2 times :meth:`MultitaskReplayBuffer.sample` for each mode (filled with 200 lanes
of 500-step episodes; records hold an 8-float observation so that 1e7 steps fit in
memory: the gather of real 128-d observations adds a bandwidth cost common to all
modes), plus the prioritized update, and one ``extend`` of a [200, 10] batch followed
by a sample (balanced mode rebuilds its leaves after task counts change).

Run:
    python benchmarks/replay_sampling.py                   # CPU, 1e5 1e6 1e7
    python benchmarks/replay_sampling.py --device cuda
Writes ``benchmarks/results/replay_sampling_<device>.md``.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from tensordict import TensorDict

try:
    from torchrl_newt.data import MultitaskReplayBuffer, SumTree
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from torchrl_newt.data import MultitaskReplayBuffer, SumTree

LANES = 200
EPISODE = 500


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()} ({torch.get_num_threads()} threads)"


def timeit(fn, device: torch.device, repeats: int, warmup: int = 2) -> float:
    """Median wall time of ``fn`` in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def bench_primitives(capacity: int, batch: int, device: torch.device, repeats: int) -> dict[str, float]:
    weights = torch.rand(capacity, dtype=torch.float64, device=device) + 0.1
    tree = SumTree(capacity, device=device)
    tree.build(weights)
    new_prio = torch.rand(batch, dtype=torch.float64, device=device) + 0.1

    def sum_tree_step():
        idx = tree.find(torch.rand(batch, dtype=torch.float64, device=device) * tree.total())
        tree.update(idx, new_prio)

    def cumsum_step():
        cdf = weights.cumsum(0)
        idx = torch.searchsorted(cdf, torch.rand(batch, dtype=torch.float64, device=device) * cdf[-1], right=True)
        weights[idx.clamp_max(capacity - 1)] = new_prio

    def multinomial_step():
        idx = torch.multinomial(weights, batch, replacement=True)
        weights[idx] = new_prio

    out = {"sum-tree": timeit(sum_tree_step, device, repeats)}
    out["cumsum+searchsorted"] = timeit(cumsum_step, device, repeats)
    # torch.multinomial refuses more than 2**24 categories
    out["multinomial"] = timeit(multinomial_step, device, repeats) if capacity <= 2**24 else float("nan")
    return out


def fill(buffer: MultitaskReplayBuffer, capacity: int, start: int) -> int:
    """Writes ``capacity`` steps of 500-step episodes (lanes out of phase), in chunks."""
    rows = capacity // LANES
    offset = torch.randint(EPISODE, (LANES, 1))
    chunk = max(10, min(rows, 5000))
    t = start
    while t < start + rows:
        T = min(chunk, start + rows - t)
        time_ = torch.arange(t, t + T)[None] + offset
        data = TensorDict(
            {
                "observation": torch.randn(LANES, T, 8),
                "task": torch.arange(LANES)[:, None].expand(LANES, T) % 50,  # 50 tasks, 4 lanes each
                "step_count": (time_ % EPISODE)[..., None],
                ("collector", "traj_ids"): time_ // EPISODE * LANES + torch.arange(LANES)[:, None],
            },
            batch_size=[LANES, T],
        )
        buffer.extend(data)
        t += T
    return t


def bench_buffer(mode: str, capacity: int, batches: list[int], device: torch.device, repeats: int) -> list[dict]:
    buffer = MultitaskReplayBuffer(capacity, slice_len=4, mode=mode, device=device)
    t = fill(buffer, capacity, 0)
    buffer.sample(8)  # settles validity/leaves
    rows = []
    for batch in batches:
        row = {"mode": mode, "capacity": capacity, "batch": batch}
        row["sample_ms"] = timeit(lambda b=batch: buffer.sample(b), device, repeats)
        if mode == "prioritized":
            sample = buffer.sample(batch)
            prio = torch.rand(batch, device=device)
            row["update_ms"] = timeit(
                lambda s=sample, p=prio: buffer.update_priority(s["index"], p), device, repeats
            )
        else:
            row["update_ms"] = float("nan")
        state = {"t": t}

        def extend_then_sample(state=state, batch=batch):
            state["t"] = fill_small(buffer, state["t"])
            buffer.sample(batch)

        row["extend+sample_ms"] = timeit(extend_then_sample, device, max(3, repeats // 2), warmup=1)
        t = state["t"]
        rows.append(row)
    return rows


def fill_small(buffer: MultitaskReplayBuffer, t: int, T: int = 10) -> int:
    time_ = torch.arange(t, t + T)[None].expand(LANES, T)
    data = TensorDict(
        {
            "observation": torch.randn(LANES, T, 8),
            "task": torch.arange(LANES)[:, None].expand(LANES, T) % 50,
            "step_count": (time_ % EPISODE)[..., None],
            ("collector", "traj_ids"): time_ // EPISODE * LANES + torch.arange(LANES)[:, None],
        },
        batch_size=[LANES, T],
    )
    buffer.extend(data)
    return t + T


def fmt(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--capacities", type=float, nargs="+", default=[1e5, 1e6, 1e7])
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--modes", nargs="+", default=["uniform", "balanced", "prioritized"])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch CPU threads (1 default: on a loaded shared CPU, OpenMP contention slows small ops ~50x)",
    )
    parser.add_argument("--out", default=None, help="markdown file (default benchmarks/results/replay_sampling_<device>.md)")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    capacities = [int(c) for c in args.capacities]
    name = device_name(device)
    lines = [
        f"# Replay sampling latency on {device.type}: {name}",
        "",
        f"torch {torch.__version__}; median of {args.repeats} runs; slice_len 4; {LANES} lanes, {EPISODE}-step episodes.",
        "",
        "## Weighted draw + priority update of `batch` items (one PER step), ms",
        "",
        "| capacity | batch | sum-tree | cumsum+searchsorted | multinomial |",
        "|---:|---:|---:|---:|---:|",
    ]
    for capacity in capacities:
        for batch in args.batches:
            r = bench_primitives(capacity, batch, device, args.repeats)
            lines.append(
                f"| {capacity:.0e} | {batch} | {fmt(r['sum-tree'])} | {fmt(r['cumsum+searchsorted'])} | {fmt(r['multinomial'])} |"
            )
            print(lines[-1], flush=True)
    lines += [
        "",
        "## MultitaskReplayBuffer, ms",
        "",
        (
            "`sample`: one `[batch, 4]` sample; `update`: `update_priority` of the batch; "
            "`extend+sample`: write a [200, 10] batch then sample (includes lazy validity update; "
            "balanced mode rebuilds its leaves here)."
        ),
        "",
        "| mode | capacity | batch | sample | update | extend+sample |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for capacity in capacities:
        for mode in args.modes:
            for row in bench_buffer(mode, capacity, args.batches, device, args.repeats):
                lines.append(
                    f"| {mode} | {capacity:.0e} | {row['batch']} | {fmt(row['sample_ms'])} | "
                    f"{fmt(row['update_ms'])} | {fmt(row['extend+sample_ms'])} |"
                )
                print(lines[-1], flush=True)
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / f"replay_sampling_{device.type}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
