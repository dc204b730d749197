"""Passing shared arrays between Python processes by name: pickling as a reference.

``ndshm.by_name(a)`` returns ``a`` as a :class:`SharedNDArray`: the same memory, and
every view of it (slices, transposes, ``reshape``) stays one. Pickled, such an array is
a reference of a few hundred bytes (the array's name, the identity of the file behind
it, dtype, shape, strides, offset, read-only or not) instead of its data; unpickled, on
the same node, it attaches the same memory. So handing a 1 GiB array (or row blocks of
it) to ``multiprocessing``, ``concurrent.futures`` or Dask workers costs microseconds,
and what the workers write, the sender sees.

Opt-in, not the default, because a reference has other semantics than a copy: writes
travel both ways, a pickle saved to a file is only as good as the array's name, and it
means nothing on another machine. Plain numpy arrays and ndshm arrays not passed
through :func:`by_name` pickle exactly as numpy pickles them; ``np.asarray(x)`` of a
:class:`SharedNDArray` is a plain view that pickles by value.

Checked, so that a reference never silently resolves to other memory:

* pickling: the array's name must still name the very file this process maps (same
  device and inode). A deleted or replaced name is a ``pickle.PicklingError``.
* unpickling: the same boot of the same machine (``/proc/sys/kernel/random/boot_id``),
  and the name (resolved where it was pickled, so a different ``NDSHM_DIR`` in the
  worker does not matter) still the same device and inode, else
  ``pickle.UnpicklingError``.

Memory that is not in an ndshm mapping (a ``copy()``, the result of ``x + 1``) pickles
by value, as numpy does, and unpickles as a plain ``numpy.ndarray``. Each process
attaches a given array once and reuses the mapping for every block it receives.
"""

from __future__ import annotations

import os
import pickle
import socket
import weakref
from typing import TYPE_CHECKING, Any, NamedTuple, Optional, SupportsIndex, Tuple

import numpy as np

from ._types import NDArray

# Bump when the reference's fields change; unknown versions are refused when unpickled.
_VERSION = 1


class _Ref(NamedTuple):
    """What a pickled :class:`SharedNDArray` carries instead of its data."""

    version: int
    name: str  # as the library names it (shm://NAME, file://PATH, npy://PATH)
    path: str  # the file it resolved to where it was pickled
    boot_id: str
    host: str  # for messages only: boot_id identifies the machine
    dev: int
    ino: int
    readonly: bool  # attach read-only (the mapping was, or the view was not writeable)
    dtype: np.dtype[Any]
    shape: Tuple[int, ...]
    strides: Tuple[int, ...]
    offset: int  # bytes from the mapping's element 0 to the view's
    size: int  # bytes of the whole array (checked against the attached one)


if TYPE_CHECKING:
    _NDArrayBase = np.ndarray[Any, Any]
else:  # numpy 1.21's ndarray cannot be subscripted at run time
    _NDArrayBase = np.ndarray


class SharedNDArray(_NDArrayBase):
    """A ``numpy.ndarray`` over ndshm shared memory that pickles as a reference to it.

    Made by :func:`by_name`; slices and other views of it are ``SharedNDArray`` too. It
    behaves as any ndarray; only pickling differs (see the module's documentation).
    """

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        ref = _reference(self)
        if ref is None:
            # Not (or no longer) in a mapping: numpy's own pickle of a plain view, so
            # it unpickles as a plain ndarray (by value).
            return np.asarray(self).__reduce_ex__(protocol)
        return _rebuild, (ref,)

    def __reduce__(self) -> Any:
        return self.__reduce_ex__(2)


def by_name(array: NDArray) -> SharedNDArray:
    """Make an ndshm array (or a view of one) pickle as a reference to its shared memory.

    Sending the result to a ``multiprocessing`` pool, a ``ProcessPoolExecutor`` or a
    Dask worker on the same node sends its name, not its data: the worker attaches the
    same memory (once per process), and writes on either side are visible to the
    other. Views of the result (slices, transposes, reshapes) pickle by reference too.

    Args:
        array: an array returned by :func:`ndshm.create`, :func:`ndshm.attach` or
            :func:`ndshm.load`, or a view of one.

    Returns:
        A :class:`SharedNDArray` view of ``array`` (no copy).

    Raises:
        ValueError: ``array`` does not lie in an ndshm mapping (a plain numpy array, a
            copy): it could only be sent by value.

    Example:
        >>> x = ndshm.by_name(ndshm.load("/data/train.npy", "train"))
        >>> with concurrent.futures.ProcessPoolExecutor(4) as ex:
        ...     sums = list(ex.map(np.sum, [x[i:i + 1000] for i in range(0, len(x), 1000)]))
    """
    from . import is_shared  # noqa: PLC0415

    if not isinstance(array, np.ndarray) or not is_shared(array):
        raise ValueError("by_name: not an array in ndshm shared memory (create, attach or load one)")
    if isinstance(array, SharedNDArray):
        return array
    return array.view(SharedNDArray)


# --- pickling -------------------------------------------------------------------------

# Identity (dev, ino) of the file behind each mapping, found once per mapping.
_IDENTITY: "weakref.WeakKeyDictionary[Any, Tuple[int, int]]" = weakref.WeakKeyDictionary()
# Mappings this process attached to unpickle references, reused for later ones.
_ATTACHED: "weakref.WeakValueDictionary[Tuple[str, int, int, bool], Any]" = weakref.WeakValueDictionary()
_boot_id: Optional[str] = None


def _this_boot() -> str:
    global _boot_id
    if _boot_id is None:
        try:
            with open("/proc/sys/kernel/random/boot_id") as f:
                _boot_id = f.read().strip()
        except OSError:  # not Linux: the host name is the best we have
            _boot_id = "host:" + socket.gethostname()
    return _boot_id


def _resolve(name: str) -> Optional[str]:
    """The file a name means in this process (as the library resolves it), or None."""
    scheme, sep, rest = name.partition("://")
    if not sep:
        scheme, rest = "shm", name
    if scheme in ("file", "npy"):
        return rest
    if scheme != "shm":
        return None
    d = os.environ.get("NDSHM_DIR") or os.environ.get("JOB_SHMTMPDIR")
    return os.path.join(d, rest) if d else os.path.join("/dev/shm", rest)


def _mapped_identity(addr: int) -> Optional[Tuple[int, int]]:
    """(st_dev, st_ino) of the file mapped at ``addr``, from /proc/self/maps."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                fields = line.split(None, 5)
                lo, _, hi = fields[0].partition("-")
                if int(lo, 16) <= addr < int(hi, 16):
                    major, minor = fields[3].split(":")
                    ino = int(fields[4])
                    return (os.makedev(int(major, 16), int(minor, 16)), ino) if ino else None
    except (OSError, ValueError, IndexError):
        pass
    return None


def _reference(arr: SharedNDArray) -> Optional[_Ref]:
    from . import _lib, base_of, is_shared  # noqa: PLC0415

    base = base_of(arr)
    if base is None or arr.size == 0 or not is_shared(arr):
        return None
    name = _lib.lib.sa_name(base._h).decode("utf-8", "surrogateescape")
    path = _resolve(name)
    ident = _IDENTITY.get(base)
    if ident is None:
        ident = _mapped_identity(base._addr)
        if ident is None or path is None:
            raise pickle.PicklingError(f"{name}: cannot tell which file this mapping is, so cannot "
                                       f"send it by name; send np.asarray(a) to copy it")
        _IDENTITY[base] = ident
    try:
        st = os.stat(path)  # type: ignore[arg-type]
        now: Optional[Tuple[int, int]] = (st.st_dev, st.st_ino)
    except OSError:
        now = None
    if now != ident:
        what = "was deleted" if now is None else "now names another array"
        raise pickle.PicklingError(
            f"{name} {what}: a worker could not attach this memory by name (this process's "
            f"mapping stays valid); send np.asarray(a) to copy it instead")
    offset = arr.__array_interface__["data"][0] - base._addr
    return _Ref(
        version=_VERSION, name=name, path=path, boot_id=_this_boot(),  # type: ignore[arg-type]
        host=socket.gethostname(), dev=ident[0], ino=ident[1],
        readonly=base._readonly or not arr.flags.writeable, dtype=arr.dtype, shape=arr.shape,
        strides=arr.strides, offset=offset, size=base._size,
    )


def _rebuild(ref: _Ref) -> SharedNDArray:
    """Unpickles a reference: attaches (or reuses) the mapping and makes the view."""
    from . import SharedMemoryBase, attach  # noqa: PLC0415

    if not isinstance(ref, tuple) or not ref or ref[0] != _VERSION:
        raise pickle.UnpicklingError(f"ndshm reference of an unknown version: {ref!r:.200}")
    ref = _Ref(*ref)
    if ref.boot_id != _this_boot():
        raise pickle.UnpicklingError(
            f"{ref.name} was pickled by reference on host {ref.host} (another machine, or before a "
            f"reboot) and this is {socket.gethostname()}: shared memory is node-local. Send "
            f"np.asarray(a) (by value), or load the dataset on every node with ndshm.load")
    key = (ref.path, ref.dev, ref.ino, ref.readonly)
    base = _ATTACHED.get(key)
    if base is None or base._h is None:
        # The name as it was pickled, unless it means another file here (NDSHM_DIR).
        name = ref.name if _resolve(ref.name) == ref.path else "file://" + ref.path
        try:
            whole = attach(name, ro=ref.readonly)
            st = os.stat(ref.path)
            ok = (st.st_dev, st.st_ino) == (ref.dev, ref.ino)
        except FileNotFoundError:
            ok = False
        if not ok:
            raise pickle.UnpicklingError(
                f"{ref.name} was deleted or replaced since it was pickled (on {ref.host}): the "
                f"memory it referred to can no longer be attached by name")
        new = whole.base  # attach's arrays have their mapping as base
        assert isinstance(new, SharedMemoryBase)
        base = new
        _IDENTITY[base] = (ref.dev, ref.ino)
        _ATTACHED[key] = base
    if base._size != ref.size:
        raise pickle.UnpicklingError(f"{ref.name}: {base._size} bytes, the reference says {ref.size}")
    _check_bounds(ref)
    # A flat byte view of the whole mapping, in memory order, as the view's buffer: the
    # view's base chain leads to the mapping, which stays mapped as long as it lives.
    flat = np.asarray(base).ravel(order="K").view(np.uint8)
    return np.ndarray.__new__(SharedNDArray, ref.shape, ref.dtype, buffer=flat, offset=ref.offset,
                              strides=ref.strides)


def _check_bounds(ref: _Ref) -> None:
    """The view lies inside the array (numpy checks too, with a vaguer message)."""
    lo = hi = ref.offset
    for n, s in zip(ref.shape, ref.strides):
        if n == 0:
            return
        if s < 0:
            lo += (n - 1) * s
        else:
            hi += (n - 1) * s
    if lo < 0 or hi + ref.dtype.itemsize > ref.size:
        raise pickle.UnpicklingError(f"{ref.name}: the view's bytes {lo}..{hi + ref.dtype.itemsize} lie outside "
                                     f"the array's {ref.size}")


