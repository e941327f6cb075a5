#!/bin/sh
# The browser tests (ctest's browser_ui): node's test runner, one file at a time, against the
# bifrost binary in BIFROST_BINARY (default: build/bifrost); screenshots go to
# BIFROST_ARTIFACTS (default: tests/browser/artifacts). Arguments: test files (default: all).
# BIFROST_TEST_BACKEND=postgresql (ctest's browser_ui_postgresql) puts every server on a fresh
# database of the PostgreSQL test cluster named by BIFROST_TEST_POSTGRES_URL_FILE.
set -eu
cd "$(dirname "$0")"
if [ ! -f node_modules/playwright-core/package.json ]; then
  echo "browser_ui: FAILED: tests/browser/node_modules/playwright-core is missing." \
       "Run 'make deps' (it runs npm ci --prefix tests/browser)." >&2
  exit 1
fi
if ! command -v node >/dev/null 2>&1; then
  echo "browser_ui: FAILED: node is missing. Run 'make deps'." >&2
  exit 1
fi
if [ "$#" -eq 0 ]; then set -- *.test.mjs; fi
exec node --test --test-concurrency=1 --test-reporter=spec "$@"
