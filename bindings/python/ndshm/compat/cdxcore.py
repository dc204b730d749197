"""cdxcore.npshm's functions over ndshm: change ``from cdxcore.npshm import ...`` to
``from ndshm.compat.cdxcore import ...``.

What differs from cdxcore, on purpose:

* No ``multiprocessing.shared_memory`` and no resource tracker: an array is never
  deleted because some process that created or attached it exited. ``track`` is
  accepted for compatibility and ignored.
* ``unlink=True`` keeps cdxcore's meaning: the name is deleted when the returned array
  (and all its views) are garbage-collected *in this process*, for every process.
* ``read_only=True`` maps the memory read-only (cdxcore only clears numpy's flag, which
  can be set back).
* Attaching an array whose creator is still writing it raises ``ndshm.NotReadyError``
  (cdxcore read a zero header and raised ``ValueError``).
* ``validate_shape`` accepts lists and tuples alike (cdxcore's ``!=`` against a tuple
  rejected every list).
* ``is_shared_array`` really checks (cdxcore's always returned True).
* ``read_shared_array`` is safe under concurrency: exactly one caller reads the file,
  the others wait until it is loaded and attach (cdxcore let them attach a half-loaded
  array or fail). ``to_file`` and ``read_dtype_and_shape`` write and read cdxcore.npio's
  file format.
"""

from __future__ import annotations

import os
import struct
import weakref
from typing import Any, Literal, Optional, Tuple, overload

import numpy as np

import ndshm
from ndshm._types import DTypeLike, Name, NDArray, ShapeLike, ShapePattern


def _unlink_on_collect(arr: NDArray, name: Name) -> None:
    weakref.finalize(ndshm.base_of(arr), ndshm.delete, name, True)


@overload
def create_shared_array(name: Name, shape: ShapeLike, dtype: DTypeLike, *, raise_on_error: Literal[True] = ...,
                        full: Any = ..., force: bool = ..., track: Optional[bool] = ..., unlink: bool = ...,
                        verbose: Any = ...) -> NDArray: ...
@overload
def create_shared_array(name: Name, shape: ShapeLike, dtype: DTypeLike, *, raise_on_error: bool,
                        full: Any = ..., force: bool = ..., track: Optional[bool] = ..., unlink: bool = ...,
                        verbose: Any = ...) -> Optional[NDArray]: ...
def create_shared_array(
    name: Name,
    shape: ShapeLike,
    dtype: DTypeLike,
    *,
    raise_on_error: bool = True,
    full: Any = None,
    force: bool = False,
    track: Optional[bool] = None,
    unlink: bool = False,
    verbose: Any = None,
) -> Optional[NDArray]:
    """Create a shared array (cdxcore's ``create_shared_array``).

    Args:
        name: the array's name (a bare shm name, ``shm://NAME`` or ``file://PATH``).
        shape: an int or a sequence of ints.
        dtype: anything ``numpy.dtype()`` accepts.
        raise_on_error: ``False`` returns None instead of raising ``FileExistsError``.
        full: a scalar or an array broadcast into the new array (else zero-filled).
        force: replace an existing array.
        track: accepted for compatibility and ignored (ndshm has no resource tracker).
        unlink: delete the name when the returned array (and its views) are collected
            in this process.
        verbose: accepted for compatibility and ignored.

    Returns:
        The new array, or None (see ``raise_on_error``).

    Raises:
        FileExistsError: the name exists (without ``force``).
        ValueError: a bad name, shape, dtype or ``full``.
        OSError: out of space (ENOSPC) or another system error.
    """
    arr = ndshm.create(name, shape, dtype, force=force, full=full, raise_on_error=raise_on_error)
    if arr is not None and unlink:
        _unlink_on_collect(arr, name)
    return arr


@overload
def attach_shared_array(name: Name, *, validate_shape: Optional[ShapePattern] = ...,
                        validate_dtype: Optional[DTypeLike] = ..., raise_on_error: Literal[True] = ...,
                        read_only: bool = ..., track: Optional[bool] = ..., unlink: bool = ...,
                        verbose: Any = ...) -> NDArray: ...
@overload
def attach_shared_array(name: Name, *, validate_shape: Optional[ShapePattern] = ...,
                        validate_dtype: Optional[DTypeLike] = ..., raise_on_error: bool,
                        read_only: bool = ..., track: Optional[bool] = ..., unlink: bool = ...,
                        verbose: Any = ...) -> Optional[NDArray]: ...
def attach_shared_array(
    name: Name,
    *,
    validate_shape: Optional[ShapePattern] = None,
    validate_dtype: Optional[DTypeLike] = None,
    raise_on_error: bool = True,
    read_only: bool = False,
    track: Optional[bool] = None,
    unlink: bool = False,
    verbose: Any = None,
) -> Optional[NDArray]:
    """Attach a shared array (cdxcore's ``attach_shared_array``).

    Args:
        name: as for :func:`create_shared_array`.
        validate_shape: the shape it must have (a list or a tuple).
        validate_dtype: the dtype it must have.
        raise_on_error: ``False`` returns None instead of raising ``FileNotFoundError``
            (a shape or dtype mismatch raises ``ValueError`` always, as in cdxcore).
        read_only: map it read-only (for real, not just numpy's flag).
        track: accepted for compatibility and ignored.
        unlink: delete the name when the returned array (and its views) are collected
            in this process.
        verbose: accepted for compatibility and ignored.

    Returns:
        The array over the shared memory, or None (see ``raise_on_error``).

    Raises:
        FileNotFoundError: no such array.
        ValueError: the shape or dtype differs from the one required.
        ndshm.NotReadyError: its creator is still making it.
        ndshm.FormatError: the file is not an array.
        OSError: another system error.
    """
    try:
        arr = ndshm.attach(
            name,
            read_only=read_only,
            validate_shape=None if validate_shape is None else tuple(validate_shape),
            validate_dtype=validate_dtype,
        )
    except FileNotFoundError:
        if raise_on_error:
            raise
        return None
    if unlink:
        _unlink_on_collect(arr, name)
    return arr


def delete_shared_array(name: Name, raise_on_error: bool = True, *, verbose: Any = None) -> bool:
    """Delete the array's name (cdxcore's ``delete_shared_array``); attached arrays stay
    valid.

    Args:
        name: as for :func:`create_shared_array`.
        raise_on_error: ``False`` returns False instead of raising.
        verbose: accepted for compatibility and ignored.

    Returns:
        True when the name is gone (also when it never existed); False when it could not
        be deleted and ``raise_on_error=False``.

    Raises:
        ndshm.FormatError: the file is not an array (it is left alone).
        OSError: another failure (e.g. ``PermissionError``).
    """
    try:
        ndshm.delete(name, missing_ok=True)
        return True
    except OSError:
        if raise_on_error:
            raise
        return False


def is_shared_array(x: Any) -> bool:
    """Whether ``x`` is a numpy array living in an ndshm mapping (cdxcore's function
    always answered True).

    Args:
        x: any object.

    Returns:
        True for an array or view over a live ndshm mapping. Never raises.
    """
    return ndshm.is_shared(x)


# cdxcore.npio's file format (its `_DTYPE_TO_CODE`): a big-endian header
# (u32 length = 8 + 8*ndim, u8 dtype code, u24 ndim, u64 per dimension), then C-order
# data in native byte order. ndshm's loader reads the same format (src/npy.rs); a test
# loads files written here for every code.
_NPIO_CODES = {
    "bool": 0, "int8": 1, "int16": 2, "int32": 3, "int64": 4, "uint16": 5, "uint32": 6,
    "uint64": 7, "float16": 8, "float32": 9, "float64": 10, "complex64": 11, "complex128": 12,
}


def _file_path(file: Any) -> str:
    """A path from a path or an open file object with a name (cdxcore accepts both)."""
    if isinstance(file, (str, bytes, os.PathLike)):
        return os.fsdecode(file)
    name = getattr(file, "name", None)
    if isinstance(name, (str, bytes)) and os.path.exists(name):
        return os.fsdecode(name)
    raise TypeError(f"file must be a path or an open file with a name, not {type(file).__name__}")


def to_file(file: Any, array: NDArray, *, buffering: int = -1, cont_block_size_mb: Any = None) -> None:
    """Write ``array`` to ``file`` in cdxcore's npio format (cdxcore.npio's ``to_file``).

    Args:
        file: a path, or a binary file object open for writing.
        array: the array (written in C order; a copy is made if it is not contiguous).
        buffering: passed to ``open`` for a path.
        cont_block_size_mb: accepted for compatibility and ignored.

    Returns:
        None.

    Raises:
        ValueError: a dtype npio has no code for (e.g. uint8, strings).
        OSError: the file cannot be written.
    """
    a = np.ascontiguousarray(array)
    code = _NPIO_CODES.get(str(a.dtype))
    if code is None or not a.dtype.isnative:
        raise ValueError(f"npio cannot store dtype {a.dtype}")
    header = struct.pack(">IB", 8 + 8 * a.ndim, code) + a.ndim.to_bytes(3, "big")
    header += b"".join(struct.pack(">Q", d) for d in a.shape)
    if isinstance(file, (str, bytes, os.PathLike)):
        with open(file, "wb", buffering=buffering) as f:
            f.write(header)
            f.write(memoryview(a).cast("B"))
    else:
        file.write(header)
        file.write(memoryview(a).cast("B"))


def read_dtype_and_shape(file: Any, buffering: int = -1) -> Tuple["np.dtype[Any]", Tuple[int, ...]]:
    """The dtype and shape an npio file holds, from its header (cdxcore.npio's function).

    Args:
        file: a path, or an open file object with a name.
        buffering: passed to ``open``.

    Returns:
        ``(dtype, shape)``.

    Raises:
        ndshm.FormatError: not an npio file.
        EOFError: shorter than its header.
    """
    with open(_file_path(file), "rb", buffering=buffering) as f:
        head = f.read(8)
        if len(head) < 8:
            raise EOFError(f"{_file_path(file)}: shorter than the npio header")
        total, code = struct.unpack(">IB", head[:5])
        ndim = int.from_bytes(head[5:8], "big")
        if total != 8 + 8 * ndim:
            raise ndshm.FormatError(f"{_file_path(file)}: not an npio file")
        dims = f.read(8 * ndim)
        if len(dims) < 8 * ndim:
            raise EOFError(f"{_file_path(file)}: shorter than the npio header")
    names = {v: k for k, v in _NPIO_CODES.items()}
    if code not in names:
        raise ndshm.FormatError(f"{_file_path(file)}: npio dtype code {code} is not supported")
    return np.dtype(names[code]), struct.unpack(f">{ndim}Q", dims)


@overload
def read_shared_array(file: Any, name: Name, *, validate_shape: Optional[ShapePattern] = ...,
                      validate_dtype: Optional[DTypeLike] = ..., accept_existing: bool = ...,
                      buffering: int = ..., read_only: bool = ..., return_status: Literal[False] = ...,
                      raise_on_error: bool = ..., track: Optional[bool] = ..., unlink: bool = ...,
                      verbose: Any = ...) -> NDArray: ...
@overload
def read_shared_array(file: Any, name: Name, *, validate_shape: Optional[ShapePattern] = ...,
                      validate_dtype: Optional[DTypeLike] = ..., accept_existing: bool = ...,
                      buffering: int = ..., read_only: bool = ..., return_status: Literal[True],
                      raise_on_error: bool = ..., track: Optional[bool] = ..., unlink: bool = ...,
                      verbose: Any = ...) -> Tuple[NDArray, bool]: ...
def read_shared_array(
    file: Any,
    name: Name,
    *,
    validate_shape: Optional[ShapePattern] = None,
    validate_dtype: Optional[DTypeLike] = None,
    accept_existing: bool = True,
    buffering: int = -1,
    read_only: bool = False,
    return_status: bool = False,
    raise_on_error: bool = True,
    track: Optional[bool] = None,
    unlink: bool = False,
    verbose: Any = None,
) -> Any:
    """Load an npio file into the shared array ``name`` (cdxcore's ``read_shared_array``),
    or attach it when it already exists (``accept_existing``).

    Unlike cdxcore: concurrent callers are safe (exactly one reads the file, the others
    wait for it to finish and attach; cdxcore let them attach a half-loaded array or
    fail with ``FileExistsError``), an existing array must match the file's shape and
    dtype, and the file is read through the kernel (``sendfile``), not Python.

    Args:
        file: a path, or an open file object with a name.
        name: the shared array's name.
        validate_shape: the shape the data must have (list or tuple).
        validate_dtype: the dtype the data must have.
        accept_existing: attach an existing array instead of loading (else
            ``FileExistsError``).
        buffering: accepted for compatibility and ignored.
        read_only: map the array read-only.
        return_status: also return whether the array already existed.
        raise_on_error: ``False`` returns None (or ``(None, False)``) instead of raising
            ``FileNotFoundError`` / ``FileExistsError``.
        track: accepted for compatibility and ignored.
        unlink: delete the name when the returned array is collected in this process.
        verbose: accepted for compatibility and ignored.

    Returns:
        The array, or ``(array, existed)`` with ``return_status``.

    Raises:
        ValueError: the data does not have ``validate_shape``/``validate_dtype``, or an
            unsupported dtype.
        ndshm.FormatError: not an npio file, or shorter than its header says.
        FileNotFoundError, FileExistsError, OSError.
    """
    try:
        arr, status = ndshm.load(
            _file_path(file), name, format="npio", accept_existing=accept_existing,
            validate_shape=None if validate_shape is None else tuple(validate_shape),
            validate_dtype=validate_dtype, read_only=read_only, return_status=True,
        )
    except (FileNotFoundError, FileExistsError):
        if raise_on_error:
            raise
        return (None, False) if return_status else None
    if unlink:
        _unlink_on_collect(arr, name)
    existed = status == "attached"
    return (arr, existed) if return_status else arr
