"""Python passes exactly what the caller gave: a NUL inside a string is an error (C
would see a shorter string), an integer outside the C type's range is an error (ctypes
would wrap it), numpy integers and arrays work, and a create that fails after the
library made the array deletes it."""

import ctypes
import math
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import ndshm
import ndshm.compat.cdxcore as cdx
import ndshm.compat.sharedarray as nsa
from conftest import PKG_PATH, run_python

ATTACH_AND_PRINT = "import ndshm, sys; print(ndshm.attach(sys.argv[1]).tolist())"


def exists(name):
    return os.path.exists("/dev/shm/" + name)


def test_a_nul_in_a_name_is_an_error_never_a_shorter_name(uname, tmp_path):
    victim = uname("victim")
    ndshm.create(victim, 3, full=7.0)
    calls = [ndshm.delete, lambda n: ndshm.delete(n, missing_ok=True), ndshm.attach, ndshm.info,
             lambda n: ndshm.create(n, 3, force=True), lambda n: ndshm.attach(n, timeout=1),
             cdx.delete_shared_array, nsa.delete, nsa.attach]
    for bad in (victim + "\x00-typo", "shm://" + victim + "\0", (victim + "\0x").encode()):
        for call in calls:
            with pytest.raises(ValueError, match="NUL"):
                call(bad)
    with pytest.raises(ValueError, match="NUL"):
        ndshm.list(str(tmp_path) + "\0")
    with pytest.raises(ValueError, match="NUL"):
        ndshm.create(f"file://{tmp_path}/a\0b", 1)
    assert os.listdir(tmp_path) == []
    r = run_python(ATTACH_AND_PRINT, victim)
    assert r.stdout.strip() == "[7.0, 7.0, 7.0]", r.stderr
    ndshm.delete(victim)


def test_list_takes_str_bytes_and_path_directories(tmp_path):
    f = f"file://{tmp_path}/x.arr"
    ndshm.create(f, 2)
    for where in (tmp_path, str(tmp_path), os.fsencode(tmp_path)):
        assert [d.name for d in ndshm.list(where)] == [f]
    ndshm.delete(f)


@pytest.mark.parametrize("shape", [2**64 + 5, (2**64 + 5,), (3, 2**64 + 5), (2**63,), (-(2**63) - 1, 2),
                                   np.array([2**64 - 1], dtype=np.uint64), np.uint64(2**63)])
def test_a_dimension_outside_int64_is_an_error_not_wrapped(uname, shape):
    n = uname()
    with pytest.raises(ValueError, match="out of range for the C type int64"):
        ndshm.create(n, shape)
    assert not exists(n)


def test_numpy_integers_and_arrays_are_shapes(uname, c_tool):
    n = uname()
    a = ndshm.create(n, np.array([30, 20]), dtype=np.int64)
    a[...] = np.arange(1, 601).reshape(30, 20)
    r = subprocess.run([c_tool["sa_tool"], "verify", n], capture_output=True, text=True)
    assert r.stdout.strip() == "verified 600", r.stdout + r.stderr
    for shape, dims in [((np.int64(3), np.uint8(4)), (3, 4)), (np.int32(12), (12,)), ([np.uint64(3), 4], (3, 4)),
                        (np.array(5), (5,)), (np.array([], dtype=np.int64), ())]:
        m = uname()
        assert ndshm.create(m, shape).shape == dims
        assert ndshm.attach(m, validate_shape=np.array(dims, dtype=np.int64)).shape == dims
        ndshm.delete(m)
    ndshm.delete(n)


def test_validate_shape_outside_int64_is_an_error_not_wrapped(uname):
    n = uname()
    ndshm.create(n, 5)
    with pytest.raises(ValueError, match="out of range"):
        ndshm.attach(n, validate_shape=(2**64 + 5,))
    with pytest.raises(ValueError, match="out of range"):
        ndshm.attach(n, validate_shape=np.array([2**64 - 1], dtype=np.uint64))
    with pytest.raises(ValueError, match="expected shape"):
        ndshm.attach(n, validate_shape=np.array([4]))
    assert ndshm.attach(n, validate_shape=np.array([5])).shape == (5,)
    assert ndshm.attach(n, validate_shape=(np.int64(5),)).shape == (5,)
    assert ndshm.attach(n, validate_shape=np.uint8(5)).shape == (5,)
    assert ndshm.attach(n, validate_shape=[None]).shape == (5,)
    ndshm.delete(n)


def test_timeouts_are_checked_not_wrapped(uname):
    n = uname()
    ndshm.create(n, 1)
    for t in (1e300, 2**70, 2**63 / 1000 * 2):
        with pytest.raises(OverflowError):
            ndshm.attach(n, timeout=t)
    with pytest.raises(ValueError, match="NaN"):
        ndshm.attach(n, timeout=math.nan)
    assert ndshm.attach(n, timeout=np.float32(0.5)).shape == (1,)
    assert ndshm.attach(n, timeout=np.int64(1)).shape == (1,)
    ndshm.delete(n)
    with pytest.raises(TimeoutError):
        ndshm.attach(n, timeout=np.float64(0.02))


def test_an_infinite_timeout_waits_for_another_process(uname):
    n = uname()
    code = "import ndshm, sys, time; time.sleep(0.3); ndshm.create(sys.argv[1], 2, full=5.0)"
    p = subprocess.Popen([sys.executable, "-c", code, n],
                         env=dict(os.environ, PYTHONPATH=PKG_PATH))
    # Should the child fail, unblock the wait after a minute (and fail on the values).
    rescue = threading.Timer(60, lambda: ndshm.create(n, 2, full=-1.0, raise_on_error=False))
    rescue.start()
    try:
        assert ndshm.attach(n, timeout=math.inf).tolist() == [5.0, 5.0]
    finally:
        rescue.cancel()
        p.wait(60)
    assert p.returncode == 0
    ndshm.delete(n)


def test_msync_flags_are_checked_not_wrapped(uname):
    n = uname()
    a = ndshm.create(n, 4096, dtype="u1")
    with pytest.raises(OverflowError, match="msync flags"):
        a.base.msync(2**32 + ndshm.MS_SYNC)
    a.base.msync(np.int32(ndshm.MS_SYNC))
    ndshm.delete(n)


@pytest.mark.parametrize("full, error", [(np.array(["a", "b", "c"]), ValueError), ([object()] * 3, TypeError)])
def test_a_create_that_fails_after_making_the_array_deletes_it(uname, full, error):
    n = uname()
    with pytest.raises(error, match=rf"^{n}: created the array, then failed .*, so deleted it again$"):
        ndshm.create(n, 3, full=full)
    assert not exists(n)
    r = run_python(ATTACH_AND_PRINT, n)
    assert "FileNotFoundError" in r.stderr


def test_a_create_numpy_cannot_represent_deletes_the_array(uname, monkeypatch, tmp_path):
    def numpy_refuses(handle):
        ndshm.SharedMemoryBase(handle)  # owns the handle, releases it when collected
        raise ValueError("array is too big")

    monkeypatch.setattr(ndshm, "_wrap", numpy_refuses)
    n = uname()
    for name in (n, f"file://{tmp_path}/a.arr"):
        with pytest.raises(ValueError, match=rf"^{name}: created the array, then failed \(array is too big\)"):
            ndshm.create(name, (2, 3))
    assert not exists(n) and os.listdir(tmp_path) == []


def test_a_full_that_cannot_fit_is_refused_before_anything_is_made_or_replaced(uname):
    n = uname()
    ndshm.create(n, 3, full=1.0)
    for full, error in [(np.zeros((2, 2)), ValueError), ("abc", ValueError), (object(), TypeError)]:
        with pytest.raises(error, match=rf"^{n}: full="):
            ndshm.create(n, 3, force=True, full=full)
        m = uname()
        with pytest.raises(error, match=rf"^{m}: full="):
            ndshm.create(m, 3, full=full)
        assert not exists(m)
    r = run_python(ATTACH_AND_PRINT, n)
    assert r.stdout.strip() == "[1.0, 1.0, 1.0]", "the old array was not replaced"
    assert ndshm.create(n, (2, 3), force=True, full=np.ones((1, 1, 3))).sum() == 6
    ndshm.delete(n)


def test_a_failed_describe_raises():
    """sa_describe's status is checked like every other (a NULL handle is invalid)."""
    with pytest.raises(ValueError) as e:
        ndshm.SharedMemoryBase(ctypes.c_void_p())
    assert e.value.status == ndshm._lib.SA_ERR_INVALID
