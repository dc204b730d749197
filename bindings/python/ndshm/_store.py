"""The array store: a directory of named arrays, saved, appended to, listed, deleted,
and loaded whole or by row range, mapped in place or copied into shared memory once for
all processes of a node.

    >>> s = ndshm.Store("/data/run42")
    >>> s.save("voltage", v)                   # atomically
    >>> s.append("spikes", rows)               # grows in place, crash safe
    >>> x = s.load("voltage", rows=(0, 1000))  # mapped in place: no copy
    >>> y = s.load("voltage", mode="shm")      # one copy per node, shared by all
    >>> "voltage" in s, s.list()

Arrays are ndshm v1 files (metadata in the header: a renamed file still opens). The
store also opens directories of ISF's ``SharedNumpyStore`` (raw files named
``NAME__D0_..._Dn__DTYPE``) and keeps their arrays in ISF's format when it saves or
appends to them, so ISF still reads them (ndshm._isf). Thin over the C store
(src/store.rs).
"""

from __future__ import annotations

import ctypes
import os
from typing import Any, Dict, Iterator, List, Literal, Optional, Set

import numpy as np
import numpy.typing as npt

from . import StoreEntry, _dtype_code, _isf, _lib, _wrap
from ._dataset import Rows, _path, _rows
from ._lib import ext as _ext
from ._lib import lib
from ._types import NDArray, PathLike

__all__ = ["Store"]

_MODES = ("memmap", "shm", "memory")
_FORMATS = {_lib.SA_STORE_V1: "ndshm", _lib.SA_STORE_ISF: "isf"}


def _key(name: str) -> bytes:
    if not isinstance(name, str):
        raise TypeError(f"a store name is a str, not {type(name).__name__}")
    return name.encode("utf-8", "surrogateescape")


class Store:
    """A directory of named arrays (created unless ``readonly``).

    Args:
        path: the directory.
        readonly: map arrays read-only and refuse every change (``PermissionError``).
        format: how new arrays are written: ``"ndshm"`` (v1 files), ``"isf"`` (ISF's
            raw files, for directories ISF itself also reads), or ``"auto"``: ``"isf"``
            when the directory holds ISF arrays and no ndshm ones, else ``"ndshm"``.
            Existing arrays always keep their format.

    Raises:
        FileNotFoundError: ``readonly`` and the directory does not exist.
        ValueError: ``path`` is not a directory; an unknown ``format``.
        PermissionError: the directory cannot be created or read.
    """

    def __init__(self, path: PathLike, readonly: bool = False,
                 format: Literal["auto", "ndshm", "isf"] = "auto") -> None:  # noqa: A002
        self._h: Optional[int] = None
        if format not in ("auto", "ndshm", "isf"):
            raise ValueError(f"format must be 'auto', 'ndshm' or 'isf', not {format!r}")
        h = ctypes.c_void_p()
        lib.sa_store_open(_path(path), _lib.SA_READONLY if readonly else 0, ctypes.byref(h))
        self._h = h.value
        self.path = os.fsdecode(path)
        self.readonly = bool(readonly)
        self._isf = _isf.Directory(self.path, create=False)
        # Which format each name has (None: unknown yet): appends skip the lookup.
        self._kind: Dict[str, str] = {}
        # Names as the C calls take them.
        self._keys: Dict[str, bytes] = {}
        # Shared-memory copies of ISF arrays this object made (their names hash the file's
        # identity, so they are found here, not by a prefix), for unload.
        self._isf_copies: Dict[str, Set[str]] = {}
        if format == "auto":
            kinds = {e.format for e in self.list()}
            format = "isf" if kinds == {"isf"} else "ndshm"
        self.format = format

    def close(self) -> None:
        """Close the store (arrays obtained from it stay valid). Idempotent.

        Raises:
            Never raises.
        """
        h, self._h = self._h, None
        if h is not None:
            lib.sa_store_close(h)

    def __del__(self) -> None:
        if getattr(self, "_h", None) is not None and lib is not None:
            self.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _handle(self) -> int:
        if self._h is None:
            raise ValueError(f"store {self.path}: closed")
        return self._h

    def _kind_of(self, name: str) -> Optional[str]:
        """'ndshm', 'isf' or None (no such array)."""
        k = self._kind.get(name)
        if k is None:
            for e in self.list():
                self._kind[e.name] = e.format
            k = self._kind.get(name)
        return k

    def _writable(self) -> None:
        if self.readonly:
            raise PermissionError(f"store {self.path}: opened read-only")

    # -- writing ---------------------------------------------------------------------

    def save(self, name: str, array: npt.ArrayLike) -> None:
        """Save ``array`` as ``name``, atomically: readers see the old array or the
        complete new one; a failure leaves the old one. An ISF array stays an ISF file.

        Args:
            name: 1 to 128 bytes; no ``/`` or ``__``; not ``Loader.json`` or
                ``Loader.pickle``.
            array: the data (anything ``numpy.asarray`` takes; Fortran order is kept).

        Raises:
            ValueError: a bad name; an unsupported dtype; a 0-d array in ISF format.
            PermissionError: a read-only store.
            OSError: (ENOSPC) the filesystem is full.
        """
        self._writable()
        a = np.asarray(array)
        kind = self._kind_of(name) or self.format
        if kind == "isf":
            self._isf.save(a, name)
        else:
            f = a.flags.f_contiguous and not a.flags.c_contiguous
            a = np.asfortranarray(a) if f else np.ascontiguousarray(a)
            code = _dtype_code(a.dtype)
            shape = (ctypes.c_int64 * max(a.ndim, 1))(*a.shape)
            lib.sa_store_save(self._handle(), _key(name), a.ndim, shape, code, _lib.SA_ORDER_F if f else 0,
                              a.ctypes.data)
        self._kind[name] = kind

    def append(self, name: str, rows: npt.ArrayLike) -> int:
        """Append ``rows`` to ``name`` along axis 0, creating the array when there is
        none. ndshm arrays grow in place (amortised O(row size) per row; appenders in
        all processes serialised by the array's lock); ISF arrays grow by ISF's rule
        (append, then rename), kept crash safe.

        Args:
            name: as for :meth:`save`.
            rows: shape ``(n,) + row_shape`` and exactly the array's dtype (nothing is
                converted).

        Returns:
            The new number of rows.

        Raises:
            TypeError: rows of another dtype.
            ValueError: rows of another row shape; a 0-d ``rows``; a bad name.
            PermissionError: a read-only store.
            OSError: (ENOSPC) the filesystem is full: the array is unchanged.
        """
        if _ext is not None and self._kind.get(name) == "ndshm" and self._h is not None and not self.readonly:
            # The common case in one C call: rows already a contiguous array.
            key = self._keys.get(name)
            if key is None:
                key = self._keys[name] = _key(name)
            try:
                n = _ext.store_append(self._h, key, rows)
            except ValueError as exc:
                if "the array holds" in str(exc):
                    raise TypeError(str(exc)) from None
                raise
            if n is not NotImplemented:
                return n  # type: ignore[no-any-return]
        self._writable()
        r = np.ascontiguousarray(rows)
        if r.ndim == 0:
            raise ValueError(f"{name}: rows need at least one dimension (the row count)")
        kind = self._kind_of(name) or self.format
        if kind == "isf":
            try:
                e = self._isf.append(name, [r])
            except _isf.AppendMismatchError as exc:
                if "of dtype" in str(exc):
                    raise TypeError(str(exc)) from None
                raise
            self._kind[name] = kind
            return e.shape[0]
        shape = (ctypes.c_int64 * max(r.ndim - 1, 1))(*r.shape[1:])
        n = ctypes.c_int64()
        try:
            lib.sa_store_append(self._handle(), _key(name), r.ndim - 1, shape, _dtype_code(r.dtype), r.ctypes.data,
                                r.shape[0], ctypes.byref(n))
        except ValueError as exc:
            if "the array holds" in str(exc):
                # The dtype is the usual mistake: say so as numpy would.
                raise TypeError(str(exc)) from None
            raise
        self._kind[name] = kind
        return n.value

    def delete(self, name: str) -> None:
        """Delete ``name`` (in either format). Shared-memory copies stay until
        :meth:`unload`.

        Args:
            name: the array.

        Raises:
            KeyError: no such array.
            PermissionError: a read-only store.
        """
        self._writable()
        try:
            lib.sa_store_delete(self._handle(), _key(name))
        except FileNotFoundError:
            raise KeyError(name) from None
        finally:
            self._kind.pop(name, None)

    # -- reading ---------------------------------------------------------------------

    def list(self) -> List[StoreEntry]:  # noqa: A003 - the issue's name
        """The store's arrays, sorted by name (other files are skipped).

        Returns:
            A :class:`StoreEntry` per array.

        Raises:
            FileNotFoundError: the directory is gone.
        """
        entries = ctypes.POINTER(_lib.sa_store_entry)()
        count = ctypes.c_size_t()
        lib.sa_store_list(self._handle(), ctypes.byref(entries), ctypes.byref(count))
        try:
            out = []
            for i in range(count.value):
                e = entries[i]
                out.append(StoreEntry(
                    e.name.decode("utf-8", "surrogateescape"),
                    np.dtype(lib.sa_dtype_str(e.dtype).decode()),
                    tuple(e.shape[: e.ndim]),
                    "F" if e.order == _lib.SA_ORDER_F else "C",
                    _FORMATS.get(e.format, "?"),
                ))
            return out
        finally:
            lib.sa_store_list_free(entries, count)

    def load(self, name: str, mode: Literal["memmap", "shm", "memory"] = "memmap",
             rows: Optional[Rows] = None) -> NDArray:
        """Load ``name``, or rows ``[start, end)`` of it.

        Args:
            name: the array.
            mode: ``"memmap"``: mapped in place, no copy (read-only in a read-only
                store); ``"shm"``: copied into shared memory once for every process of
                the node (the first caller copies, the others attach the same copy;
                the copy's name carries the store's directory, the array's version and
                the rows); ``"memory"``: a private copy.
            rows: ``(start, end)`` or ``slice(start, end)`` of axis 0; None: all.

        Returns:
            The array.

        Raises:
            KeyError: no such array.
            ValueError: an unknown mode; rows outside the array.
            OSError: (ENOSPC) no room in shared memory.
        """
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {', '.join(_MODES)}, not {mode!r}")
        kind = self._kind_of(name)
        if kind is None:
            raise KeyError(name)
        start, end = _rows(rows)
        if kind == "isf":
            s, e = (None, None) if rows is None else (start, end)
            if mode == "memmap":
                return self._isf.memmap(name, s, e)
            if mode == "memory":
                return self._isf.read(name, s, e)
            got = self._isf.shared(name, s, e, read_only=self.readonly)
            self._isf_copies.setdefault(name, set()).add(got.name)
            return got.array
        if mode == "memory":
            return self._read(name, rows, start, end)
        h = ctypes.c_void_p()
        try:
            if mode == "shm":
                lib.sa_store_load(self._handle(), _key(name), start, end, -1, ctypes.byref(h), None)
                return _wrap(h.value)  # type: ignore[no-any-return]
            lib.sa_store_map(self._handle(), _key(name), ctypes.byref(h))
        except FileNotFoundError:
            self._kind.pop(name, None)
            raise KeyError(name) from None
        a = _wrap(h.value)
        if rows is not None:
            if end > a.shape[0]:
                raise ValueError(f"{name}: rows ({start}, {end}) outside its {a.shape[0]} rows")
            a = a[start:end]
        return a  # type: ignore[no-any-return]

    def _read(self, name: str, rows: Optional[Rows], start: int, end: int) -> NDArray:
        """A private copy of rows ``[start, end)`` of an ndshm array, read with ``pread``
        (no mapping to fault in)."""
        p = ctypes.POINTER(_lib.sa_store_entry)()
        try:
            lib.sa_store_info(self._handle(), _key(name), ctypes.byref(p))
        except FileNotFoundError:
            self._kind.pop(name, None)
            raise KeyError(name) from None
        try:
            e = p[0]
            shape = tuple(e.shape[: e.ndim])
            dtype = np.dtype(lib.sa_dtype_str(e.dtype).decode())
            order = "F" if e.order == _lib.SA_ORDER_F else "C"
        finally:
            lib.sa_store_list_free(p, 1)
        if rows is not None:
            if not shape:
                raise ValueError(f"{name}: a 0-d array has no rows")
            if end > shape[0]:
                raise ValueError(f"{name}: rows ({start}, {end}) outside its {shape[0]} rows")
            if order == "F" and len(shape) > 1:
                # Rows of a Fortran-order array are not contiguous in the file.
                return np.array(self.load(name, "memmap")[start:end])
            shape = (end - start,) + shape[1:]
        out = np.empty(shape, dtype, order=order)
        lib.sa_store_read(self._handle(), _key(name), start, end, out.ctypes.data, out.nbytes)
        return out

    def unload(self, name: str) -> int:
        """Delete the shared-memory copies ``load(name, mode="shm")`` made (processes
        that map one keep it until they let go): every copy of an ndshm array, and the
        copies of an ISF array that this object made (their names depend on the file's
        identity).

        Args:
            name: the array.

        Returns:
            How many copies were deleted.

        Raises:
            ValueError: a bad name.
        """
        n = ctypes.c_size_t()
        lib.sa_store_unload(self._handle(), _key(name), ctypes.byref(n))
        count = n.value
        for full in self._isf_copies.pop(name, ()):
            try:
                lib.sa_delete(full.encode("utf-8", "surrogateescape"))
                count += 1
            except FileNotFoundError:
                pass
        return count

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        self._kind = {e.name: e.format for e in self.list()}  # as the directory is now
        return name in self._kind

    def __getitem__(self, name: str) -> NDArray:
        """``store[name]`` is ``store.load(name)`` (mapped in place)."""
        return self.load(name)

    def __iter__(self) -> Iterator[str]:
        return iter([e.name for e in self.list()])

    def __len__(self) -> int:
        return len(self.list())

    def __repr__(self) -> str:
        ro = ", read-only" if self.readonly else ""
        return f"<ndshm.Store {self.path!r}{ro}>"
