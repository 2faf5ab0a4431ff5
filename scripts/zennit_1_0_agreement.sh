#!/usr/bin/env bash
# Runs the Zennit agreement suite (tests/oracle/test_zennit_agreement.py, the torchvision
# models and the model zoo) under Zennit 1.0.0, which needs Python >= 3.11.11. Not part of CI: it builds its own
# environment with Python 3.12, where pip's only torch==2.13.0 is the CUDA build (several GB
# to download; it runs on the CPU). Usage: bash scripts/zennit_1_0_agreement.sh [VENV_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-/tmp/venv-zennit-1.0}"
# a pyenv shim named python3.12 may exist without being selected: prefer the real binary
python="${PYTHON312:-}"
for candidate in "$HOME"/.pyenv/versions/3.12*/bin/python3.12 "$(command -v python3.12 || true)"; do
  if [ -z "$python" ] && [ -x "$candidate" ] && "$candidate" -c "" 2>/dev/null; then
    python="$candidate"
  fi
done
[ -n "$python" ] || { echo "no working python3.12 found (set PYTHON312)"; exit 1; }
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet -e '.[test]' torch==2.13.0 torchvision==0.28.0 \
    zennit==1.0.0 captum==0.9.0
fi
"$venv/bin/python" -c "import sys, zennit, torch; print('Python', sys.version.split()[0], \
'zennit', zennit.__version__ if hasattr(zennit, '__version__') else '1.0.0', 'torch', torch.__version__)"
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests/oracle/test_zennit_agreement.py \
  tests/oracle/test_torchvision_models.py tests/oracle/test_peer_differences.py \
  tests/oracle/test_zennit_mobile.py tests/oracle/test_zennit_densenet_vgg.py \
  tests/oracle/test_activations_zennit.py tests/oracle/test_zoo.py \
  tests/oracle/test_torchvision_transformers.py "${@:2}"
