#!/usr/bin/env bash
# Run diffcheck's test suite and its cases against another torch release.
#
#   tools/compat.sh TORCH_VERSION [NUMPY_SPEC]      e.g. tools/compat.sh 2.2.2 '<2'
#
# Builds (or reuses) a virtual environment .compat/torch-VERSION beside the repository with
# that torch and a numpy matching NUMPY_SPEC (default: any), installs diffcheck into it
# editable with its test extra, then runs `pytest -q` and `diffcheck run cases/ -j 1`.
# The last lines it prints are the two results; record them in docs/compat.md.
#
# Note: on Linux x86-64, PyPI's torch wheels are CUDA builds. They run on the CPU, but the
# first install downloads several GB (torch plus the nvidia-* packages).
set -euo pipefail
version=${1:?usage: tools/compat.sh TORCH_VERSION [NUMPY_SPEC]}
numpy_spec=${2:-}
cd "$(dirname "$0")/.."
venv=${COMPAT_VENV:-.compat/torch-$version}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "torch==$version" "numpy$numpy_spec"
fi
"$venv/bin/pip" install -q -e '.[test]' "torch==$version" "numpy$numpy_spec"
log=${COMPAT_LOG:-.compat/torch-$version.log}
set +e
"$venv/bin/python" -m pytest -q -p no:cacheprovider "${@:3}" > "$log" 2>&1
tests=$?
"$venv/bin/diffcheck" run cases/ -j 1 --no-cache > "$log.cases" 2>&1
cases=$?
set -e
echo "torch $version: $("$venv/bin/python" -c 'import torch, numpy; print(torch.__version__, "numpy", numpy.__version__)')"
echo "pytest (exit $tests): $(tail -n 1 "$log")"
echo "diffcheck run cases/ (exit $cases): $(tail -n 1 "$log.cases")"
