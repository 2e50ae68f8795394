#!/usr/bin/env bash
# Installs torchrl_newt (editable) with the given pip extras, e.g. `bash scripts/install.sh dmc,test`.
# torch comes first: the pinned CPU wheel when no torch is installed (a GPU machine keeps its own).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
EXTRAS=${1:-dmc}
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    "$PY" -m pip install --quiet "torch==2.13.0"
fi
TORCH=$("$PY" -c "import torch; print(torch.__version__.split('+')[0])")
"$PY" -m pip install --quiet -e ".[${EXTRAS}]" "torch==${TORCH}"
