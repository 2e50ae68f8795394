"""The local Slurm cluster for the ``slurm`` tests.

``slurm_cluster`` uses a cluster that answers ``sinfo`` already (``SLURM_CONF`` as set), or, when
running as root with Slurm installed, starts the single-node loopback cluster of
``scripts/slurm_local.sh`` for the session and stops it afterwards. Otherwise the tests skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "slurm_local.sh"
LOCAL_CONF = Path(os.environ.get("SLURM_LOCAL_DIR", "/tmp/torchrl_newt_slurm")) / "slurm.conf"


def _sinfo_ok(env: dict[str, str]) -> bool:
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%a %t"], env=env, capture_output=True, text=True, timeout=20,
                             check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and any(
        line.split()[0] == "up" and line.split()[1].startswith(("idle", "mix", "alloc"))
        for line in out.stdout.splitlines() if len(line.split()) == 2
    )


@pytest.fixture(scope="session")
def slurm_cluster():
    """``SLURM_CONF`` of a running cluster (exported to this process for submitit's ``sbatch``)."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        pytest.skip("Slurm client tools are not installed (as root: scripts/slurm_local.sh start)")
    if _sinfo_ok(dict(os.environ)):
        yield os.environ.get("SLURM_CONF", "")
        return
    env = dict(os.environ, SLURM_CONF=str(LOCAL_CONF))
    # stop it at the end only if this session started its daemons (another session may share it)
    running = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, timeout=60, check=False).returncode == 0
    started = False
    if not running or not _sinfo_ok(env):
        if os.geteuid() != 0 or shutil.which("slurmctld") is None:
            pytest.skip("no Slurm cluster answers sinfo, and the local one needs root and slurm-wlm")
        proc = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=120,
                              check=False)
        if proc.returncode != 0 or not _sinfo_ok(env):
            pytest.skip(f"could not start the local Slurm cluster: {proc.stderr[-500:]}")
        started = not running
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(LOCAL_CONF)
    try:
        yield str(LOCAL_CONF)
    finally:
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old
        if started:
            subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, timeout=120, check=False)
