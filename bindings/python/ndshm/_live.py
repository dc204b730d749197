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
import weakref

import numpy as np

from . import SharedMemoryBase, _lib, base_of
from ._lib import OwnerDiedError, lib

__all__ = [
    "version",
    "wait",
    "writing",
    "publish",
    "read_snapshot",
    "read_begin",
    "read_valid",
    "lock",
    "Lock",
    "StaleError",
]

StaleError = _lib.StaleError

# The geometry each handle described last (shape, dtype, order), so a snapshot costs
# one foreign call when the shape did not change. Weak: it goes with the mapping.
_GEOMETRY = weakref.WeakKeyDictionary()


def _base(a):
    """The SharedMemoryBase behind an ndshm array, a view of one, or the base itself."""
    b = getattr(a, "base", None)
    if type(b) is SharedMemoryBase and b._h is not None:  # the common case, fast
        return b
    b = a if isinstance(a, SharedMemoryBase) else base_of(a)
    if b is None or b._h is None:
        raise TypeError(f"not an ndshm array (or a view of one): {type(a).__name__}")
    return b


def _ms(timeout, none_means):
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


def _describe(b):
    d = _lib.sa_desc()
    lib.sa_describe(b._h, ctypes.byref(d))
    g = (
        tuple(d.shape[: d.ndim]),
        np.dtype(d.typestr.decode()),
        "F" if d.order == _lib.SA_ORDER_F else "C",
    )
    _GEOMETRY[b] = g
    return g


_get_version = lib.sa_get_version


def version(a):
    """The latest published version of the array: how many writes have completed."""
    v = ctypes.c_uint64()
    _get_version(_base(a)._h, ctypes.byref(v))
    return v.value


def wait(a, newer_than, timeout=None):
    """Block until a version newer than ``newer_than`` is published and return it.

    Sleeps in the kernel (a futex on the shared version word): no CPU while waiting,
    woken as soon as a writer publishes. ``timeout`` in seconds (None: no limit);
    ``TimeoutError`` when it runs out; ``StaleError`` when the array was replaced under
    its name by a larger one (attach it again).
    """
    v = ctypes.c_uint64()
    lib.sa_wait_version(_base(a)._h, int(newer_than), _ms(timeout, -1), ctypes.byref(v))
    return v.value


class _Write:
    """A write in progress (see :func:`writing`)."""

    __slots__ = ("_b", "version", "repair")

    def __init__(self, b):
        self._b = b
        self.version = None
        self.repair = False

    def __enter__(self):
        try:
            lib.sa_write_begin(self._b._h)
        except OwnerDiedError:
            # The write has begun; the previous writer died in the middle of one.
            self.repair = True
        return self

    def __exit__(self, *exc):
        v = ctypes.c_uint64()
        lib.sa_write_end(self._b._h, ctypes.byref(v))
        self.version = v.value
        return False


def writing(a):
    """A context manager around a write: readers' snapshots never see half of it.

        with ndshm.writing(a) as w:
            a[...] = new_values
        w.version                      # the version just published

    ``BlockingIOError`` when another writer is in the middle of a write (writers take
    turns with :func:`lock`). ``w.repair`` is True when the previous write was never
    finished (its writer died mid-write; taken over because this thread holds the
    lock): rewrite all the data. The write ends (and is published) also when the block
    raises. Same as ``a.base.write()``.
    """
    return _Write(_base(a))


def publish(a, data, *, grow=False):
    """Publish ``data`` as the next version, in one call; return the version.

    When ``data`` has another shape or dtype than the array, the array takes them on
    (its order stays), atomically with the data. The new size must fit the capacity
    reserved at create (``create(..., capacity=...)``), else ``OSError`` (ENOSPC) says
    how much is reserved and what was asked; with ``grow=True`` the array is instead
    replaced under its name by a larger one (readers of the old one get ``StaleError``
    and attach again; ``a`` keeps showing the old array: attach the name again too).
    ``a`` itself keeps its numpy shape: read the new shape with :func:`read_snapshot`.
    """
    b = _base(a)
    g = _GEOMETRY.get(b) or _describe(b)
    data = np.asarray(data)
    order = g[2]
    if not (data.flags.f_contiguous if order == "F" else data.flags.c_contiguous):
        data = np.array(data, order=order)
    v = ctypes.c_uint64()
    ptr = data.ctypes.data
    if data.shape == g[0] and data.dtype == g[1]:
        lib.sa_publish(b._h, ptr, data.nbytes, ctypes.byref(v))
        return v.value
    from . import _c_shape, _DIM, _NDIM, _dtype_code, _shape

    ndim, c_shape = _c_shape(_shape(data.shape), _DIM, _NDIM)
    flags = _lib.SA_GROW if grow else 0
    try:
        lib.sa_publish_shape(
            b._h, ndim, c_shape, _dtype_code(data.dtype), ptr, data.nbytes, flags, ctypes.byref(v)
        )
    finally:
        _describe(b)
    return v.value


def read_snapshot(a, out=None, *, timeout=1.0, return_version=False):
    """A consistent copy of the array's data, as a new numpy array (or into ``out``).

    Retries while writers write, for at most ``timeout`` seconds (None: no limit), then
    ``TimeoutError``. The copy has the shape and dtype of its version (a writer may
    have changed them). ``out``: an array of exactly that shape and dtype to copy into
    (``ValueError`` otherwise; its contents are then undefined). ``return_version``:
    return ``(array, version)``. ``StaleError`` when the array was replaced under its
    name by a larger one (attach it again).
    """
    b = _base(a)
    g = _GEOMETRY.get(b) or _describe(b)
    ms = _ms(timeout, -1)
    v = ctypes.c_uint64()
    reshaped = ctypes.c_int32()
    if out is not None and not (
        out.flags.writeable and (out.flags.c_contiguous or out.flags.f_contiguous)
    ):
        raise ValueError("out must be a writeable contiguous array")
    while True:
        dst = np.empty(g[0], g[1], order=g[2]) if out is None else out
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
        return (dst, v.value) if return_version else dst


def _mismatch(out, g):
    return ValueError(
        f"out has shape {out.shape} and dtype {out.dtype}; the snapshot has shape {g[0]} "
        f"and dtype {g[1]}"
    )


def read_begin(a, timeout=1.0):
    """Begin an in-place read of ``a`` (no copy): waits at most ``timeout`` seconds until
    no write is in progress and returns a token for :func:`read_valid`. Only for arrays
    whose shape does not change (``a`` keeps its numpy shape)."""
    t = ctypes.c_uint64()
    lib.sa_read_begin(_base(a)._h, _ms(timeout, -1), ctypes.byref(t))
    return t.value


def read_valid(a, token):
    """True when no write happened since :func:`read_begin` returned ``token``: what
    was read in between is one consistent version. False: it may be torn; read again."""
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

    def __init__(self, a, timeout=None):
        self._b = _base(a)
        self.timeout = timeout
        self.owner_died = False

    def acquire(self, blocking=True, timeout=None):
        """Take the lock: True when taken, False when ``timeout`` seconds passed (or, with
        ``blocking=False``, when it is held by a live holder)."""
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

    def release(self):
        """Release the lock held by this thread (``ValueError`` if it does not hold it)."""
        lib.sa_unlock(self._b._h)

    def __enter__(self):
        if not self.acquire(timeout=self.timeout):
            raise TimeoutError(f"{self._b.name}: the lock was not free within {self.timeout} s")
        return self

    def __exit__(self, *exc):
        self.release()
        return False


def lock(a, timeout=None):
    """The array's process-shared lock as a context manager (see :class:`Lock`).
    Same as ``a.base.lock()``."""
    return Lock(a, timeout)


def _install():
    """``a.base.write()`` and ``a.base.lock()``: methods of the base object that every
    ndshm array has, defined here with the rest of the live-data API."""
    SharedMemoryBase.write = lambda self: _Write(_base(self))
    SharedMemoryBase.write.__doc__ = writing.__doc__
    SharedMemoryBase.lock = lambda self, timeout=None: Lock(self, timeout)
    SharedMemoryBase.lock.__doc__ = Lock.__doc__


_install()
