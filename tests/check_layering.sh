#!/usr/bin/env bash
# The layering rules of docs/design.md, checked on the sources: third-party headers may only
# be included where the design puts them.
set -u
cd "$(dirname "$0")/.."
fail=0
check() {  # pattern allowed-path-regex description
  local hits
  hits=$(grep -rlE "$1" src --include='*.h' --include='*.cc' | grep -vE "$2" || true)
  if [ -n "$hits" ]; then
    echo "FAIL: $3 outside its layer:"; echo "$hits" | sed 's/^/  /'; fail=1
  else
    echo "ok: $3"
  fi
}
check '#include <openssl/' '^src/(crypto|server|client)/' 'OpenSSL (crypto; TLS in server and client)'
check '#include <sqlite3.h>' '^src/store/sqlite/' 'sqlite3.h'
check '#include <libpq-fe.h>' '^src/store/postgres/' 'libpq-fe.h'
# Outside src/, only the PostgreSQL test support may talk to libpq directly.
hits=$(grep -rlE '#include <libpq-fe.h>' tests --include='*.h' --include='*.cc' | grep -vE '^tests/support/' || true)
if [ -n "$hits" ]; then
  echo "FAIL: libpq-fe.h in tests outside tests/support/:"; echo "$hits" | sed 's/^/  /'; fail=1
else
  echo "ok: libpq-fe.h in tests only under tests/support/"
fi
check '#include <boost/' '^src/(server|client)/' 'Boost'
check '#include "server/' '^src/(server|cli)/|^src/main\.cc$' 'server headers'
check '#include "store/sqlite/' '^src/(store/sqlite|store/open|server|keys)/|_test\.cc$' 'the SQLite store (tests may use it)'
# The factory that turns --data / --database into a Store: for the commands that open a
# database themselves.
check '#include "store/open/' '^src/(store/open|server|keys|cli)/|_test\.cc$' 'the store factory (store/open)'
# The C++ SDK's public headers stand alone: they include the standard library, nlohmann/json
# and each other, never the project's internal headers.
hits=$(grep -rnE '^#include "' include | grep -vE '#include "bifrost/' || true)
if [ -n "$hits" ]; then
  echo "FAIL: include/bifrost/ includes internal headers:"; echo "$hits" | sed 's/^/  /'; fail=1
else
  echo "ok: the SDK's public headers stand alone"
fi
if [ $fail -ne 0 ]; then echo "1 failed"; exit 1; fi
echo "layering: all rules hold"
