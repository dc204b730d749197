"""ISF's ``shared_numpy_store`` over ndshm: change
``from data_base.IO.LoaderDumper.shared_numpy_store import ...`` to
``from ndshm.compat.isf import ...``.

The store directory keeps ISF's format byte for byte (one raw C-order file per array,
named ``NAME__D0_..._Dn__DTYPE``), so ISF itself keeps reading what this module writes
and this module reads what ISF wrote. The rules live in ``ndshm._isf``.

What differs from ISF, on purpose (each has a test in tests/test_isf_compat.py):

* ``load`` refuses an unknown ``mode`` (``ModeError``; ISF's ``elif 'shared_memory':``
  took every string for shared memory).
* Loading the same rows twice returns the array already loaded (ISF's cache looked up
  another key than it stored, so every load mapped again, and dropping the previous
  mapping left earlier arrays dangling).
* Shared-memory copies are named from a hash of the store directory, the file and its
  identity on disk, plus ISF's ``NAME__START_END``: stores in different directories
  never read each other's copies, and an array saved or appended to since gets a fresh
  copy instead of the old one.
* ``JOB_SHMTMPDIR`` (or ndshm's ``NDSHM_DIR``, which wins when both are set) is where the
  copies live, subdirectories included, on create and on delete alike; without either
  they go to ``/dev/shm`` (ISF raised ``RuntimeError``).
* ``close()`` deletes only the copies this store created, and arrays handed out stay
  valid after it (ndshm arrays own their mapping): nothing segfaults.
* ``append_save`` refuses rows of another dtype (``AppendMismatchError``), allows any
  number of unflushed appends, serialises appenders in different processes with a
  directory lock, and is crash-safe: the file name is the commit point and bytes beyond
  the length it claims are ignored by readers and cut by the next writer.
  ``autoflush=False`` keeps the rows in this process until ``flush()`` (ISF wrote them to
  the file at once, but they were uncommitted until the rename either way).
* 0-d arrays, which ISF saved under a file name it could never load, are refused with
  ``UnsupportedArrayError``; 0-d files ISF wrote load.
* Name rules stay: ``__`` is not allowed in a name, ``Loader.pickle`` and ``Loader.json``
  are reserved (``StoreNameError``, a ``ValueError``, instead of an ``assert``); names
  ending in ``_`` are refused too (ISF misread them).
* A file shorter than its name says raises ``ndshm.FormatError`` (ISF filled zeros).
* ``memmap_from_disk`` works (ISF's raised ``NameError``); ``shared_array_from_numpy``
  makes up a name when given none; shared-memory copies need one of ndshm's 14 dtypes.
* ``Uninterruptible`` blocks SIGINT/SIGTERM with ``pthread_sigmask`` and delivers them on
  exit (ISF ignored and so lost them). ``flush`` does not need it: a rename is atomic.
* No printing, no logging at level 500, no module-level list keeping stores alive.
* Not provided: ISF's database ``Loader``/``dump``/``check`` and ``sns_list``.

``from ndshm.compat.isf import *`` also gives ``os``, ``tempfile``, ``shutil``, ``np`` and
``signal`` (ISF's own test uses them from that import).
"""

from __future__ import annotations

import hashlib
import os
import shutil  # noqa: F401 - ISF's test takes it from `import *`
import signal
import tempfile  # noqa: F401 - ISF's test takes it from `import *`
import uuid
from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np

import ndshm
from ndshm import _isf
from ndshm._isf import AppendMismatchError as AppendMismatchError
from ndshm._isf import NotInSharedMemoryError as NotInSharedMemoryError
from ndshm._isf import NotInStoreError as NotInStoreError
from ndshm._isf import StoreNameError as StoreNameError
from ndshm._isf import UnsupportedArrayError as UnsupportedArrayError
from ndshm._types import DTypeLike, NDArray, PathLike

MODES = ("shared_memory", "memmap", "memory")


class ModeError(ValueError):
    """``load`` was given a mode other than 'shared_memory', 'memmap' or 'memory'."""


def _shm_name(name: str) -> str:
    """ISF's names may start with '/' (its SharedMemory added one); ndshm's do not."""
    if not isinstance(name, str):
        raise TypeError(f"name must be str, not {type(name).__name__}")
    return name[1:] if name.startswith("/") else name


class SharedMemory:
    """ISF's ``SharedMemory`` handle over an ndshm array (``buf``, ``name``, ``size``,
    ``close()``, ``unlink()``), without ISF's dangers: ``close()`` never unmaps memory an
    array still uses (the arrays own their mapping), and a failed attach deletes nothing.
    """

    def __init__(self, name: Optional[str] = None, create: bool = False, size: int = 0,
                 track_resource: bool = False) -> None:
        """Create (``create=True``) a zero-filled segment of ``size`` bytes, or attach one.

        Args:
            name: the segment's name (a leading '/' is dropped); None with ``create``
                makes up a unique one.
            create: create it (exclusively) instead of attaching.
            size: bytes, for ``create``.
            track_resource: must be False (ISF did not support it either).

        Raises:
            FileExistsError: ``create`` and the name exists.
            FileNotFoundError: attaching and there is no such name.
            ValueError: a negative size, no name to attach, or ``track_resource``.
            OSError: another system error.
        """
        if track_resource:
            raise ValueError("track_resource=True is not supported (ndshm has no resource tracker)")
        if size < 0:
            raise ValueError("'size' must be a positive integer")
        if name is None:
            if not create:
                raise ValueError("attaching needs a name")
            name = f"isf-{uuid.uuid4().hex}"
        n = _shm_name(name)
        arr = ndshm.create(n, (int(size),), np.uint8) if create else ndshm.attach(n)
        self._set(n, arr)

    def _set(self, name: str, arr: Optional[NDArray]) -> None:
        self._name = name
        self._arr = arr
        self._size = 0 if arr is None else int(arr.nbytes)

    @classmethod
    def _of(cls, name: str, arr: NDArray) -> "SharedMemory":
        shm = cls.__new__(cls)
        shm._set(name, arr)
        return shm

    @property
    def buf(self) -> memoryview:
        """The segment's bytes (a writable memoryview unless the mapping is read-only)."""
        if self._arr is None:
            raise ValueError(f"SharedMemory {self._name!r} is closed")
        return self._arr.reshape(-1).view(np.uint8).data

    @property
    def name(self) -> str:
        """The segment's name, without a leading '/'."""
        return self._name

    @property
    def size(self) -> int:
        """Size in bytes of the data."""
        return self._size

    def close(self) -> None:
        """Drop this handle's reference to the memory. Arrays built over it stay valid
        (the mapping lives as long as they do).

        Never raises.
        """
        self._arr = None

    def unlink(self) -> None:
        """Delete the segment's name, for every process; attached arrays stay valid.

        Raises:
            FileNotFoundError: it was already deleted.
            OSError: another system error.
        """
        ndshm.delete(self._name)

    def __reduce__(self) -> Tuple[Any, Tuple[str, bool, int]]:
        return (self.__class__, (self._name, False, self._size))

    def __repr__(self) -> str:
        return f"SharedMemory({self._name!r}, size={self._size})"


def shared_array_from_numpy(arr: NDArray, name: Optional[str] = None) -> Tuple[SharedMemory, NDArray]:
    """Copy an array into a new shared array (ISF's function).

    Args:
        arr: the array (any layout; stored in C order).
        name: the shared array's name (a leading '/' is dropped); None makes up one.

    Returns:
        ``(shm, shared_array)``.

    Raises:
        FileExistsError: the name exists.
        ValueError: a bad name or a dtype ndshm does not support.
        OSError: out of space (ENOSPC) or another system error.
    """
    a = np.asarray(arr)
    n = _shm_name(name) if name is not None else f"isf-{uuid.uuid4().hex}"
    out = ndshm.create(n, a.shape, a.dtype)
    np.copyto(out, a)
    return SharedMemory._of(n, out), out


def shared_array_from_disk(path: PathLike, shape: Optional[Any] = None, dtype: Optional[DTypeLike] = None,
                           name: Optional[str] = None, start_row: Optional[int] = None,
                           end_row: Optional[int] = None) -> Tuple[SharedMemory, NDArray]:
    """Load rows of a raw C-order file into a new shared array (ISF's function).

    Args:
        path: the file.
        shape: the whole file's shape (None: from an ISF file name).
        dtype: its dtype (None: from an ISF file name).
        name: the new shared array's name (a leading '/' is dropped); None makes up one.
        start_row: first row to load (None: 0).
        end_row: end row, exclusive (None: the last).

    Returns:
        ``(shm, shared_array)``.

    Raises:
        FileExistsError: the name exists.
        ndshm.FormatError: the file is shorter than ``shape`` needs (ISF filled zeros).
        ValueError: rows outside the array, no shape/dtype, a dtype ndshm does not hold.
        FileNotFoundError: no such file.
        OSError: another system error.
    """
    p = os.fsdecode(path)
    n = _shm_name(name) if name is not None else f"isf-{uuid.uuid4().hex}"
    arr = _isf.shared_file(p, shape, dtype, n, start_row, end_row)
    return SharedMemory._of(n, arr), arr


def memmap_from_disk(path: PathLike, shape: Optional[Any] = None, dtype: Optional[DTypeLike] = None,
                     name: Optional[str] = None, start_row: Optional[int] = None,
                     end_row: Optional[int] = None) -> NDArray:
    """Map rows of a raw C-order file read-only (ISF's function, which never worked).

    Args:
        path: the file (at least as long as ``shape`` needs; trailing bytes are ignored).
        shape: the whole file's shape (None: from an ISF file name).
        dtype: its dtype (None: from an ISF file name).
        name: ignored (as in ISF).
        start_row: first row (None: 0).
        end_row: end row, exclusive (None: the last).

    Returns:
        A read-only ``numpy.memmap``.

    Raises:
        ndshm.FormatError: the file is shorter than ``shape`` needs.
        ValueError: rows outside the array, or no shape/dtype.
        FileNotFoundError: no such file.
    """
    return _isf.memmap_file(os.fsdecode(path), shape, dtype, start_row, end_row)


def shared_array_from_shared_mem_name(fname: str, shape: Optional[Any] = None,
                                      dtype: Optional[DTypeLike] = None) -> Tuple[SharedMemory, NDArray]:
    """Attach an existing shared array by name (ISF's function). ndshm arrays record
    their shape and dtype: ``shape`` and ``dtype`` are checked, not trusted.

    Args:
        fname: the name (a leading '/' is dropped).
        shape: the shape it must have (None: any).
        dtype: the dtype it must have (None: any).

    Returns:
        ``(shm, shared_array)``.

    Raises:
        FileNotFoundError: no such array.
        ValueError: its shape or dtype differs.
        ndshm.FormatError: not an ndshm array (e.g. a raw segment made by ISF).
        OSError: another system error.
    """
    n = _shm_name(fname)
    want = None if shape is None else (int(shape),) if np.ndim(shape) == 0 else tuple(int(d) for d in shape)
    arr = ndshm.attach(n, validate_shape=want, validate_dtype=dtype)
    return SharedMemory._of(n, arr), arr


class Uninterruptible:
    """Defers SIGINT and SIGTERM while inside (``with Uninterruptible(): ...``): they are
    blocked with ``pthread_sigmask`` and delivered when the block ends (ISF ignored them,
    so a SIGTERM during the block was lost). Works in any thread; in a thread other than
    the main one, the kernel may deliver a signal to another thread.
    """

    def __init__(self) -> None:
        """Make the context manager.

        Never raises.
        """
        self._old: Optional[Set[Any]] = None

    def __enter__(self) -> "Uninterruptible":
        self._old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._old)
            self._old = None


class SharedNumpyStore:
    """A directory of arrays on disk, each loadable as a memory map, a private copy or a
    shared-memory copy loaded once per node (ISF's ``SharedNumpyStore``)."""

    def __init__(self, working_dir: PathLike) -> None:
        """Open (creating it if needed) the store directory.

        Args:
            working_dir: the directory.

        Raises:
            OSError: it cannot be created or read.
        """
        self.working_dir = os.fsdecode(working_dir)
        self._dir = _isf.Directory(self.working_dir, create=True)
        # ISF's attribute (its hash of the directory, which it never used); here a hash
        # of the real path goes into every shared copy's name.
        self._suffix = hashlib.md5(self._dir.real.encode("utf-8", "surrogateescape")).hexdigest()[:8]
        # Full ndshm name of each shared copy -> (handle, array); _created: the ones this
        # store made (close() deletes those only).
        self._shared_memory_buffers: Dict[str, Tuple[SharedMemory, NDArray]] = {}
        self._created: Set[str] = set()
        self._pending: Dict[str, List[NDArray]] = {}
        self._files: Dict[str, str] = {}
        self.update()

    def update(self) -> None:
        """Read the directory again (arrays saved by other processes appear).

        Raises:
            OSError: the directory cannot be read.
        """
        self._files = {n: e.fname for n, e in self._dir.scan().items()}

    def _sync_files(self) -> None:
        self._files = {n: e.fname for n, e in self._dir.entries.items()}

    @staticmethod
    def _get_metadata_from_fname(fname: str) -> Tuple[str, Tuple[int, ...], str]:
        """(name, shape, dtype string) from an ISF file name; ValueError if it is not one."""
        e = _isf.parse_fname(fname)
        if e is None:
            raise ValueError(f"{fname!r} is not an array file name (NAME__D0_..._Dn__DTYPE)")
        return e.name, e.shape, e.dtype_str

    def _get_metadata_from_name(self, name: str) -> Tuple[str, Tuple[int, ...], str]:
        """(file name, shape, dtype string) of the array; NotInStoreError if missing."""
        e = self._dir.entry(name)
        self._sync_files()
        return e.fname, e.shape, e.dtype_str

    def _get_fname_from_metadata(self, name: str, shape: Tuple[int, ...], dtype: Any) -> str:
        return _isf.format_fname(name, shape, dtype)

    def _get_fname(self, arr: NDArray, name: str) -> str:
        return _isf.format_fname(name, arr.shape, _isf.dtype_string(arr.dtype))

    def get_expected_file_length(self, name: str) -> int:
        """Bytes the array's file holds according to its name (shape times item size).

        Args:
            name: the array.

        Returns:
            The length in bytes.

        Raises:
            NotInStoreError: no such array.
        """
        e = self._dir.entry(name)
        return _isf.nbytes(e.shape, e.dtype.itemsize)

    def save(self, arr: NDArray, name: str) -> None:
        """Write ``arr`` as ``name`` (replacing any array of that name, whatever its shape),
        atomically.

        Args:
            arr: the array (any layout; written in C order, as ``ndarray.tofile``).
            name: its name: no ``__``, not ``Loader.pickle``/``Loader.json``, not ending
                in ``_``.

        Raises:
            StoreNameError: a name ISF's convention cannot hold.
            UnsupportedArrayError: a 0-d array, or an object or structured dtype.
            OSError: the file cannot be written.
        """
        self._pending.pop(name, None)
        self._dir.save(np.asarray(arr), name)
        self._sync_files()

    def append_save(self, arr: NDArray, name: str, autoflush: bool = True) -> None:
        """Append rows (along axis 0) to the array ``name``, or save it if there is none.

        Args:
            arr: the rows: same dtype, number of dimensions and trailing dimensions.
            name: the array's name.
            autoflush: commit now; False keeps the rows until :meth:`flush` (readers see
                the old rows until then).

        Raises:
            StoreNameError: a name ISF's convention cannot hold.
            AppendMismatchError: another dtype, number of dimensions or trailing shape.
            UnsupportedArrayError: a 0-d array.
            ndshm.FormatError: the file is shorter than its name says.
            OSError: the file cannot be written.
        """
        _isf.check_name(name)
        a = np.asarray(arr)
        if name in self._pending:
            first = self._pending[name][0]
            _isf.check_rows([a], first.shape, first.dtype, name)
        else:
            e = self._dir.entries.get(name) or self._dir.scan().get(name)
            if e is not None:
                _isf.check_rows([a], e.shape, e.dtype, name)
            elif a.ndim == 0:
                raise UnsupportedArrayError(f"{name}: a 0-d array cannot be stored (store arr.reshape(1))")
        if not autoflush and (name in self._pending or name in self._dir.entries):
            self._pending.setdefault(name, []).append(np.array(a, order="C", copy=True))
            return
        rows = self._pending.pop(name, []) + [a]
        self._dir.append(name, rows)
        self._sync_files()

    def flush(self) -> None:
        """Commit every append made with ``autoflush=False``.

        Raises:
            AppendMismatchError: the array changed in between (another process saved it
                with another dtype or trailing shape); its pending rows are kept.
            OSError: a file cannot be written.
        """
        for name in list(self._pending):
            self._dir.append(name, self._pending[name])
            del self._pending[name]
        self._sync_files()

    def close(self) -> None:
        """Forget the shared-memory copies this store loaded, and delete the ones it
        created (copies other processes created stay). Arrays already returned stay
        valid.

        Raises:
            OSError: a copy cannot be deleted (e.g. ``PermissionError``).
        """
        for full in list(self._shared_memory_buffers):
            if full in self._created:
                ndshm.delete(full, missing_ok=True)
        self._shared_memory_buffers.clear()
        self._created.clear()

    def load(self, name: str, mode: str = "shared_memory", start_row: Optional[int] = None,
             end_row: Optional[int] = None, allow_create_shm: bool = False) -> NDArray:
        """Load rows of the array ``name``.

        Args:
            name: the array.
            mode: ``'shared_memory'`` (a copy shared by every process on the node),
                ``'memmap'`` (a read-only map of the file) or ``'memory'`` (a private copy).
            start_row: first row (None: 0).
            end_row: end row, exclusive (None: the last).
            allow_create_shm: in ``'shared_memory'`` mode, load the copy when no process
                has; exactly one of many processes doing so at once reads the file.

        Returns:
            The array. The same rows loaded again in shared memory return the same array.

        Raises:
            ModeError: an unknown mode.
            NotInStoreError: no such array.
            NotInSharedMemoryError: no copy yet and ``allow_create_shm`` is False.
            ndshm.FormatError: the file is shorter than its name says.
            ValueError: rows outside the array, or a dtype shared memory cannot hold.
            OSError: out of space (ENOSPC) or another system error.
        """
        if mode not in MODES:
            raise ModeError(f"mode must be one of {MODES}, not {mode!r}")
        if mode == "memmap":
            return self._dir.memmap(name, start_row, end_row)
        if mode == "memory":
            return self._dir.read(name, start_row, end_row)
        known = {k: v[1] for k, v in self._shared_memory_buffers.items()}
        got = self._dir.shared(name, start_row, end_row, create=allow_create_shm, known=known)
        if got.name not in self._shared_memory_buffers:
            self._shared_memory_buffers[got.name] = (SharedMemory._of(got.name, got.array), got.array)
            if got.created:
                self._created.add(got.name)
        self._sync_files()
        return got.array
