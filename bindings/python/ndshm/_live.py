"""Live data: publish new versions, take consistent snapshots, wait for a newer version
without polling, change the shape, and a process-shared lock that survives its holder.

    >>> a = ndshm.create("shm://state", (100,), capacity=1 << 20)   # room to grow
    >>> with ndshm.writing(a):          # or: with a.base.write():
    ...     a[:] = step()               # readers never see half of this
    >>> ndshm.publish(a, np.ones((10, 10)))        # new shape and data, one version
    >>> v = ndshm.version(a)
    >>> snap = ndshm.read_snapshot(b)              # in another process: a private copy
    >>> v = ndshm.wait(b, v, timeout=1.0)          # sleeps until a newer version
    >>> with ndshm.lock(a) as lk:                  # several writers take turns
    ...     if lk.owner_died: repair(a)

Thin wrappers over the C functions of src/ffi/sync.rs (the protocol is documented in
docs/FORMAT.md). Each function takes an ndshm array (or a view of one) and works on the
array's handle, whatever part of it the view shows.
"""

import ctypes
import math
from typing import Any, Literal, Optional, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

from . import SharedMemoryBase, _lib, base_of
from ._lib import OwnerDiedError, lib
from ._lib import ext as _ext
from ._types import NDArray

__all__ = [
    "version",
    "wait",
    "writing",
    "Write",
    "publish",
    "read_snapshot",
    "read_begin",
    "read_valid",
    "lock",
    "Lock",
    "StaleError",
]

StaleError = _lib.StaleError

#: What the live-data functions take: an ndshm array, a view of one, or its base object.
Shared = Union[NDArray, SharedMemoryBase]

# The geometry each handle described last (shape, dtype, order) is cached on its base
# (SharedMemoryBase._geom), so a snapshot or publish costs one foreign call when the
# shape did not change. The compiled fast path (ndshm/_ext.c) reads it there: its
# functions return NotImplemented for anything but the common case (an ndshm array,
# the cached geometry, a matching contiguous numpy array), which the Python code below
# then handles, with the same results and errors.
_NI = NotImplemented


def _base(a: Shared) -> SharedMemoryBase:
    """The SharedMemoryBase behind an ndshm array, a view of one, or the base itself."""
    b = getattr(a, "base", None)
    if type(b) is SharedMemoryBase and b._h is not None:  # the common case, fast
        return b
    b = a if isinstance(a, SharedMemoryBase) else base_of(a)
    if b is None or b._h is None:
        raise TypeError(f"not an ndshm array (or a view of one): {type(a).__name__}")
    return b


def _ms(timeout: Optional[float], none_means: int) -> int:
    """Seconds to the C convention (negative: no limit, 0: once, else milliseconds)."""
    if timeout is None:
        return none_means
    t = float(timeout)
    if math.isnan(t):
        raise ValueError("timeout is NaN")
    if t == math.inf:
        return -1
    if t < 0:
        raise ValueError(f"timeout must be >= 0 seconds (or None), not {timeout!r}")
    return math.ceil(t * 1000)


def _describe(b: SharedMemoryBase) -> Tuple[Tuple[int, ...], "np.dtype[Any]", str]:
    d = _lib.sa_desc()
    lib.sa_describe(b._h, ctypes.byref(d))
    g = (
        tuple(d.shape[: d.ndim]),
        np.dtype(d.typestr.decode()),
        "F" if d.order == _lib.SA_ORDER_F else "C",
    )
    b._geom = g
    return g


_get_version = lib.sa_get_version


def version(a: Shared) -> int:
    """The latest published version of the array: how many writes have completed.

    Args:
        a: an ndshm array (or a view of one, or its base object).

    Returns:
        The version, 0 before the first write.

    Raises:
        TypeError: ``a`` is not an ndshm array.
        ValueError: the array has the SharedArray layout (no header for versions).
    """
    if _ext is not None:
        r = _ext.version(a)
        if r is not _NI:
            return r  # type: ignore[no-any-return]
    v = ctypes.c_uint64()
    _get_version(_base(a)._h, ctypes.byref(v))
    return v.value


def wait(a: Shared, newer_than: int, timeout: Optional[float] = None) -> int:
    """Block until a version newer than ``newer_than`` is published and return it.

    Sleeps in the kernel (a futex on the shared version word): no CPU while waiting,
    woken as soon as a writer publishes.

    Args:
        a: an ndshm array (or a view of one, or its base object).
        newer_than: the version the caller has.
        timeout: seconds to wait at most (None: no limit; 0: do not wait).

    Returns:
        The newer version.

    Raises:
        TimeoutError: no newer version within ``timeout``.
        StaleError: the array was replaced under its name by a larger one (attach it
            again).
        TypeError: ``a`` is not an ndshm array.
    """
    if _ext is not None:
        r = _ext.wait(a, int(newer_than), _ms(timeout, -1))
        if r is not _NI:
            return r  # type: ignore[no-any-return]
    v = ctypes.c_uint64()
    lib.sa_wait_version(_base(a)._h, int(newer_than), _ms(timeout, -1), ctypes.byref(v))
    return v.value


class Write:
    """A write in progress (see :func:`writing`): ``version`` is the version published
    when the block ended, ``repair`` whether the previous write was never finished."""

    __slots__ = ("_b", "version", "repair")

    def __init__(self, b: SharedMemoryBase) -> None:
        self._b = b
        self.version: Optional[int] = None
        self.repair = False

    def __enter__(self) -> "Write":
        try:
            lib.sa_write_begin(self._b._h)
        except OwnerDiedError:
            # The write has begun; the previous writer died in the middle of one.
            self.repair = True
        return self

    def __exit__(self, *exc: object) -> None:
        v = ctypes.c_uint64()
        lib.sa_write_end(self._b._h, ctypes.byref(v))
        self.version = v.value


def writing(a: Shared) -> Write:
    """A context manager around a write: readers' snapshots never see half of it.

        with ndshm.writing(a) as w:
            a[...] = new_values
        w.version                      # the version just published

    ``w.repair`` is True when the previous write was never finished (its writer died
    mid-write; taken over because this thread holds the lock): rewrite all the data. The
    write ends (and is published) also when the block raises. Same as
    ``a.base.write()``.

    Args:
        a: an ndshm array (or a view of one, or its base object), mapped read-write.

    Returns:
        The context manager; the write begins when the ``with`` block is entered.

    Raises:
        BlockingIOError: (on entering) another writer is in the middle of a write;
            writers take turns with :func:`lock`.
        PermissionError: (on entering) the array is attached read-only.
        TypeError: ``a`` is not an ndshm array.
    """
    return Write(_base(a))


def publish(a: Shared, data: npt.ArrayLike, *, grow: bool = False) -> int:
    """Publish ``data`` as the next version, in one call.

    When ``data`` has another shape or dtype than the array, the array takes them on
    (its order stays), atomically with the data. ``a`` itself keeps its numpy shape:
    read the new shape with :func:`read_snapshot`.

    Args:
        a: an ndshm array (or a view of one, or its base object), mapped read-write.
        data: the new contents (anything ``numpy.asarray`` takes).
        grow: when the data do not fit the capacity reserved at create, grow the
            capacity in place (at least doubling it); readers follow with their next
            :func:`read_snapshot`.

    Returns:
        The version published.

    Raises:
        OSError: (ENOSPC) the data do not fit the capacity: the message says how much
            is reserved and what was asked.
        BlockingIOError: another writer is in the middle of a write.
        PermissionError: the array is attached read-only.
        ValueError: an unsupported dtype or shape.
        TypeError: ``a`` is not an ndshm array.
    """
    if _ext is not None:
        r = _ext.publish(a, data)  # same shape and dtype, contiguous: one C call
        if r is not _NI:
            return r  # type: ignore[no-any-return]
    b = _base(a)
    g = b._geom or _describe(b)
    arr = np.asarray(data)
    order = g[2]
    if not (arr.flags.f_contiguous if order == "F" else arr.flags.c_contiguous):
        arr = np.array(arr, order=order)
    v = ctypes.c_uint64()
    ptr = arr.ctypes.data
    if arr.shape == g[0] and arr.dtype == g[1]:
        lib.sa_publish(b._h, ptr, arr.nbytes, ctypes.byref(v))
        return v.value
    from . import _DIM, _NDIM, _c_shape, _dtype_code, _shape

    ndim, c_shape = _c_shape(_shape(arr.shape), _DIM, _NDIM)
    flags = _lib.SA_GROW if grow else 0
    try:
        lib.sa_publish_shape(
            b._h, ndim, c_shape, _dtype_code(arr.dtype), ptr, arr.nbytes, flags, ctypes.byref(v)
        )
    finally:
        _describe(b)
    return v.value


@overload
def read_snapshot(a: Shared, out: Optional[NDArray] = ..., *, timeout: Optional[float] = ...,
                  return_version: Literal[False] = ...) -> NDArray: ...
@overload
def read_snapshot(a: Shared, out: Optional[NDArray] = ..., *, timeout: Optional[float] = ...,
                  return_version: Literal[True]) -> Tuple[NDArray, int]: ...
def read_snapshot(
    a: Shared,
    out: Optional[NDArray] = None,
    *,
    timeout: Optional[float] = 1.0,
    return_version: bool = False,
) -> Union[NDArray, Tuple[NDArray, int]]:
    """A consistent copy of the array's data, as a new numpy array (or into ``out``).

    Retries while writers write. The copy has the shape and dtype of its version (a
    writer may have changed them).

    Args:
        a: an ndshm array (or a view of one, or its base object).
        out: an array of exactly the snapshot's shape and dtype to copy into.
        timeout: seconds to keep retrying at most (None: no limit).
        return_version: return ``(array, version)`` instead of the array.

    Returns:
        The copy, or ``(copy, version)``.

    Raises:
        TimeoutError: every attempt within ``timeout`` overlapped a write.
        ValueError: ``out`` does not have the snapshot's shape and dtype (its contents
            are then undefined), or is not a writeable contiguous array.
        StaleError: the array was replaced under its name by a larger one (attach it
            again).
        TypeError: ``a`` is not an ndshm array.
    """
    ms = _MS_DEFAULT if timeout == 1.0 else _ms(timeout, -1)
    if _ext is not None:
        r = _ext.snapshot(a, out, ms, return_version)
        if r is not _NI:
            return r  # type: ignore[no-any-return]
    b = _base(a)
    g = b._geom or _describe(b)
    v = ctypes.c_uint64()
    reshaped = ctypes.c_int32()
    if out is not None and not (
        out.flags.writeable and (out.flags.c_contiguous or out.flags.f_contiguous)
    ):
        raise ValueError("out must be a writeable contiguous array")
    while True:
        dst = np.empty(g[0], g[1], order=g[2]) if out is None else out  # type: ignore[call-overload]
        try:
            lib.sa_read_copy(b._h, dst.ctypes.data, dst.nbytes, ms, ctypes.byref(v), ctypes.byref(reshaped))
        except ValueError:  # SA_ERR_MISMATCH: the buffer is smaller than the snapshot
            g = _describe(b)
            if out is not None:
                raise _mismatch(out, g) from None
            continue
        if reshaped.value:
            g = _describe(b)
            if (dst.shape, dst.dtype) != (g[0], g[1]):
                if out is not None:
                    raise _mismatch(out, g)
                continue  # copied into a buffer of the old shape: take it again
        elif out is not None and (out.shape, out.dtype) != (g[0], g[1]):
            raise _mismatch(out, g)  # a larger `out` of another shape holds the bytes, not the array
        return (dst, v.value) if return_version else dst


_MS_DEFAULT = _ms(1.0, -1)


def _mismatch(out: NDArray, g: Tuple[Tuple[int, ...], "np.dtype[Any]", str]) -> ValueError:
    return ValueError(
        f"out has shape {out.shape} and dtype {out.dtype}; the snapshot has shape {g[0]} "
        f"and dtype {g[1]}"
    )


def read_begin(a: Shared, timeout: Optional[float] = 1.0) -> int:
    """Begin an in-place read of ``a`` (no copy); check it with :func:`read_valid`.

    Only for arrays whose shape does not change (``a`` keeps its numpy shape).

    Args:
        a: an ndshm array (or a view of one, or its base object).
        timeout: seconds to wait at most for a write in progress to end (None: no limit).

    Returns:
        A token for :func:`read_valid`.

    Raises:
        TimeoutError: a write was still in progress after ``timeout``.
        TypeError: ``a`` is not an ndshm array.
    """
    t = ctypes.c_uint64()
    lib.sa_read_begin(_base(a)._h, _ms(timeout, -1), ctypes.byref(t))
    return t.value


def read_valid(a: Shared, token: int) -> bool:
    """Whether what was read in place since :func:`read_begin` is one consistent version.

    Args:
        a: the array given to :func:`read_begin`.
        token: what :func:`read_begin` returned.

    Returns:
        True when no write happened in between; False when the read may be torn (read
        again).

    Raises:
        TypeError: ``a`` is not an ndshm array.
    """
    try:
        lib.sa_read_end(_base(a)._h, int(token), None)
    except _lib.TornReadError:
        return False
    return True


class Lock:
    """The array's process-shared lock (in its header), for several writers.

    Belongs to the calling thread; not recursive. Usable as a context manager
    (``with ndshm.lock(a, timeout=5) as lk:``), which raises ``TimeoutError`` when the
    lock cannot be had in time. ``owner_died`` is True after an acquisition that found
    the previous holder dead (even killed with SIGKILL; noticed within about 10 ms):
    the lock is held, and what it protects may be half updated.
    """

    __slots__ = ("_b", "timeout", "owner_died")

    def __init__(self, a: Shared, timeout: Optional[float] = None) -> None:
        self._b = _base(a)
        self.timeout = timeout
        self.owner_died = False

    def acquire(self, blocking: bool = True, timeout: Optional[float] = None) -> bool:
        """Take the lock.

        Args:
            blocking: False tries once (a dead holder's lock is still taken over).
            timeout: seconds to wait at most (None: no limit).

        Returns:
            True when taken (``owner_died`` tells whether the previous holder died
            holding it), False when not within ``timeout`` (or held, not blocking).

        Raises:
            PermissionError: the array is attached read-only.
            ValueError: this thread holds the lock already (it is not recursive).
        """
        ms = 0 if not blocking else _ms(timeout, -1)
        try:
            lib.sa_lock(self._b._h, ms)
        except OwnerDiedError:
            self.owner_died = True
            return True
        except (TimeoutError, BlockingIOError):
            return False
        self.owner_died = False
        return True

    def release(self) -> None:
        """Release the lock held by this thread.

        Raises:
            ValueError: this thread does not hold the lock.
        """
        lib.sa_unlock(self._b._h)

    def __enter__(self) -> "Lock":
        if not self.acquire(timeout=self.timeout):
            raise TimeoutError(f"{self._b.name}: the lock was not free within {self.timeout} s")
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock(a: Shared, timeout: Optional[float] = None) -> Lock:
    """The array's process-shared lock as a context manager (see :class:`Lock`).

    Same as ``a.base.lock()``.

    Args:
        a: an ndshm array (or a view of one, or its base object), mapped read-write.
        timeout: seconds the ``with`` statement waits at most (None: no limit).

    Returns:
        The lock, taken when the ``with`` block is entered.

    Raises:
        TypeError: ``a`` is not an ndshm array.
    """
    return Lock(a, timeout)
