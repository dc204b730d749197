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
import operator

import numpy as np

from . import _lib
from ._lib import FormatError, NdshmError, NotReadyError, lib

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
    if isinstance(name, bytes):
        return name
    if not isinstance(name, str):
        raise TypeError(f"array name must be str or bytes, not {type(name).__name__}")
    return name.encode("utf-8", "surrogateescape")


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
    code = ctypes.c_int32()
    status = lib.sa_dtype_from_str(dt.str.encode(), ctypes.byref(code))
    if status != _lib.SA_OK:
        exc = _lib.error_for(status)
        raise ValueError(f"unsupported dtype {dt!r} ({dt.str}): {exc}") from None
    return code.value


def _shape(shape):
    if isinstance(shape, int):
        return (shape,)
    try:
        if not isinstance(shape, (tuple, _builtin_list)) and np.ndim(shape) == 0:
            return (operator.index(shape),)
        return tuple(map(operator.index, shape))
    except TypeError:
        raise TypeError(f"shape must be an int or a sequence of ints, not {shape!r}") from None


_TYPESTR = {}


class SharedMemoryBase:
    """The base object of every ndshm array: owns the mapping (``sa_array`` handle).

    Released when the last array or view using it is collected. ``name``, ``addr``
    (mapping address of element 0) and ``size`` (data bytes) are read-only.
    """

    __slots__ = ("_h", "_addr", "_size", "_readonly", "__array_interface__", "__weakref__")

    def __init__(self, handle):
        self._h = handle
        d = _lib.sa_desc()
        # One foreign call for everything: each ctypes call costs ~0.5 µs.
        lib.sa_describe(handle, ctypes.byref(d))
        ndim = d.ndim
        self._addr = d.data or 0
        self._size = d.nbytes
        self._readonly = d.readonly != 0
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
        return {1: "v1", 2: "sharedarray-np1", 3: "sharedarray-np2"}[lib.sa_format(self._h)]

    def msync(self, flags=MS_SYNC):
        """``msync(2)`` the mapping: ``MS_SYNC`` or ``MS_ASYNC``, optionally ``| MS_INVALIDATE``."""
        _lib.check(lib.sa_msync(self._h, flags))

    def mlock(self):
        """Lock the data in memory (``OSError`` beyond RLIMIT_MEMLOCK, naming the limit)."""
        _lib.check(lib.sa_mlock(self._h))

    def munlock(self):
        """Undo :meth:`mlock`."""
        _lib.check(lib.sa_munlock(self._h))

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
    dims = _shape(shape)
    code = _dtype_code(dtype)
    c_shape = (ctypes.c_int64 * max(len(dims), 1))(*dims)
    h = ctypes.c_void_p()
    status = lib.sa_create(_name(name), len(dims), c_shape, code, flags, ctypes.byref(h))
    if status == _lib.SA_ERR_EXISTS and not raise_on_error:
        return None
    _lib.check(status)
    arr = _wrap(h)
    if full is not None:
        if np.ndim(full) == 0:
            value = np.asarray(full, dtype=arr.dtype)
            _lib.check(lib.sa_fill(h, value.ctypes.data_as(ctypes.c_void_p)))
        else:
            arr[...] = full
    return arr


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
):
    """Attach an existing array (ndshm v1 or SharedArray) as a numpy array, no copy.

    ``ro``/``read_only``: map read-only (writes are impossible, not just flagged).
    ``validate_shape`` (a tuple; ``-1`` or None entries accept any length) and
    ``validate_dtype`` raise ``ValueError`` naming expected and found values.
    ``timeout`` (seconds): wait for an array that does not exist yet or is still being
    initialised; ``TimeoutError`` after that. ``raise_on_error=False`` returns None
    when the array is missing, not ready or the wait timed out (other errors still raise).
    """
    readonly = bool(ro) if read_only is None else bool(read_only)
    flags = (_lib.SA_READONLY if readonly else 0) | (_lib.SA_POPULATE if populate else 0)
    ndim, c_shape = -1, None
    if validate_shape is not None:
        vs = validate_shape if isinstance(validate_shape, (tuple, _builtin_list)) else (validate_shape,)
        dims = [-1 if d is None else operator.index(d) for d in vs]
        ndim = len(dims)
        c_shape = (ctypes.c_int64 * max(ndim, 1))(*dims)
    code = _lib.SA_DTYPE_ANY if validate_dtype is None else _dtype_code(validate_dtype)
    if timeout is None:
        timeout_ms = 0
    elif timeout < 0:
        timeout_ms = -1
    else:
        timeout_ms = max(1, int(timeout * 1000))
    h = ctypes.c_void_p()
    status = lib.sa_attach_ex(_name(name), flags, timeout_ms, ndim, c_shape, code, ctypes.byref(h))
    if not raise_on_error and status in (
        _lib.SA_ERR_NOT_FOUND,
        _lib.SA_ERR_NOT_READY,
        _lib.SA_ERR_TIMEOUT,
    ):
        return None
    _lib.check(status)
    return _wrap(h)


def delete(name, missing_ok=False):
    """Remove an array's name. Arrays already attached stay valid. Refuses to remove a
    file that is not an array (``FormatError``). ``missing_ok``: no error if absent."""
    status = lib.sa_delete(_name(name))
    if status == _lib.SA_ERR_NOT_FOUND and missing_ok:
        return
    _lib.check(status)


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
    return ArrayDesc(
        name=e.name.decode("utf-8", "surrogateescape"),
        dtype=np.dtype(lib.sa_dtype_str(e.dtype).decode()),
        dims=tuple(e.shape[i] for i in range(e.ndim)),
        order="F" if e.order == 1 else "C",
        format={1: "v1", 2: "sharedarray-np1", 3: "sharedarray-np2"}.get(e.format, "?"),
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
    w = None if where is None else _name(str(where))
    _lib.check(lib.sa_list(w, ctypes.byref(entries), ctypes.byref(count)))
    try:
        return [_desc(entries[i]) for i in range(count.value)]
    finally:
        lib.sa_list_free(entries, count)


def info(name):
    """Describe one array (an :class:`ArrayDesc`) without mapping its data."""
    entry = ctypes.POINTER(_lib.sa_list_entry)()
    _lib.check(lib.sa_info(_name(name), ctypes.byref(entry)))
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
