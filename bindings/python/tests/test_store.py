"""Growing arrays (ndshm.append / resize / refresh) and the array store (ndshm.Store),
with real processes where other processes matter."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import ndshm
from conftest import PKG_PATH, run_python


@pytest.fixture
def store_dir(tmp_path):
    d = tmp_path / "store"
    yield d
    # Shared-memory copies the test made, also when it failed.
    if d.exists():
        s = ndshm.Store(d, readonly=True)
        for e in s.list():
            s.unload(e.name)
        s.close()
    shutil.rmtree(d, ignore_errors=True)


# -- growth ------------------------------------------------------------------------


def test_append_resize_refresh(uname):
    n = uname("grow")
    a = ndshm.create(n, (0, 4), dtype="f8")
    b = ndshm.attach(n, ro=True)
    old = b
    for i in range(1000):
        a = ndshm.append(a, np.full((1, 4), i, "f8"))
    a = ndshm.append(a, np.full(4, 1000.0))  # one row without the row axis
    assert a.shape == (1001, 4)
    assert (a[:, 0] == np.arange(1001)).all()
    b = ndshm.refresh(b)
    assert b.shape == (1001, 4) and (b == a).all()
    assert old.shape == (0, 4), "arrays from before keep their shape"
    assert ndshm.refresh(b) is b, "nothing changed"
    a = ndshm.resize(a, 3)
    assert a.shape == (3, 4)
    a = ndshm.resize(a, 5)
    assert (a[3:] == 0).all(), "new rows are zeros"
    assert ndshm.refresh(b).shape == (5, 4)
    ndshm.delete(n)


def test_growth_refusals_are_named(uname):
    n = uname("grow-bad")
    a = ndshm.create(n, (2, 3), dtype="f8")
    with pytest.raises(TypeError, match="float32"):
        ndshm.append(a, np.zeros((1, 3), "f4"))
    with pytest.raises(ValueError, match="rows of shape"):
        ndshm.append(a, np.zeros((1, 4)))
    with pytest.raises(ValueError, match="negative"):
        ndshm.resize(a, -1)
    with pytest.raises(PermissionError):
        ndshm.append(ndshm.attach(n, ro=True), np.zeros((1, 3)))
    f = ndshm.create(n, (2, 3), order="F", force=True)
    with pytest.raises(ValueError, match="C-order"):
        ndshm.append(f, np.zeros((1, 3)))
    with pytest.raises(TypeError):
        ndshm.append(np.zeros((2, 3)), np.zeros((1, 3)))
    ndshm.delete(n)


def test_appends_from_processes_are_whole_and_seen_after_refresh(uname):
    n = uname("grow-procs")
    ndshm.create(n, (0, 8), dtype="i8")
    code = """
import sys, numpy as np, ndshm
a = ndshm.attach(sys.argv[1])
me = int(sys.argv[2])
for i in range(500):
    a = ndshm.append(a, np.full((1, 8), me * 100000 + i, "i8"))
"""
    env = dict(os.environ, PYTHONPATH=PKG_PATH)
    kids = [subprocess.Popen([sys.executable, "-c", code, n, str(k)], env=env, stderr=subprocess.PIPE, text=True)
            for k in (1, 2)]
    for k in kids:
        assert k.wait(timeout=120) == 0, k.stderr.read()
    a = ndshm.attach(n)
    assert a.shape == (1000, 8)
    assert (a == a[:, :1]).all(), "every row whole"
    for k in (1, 2):
        mine = a[:, 0][a[:, 0] // 100000 == k] % 100000
        assert (mine == np.arange(500)).all(), "each process's rows, in its order"
    ndshm.delete(n)


# -- the store ---------------------------------------------------------------------


def test_store_save_append_load_list_delete(store_dir):
    s = ndshm.Store(store_dir)
    assert s.list() == [] and "x" not in s and len(s) == 0
    x = np.arange(12.0).reshape(4, 3)
    s.save("x", x)
    s.save("f", np.asfortranarray(x))
    assert s.append("log", np.zeros((2, 5), "i4")) == 2
    assert s.append("log", np.ones((3, 5), "i4")) == 5
    with pytest.raises(TypeError, match="int64"):
        s.append("log", np.ones((1, 5), "i8"))
    with pytest.raises(ValueError):
        s.append("log", np.ones((1, 6), "i4"))
    assert [(e.name, e.shape, e.order, e.format) for e in s.list()] == [
        ("f", (4, 3), "F", "ndshm"), ("log", (5, 5), "C", "ndshm"), ("x", (4, 3), "C", "ndshm")]
    assert "x" in s and sorted(s) == ["f", "log", "x"]
    # memmap: in place, no copy; rows are a view.
    m = s.load("x", rows=(1, 3))
    assert (m == x[1:3]).all() and ndshm.is_shared(m)
    assert (s["f"] == x).all() and s["f"].flags.f_contiguous
    # memory: a private copy.
    c = s.load("x", "memory", rows=slice(0, 2))
    assert (c == x[:2]).all() and not ndshm.is_shared(c)
    # memory of a Fortran-order array: whole (read with pread), and rows (copied from the
    # mapping: they are not contiguous in the file).
    ff = s.load("f", "memory")
    assert (ff == x).all() and ff.flags.f_contiguous and not ndshm.is_shared(ff)
    assert (s.load("f", "memory", rows=(1, 3)) == x[1:3]).all()
    with pytest.raises(KeyError):
        s.load("nope", "memory")
    with pytest.raises(ValueError):
        s.load("x", "memory", rows=(2, 9))
    # shm: once, shared.
    a = s.load("x", "shm", rows=(2, 4))
    b = s.load("x", "shm", rows=(2, 4))
    assert (a == x[2:4]).all() and a.base.name == b.base.name
    assert s.unload("x") == 1
    for bad in ("mmap", "shared_memory", ""):
        with pytest.raises(ValueError, match="mode"):
            s.load("x", bad)
    with pytest.raises(ValueError):
        s.load("x", rows=(3, 9))
    with pytest.raises(KeyError):
        s.load("nope")
    for bad in ("a__b", "Loader.json", "a/b", ""):
        with pytest.raises(ValueError):
            s.save(bad, x)
    # Metadata in the header: a renamed file still opens.
    os.rename(store_dir / "x", store_dir / "moved")
    assert (ndshm.Store(store_dir).load("moved") == x).all()
    s.delete("moved")
    with pytest.raises(KeyError):
        s.delete("moved")
    s.close()


def test_readonly_store(store_dir):
    with pytest.raises(FileNotFoundError):
        ndshm.Store(store_dir, readonly=True)
    w = ndshm.Store(store_dir)
    w.save("x", np.arange(3))
    r = ndshm.Store(store_dir, readonly=True)
    for f in (lambda: r.save("y", np.arange(3)), lambda: r.append("x", np.arange(3)[:, None][:1, 0]),
              lambda: r.delete("x")):
        with pytest.raises(PermissionError):
            f()
    m = r.load("x")
    assert not m.flags.writeable and (m == np.arange(3)).all()


def _isf_write(d, name, arr):
    dims = "_".join(str(n) for n in arr.shape)
    (d / f"{name}__{dims}__{arr.dtype.name}").write_bytes(np.ascontiguousarray(arr).tobytes())


def test_store_opens_an_isf_directory_and_keeps_it_readable_by_isf(store_dir):
    store_dir.mkdir()
    v = np.arange(30.0).reshape(10, 3)
    _isf_write(store_dir, "voltage", v)
    (store_dir / "Loader.json").write_text("{}")
    s = ndshm.Store(store_dir)
    assert s.format == "isf"
    assert [(e.name, e.shape, e.format) for e in s.list()] == [("voltage", (10, 3), "isf")]
    assert (s.load("voltage", rows=(2, 4)) == v[2:4]).all()
    assert (s.load("voltage", "memory") == v).all()
    assert (s.load("voltage", "shm", rows=(0, 5)) == v[:5]).all()
    assert s.unload("voltage") == 1
    assert s.append("voltage", np.ones((2, 3))) == 12
    s.save("new", np.arange(4, dtype="i4"))  # an ISF directory gets ISF files
    files = sorted(os.listdir(store_dir))
    assert files == ["Loader.json", "new__4__int32", "voltage__12_3__float64"], files
    # Byte for byte what ISF reads: raw C-order data under the name's shape.
    raw = np.fromfile(store_dir / "voltage__12_3__float64", "f8").reshape(12, 3)
    assert (raw[:10] == v).all() and (raw[10:] == 1).all()
    with pytest.raises(TypeError):
        s.append("voltage", np.ones((1, 3), "f4"))


def test_stores_in_two_directories_never_share_a_copy(tmp_path):
    s1, s2 = ndshm.Store(tmp_path / "one"), ndshm.Store(tmp_path / "two")
    try:
        s1.save("x", np.ones(4))
        s2.save("x", np.zeros(4))
        assert s1.load("x", "shm").sum() == 4 and s2.load("x", "shm").sum() == 0
    finally:
        s1.unload("x")
        s2.unload("x")


def test_shm_loads_from_many_processes_copy_once(store_dir):
    s = ndshm.Store(store_dir)
    s.save("big", np.arange(1 << 20, dtype="f8"))
    code = """
import sys, ndshm
a = ndshm.Store(sys.argv[1], readonly=True).load("big", "shm", rows=(0, 1000))
print(a.base.name, float(a.sum()))
"""
    env = dict(os.environ, PYTHONPATH=PKG_PATH)
    kids = [subprocess.Popen([sys.executable, "-c", code, str(store_dir)], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [k.communicate(timeout=120) for k in kids]
    assert all(k.returncode == 0 for k in kids), outs
    lines = {o[0].strip() for o in outs}
    assert len(lines) == 1, lines
    assert lines.pop().endswith(str(float(sum(range(1000)))))
    assert s.unload("big") == 1


def test_store_append_from_a_killed_process_is_all_or_nothing(store_dir):
    """A Python appender killed at random points: the next open succeeds and every row
    up to the length is whole."""
    s = ndshm.Store(store_dir)
    s.append("t", np.zeros((1, 64), "i8"))
    code = """
import sys, numpy as np, ndshm
s = ndshm.Store(sys.argv[1])
n = s.append("t", np.zeros((0, 64), "i8"))
print("ready", flush=True)
while True:
    n = s.append("t", np.full((1, 64), n, "i8"))
"""
    env = dict(os.environ, PYTHONPATH=PKG_PATH)
    rng = np.random.default_rng(1)
    for _ in range(10):
        p = subprocess.Popen([sys.executable, "-c", code, str(store_dir)], env=env, stdout=subprocess.PIPE,
                             text=True)
        assert p.stdout.readline().strip() == "ready"
        import time

        time.sleep(rng.uniform(0, 0.05))
        p.kill()
        p.wait()
        a = ndshm.Store(store_dir).load("t")
        assert (a == np.arange(a.shape[0])[:, None]).all(), "rows whole, in order"
    assert a.shape[0] > 1


def test_run_python_helper_is_used(uname):
    # The store is importable from a child as documented.
    r = run_python("import ndshm; print(ndshm.Store.__name__)")
    assert r.returncode == 0 and r.stdout.strip() == "Store", r.stderr
