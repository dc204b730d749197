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
* ``read_shared_array`` (loading files) is not offered yet: it arrives with ndshm's
  file-loading feature.
"""

from __future__ import annotations

import weakref
from typing import Any, Literal, Optional, overload

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
