# SPDX-License-Identifier: Apache-2.0
# Enclavia: the commands a newcomer runs. See README.md.
SHELL := /bin/bash
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 30
CMAKE_FLAGS ?=

.PHONY: all deps build wasm test demo sanitize fuzz bench format clean

all: build

deps:
	./scripts/install-deps

build:
	cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build build -j $(JOBS)

# The browser client core (bindings/js/dist), by Debian's emscripten. `make test` builds it as its
# first ctest (bindings.wasm_build), beside the other tests.
wasm: deps
	./scripts/build-wasm build

# More test slots than cores: the integration tests spend most of their time waiting on
# enclaves, sockets and fsyncs, not on the CPU.
test: deps build
	ctest --test-dir build --output-on-failure -j $$(( $(JOBS) + 2 ))

demo: deps build
	./scripts/demo

# The sanitizer pass: ASan + UBSan over the unit tests of the protocol code that parses bytes it
# does not trust and that we wrote ourselves (CBOR, COSE, attestation documents, Noise, the mux and
# channel protocol, the block store, the witness, the upgrade chain), the conformance vectors
# (the C++ runner) and every fuzz corpus (all 21 parsers: also the storage wire, NBD, KMS, DNS,
# egress and EIF parsers). Only those tests and their libraries are built (ENCLAVIA_TEST_DIRS +
# the enclavia-tests target), to keep CI under its time limit: the services around the parsers
# (storage daemons and backends, KMS and AWS clients, the egress daemon), the Asio daemons, the
# CLI and the integration tests (which need the static runtime a sanitizer build is not) run in
# the Release pass. `make sanitize SANITIZE_DIRS='.*'` runs every unit test under the sanitizers.
SANITIZE_DIRS ?= src/lib/(cbor|cose|attestation|noise|mux|channel|blockstore|witness|upgrade)|tests/conformance
sanitize: deps
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DENCLAVIA_SANITIZE=ON \
	  -DENCLAVIA_BUILD_BENCH=OFF -DENCLAVIA_BUILD_PYTHON=OFF -DENCLAVIA_BUILD_WASM=OFF \
	  -DENCLAVIA_TEST_DIRS="$(SANITIZE_DIRS)" $(CMAKE_FLAGS)
	cmake --build build-asan -j $(JOBS) --target enclavia-tests fuzz-replays
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir build-asan --output-on-failure -j $(JOBS) -E "^(integration|examples|browser|bindings)\."

fuzz: deps
	CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DENCLAVIA_BUILD_FUZZ=ON -DENCLAVIA_BUILD_TESTS=OFF -DENCLAVIA_BUILD_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build build-fuzz -j $(JOBS) --target fuzzers
	./scripts/run-fuzzers build-fuzz $(FUZZ_SECONDS)

bench: deps build
	./build/bin/enclavia_attestation_bench --benchmark_repetitions=5 \
	  --benchmark_report_aggregates_only=true
	./bench/build.sh build 200 5
	./build/bin/enclavia_noise_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
	./bench/channel.sh build 1024 5
	./bench/deploy.sh build 5
	./bench/storage.sh build 3 3
	./bench/egress.sh build 5 256
	ENCLAVIA_NIC_THROUGHPUT_MIB=256 ./build/tests/enclavia_egress_nic_test \
	  --gtest_filter=NicTest.ReportsThroughputAgainstDirectLoopback
	./build/bin/enclavia_upgrade_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
	./scripts/build-wasm build
	./bench/bindings.sh build 20

format:
	clang-format -i $$(git ls-files '*.h' '*.cc')

clean:
	rm -rf build build-asan build-fuzz
