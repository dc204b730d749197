"""ndshm.compat.cdxcore keeps cdxcore.npshm's signatures and defaults, minus its bugs."""

import gc
import inspect
import os

import numpy as np
import pytest

import ndshm
from ndshm.compat import cdxcore as cdx


def test_signatures_match_cdxcore():
    s = inspect.signature(cdx.create_shared_array)
    assert list(s.parameters)[:3] == ["name", "shape", "dtype"]
    for p in ["raise_on_error", "full", "force", "track", "unlink", "verbose"]:
        assert s.parameters[p].kind == inspect.Parameter.KEYWORD_ONLY
    assert s.parameters["raise_on_error"].default is True
    s = inspect.signature(cdx.attach_shared_array)
    for p in ["validate_shape", "validate_dtype", "raise_on_error", "read_only", "track", "unlink"]:
        assert p in s.parameters
    assert list(inspect.signature(cdx.delete_shared_array).parameters)[:2] == ["name", "raise_on_error"]


def test_create_attach_delete(uname):
    n = uname()
    a = cdx.create_shared_array(n, (4, 5), np.float32, full=1.5)
    assert a.shape == (4, 5) and (a == 1.5).all()
    assert cdx.create_shared_array(n, (4, 5), np.float32, raise_on_error=False) is None
    with pytest.raises(FileExistsError):
        cdx.create_shared_array(n, (4, 5), np.float32)
    b = cdx.create_shared_array(n, (2,), "i8", force=True, full=[3, 4])
    assert b.tolist() == [3, 4]
    c = cdx.attach_shared_array(n, validate_shape=[2], validate_dtype="i8", read_only=True)
    assert not c.flags.writeable
    with pytest.raises(ValueError):
        c.setflags(write=True)  # a real read-only mapping, unlike cdxcore
    with pytest.raises(ValueError, match="expected shape"):
        cdx.attach_shared_array(n, validate_shape=(3,), raise_on_error=False)
    assert cdx.is_shared_array(c) and not cdx.is_shared_array(np.zeros(2))
    assert cdx.delete_shared_array(n) is True
    assert cdx.delete_shared_array(n) is True, "missing counts as deleted"
    assert cdx.attach_shared_array(n, raise_on_error=False) is None
    with pytest.raises(FileNotFoundError):
        cdx.attach_shared_array(n)


def test_unlink_on_collect(uname):
    n = uname()
    a = cdx.create_shared_array(n, 3, float, unlink=True)
    view = a[1:]
    del a
    gc.collect()
    assert os.path.exists("/dev/shm/" + n), "a view keeps it"
    del view
    gc.collect()
    assert not os.path.exists("/dev/shm/" + n)


def test_delete_refuses_foreign_without_raising(uname):
    n = uname()
    with open("/dev/shm/" + n, "wb") as f:
        f.write(b"foreign" * 200)
    assert cdx.delete_shared_array(n, raise_on_error=False) is False
    assert os.path.exists("/dev/shm/" + n)
