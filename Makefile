# The README's two commands end here: `make run` and `make test`.
BUILD      ?= build
BUILD_ASAN ?= build-asan
JOBS       ?= $(shell nproc)

.PHONY: all deps build build-asan run test test-unit test-asan bench bench-kernel fuzz clean

all: build

deps:
	./scripts/install-deps.sh

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

build-asan:
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DSTRATA_SANITIZE=ON >/dev/null
	cmake --build $(BUILD_ASAN) -j $(JOBS)

run: build
	./$(BUILD)/strata run $(if $(CONFIG),--config $(CONFIG))

# Every test: unit and integration, on the normal build and again under ASan+UBSan.
test: build build-asan
	cd $(BUILD) && ctest --output-on-failure
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit

bench: build
	./bench/run.sh $(BUILD)

# The ebpf receiver under syscall storms (root).
bench-kernel: build
	./bench/kernel.sh $(BUILD)

# Coverage-guided fuzzing (clang + libFuzzer, ASan+UBSan): every target 20 s on its seed corpus.
fuzz:
	CC=clang CXX=clang++ cmake -S . -B build-fuzz -DSTRATA_FUZZ=ON -DSTRATA_TESTS=OFF >/dev/null
	cmake --build build-fuzz -j $(JOBS) --target fuzz_all
	./tests/fuzz/run.sh build-fuzz 20

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
