"""ndshm.by_name: arrays pickle as references to their shared memory. Real process pools
(multiprocessing spawn, ProcessPoolExecutor, Dask's LocalCluster) receive a 1 GiB array
without a copy and write into the sender's memory; views, read-only arrays, deleted or
replaced names, other machines and another NDSHM_DIR in the worker."""

import concurrent.futures
import importlib.util
import multiprocessing
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from conftest import PKG_PATH, ROOT, run_python

import ndshm
from ndshm import _pickle

GIB = 1 << 30


def rss_anon_kib():
    """This process's private (anonymous) resident memory: a copy of an array would be here."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssAnon:"))


def worker_report(x):
    """In a pool worker: what arrived, without touching its pages."""
    return os.getpid(), type(x).__name__, ndshm.is_shared(x), x.shape, rss_anon_kib()


def worker_write_and_sum(args):
    """In a pool worker: sums its quarter of the rows (reads every page of it) and marks
    the quarter's first and last rows with k."""
    x, k = args
    n = x.shape[0] // 4
    block = x[k * n:(k + 1) * n]
    s = int(block.sum(dtype=np.int64))
    block[0] = k
    block[-1] = k
    return s, rss_anon_kib()


def block_scale(block):
    block *= 3
    return float(block.sum()), rss_anon_kib()


def test_plain_arrays_pickle_as_numpy_does(uname):
    a = ndshm.create(uname(), (100, 10))
    a[...] = 7
    plain = np.arange(1000.0)
    for arr in (plain, a, np.asarray(ndshm.by_name(a)), ndshm.by_name(a) + 1, ndshm.by_name(a).copy()):
        s = pickle.dumps(arr)
        assert len(s) > arr.nbytes  # the data travels
        back = pickle.loads(s)
        assert type(back) is np.ndarray and np.array_equal(back, arr)
        assert not ndshm.is_shared(back)
    with pytest.raises(ValueError, match="not an array in ndshm shared memory"):
        ndshm.by_name(plain)


@pytest.mark.parametrize("order", ["C", "F"])
def test_views_round_trip_by_reference(uname, order):
    a = ndshm.create(uname(), (40, 30), dtype=np.int32, order=order)
    a[...] = np.arange(1200, dtype=np.int32).reshape(40, 30)
    x = ndshm.by_name(a)
    views = [x, x[5:9], x[::-3, 2::4], x.T, x[7], x[7, 3:4], x[3:4, 5],
             x.reshape(-1) if order == "C" else x.T.reshape(-1), (x[10:20] if order == "C" else x.T[10:20]).view(np.uint8), x[::-1, ::-1]]
    for v in views:
        s = pickle.dumps(v)
        assert len(s) < 1000, len(s)
        w = pickle.loads(s)
        assert type(w) is ndshm.SharedNDArray and ndshm.is_shared(w)
        assert w.shape == v.shape and w.strides == v.strides and w.dtype == v.dtype
        assert np.array_equal(w, v)
        # The same memory: a write through one is seen through the other.
        w.flat[0] = w.flat[0] + 1
        assert np.array_equal(w, v)
    # A reference in this process reuses the mapping it attached for the first one.
    w1, w2 = pickle.loads(pickle.dumps(x[1])), pickle.loads(pickle.dumps(x[2]))
    assert ndshm.base_of(w1) is ndshm.base_of(w2)


def test_read_only_arrays_stay_read_only(uname):
    n = uname()
    ndshm.create(n, (8, 8))
    ro = pickle.loads(pickle.dumps(ndshm.by_name(ndshm.attach(n, ro=True))[2:4]))
    assert not ro.flags.writeable and ndshm.base_of(ro).readonly
    v = ndshm.by_name(ndshm.attach(n))[1]
    v.flags.writeable = False  # a read-only view of a writable mapping
    w = pickle.loads(pickle.dumps(v))
    assert not w.flags.writeable
    with pytest.raises(ValueError):
        w[0] = 1


def test_deleted_or_replaced_names_are_refused(uname):
    n = uname()
    x = ndshm.by_name(ndshm.create(n, (4, 4)))
    ndshm.delete(n)
    with pytest.raises(pickle.PicklingError, match="was deleted"):
        pickle.dumps(x)
    ndshm.create(n, (4, 4))  # another array under the same name
    with pytest.raises(pickle.PicklingError, match="now names another array"):
        pickle.dumps(x[1:])
    # Pickled while valid, replaced before another process unpickles it.
    y = ndshm.by_name(ndshm.attach(n))
    s = pickle.dumps(y)
    ndshm.delete(n)
    ndshm.create(n, (4, 4))
    r = run_python("import pickle, sys; pickle.loads(bytes.fromhex(sys.argv[1]))", s.hex())
    assert r.returncode != 0 and "UnpicklingError" in r.stderr and "deleted or replaced" in r.stderr, r.stderr


def test_another_machine_is_refused(uname, monkeypatch):
    x = ndshm.by_name(ndshm.create(uname(), (4, 4)))
    s = pickle.dumps(x)
    monkeypatch.setattr(_pickle, "_boot_id", "some-other-machine")
    with pytest.raises(pickle.UnpicklingError, match="node-local"):
        pickle.loads(s)


def test_worker_with_another_ndshm_dir(uname, monkeypatch):
    """The reference carries the file the name resolved to where it was pickled."""
    d = tempfile.mkdtemp(prefix="ndshm-pickle-", dir="/dev/shm")
    try:
        monkeypatch.setenv("NDSHM_DIR", d)
        x = ndshm.by_name(ndshm.create("shm://redirected", (3, 5)))
        x[...] = 4
        s = pickle.dumps(x[1:])
        monkeypatch.delenv("NDSHM_DIR")
        code = ("import pickle, sys, ndshm; w = pickle.loads(bytes.fromhex(sys.argv[1])); w[0, 0] = 9; "
                "print(ndshm.base_of(w).name, float(w.sum()))")
        r = run_python(code, s.hex())
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == [f"file://{d}/redirected", str(4.0 * 10 + 5)]
        assert x[1, 0] == 9
    finally:
        shutil.rmtree(d)


def test_one_gib_to_four_spawned_workers_is_not_copied(uname):
    n = uname("gib")
    x = ndshm.by_name(ndshm.create(n, (GIB // 4096, 4096), dtype=np.uint8, full=1))
    t = time.perf_counter()
    s = pickle.dumps(x)
    pickling = time.perf_counter() - t
    assert len(s) < 1000 and pickling < 0.05, (len(s), pickling)
    ctx = multiprocessing.get_context("spawn")  # workers inherit no memory: all goes by pickle
    with ctx.Pool(4) as pool:
        pool.map(worker_report, [np.zeros(1)] * 4, chunksize=1)  # start and warm all four
        t = time.perf_counter()
        reports = pool.map(worker_report, [x] * 4, chunksize=1)
        sending = time.perf_counter() - t
        sums = pool.map(worker_write_and_sum, [(x, k) for k in range(4)], chunksize=1)
    # A copy would be 1 GiB pickled and piped to each worker (seconds) and 1 GiB of each
    # worker's anonymous memory.
    assert sending < 1.0, sending
    for pid, typ, shared, shape, anon_kib in reports:
        assert (typ, shared, shape) == ("SharedNDArray", True, x.shape)
        assert anon_kib < 256 * 1024, reports
    assert [s for s, _ in sums] == [GIB // 4] * 4
    assert all(anon < 256 * 1024 for _, anon in sums), sums
    q = x.shape[0] // 4
    for k in range(4):  # the workers' writes are in the parent's memory
        assert x[k * q, 0] == k and x[(k + 1) * q - 1, -1] == k
    assert x[1, 0] == 1


def test_process_pool_executor_writes_row_blocks(uname):
    x = ndshm.by_name(ndshm.create(uname(), (1024, 1024), full=1.0))
    blocks = [x[i:i + 128] for i in range(0, 1024, 128)]
    with concurrent.futures.ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("spawn")) as ex:
        results = list(ex.map(block_scale, blocks))
    assert [r[0] for r in results] == [3.0 * 128 * 1024] * 8
    assert float(x.sum()) == 3.0 * x.size


@pytest.mark.skipif(not importlib.util.find_spec("distributed"),
                    reason='Dask is not installed (pip install "dask[distributed]"; make python-deps does)')
def test_dask_example_maps_over_row_blocks_without_copies(uname):
    env = dict(os.environ, PYTHONPATH=PKG_PATH)
    r = subprocess.run([sys.executable, str(ROOT / "examples-python/dask_row_blocks.py"), "2048", "1024", uname()],
                       capture_output=True, text=True, env=env, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "in the workers: SharedNDArray, shared: True" in r.stdout, r.stdout
    assert "2 worker processes" in r.stdout, r.stdout
