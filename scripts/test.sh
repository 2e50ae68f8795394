#!/usr/bin/env bash
# The test command of README.md (and .ci/run): installs torchrl_newt with every simulator extra that
# installs here plus the test tools, sets up the CPU Vulkan driver for ManiSkill (its tests skip
# cleanly without it), then runs the default test suite (tests marked `slow` are excluded; run them
# with `python -m pytest -m slow`). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
bash scripts/install.sh all,test
if ! bash scripts/setup_vulkan.sh >/tmp/torchrl_newt_vulkan.log 2>&1; then
    echo "note: Vulkan driver setup failed (see /tmp/torchrl_newt_vulkan.log); ManiSkill tests will skip"
fi
export MUJOCO_GL=${MUJOCO_GL:-egl}
exec "$PY" -m pytest -q "$@"
