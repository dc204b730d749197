# ndshm: the two commands a newcomer needs are `make demo` and `make test`.
CARGO ?= cargo
CC ?= cc
CFLAGS ?= -O2 -std=c11 -Wall -Wextra -Werror
BUILD := build
REL := target/release

.PHONY: all lib examples demo test check clean python-deps

all: examples

lib:
	$(CARGO) build --release --lib

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

demo: examples
	@bash scripts/demo.sh $(BUILD)

PYTHON ?= python3

# Every test: Rust unit and integration tests (which also compile and run the C
# programs as separate processes against include/ndshm.h and the built library), then
# the Python binding's tests against the freshly built release library.
test: lib python-deps
	$(CARGO) test
	NDSHM_LIBRARY=$(abspath $(REL))/libndshm.so $(PYTHON) -m pytest -q bindings/python/tests

# numpy and pytest for the binding's tests; SharedArray for the compatibility tests.
python-deps:
	@$(PYTHON) -c "import numpy, pytest, SharedArray" 2>/dev/null || \
	  $(PYTHON) -m pip install -q numpy pytest SharedArray

# What a reviewer runs first.
check: test
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf $(BUILD)
