"""ISF's SharedNumpyStore directories: the raw-file rules, shared by the ISF drop-in
(``ndshm.compat.isf``) and any store that opens such a directory.

The format (ISF's, unchanged; docs: SEEDS.md "ISF formats")::

    <dir>/<name>__<d0>_<d1>_..._<dk-1>__<dtype>

holds ``ndarray.tofile()`` output: C order, native byte order (unless ``<dtype>`` says
otherwise, e.g. ``>i4``), no header. The file name is the only metadata. Bytes beyond
``prod(shape) * itemsize`` are not part of the array: they are what an interrupted
append left, and readers ignore them (ISF's own ``load`` does).

What this module adds to ISF's rules, without changing what ISF reads:

* **The name is the commit point of an append.** :meth:`Directory.append` takes the
  directory lock, cuts any bytes beyond the length the current name covers (an earlier
  interrupted append), writes the new rows after them, ``fsync``\\ s the file and only
  then renames ``name__N_...`` to ``name__N+K_...``. ``rename(2)`` is atomic, so a
  process killed at any point leaves either the old name (the new rows, complete or not,
  are beyond its length: ignored, and cut by the next writer) or the new name, whose
  length covers only rows already written. A name never covers unwritten bytes: the
  length a name claims only grows by a rename issued after the bytes it adds are
  written (and synced). Truncation only ever cuts bytes beyond the current name's
  length, so a reader that resolved the current name never loses bytes it reads.
* **Writers are serialised** by ``flock(2)`` on the directory itself (no extra entry
  that ISF would list; the kernel drops the lock when its holder dies, even by
  SIGKILL, so a crash never leaves a stale lock). Where a filesystem refuses ``flock`` on a
  directory (NFS emulates flock with POSIX locks, which need a file open for writing),
  the lock is ``flock`` on the file ``<dir>/.ndshm-isf.lock`` instead; every process on one
  filesystem makes the same choice. ISF's own writers take no lock: an ISF process
  appending to the same array at the same time as ndshm is not supported (two ISF
  processes racing each other were not safe either).
* **Readers never block** and survive a concurrent append or save: they open the file
  the current name points to and read through that descriptor (a rename does not move
  the bytes they read; a replaced file stays readable while open); a name that vanished
  between listing and opening is looked up again.
* **Saves** write a temporary file ``.ndshm-tmp-<pid>-<random>`` (no ``__`` in it, so
  ISF's directory listing never takes it for an array, unlike ISF's ``<file>.saving``),
  sync it, rename it over the final name, then remove older files of the same array
  with another shape or dtype (which ISF left behind to be picked by ``listdir`` order).
* **Shared-memory copies** are ndshm arrays named from a hash of the directory's real
  path, the file name (name, shape, dtype), the file's inode and modification time and
  the row range: two stores in different directories never share a copy, and a file
  changed on disk (saved again, appended to) gets a new copy instead of serving the old
  one. Exactly one of many processes loads a copy; the others wait and attach.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import operator
import os
import secrets
import warnings
from typing import Any, Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from ._lib import FormatError
from ._types import DTypeLike, NDArray, PathLike

#: Names ISF's databases reserve inside a store directory.
RESERVED_NAMES = frozenset({"Loader.pickle", "Loader.json"})
#: Prefix of this module's own files in a store directory (temporary files, the lock).
OWN_PREFIX = ".ndshm-"
LOCK_FILE = ".ndshm-isf.lock"
_TMP_PREFIX = ".ndshm-tmp-"
_NAME_MAX = 255


class StoreNameError(ValueError):
    """A name ISF's file-name convention cannot hold: reserved, containing ``__`` or
    ``/``, ending in ``_``, empty, or making a file name longer than 255 bytes."""


class UnsupportedArrayError(ValueError):
    """An array ISF's convention cannot store so that it loads back: 0-d arrays (an
    empty shape field), object, structured or zero-size dtypes."""


class NotInStoreError(ValueError):
    """No array of that name in the store directory (ISF raised ``ValueError`` too)."""


class AppendMismatchError(ValueError):
    """Rows appended to an array differ from it in dtype, number of dimensions or
    trailing dimensions."""


class NotInSharedMemoryError(ValueError):
    """``load(..., allow_create_shm=False)`` found no shared-memory copy of the array."""


class Entry(NamedTuple):
    """One array of a store directory, from its file name."""

    name: str
    fname: str
    shape: Tuple[int, ...]
    dtype: "np.dtype[Any]"
    #: The dtype exactly as the file name spells it (kept when appending).
    dtype_str: str


class RowRange(NamedTuple):
    """Rows ``[start, end)`` of axis 0 of an array stored in C order."""

    start: int
    end: int
    offset: int
    nbytes: int
    shape: Tuple[int, ...]


# ---------------------------------------------------------------------------------------
# Names


def check_name(name: str) -> None:
    """Raise StoreNameError unless ``name`` can be an array name in an ISF directory."""
    if not isinstance(name, str):
        raise TypeError(f"array name must be str, not {type(name).__name__}")
    why = None
    if not name:
        why = "it is empty"
    elif name in RESERVED_NAMES:
        why = "it is reserved for ISF's database loaders"
    elif "__" in name:
        why = "'__' separates the name from the shape in the file name"
    elif name.endswith("_"):
        why = "a trailing '_' merges into the '__' separator (ISF would misread the file name)"
    elif "/" in name or "\0" in name:
        why = "it contains '/' or a NUL byte"
    elif name in (".", ".."):
        why = "'.' and '..' are not names"
    elif name.startswith(OWN_PREFIX):
        why = f"names starting with {OWN_PREFIX!r} are ndshm's own files"
    if why:
        raise StoreNameError(f"invalid array name {name!r}: {why}")


def dtype_string(dtype: DTypeLike) -> str:
    """The dtype as ISF spells it in a file name (``str(np.dtype)``), checked to parse back.

    Raises:
        UnsupportedArrayError: object, structured, sub-array or zero-size dtypes, or one
            whose spelling does not parse back to the same dtype.
    """
    dt = np.dtype(dtype)
    s = str(dt)
    if dt.hasobject or dt.fields is not None or dt.subdtype is not None or dt.itemsize == 0:
        raise UnsupportedArrayError(f"dtype {s}: ISF's file names cannot store it (object, structured or empty)")
    try:
        back = _parse_dtype(s)
    except (TypeError, ValueError):
        back = None
    if back != dt or "__" in s or "/" in s:
        raise UnsupportedArrayError(f"dtype {s}: its name does not parse back to the same dtype")
    return s


def _parse_dtype(s: str) -> "np.dtype[Any]":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.dtype(s)


def format_fname(name: str, shape: Sequence[int], dtype: DTypeLike) -> str:
    """ISF's file name ``NAME__D0_..._Dn__DTYPE`` for an array.

    Raises:
        StoreNameError: a name the convention cannot hold, or a file name over 255 bytes.
        UnsupportedArrayError: a dtype it cannot hold.
    """
    check_name(name)
    ds = dtype if isinstance(dtype, str) and _known_spelling(dtype) else dtype_string(dtype)
    fname = f"{name}__{'_'.join(str(int(d)) for d in shape)}__{ds}"
    if len(os.fsencode(fname)) > _NAME_MAX:
        raise StoreNameError(f"array name {name!r}: the file name {fname!r} is longer than {_NAME_MAX} bytes")
    return fname


def _known_spelling(s: str) -> bool:
    """Whether ``s`` is a dtype spelling read from an existing file name (kept as is)."""
    try:
        dt = _parse_dtype(s)
    except (TypeError, ValueError):
        return False
    return not dt.hasobject and dt.fields is None and dt.itemsize > 0 and "__" not in s and "/" not in s


def parse_fname(fname: str) -> Optional[Entry]:
    """The array an ISF file name describes, or None when the entry is not an array
    (``Loader.pickle``, ``metadata.json``, a ``.saving`` leftover, ndshm's own files).

    A 0-d array (written by ISF with an empty shape field) parses with shape ``()``.
    Never raises.
    """
    if fname.startswith(OWN_PREFIX):
        return None
    parts = fname.split("__")
    if len(parts) != 3:
        return None
    name, dims, ds = parts
    if not name or name in RESERVED_NAMES or name.endswith("_"):
        return None
    if dims:
        fields = dims.split("_")
        if not all(f.isascii() and f.isdigit() for f in fields):
            return None
        shape = tuple(int(f) for f in fields)
    else:
        shape = ()
    if not _known_spelling(ds):
        return None
    return Entry(name, fname, shape, _parse_dtype(ds), ds)


def row_range(shape: Sequence[int], itemsize: int, start_row: Optional[int] = None,
              end_row: Optional[int] = None) -> RowRange:
    """Rows ``[start_row, end_row)`` of axis 0 (None: from the first / to the last row).

    Raises:
        ValueError: ``0 <= start_row <= end_row <= shape[0]`` does not hold, or rows of a
            0-d array.
        TypeError: a row that is not an integer.
    """
    shape = tuple(int(d) for d in shape)
    if not shape:
        if start_row is not None or end_row is not None:
            raise ValueError("a 0-d array has no rows: give neither start_row nor end_row")
        return RowRange(0, 0, 0, itemsize, ())
    start = 0 if start_row is None else operator.index(start_row)
    end = shape[0] if end_row is None else operator.index(end_row)
    if not 0 <= start <= end <= shape[0]:
        raise ValueError(f"rows {start}:{end}: need 0 <= start_row <= end_row <= {shape[0]} (the array's rows)")
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * itemsize
    out_shape = (end - start,) + shape[1:]
    return RowRange(start, end, start * row_bytes, (end - start) * row_bytes, out_shape)


def nbytes(shape: Sequence[int], itemsize: int) -> int:
    """Bytes of an array of this shape (the length its file name claims)."""
    n = itemsize
    for d in shape:
        n *= int(d)
    return n


# ---------------------------------------------------------------------------------------
# Reading one file through a descriptor


def _fd_size(fd: int) -> int:
    return os.fstat(fd).st_size


def _check_length(fd: int, need: int, what: str) -> None:
    size = _fd_size(fd)
    if size < need:
        raise FormatError(errno.EINVAL, f"{what}: the file has {size} bytes, its shape needs {need}")


def _read_fd(fd: int, dtype: "np.dtype[Any]", rr: RowRange, what: str) -> NDArray:
    """A private copy of rows ``rr`` (every byte read, else FormatError)."""
    _check_length(fd, rr.offset + rr.nbytes, what)
    out = np.empty(rr.shape, dtype)
    mv = out.reshape(-1).view(np.uint8).data if out.size else memoryview(b"")
    done = 0
    while done < rr.nbytes:
        n = os.preadv(fd, [mv[done:]], rr.offset + done)
        if n == 0:
            raise FormatError(errno.EINVAL, f"{what}: the file ended after {rr.offset + done} bytes")
        done += n
    return out


def _memmap_fd(fd: int, dtype: "np.dtype[Any]", rr: RowRange, what: str) -> NDArray:
    """A read-only ``numpy.memmap`` of rows ``rr`` (an empty read-only array for 0 bytes)."""
    _check_length(fd, rr.offset + rr.nbytes, what)
    if rr.nbytes == 0:
        out = np.empty(rr.shape, dtype)
        out.flags.writeable = False
        return out
    with os.fdopen(os.dup(fd), "rb") as f:
        m = np.memmap(f, dtype=dtype, mode="r", offset=rr.offset, shape=rr.shape or (1,), order="C")
    return m.reshape(()) if not rr.shape else m


def _pwrite_all(fd: int, arr: NDArray, pos: int) -> int:
    """Write the array's bytes (C order) at ``pos``; returns the position after them."""
    a = np.ascontiguousarray(arr)
    if a.nbytes == 0:
        return pos
    mv = a.reshape(-1).view(np.uint8).data
    done = 0
    while done < len(mv):
        done += os.pwrite(fd, mv[done:], pos + done)
    return pos + done


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as e:  # some filesystems refuse fsync on a directory
        if e.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


#: Set to False (tests) to use the lock-file fallback on every filesystem.
_DIRECTORY_FLOCK = True


@contextlib.contextmanager
def directory_lock(path: str) -> Iterator[None]:
    """Hold the store directory's writer lock (see the module documentation)."""
    fd = -1
    try:
        if _DIRECTORY_FLOCK:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as e:
                if e.errno not in (errno.EBADF, errno.ENOLCK, errno.EINVAL, errno.EOPNOTSUPP):
                    raise
                os.close(fd)
                fd = -1
        if fd < 0:
            fd = os.open(os.path.join(path, LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        if fd >= 0:
            os.close(fd)  # releases the lock


# ---------------------------------------------------------------------------------------
# Shared-memory copies


# FS_IOC_GETVERSION (_IOR('v', 1, long)): the inode's generation, which ext4, XFS and
# btrfs change when an inode number is reused.
_FS_IOC_GETVERSION = 0x80087601 if ctypes.sizeof(ctypes.c_long) == 8 else 0x80047601


def file_generation(fd: int) -> int:
    """The file's inode generation, or 0 where the filesystem has none (tmpfs, NFS)."""
    try:
        buf = fcntl.ioctl(fd, _FS_IOC_GETVERSION, bytes(8))
    except OSError:
        return 0
    return int.from_bytes(buf[:4], "little" if np.little_endian else "big")


def segment_name(dir_real: str, e: Entry, st: os.stat_result, rr: RowRange, generation: int = 0) -> str:
    """The ndshm array name (no scheme) of a shared copy of rows ``rr`` of ``e``.

    A hash of the directory's real path, the file name, its inode, inode generation
    and modification time and the rows (so a file saved again, even reusing an inode
    within one tick of a coarse clock, gets a new copy), then the readable
    ``NAME__START_END`` (ISF's segment name), shortened to fit 255 bytes.
    """
    key = "\0".join([dir_real, e.fname, str(st.st_ino), str(generation), str(st.st_mtime_ns), str(rr.start),
                     str(rr.end)])
    h = hashlib.sha256(os.fsencode(key)).hexdigest()[:24]
    readable = f"{e.name}__{rr.start}_{rr.end}"
    seg = f"isf.{h}.{readable}"
    while len(seg.encode("utf-8", "surrogateescape")) > _NAME_MAX:
        seg = seg[:-1]
    return seg


def full_segment_name(seg: str, where: Optional[str]) -> str:
    """``shm://SEG`` (redirected by ``NDSHM_DIR`` / ``JOB_SHMTMPDIR`` as every ndshm
    name is), or ``file://WHERE/SEG`` for an explicit directory."""
    return f"shm://{seg}" if where is None else "file://" + os.path.join(where, seg)


class SharedLoad(NamedTuple):
    """A shared-memory copy: the array, its full ndshm name, and whether this call
    created it (False: attached, or taken from the caller's cache)."""

    array: NDArray
    name: str
    created: bool


def load_fd_shared(fd: int, path: str, shape: Sequence[int], dtype: "np.dtype[Any]", rr: RowRange, name: str,
                   *, create: bool = True, exclusive: bool = False, read_only: bool = False,
                   timeout: Optional[float] = None) -> Tuple[NDArray, bool]:
    """Rows ``rr`` of the raw C-order file open at ``fd`` as the ndshm array ``name``:
    attached when it exists (with the rows' shape and dtype), else loaded (``create``)
    by exactly one of any number of processes doing this at once.

    Returns ``(array, created)``.

    Raises:
        FileNotFoundError: no such array and ``create`` is False.
        FileExistsError: it exists and ``exclusive``.
        ValueError: a dtype ndshm cannot hold in shared memory; an existing array of
            another shape or dtype.
        FormatError: the file is shorter than its shape says.
    """
    import ndshm  # noqa: PLC0415
    from . import _lib, _name, _wrap  # noqa: PLC0415
    from ._dataset import _path  # noqa: PLC0415

    try:
        code = ndshm._dtype_code(dtype)
    except ValueError:
        raise ValueError(
            f"{path}: dtype {dtype} cannot be held in shared memory by ndshm; load it with mode='memmap' "
            "or 'memory'") from None
    _check_length(fd, rr.offset + rr.nbytes, path)
    if not create:
        try:
            arr = ndshm.attach(name, read_only=read_only, validate_shape=rr.shape, validate_dtype=dtype,
                               timeout=timeout)
        except ndshm.NotReadyError:
            # Another process is loading it: wait for that (its death is OwnerDiedError).
            arr = ndshm.attach(name, read_only=read_only, validate_shape=rr.shape, validate_dtype=dtype,
                               timeout=-1 if timeout is None else timeout)
        return arr, False
    # Read the very file this descriptor holds (whose inode and mtime named the copy),
    # not whatever the path names by now: /proc/self/fd/N reopens the same file.
    src = f"/proc/self/fd/{fd}"
    if not os.path.exists(src):
        src = path
    dims = [int(d) for d in shape]
    c_shape = (ctypes.c_int64 * max(len(dims), 1))(*dims)
    start, end = (-1, -1) if not dims else (rr.start, rr.end)
    flags = (_lib.SA_READONLY if read_only else 0) | (_lib.SA_EXCLUSIVE if exclusive else 0)
    h = ctypes.c_void_p()
    outcome = ctypes.c_int32(-1)
    timeout_ms = -1 if timeout is None else ndshm._timeout_ms(timeout)
    _lib.lib.sa_load_raw(_path(src), 0, len(dims), c_shape, code, _name(name), start, end, flags,
                         timeout_ms, ctypes.byref(h), ctypes.byref(outcome))
    # The handle as an int: what both the ctypes and the compiled _wrap take.
    return _wrap(int(h.value or 0)), outcome.value == _lib.SA_CREATED


# ---------------------------------------------------------------------------------------
# A store directory


class Directory:
    """An ISF SharedNumpyStore directory: list, save, append, load (memmap, private copy
    or shared memory). Thread-safe for writers (the directory lock serialises them);
    ``entries`` is a cache refreshed by :meth:`scan`."""

    def __init__(self, path: PathLike, create: bool = True) -> None:
        p = os.fsdecode(path)
        if create:
            os.makedirs(p, exist_ok=True)
        elif not os.path.isdir(p):
            raise FileNotFoundError(errno.ENOENT, "no such store directory", p)
        self.path = p
        self.real = os.path.realpath(p)
        self.entries: Dict[str, Entry] = {}
        self.scan()

    # -- listing ------------------------------------------------------------------------

    def scan(self) -> Dict[str, Entry]:
        """Re-read the directory; returns (and caches) name -> Entry.

        Entries that are not arrays are skipped. When one name has several files (ISF
        left the old one when an array was saved with another shape), the most recently
        modified wins.
        """
        out: Dict[str, Entry] = {}
        when: Dict[str, int] = {}
        for f in os.listdir(self.path):
            e = parse_fname(f)
            if e is None:
                continue
            if e.name in out:
                try:
                    if e.name not in when:
                        when[e.name] = os.stat(os.path.join(self.path, out[e.name].fname)).st_mtime_ns
                    t = os.stat(os.path.join(self.path, f)).st_mtime_ns
                except FileNotFoundError:
                    continue
                if t <= when[e.name]:
                    continue
                when[e.name] = t
            out[e.name] = e
        self.entries = out
        return out

    def entry(self, name: str, refresh: bool = False) -> Entry:
        """The array ``name`` (from the cache; the directory is read again when it is not
        there or ``refresh``).

        Raises:
            NotInStoreError: no such array.
        """
        e = None if refresh else self.entries.get(name)
        if e is None:
            e = self.scan().get(name)
        if e is None:
            raise NotInStoreError(f"Array with name {name} not found in the store {self.path}")
        return e

    def _open(self, name: str) -> Tuple[Entry, int]:
        """Open the file the array's current name points to (looking again when a writer
        renamed or replaced it between listing and opening)."""
        for attempt in range(100):
            e = self.entry(name, refresh=attempt > 0)
            try:
                return e, os.open(os.path.join(self.path, e.fname), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
        raise NotInStoreError(f"{self.path}: array {name} kept changing its file name while being opened")

    # -- reading ------------------------------------------------------------------------

    def read(self, name: str, start_row: Optional[int] = None, end_row: Optional[int] = None) -> NDArray:
        """A private copy of rows ``[start_row, end_row)`` (ISF's ``mode='memory'``)."""
        e, fd = self._open(name)
        try:
            _check_length(fd, nbytes(e.shape, e.dtype.itemsize), self._what(e))
            return _read_fd(fd, e.dtype, row_range(e.shape, e.dtype.itemsize, start_row, end_row), self._what(e))
        finally:
            os.close(fd)

    def memmap(self, name: str, start_row: Optional[int] = None, end_row: Optional[int] = None) -> NDArray:
        """A read-only memory map of rows ``[start_row, end_row)`` (ISF's ``mode='memmap'``)."""
        e, fd = self._open(name)
        try:
            _check_length(fd, nbytes(e.shape, e.dtype.itemsize), self._what(e))
            return _memmap_fd(fd, e.dtype, row_range(e.shape, e.dtype.itemsize, start_row, end_row), self._what(e))
        finally:
            os.close(fd)

    def shared(self, name: str, start_row: Optional[int] = None, end_row: Optional[int] = None, *,
               create: bool = True, where: Optional[str] = None, read_only: bool = False,
               timeout: Optional[float] = None, known: Optional[Mapping[str, NDArray]] = None) -> SharedLoad:
        """Rows ``[start_row, end_row)`` in shared memory (ISF's ``mode='shared_memory'``).

        Args:
            name: the array.
            start_row: first row (None: 0).
            end_row: end row, exclusive (None: all).
            create: load the copy when no process has (ISF's ``allow_create_shm``).
            where: a directory for the copies (``file://``); None: ``shm://`` names,
                which ``NDSHM_DIR`` / ``JOB_SHMTMPDIR`` redirect.
            read_only: map it read-only.
            timeout: seconds to wait for another process loading the same copy (None:
                no limit when creating; do not wait when only attaching).
            known: copies this caller already holds, by full name: returned as they are.

        Raises:
            NotInStoreError, NotInSharedMemoryError, FormatError, ValueError.
        """
        e, fd = self._open(name)
        try:
            what = self._what(e)
            _check_length(fd, nbytes(e.shape, e.dtype.itemsize), what)
            rr = row_range(e.shape, e.dtype.itemsize, start_row, end_row)
            full = full_segment_name(segment_name(self.real, e, os.fstat(fd), rr, file_generation(fd)), where)
            if known is not None and full in known:
                return SharedLoad(known[full], full, False)
            try:
                arr, created = load_fd_shared(fd, os.path.join(self.path, e.fname), e.shape, e.dtype, rr, full,
                                              create=create, read_only=read_only, timeout=timeout)
            except FileNotFoundError:
                if create:
                    raise
                raise NotInSharedMemoryError(
                    f"{what}: rows {rr.start}:{rr.end} are not in shared memory yet ({full}). Set "
                    "allow_create_shm to True to load the array into shared memory.") from None
            return SharedLoad(arr, full, created)
        finally:
            os.close(fd)

    def _what(self, e: Entry) -> str:
        return os.path.join(self.path, e.fname)

    # -- writing ------------------------------------------------------------------------

    def _clean_temporaries(self) -> None:
        """Remove temporary files of saves that died (call with the lock held: every live
        save holds it while its temporary file exists)."""
        for f in os.listdir(self.path):
            if f.startswith(_TMP_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.path, f))

    def save(self, arr: NDArray, name: str, durable: bool = True) -> Entry:
        """Write ``arr`` as the array ``name`` (replacing it), atomically: readers see the
        old file or the complete new one. Older files of the array with another shape or
        dtype are removed.

        Raises:
            StoreNameError, UnsupportedArrayError, OSError.
        """
        check_name(name)
        a = np.asarray(arr)
        if a.ndim == 0:
            raise UnsupportedArrayError(
                f"{name}: a 0-d array cannot be stored: ISF's file name would have an empty shape field, which "
                "ISF cannot load (store arr.reshape(1) instead)")
        fname = format_fname(name, a.shape, dtype_string(a.dtype))
        with directory_lock(self.path):
            return self._save_locked(a, name, fname, durable)

    def _save_locked(self, a: NDArray, name: str, fname: str, durable: bool) -> Entry:
        self._clean_temporaries()
        tmp = os.path.join(self.path, f"{_TMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        try:
            try:
                _pwrite_all(fd, a, 0)
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, os.path.join(self.path, fname))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        for f in os.listdir(self.path):
            old = parse_fname(f)
            if old is not None and old.name == name and f != fname:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.path, f))
        if durable:
            _fsync_dir(self.path)
        e = parse_fname(fname)
        assert e is not None
        self.entries[name] = e
        return e

    def append(self, name: str, rows: Sequence[NDArray], durable: bool = True) -> Entry:
        """Append ``rows`` (arrays, in order) to the array ``name`` along axis 0, crash-safely
        (see the module documentation); a missing array is created from them.

        Raises:
            StoreNameError, UnsupportedArrayError.
            AppendMismatchError: rows of another dtype, ndim or trailing shape.
            FormatError: the file is shorter than its name says (not written by this rule).
        """
        check_name(name)
        parts = [np.asarray(r) for r in rows]
        if not parts:
            return self.entry(name)
        with directory_lock(self.path):
            e = self.scan().get(name)
            if e is None:
                first = parts[0]
                check_rows(parts, first.shape, first.dtype, name)
                a = np.concatenate(parts) if len(parts) > 1 else first
                if a.ndim == 0:
                    raise UnsupportedArrayError(f"{name}: a 0-d array cannot be stored (store arr.reshape(1))")
                return self._save_locked(a, name, format_fname(name, a.shape, dtype_string(a.dtype)), durable)
            check_rows(parts, e.shape, e.dtype, name)
            path = os.path.join(self.path, e.fname)
            committed = nbytes(e.shape, e.dtype.itemsize)
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            try:
                size = _fd_size(fd)
                if size < committed:
                    raise FormatError(errno.EINVAL, f"{path}: the file has {size} bytes, its name says {committed}")
                if size > committed:
                    # Rows an interrupted append wrote but never committed by a rename:
                    # beyond the name's length, so no reader uses them.
                    os.ftruncate(fd, committed)
                pos = committed
                for p in parts:
                    pos = _pwrite_all(fd, p, pos)
                if durable:
                    os.fsync(fd)  # the bytes are on disk before any name covers them
            finally:
                os.close(fd)
            added = sum(p.shape[0] for p in parts)
            new = format_fname(name, (e.shape[0] + added,) + e.shape[1:], e.dtype_str)
            if new != e.fname:
                os.rename(path, os.path.join(self.path, new))  # the commit point
                if durable:
                    _fsync_dir(self.path)
            ne = parse_fname(new)
            assert ne is not None
            self.entries[name] = ne
            return ne


def check_rows(parts: List[NDArray], shape: Tuple[int, ...], dtype: "np.dtype[Any]", name: str) -> None:
    """Raise AppendMismatchError unless every array has ``len(shape)`` dimensions, the
    trailing dimensions ``shape[1:]`` and exactly ``dtype``."""
    for p in parts:
        if p.ndim == 0 or p.ndim != len(shape) or p.shape[1:] != tuple(shape[1:]):
            raise AppendMismatchError(
                f"{name}: cannot append rows of shape {p.shape} to an array of shape {tuple(shape)}: "
                "Incompatible dimensions for appending arrays.")
        if p.dtype != dtype:
            raise AppendMismatchError(
                f"{name}: cannot append rows of dtype {p.dtype} to an array of dtype {dtype} "
                f"(convert them first, e.g. rows.astype({str(dtype)!r}))")


# ---------------------------------------------------------------------------------------
# Single files (ISF's module functions)


def file_metadata(path: str, shape: Any, dtype: Any) -> Tuple[Tuple[int, ...], "np.dtype[Any]"]:
    """``(shape, dtype)`` as given, or from the file's ISF name when either is None.

    Raises:
        ValueError: neither given nor an ISF file name.
    """
    if shape is None or dtype is None:
        e = parse_fname(os.path.basename(path))
        if e is None:
            raise ValueError(f"{path}: give shape and dtype (the file name is not NAME__SHAPE__DTYPE)")
        shape = e.shape if shape is None else shape
        dtype = e.dtype if dtype is None else dtype
    dims = (operator.index(shape),) if np.ndim(shape) == 0 and not isinstance(shape, tuple) else tuple(
        operator.index(d) for d in shape)
    return dims, np.dtype(dtype)


@contextlib.contextmanager
def open_file(path: PathLike) -> Iterator[int]:
    """A read-only descriptor of ``path`` (closed on exit)."""
    fd = os.open(os.fsdecode(path), os.O_RDONLY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def read_file(path: str, shape: Any, dtype: Any, start_row: Optional[int] = None,
              end_row: Optional[int] = None) -> NDArray:
    """A private copy of rows of a raw C-order file."""
    dims, dt = file_metadata(path, shape, dtype)
    with open_file(path) as fd:
        return _read_fd(fd, dt, row_range(dims, dt.itemsize, start_row, end_row), path)


def memmap_file(path: str, shape: Any, dtype: Any, start_row: Optional[int] = None,
                end_row: Optional[int] = None) -> NDArray:
    """A read-only memory map of rows of a raw C-order file (at least as long as the
    shape needs; trailing bytes are ignored)."""
    dims, dt = file_metadata(path, shape, dtype)
    with open_file(path) as fd:
        _check_length(fd, nbytes(dims, dt.itemsize), path)
        return _memmap_fd(fd, dt, row_range(dims, dt.itemsize, start_row, end_row), path)


def shared_file(path: str, shape: Any, dtype: Any, name: str, start_row: Optional[int] = None,
                end_row: Optional[int] = None, *, exclusive: bool = True) -> NDArray:
    """Rows of a raw C-order file loaded into the new ndshm array ``name``."""
    dims, dt = file_metadata(path, shape, dtype)
    with open_file(path) as fd:
        _check_length(fd, nbytes(dims, dt.itemsize), path)
        rr = row_range(dims, dt.itemsize, start_row, end_row)
        arr, _ = load_fd_shared(fd, path, dims, dt, rr, name, create=True, exclusive=exclusive)
        return arr
