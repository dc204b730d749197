"""Code written for SharedArray, as public projects write it, keeps working after
`import ndshm.compat.sharedarray as sa`. The real SharedArray package is the oracle where
a pattern depends on its behaviour (each test runs the pattern against both)."""

import multiprocessing
import os

import numpy as np
import pytest

import ndshm.compat.sharedarray as nsa

SharedArray = pytest.importorskip(
    "SharedArray", reason="pip install SharedArray (CI installs it; these tests compare with it)"
)
IMPLS = {"ndshm": nsa, "SharedArray": SharedArray}


@pytest.fixture(params=sorted(IMPLS))
def sa(request):
    return IMPLS[request.param]


@pytest.mark.parametrize("form", ["shm://{n}", "{n}"])
def test_base_name_is_the_name_as_passed(uname, form):
    """SharedArray's README: the base object's ``name`` is the name given to
    create()/attach() (ndshm's own API reports the canonical ``shm://NAME``)."""
    n = uname()
    name = form.format(n=n)
    for impl in (SharedArray, nsa):
        a = impl.create(name, 2)
        b = impl.attach(name)
        assert a.base.name == name and b.base.name == name, impl.__name__
        # The other spelling of the same array reports its own spelling.
        other = f"shm://{n}" if name == n else n
        assert impl.attach(other).base.name == other
        del a, b
        impl.delete(n)


def test_file_backed_base_name(tmp_path):
    name = f"file://{tmp_path}/arr"
    for impl in (SharedArray, nsa):
        a = impl.create(name, 3, dtype=np.int16)
        assert a.base.name == name and impl.attach(name).base.name == name
        impl.delete(name)


def test_exists_check_before_create(uname, sa):
    """`if not os.path.exists("/dev/shm/NAME"): create("shm://NAME") else attach`."""
    n = uname()

    def get():
        if not os.path.exists("/dev/shm/" + n):
            a = sa.create("shm://" + n, (4,), dtype=np.float32)
            a[:] = 1
            return a, "created"
        return sa.attach("shm://" + n), "attached"

    a, how = get()
    assert how == "created"
    b, how = get()
    assert how == "attached" and b.tolist() == [1.0] * 4
    sa.delete(n)
    assert not os.path.exists("/dev/shm/" + n)


def test_writeable_false_on_a_created_array(uname):
    """`arr.flags.writeable = False` to protect a created array from this process's own
    writes; other attachments still write. Setting it back does what SharedArray does
    (numpy decides: recent versions refuse for an array over a foreign buffer)."""
    outcome = {}
    for impl_name, impl in sorted(IMPLS.items()):
        n = uname()
        a = impl.create("shm://" + n, (2, 2), dtype=np.int64)
        a.flags.writeable = False
        with pytest.raises(ValueError):
            a[0, 0] = 1
        b = impl.attach("shm://" + n)
        b[0, 0] = 5
        assert a[0, 0] == 5
        try:
            a.flags.writeable = True
            a[1, 1] = 7
            outcome[impl_name] = ("writable again", int(b[1, 1]))
        except ValueError as e:
            outcome[impl_name] = ("refused", str(e))
        impl.delete(n)
    assert outcome["ndshm"] == outcome["SharedArray"]


def _worker_copy(args):
    """A DataLoader-style worker: attach by name, copy a slice, let the mapping go."""
    module, name, i = args
    impl = nsa if module == "ndshm" else __import__("SharedArray")
    sample = impl.attach("shm://" + name)[i].copy()
    return i, sample


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_attach_copy_in_worker_processes(uname, sa, start):
    """`sa.attach(name)[i].copy()` in worker processes (as torch DataLoader workers do):
    the samples are right, and the array outlives the workers (no tracker deletes it)."""
    n = uname()
    a = sa.create("shm://" + n, (8, 3), dtype=np.float64)
    a[...] = np.arange(24).reshape(8, 3)
    impl = "ndshm" if sa is nsa else "SharedArray"
    with multiprocessing.get_context(start).Pool(2) as pool:
        got = dict(pool.map(_worker_copy, [(impl, n, i) for i in range(8)]))
    for i in range(8):
        assert got[i].tolist() == a[i].tolist()
    assert os.path.exists("/dev/shm/" + n), "workers exiting must not delete the array"
    assert sa.attach("shm://" + n).sum() == a.sum()
    sa.delete(n)


def test_numpy_array_shape_and_bool_string_dtype(uname, sa):
    """`create(name, np.array(shape), dtype="bool")`: shapes computed with numpy."""
    n = uname()
    shape = np.array([3, 4]) * np.array([1, 2])
    a = sa.create("shm://" + n, shape, dtype="bool")
    assert a.shape == (3, 8) and a.dtype == np.bool_ and not a.any()
    a[2, 7] = True
    assert sa.attach("shm://" + n)[2, 7]
    n1 = uname()
    assert sa.create("shm://" + n1, np.int64(5), dtype="bool").shape == (5,)
    sa.delete(n)
    sa.delete(n1)


def test_file_exists_then_delete_and_recreate(uname, sa):
    """`try: create() except FileExistsError: delete(); create()` (stale arrays from a
    previous run)."""
    n = uname()
    stale = sa.create("shm://" + n, 10, dtype=np.int32)
    stale[:] = 3
    try:
        fresh = sa.create("shm://" + n, (2, 5), dtype=np.int32)
    except FileExistsError:
        sa.delete(n)
        fresh = sa.create("shm://" + n, (2, 5), dtype=np.int32)
    assert fresh.shape == (2, 5) and not fresh.any()
    assert stale.tolist() == [3] * 10, "the old mapping stays valid"
    assert sa.attach("shm://" + n).shape == (2, 5)
    sa.delete(n)
