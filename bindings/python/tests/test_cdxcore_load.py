"""cdxcore's read_shared_array and npio files over ndshm's loader."""

import numpy as np
import pytest

import ndshm


def test_cdxcore_read_shared_array(uname, tmp_path):
    from ndshm.compat import cdxcore

    a = np.arange(24, dtype=np.int64).reshape(4, 6)
    p = tmp_path / "x.npio"
    cdxcore.to_file(p, a)
    n = uname("cdx")
    got, existed = cdxcore.read_shared_array(p, n, return_status=True)
    assert existed is False and np.array_equal(got, a)
    again, existed = cdxcore.read_shared_array(str(p), n, return_status=True, read_only=True)
    assert existed is True and np.array_equal(again, a)
    assert not again.flags.writeable
    with pytest.raises(ValueError):
        cdxcore.read_shared_array(p, uname("cdx2"), validate_shape=(6, 4))


@pytest.mark.parametrize(
    "dtype", ["bool", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64",
              "float16", "float32", "float64", "complex64", "complex128"])
def test_npio_codes_agree_with_the_library(uname, tmp_path, dtype):
    from ndshm.compat import cdxcore

    a = (np.arange(12) % 3).astype(dtype).reshape(3, 4)
    cdxcore.to_file(tmp_path / "a.npio", a)
    assert cdxcore.read_dtype_and_shape(tmp_path / "a.npio") == (np.dtype(dtype), (3, 4))
    got = ndshm.load(tmp_path / "a.npio", uname("npio"), format="npio")
    assert got.dtype == np.dtype(dtype) and np.array_equal(got, a)


def test_npio_refuses_what_it_cannot_store(tmp_path):
    from ndshm.compat import cdxcore

    with pytest.raises(ValueError, match="uint8"):
        cdxcore.to_file(tmp_path / "u.npio", np.zeros(3, np.uint8))
