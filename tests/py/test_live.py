"""Live data across languages and processes: a C writer and a Fortran writer publish
versions (every element equals the version, shape and dtype changing every 5th version)
while Python readers in other processes take snapshots and check each one; waiting and
the lock from Python; ndshm.compat.ndsharray, including ndsharray's own test file."""

import os
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
import time

import numpy as np
import pytest

from conftest import ROOT, build_fortran, env

sys.path.insert(0, str(ROOT / "bindings" / "python"))
import ndshm  # noqa: E402
from ndshm.compat.ndsharray import NdShArray, supported_types  # noqa: E402

CAPACITY = 13 * 17 * 8

# A reader process: SNAPSHOTS snapshots (and at least 50 versions), each checked to be
# uniform with the shape and dtype the writers' pattern gives its version.
READER = textwrap.dedent(
    """
    import sys, time, numpy as np, ndshm
    a = ndshm.attach(sys.argv[1], ro=True)
    want = int(sys.argv[2])
    seen, reshapes, last, n, shape = set(), 0, 0, 0, None
    give_up = time.monotonic() + 60
    while n < want or (len(seen) < 50 and time.monotonic() < give_up):
        x, v = ndshm.read_snapshot(a, timeout=5, return_version=True)
        n += 1
        assert v >= last, (v, last)
        last = v
        seen.add(v)
        reshapes += x.shape != shape
        shape = x.shape
        if v == 0:
            continue
        k = v // 5
        expect = (1 + k % 13, 1 + (k * 7) % 17)
        dtype = np.int32 if k % 7 == 3 else np.float64
        assert x.shape == expect and x.dtype == dtype, (v, x.shape, x.dtype, expect, dtype)
        assert (x == v).all(), ("torn", v, x)
    print(n, len(seen), reshapes)
    """
)


@pytest.fixture(scope="module")
def live_tool(tmp_path_factory, libdir):
    out = tmp_path_factory.mktemp("live")
    exe = out / "live_tool"
    subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'include'}",
                    str(ROOT / "tests/c/live_tool.c"), f"-L{libdir}", "-lndshm", f"-Wl,-rpath,{libdir}",
                    "-o", str(exe)], check=True)
    return exe


@pytest.fixture
def name():
    n = f"shm://ndshm-pylive-{os.getpid()}-{time.monotonic_ns()}"
    yield n
    ndshm.delete(n, missing_ok=True)


def run_readers(name, writer_cmd, count=2, snapshots=50_000):
    """Starts the writer, then `count` Python readers; returns their results."""
    writer = subprocess.Popen(writer_cmd, stdout=subprocess.PIPE, text=True, env=env())
    try:
        assert writer.stdout.readline().strip() == "ready"
        readers = [subprocess.Popen([sys.executable, "-c", READER, name, str(snapshots)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
                   for _ in range(count)]
        results = []
        for r in readers:
            out, err = r.communicate(timeout=120)
            assert r.returncode == 0, err
            results.append(tuple(int(x) for x in out.split()))
        return results
    finally:
        writer.kill()
        writer.wait()


def check(results):
    assert sum(n for n, _, _ in results) >= 100_000
    for n, versions, reshapes in results:
        assert versions >= 50 and reshapes >= 5, results


def test_c_writer_python_readers(live_tool, name):
    ndshm.create(name, (1, 1), capacity=CAPACITY)
    check(run_readers(name, [str(live_tool), "writer", name]))


@pytest.mark.skipif(not shutil.which("gfortran"), reason="gfortran is not installed")
def test_fortran_writer_python_readers(tmp_path, libdir, name):
    exe = build_fortran(tmp_path, libdir, ROOT / "tests/py/fortran_live.f90", "fortran_live")
    ndshm.create(name, (1, 1), order="F", capacity=CAPACITY)
    check(run_readers(name, [str(exe), name, "100000000"]))


def test_wait_is_woken_by_a_publish_from_another_process(name):
    a = ndshm.create(name, (4,), capacity=CAPACITY)
    b = ndshm.attach(name, ro=True)
    with pytest.raises(TimeoutError, match="no version newer than 0"):
        ndshm.wait(b, 0, timeout=0.05)
    code = "import ndshm, sys, numpy as np; a = ndshm.attach(sys.argv[1]); ndshm.publish(a, np.full(4, 9.0))"
    t0 = time.monotonic()
    p = subprocess.Popen([sys.executable, "-c", code, name], env=env())
    assert ndshm.wait(b, 0, timeout=30) == 1
    assert time.monotonic() - t0 < 30
    assert p.wait() == 0
    assert (ndshm.read_snapshot(b) == 9).all()
    assert ndshm.version(a) == 1


def test_writing_and_in_place_reads(name):
    a = ndshm.create(name, (3,))
    with ndshm.writing(a) as w:
        a[:] = 1
    assert w.version == 1 and not w.repair
    with a.base.write() as w:
        a[:] = 2
    assert w.version == 2
    b = ndshm.attach(name, ro=True)
    t = ndshm.read_begin(b)
    total = b.sum()
    assert ndshm.read_valid(b, t) and total == 6
    ndshm.publish(a, np.array([3.0, 3, 3]))
    assert not ndshm.read_valid(b, t)
    out = np.empty(3)
    assert ndshm.read_snapshot(b, out=out) is out and (out == 3).all()
    with pytest.raises(ValueError, match="snapshot has shape"):
        ndshm.publish(a, np.zeros(2))  # fits the 24 bytes: a shape change
        ndshm.read_snapshot(b, out=np.empty(3))


def test_shape_beyond_capacity_names_sizes(name):
    a = ndshm.create(name, (3,), capacity=64)
    with pytest.raises(OSError, match=r"needs 80 B \(80 bytes\), but the array reserves 64 B"):
        ndshm.publish(a, np.zeros(10))
    assert ndshm.version(a) == 0


def test_killed_lock_holder_gives_owner_died(name):
    a = ndshm.create(name, (3,))
    code = ("import ndshm, sys, time; a = ndshm.attach(sys.argv[1]); ndshm.lock(a).acquire(); "
            "print('locked', flush=True); time.sleep(60)")
    p = subprocess.Popen([sys.executable, "-c", code, name], stdout=subprocess.PIPE, text=True, env=env())
    try:
        assert p.stdout.readline().strip() == "locked"
        lk = ndshm.lock(a)
        assert not lk.acquire(blocking=False)
        with pytest.raises(TimeoutError):
            with ndshm.lock(a, timeout=0.05):
                pass
        p.send_signal(signal.SIGKILL)
        t0 = time.monotonic()
        with ndshm.lock(a, timeout=10) as lk:
            noticed = time.monotonic() - t0
            assert lk.owner_died
        assert noticed < 0.5, noticed
        with a.base.lock() as lk:
            assert not lk.owner_died
    finally:
        p.kill()
        p.wait()


# ---------------------------------------------------------------- ndsharray drop-in


def test_ndsharray_semantics(name):
    raw = name[len("shm://"):]
    with pytest.raises(ValueError, match="'r' or 'w' must be specified"):
        NdShArray(raw, r_w="x")
    before = set(os.listdir("/dev/shm"))
    w = NdShArray(raw, r_w="w")  # no array: an empty uint8 array is published
    r = NdShArray(raw, r_w="r")
    assert (w.name, w.access, r.access, r.ndarray_mmap_name) == (raw, "w", "r", raw)
    ok, x = r.read()
    assert ok and x.shape == (0,) and x.dtype == np.uint8
    assert r.read()[0] is False  # nothing newer
    for dims, t in [((72, 128), np.int16), ((4,) * 12, np.float64), ((2400, 1800), np.uint8),
                    ((3, 5), np.complex128), ((2400, 1800), np.complex128), ((2,), bool)]:
        data = (np.random.random(dims) * 100).astype(t)
        w.write(data)
        ok, x = r.read()
        assert ok and x.dtype == data.dtype and np.array_equal(x, data)
        keep = x.copy()
        w.write(np.zeros_like(data))  # later writes do not change a returned array
        assert np.array_equal(x, keep)
        ok2, y = r.read()
        assert ok2 and not y.any()
        ok3, z = r.read()
        assert not ok3 and z is y  # (False, previous array)
        assert r.read_time_ms >= 0
    # One file for the name, however often the size changed.
    assert set(os.listdir("/dev/shm")) - before == {raw}
    assert len(supported_types) == 14
    # Data outlive the writer process: a reader started after it exited reads them.
    code = ("import sys, numpy as np; from ndshm.compat.ndsharray import NdShArray; "
            "NdShArray(sys.argv[1], np.arange(6.0).reshape(2, 3), r_w='w')")
    subprocess.run([sys.executable, "-c", code, raw], check=True, env=env())
    ok, x = NdShArray(raw, r_w="r").read()
    assert ok and np.array_equal(x, np.arange(6.0).reshape(2, 3))


def test_ndsharray_own_test_file(tmp_path):
    """ndsharray's tests/test_ndsharry.py from its PyPI sdist, run against the drop-in."""
    dl = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                         "ndsharray==1.1.4", "-d", str(tmp_path)], capture_output=True, text=True)
    if dl.returncode != 0:
        pytest.skip(f"cannot download the ndsharray sdist (no network?): {dl.stderr[-300:]}")
    (sdist,) = tmp_path.glob("ndsharray-*.tar.gz")
    with tarfile.open(sdist) as tf:
        member = next(m for m in tf.getmembers() if m.name.endswith("tests/test_ndsharry.py"))
        src = tf.extractfile(member).read()
    run = tmp_path / "run"
    (run / "ndsharray").mkdir(parents=True)
    (run / "ndsharray" / "__init__.py").write_text(
        "from ndshm.compat.ndsharray import NdShArray, supported_types  # noqa: F401\n")
    (run / "test_ndsharry.py").write_bytes(src)
    before = set(os.listdir("/dev/shm"))
    e = env()
    e["PYTHONPATH"] = f"{run}:{e['PYTHONPATH']}"
    try:
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_ndsharry.py"],
                           cwd=run, capture_output=True, text=True, env=e, timeout=600)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        assert "1 passed" in r.stdout
        # Two names, two files (ndsharray's own run leaves 116).
        assert set(os.listdir("/dev/shm")) - before <= {"testing_ndsharray", "testing_ndsharray_copy"}
    finally:
        for n in ("testing_ndsharray", "testing_ndsharray_copy"):
            ndshm.delete(n, missing_ok=True)


@pytest.mark.skipif(not shutil.which("g++"), reason="g++ is not installed")
def test_cpp_wrapper(tmp_path, libdir, name):
    exe = tmp_path / "cpp_live"
    subprocess.run(["g++", "-std=c++20", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'include'}",
                    str(ROOT / "tests/py/cpp_live.cpp"), f"-L{libdir}", "-lndshm", f"-Wl,-rpath,{libdir}",
                    "-o", str(exe)], check=True)
    r = subprocess.run([str(exe), name], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["3 3 6 5 3", "timeout"]
