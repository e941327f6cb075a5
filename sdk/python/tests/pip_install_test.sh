#!/bin/sh
# Installs the SDK with pip into a fresh virtual environment (offline: no index, no build
# isolation, no dependencies) and imports it from elsewhere than the source tree.
# Usage: pip_install_test.sh [PYTHON]   (default /usr/bin/python3)
set -eu

PYTHON=${1:-/usr/bin/python3}
SDK_DIR=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT INT TERM
unset PYTHONPATH

# Build from a copy, so pip's build files never land in the source tree.
mkdir "$WORK/src"
cp -R "$SDK_DIR/pyproject.toml" "$SDK_DIR/README.md" "$SDK_DIR/bifrost" "$WORK/src/"
rm -rf "$WORK/src/bifrost/__pycache__"

"$PYTHON" -m venv --system-site-packages "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check --no-index \
  --no-build-isolation --no-deps "$WORK/src"

cd "$WORK"
"$WORK/venv/bin/python" -c "
import sys
from bifrost import config, workflow, ExecutionContext
import bifrost, bifrost.sync, bifrost._run, bifrost._discover
assert bifrost.__file__.startswith(sys.prefix), bifrost.__file__
print('bifrost-sdk', bifrost.__version__, 'imports from', bifrost.__file__)
"
"$WORK/venv/bin/pip" show --disable-pip-version-check bifrost-sdk >"$WORK/show.txt"
grep -q '^Version: 0.1.0$' "$WORK/show.txt"
echo "pip install test: the SDK installs and imports"
