# The two commands that matter: `make run` and `make check`.
# Everything is built by CMake + Ninja in build/; this file only strings
# the steps together.

BUILD    ?= build
ASAN     ?= build-asan
CMAKE    ?= cmake
NINJA    ?= ninja
JOBS     ?= 2

.PHONY: all setup build run check unit asan integration fuzz format clean pki bench bench-scale

all: build

setup:
	@scripts/setup.sh

$(BUILD)/build.ninja:
	$(CMAKE) -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: $(BUILD)/build.ninja
	$(NINJA) -C $(BUILD) -j$(JOBS)

# The test PKI and its SoftHSM2 smart cards in var/pki (docs/test-pki.md);
# remade only when sim/identities.json or the script changes.
pki:
	@scripts/test-pki.sh --out var/pki

# Installs what is missing, builds, and starts issod (8080), isso-sim
# (8090) and the demo agency service (8081) with SQLite under var/.
run: setup build
	@scripts/run.sh

# The whole test suite: unit tests and fuzz-corpus replays (ctest), the
# same under ASan+UBSan, then the integration and browser tests against the
# real (sanitizer-built) daemons.
check: setup build unit asan integration

unit: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

$(ASAN)/build.ninja:
	$(CMAKE) -S . -B $(ASAN) -G Ninja -DCMAKE_C_COMPILER=clang -DISSO_SANITIZE=ON \
		-DCMAKE_BUILD_TYPE=Debug

asan: $(ASAN)/build.ninja
	$(NINJA) -C $(ASAN) -j$(JOBS)
	cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j$(JOBS)

# The integration tests drive the sanitizer build of the daemons, so a
# memory error or leak anywhere on a real request path fails the run
# (the harness fails a test when issod's exit reports one).
integration: asan
	cd tests && ISSO_BUILD_DIR=$(CURDIR)/$(ASAN) ASAN_OPTIONS=detect_leaks=1 ISSO_REQUIRE_BROWSER=1 \
		node --test --test-concurrency=1 --test-timeout=600000 integration/

# issod against node oidc-provider on this machine, side by side (not part
# of check; nothing is asserted): a table on stdout and build/bench/results.json.
# Installs wrk and bench/'s own pinned npm packages (bench/node_modules).
bench: build
	@bench/bench.sh

# What changes with size: RSS with 100k sessions, latency with 1M persons,
# one node against two on PostgreSQL behind haproxy (build/bench/scale.json).
bench-scale: build
	@bench/bench.sh scale

# Runs each libFuzzer target for FUZZ_SECONDS (clang).
FUZZ_SECONDS ?= 60
fuzz:
	$(CMAKE) -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang -DISSO_FUZZ=ON
	$(NINJA) -C build-fuzz -j$(JOBS)
	for f in build-fuzz/fuzz/fuzz_*; do \
		n=$$(basename $$f | sed 's/^fuzz_//'); \
		$$f -max_total_time=$(FUZZ_SECONDS) tests/fuzz/corpus/$$n || exit 1; \
	done

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN) build-fuzz
