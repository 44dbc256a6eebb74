# The commands people type. CMake does the building underneath (build/, build-asan/, build-fuzz/).
# `make run` and `make check` set up a fresh Debian machine first (scripts/setup.sh), each with
# only what it needs: `make run` the build and the data, `make check` the tests' PyTorch and Chromium too.

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
FUZZ_SECONDS ?= 600

.PHONY: all setup setup-check build run check asan coverage fuzz bench bench-mpi clean install uninstall deb gpu-build check-gpu bench-gpu

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

# Which lines of src/ and cli/ no test runs: every test on a --coverage build (build-cov/, gcc's
# gcov), then gcovr's table, file by file with the lines missed, into build-cov/coverage.txt and
# build-cov/coverage.html (about 15 minutes). The install test is left out: a program linked
# against the instrumented static library without --coverage cannot link.
coverage: setup-check
	@scripts/setup.sh --coverage
	@cmake -S . -B build-cov -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS=--coverage \
	    -DCMAKE_EXE_LINKER_FLAGS=--coverage -DCMAKE_SHARED_LINKER_FLAGS=--coverage $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-cov -j $(JOBS)
	@find build-cov -name '*.gcda' -delete
	@cd build-cov && ctest -j $(JOBS) -E '^install$$' | tail -n 3
	@find build-cov/CMakeFiles -path '*CompilerId*' \( -name '*.gcda' -o -name '*.gcno' \) -delete
	@gcovr -r . --object-directory build-cov -f 'src/' -f 'cli/' --sort-percentage -o build-cov/coverage.txt
	@gcovr -r . --object-directory build-cov -f 'src/' -f 'cli/' --html-details -o build-cov/coverage.html
	@tail -n 2 build-cov/coverage.txt

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

# Data-parallel training (issue 17): 1 and 2 processes measured on fmnist-small and
# resnet18-cifar, the MPI transport's alpha and beta, and the model of a step on 1 to 512 nodes
# (bench/mpi/model.py: tables, bench/mpi/out/scaling.svg). About a minute.
bench-mpi: build
	@scripts/setup.sh --check
	sh bench/mpi/run.sh build/convnet

# convnet beside PyTorch (python3-torch, tuned) and darknet (Debian's) on the nets of models/:
# images/s, ratios, fraction of the measured fp32 peak, the issue's targets (bench/RESULTS.md).
# About 5 minutes; raw results in bench/out/results.json.
bench:
	@scripts/setup.sh --bench
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build build -j $(JOBS)
	/usr/bin/python3 bench/run.py

# On a machine with an NVIDIA GPU (its driver, cuBLAS 13 and cuDNN 9): the CUDA backend's checks
# (bench/gpu/check_gpu.sh: the op table on the GPU with CN_REQUIRE_GPU=1, a short Fashion-MNIST
# run with --device cuda evaluated and resumed on the CPU, gradcheck --device cuda) and its
# benchmark beside PyTorch (bench/gpu/run.py: images/s and ratios on the anchors' nets).
# GPU_BUILD=DIR NO_BUILD=1 uses a build made elsewhere and carried (bench/gpu/DEVICE.md);
# GPU_DATA: the Fashion-MNIST folder.
GPU_BUILD ?= build
GPU_DATA ?= /usr/share/datasets/fashion-mnist
gpu-build:
	@[ -n "$(NO_BUILD)" ] || { cmake -S . -B $(GPU_BUILD) -DCMAKE_BUILD_TYPE=Release -DCN_CUDA=ON $(CMAKE_FLAGS) >/dev/null && \
	    cmake --build $(GPU_BUILD) -j $(JOBS); }

check-gpu: gpu-build
	bench/gpu/check_gpu.sh $(GPU_BUILD) $(GPU_DATA)

bench-gpu: gpu-build
	python3 bench/gpu/run.py $(GPU_BUILD)

clean:
	rm -rf build build-asan build-cov build-fuzz build-deb build-gpu

# ---- install, uninstall, the Debian package (issue 16) ----
# `make install [PREFIX=/usr/local] [DESTDIR=/tmp/stage]`: the convnet binary, convnet.h,
# libconvnet.so.0 and libconvnet.a, convnet.pc, the CMake package (find_package(convnet)) and the
# models (PREFIX/share/convnet/models). `make uninstall` with the same DESTDIR removes what the
# last `make install` put there (build/install_manifest.txt).
PREFIX ?= /usr/local
DESTDIR ?=
install: setup
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS) >/dev/null
	@cmake --build build -j $(JOBS) --target convnet convnet_lib convnet_shared
	DESTDIR=$(DESTDIR) cmake --install build

uninstall:
	@scripts/uninstall.sh build/install_manifest.txt $(DESTDIR)

# `make deb`: convnet_VERSION_ARCH.deb here, built by debhelper (debian/) from a copy of the tree in
# build-deb/ (dpkg-buildpackage writes next to its source); `apt install ./convnet_*.deb` installs it.
deb:
	@scripts/setup.sh --deb
	rm -rf build-deb && mkdir -p build-deb/convnet
	tar -cf - --exclude='./build*' --exclude=./.git --exclude=./runs --exclude='./convnet_*' . | tar -xf - -C build-deb/convnet
	cd build-deb/convnet && dpkg-buildpackage -b -us -uc -j$(JOBS) >../dpkg-buildpackage.log 2>&1 || \
	    { tail -30 ../dpkg-buildpackage.log; exit 1; }
	cp build-deb/convnet_*.deb .
	@ls convnet_*.deb
