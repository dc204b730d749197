"""Drop-in replacement for ``ndsharray`` (``from ndshm.compat.ndsharray import NdShArray,
supported_types``), built on ndshm's snapshots.

    writer = NdShArray("camera", frame, r_w="w")     # publishes frame
    writer.write(next_frame)                         # any dtype, ndim and shape
    reader = NdShArray("camera", r_w="r")            # in another process
    valid, frame = reader.read()                     # (True, copy) only for new data

What programs written for ndsharray 1.1.4 rely on holds: ``read()`` returns
``(True, snapshot)`` only for data newer than the last read, and ``(False, previous
array)`` otherwise; the returned array is a private copy that later writes do not
change; dtype, ndim and shape may change on every write and the reader follows without
being re-created; data outlive the writer process (a reader started after the writer
exited reads the last write); a writer created without an array publishes an empty
uint8 array; a bad ``r_w`` is ``ValueError``.

What ndshm does differently:

* ``read()`` never returns a torn array as valid (ndsharray compares two timestamps
  without memory barriers and can): a snapshot is retried until it is consistent.
* One segment per name, an ndshm array: ``/dev/shm/NAME``. A shape change reuses it when
  the new data fit the space reserved (at least 64 KiB, twice the largest write so
  far); otherwise the writer replaces it by a larger one under the same name and the old
  one is freed once unmapped. ndsharray leaves a new ``/dev/shm`` file behind on every
  size change. ``ndarray_mmap_name`` is therefore the array's name, not a
  ``NAME_<uuid>``.
* The segment is mode 0600 (ndsharray: 0777 minus the umask), and any ndshm reader in C,
  C++, Fortran, Julia or Rust can take snapshots of it too.
* A writer attaching to an existing array continues its version count instead of
  truncating it under its readers.
* ``read_time_ms`` is measured with the wall clock (the write time is in the array's
  header), ndsharray's with ``time.monotonic()`` of both processes.
"""

import ctypes
import time
from typing import Any, List, Optional, Tuple

import numpy as np

import ndshm
from ndshm import _lib
from ndshm._types import NDArray

__all__ = ["NdShArray", "supported_types"]

supported_types: List[Any] = [
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.float16,
    np.float32,
    np.float64,
    np.complex64,
    np.complex128,
    bool,
]

_SUPPORTED = {np.dtype(t) for t in supported_types}

# The smallest capacity reserved for a new array: small writes then never replace it.
_MIN_CAPACITY = 64 << 10

# How long a read waits for a write in progress before reporting (False, previous).
_READ_TIMEOUT = 1.0


def _check_array(array: object) -> None:
    if not isinstance(array, np.ndarray):
        raise TypeError(f"array must be a numpy.ndarray, not {type(array).__name__}")
    if array.dtype not in _SUPPORTED or not array.dtype.isnative:
        raise NotImplementedError(f"dtype {array.dtype} is not supported")


class NdShArray:
    """Shares numpy arrays between processes: one writer publishes, readers take
    consistent snapshots (see the module documentation)."""

    def __init__(self, name: str, array: NDArray = np.ndarray((0,), dtype=np.uint8),
                 r_w: Optional[str] = None) -> None:
        """Open the shared array ``name`` for writing (``r_w='w'``: created when missing,
        ``array`` published) or reading (``r_w='r'``: it must exist).

        Args:
            name: the array's name (a bare shm name, as ndsharray takes).
            array: the writer's first data; ignored by readers except for its check.
            r_w: ``'r'`` or ``'w'`` (either case).

        Raises:
            ValueError: ``r_w`` is not ``'r'`` or ``'w'``.
            TypeError: ``array`` is not a numpy array.
            NotImplementedError: ``array`` has a dtype ndsharray does not support.
            FileNotFoundError: a reader's array does not exist (start the writer first).
        """
        if r_w not in ("r", "w", "R", "W"):
            raise ValueError("'r' or 'w' must be specified for input argument 'r_w'.")
        _check_array(array)
        self._name = name
        self._access = r_w.lower()
        self._array = array
        self._version = 0
        self._read_time_ms = 0.0
        self._arr: Optional[NDArray] = None
        self._capacity = 0
        if self._access == "w":
            try:
                self._arr = ndshm.attach(name)
                self._capacity = _lib.lib.sa_capacity(self._arr.base._h)
            except FileNotFoundError:
                self._create(array.nbytes)
            self.write(array)
        else:
            self._arr = ndshm.attach(name, ro=True)

    def _create(self, nbytes: int) -> None:
        self._capacity = max(_MIN_CAPACITY, 2 * nbytes)
        self._arr = ndshm.create(self._name, (0,), np.uint8, capacity=self._capacity, force=True)

    @property
    def name(self) -> str:
        """The name given at construction."""
        return self._name

    @property
    def access(self) -> str:
        """``'r'`` or ``'w'``."""
        return self._access

    @property
    def ndarray_mmap_name(self) -> str:
        """The name of the shared memory holding the array: with ndshm, the array's name."""
        return self._name

    @property
    def is_valid(self) -> bool:
        """True while the shared array is attached (writers included, unlike ndsharray)."""
        return self._arr is not None

    @property
    def read_time_ms(self) -> float:
        """Milliseconds between the last successful read's write and that read."""
        return self._read_time_ms

    def write(self, array: NDArray) -> None:
        """Publish ``array`` (any supported dtype, ndim and shape) as the next version.

        Args:
            array: the new data.

        Raises:
            TypeError: opened for reading, or ``array`` is not a numpy array.
            NotImplementedError: an unsupported dtype.
            OSError: no space for a larger array.
        """
        if self._access != "w":
            raise TypeError(f"{self._name}: opened for reading (r_w='r'), cannot write")
        _check_array(array)
        assert self._arr is not None
        grow = array.nbytes > self._capacity
        ndshm.publish(self._arr, array, grow=grow)
        if grow:
            # The capacity grew in place (at least doubled): readers follow by themselves.
            self._capacity = _lib.lib.sa_capacity(self._arr.base._h)

    def read(self) -> Tuple[bool, NDArray]:
        """The latest data if newer than the last read.

        Returns:
            ``(True, copy)`` for data newer than the last read (a private copy that
            later writes do not change), else ``(False, previous array)``.

        Raises:
            Never raises for missing or torn data: those are ``(False, previous)``.
        """
        assert self._arr is not None
        try:
            # Nothing new (TimeoutError, at once) costs one call and no copy; an array
            # replaced under its name (older ndshm grew so) is StaleError.
            ndshm.wait(self._arr, self._version, timeout=0)
            snap, version = ndshm.read_snapshot(self._arr, timeout=_READ_TIMEOUT, return_version=True)
        except ndshm.StaleError:
            # The writer replaced the array: follow it.
            try:
                self._arr = ndshm.attach(self._name, ro=self._access == "r")
            except FileNotFoundError:
                return False, self._array
            return self.read()
        except TimeoutError:
            return False, self._array
        if version <= self._version:
            return False, self._array
        written = _write_time_ns(self._arr)
        self._read_time_ms = max(0.0, (time.time_ns() - written) / 1e6)
        self._version = version
        self._array = snap
        return True, snap


def _write_time_ns(arr: NDArray) -> int:
    t = ctypes.c_int64()
    _lib.lib.sa_get_write_time(arr.base._h, ctypes.byref(t))
    return t.value
