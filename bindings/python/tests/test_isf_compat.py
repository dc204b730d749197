"""ndshm.compat.isf (ISF's SharedNumpyStore) and ndshm._isf (the raw-file rules).

ISF itself (mpinb/in_silico_framework) is not on PyPI, so the directories ISF would
write are written here by its rules (`isf_write`: ``arr.tofile(NAME__D0_..._Dn__DTYPE)``)
and what ndshm writes is checked byte for byte against the same rules. Each ISF bug the
drop-in fixes has a test named after it (test_bug_*). Shared-memory copies go to a fresh
JOB_SHMTMPDIR subdirectory of /dev/shm per test, removed afterwards, also on failure.
"""

import multiprocessing as mp
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

import ndshm
from conftest import PKG_PATH, run_python
from ndshm import _isf
from ndshm.compat import isf

FORK = mp.get_context("fork")


def isf_fname(name, arr):
    return f"{name}__{'_'.join(map(str, arr.shape))}__{arr.dtype}"


def isf_write(d, name, arr):
    """What ISF's save leaves: the raw bytes under NAME__SHAPE__DTYPE."""
    arr.tofile(os.path.join(d, isf_fname(name, arr)))
    return os.path.join(d, isf_fname(name, arr))


@pytest.fixture(autouse=True)
def shmdir(monkeypatch):
    """A job-private shared-memory directory (a subdirectory, as SLURM makes) for every test."""
    d = tempfile.mkdtemp(prefix="ndshm-isf-test-", dir="/dev/shm")
    monkeypatch.delenv("NDSHM_DIR", raising=False)
    monkeypatch.setenv("JOB_SHMTMPDIR", d)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def store_dir():
    d = tempfile.mkdtemp(prefix="ndshm-isf-store-")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _rows(start, n, width=3, dtype=np.int64):
    """Rows whose every element is its row number: any misplaced byte shows."""
    return np.repeat(np.arange(start, start + n, dtype=dtype)[:, None], width, axis=1)


def _check_rows(a, width=3):
    expect = _rows(0, a.shape[0], width, a.dtype)
    assert np.array_equal(a, expect), "rows out of place"


# --- format --------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["int64", "float32", "bool", "complex128", "uint8", ">i4", "<U3",
                                   "datetime64[ns]", "S2"])
def test_save_writes_isf_bytes(store_dir, dtype):
    a = (np.arange(12) % 7).astype(dtype).reshape(4, 3)
    isf.SharedNumpyStore(store_dir).save(np.asfortranarray(a), "arr")
    assert os.listdir(store_dir) == [isf_fname("arr", a)]
    with open(os.path.join(store_dir, isf_fname("arr", a)), "rb") as f:
        assert f.read() == a.tobytes(order="C")


def test_reads_a_directory_isf_wrote(store_dir):
    a = np.arange(30, dtype=np.float64).reshape(10, 3)
    isf_write(store_dir, "voltage", a)
    isf_write(store_dir, "spikes", np.arange(5, dtype=np.int32))
    # ISF's leftovers and database files: none of them is an array, none shadows one.
    np.zeros((7, 3)).tofile(os.path.join(store_dir, "voltage__7_3__float64.saving"))
    for extra in ("Loader.pickle", "Loader.json", "metadata.json"):
        open(os.path.join(store_dir, extra), "wb").close()
    s = isf.SharedNumpyStore(store_dir)
    assert sorted(s._files) == ["spikes", "voltage"]
    assert np.array_equal(s.load("voltage", mode="memory"), a)
    m = s.load("voltage", mode="memmap", start_row=2, end_row=5)
    assert isinstance(m, np.memmap) and not m.flags.writeable and np.array_equal(m, a[2:5])
    sh = s.load("voltage", start_row=4, allow_create_shm=True)
    assert ndshm.is_shared(sh) and np.array_equal(sh, a[4:])
    assert np.array_equal(s.load("spikes", mode="memory", end_row=2), [0, 1])
    assert s.get_expected_file_length("voltage") == a.nbytes
    with pytest.raises(isf.NotInStoreError):
        s.load("missing")
    with pytest.raises(ValueError, match="rows"):
        s.load("voltage", mode="memory", start_row=5, end_row=11)
    s.close()


def test_star_import_and_private_api_used_by_isf_tests():
    ns = {}
    exec("from ndshm.compat.isf import *", ns)
    for n in ("os", "tempfile", "shutil", "np", "SharedNumpyStore", "Uninterruptible", "shared_array_from_numpy",
              "shared_array_from_disk", "memmap_from_disk", "shared_array_from_shared_mem_name"):
        assert n in ns, n
    d = ns["tempfile"].mkdtemp()
    try:
        s = ns["SharedNumpyStore"](d)
        s.save(np.array([[1, 2, 3], [4, 5, 6]]), "testarray")
        fname, shape, dtype = s._get_metadata_from_fname(s._files["testarray"])
        assert (fname, shape, dtype) == ("testarray", (2, 3), "int64")
        assert s._get_metadata_from_name("testarray") == ("testarray__2_3__int64", (2, 3), "int64")
        assert ns["os"].path.exists(ns["os"].path.join(d, s._files["testarray"]))
    finally:
        ns["shutil"].rmtree(d)


def test_isf_robustness_trailing_garbage(store_dir):
    """ISF's test_robustness: random bytes after the data are ignored and overwritten."""
    s = isf.SharedNumpyStore(store_dir)
    a1, a2 = np.array([[1, 2, 3], [4, 5, 6]]), np.array([[7, 8, 9], [10, 11, 12]])
    s.save(a1, "testarray")
    for arr in (a2, None):
        with open(os.path.join(store_dir, s._files["testarray"]), "ab") as f:
            f.write(os.urandom(10))
        if arr is not None:
            s.append_save(arr, "testarray")
            # The append cut the garbage: the file is exactly as long as its name says.
            assert os.path.getsize(os.path.join(store_dir, s._files["testarray"])) == 4 * 3 * 8
    assert np.array_equal(s.load("testarray", allow_create_shm=True), np.vstack((a1, a2)))
    assert np.array_equal(s.load("testarray", mode="memmap"), np.vstack((a1, a2)))
    s.close()


def test_append_without_flush_leaves_array_unchanged(store_dir):
    s = isf.SharedNumpyStore(store_dir)
    a1 = _rows(0, 2)
    s.save(a1, "t")
    s.append_save(_rows(2, 2), "t", autoflush=False)
    s.append_save(_rows(4, 1), "t", autoflush=False)  # ISF allowed one pending append
    assert np.array_equal(s.load("t", allow_create_shm=True), a1)
    assert np.array_equal(isf.SharedNumpyStore(store_dir).load("t", mode="memory"), a1)
    s.flush()
    assert os.listdir(store_dir) == ["t__5_3__int64"]
    _check_rows(s.load("t", allow_create_shm=True))
    s.close()


def test_save_replaces_other_shapes(store_dir):
    isf_write(store_dir, "x", np.zeros((2, 2)))
    s = isf.SharedNumpyStore(store_dir)
    s.save(np.ones(5, np.int8), "x")
    assert os.listdir(store_dir) == ["x__5__int8"]  # ISF left x__2_2__float64 behind
    assert np.array_equal(isf.SharedNumpyStore(store_dir).load("x", mode="memory"), np.ones(5, np.int8))


def test_name_rules(store_dir):
    s = isf.SharedNumpyStore(store_dir)
    a = np.zeros(3)
    for bad in ("a__b", "Loader.pickle", "Loader.json", "ends_", "", "x/y", ".ndshm-x"):
        with pytest.raises(isf.StoreNameError):
            s.save(a, bad)
        with pytest.raises(isf.StoreNameError):
            s.append_save(a, bad)
    with pytest.raises(isf.UnsupportedArrayError):
        s.save(np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")]), "structured")
    with pytest.raises(isf.UnsupportedArrayError):
        s.save(np.array([None, 1], dtype=object), "objects")
    assert os.listdir(store_dir) == []


def test_a_file_shorter_than_its_name_is_an_error(store_dir):
    p = isf_write(store_dir, "short", np.arange(4.0))
    os.truncate(p, 20)
    s = isf.SharedNumpyStore(store_dir)
    for mode in isf.MODES:
        with pytest.raises(ndshm.FormatError, match="20 bytes"):
            s.load("short", mode=mode, allow_create_shm=True)
    with pytest.raises(ndshm.FormatError):
        s.append_save(np.arange(2.0), "short")
    with pytest.raises(ndshm.FormatError):
        isf.shared_array_from_disk(p, name="short-copy")  # ISF loaded zeros silently


# --- the ISF bugs ------------------------------------------------------------------------


def test_bug_load_accepted_any_mode(store_dir):
    s = isf.SharedNumpyStore(store_dir)
    s.save(np.arange(3), "a")
    with pytest.raises(isf.ModeError, match="typo"):
        s.load("a", mode="typo", allow_create_shm=True)
    assert os.listdir(os.environ["JOB_SHMTMPDIR"]) == []  # and it made no copy


def _mappings_of(path):
    """How many mappings of this file the process has (by inode: the loader maps the
    file before giving it its name)."""
    ino = os.stat(path).st_ino
    with open("/proc/self/maps") as f:
        return sum(1 for line in f if len(line.split()) > 5 and line.split()[4] == str(ino))


def test_bug_cache_missed_so_every_load_mapped_again(store_dir, shmdir):
    s = isf.SharedNumpyStore(store_dir)
    s.save(_rows(0, 10), "a")
    first = s.load("a", allow_create_shm=True)
    (seg,) = os.listdir(shmdir)
    again = s.load("a")
    assert again is first
    assert _mappings_of(os.path.join(shmdir, seg)) == 1
    part = s.load("a", start_row=2, end_row=4, allow_create_shm=True)
    assert part is not first and np.array_equal(part, _rows(2, 2))
    assert s.load("a", start_row=2, end_row=4) is part
    assert len(os.listdir(shmdir)) == 2
    s.close()
    _check_rows(first)  # still mapped: arrays own their mapping (ISF's segfaulted)


def test_bug_stores_in_different_directories_shared_copies(store_dir, shmdir):
    other = tempfile.mkdtemp(prefix="ndshm-isf-store2-")
    try:
        s1, s2 = isf.SharedNumpyStore(store_dir), isf.SharedNumpyStore(other)
        s1.save(np.full(4, 1.0), "voltage")
        s2.save(np.full(4, 2.0), "voltage")
        assert np.all(s1.load("voltage", allow_create_shm=True) == 1.0)
        with pytest.raises(isf.NotInSharedMemoryError):
            s2.load("voltage")  # ISF attached store 1's copy here
        assert np.all(s2.load("voltage", allow_create_shm=True) == 2.0)
        segs = os.listdir(shmdir)
        assert len(segs) == 2 and all(f.endswith("voltage__0_4") for f in segs)
        s1.close()
        s2.close()
        # The directory alone tells copies apart: the same file (a hard link: same name,
        # inode and time) in two stores still gets two copies, one per store.
        third = os.path.join(other, "linked")
        os.mkdir(third)
        os.link(os.path.join(store_dir, "voltage__4__float64"), os.path.join(third, "voltage__4__float64"))
        s1, s3 = isf.SharedNumpyStore(store_dir), isf.SharedNumpyStore(third)
        s1.load("voltage", allow_create_shm=True)
        with pytest.raises(isf.NotInSharedMemoryError):
            s3.load("voltage")
        s1.close()
    finally:
        shutil.rmtree(other)


def test_changed_file_gets_a_fresh_copy(store_dir):
    s = isf.SharedNumpyStore(store_dir)
    s.save(np.full(3, 1), "a")
    assert np.all(s.load("a", allow_create_shm=True) == 1)
    s.save(np.full(3, 2), "a")  # same name, shape and dtype
    assert np.all(s.load("a", allow_create_shm=True) == 2)  # ISF served the old copy
    other = isf.SharedNumpyStore(store_dir)
    other.append_save(np.full(1, 3), "a")
    assert np.array_equal(s.load("a", allow_create_shm=True), [2, 2, 2, 3])
    s.close()


def test_bug_job_shmtmpdir_subdirectory_ignored_on_create(store_dir, shmdir):
    assert os.path.dirname(shmdir) == "/dev/shm"
    s = isf.SharedNumpyStore(store_dir)
    s.save(np.arange(6), "a")
    s.load("a", allow_create_shm=True)
    (seg,) = os.listdir(shmdir)  # created in the subdirectory ...
    assert not os.path.exists(os.path.join("/dev/shm", seg))
    s.close()  # ... and removed from it (ISF's close raised FileNotFoundError)
    assert os.listdir(shmdir) == []
    shm, arr = isf.shared_array_from_numpy(np.arange(3), name="/isf-plain-name")
    assert os.path.exists(os.path.join(shmdir, "isf-plain-name"))
    shm.unlink()
    assert os.listdir(shmdir) == []


CHILD_LOADS = """
import sys
from ndshm.compat import isf
s = isf.SharedNumpyStore(sys.argv[1])
a = s.load('a', allow_create_shm=True)
print(int(a.sum()), len(s._created))
"""


def test_bug_close_unlinked_copies_other_processes_created(store_dir, shmdir):
    s = isf.SharedNumpyStore(store_dir)
    s.save(np.arange(10), "a")
    r = run_python(CHILD_LOADS, store_dir)  # another process creates the copy and exits
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["45", "1"]
    (seg,) = os.listdir(shmdir)
    got = s.load("a")  # attach only
    s.close()
    assert os.listdir(shmdir) == [seg], "close() deleted a copy another process created"
    assert got.sum() == 45
    # The reverse: this store creates, another process attaches and closes.
    s.load("a", start_row=1, allow_create_shm=True)
    code = """
import sys
from ndshm.compat import isf
s = isf.SharedNumpyStore(sys.argv[1])
print(int(s.load('a', start_row=1).sum())); s.close()
"""
    r = run_python(code, store_dir)
    assert r.returncode == 0 and r.stdout.strip() == "45", r.stderr
    assert len(os.listdir(shmdir)) == 2
    s.close()
    assert os.listdir(shmdir) == [seg]


def test_bug_append_did_not_check_dtype(store_dir):
    s = isf.SharedNumpyStore(store_dir)
    s.save(np.arange(6, dtype=np.int64).reshape(2, 3), "a")
    path = os.path.join(store_dir, "a__2_3__int64")
    before = open(path, "rb").read()
    with pytest.raises(isf.AppendMismatchError, match="int32"):
        s.append_save(np.zeros((2, 3), np.int32), "a")
    with pytest.raises(isf.AppendMismatchError, match="int32"):
        s.append_save(np.zeros((2, 3), np.int32), "a", autoflush=False)
    with pytest.raises(isf.AppendMismatchError, match="dimensions"):
        s.append_save(np.zeros((2, 4), np.int64), "a")
    with pytest.raises(isf.AppendMismatchError, match="dimensions"):
        s.append_save(np.zeros(3, np.int64), "a")
    assert os.listdir(store_dir) == ["a__2_3__int64"] and open(path, "rb").read() == before


def test_bug_crash_between_append_and_rename(store_dir):
    """The state an append killed before its rename leaves: rows beyond the name's length."""
    s = isf.SharedNumpyStore(store_dir)
    s.save(_rows(0, 3), "a")
    path = os.path.join(store_dir, "a__3_3__int64")
    with open(path, "ab") as f:
        f.write(_rows(3, 2).tobytes()[:-5])  # a torn second row
    fresh = isf.SharedNumpyStore(store_dir)  # the next open succeeds
    for mode in isf.MODES:
        _check_rows(fresh.load("a", mode=mode, allow_create_shm=True))
        assert fresh.load("a", mode=mode).shape == (3, 3)
    fresh.append_save(_rows(3, 1), "a")
    assert os.listdir(store_dir) == ["a__4_3__int64"]
    assert os.path.getsize(os.path.join(store_dir, "a__4_3__int64")) == 4 * 3 * 8
    _check_rows(fresh.load("a", mode="memory"))
    fresh.close()


def test_bug_0d_arrays_saved_but_never_loaded(store_dir):
    s = isf.SharedNumpyStore(store_dir)
    with pytest.raises(isf.UnsupportedArrayError, match="0-d"):
        s.save(np.float64(2.5), "scalar")
    with pytest.raises(isf.UnsupportedArrayError, match="0-d"):
        s.append_save(np.array(2.5), "scalar")
    assert os.listdir(store_dir) == []
    np.array(7.5).tofile(os.path.join(store_dir, "scalar____float64"))  # what ISF wrote
    s.update()
    assert s._get_metadata_from_name("scalar") == ("scalar____float64", (), "float64")
    for mode in isf.MODES:
        got = s.load("scalar", mode=mode, allow_create_shm=True)
        assert got.shape == () and got == 7.5
    with pytest.raises(ValueError, match="0-d"):
        s.load("scalar", mode="memory", start_row=0)
    s.close()


# --- processes: locking, crashes, concurrent loaders ---------------------------------------


def _appender(path, who, count, q):
    try:
        d = _isf.Directory(path)
        for i in range(count):
            d.append("log", [np.array([[who, i, 0], [who, i, 1]], np.int64)])
        q.put(None)
    except BaseException as e:  # noqa: BLE001 - reported to the test
        q.put(repr(e))


@pytest.mark.parametrize("directory_flock", [True, False], ids=["flock-dir", "lock-file"])
def test_concurrent_appenders_in_processes(store_dir, monkeypatch, directory_flock):
    monkeypatch.setattr(_isf, "_DIRECTORY_FLOCK", directory_flock)
    isf.SharedNumpyStore(store_dir).save(np.zeros((0, 3), np.int64), "log")
    q = FORK.Queue()
    procs = [FORK.Process(target=_appender, args=(store_dir, w, 30, q)) for w in range(4)]
    for p in procs:
        p.start()
    errors = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
    assert errors == [None] * 4
    assert (os.path.exists(os.path.join(store_dir, _isf.LOCK_FILE))) == (not directory_flock)
    got = isf.SharedNumpyStore(store_dir).load("log", mode="memory")
    assert got.shape == (4 * 30 * 2, 3)
    # Every append's two rows are adjacent, and each appears exactly once.
    pairs = got.reshape(-1, 2, 3)
    assert np.array_equal(pairs[:, :, 2], np.tile([0, 1], (len(pairs), 1)))
    assert np.all(pairs[:, 0, :2] == pairs[:, 1, :2])
    assert sorted(map(tuple, pairs[:, 0, :2].tolist())) == [(w, i) for w in range(4) for i in range(30)]


APPEND_ONE = """
import sys
import numpy as np
from ndshm import _isf
print('start', flush=True)
_isf.Directory(sys.argv[1]).append('a', [np.full((1, 3), 1, np.int64)])
print('appended', flush=True)
"""


def test_the_lock_serialises_writers(store_dir):
    s = isf.SharedNumpyStore(store_dir)
    s.save(_rows(0, 1), "a")
    # A separate program, not a fork: a forked child would share this lock's open file.
    with _isf.directory_lock(store_dir):
        p = subprocess.Popen([sys.executable, "-c", APPEND_ONE, store_dir], stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=PKG_PATH))
        try:
            assert p.stdout.readline().strip() == "start"
            time.sleep(0.5)
            assert p.poll() is None and os.listdir(store_dir) == ["a__1_3__int64"], "append ran under the lock"
        except BaseException:
            p.kill()
            raise
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 0 and out.strip() == "appended"
    _check_rows(s.load("a", mode="memory"))


def _append_forever(path, ready):
    d = _isf.Directory(path)
    rng = random.Random(os.getpid())
    ready.set()
    while True:
        n = d.scan()["big"].shape[0]
        d.append("big", [_rows(n, rng.randint(1, 400), width=256)])


def test_sigkill_during_appends_many_rounds(store_dir):
    """A process killed at random points in appends leaves the array with or without
    each append's rows, never a name covering unwritten rows; the next open succeeds."""
    isf.SharedNumpyStore(store_dir).save(_rows(0, 1, width=256), "big")
    rng = random.Random(12345)
    torn = 0
    for _ in range(60):
        ready = FORK.Event()
        p = FORK.Process(target=_append_forever, args=(store_dir, ready))
        p.start()
        assert ready.wait(60)
        time.sleep(rng.uniform(0, 0.03))
        os.kill(p.pid, signal.SIGKILL)
        p.join(60)
        assert p.exitcode == -signal.SIGKILL
        s = isf.SharedNumpyStore(store_dir)  # the next open succeeds
        fname, shape, _ = s._get_metadata_from_name("big")
        size = os.path.getsize(os.path.join(store_dir, fname))
        assert size >= s.get_expected_file_length("big"), "the name covers bytes never written"
        torn += size > s.get_expected_file_length("big")
        assert [f for f in os.listdir(store_dir) if not f.startswith(".")] == [fname]
        _check_rows(s.load("big", mode="memory"), width=256)
        last = s.load("big", mode="memmap", start_row=shape[0] - 1)
        assert np.all(last == shape[0] - 1)
        # The next writer cuts what the killed one left beyond the name and goes on.
        s.append_save(_rows(shape[0], 1, width=256), "big")
        fname = s._files["big"]
        assert os.path.getsize(os.path.join(store_dir, fname)) == s.get_expected_file_length("big")
    # Evidence the kills hit appends in flight (typically over half of them here).
    assert torn > 0, "no kill landed inside an append: the test did not test anything"


def _read_while_appending(path, stop, q):
    try:
        s = isf.SharedNumpyStore(path)
        n = 0
        while not stop.is_set():
            for mode in ("memory", "memmap"):
                _check_rows(s.load("a", mode=mode))
            n += 1
        q.put(n)
    except BaseException as e:  # noqa: BLE001 - reported to the test
        q.put(repr(e))


def test_readers_during_appends_and_saves(store_dir):
    s = isf.SharedNumpyStore(store_dir)
    s.save(_rows(0, 1), "a")
    stop, q = FORK.Event(), FORK.Queue()
    readers = [FORK.Process(target=_read_while_appending, args=(store_dir, stop, q)) for _ in range(2)]
    for p in readers:
        p.start()
    for i in range(1, 200):
        if i % 50 == 0:
            # Replace the file under the readers (a new file, renamed over the name).
            s.save(np.vstack([s.load("a", mode="memory"), _rows(i, 1)]), "a")
        else:
            s.append_save(_rows(i, 1), "a")
    stop.set()
    results = [q.get(timeout=60) for _ in readers]
    for p in readers:
        p.join(60)
    assert all(isinstance(r, int) and r > 0 for r in results), results


def _load_at_once(path, barrier, q):
    try:
        s = isf.SharedNumpyStore(path)
        barrier.wait(60)
        a = s.load("a", allow_create_shm=True)
        q.put((int(a.sum()), len(s._created)))
    except BaseException as e:  # noqa: BLE001 - reported to the test
        q.put(repr(e))


def test_concurrent_loaders_load_once(store_dir, shmdir):
    s = isf.SharedNumpyStore(store_dir)
    a = np.arange(2_000_000, dtype=np.float64)
    s.save(a, "a")
    barrier, q = FORK.Barrier(6), FORK.Queue()
    procs = [FORK.Process(target=_load_at_once, args=(store_dir, barrier, q)) for _ in range(6)]
    for p in procs:
        p.start()
    results = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
    assert sorted(results) == [(int(a.sum()), 0)] * 5 + [(int(a.sum()), 1)], results
    assert len(os.listdir(shmdir)) == 1


# --- module functions --------------------------------------------------------------------


def test_module_functions(store_dir, shmdir):
    shm, arr = isf.shared_array_from_numpy(np.array([1, 2, 3]))  # ISF asserted without a name
    assert shm.name.startswith("isf-") and shm.size == 24 and bytes(shm.buf[:8]) == (1).to_bytes(8, "little")
    shm2, same = isf.shared_array_from_shared_mem_name("/" + shm.name, shape=(3,), dtype=np.int64)
    same[0] = 9
    assert arr[0] == 9
    with pytest.raises(ValueError):
        isf.shared_array_from_shared_mem_name(shm.name, shape=(4,))
    with pytest.raises(FileExistsError):
        isf.shared_array_from_numpy(np.zeros(1), name=shm.name)
    shm2.close()
    assert same[0] == 9  # close() never unmaps under a live array
    shm.unlink()
    with pytest.raises(FileNotFoundError):
        shm2.unlink()
    empty, e = isf.shared_array_from_numpy(np.zeros((0, 4)))  # ISF leaked a segment and raised
    assert e.shape == (0, 4)
    empty.unlink()

    a = np.arange(20, dtype=np.float32).reshape(5, 4)
    path = isf_write(store_dir, "m", a)
    with open(path, "ab") as f:
        f.write(b"junk")  # trailing bytes, as an interrupted append leaves
    m = isf.memmap_from_disk(path, start_row=1, end_row=3)  # ISF's raised NameError
    assert np.array_equal(m, a[1:3]) and not m.flags.writeable
    assert np.array_equal(isf.memmap_from_disk(path, shape=(20,), dtype=np.float32), a.ravel())
    shm3, d = isf.shared_array_from_disk(path, name="/from-disk", start_row=3)
    assert np.array_equal(d, a[3:]) and os.path.exists(os.path.join(shmdir, "from-disk"))
    with pytest.raises(FileExistsError):
        isf.shared_array_from_disk(path, a.shape, a.dtype, name="from-disk")
    shm3.unlink()

    made = isf.SharedMemory(create=True, size=16)
    made.buf[:2] = b"hi"
    import pickle

    again = pickle.loads(pickle.dumps(made))  # re-attaches by name
    assert bytes(again.buf[:2]) == b"hi" and again.size == 16 and "size=16" in repr(again)
    again.unlink()
    with pytest.raises(FileNotFoundError):
        isf.SharedMemory(made.name)
    assert os.listdir(shmdir) == []


def _uninterruptible_child(w):
    with isf.Uninterruptible():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)
        os.write(w, b"finished the block")
    os.write(w, b" and survived")  # not reached: the deferred SIGTERM ends the process


def test_uninterruptible_defers_signals():
    r, w = os.pipe()
    p = FORK.Process(target=_uninterruptible_child, args=(w,))
    p.start()
    p.join(60)
    os.close(w)
    out = os.read(r, 100)
    os.close(r)
    assert out == b"finished the block"  # ISF's SIG_IGN dropped the signal: it would survive
    assert p.exitcode == -signal.SIGTERM
