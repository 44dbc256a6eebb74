# The commands people type. CMake does the building underneath (build/, build-asan/, build-fuzz/).
# `make run` and `make check` set up a fresh Debian machine first (scripts/setup.sh), each with
# only what it needs: `make run` the build and the data, `make check` the tests' PyTorch and Chromium too.

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
FUZZ_SECONDS ?= 600

.PHONY: all setup setup-check build run check asan fuzz bench clean

all: build

setup:
	@scripts/setup.sh

setup-check:
	@scripts/setup.sh --check

build: setup
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build build -j $(JOBS)

# The main job: the default model's summary, then 3 epochs on Fashion-MNIST with the progress,
# the epoch table and the test accuracy (checkpoints and metrics.csv in runs/fmnist-small, the
# run of an earlier `make run` replaced).
run: build
	./build/convnet summary models/fmnist-small.cnn --batch 64
	./build/convnet train models/fmnist-small.cnn --epochs 3 --out runs/fmnist-small --replace

check: setup-check build
	cd build && ctest --output-on-failure -j $(JOBS)

asan: setup-check
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCN_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)

# libFuzzer on the spec parser, the safetensors reader, the IDX loader and the PNG and JPEG
# decoders, FUZZ_SECONDS each (default 10 minutes); an input that takes over 2 GB (resident or in
# one allocation) is a crash. The inputs that reached new code are merged into the corpora kept
# under tests/fuzz/. FUZZ_TARGETS=spec runs one; the list is CMakeLists.txt's CN_FUZZ_TARGETS.
FUZZ_TARGETS ?= spec safetensors idx png jpeg ckmeta onnx
fuzz:
	@scripts/setup.sh --fuzz
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCN_FUZZ=ON >/dev/null
	@for t in $(FUZZ_TARGETS); do \
	    cmake --build build-fuzz -j $(JOBS) --target fuzz_$$t || exit 1; \
	    mkdir -p build-fuzz/corpus-$$t; \
	    dict=; [ -f fuzz/$$t.dict ] && dict=-dict=fuzz/$$t.dict; \
	    ./build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=10 $$dict \
	        -rss_limit_mb=2048 -malloc_limit_mb=2048 \
	        -artifact_prefix=build-fuzz/ build-fuzz/corpus-$$t tests/fuzz/$${t}_corpus || exit 1; \
	    ./build-fuzz/fuzz_$$t -merge=1 tests/fuzz/$${t}_corpus build-fuzz/corpus-$$t || exit 1; \
	done

# convnet beside PyTorch (python3-torch, tuned) and darknet (Debian's) on the nets of models/:
# images/s, ratios, fraction of the measured fp32 peak, the issue's targets (bench/RESULTS.md).
# About 5 minutes; raw results in bench/out/results.json.
bench:
	@scripts/setup.sh --bench
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build build -j $(JOBS)
	/usr/bin/python3 bench/run.py

clean:
	rm -rf build build-asan build-fuzz
