# troupe: `make demo` runs the demo, `make test` runs every test.
# Each target first installs missing Debian packages (scripts/install-deps.sh).
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
PYTHON := /usr/bin/python3

.PHONY: all deps build demo test test-cpp test-python test-python-curve test-sanitize bench format clean package

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null
	@cmake --build build -j $(JOBS)

demo: build
	@scripts/demo.sh

test: test-cpp test-python test-python-curve

test-cpp: build
	@cd build && ctest --output-on-failure -j $(JOBS) --timeout 300

test-python: build
	@TROUPE_BIN_DIR=$(CURDIR)/build/bin $(PYTHON) -m pytest -q clients/python/tests tests/conformance

# The Python client and worker again with CURVE on (keys made with pyzmq's
# zmq.auth, clients/python/tests/conftest.py): the suites that go through the
# library. Those that speak the wire through their own plaintext sockets, and
# the examples that start their own broker, run in test-python only; the C++
# suites cover CURVE's handshake and refusals (tests/integration/security_test.cpp).
test-python-curve: build
	@TROUPE_TEST_CURVE=1 TROUPE_BIN_DIR=$(CURDIR)/build/bin $(PYTHON) -m pytest -q -k "not examples_run" \
		clients/python/tests/test_integration.py clients/python/tests/test_actor.py \
		clients/python/tests/test_example_actors.py clients/python/tests/test_calls.py

# The C++ tests under AddressSanitizer and UndefinedBehaviorSanitizer, in
# their own build directory.
test-sanitize: deps
	@cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTROUPE_SANITIZE=ON -DTROUPE_BUILD_BENCH=OFF >/dev/null
	@cmake --build build-sanitize -j $(JOBS)
	@cd build-sanitize && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j $(JOBS) --timeout 600

# A Debian package of troupe (CPack): headers, static libraries, the CMake
# package, troupe.pc and the `troupe` executable, under /usr. Install it
# with `apt install ./build/troupe_*.deb`; see docs/using.md.
package: build
	@scripts/install-deps.sh --package
	@cd build && cpack -G DEB
	@ls build/troupe_*.deb

format:
	@find actors transport tools examples tests bench \( -name '*.cpp' -o -name "*.hpp" \) | xargs clang-format -i

clean:
	rm -rf build build-sanitize

# Benchmarks (issue 4): they print, they never assert, and they are not part
# of `make test`. See docs/performance.md.
bench: build
	@$(PYTHON) bench/run.py
	@$(PYTHON) bench/durable.py
	@$(PYTHON) bench/calls.py

# Peers on the same payload: Celery + Redis and CAF remote actors, and for
# durable messages Redis Streams and RabbitMQ (bench/durable.py). Separate
# because it installs more Debian packages.
bench-peers: build
	@bench/peers/run_peers.sh
	@scripts/install-deps.sh --bench-peers
	@$(PYTHON) bench/durable.py --peers
.PHONY: bench-peers

# Coverage-guided fuzzing with libFuzzer, ASan and UBSan (clang, in
# build-fuzz/): each harness of tests/fuzz/ for FUZZ_SECONDS seconds (default
# 60); the smoke replays every seed and reproducer, then runs each harness a
# few seconds (CI). A finding exits non-zero. See docs/testing.md.
fuzz:
	@$(if $(FUZZ_SECONDS),FUZZ_SECONDS=$(FUZZ_SECONDS)) scripts/fuzz.sh

fuzz-smoke:
	@$(if $(FUZZ_SECONDS),FUZZ_SECONDS=$(FUZZ_SECONDS)) scripts/fuzz.sh --smoke
.PHONY: fuzz fuzz-smoke
