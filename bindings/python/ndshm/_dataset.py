"""Datasets: load a ``.npy`` (or cdxcore npio) file into shared memory once per node, save
arrays to ``.npy`` atomically. Thin wrappers over ``sa_load``, ``sa_open_or_create`` and
``sa_save`` (see include/ndshm.h)."""

from __future__ import annotations

import ctypes
import operator
import os
import tempfile
from typing import Any, Literal, Optional, Tuple, Union, overload

import numpy as np

from . import _lib
from ._lib import lib
from ._types import DTypeLike, Name, NDArray, PathLike, ShapeLike

#: Rows of axis 0: a ``slice`` with step 1, or a ``(start, end)`` pair.
Rows = Union[slice, Tuple[int, int]]

_FILE_FORMATS = {"npy": _lib.SA_FILE_NPY, "npio": _lib.SA_FILE_NPIO}


def _rows(rows: Optional[Rows]) -> Tuple[int, int]:
    """(start, end) for the C call: ``None`` is every row, else a ``slice`` with step 1
    or a ``(start, end)`` pair of non-negative integers."""
    if rows is None:
        return -1, -1
    if isinstance(rows, slice):
        if rows.step not in (None, 1):
            raise ValueError(f"rows {rows!r}: only a step of 1 is supported")
        if rows.start is None or rows.stop is None:
            raise ValueError(f"rows {rows!r}: give both start and stop")
        start, end = rows.start, rows.stop
    else:
        start, end = rows
    start, end = operator.index(start), operator.index(end)
    if start < 0 or end < start:
        raise ValueError(f"rows ({start}, {end}): need 0 <= start <= end")
    if end > _INT64_MAX:
        raise ValueError(f"rows end {end} is out of range for the C type int64")
    return start, end


_INT64_MAX = (1 << 63) - 1
_SHARES = {"owner": 0, None: 0, "group": _lib.SA_SHARE_GROUP, "all": _lib.SA_SHARE_ALL}


def _path(path: PathLike) -> bytes:
    """A file path as the C string the library gets (``str``, ``bytes`` or path-like)."""
    from . import _no_nul  # noqa: PLC0415

    return _no_nul(os.fsencode(path), "path", path)


@overload
def load(path: PathLike, name: Name, accept_existing: bool = ..., validate_shape: Optional[ShapeLike] = ...,
         validate_dtype: Optional[DTypeLike] = ..., rows: Optional[Rows] = ...,
         return_status: Literal[False] = ..., *, format: str = ..., read_only: bool = ..., force: bool = ...,
         timeout: Optional[float] = ..., share: Optional[str] = ..., allow_other_owner: bool = ...,
         follow_symlinks: bool = ...) -> NDArray: ...
@overload
def load(path: PathLike, name: Name, accept_existing: bool = ..., validate_shape: Optional[ShapeLike] = ...,
         validate_dtype: Optional[DTypeLike] = ..., rows: Optional[Rows] = ..., *,
         return_status: Literal[True], format: str = ..., read_only: bool = ..., force: bool = ...,
         timeout: Optional[float] = ..., share: Optional[str] = ..., allow_other_owner: bool = ...,
         follow_symlinks: bool = ...) -> Tuple[NDArray, str]: ...
def load(
    path: PathLike,
    name: Name,
    accept_existing: bool = True,
    validate_shape: Optional[ShapeLike] = None,
    validate_dtype: Optional[DTypeLike] = None,
    rows: Optional[Rows] = None,
    return_status: bool = False,
    *,
    format: str = "npy",
    read_only: bool = False,
    force: bool = False,
    timeout: Optional[float] = None,
    share: Optional[str] = None,
    allow_other_owner: bool = False,
    follow_symlinks: bool = False,
) -> Any:
    """Load a data file into the shared array ``name``, once per node.

    Attaches the array instead when it already exists with the file's shape, dtype and
    order. However many processes call this at once, exactly one reads the file; the
    others wait until it is complete and attach: nobody sees partial data. If the
    loading process dies, a waiting one takes over.

    Args:
        path: the file.
        name: the shared array's name (``shm://NAME``, ``file://PATH`` or a bare NAME).
        accept_existing: attach an existing array (else ``FileExistsError``).
        validate_shape: the shape the data must have.
        validate_dtype: the dtype the data must have.
        rows: only rows ``start:end`` of axis 0 (a ``slice`` or a pair).
        return_status: also return ``"created"`` or ``"attached"``.
        format: ``"npy"`` (numpy 1.0-3.0 files, C or Fortran order, big-endian data
            converted while loading) or ``"npio"`` (cdxcore).
        read_only: map the array read-only.
        force: load a fresh copy and replace any existing array atomically.
        timeout: seconds to wait for another process loading the same array (None: no
            limit).
        share: ``"group"`` or ``"all"``: a new array's permissions (default owner only).
        allow_other_owner: accept an existing array owned by another user.
        follow_symlinks: follow a symbolic link at the name.

    Returns:
        The array, or ``(array, status)`` with ``return_status``.

    Raises:
        ndshm.FormatError: a malformed file, or one truncated while loading.
        ValueError: an unsupported dtype, rows outside the array, a validation failure
            (an array this call created is then removed), an existing array that
            differs.
        FileExistsError: an existing array with ``accept_existing=False``.
        FileNotFoundError: no such file.
        TimeoutError: another loader took longer than ``timeout``.
        PermissionError: another user's array, or a symbolic link, without the opt-in.
        OSError: out of space (ENOSPC) or another system error.
    """
    from . import _name, _timeout_ms, _wrap, delete  # noqa: PLC0415

    fmt = _FILE_FORMATS.get(format)
    if fmt is None:
        raise ValueError(f"format {format!r}: use 'npy' or 'npio'")
    if share not in _SHARES:
        raise ValueError(f"share must be 'owner', 'group' or 'all', not {share!r}")
    start, end = _rows(rows)
    flags = _SHARES[share]
    flags |= _lib.SA_READONLY if read_only else 0
    flags |= _lib.SA_FORCE if force else 0
    flags |= 0 if accept_existing else _lib.SA_EXCLUSIVE
    flags |= _lib.SA_ALLOW_OTHER_OWNER if allow_other_owner else 0
    flags |= _lib.SA_FOLLOW_SYMLINKS if follow_symlinks else 0
    h = ctypes.c_void_p()
    outcome = ctypes.c_int32(-1)
    lib.sa_load(
        _path(path), fmt, _name(name), start, end, flags,
        # None waits without limit for another loader (-1 in C); 0 would not wait at all.
        -1 if timeout is None else _timeout_ms(timeout), ctypes.byref(h), ctypes.byref(outcome),
    )
    arr = _wrap(h)
    created = outcome.value == _lib.SA_CREATED
    problem = None
    if validate_shape is not None and tuple(arr.shape) != tuple(int(d) for d in validate_shape):
        problem = f"shape {arr.shape}, expected {tuple(validate_shape)}"
    if validate_dtype is not None and arr.dtype != np.dtype(validate_dtype):
        problem = f"dtype {arr.dtype}, expected {np.dtype(validate_dtype)}"
    if problem:
        full_name = arr.base.name if hasattr(arr.base, "name") else name
        del arr
        if created:
            delete(name, missing_ok=True)
        raise ValueError(f"{full_name}: {path}: {problem}")
    return (arr, "created" if created else "attached") if return_status else arr


def save(name_or_array: Union[Name, "os.PathLike[str]", NDArray], path: PathLike, rows: Optional[Rows] = None) -> None:
    """Write an array to the ``.npy`` file ``path`` atomically.

    A temporary file in the same directory is written, synced and renamed over
    ``path``, so a reader sees the old file or the complete new one, never a
    half-written one. ``numpy.load`` reads the result (Fortran order is kept).

    Args:
        name_or_array: the name of a shared array, an ndshm array, or any numpy array.
        path: the ``.npy`` file to write.
        rows: only rows ``start:end`` of axis 0 (a ``slice`` or a pair).

    Returns:
        None.

    Raises:
        ValueError: rows outside the array.
        FileNotFoundError: no such shared array, or no such directory.
        OSError: out of space (ENOSPC) or another system error.
    """
    from . import attach, base_of  # noqa: PLC0415

    if isinstance(name_or_array, (str, bytes, os.PathLike)):
        arr = attach(os.fsdecode(name_or_array), ro=True)
    else:
        arr = name_or_array
    base = base_of(arr) if isinstance(arr, np.ndarray) else None
    whole = base is not None and arr.ctypes.data == base.addr and arr.nbytes == base.size and (
        arr.flags.c_contiguous or arr.flags.f_contiguous
    )
    start, end = _rows(rows)
    if whole:
        lib.sa_save(base._h, _path(path), start, end)
        return
    # Any other numpy array (or a view of a shared one): numpy writes it, atomically.
    a = np.asarray(arr)
    if rows is not None:
        if a.ndim == 0 or end > a.shape[0]:
            raise ValueError(f"rows {start}:{end} are outside the array's {a.shape[:1]} rows")
        a = a[start:end]
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".ndshm-save", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, a, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    # Read without changing it for other threads for longer than this call.
    m = os.umask(0)
    os.umask(m)
    return m
