"""ndshm.load / ndshm.save / npy:// from Python, and cdxcore's read_shared_array."""

import os
import subprocess
import sys

import numpy as np
import numpy.lib.format as npf
import pytest

import ndshm
from conftest import PKG_PATH, run_python


def write_npy(path, a, version=(1, 0)):
    with open(path, "wb") as f:
        npf.write_array(f, a, version=version)


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", ["<f8", ">i4", "|u1", "<c16", ">f2", "?"])
def test_load_matches_numpy(uname, tmp_path, version, order, dtype):
    a = np.arange(60).reshape(3, 4, 5).astype(dtype)
    a = np.asfortranarray(a) if order == "F" else np.ascontiguousarray(a)
    p = tmp_path / "a.npy"
    write_npy(p, a, version)
    n = uname("load")
    got, status = ndshm.load(p, n, return_status=True)
    assert status == "created"
    assert got.dtype == a.dtype.newbyteorder("=") and got.shape == a.shape
    assert np.array_equal(got, a) and got.flags.f_contiguous == (order == "F")
    again, status = ndshm.load(str(p), n, return_status=True)
    assert status == "attached" and np.array_equal(again, a)
    rows = ndshm.load(p, uname("rows"), rows=slice(1, 3))
    assert np.array_equal(rows, a[1:3])


def test_load_validates_and_cleans_up(uname, tmp_path):
    p = tmp_path / "a.npy"
    np.save(p, np.zeros((2, 3)))
    n = uname("valid")
    with pytest.raises(ValueError, match="expected"):
        ndshm.load(p, n, validate_shape=(3, 2))
    assert not os.path.exists(f"/dev/shm/{n}"), "an array that failed validation is removed"
    with pytest.raises(ValueError, match="dtype"):
        ndshm.load(p, n, validate_dtype=np.int32)
    a = ndshm.load(p, n, validate_shape=(2, 3), validate_dtype=np.float64)
    assert a.shape == (2, 3)
    with pytest.raises(FileExistsError):
        ndshm.load(p, n, accept_existing=False)
    with pytest.raises(ValueError, match="outside"):
        ndshm.load(p, uname("x"), rows=(1, 9))
    with pytest.raises(ValueError, match="format"):
        ndshm.load(p, uname("x"), format="hdf5")


def test_bad_files(uname, tmp_path):
    cases = {
        "magic": b"\x93NUMPX\x01\x00\x10\x00{}",
        "truncated": npf.magic(1, 0) + b"\x46\x00{'descr': '<f8', 'fortran_order': False, 'shape': (100,), }",
    }
    for tag, data in cases.items():
        p = tmp_path / f"{tag}.npy"
        p.write_bytes(data)
        with pytest.raises(ndshm.FormatError):
            ndshm.load(p, uname(tag))
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="objects"):
        ndshm.load(obj, uname("obj"))
    with pytest.raises(FileNotFoundError):
        ndshm.load(tmp_path / "missing.npy", uname("missing"))


def test_eight_processes_one_load(uname, tmp_path):
    p = tmp_path / "big.npy"
    np.save(p, np.arange(4 << 20, dtype=np.float64))  # 32 MiB
    n = uname("eight")
    code = (
        "import ndshm, sys, numpy as np\n"
        "a, s = ndshm.load(sys.argv[1], sys.argv[2], return_status=True)\n"
        "print(s, float(a.sum()), a.shape[0])\n"
    )
    env = dict(os.environ, PYTHONPATH=PKG_PATH)  # the same ndshm, installed or not
    kids = [
        subprocess.Popen([sys.executable, "-c", code, str(p), n], stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(8)
    ]
    outs = [k.communicate()[0].split() for k in kids]
    assert all(k.returncode == 0 for k in kids), outs
    assert sorted(o[0] for o in outs) == ["attached"] * 7 + ["created"]
    want = float(np.arange(4 << 20, dtype=np.float64).sum())
    assert all(float(o[1]) == want and int(o[2]) == 4 << 20 for o in outs), outs


def test_save_any_array_atomically(uname, tmp_path):
    a = ndshm.create(uname("save"), (5, 2), np.int16, order="F")
    a[...] = np.arange(10).reshape(5, 2)
    ndshm.save(a, tmp_path / "a.npy")
    ndshm.save(a.base.name, tmp_path / "b.npy", rows=(1, 4))
    ndshm.save(np.arange(7.0), tmp_path / "c.npy")
    ndshm.save(a[::2], tmp_path / "d.npy")  # a strided view: numpy writes it
    assert np.array_equal(np.load(tmp_path / "a.npy"), a)
    assert np.load(tmp_path / "a.npy").flags.f_contiguous
    assert np.array_equal(np.load(tmp_path / "b.npy"), a[1:4])
    assert np.array_equal(np.load(tmp_path / "c.npy"), np.arange(7.0))
    assert np.array_equal(np.load(tmp_path / "d.npy"), a[::2])
    assert sorted(os.listdir(tmp_path)) == ["a.npy", "b.npy", "c.npy", "d.npy"], "no temporary files"
    with pytest.raises(ValueError, match="outside"):
        ndshm.save(a, tmp_path / "e.npy", rows=(3, 9))
    assert not (tmp_path / "e.npy").exists()


def test_npy_files_map_in_place(tmp_path):
    p = tmp_path / "m.npy"
    np.save(p, np.asfortranarray(np.arange(12.0).reshape(3, 4)))
    ro = ndshm.attach(f"npy://{p}", ro=True)
    assert ro.shape == (3, 4) and ro.flags.f_contiguous and ro.base.format == "npy"
    assert np.array_equal(ro, np.arange(12.0).reshape(3, 4))
    rw = ndshm.attach(f"npy://{p}")
    rw[0, 0] = 99.0  # writes go to the file itself
    rw.base.msync()
    del rw
    assert np.load(p)[0, 0] == 99.0 and ro[0, 0] == 99.0
    with pytest.raises(ValueError, match="npy://"):
        ndshm.create(f"npy://{tmp_path / 'new.npy'}", (2,))
    with pytest.raises(ValueError, match="does not delete"):
        ndshm.delete(f"npy://{p}")
    assert p.exists()
    big = tmp_path / "be.npy"
    np.save(big, np.arange(3, dtype=">i4"))
    with pytest.raises(ValueError, match="byte order"):
        ndshm.attach(f"npy://{big}")
    # Another process sees the same memory.
    out = run_python(f"import ndshm; print(ndshm.attach('npy://{p}', ro=True)[0, 0])")
    assert out.stdout.strip() == "99.0", out.stderr
