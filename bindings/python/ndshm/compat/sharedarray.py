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
"""

import collections

import numpy as np

import ndshm

MS_ASYNC = ndshm.MS_ASYNC
MS_SYNC = ndshm.MS_SYNC
MS_INVALIDATE = ndshm.MS_INVALIDATE

ArrayDesc = collections.namedtuple("ArrayDesc", ["name", "dtype", "dims"])

_builtin_list = list


def create(name, shape, dtype=float, *, format="ndshm", **options):
    """Create a zero-filled shared array (``name``: ``shm://NAME``, ``file://PATH`` or NAME)."""
    return ndshm.create(name, shape, dtype, format=format, **options)


def attach(name, ro=False):
    """Attach an existing array; ``ro=True`` maps it read-only."""
    return ndshm.attach(name, ro=ro)


def delete(name):
    """Remove the array's name; attached arrays stay valid."""
    ndshm.delete(name)


def list():  # noqa: A001 - SharedArray's name
    """The arrays in shared memory, as ``ArrayDesc(name: bytes, dtype: numpy type, dims)``."""
    out = []
    for d in ndshm.list():
        name = d.name[len("shm://"):] if d.name.startswith("shm://") else d.name
        out.append(ArrayDesc(name.encode(), np.dtype(d.dtype).type, d.dims))
    return tuple(out)
