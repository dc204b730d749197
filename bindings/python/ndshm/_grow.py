"""Growing arrays along axis 0: append rows, set the length, and see another process's
appends.

    >>> a = ndshm.create("shm://series", (0, 16))
    >>> a = ndshm.append(a, rows)            # rows: shape (n, 16), same dtype
    >>> b = ndshm.attach("shm://series")     # in another process
    >>> b = ndshm.refresh(b)                 # now shows the appended rows

A numpy array's shape is fixed, so each call returns a new array over the grown data;
arrays obtained before stay valid: they show the same file (their memory stays mapped
until the last of them is gone). The protocol (in place, crash safe, appenders
serialised by the array's lock) is in src/grow.rs and docs/FORMAT.md.
"""

import ctypes


import numpy as np
import numpy.typing as npt

from . import SharedMemoryBase, _lib
from ._lib import lib
from ._live import Shared, _base
from ._types import NDArray

__all__ = ["append", "resize", "refresh"]


def _current(b: SharedMemoryBase) -> NDArray:
    """A new numpy array over what the handle describes now (its base: ``b``)."""
    b._describe()  # also drops the live-data geometry cache
    arr: NDArray = np.asarray(b)
    return arr


def append(a: Shared, rows: npt.ArrayLike) -> NDArray:
    """Append rows along axis 0 of a C-order ndshm array (of any number of dimensions
    but 0), in place: the array's file grows (geometrically, reserved on the
    filesystem), nothing is copied but the rows.

    Appenders in any process are serialised by the array's lock. A process killed in the
    middle of an append leaves the array with or without the rows, never with a length
    covering rows that were not written. Other processes see the new rows after
    :func:`refresh`.

    Args:
        a: an ndshm array (or a view of one, or its base object), attached read-write.
        rows: the rows: shape ``(n,) + a.shape[1:]``, or ``a.shape[1:]`` for one row,
            and exactly the array's dtype (nothing is converted).

    Returns:
        A new array over all rows (``a`` keeps showing the rows it showed).

    Raises:
        TypeError: another dtype, or ``a`` is not an ndshm array.
        ValueError: rows of another shape; a 0-d array; a Fortran-order array of more
            than one dimension or a SharedArray-layout array (their rows cannot grow).
        PermissionError: the array is attached read-only.
        OSError: (ENOSPC) the filesystem is full: the array is unchanged.
        StaleError: the array must grow, but its name was deleted or now holds another
            array.
    """
    b = _base(a)
    r = np.asarray(rows)
    d = _lib.sa_desc()
    lib.sa_describe(b._h, ctypes.byref(d))
    dtype = np.dtype(d.typestr.decode())
    row_shape = tuple(d.shape[1 : d.ndim])
    if r.dtype != dtype:
        raise TypeError(f"{b.name}: the array holds {dtype}, the rows are {r.dtype}")
    if r.shape == row_shape and d.ndim >= 1:
        r = r[np.newaxis]
    if r.ndim == 0 or r.shape[1:] != row_shape:
        raise ValueError(
            f"{b.name}: rows of shape {r.shape} do not fit an array of shape {tuple(d.shape[:d.ndim])} "
            f"(rows must be {row_shape}, or (n,) + {row_shape})"
        )
    r = np.ascontiguousarray(r)
    lib.sa_append(b._h, r.ctypes.data, r.shape[0], None)
    return _current(b)


def resize(a: Shared, length: int) -> NDArray:
    """Set the length along axis 0: shorter drops the last rows, longer adds rows of
    zeros (growing the capacity as :func:`append` does).

    Args:
        a: an ndshm array (or a view of one, or its base object), attached read-write.
        length: the new number of rows (>= 0).

    Returns:
        A new array over the rows (``a`` keeps showing the rows it showed).

    Raises:
        ValueError: a negative length; arrays that cannot grow (see :func:`append`).
        PermissionError: the array is attached read-only.
        OSError: (ENOSPC) the filesystem is full: the array is unchanged.
    """
    b = _base(a)
    n = int(length)
    if n < 0:
        raise ValueError(f"{b.name}: negative length {length!r}")
    lib.sa_resize(b._h, n)
    return _current(b)


def refresh(a: Shared) -> NDArray:
    """The array as it is now, after other processes appended, resized or published a
    new shape: cheap when nothing changed; never waits.

    Args:
        a: an ndshm array (or a view of one, or its base object).

    Returns:
        A new array over the current rows (``a`` keeps showing what it showed). When
        nothing changed and ``a`` is the whole array, ``a`` itself.

    Raises:
        TypeError: ``a`` is not an ndshm array.
        StaleError: the array grew, but its name was deleted or now holds another
            array, so the new rows cannot be mapped.
    """
    b = _base(a)
    changed = ctypes.c_int()
    lib.sa_refresh(b._h, ctypes.byref(changed))
    # Unchanged, and ``a`` is the whole array as the handle last described it.
    last = getattr(b, "__array_interface__", None)
    if (
        not changed.value
        and last is not None
        and isinstance(a, np.ndarray)
        and a.base is b
        and a.shape == last["shape"]
        and a.__array_interface__["data"][0] == last["data"][0]
    ):
        return a
    return _current(b)


