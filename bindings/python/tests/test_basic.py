"""The Python API in one process: arrays, dtypes, options, errors, lifetime."""

import gc
import os
import stat
import weakref

import numpy as np
import pytest

import ndshm

ALL = ["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
       "float16", "float32", "float64", "complex64", "complex128"]


def mappings_of(name):
    """Mappings of the array in this process, matched by device and inode: a creator's
    mapping shows in /proc/self/maps as `/dev/shm/#INODE (deleted)`, the unnamed file it
    made before giving it its name (docs/FORMAT.md, "Creating a segment")."""
    st = os.stat("/dev/shm/" + name)
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}"
    with open("/proc/self/maps") as f:
        return sum(1 for line in f if line.split()[3:5] == [dev, str(st.st_ino)])


def test_create_attach_share_memory(uname):
    n = uname()
    a = ndshm.create(n, (3, 4))
    assert isinstance(a, np.ndarray) and a.dtype == np.float64 and a.shape == (3, 4)
    assert (a == 0).all() and a.flags.c_contiguous and a.flags.writeable
    assert a.ctypes.data % 4096 == 0
    b = ndshm.attach("shm://" + n)
    a[1, 2] = 7.5
    assert b[1, 2] == 7.5, "same memory, no copy"
    b[0, 0] = -1
    assert a[0, 0] == -1
    assert a.base.name == "shm://" + n and a.base.size == 96
    ndshm.delete(n)


@pytest.mark.parametrize("dt", ALL)
def test_every_dtype_round_trips(uname, dt):
    n = uname(dt)
    a = ndshm.create(n, (2, 5), dtype=dt)
    vals = (np.arange(10) % 2 == 1) if dt == "bool" else np.arange(10).astype(dt) * 3
    a[...] = vals.reshape(2, 5)
    b = ndshm.attach(n, ro=True)
    assert b.dtype == np.dtype(dt)
    assert np.array_equal(b, vals.reshape(2, 5))
    ndshm.delete(n)


@pytest.mark.parametrize("dt", [object, "U5", "S3", [("a", "i4"), ("b", "f8")], "M8[ns]", ">f8", np.longdouble])
def test_unsupported_dtypes_name_the_dtype(uname, dt):
    with pytest.raises(ValueError, match="unsupported dtype") as e:
        ndshm.create(uname(), (3,), dtype=dt)
    assert np.dtype(dt).str in str(e.value)


def test_fortran_order(uname):
    n = uname()
    a = ndshm.create(n, (3, 4, 2), dtype=np.int32, order="F")
    assert a.flags.f_contiguous and not a.flags.c_contiguous
    a[...] = np.arange(24, dtype=np.int32).reshape(3, 4, 2)
    b = ndshm.attach(n)
    assert b.flags.f_contiguous
    assert np.array_equal(b, np.arange(24).reshape(3, 4, 2))
    # Column-major in memory: element (1, 0, 0) is the second one stored.
    raw = np.ctypeslib.as_array((np.ctypeslib.ctypes.c_int32 * 24).from_address(b.base.addr))
    assert raw[1] == a[1, 0, 0] and raw[3] == a[0, 1, 0]
    ndshm.delete(n)


def test_read_only_is_a_real_read_only_mapping(uname):
    n = uname()
    ndshm.create(n, (4,), full=3.0)
    b = ndshm.attach(n, ro=True)
    assert not b.flags.writeable and b.base.readonly
    with pytest.raises(ValueError):
        b[0] = 1
    with pytest.raises(ValueError):
        b.setflags(write=True)
    c = ndshm.attach(n, read_only=True)
    assert not c.flags.writeable
    ndshm.delete(n)


def test_full_force_sparse_populate(uname):
    n = uname()
    a = ndshm.create(n, 5, dtype="i8", full=9)
    assert a.tolist() == [9] * 5
    with pytest.raises(FileExistsError, match="already exists"):
        ndshm.create(n, 5)
    assert ndshm.create(n, 5, raise_on_error=False) is None
    b = ndshm.create(n, (2, 3), dtype="f4", force=True, full=np.arange(3))
    assert b.tolist() == [[0, 1, 2], [0, 1, 2]]
    assert a.tolist() == [9] * 5, "the replaced array's memory stays valid"
    ndshm.delete(n)
    c = ndshm.create(n, 1000, sparse=True, populate=True, hugepages=True)
    assert c.sum() == 0
    ndshm.delete(n)


@pytest.mark.parametrize("share,mode", [("owner", 0o600), ("group", 0o660), ("all", 0o666)])
def test_share_modes_ignore_umask(uname, share, mode):
    n = uname()
    old = os.umask(0o077)
    try:
        ndshm.create(n, 1, share=share)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat("/dev/shm/" + n).st_mode) == mode
    assert ndshm.info(n).mode == mode
    ndshm.delete(n)


def test_errors_are_python_exceptions(uname):
    n = uname()
    with pytest.raises(FileNotFoundError, match="no such array") as e:
        ndshm.attach(n)
    assert e.value.errno == 2
    assert ndshm.attach(n, raise_on_error=False) is None
    with pytest.raises(ValueError, match="'/'"):
        ndshm.create("a/b", 1)
    with pytest.raises(ValueError, match="unknown scheme"):
        ndshm.attach("http://x")
    with pytest.raises(ValueError, match="negative"):
        ndshm.create(n, (3, -1))
    with pytest.raises(ValueError, match="overflow"):
        ndshm.create(n, (2**40, 2**40))
    with pytest.raises(ValueError, match="ndim 33"):
        ndshm.create(n, (1,) * 33)
    with pytest.raises(TypeError):
        ndshm.create(n, (1.5,))
    with pytest.raises(TimeoutError, match="timed out"):
        ndshm.attach(n, timeout=0.05)
    with pytest.raises(FileNotFoundError):
        ndshm.delete(n)
    ndshm.delete(n, missing_ok=True)
    with open("/dev/shm/" + n, "wb") as f:
        f.write(b"not an array" * 100)
    with pytest.raises(ndshm.FormatError, match="not an ndshm or SharedArray segment") as e:
        ndshm.attach(n)
    assert isinstance(e.value, OSError)
    with pytest.raises(OSError, match="refusing to delete"):
        ndshm.delete(n)


def test_validation(uname):
    n = uname()
    ndshm.create(n, (3, 4), dtype="f4")
    assert ndshm.attach(n, validate_shape=(3, 4), validate_dtype=np.float32).shape == (3, 4)
    assert ndshm.attach(n, validate_shape=[3, None]).shape == (3, 4)
    with pytest.raises(ValueError, match=r"expected shape \[4, 3\].*found shape \[3, 4\]"):
        ndshm.attach(n, validate_shape=(4, 3))
    with pytest.raises(ValueError, match="dtype float64"):
        ndshm.attach(n, validate_dtype=float)
    ndshm.delete(n)


def test_base_object_msync_mlock(uname):
    n = uname()
    a = ndshm.create(n, 4096, dtype="u1")
    a.base.msync(ndshm.MS_SYNC)
    a.base.msync(ndshm.MS_ASYNC | ndshm.MS_INVALIDATE)
    a.base.mlock()
    a.base.munlock()
    with pytest.raises(ValueError, match="msync flags"):
        a.base.msync(ndshm.MS_SYNC | ndshm.MS_ASYNC)
    with pytest.raises(AttributeError):
        a.base.size = 1
    ndshm.delete(n)


def test_is_shared_really_checks(uname):
    n = uname()
    a = ndshm.create(n, (10, 10))
    assert ndshm.is_shared(a) and ndshm.is_shared(a[2:5, ::2]) and ndshm.is_shared(a.T)
    assert not ndshm.is_shared(a.copy())
    assert not ndshm.is_shared(np.zeros(3))
    assert not ndshm.is_shared([1, 2])
    ndshm.delete(n)


def test_mapping_lives_exactly_as_long_as_arrays(uname):
    n = uname()
    a = ndshm.create(n, (100,))
    base_ref = weakref.ref(a.base)
    view = a[10:20]
    del a
    gc.collect()
    assert base_ref() is not None and mappings_of(n) == 1, "a view keeps the mapping"
    view[0] = 5
    del view
    gc.collect()
    assert base_ref() is None and mappings_of(n) == 0, "released with the last view"
    assert ndshm.attach(n)[10] == 5, "releasing never deletes"
    ndshm.delete(n)


def test_many_cycles_do_not_leak_mappings(uname):
    n = uname()
    keep = ndshm.create(n, (256,))
    for i in range(2000):
        b = ndshm.attach(n)
        b[0] = i
    del b
    gc.collect()
    assert mappings_of(n) == 1
    for i in range(300):
        m = uname("cyc")
        ndshm.create(m, 16)
        ndshm.delete(m)
    gc.collect()
    with open("/proc/self/maps") as f:
        assert not any("ndshm-py-cyc" in line for line in f)
    assert keep[0] == 1999
    ndshm.delete(n)


def test_list_and_info(uname, tmp_path):
    n = uname()
    ndshm.create(n, (2, 3), dtype="u2", order="F")
    d = ndshm.info(n)
    assert (d.name, d.dtype, d.dims, d.order, d.format, d.nbytes) == (
        "shm://" + n, np.dtype("u2"), (2, 3), "F", "v1", 12)
    assert d.state == "ready" and d.creator_pid == os.getpid() and d.creator_alive is True
    assert d.backend == "shm"
    assert d in ndshm.list()
    f = f"file://{tmp_path}/x.arr"
    ndshm.create(f, 7, dtype="i1", format="sharedarray")
    (tmp_path / "junk").write_bytes(b"\x01" * 5000)
    [e] = ndshm.list(tmp_path)
    assert (e.name, e.format, e.dims, e.creator_pid) == (f, "sharedarray-np2", (7,), None)
    ndshm.delete(n)


def test_zero_size_and_scalar(uname):
    n, m = uname(), uname()
    z = ndshm.create(n, (0, 5))
    assert z.shape == (0, 5) and z.size == 0
    s = ndshm.create(m, ())
    s[()] = 4.0
    assert ndshm.attach(m)[()] == 4.0 and ndshm.attach(m).shape == ()
    ndshm.delete(n)
    ndshm.delete(m)


def test_ndshm_dir_redirect(uname, tmp_path):
    from conftest import run_python
    n = uname()
    # Find it by name: other arrays in /dev/shm are listed too (as file:// names).
    code = ("import ndshm, sys; a = ndshm.create(sys.argv[1], 3, full=1.0); "
            "e = [e for e in ndshm.list() if e.name.endswith(sys.argv[1])]; "
            "print(e[0].name, e[0].backend)")
    r = run_python(code, n, env={"NDSHM_DIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["shm://" + n, "file"]
    assert (tmp_path / n).exists() and not os.path.exists("/dev/shm/" + n)
