# ndshm: the two commands a newcomer needs are `make demo` and `make test`.
CARGO ?= cargo
CC ?= cc
CFLAGS ?= -O2 -std=c11 -Wall -Wextra -Werror
BUILD := build
REL := target/release
PREFIX ?= /usr/local
DESTDIR ?=
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
MAJOR := $(word 1,$(subst ., ,$(VERSION)))
MINOR := $(word 2,$(subst ., ,$(VERSION)))
# The ABI version in the SONAME: 0.MINOR while the major is 0 (as build.rs sets it).
ABI := $(if $(filter 0,$(MAJOR)),0.$(MINOR),$(MAJOR))
SONAME := libndshm.so.$(ABI)

.PHONY: all lib cli examples demo test check clean python-deps python-ext install bench bench-quick bench-live bench-load bench-load-quick fuzz miri wheel docs python-matrix examples-mpi bench-mpi bench-mpi-quick bench-store

all: examples

# The release library, plus its SONAME link target/release/libndshm.so.0.1 -> libndshm.so
# so that a program linked with -Ltarget/release (the README's line) finds it at run time.
lib:
	$(CARGO) build --release --lib
	ln -sf libndshm.so $(REL)/$(SONAME)

# The Python binding's compiled fast path, in place in the source tree (setup.py builds
# the same file for the wheel): bindings/python/ndshm/_ext.abi3.so, for the stable ABI
# (the source defines Py_LIMITED_API), against this Python's and numpy's (>= 2) headers.
PY_EXT := bindings/python/ndshm/_ext.abi3.so
python-ext: $(PY_EXT)
$(PY_EXT): bindings/python/ndshm/_ext.c include/ndshm.h
	@$(PYTHON) -c "import numpy, sys; sys.exit(int(numpy.__version__.split('.')[0]) < 2)" || \
	  { echo "python-ext: needs numpy >= 2's headers ($(PYTHON) -m pip install 'numpy>=2')"; exit 1; }
	$(CC) $(CFLAGS) -shared -fPIC -Iinclude \
	  -I$$($(PYTHON) -c "import sysconfig; print(sysconfig.get_paths()['include'])") \
	  -I$$($(PYTHON) -c "import numpy; print(numpy.get_include())") $< -ldl -o $@

# The command-line tool, target/release/ndshm (the workspace member cli/).
cli:
	$(CARGO) build --release -p ndshm-cli

# The C examples, linked against the release library through its versioned SONAME.
examples: lib
	@mkdir -p $(BUILD)/lib
	@soname=$$(readelf -d $(REL)/libndshm.so | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p'); \
	  ln -sf $(abspath $(REL))/libndshm.so $(BUILD)/lib/libndshm.so; \
	  ln -sf $(abspath $(REL))/libndshm.so $(BUILD)/lib/$$soname
	@for p in producer consumer list; do \
	  $(CC) $(CFLAGS) -Iinclude examples-c/$$p.c -L$(BUILD)/lib -lndshm \
	    -Wl,-rpath,$(abspath $(BUILD)/lib) -o $(BUILD)/$$p || exit 1; \
	done

	@if command -v gfortran >/dev/null; then \
	  gfortran -O2 -J$(BUILD) -c bindings/fortran/ndshm.f90 -o $(BUILD)/ndshm_f.o && \
	  gfortran -O2 -I$(BUILD) bindings/fortran/example.f90 $(BUILD)/ndshm_f.o -L$(BUILD)/lib -lndshm \
	    -Wl,-rpath,$(abspath $(BUILD)/lib) -o $(BUILD)/fortran_example; \
	else rm -f $(BUILD)/fortran_example; fi

# The MPI examples (examples-mpi/: C and Fortran, built with OpenMPI's mpicc and mpifort)
# into build/mpi/; the Python one runs as it is (mpirun -np 4 python3 -m mpi4py ...).
examples-mpi: lib
	@mkdir -p $(BUILD)/mpi
	mpicc -O2 -std=c11 -Wall -Wextra -Iinclude examples-mpi/load_sum.c -L$(REL) -lndshm \
	  -Wl,-rpath,$(abspath $(REL)) -o $(BUILD)/mpi/load_sum
	mpifort -O2 -J$(BUILD)/mpi -c bindings/fortran/ndshm.f90 -o $(BUILD)/mpi/ndshm_f.o
	mpifort -O2 -ffree-line-length-none -I$(BUILD)/mpi examples-mpi/load_sum.f90 $(BUILD)/mpi/ndshm_f.o \
	  -L$(REL) -lndshm -Wl,-rpath,$(abspath $(REL)) -o $(BUILD)/mpi/load_sum_f

demo: examples
	@$(PYTHON) -c "import numpy" 2>/dev/null || $(PYTHON) -m pip install -q numpy
	@NDSHM_LIBRARY=$(abspath $(REL))/libndshm.so PYTHONPATH=$(abspath bindings/python) \
	  bash scripts/demo.sh $(BUILD)

PYTHON ?= python3

# Every test: Rust unit and integration tests (which also compile and run the C
# programs as separate processes against include/ndshm.h and the built library), then
# with pytest the Python binding's tests (twice: with its compiled fast path, and with
# NDSHM_NO_EXT=1 on ctypes alone) and the cross-language tests (install via
# pkg-config and CMake, Fortran, Julia declarations, the C/Rust/Python/Fortran matrix),
# all against the freshly built release library; then a bounded fuzz run of the parsers
# and the pure tests under Miri (each skipped with a message where nightly Rust,
# cargo-fuzz or Miri is missing; .ci/run installs them).
test: lib python-deps python-ext
	$(CARGO) test
	NDSHM_LIBRARY=$(abspath $(REL))/libndshm.so $(PYTHON) -m pytest -q bindings/python/tests
	# Again with the ctypes path alone (what runs where the extension is missing).
	NDSHM_NO_EXT=1 NDSHM_LIBRARY=$(abspath $(REL))/libndshm.so $(PYTHON) -m pytest -q bindings/python/tests
	NDSHM_LIBRARY=$(abspath $(REL))/libndshm.so $(PYTHON) -m pytest -q tests/py
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS) FUZZ_OPTIONAL=1
	$(MAKE) --no-print-directory miri MIRI_OPTIONAL=1

# Seconds per fuzz target within `make test` (`make fuzz` alone runs FUZZ_SECONDS).
TEST_FUZZ_SECONDS ?= 10

# numpy and pytest for the binding's tests; the real SharedArray and cdxcore packages for
# the compatibility tests; build (the PyPA frontend) for the sdist and wheel, mypy for
# the type check, pdoc for `make docs`; mpi4py for the Python MPI example and test (it
# uses the OpenMPI that .ci/run installs), Dask's distributed scheduler for the example
# and test of passing arrays to worker processes by name.
python-deps:
	@$(PYTHON) -c "import numpy, pytest, SharedArray, cdxcore, build, mypy, pdoc, mpi4py, distributed" 2>/dev/null || \
	  $(PYTHON) -m pip install -q numpy pytest SharedArray cdxcore build mypy pdoc mpi4py "dask[distributed]"

# The Python package as users install it: `python -m build` makes the sdist (carrying the
# Rust sources) and, from that sdist unpacked in a temporary directory, the
# py3-none-<platform> wheel, both into target/python-dist/. make test checks both
# (tests/py/test_python_dist.py).
wheel: python-deps
	$(PYTHON) -m build --outdir target/python-dist bindings/python

# The Python API reference, generated from the docstrings by pdoc:
# target/doc/python/index.html.
docs: lib python-deps
	NDSHM_LIBRARY=$(abspath $(REL))/libndshm.so PYTHONPATH=$(abspath bindings/python) \
	  $(PYTHON) -m pdoc -d google -o target/doc/python ndshm ndshm.compat
	@echo "API reference: target/doc/python/index.html"

# The wheel on every CPython 3.9-3.13 found (python3.X on PATH, or pyenv's) with the
# oldest and newest numpy PyPI has for it, the binding's whole test suite in each (make
# test runs a smoke script in each instead). Several minutes.
python-matrix: python-deps
	NDSHM_PY_MATRIX=full $(PYTHON) -m pytest -v -rs tests/py/test_python_dist.py

# Benchmarks (programs, not tests): ndshm against the raw system calls and the peers,
# one table of medians and ratios. bench-quick finishes in under a minute.
bench: python-deps
	$(PYTHON) bench/run.py --write docs/BENCHMARKS.md

bench-quick: python-deps
	$(PYTHON) bench/run.py --quick

# Live data: publish-to-read latency between two processes (C, Python, ndsharray, floors).
bench-live: python-deps
	$(PYTHON) bench/live.py

# Loading a 1 GiB page-cached .npy into shared memory: ndshm against the raw kernel
# methods and the peers, and on a huge-page tmpfs when run as root (docs/BENCHMARKS.md).
bench-load: python-deps
	$(PYTHON) bench/load_bench.py --write docs/BENCHMARKS.md

bench-load-quick: python-deps
	$(PYTHON) bench/load_bench.py --quick

# Growing arrays and the store: appending a million rows one at a time and in batches
# against a Python list and ISF's append_save; row-range loads (docs/BENCHMARKS.md).
bench-store: lib
	$(PYTHON) bench/store_bench.py --write docs/BENCHMARKS.md

# A 1 GiB dataset for 4 MPI ranks on this node: ndshm open-or-create against an MPI shared
# window filled by the node leader and against private copies (docs/BENCHMARKS.md, "MPI").
bench-mpi: lib
	$(PYTHON) bench/mpi_bench.py --write docs/BENCHMARKS.md

bench-mpi-quick: lib
	$(PYTHON) bench/mpi_bench.py --quick

# What a reviewer runs first.
check: test
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

# Install for C, C++ and Fortran users: libndshm.so.$(VERSION) with its SONAME and
# development links, libndshm.a, the headers, a pkg-config file and a CMake package
# (all relocatable), the Fortran module's source, and the ndshm command-line tool.
install: lib cli
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(REL)/ndshm $(DESTDIR)$(PREFIX)/bin/ndshm
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/lib/cmake/ndshm \
	  $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/share/ndshm/fortran
	install -m 755 $(REL)/libndshm.so $(DESTDIR)$(PREFIX)/lib/libndshm.so.$(VERSION)
	ln -sf libndshm.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libndshm.so
	install -m 644 $(REL)/libndshm.a $(DESTDIR)$(PREFIX)/lib/libndshm.a
	install -m 644 include/ndshm.h include/ndshm.hpp $(DESTDIR)$(PREFIX)/include/
	install -m 644 bindings/fortran/ndshm.f90 $(DESTDIR)$(PREFIX)/share/ndshm/fortran/
	sed 's/@VERSION@/$(VERSION)/' pkg/ndshm.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/ndshm.pc
	sed 's/@VERSION@/$(VERSION)/; s/@SONAME@/$(SONAME)/' pkg/ndshmConfig.cmake.in \
	  > $(DESTDIR)$(PREFIX)/lib/cmake/ndshm/ndshmConfig.cmake
	sed 's/@VERSION@/$(VERSION)/; s/@MAJOR@/$(MAJOR)/g; s/@MINOR@/$(MINOR)/g' pkg/ndshmConfigVersion.cmake.in \
	  > $(DESTDIR)$(PREFIX)/lib/cmake/ndshm/ndshmConfigVersion.cmake

# Fuzzing (nightly Rust and cargo-fuzz): each target in fuzz/ replays its checked-in
# corpus, then runs FUZZ_SECONDS; fails on any crash. FUZZ_OPTIONAL=1 skips (exit 0)
# when nightly or cargo-fuzz is missing. See scripts/fuzz.sh.
FUZZ_SECONDS ?= 20
FUZZ_OPTIONAL ?=
fuzz:
	FUZZ_SECONDS='$(FUZZ_SECONDS)' FUZZ_OPTIONAL='$(FUZZ_OPTIONAL)' bash scripts/fuzz.sh

# The pure (no system call) unit tests under Miri: format, dtype and name.
# MIRI_OPTIONAL=1 skips (exit 0) when Miri is missing.
MIRI_OPTIONAL ?=
miri:
	@if ! $(CARGO) +nightly miri --version >/dev/null 2>&1; then \
	  if [ '$(MIRI_OPTIONAL)' = 1 ]; then echo "miri: skipped: Miri is not installed"; exit 0; fi; \
	  echo "make miri needs Miri: rustup component add --toolchain nightly miri rust-src" >&2; exit 1; \
	else $(CARGO) +nightly miri test --lib -- format:: dtype:: name::; fi

clean:
	$(CARGO) clean
	rm -rf fuzz/target
	rm -rf $(BUILD)
