# Bifrost build entry points. `make test` is what CI runs (.ci/run).
#
#   make run     deps + build, then a dev server on the embedded SQLite (./.bifrost-dev)
#   make deps    install the Debian packages the build and tests need, and the browser tests'
#                npm package (playwright-core, pinned in tests/browser/package-lock.json);
#                idempotent
#   make build   deps + configure + compile into build/
#   make test    build + the whole test suite through ctest, then the same suite under
#                AddressSanitizer and UndefinedBehaviorSanitizer
#   make bench   build + benchmarks next to their reference (see docs/benchmarks.md)

BUILD_DIR  ?= build
ASAN_DIR   ?= build-asan
BUILD_TYPE ?= Release
JOBS       ?= 2
BROWSER_TESTS := tests/browser

# Everything the build, the tests and the benchmarks use, from Debian's archive.
DEB_PACKAGES := g++ make cmake pkg-config libssl-dev libsqlite3-dev nlohmann-json3-dev \
                libgtest-dev libgmock-dev libbenchmark-dev python3 python3-cryptography faketime \
                libboost-dev libcli11-dev openssl wrk \
                python3-pip python3-venv python3-setuptools \
                libargon2-dev chromium \
                libpq-dev postgresql-15 postgresql-client-15

SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: deps configure build run test test-fast asan bench clean

deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed$$' \
	    || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	else \
	  echo "deps: all $(words $(DEB_PACKAGES)) packages are installed"; \
	fi
	@# Node and npm for the browser tests: any node 20+ on PATH will do, else Debian's.
	@if ! command -v npm >/dev/null 2>&1; then \
	  echo "deps: installing nodejs npm"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends nodejs npm; \
	fi
	@# The browser tests' node_modules, exactly as locked; again when the lock file changes.
	@if [ ! -d $(BROWSER_TESTS)/node_modules ] || \
	    [ $(BROWSER_TESTS)/package-lock.json -nt $(BROWSER_TESTS)/node_modules ]; then \
	  echo "deps: npm ci in $(BROWSER_TESTS)"; \
	  npm ci --prefix $(BROWSER_TESTS) --no-audit --no-fund && touch $(BROWSER_TESTS)/node_modules; \
	else \
	  echo "deps: $(BROWSER_TESTS)/node_modules is up to date"; \
	fi

configure: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: configure
	cmake --build $(BUILD_DIR) -j$(JOBS)

# The suite on the release build only.
test-fast: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(JOBS)

# The suite again with ASan+UBSan: memory errors and undefined behaviour fail the build.
# The second, PostgreSQL pass of the end-to-end and browser tests runs once, in the release
# suite above; here PostgreSQL is covered by its store tests (conformance and faults) and the
# cluster and migrate tests, which exercise the server's PostgreSQL paths.
asan: deps
	cmake -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DBIFROST_SANITIZE=ON -DBIFROST_BUILD_BENCH=OFF
	cmake --build $(ASAN_DIR) -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_DIR) --output-on-failure -j$(JOBS) \
	    -E '^postgresql\.|^browser_ui_postgresql$$'

test: test-fast asan

# A first try: dev mode keeps its data and a generated key in ./.bifrost-dev and prints an
# admin token. Not for production (see README).
run: build
	$(BUILD_DIR)/bifrost serve --dev

bench: build
	bench/run.sh $(BUILD_DIR)
	bench/http_bench.sh $(BUILD_DIR)
	bench/audit_bench.sh $(BUILD_DIR)
	bench/keys_bench.sh $(BUILD_DIR)
	bench/workflow_bench.sh $(BUILD_DIR)
	bench/cluster_bench.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR)
