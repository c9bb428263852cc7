#!/usr/bin/env bash
# Build (or reuse) a virtual environment with ganrobust installed, without ever replacing torch.
#
#   bash tools/bootstrap.sh            # .venv with ganrobust[test]
#   EXTRAS=torchattacks bash tools/bootstrap.sh
#
# torch is installed first only when the environment has none (TORCH_VERSION, default the
# 2.13.0 CPU build), then pinned with a constraint file for every later install: torchattacks
# declares torchvision, and an unconstrained resolve would pull a new (CUDA) torch with it.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRAS=${EXTRAS:-test}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
py="$VENV/bin/python"
"$py" -m pip install -q --disable-pip-version-check --upgrade pip

if ! "$py" -c "import torch" >/dev/null 2>&1; then
  echo "bootstrap: installing torch==$TORCH_VERSION" >&2
  "$py" -m pip install -q --disable-pip-version-check "torch==$TORCH_VERSION"
fi
torch_version=$("$py" -c "import torch; print(torch.__version__)" 2>/dev/null)
constraints="$VENV/ganrobust-constraints.txt"
echo "torch==$torch_version" > "$constraints"
echo "bootstrap: torch $torch_version pinned in $constraints" >&2

"$py" -m pip install -q --disable-pip-version-check -c "$constraints" -e ".[$EXTRAS]"

after=$("$py" -c "import torch; print(torch.__version__)" 2>/dev/null)
if [ "$after" != "$torch_version" ]; then
  echo "bootstrap: torch changed from $torch_version to $after; refusing to continue" >&2
  exit 1
fi
echo "bootstrap: ready ($VENV)" >&2
