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

The package is typed (``py.typed``); the aliases used in signatures (``Name``,
``ShapeLike``, ``DTypeLike``, ...) are defined in ``ndshm._types``.
"""

from __future__ import annotations

import ctypes
import math
import operator
import os
from typing import Any, Dict, List, Literal, NamedTuple, Optional, SupportsFloat, Tuple, get_type_hints, overload

import numpy as np

from . import _lib
from ._lib import FormatError, NdshmError, NotReadyError, OwnerDiedError, lib
from ._lib import ext as _ext
from ._types import DTypeLike, Name, NDArray, PathLike, ShapeLike, ShapePattern

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
    "load",
    "save",
    "MS_ASYNC",
    "MS_SYNC",
    "MS_INVALIDATE",
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
    "TornReadError",
    "by_name",
    "SharedNDArray",
    "append",
    "resize",
    "refresh",
    "Store",
    "StoreEntry",
]

__version__: str = lib.sa_version().decode()

#: ``msync(2)`` flags for :meth:`SharedMemoryBase.msync`.
MS_ASYNC: int = _lib.SA_MS_ASYNC
MS_SYNC: int = _lib.SA_MS_SYNC
MS_INVALIDATE: int = _lib.SA_MS_INVALIDATE

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
    _lib.SA_FORMAT_NPY: "npy",
}


class SharedMemoryBase:
    """The base object of every ndshm array (``array.base``): owns the mapping.

    It is released (unmapped, never deleted) when the last array or view using it is
    garbage-collected. ``name``, ``addr`` (address of element 0), ``size`` (data bytes),
    ``readonly`` and ``format`` are read-only. Not constructed by users: :func:`create`
    and :func:`attach` make it.
    """

    # _h: the handle (an int, the address ctypes' c_void_p takes; None once released).
    # _geom: the geometry live data last described (shape, dtype, order) or None.
    # _iface: (shape, strides, typestr) of the mapping as it was attached, for
    # __array_interface__. The compiled fast path (ndshm/_ext.c) makes instances
    # without __init__ and sets every slot (and makes the numpy array itself).
    __slots__ = ("_h", "_addr", "_size", "_readonly", "_format", "_given_name", "_geom", "_iface",
                 "__weakref__")

    _h: Optional[int]
    _addr: int
    _size: int
    _readonly: bool
    _format: int
    _given_name: Optional[str]
    _geom: Optional[Tuple[Tuple[int, ...], "np.dtype[Any]", str]]
    _iface: Tuple[Tuple[int, ...], Tuple[int, ...], str]

    def __init__(self, handle: Any) -> None:
        # Owned from here: released by __del__ even if this fails.
        self._h = handle.value if isinstance(handle, ctypes.c_void_p) else handle
        # SharedArray's drop-in reports the name as its caller passed it (SharedArray does).
        self._given_name = None
        self._describe()

    def _describe(self) -> None:
        """Reads what the handle describes now: address, sizes, shape, strides, dtype
        (again after the handle changed shape: ndshm._grow)."""
        self._geom = None
        d = _lib.sa_desc()
        # One foreign call for everything: each ctypes call costs ~0.5 µs.
        lib.sa_describe(self._h, ctypes.byref(d))  # raises on a nonzero status
        ndim = d.ndim
        self._addr = d.data or 0
        self._size = d.nbytes
        self._readonly = d.readonly != 0
        self._format = d.format
        typestr = _TYPESTR.get(d.dtype)
        if typestr is None:
            typestr = _TYPESTR[d.dtype] = d.typestr.decode()
        self._iface = (tuple(d.shape[:ndim]) if ndim else (), tuple(d.strides[:ndim]) if ndim else (), typestr)

    @property
    def __array_interface__(self) -> Dict[str, Any]:
        """numpy's array interface: ``numpy.asarray(base)`` is the whole array as
        attached, its base this object."""
        shape, strides, typestr = self._iface
        return {"version": 3, "shape": shape, "typestr": typestr, "data": (self._addr, self._readonly),
                "strides": strides}

    def __del__(self) -> None:
        h, self._h = getattr(self, "_h", None), None
        if h is not None and _release is not None:
            _release(h)

    @property
    def name(self) -> str:
        """The array's name with its scheme, e.g. ``shm://x`` (for arrays from
        ``ndshm.compat.sharedarray``: the name exactly as passed, as SharedArray reports it)."""
        if self._given_name is not None:
            return self._given_name
        return lib.sa_name(self._h).decode("utf-8", "surrogateescape")  # type: ignore[no-any-return]

    @property
    def addr(self) -> int:
        """Address of element 0."""
        return self._addr

    @property
    def size(self) -> int:
        """Bytes of data."""
        return self._size

    @property
    def readonly(self) -> bool:
        """True for a read-only mapping."""
        return self._readonly

    @property
    def format(self) -> str:
        """``'v1'``, ``'sharedarray-np1'``, ``'sharedarray-np2'`` or ``'npy'`` (an
        ``npy://`` file mapped in place)."""
        return _FORMATS.get(self._format, "?")

    def msync(self, flags: int = MS_SYNC) -> None:
        """Flush the mapping to its file (``msync(2)``); useful for ``file://`` arrays.

        Args:
            flags: ``MS_SYNC`` (wait) or ``MS_ASYNC`` (schedule), optionally
                ``| MS_INVALIDATE``.

        Raises:
            OverflowError: ``flags`` does not fit a C int.
            OSError: the system call failed (with its errno).
        """
        lib.sa_msync(self._h, _MSYNC_FLAGS(operator.index(flags), "msync flags"))

    def mlock(self) -> None:
        """Lock the data in memory (``mlock(2)``), so it is never swapped out.

        Raises:
            OSError: beyond RLIMIT_MEMLOCK (the message names the limit), or the segment
                was truncated under this mapping.
        """
        lib.sa_mlock(self._h)

    def munlock(self) -> None:
        """Undo :meth:`mlock`.

        Raises:
            OSError: the system call failed.
        """
        lib.sa_munlock(self._h)

    def write(self) -> "Write":
        """A write as a context manager: ``with a.base.write():`` (see :func:`writing`).

        Returns:
            The context manager; the write begins when the ``with`` block is entered.

        Raises:
            BlockingIOError: (on entering) another writer is in the middle of a write.
            PermissionError: (on entering) the array is attached read-only.
        """
        return writing(self)

    def lock(self, timeout: Optional[float] = None) -> "Lock":
        """The array's process-shared lock: ``with a.base.lock() as lk:`` (see :class:`Lock`).

        Args:
            timeout: seconds the ``with`` statement waits at most (None: no limit).

        Returns:
            The lock, taken when the ``with`` block is entered.

        Raises:
            Never raises; entering the ``with`` block raises ``TimeoutError``.
        """
        return Lock(self, timeout)

    def __repr__(self) -> str:
        ro = ", read-only" if self._readonly else ""
        return f"<ndshm mapping {self.name} at {self._addr:#x}, {self._size} bytes{ro}>"


def _wrap_ctypes(handle: int) -> NDArray:
    base = SharedMemoryBase(handle)
    arr: NDArray = np.asarray(base)
    assert arr.base is base
    return arr


# The handle's numpy array, its base owning the handle (also when this fails), and the
# release of a handle: compiled when the extension is there.
_wrap = _ext.wrap if _ext is not None else _wrap_ctypes
_release = _ext.release if _ext is not None else lib.sa_release


@overload
def create(name: Name, shape: ShapeLike, dtype: DTypeLike = ..., *, order: str = ..., force: bool = ...,
           sparse: bool = ..., populate: bool = ..., hugepages: bool = ..., share: Optional[str] = ...,
           format: Optional[str] = ..., full: Any = ..., raise_on_error: Literal[True] = ...,
           capacity: Optional[int] = ...) -> NDArray: ...
@overload
def create(name: Name, shape: ShapeLike, dtype: DTypeLike = ..., *, order: str = ..., force: bool = ...,
           sparse: bool = ..., populate: bool = ..., hugepages: bool = ..., share: Optional[str] = ...,
           format: Optional[str] = ..., full: Any = ..., raise_on_error: bool,
           capacity: Optional[int] = ...) -> Optional[NDArray]: ...
def create(
    name: Name,
    shape: ShapeLike,
    dtype: DTypeLike = float,
    *,
    order: str = "C",
    force: bool = False,
    sparse: bool = False,
    populate: bool = False,
    hugepages: bool = False,
    share: Optional[str] = "owner",
    format: Optional[str] = "ndshm",
    full: Any = None,
    raise_on_error: bool = True,
    capacity: Optional[int] = None,
) -> Optional[NDArray]:
    """Create a new shared array and return it as a numpy array (zero-filled, or ``full``).

    The array is complete before anyone can see its name: other processes find nothing
    or the finished array, never a half-made one. It stays until :func:`delete`, also
    after this process exits.

    Args:
        name: ``"shm://NAME"`` (POSIX shared memory, ``/dev/shm/NAME``; ``$NDSHM_DIR/NAME``
            when ``NDSHM_DIR`` is set), ``"file://PATH"`` (a file), or a bare ``"NAME"``.
        shape: an int or a sequence (or 1-d numpy array) of ints.
        dtype: anything ``numpy.dtype()`` accepts (default float64). Numeric and bool
            dtypes, byte order kept.
        order: ``"C"`` (row-major) or ``"F"`` (column-major, as Fortran and Julia see it).
        force: replace an existing array atomically (never a file that is not an array).
        sparse: do not reserve the memory up front. By default it is reserved, so a full
            ``/dev/shm`` is an ``OSError`` (ENOSPC) here rather than a SIGBUS later.
        populate: also fault the pages in now (``MAP_POPULATE``).
        hugepages: ask for transparent huge pages (falls back quietly).
        share: ``"owner"`` (mode 0600, the default), ``"group"`` (0660) or ``"all"``
            (0666), whatever the umask.
        format: ``"ndshm"`` (the default) or ``"sharedarray"``: SharedArray's layout, so
            programs still using the SharedArray package can attach it.
        full: a scalar, or an array broadcast to ``shape``, to fill the new array with.
        raise_on_error: ``False`` returns None instead of raising ``FileExistsError``.
        capacity: bytes to reserve for data when more than ``shape`` needs, so that
            :func:`publish` can later change the shape and dtype in place.

    Returns:
        A writable ``numpy.ndarray`` over the shared memory, whose ``base`` is a
        :class:`SharedMemoryBase`; None if the name exists and ``raise_on_error=False``.

    Raises:
        FileExistsError: the name exists (and ``force`` is not given).
        ValueError: a bad name, shape, dtype, order, share, format or ``full``.
        TypeError: ``name`` is not str or bytes, or ``shape`` not integers.
        PermissionError: the directory or an existing file is not this user's to write.
        OSError: no space (errno ENOSPC, the message says how much is free) or another
            system error, with its errno.
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
    if share not in _SHARES:
        raise ValueError(f"share must be 'owner', 'group' or 'all', not {share!r}")
    flags |= _SHARES[share]
    if format == "sharedarray":
        flags |= _lib.SA_FORMAT_SHAREDARRAY
    elif format not in ("ndshm", "v1", None):
        raise ValueError(f"format must be 'ndshm' or 'sharedarray', not {format!r}")
    cname = _name(name)
    dims = _shape(shape)
    code = _dtype_code(dtype)
    if capacity is not None and not 0 <= operator.index(capacity) < 1 << 64:
        raise ValueError(f"capacity must be 0 to 2**64 - 1 bytes, not {capacity!r}")
    if full is not None:
        # What can be checked before anything is made (or replaced, with force) is.
        try:
            full = _fill_value(full, dims, dtype)
        except Exception as exc:
            raise _renamed(exc, f"{name}: full=: {exc}") from exc
    try:
        h = _create(cname, dims, code, flags, capacity)
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


def _fill_value(full: Any, dims: Tuple[int, ...], dtype: DTypeLike) -> Any:
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


_SHARES = {"owner": 0, None: 0, "group": _lib.SA_SHARE_GROUP, "all": _lib.SA_SHARE_ALL}


def _create(cname: bytes, dims: Tuple[int, ...], code: int, flags: int, capacity: Optional[int]) -> int:
    """sa_create (sa_create_ex with a capacity): the new handle."""
    if _ext is not None:
        h = _ext.create(cname, dims, code, flags, None if capacity is None else operator.index(capacity))
        if h is not NotImplemented:  # (more dimensions than the library takes: below)
            return h  # type: ignore[no-any-return]
    ndim, c_shape = _c_shape(dims, _DIM, _NDIM)
    ch = ctypes.c_void_p()
    if capacity is None:
        lib.sa_create(cname, ndim, c_shape, code, flags, ctypes.byref(ch))
    else:
        lib.sa_create_ex(cname, ndim, c_shape, code, flags, operator.index(capacity), ctypes.byref(ch))
    return ch.value  # type: ignore[return-value]


def _renamed(exc: BaseException, msg: str) -> BaseException:
    """An exception like ``exc`` (same class, errno and status) with message ``msg``."""
    try:
        new = type(exc)(exc.errno, msg) if isinstance(exc, OSError) and exc.errno else type(exc)(msg)
    except Exception:
        new = RuntimeError(msg)
    if hasattr(exc, "status"):
        new.status = exc.status
    return new


@overload
def attach(name: Name, ro: bool = ..., *, read_only: Optional[bool] = ...,
           validate_shape: Optional[ShapePattern] = ..., validate_dtype: Optional[DTypeLike] = ...,
           timeout: Optional[SupportsFloat] = ..., populate: bool = ..., raise_on_error: Literal[True] = ...,
           allow_other_owner: bool = ..., follow_symlinks: bool = ...) -> NDArray: ...
@overload
def attach(name: Name, ro: bool = ..., *, read_only: Optional[bool] = ...,
           validate_shape: Optional[ShapePattern] = ..., validate_dtype: Optional[DTypeLike] = ...,
           timeout: Optional[SupportsFloat] = ..., populate: bool = ..., raise_on_error: bool,
           allow_other_owner: bool = ..., follow_symlinks: bool = ...) -> Optional[NDArray]: ...
def attach(
    name: Name,
    ro: bool = False,
    *,
    read_only: Optional[bool] = None,
    validate_shape: Optional[ShapePattern] = None,
    validate_dtype: Optional[DTypeLike] = None,
    timeout: Optional[SupportsFloat] = None,
    populate: bool = False,
    raise_on_error: bool = True,
    allow_other_owner: bool = False,
    follow_symlinks: bool = False,
) -> Optional[NDArray]:
    """Attach an existing array (ndshm's format or SharedArray's) as a numpy array, no copy.

    Every segment is validated before it is mapped: a corrupt or foreign file is a
    ``FormatError``, never a crash.

    Args:
        name: as for :func:`create`.
        ro: map read-only: writes are impossible (the mapping is ``PROT_READ``), not just
            flagged.
        read_only: the same as ``ro`` (cdxcore's spelling); wins when given.
        validate_shape: the shape the array must have; ``None`` or ``-1`` entries accept
            any length in that dimension.
        validate_dtype: the dtype the array must have.
        timeout: seconds to wait for an array that does not exist yet or is still being
            made (``None``: do not wait; negative or ``math.inf``: no limit).
        populate: fault the pages in now (``MAP_POPULATE``).
        raise_on_error: ``False`` returns None when the array is missing, not ready, or
            the wait timed out (other errors still raise).
        allow_other_owner: accept an array owned by another user. Refused by default:
            its owner could truncate it under you (SIGBUS), and anyone can take a name in
            ``/dev/shm`` first.
        follow_symlinks: follow a symbolic link at the name (refused by default).

    Returns:
        A ``numpy.ndarray`` over the shared memory (read-only if ``ro``), whose ``base``
        is a :class:`SharedMemoryBase`; None as described for ``raise_on_error``.

    Raises:
        FileNotFoundError: no array has that name.
        ValueError: a bad name, or the shape or dtype differs from ``validate_shape`` /
            ``validate_dtype`` (the message names both).
        TimeoutError: ``timeout`` passed before the array was ready.
        NotReadyError: its creator is still making it (without ``timeout``).
        OwnerDiedError: its creator died before finishing it.
        FormatError: the file is not an array (corrupt, truncated, foreign, a FIFO...).
        PermissionError: another user's array or a symbolic link (see the keywords), or
            no permission to open it.
        OverflowError: ``timeout`` is too large for the C call.
        OSError: another system error, with its errno.
    """
    readonly = bool(ro) if read_only is None else bool(read_only)
    flags = (_lib.SA_READONLY if readonly else 0) | (_lib.SA_POPULATE if populate else 0)
    flags |= (_lib.SA_ALLOW_OTHER_OWNER if allow_other_owner else 0) | (
        _lib.SA_FOLLOW_SYMLINKS if follow_symlinks else 0
    )
    cname = _name(name)
    dims = None if validate_shape is None else _shape(validate_shape, _CHECK_DIM, any_ok=True)
    code = _lib.SA_DTYPE_ANY if validate_dtype is None else _dtype_code(validate_dtype)
    timeout_ms = _timeout_ms(timeout)
    try:
        h = _attach(cname, flags, timeout_ms, dims, code)
    except (FileNotFoundError, NotReadyError, TimeoutError):
        if raise_on_error:
            raise
        return None
    return _wrap(h)


def _attach(cname: bytes, flags: int, timeout_ms: int, dims: Optional[Tuple[int, ...]], code: int) -> int:
    """sa_attach_ex: the new handle."""
    if _ext is not None:
        h = _ext.attach(cname, flags, timeout_ms, dims, code)
        if h is not NotImplemented:  # (more dimensions than the library takes: below)
            return h  # type: ignore[no-any-return]
    ndim, c_shape = (-1, None) if dims is None else _c_shape(dims, _CHECK_DIM, _CHECK_NDIM)
    ch = ctypes.c_void_p()
    lib.sa_attach_ex(cname, flags, timeout_ms, ndim, c_shape, code, ctypes.byref(ch))
    return ch.value  # type: ignore[return-value]


def delete(name: Name, missing_ok: bool = False, *, in_progress: bool = False) -> None:
    """Remove an array's name. Arrays already attached stay valid; the memory is freed
    when the last one is released.

    Args:
        name: as for :func:`create`.
        missing_ok: no error if there is no such array.
        in_progress: also remove an array whose live creator is still making it.

    Raises:
        FileNotFoundError: no array has that name (unless ``missing_ok``).
        FormatError: the file is not an array: it is left alone.
        NotReadyError: its creator is still making it (without ``in_progress``).
        PermissionError: a symbolic link, or a file this process cannot read to check.
        ValueError: a bad name.
        OSError: another system error, with its errno.
    """
    flags = _lib.SA_DELETE_IN_PROGRESS if in_progress else 0
    try:
        _delete(_name(name), flags)
    except FileNotFoundError:
        if not missing_ok:
            raise


class ArrayDesc(NamedTuple):
    """One array, as :func:`list` and :func:`info` describe it. The first three fields
    are SharedArray's ``ArrayDesc``."""

    #: The name with its scheme, e.g. ``"shm://x"``: it attaches as printed.
    name: str
    #: The element type.
    dtype: np.dtype[Any]
    #: The shape.
    dims: Tuple[int, ...]
    #: ``"C"`` (row-major) or ``"F"`` (column-major).
    order: str
    #: ``"v1"`` (ndshm), ``"sharedarray-np1"`` or ``"sharedarray-np2"``.
    format: str
    #: Bytes of data.
    nbytes: int
    #: Bytes reserved for data (at least ``nbytes``).
    capacity: int
    #: ``"ready"``, or ``"initialising"`` while its creator is still making it.
    state: str
    #: The creating process's pid (None if unknown, e.g. SharedArray's format).
    creator_pid: Optional[int]
    #: Whether the creator still runs (None if unknown or on another host).
    creator_alive: Optional[bool]
    #: Creation time, nanoseconds since the epoch.
    created_ns: int
    #: The file's permission bits.
    mode: int
    #: The owner's user id.
    uid: int
    #: The creating host's name.
    host: str
    #: ``"shm"`` or ``"file"``.
    backend: str


class StoreEntry(NamedTuple):
    """One array of a :class:`Store`."""

    #: The array's name in the store.
    name: str
    #: The element type.
    dtype: np.dtype[Any]
    #: The shape.
    shape: Tuple[int, ...]
    #: ``"C"`` or ``"F"``.
    order: str
    #: ``"ndshm"`` (a v1 file) or ``"isf"`` (an ISF raw file).
    format: str


try:  # the fields' types as objects, not strings, for help() and the API reference
    for _nt in (ArrayDesc, StoreEntry):
        _nt.__new__.__annotations__ = {**get_type_hints(_nt), "return": _nt}
except TypeError:  # numpy 1.21: np.dtype[Any] is not subscriptable at run time
    pass


if _ext is not None:
    # The library ctypes loaded (one instance for both paths), and what the extension
    # makes: bases, exceptions, list entries.
    _ext.bind(lib._handle, SharedMemoryBase, _lib.error_for, ArrayDesc, _FORMATS)


def _desc(e: Any) -> ArrayDesc:
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


def list(where: Optional[PathLike] = None) -> List[ArrayDesc]:  # noqa: A001 - SharedArray's name
    """List the arrays in shared memory, or in a directory.

    Args:
        where: a directory; default: ``/dev/shm``, and ``$NDSHM_DIR`` when it is set.
            Files that are not arrays are skipped.

    Returns:
        An :class:`ArrayDesc` per array, sorted by name; each name attaches as printed.

    Raises:
        FileNotFoundError: ``where`` does not exist.
        PermissionError: ``where`` cannot be read.
        ValueError: ``where`` contains a NUL byte.
        OSError: another system error, with its errno.
    """
    w = None if where is None else _no_nul(os.fsencode(where), "directory", where)
    if _ext is not None:
        return _ext.list(w)  # type: ignore[no-any-return]
    entries = ctypes.POINTER(_lib.sa_list_entry)()
    count = ctypes.c_size_t()
    lib.sa_list(w, ctypes.byref(entries), ctypes.byref(count))
    try:
        return [_desc(entries[i]) for i in range(count.value)]
    finally:
        lib.sa_list_free(entries, count)


_delete = _ext.delete if _ext is not None else lib.sa_delete_ex


def info(name: Name) -> ArrayDesc:
    """Describe one array without mapping its data.

    Args:
        name: as for :func:`create`.

    Returns:
        Its :class:`ArrayDesc`.

    Raises:
        FileNotFoundError: no array has that name.
        FormatError: the file is not an array.
        PermissionError: it cannot be read.
        ValueError: a bad name.
        OSError: another system error, with its errno.
    """
    entry = ctypes.POINTER(_lib.sa_list_entry)()
    lib.sa_info(_name(name), ctypes.byref(entry))
    try:
        return _desc(entry[0])
    finally:
        lib.sa_list_free(entry, 1)


def base_of(array: Any) -> Optional[SharedMemoryBase]:
    """The mapping behind an array or any view of it.

    Args:
        array: any object; numpy arrays are followed through their ``base`` chain.

    Returns:
        The :class:`SharedMemoryBase`, or None when ``array`` is not over an ndshm
        mapping. Never raises.
    """
    b = array
    while b is not None:
        if isinstance(b, SharedMemoryBase):
            return b
        b = getattr(b, "base", None)
    return None


def is_shared(array: Any) -> bool:
    """Whether ``array`` lies in an ndshm mapping that is still mapped.

    Args:
        array: any object.

    Returns:
        True when ``array`` is a numpy array (or view) whose base is an ndshm mapping and
        whose data lies inside it; False otherwise. Never raises.
    """
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


# Datasets (load once per node, save atomically): defined in their own module.
from ._dataset import load, save  # noqa: E402

# Live data (publish, snapshots, waiting, shape changes, the lock): their own module.
from ._lib import TornReadError  # noqa: E402
from ._live import (  # noqa: E402
    Lock,
    StaleError,
    Write,
    lock,
    publish,
    read_begin,
    read_snapshot,
    read_valid,
    version,
    wait,
    writing,
)

# Passing arrays to other processes by name (pickling as a reference): its own module.
from ._pickle import SharedNDArray, by_name  # noqa: E402

# Growing arrays along axis 0, and the array store: their own modules.
from ._grow import append, refresh, resize  # noqa: E402
from ._store import Store  # noqa: E402
