#!/usr/bin/env bash
# Create the separate virtualenv the peer systems of the equal wall-clock benchmark run in
# (AutoGluon 1.x pins pandas < 2.4 and would break the project's own environment).
#
#   benchmarks/peers/setup.sh [VENV_DIR]        (default: .venv-peers in the current directory)
#   python -m metalearn.benchmark.equal_time --suite ../shared/datasets --peers-python .venv-peers/bin/python ...
#
# PYTHON picks the interpreter that creates the venv (default: python3; AutoGluon 1.x supports 3.9-3.12).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${1:-.venv-peers}"
python="${PYTHON:-python3}"
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV
"$python" -m venv "$venv"
venv="$(cd "$venv" && pwd)"
cd /  # the import check below must not find the project's own package in the working directory
"$venv/bin/pip" install --upgrade pip
"$venv/bin/pip" install -r "$here/requirements.txt"
# the worker must not see metalearn, and every peer must import
"$venv/bin/python" - <<'PY'
import importlib, importlib.util, sys
for name in ("autogluon.tabular", "flaml", "sklearn", "pandas", "pyarrow", "threadpoolctl"):
    importlib.import_module(name)
if importlib.util.find_spec("metalearn") is not None:
    sys.exit("metalearn is importable in the peers venv: the peers must run without it")
import autogluon.tabular, flaml, pandas, sklearn
print(f"peers venv ready: autogluon {autogluon.tabular.__version__}, flaml {flaml.__version__}, "
      f"pandas {pandas.__version__}, scikit-learn {sklearn.__version__}")
PY
echo "use: --peers-python $venv/bin/python"
