"""ndshm: named N-dimensional arrays in shared memory, shared with C, C++, Fortran,
Julia and Rust processes with zero copies.

    >>> import ndshm, numpy as np
    >>> a = ndshm.create("shm://sim-out", (1000, 1000), dtype=np.float64)  # zero-filled
    >>> a[0, 0] = 42                  # a real numpy.ndarray over the shared memory
    >>> b = ndshm.attach("shm://sim-out", ro=True)    # in any process, any language
    >>> ndshm.delete("shm://sim-out")                 # attached arrays stay valid

Arrays are real ``numpy.ndarray`` objects whose ``base`` owns the mapping: it is unmapped
when the last array or view that needs it is garbage-collected, never earlier, and
never deletes the array. Nothing goes through ``multiprocessing.shared_memory`` or its
resource tracker, so no process deletes another's array by exiting.
"""

import collections
import ctypes
import math
import operator
import os

import numpy as np

from . import _lib
from ._lib import FormatError, NdshmError, NotReadyError, OwnerDiedError, lib

__all__ = [
    "create",
    "attach",
    "delete",
    "list",
    "info",
    "is_shared",
    "ArrayDesc",
    "SharedMemoryBase",
    "FormatError",
    "NotReadyError",
    "NdshmError",
    "OwnerDiedError",
    "MS_ASYNC",
    "MS_SYNC",
    "MS_INVALIDATE",
]

__version__ = lib.sa_version().decode()

MS_ASYNC = _lib.SA_MS_ASYNC
MS_SYNC = _lib.SA_MS_SYNC
MS_INVALIDATE = _lib.SA_MS_INVALIDATE

_builtin_list = list


def _name(name):
    """An array name as the C string the library gets: exactly the caller's bytes."""
    if isinstance(name, str):
        b = name.encode("utf-8", "surrogateescape")
    elif isinstance(name, bytes):
        b = name
    else:
        raise TypeError(f"array name must be str or bytes, not {type(name).__name__}")
    return _no_nul(b, "array name", name)


def _no_nul(b, what, given):
    """C strings end at the first NUL: refuse one inside rather than pass a prefix."""
    if b"\0" in b:
        raise ValueError(f"{what} contains a NUL byte: {given!r}")
    return b


class _CInt:
    """The range of a C integer parameter, read from the header's declaration."""

    def __init__(self, func, param, error):
        t = _lib.DECLARATIONS[func][1][_lib.PARAMETERS[func].index(param)]
        if issubclass(t, ctypes._Pointer):  # int64_t *shape: the entries' type
            t = t._type_
        self.type = t
        bits = 8 * ctypes.sizeof(t)
        signed = t(-1).value == -1
        self.lo = -(1 << (bits - 1)) if signed else 0
        self.hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
        self.ctype = f"{'' if signed else 'u'}int{bits}"
        self.error = error

    def __call__(self, value, what):
        if not self.lo <= value <= self.hi:
            raise self.error(f"{what} {value} is out of range for the C type {self.ctype}")
        return value


# numpy's convention for shapes (ValueError), Python's for other numbers (OverflowError).
_DIM = _CInt("sa_create", "shape", ValueError)
_NDIM = _CInt("sa_create", "ndim", ValueError)
_CHECK_DIM = _CInt("sa_attach_ex", "shape", ValueError)
_CHECK_NDIM = _CInt("sa_attach_ex", "ndim", ValueError)
_TIMEOUT_MS = _CInt("sa_attach_ex", "timeout_ms", OverflowError)
_MSYNC_FLAGS = _CInt("sa_msync", "flags", OverflowError)


_DTYPE_CODES = {}


def _dtype_code(dtype):
    """The library's code for a numpy dtype (cached: this is on every create)."""
    try:
        return _DTYPE_CODES[dtype]
    except (KeyError, TypeError):
        pass
    dt = np.dtype(dtype)
    code = _DTYPE_CODES.get(dt)
    if code is None:
        code = _dtype_code_uncached(dt)
        _DTYPE_CODES[dt] = code
    try:
        _DTYPE_CODES[dtype] = code
    except TypeError:  # unhashable dtype specifications
        pass
    return code


def _dtype_code_uncached(dt):
    code = _lib.sa_dtype()
    try:
        lib.sa_dtype_from_str(_no_nul(dt.str.encode(), "dtype string", dt.str), ctypes.byref(code))
    except (ValueError, OSError) as exc:
        raise ValueError(f"unsupported dtype {dt!r} ({dt.str}): {exc}") from None
    return code.value


def _shape(shape, check=_DIM, any_ok=False):
    """A shape (an int, a sequence or a numpy array of ints) as a tuple of ints, each
    within the C type's range. any_ok: None entries (any length) become -1."""
    if isinstance(shape, int):
        dims = (shape,)
    else:
        try:
            if not isinstance(shape, (tuple, _builtin_list)) and np.ndim(shape) == 0:
                dims = (operator.index(shape),)
            else:
                dims = tuple(-1 if d is None and any_ok else operator.index(d) for d in shape)
        except TypeError:
            raise TypeError(f"shape must be an int or a sequence of ints, not {shape!r}") from None
    for d in dims:
        check(d, f"shape {shape!r}: entry")
    return dims


def _c_shape(dims, dim_check, ndim_check):
    """(ndim, shape array) for the C call."""
    ndim = ndim_check(len(dims), "number of dimensions")
    return ndim, (dim_check.type * max(ndim, 1))(*dims)


def _timeout_ms(timeout):
    """Seconds (None: try once; negative or inf: no limit) -> the C call's milliseconds."""
    if timeout is None:
        return 0
    t = float(timeout)
    if math.isnan(t):
        raise ValueError("timeout is NaN")
    if t < 0 or t == math.inf:
        return -1
    return _TIMEOUT_MS(max(1, math.ceil(t * 1000)), "timeout in milliseconds")


_TYPESTR = {}
_FORMATS = {
    _lib.SA_FORMAT_V1: "v1",
    _lib.SA_FORMAT_SHAREDARRAY_NPY1: "sharedarray-np1",
    _lib.SA_FORMAT_SHAREDARRAY_NPY2: "sharedarray-np2",
}


class SharedMemoryBase:
    """The base object of every ndshm array: owns the mapping (``sa_array`` handle).

    Released when the last array or view using it is collected. ``name``, ``addr``
    (mapping address of element 0) and ``size`` (data bytes) are read-only.
    """

    __slots__ = ("_h", "_addr", "_size", "_readonly", "_format", "__array_interface__", "__weakref__")

    def __init__(self, handle):
        self._h = handle  # owned from here: released by __del__ even if this fails
        d = _lib.sa_desc()
        # One foreign call for everything: each ctypes call costs ~0.5 µs.
        lib.sa_describe(handle, ctypes.byref(d))  # raises on a nonzero status
        ndim = d.ndim
        self._addr = d.data or 0
        self._size = d.nbytes
        self._readonly = d.readonly != 0
        self._format = d.format
        typestr = _TYPESTR.get(d.dtype)
        if typestr is None:
            typestr = _TYPESTR[d.dtype] = d.typestr.decode()
        self.__array_interface__ = {
            "version": 3,
            "shape": tuple(d.shape[:ndim]) if ndim else (),
            "typestr": typestr,
            "data": (self._addr, self._readonly),
            "strides": tuple(d.strides[:ndim]) if ndim else (),
        }

    def __del__(self):
        h, self._h = getattr(self, "_h", None), None
        if h is not None and lib is not None:
            lib.sa_release(h)

    @property
    def name(self):
        """The array's name with its scheme, e.g. ``shm://x``."""
        return lib.sa_name(self._h).decode("utf-8", "surrogateescape")

    @property
    def addr(self):
        """Address of element 0."""
        return self._addr

    @property
    def size(self):
        """Bytes of data."""
        return self._size

    @property
    def readonly(self):
        """True for a read-only mapping."""
        return self._readonly

    @property
    def format(self):
        """``'v1'``, ``'sharedarray-np1'`` or ``'sharedarray-np2'``."""
        return _FORMATS.get(self._format, "?")

    def msync(self, flags=MS_SYNC):
        """``msync(2)`` the mapping: ``MS_SYNC`` or ``MS_ASYNC``, optionally ``| MS_INVALIDATE``."""
        lib.sa_msync(self._h, _MSYNC_FLAGS(operator.index(flags), "msync flags"))

    def mlock(self):
        """Lock the data in memory (``OSError`` beyond RLIMIT_MEMLOCK, naming the limit)."""
        lib.sa_mlock(self._h)

    def munlock(self):
        """Undo :meth:`mlock`."""
        lib.sa_munlock(self._h)

    def __repr__(self):
        ro = ", read-only" if self._readonly else ""
        return f"<ndshm mapping {self.name} at {self._addr:#x}, {self._size} bytes{ro}>"


def _wrap(handle):
    base = SharedMemoryBase(handle)
    arr = np.asarray(base)
    assert arr.base is base
    return arr


def create(
    name,
    shape,
    dtype=float,
    *,
    order="C",
    force=False,
    sparse=False,
    populate=False,
    hugepages=False,
    share="owner",
    format="ndshm",
    full=None,
    raise_on_error=True,
):
    """Create a new shared array and return it as a numpy array (zero-filled, or ``full``).

    ``name``: ``shm://NAME``, ``file://PATH`` or a bare NAME. ``order``: ``'C'`` or ``'F'``.
    ``force`` replaces an existing array (never a file that is not an array). Memory is
    reserved up front unless ``sparse``, so a full ``/dev/shm`` raises ``OSError``
    (ENOSPC) here instead of crashing later. ``share``: ``'owner'`` (0600), ``'group'``
    (0660) or ``'all'`` (0666), whatever the umask. ``format='sharedarray'`` writes
    SharedArray's layout so programs using the SharedArray package can attach it.
    ``full``: a scalar or an array broadcast into the new array.
    ``raise_on_error=False`` returns None instead of raising ``FileExistsError``.

    Raises ``FileExistsError``, ``ValueError`` (bad name, shape or dtype),
    ``PermissionError``, ``OSError``.
    """
    flags = 0
    if order in ("F", "f"):
        flags |= _lib.SA_ORDER_F
    elif order not in ("C", "c"):
        raise ValueError(f"order must be 'C' or 'F', not {order!r}")
    if force:
        flags |= _lib.SA_FORCE
    if sparse:
        flags |= _lib.SA_SPARSE
    if populate:
        flags |= _lib.SA_POPULATE
    if hugepages:
        flags |= _lib.SA_HUGEPAGES
    shares = {"owner": 0, None: 0, "group": _lib.SA_SHARE_GROUP, "all": _lib.SA_SHARE_ALL}
    if share not in shares:
        raise ValueError(f"share must be 'owner', 'group' or 'all', not {share!r}")
    flags |= shares[share]
    if format == "sharedarray":
        flags |= _lib.SA_FORMAT_SHAREDARRAY
    elif format not in ("ndshm", "v1", None):
        raise ValueError(f"format must be 'ndshm' or 'sharedarray', not {format!r}")
    cname = _name(name)
    dims = _shape(shape)
    ndim, c_shape = _c_shape(dims, _DIM, _NDIM)
    code = _dtype_code(dtype)
    if full is not None:
        # What can be checked before anything is made (or replaced, with force) is.
        try:
            full = _fill_value(full, dims, dtype)
        except Exception as exc:
            raise _renamed(exc, f"{name}: full=: {exc}") from exc
    h = ctypes.c_void_p()
    try:
        lib.sa_create(cname, ndim, c_shape, code, flags, ctypes.byref(h))
    except FileExistsError:
        if raise_on_error:
            raise
        return None
    try:
        arr = _wrap(h)
        if full is not None:
            if full.ndim == 0:
                lib.sa_fill(h, full.ctypes.data_as(ctypes.c_void_p))
            else:
                arr[...] = full
    except BaseException as exc:
        # The array exists but the caller gets none: delete it, and say so.
        try:
            lib.sa_delete(cname)
            undone = "so deleted it again"
        except Exception as e:
            undone = f"and could not delete it: {e}"
        if isinstance(exc, Exception):
            raise _renamed(exc, f"{name}: created the array, then failed ({exc}), {undone}") from exc
        raise
    return arr


def _fill_value(full, dims, dtype):
    """``full`` as an array: a scalar converted to the dtype, or an array that
    broadcasts to ``dims``."""
    if np.ndim(full) == 0:
        return np.asarray(full, dtype=np.dtype(dtype))
    full = np.asarray(full)
    shape = full.shape
    while len(shape) > len(dims) and shape[0] == 1:  # as numpy's assignment allows
        shape = shape[1:]
    try:
        ok = np.broadcast_shapes(shape, dims) == dims
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"shape {full.shape} does not broadcast to the array's shape {dims}")
    return full


def _renamed(exc, msg):
    """An exception like ``exc`` (same class, errno and status) with message ``msg``."""
    try:
        new = type(exc)(exc.errno, msg) if isinstance(exc, OSError) and exc.errno else type(exc)(msg)
    except Exception:
        new = RuntimeError(msg)
    if hasattr(exc, "status"):
        new.status = exc.status
    return new


def attach(
    name,
    ro=False,
    *,
    read_only=None,
    validate_shape=None,
    validate_dtype=None,
    timeout=None,
    populate=False,
    raise_on_error=True,
    allow_other_owner=False,
    follow_symlinks=False,
):
    """Attach an existing array (ndshm v1 or SharedArray) as a numpy array, no copy.

    ``ro``/``read_only``: map read-only (writes are impossible, not just flagged).
    ``validate_shape`` (a tuple; ``-1`` or None entries accept any length) and
    ``validate_dtype`` raise ``ValueError`` naming expected and found values.
    ``timeout`` (seconds): wait for an array that does not exist yet or is still being
    initialised; ``TimeoutError`` after that, ``OwnerDiedError`` at once if its creator
    dies. ``raise_on_error=False`` returns None when the array is missing, not ready or
    the wait timed out (other errors still raise).
    ``allow_other_owner``: accept an array owned by another user (refused by default
    with ``PermissionError``: its owner could truncate it under you, and anyone can take
    a name in /dev/shm first). ``follow_symlinks``: follow a symbolic link at the name.
    """
    readonly = bool(ro) if read_only is None else bool(read_only)
    flags = (_lib.SA_READONLY if readonly else 0) | (_lib.SA_POPULATE if populate else 0)
    flags |= (_lib.SA_ALLOW_OTHER_OWNER if allow_other_owner else 0) | (
        _lib.SA_FOLLOW_SYMLINKS if follow_symlinks else 0
    )
    cname = _name(name)
    ndim, c_shape = -1, None
    if validate_shape is not None:
        ndim, c_shape = _c_shape(_shape(validate_shape, _CHECK_DIM, any_ok=True), _CHECK_DIM, _CHECK_NDIM)
    code = _lib.SA_DTYPE_ANY if validate_dtype is None else _dtype_code(validate_dtype)
    timeout_ms = _timeout_ms(timeout)
    h = ctypes.c_void_p()
    try:
        lib.sa_attach_ex(cname, flags, timeout_ms, ndim, c_shape, code, ctypes.byref(h))
    except (FileNotFoundError, NotReadyError, TimeoutError):
        if raise_on_error:
            raise
        return None
    return _wrap(h)


def delete(name, missing_ok=False, *, in_progress=False):
    """Remove an array's name. Arrays already attached stay valid. Refuses to remove a
    file that is not an array (``FormatError``), a symbolic link, or a file this process
    cannot read to check (``PermissionError``). ``missing_ok``: no error if absent.
    ``in_progress``: also remove an array whose live creator is still initialising it
    (else ``NotReadyError``)."""
    flags = _lib.SA_DELETE_IN_PROGRESS if in_progress else 0
    try:
        lib.sa_delete_ex(_name(name), flags)
    except FileNotFoundError:
        if not missing_ok:
            raise


ArrayDesc = collections.namedtuple(
    "ArrayDesc",
    [
        "name",
        "dtype",
        "dims",
        "order",
        "format",
        "nbytes",
        "capacity",
        "state",
        "creator_pid",
        "creator_alive",
        "created_ns",
        "mode",
        "uid",
        "host",
        "backend",
    ],
)
ArrayDesc.__doc__ = """One array: ``name`` (with scheme), ``dtype`` (numpy dtype), ``dims``
(shape tuple), ``order`` ('C'/'F'), ``format`` ('v1', 'sharedarray-np1/np2'), ``nbytes``,
``capacity``, ``state`` ('ready'/'initialising'), ``creator_pid``, ``creator_alive``
(True/False/None if unknown), ``created_ns``, ``mode``, ``uid``, ``host``, ``backend``
('shm'/'file'). The first three fields are SharedArray's ``ArrayDesc``."""


def _desc(e):
    typestr = lib.sa_dtype_str(e.dtype)
    if typestr is None:  # the library lists only arrays it can read: not expected
        raise FormatError(f"{e.name!r}: dtype code {e.dtype} unknown to the library")
    return ArrayDesc(
        name=e.name.decode("utf-8", "surrogateescape"),
        dtype=np.dtype(typestr.decode()),
        dims=tuple(e.shape[i] for i in range(e.ndim)),
        order="F" if e.order == _lib.SA_ORDER_F else "C",
        format=_FORMATS.get(e.format, "?"),
        nbytes=e.nbytes,
        capacity=e.capacity,
        state="ready" if e.state == _lib.SA_STATE_READY else "initialising",
        creator_pid=e.creator_pid or None,
        creator_alive={1: True, 0: False}.get(e.creator_alive),
        created_ns=e.created_ns,
        mode=e.mode,
        uid=e.uid,
        host=e.host.decode("utf-8", "replace"),
        backend="shm" if e.backend == _lib.SA_BACKEND_SHM else "file",
    )


def list(where=None):  # noqa: A001 - SharedArray's name
    """The arrays in shared memory (``/dev/shm``, and ``NDSHM_DIR`` when set), or in the
    directory ``where``, as :class:`ArrayDesc` sorted by name. Files that are not arrays
    are skipped."""
    entries = ctypes.POINTER(_lib.sa_list_entry)()
    count = ctypes.c_size_t()
    w = None if where is None else _no_nul(os.fsencode(where), "directory", where)
    lib.sa_list(w, ctypes.byref(entries), ctypes.byref(count))
    try:
        return [_desc(entries[i]) for i in range(count.value)]
    finally:
        lib.sa_list_free(entries, count)


def info(name):
    """Describe one array (an :class:`ArrayDesc`) without mapping its data."""
    entry = ctypes.POINTER(_lib.sa_list_entry)()
    lib.sa_info(_name(name), ctypes.byref(entry))
    try:
        return _desc(entry[0])
    finally:
        lib.sa_list_free(entry, 1)


def base_of(array):
    """The :class:`SharedMemoryBase` behind an array or view, or None."""
    b = array
    while b is not None:
        if isinstance(b, SharedMemoryBase):
            return b
        b = getattr(b, "base", None)
    return None


def is_shared(array):
    """True when ``array`` (or the array it views) lies in an ndshm mapping that is
    still mapped: checks the base object and that the data pointer is inside it."""
    if not isinstance(array, np.ndarray):
        return False
    b = base_of(array)
    if b is None or b._h is None:
        return False
    if array.size == 0:
        return True
    start = array.__array_interface__["data"][0]
    lo, hi = np.byte_bounds(array) if hasattr(np, "byte_bounds") else np.lib.array_utils.byte_bounds(array)
    return b._addr <= start and lo >= b._addr and hi <= b._addr + b._size
