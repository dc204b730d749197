"""Compatibility with the real SharedArray package (pip install SharedArray), at the
format level and at the API level."""

import struct
import subprocess

import numpy as np
import pytest

import ndshm
import ndshm.compat.sharedarray as nsa

SharedArray = pytest.importorskip(
    "SharedArray", reason="pip install SharedArray (CI installs it; these tests need the real package)"
)


@pytest.mark.parametrize("scheme", ["shm", "file"])
def test_sharedarray_created_ndshm_attaches(uname, tmp_path, c_tool, scheme):
    n = uname()
    name = f"shm://{n}" if scheme == "shm" else f"file://{tmp_path}/{n}"
    s = SharedArray.create(name, (5, 7), dtype=np.int32)
    s[...] = np.arange(35, dtype=np.int32).reshape(5, 7)
    a = ndshm.attach(name)
    assert a.base.format == "sharedarray-np2"
    assert a.dtype == np.int32 and a.shape == (5, 7)
    assert np.array_equal(a, s)
    a[0, 0] = 99
    assert s[0, 0] == 99, "same memory"
    listing = ndshm.list() if scheme == "shm" else ndshm.list(tmp_path)
    [d] = [d for d in listing if d.name == name]
    assert (d.dtype, d.dims, d.format) == (np.dtype(np.int32), (5, 7), "sharedarray-np2")
    # And a C program attaches it too.
    r = subprocess.run([c_tool["consumer"], name], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "dtype <i4, order C, shape (5, 7), 35 elements, checksum (sum) 694.000000" in r.stdout
    SharedArray.delete(name)


@pytest.mark.parametrize("dt", ["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32",
                                "int64", "uint64", "float16", "float32", "float64", "complex64", "complex128"])
def test_ndshm_writes_what_sharedarray_attaches(uname, dt):
    n = uname()
    a = ndshm.create(n, (3, 4), dtype=dt, format="sharedarray")
    a[...] = (np.arange(12) % 2).astype(dt).reshape(3, 4)
    s = SharedArray.attach("shm://" + n)
    assert s.dtype == np.dtype(dt) and s.shape == (3, 4)
    assert np.array_equal(s, a)
    s[2, 3] = 1
    s[0, 0] = 1
    assert a[0, 0] == 1 and a[2, 3] == 1, "SharedArray's writes are seen by ndshm"
    assert any(d.name.decode() == n for d in SharedArray.list())
    SharedArray.delete(n)


def test_numpy1_trailer_by_hand(uname):
    """A 292-byte trailer as a numpy-1 build of SharedArray writes it (DESIGN.md)."""
    n = uname()
    data = np.arange(6, dtype=np.float64).tobytes()
    dims = [2, 3] + [0] * 30
    trailer = b"[SharedArray]\0\0\0" + struct.pack("=Qiii", len(data), 12, 8, 2) + struct.pack("=32q", *dims)
    assert len(trailer) == 292
    with open("/dev/shm/" + n, "wb") as f:
        f.write(data + trailer)
    a = ndshm.attach(n)
    assert a.base.format == "sharedarray-np1"
    assert a.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert ndshm.info(n).format == "sharedarray-np1"
    ndshm.delete(n)


def test_compat_module_api(uname):
    n = uname()
    a = nsa.create(n, 10, dtype=np.int16)
    b = nsa.attach(n, ro=True)
    a[3] = 7
    assert b[3] == 7 and not b.flags.writeable
    descs = [d for d in nsa.list() if d.name == n.encode()]
    assert descs == [nsa.ArrayDesc(n.encode(), np.int16, (10,))]
    b.base.msync(nsa.MS_SYNC)
    nsa.delete(n)
    with pytest.raises(FileNotFoundError):
        nsa.attach(n)
    # format='sharedarray' for mixed fleets.
    c = nsa.create(n, 4, format="sharedarray")
    assert SharedArray.attach(n).shape == (4,)
    del c
    nsa.delete(n)
