"""Shared test configuration: headless rendering, thread limits, the shared MMBench facts."""

import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the checkout; tests that read it skip cleanly where it is absent."""
    if not (SHARED / "mmbench" / "tasks.json").exists():
        pytest.skip("../shared/mmbench is not present on this machine")
    return SHARED


@pytest.fixture
def one_thread():
    """Run a test with one torch thread (planner-heavy CLI tests are faster and steadier), then restore."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
