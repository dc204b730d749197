"""The compiled fast path (ndshm/_ext.c) against the ctypes path: it is used when built
(make test builds it in place; the wheel carries it), NDSHM_NO_EXT=1 turns it off, and
both paths give the same arrays, the same exceptions with the same messages, and leak
no handle or mapping. `make test` runs the whole suite once with it and once without."""

import os
import subprocess
import sys

import numpy as np
import pytest

import ndshm
from conftest import PKG_PATH

NO_EXT = os.environ.get("NDSHM_NO_EXT", "") not in ("", "0")


def test_the_extension_is_used_unless_turned_off():
    if NO_EXT:
        assert ndshm._lib.ext is None
    else:
        assert ndshm._lib.ext is not None, (
            "the compiled fast path did not load: build it with `make python-ext` (the wheel "
            "carries it), or set NDSHM_NO_EXT=1 to test the ctypes path alone")
        assert ndshm._lib.ext.__file__.endswith(".abi3.so"), ndshm._lib.ext.__file__


def in_other_path(code, *args):
    """Runs ``code`` in a child on the other path (with the extension if this process
    has none, and the other way round); returns its stdout."""
    env = dict(os.environ, PYTHONPATH=PKG_PATH)
    if NO_EXT:
        env.pop("NDSHM_NO_EXT")
    else:
        env["NDSHM_NO_EXT"] = "1"
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout


ERRORS = r"""
import sys, numpy as np, ndshm
n, m = sys.argv[1], sys.argv[2]
cases = [
    lambda: ndshm.attach(m),
    lambda: ndshm.create(n, 3),
    lambda: ndshm.attach(n, validate_shape=(4,)),
    lambda: ndshm.attach(n, validate_dtype=np.int8),
    lambda: ndshm.attach(n, validate_shape=(1,) * 33),
    lambda: ndshm.create(m, (1,) * 33),
    lambda: ndshm.create("nope://x", 3),
    lambda: ndshm.attach("", ro=True),
    lambda: ndshm.attach(m, timeout=0.01),
    lambda: ndshm.delete(m),
    lambda: ndshm.list("/nonexistent/dir"),
    lambda: ndshm.publish(ndshm.attach(n, ro=True), np.zeros(3)),
    lambda: ndshm.read_snapshot(ndshm.attach(n), out=np.zeros(2)),
    lambda: ndshm.wait(ndshm.attach(n), 10, timeout=0),
]
for c in cases:
    try:
        c()
        print("no error")
    except Exception as e:
        print(type(e).__name__, getattr(e, "errno", None), getattr(e, "status", None), str(e))
"""


def test_errors_are_the_same_on_both_paths(uname):
    n, m = uname(), uname()
    ndshm.create(n, 3)
    here = subprocess.run([sys.executable, "-c", ERRORS, n, m], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=PKG_PATH)).stdout
    there = in_other_path(ERRORS, n, m)
    assert here == there
    lines = here.splitlines()
    assert len(lines) == 14 and "no error" not in lines, here
    assert lines[0].startswith("FileNotFoundError 2 -2 "), lines[0]


DESCRIBE = r"""
import sys, numpy as np, ndshm
a = ndshm.attach(sys.argv[1], ro=True)
b = a.base
print(a.shape, a.dtype, a.strides, a.flags.writeable, a.flags.f_contiguous, b.size, b.readonly, b.format, b.name)
print(np.asarray(b).shape, np.asarray(b).base is b, sorted(b.__array_interface__.items()) == sorted(
    {"version": 3, "shape": a.shape, "typestr": a.dtype.str, "data": (b.addr, True), "strides": a.strides}.items()))
print(a.tolist(), ndshm.read_snapshot(a).tolist(), ndshm.version(a))
print([(d.name, d.dims, str(d.dtype), d.order, d.format, d.state) for d in ndshm.list() if d.name.endswith(sys.argv[1])])
"""


@pytest.mark.parametrize("order", ["C", "F"])
def test_arrays_are_the_same_on_both_paths(uname, order):
    n = uname()
    a = ndshm.create(n, (2, 3), dtype="<i4", order=order, full=np.arange(6).reshape(2, 3))
    ndshm.publish(a, np.asarray(a))
    here = subprocess.run([sys.executable, "-c", DESCRIBE, n], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=PKG_PATH))
    assert here.returncode == 0, here.stderr
    assert here.stdout == in_other_path(DESCRIBE, n)
    assert "True True" in here.stdout.splitlines()[1]


def test_empty_and_zero_dimensional_arrays(uname):
    n, m = uname(), uname()
    a = ndshm.create(n, (0, 5))
    assert a.shape == (0, 5) and ndshm.is_shared(a) and a.base.size == 0
    z = ndshm.create(m, (), dtype=np.int16, full=7)
    assert z.shape == () and int(z) == 7 and int(ndshm.attach(m)) == 7


def test_a_view_keeps_the_mapping_alive(uname):
    n = uname()
    a = ndshm.create(n, 1000, full=3.0)
    v = a[10:20]
    del a
    ndshm.delete(n)
    import gc

    gc.collect()
    assert v.sum() == 30.0 and ndshm.is_shared(v)


def test_live_data_fast_and_slow_cases(uname):
    """Same shape (the C path), another shape or dtype, a non-contiguous source, an
    `out` of the wrong shape (the Python path), and a reader seeing a shape change."""
    n = uname()
    a = ndshm.create(n, 6, capacity=1 << 12)
    r = ndshm.attach(n, ro=True)
    assert ndshm.publish(a, np.arange(6.0)) == 1
    snap, v = ndshm.read_snapshot(r, return_version=True)
    assert v == 1 and snap.tolist() == list(range(6))
    out = np.empty(6)
    assert ndshm.read_snapshot(r, out) is out and out[5] == 5
    assert ndshm.publish(a, np.arange(12.0)[::2]) == 2  # not contiguous
    assert ndshm.read_snapshot(r).tolist() == list(range(0, 12, 2))
    assert ndshm.publish(a, [1, 2, 3]) == 3  # a list, and another shape and dtype
    assert ndshm.read_snapshot(r).tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match=r"^out has shape \(6,\) and dtype float64; the snapshot has shape"):
        ndshm.read_snapshot(r, out)
    assert ndshm.publish(a, np.ones((2, 2), np.float32)) == 4
    assert ndshm.read_snapshot(r).tolist() == [[1, 1], [1, 1]]
    assert ndshm.wait(r, 3, timeout=0) == 4 and ndshm.version(r) == 4 and ndshm.version(r[...]) == 4
    with pytest.raises(TypeError, match="not an ndshm array"):
        ndshm.version(np.zeros(3))


def mappings():
    with open("/proc/self/maps") as f:
        return sum(1 for line in f if "/dev/shm/" in line)


def test_no_handle_or_mapping_leaks(uname):
    """Many rounds of every path, successes and failures: the process's mappings of
    /dev/shm and its open descriptors stay where they were."""
    n, m = uname(), uname()
    keep = ndshm.create(n, 16)
    ndshm.publish(keep, np.zeros(16))
    fds = len(os.listdir("/proc/self/fd"))
    before = mappings()
    for i in range(2000):
        b = ndshm.attach(n, ro=True)
        ndshm.read_snapshot(b)
        ndshm.version(b)
        del b
        c = ndshm.create(m, (2, 2), sparse=True)
        ndshm.publish(c, np.ones((2, 2)))
        del c
        ndshm.delete(m)
        for bad in (lambda: ndshm.attach(n, validate_shape=(3,)), lambda: ndshm.create(n, 1),
                    lambda: ndshm.attach(m), lambda: ndshm.create(m, 3, full="x")):
            with pytest.raises((ValueError, FileExistsError, FileNotFoundError)):
                bad()
    assert mappings() == before
    assert len(os.listdir("/proc/self/fd")) == fds
    del keep
    assert mappings() == before - 1
