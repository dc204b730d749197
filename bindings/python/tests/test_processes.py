"""Separate processes: Python children, C programs, racing creators."""

import multiprocessing as mp
import subprocess

import numpy as np
import pytest

import ndshm
from conftest import run_python


def test_child_modifies_parent_sees(uname):
    n = uname()
    a = ndshm.create(n, (100, 10), dtype="i4")
    a[...] = np.arange(1000).reshape(100, 10)
    code = """
import ndshm, sys
b = ndshm.attach(sys.argv[1], validate_shape=(100, 10), validate_dtype='i4')
assert b.sum() == 499500, b.sum()
b *= -1
print('child done')
"""
    r = run_python(code, n)
    assert r.returncode == 0, r.stderr
    assert a.sum() == -499500
    ndshm.delete(n)


def _spawned_child(name, q):
    import ndshm as nd

    b = nd.attach(name)
    b[0] = 123.0
    q.put(float(b[1]))


def test_multiprocessing_spawn_child_does_not_delete(uname):
    n = uname()
    a = ndshm.create(n, 4)
    a[1] = 2.5
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_spawned_child, args=(n, q))
    p.start()
    assert q.get(timeout=60) == 2.5
    p.join(60)
    assert p.exitcode == 0
    assert a[0] == 123.0
    # Unlike multiprocessing.shared_memory, the child's exit deleted nothing.
    assert ndshm.attach(n)[0] == 123.0
    ndshm.delete(n)


def test_delete_while_attached(uname):
    n = uname()
    a = ndshm.create(n, 8, full=1.0)
    code = """
import ndshm, sys, time
b = ndshm.attach(sys.argv[1])
print('attached', flush=True)
sys.stdin.readline()
print(b.sum(), flush=True)
b[0] = 10
print(b.sum(), flush=True)
"""
    from conftest import PKG_PATH
    import os, sys
    p = subprocess.Popen([sys.executable, "-c", code, n], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, env=dict(os.environ, PYTHONPATH=PKG_PATH))
    assert p.stdout.readline().strip() == "attached"
    ndshm.delete(n)
    with pytest.raises(FileNotFoundError):
        ndshm.attach(n)
    out, _ = p.communicate("go\n", timeout=60)
    assert out.split() == ["8.0", "17.0"], "the child's mapping outlived the delete"
    assert a[0] == 10.0


def _racer(name, barrier, q):
    import ndshm as nd

    barrier.wait()
    try:
        nd.create(name, (1 << 18,), dtype="u1")
        q.put("won")
    except FileExistsError:
        q.put("lost")


def test_two_processes_race_to_create(uname):
    ctx = mp.get_context("spawn")
    for _ in range(3):
        n = uname()
        barrier, q = ctx.Barrier(2), ctx.Queue()
        ps = [ctx.Process(target=_racer, args=(n, barrier, q)) for _ in range(2)]
        for p in ps:
            p.start()
        results = sorted(q.get(timeout=60) for _ in ps)
        for p in ps:
            p.join(60)
        assert results == ["lost", "won"]
        ndshm.delete(n)


def test_c_creates_python_attaches_and_replies(uname, c_tool):
    n = uname()
    r = subprocess.run([c_tool["sa_tool"], "create", n, "20", "30"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
    a = ndshm.attach(n)
    assert a.dtype == np.int64 and a.shape == (20, 30)
    assert np.array_equal(a.ravel(), np.arange(1, 601))
    a[...] = -a
    b = ndshm.create(uname(), (600,), dtype="i8")
    del b
    ndshm.delete(n)


def test_python_creates_c_verifies(uname, c_tool):
    n = uname()
    a = ndshm.create(n, (30, 20), dtype=np.int64)
    a[...] = np.arange(1, 601).reshape(30, 20)
    r = subprocess.run([c_tool["sa_tool"], "verify", n], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "verified 600", r.stdout
    assert np.array_equal(a.ravel(), -np.arange(1, 601)), "the C process's reply is visible"
    ndshm.delete(n)
