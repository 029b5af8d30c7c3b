# SPDX-License-Identifier: Apache-2.0
# Enclavia: the commands a newcomer runs. See README.md.
SHELL := /bin/bash
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 30
CMAKE_FLAGS ?=

.PHONY: all deps build test demo sanitize fuzz bench format clean

all: build

deps:
	./scripts/install-deps

build:
	cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build build -j $(JOBS)

# Two more test slots than cores: the integration tests spend most of their time waiting on
# enclaves, sockets and fsyncs, not on the CPU.
test: deps build
	ctest --test-dir build --output-on-failure -j $$(( $(JOBS) + 2 ))

demo: deps build
	./scripts/demo

# runtime_reproducible configures its own Release trees (it tests the build, not memory safety),
# so the sanitizer pass skips it; integration.platform and integration.storage* boot images whose
# runtime must be static, which sanitizer builds are not (the daemons they run are covered by
# their own ASan tests).
sanitize: deps
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DENCLAVIA_SANITIZE=ON \
	  -DENCLAVIA_BUILD_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build build-asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir build-asan --output-on-failure -j $(JOBS) -E "runtime_reproducible|integration.platform|integration.storage"

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

format:
	clang-format -i $$(git ls-files '*.h' '*.cc')

clean:
	rm -rf build build-asan build-fuzz
