"""SharedArray's module API over ndshm: change ``import SharedArray as sa`` to
``import ndshm.compat.sharedarray as sa``.

What differs from SharedArray, on purpose:

* ``create`` writes ndshm's v1 format (with a ready flag, creator identity and
  checksum) unless ``format='sharedarray'`` is given; use that when programs still on
  the SharedArray package must attach the array. ``attach`` reads both formats
  (SharedArray segments from numpy-1 and numpy-2 builds alike).
* Memory is reserved at create: a full ``/dev/shm`` raises ``OSError`` (ENOSPC) instead
  of a SIGBUS at first write. Permissions are 0600 (SharedArray: 0666 minus the umask).
* Segments are validated: a trailer claiming more data than the file holds, or a
  hostile ``ndims``, raises ``ndshm.FormatError`` (an ``OSError``) instead of reading out
  of bounds or crashing ``list()``.
* ``attach(ro=True)`` maps read-only, as SharedArray 3.2 does.
* ``list()`` returns ``ArrayDesc(name, dtype, dims)`` with ``name`` as bytes without the
  ``shm://`` scheme, as SharedArray does, for arrays in ``/dev/shm`` (and ``NDSHM_DIR``).
* The base object (``a.base``) has ``name``, ``addr`` and ``size`` as read-only
  attributes (SharedArray lets them be overwritten, then unmaps the forged range).
  ``name`` is the name as passed to ``create``/``attach``, as SharedArray's is; ``size``
  is the data's bytes (SharedArray's includes its trailer).
"""

import os
from typing import Any, NamedTuple, Tuple, Type

import numpy as np

import ndshm
from ndshm._types import DTypeLike, Name, NDArray, ShapeLike

MS_ASYNC: int = ndshm.MS_ASYNC
MS_SYNC: int = ndshm.MS_SYNC
MS_INVALIDATE: int = ndshm.MS_INVALIDATE


class ArrayDesc(NamedTuple):
    """One array as SharedArray's ``list()`` describes it."""

    #: The name without the ``shm://`` scheme, as bytes (SharedArray's convention).
    name: bytes
    #: The numpy scalar type, e.g. ``numpy.float64``.
    dtype: Type[np.generic]
    #: The shape.
    dims: Tuple[int, ...]


_builtin_list = list


def _as_given(arr: NDArray, name: Name) -> NDArray:
    """SharedArray's base object reports the name exactly as its caller passed it."""
    base = ndshm.base_of(arr)
    if base is not None:
        base._given_name = name if isinstance(name, str) else os.fsdecode(name)
    return arr


def create(name: Name, shape: ShapeLike, dtype: DTypeLike = float, *, format: str = "ndshm",
           **options: Any) -> NDArray:
    """Create a zero-filled shared array (SharedArray's ``create``).

    Args:
        name: ``"shm://NAME"``, ``"file://PATH"`` or a bare ``"NAME"``.
        shape: an int, a sequence of ints, or a 1-d numpy array of ints.
        dtype: anything ``numpy.dtype()`` accepts (default float64).
        format: ``"ndshm"`` (default) or ``"sharedarray"`` (SharedArray's own layout, for
            programs still on the SharedArray package).
        **options: further keywords of :func:`ndshm.create` (``force``, ``sparse``, ...).

    Returns:
        The new array; ``a.base.name`` is ``name`` as passed.

    Raises:
        FileExistsError: the name exists.
        ValueError: a bad name, shape or dtype.
        OSError: out of space (ENOSPC) or another system error.
    """
    return _as_given(ndshm.create(name, shape, dtype, format=format, **options), name)


def attach(name: Name, ro: bool = False) -> NDArray:
    """Attach an existing array (SharedArray's ``attach``), either format.

    Args:
        name: as for :func:`create`.
        ro: map it read-only (writes are impossible, not just flagged).

    Returns:
        The array over the shared memory; ``a.base.name`` is ``name`` as passed.

    Raises:
        FileNotFoundError: no such array.
        ndshm.FormatError: the file is not an array (an ``OSError``, as SharedArray's
            "No SharedArray at this address").
        PermissionError: not permitted (or another user's array).
        OSError: another system error.
    """
    return _as_given(ndshm.attach(name, ro=ro), name)


def delete(name: Name) -> None:
    """Remove the array's name (SharedArray's ``delete``); attached arrays stay valid.

    Args:
        name: as for :func:`create`.

    Raises:
        FileNotFoundError: no such array.
        ndshm.FormatError: the file is not an array (it is left alone).
        OSError: another system error.
    """
    ndshm.delete(name)


def list() -> Tuple[ArrayDesc, ...]:  # noqa: A001 - SharedArray's name
    """The arrays in shared memory (SharedArray's ``list``).

    Returns:
        A tuple of ``ArrayDesc(name: bytes, dtype: numpy scalar type, dims: tuple)``.

    Raises:
        OSError: ``/dev/shm`` (or ``$NDSHM_DIR``) cannot be read.
    """
    out = []
    for d in ndshm.list():
        name = d.name[len("shm://"):] if d.name.startswith("shm://") else d.name
        out.append(ArrayDesc(name.encode(), np.dtype(d.dtype).type, d.dims))
    return tuple(out)
