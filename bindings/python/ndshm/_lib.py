"""ctypes declarations of the ndshm C API (include/ndshm.h) and error mapping.

Kept by hand, one line per function; tests/test_declarations.py fails when a
declaration no longer matches the header.
"""

import ctypes
import ctypes.util
import errno as _errno
import os
from ctypes import (
    POINTER,
    Structure,
    c_char,
    c_char_p,
    c_int,
    c_int32,
    c_int64,
    c_size_t,
    c_uint32,
    c_uint64,
    c_void_p,
)

SA_MAX_NDIM = 32


class sa_list_entry(Structure):
    _fields_ = [
        ("name", c_char_p),
        ("backend", c_int32),
        ("format", c_int32),
        ("state", c_int32),
        ("dtype", c_int32),
        ("order", c_int32),
        ("ndim", c_int32),
        ("shape", c_int64 * SA_MAX_NDIM),
        ("nbytes", c_uint64),
        ("capacity", c_uint64),
        ("file_size", c_uint64),
        ("created_ns", c_int64),
        ("creator_pid", c_int32),
        ("creator_alive", c_int32),
        ("mode", c_uint32),
        ("uid", c_uint32),
        ("host", c_char * 64),
    ]


class sa_desc(Structure):
    _fields_ = [
        ("data", c_void_p),
        ("nbytes", c_size_t),
        ("itemsize", c_size_t),
        ("ndim", c_int32),
        ("dtype", c_int32),
        ("order", c_int32),
        ("readonly", c_int32),
        ("format", c_int32),
        ("shape", c_int64 * SA_MAX_NDIM),
        ("strides", c_int64 * SA_MAX_NDIM),
        ("name", c_char_p),
        ("typestr", c_char_p),
    ]


def _library_path():
    """NDSHM_LIBRARY, else the copy bundled by `pip install`, else the system's."""
    env = os.environ.get("NDSHM_LIBRARY")
    if env:
        return env
    bundled = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_native", "libndshm.so")
    if os.path.exists(bundled):
        return bundled
    found = ctypes.util.find_library("ndshm")
    if found:
        return found
    raise ImportError(
        "ndshm: the native library libndshm.so was not found. Install the package with "
        "`pip install ./bindings/python` (it builds and bundles the library), or point "
        "NDSHM_LIBRARY at a built libndshm.so."
    )


lib = ctypes.CDLL(_library_path())

_handle = c_void_p
_P = POINTER

# name: (restype, argtypes)
DECLARATIONS = {
    "sa_create": (c_int, [c_char_p, c_int32, _P(c_int64), c_int32, c_uint32, _P(_handle)]),
    "sa_attach": (c_int, [c_char_p, c_uint32, _P(_handle)]),
    "sa_attach_wait": (c_int, [c_char_p, c_uint32, c_int64, _P(_handle)]),
    "sa_attach_checked": (c_int, [c_char_p, c_uint32, c_int32, _P(c_int64), c_int32, _P(_handle)]),
    "sa_attach_ex": (c_int, [c_char_p, c_uint32, c_int64, c_int32, _P(c_int64), c_int32, _P(_handle)]),
    "sa_release": (None, [_handle]),
    "sa_delete": (c_int, [c_char_p]),
    "sa_data": (c_void_p, [_handle]),
    "sa_ndim": (c_int32, [_handle]),
    "sa_shape": (_P(c_int64), [_handle]),
    "sa_strides": (_P(c_int64), [_handle]),
    "sa_get_dtype": (c_int32, [_handle]),
    "sa_itemsize": (c_size_t, [_handle]),
    "sa_nbytes": (c_size_t, [_handle]),
    "sa_capacity": (c_size_t, [_handle]),
    "sa_order": (c_int32, [_handle]),
    "sa_format": (c_int32, [_handle]),
    "sa_is_readonly": (c_int32, [_handle]),
    "sa_name": (c_char_p, [_handle]),
    "sa_fill": (c_int, [_handle, c_void_p]),
    "sa_msync": (c_int, [_handle, c_int32]),
    "sa_mlock": (c_int, [_handle]),
    "sa_munlock": (c_int, [_handle]),
    "sa_describe": (c_int, [_handle, _P(sa_desc)]),
    "sa_list": (c_int, [c_char_p, _P(_P(sa_list_entry)), _P(c_size_t)]),
    "sa_list_free": (None, [_P(sa_list_entry), c_size_t]),
    "sa_info": (c_int, [c_char_p, _P(_P(sa_list_entry))]),
    "sa_dtype_from_str": (c_int, [c_char_p, _P(c_int32)]),
    "sa_dtype_str": (c_char_p, [c_int32]),
    "sa_dtype_itemsize": (c_size_t, [c_int32]),
    "sa_last_error": (c_char_p, []),
    "sa_last_errno": (c_int, []),
    "sa_status_str": (c_char_p, [c_int]),
    "sa_version": (c_char_p, []),
    "sa_format_version": (c_uint32, []),
}

for _name, (_res, _args) in DECLARATIONS.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args

# Constants from include/ndshm.h (checked against it by the declarations test).
SA_OK = 0
SA_ERR_INVALID = -1
SA_ERR_NOT_FOUND = -2
SA_ERR_EXISTS = -3
SA_ERR_FORMAT = -4
SA_ERR_MISMATCH = -5
SA_ERR_NO_SPACE = -6
SA_ERR_PERMISSION = -7
SA_ERR_NOT_READY = -8
SA_ERR_TIMEOUT = -9
SA_ERR_OWNER_DIED = -10
SA_ERR_READ_ONLY = -11
SA_ERR_UNSUPPORTED = -12
SA_ERR_IO = -13
SA_ERR_PANIC = -14

SA_ORDER_F = 1 << 0
SA_FORCE = 1 << 1
SA_SPARSE = 1 << 2
SA_POPULATE = 1 << 3
SA_HUGEPAGES = 1 << 4
SA_SHARE_GROUP = 1 << 5
SA_SHARE_ALL = 1 << 6
SA_FORMAT_SHAREDARRAY = 1 << 7
SA_READONLY = 1 << 8
SA_MS_ASYNC = 1
SA_MS_INVALIDATE = 2
SA_MS_SYNC = 4
SA_DTYPE_ANY = -1
SA_FORMAT_V1 = 1
SA_FORMAT_SHAREDARRAY_NPY1 = 2
SA_FORMAT_SHAREDARRAY_NPY2 = 3
SA_BACKEND_SHM = 0
SA_BACKEND_FILE = 1
SA_STATE_INITIALISING = 0
SA_STATE_READY = 1


class NdshmError(OSError):
    """Base of the ndshm-specific errors that are not a builtin exception."""


class FormatError(NdshmError):
    """The segment is not a valid array (corrupt, truncated, foreign, newer format)."""


class NotReadyError(NdshmError):
    """The array exists but its creator has not finished initialising it."""


# status -> (exception class, errno for OSError subclasses or None)
_EXCEPTIONS = {
    SA_ERR_INVALID: (ValueError, None),
    SA_ERR_NOT_FOUND: (FileNotFoundError, _errno.ENOENT),
    SA_ERR_EXISTS: (FileExistsError, _errno.EEXIST),
    SA_ERR_FORMAT: (FormatError, _errno.EINVAL),
    SA_ERR_MISMATCH: (ValueError, None),
    SA_ERR_NO_SPACE: (OSError, _errno.ENOSPC),
    SA_ERR_PERMISSION: (PermissionError, _errno.EACCES),
    SA_ERR_NOT_READY: (NotReadyError, _errno.EAGAIN),
    SA_ERR_TIMEOUT: (TimeoutError, _errno.ETIMEDOUT),
    SA_ERR_OWNER_DIED: (NdshmError, _errno.EOWNERDEAD),
    SA_ERR_READ_ONLY: (PermissionError, _errno.EROFS),
    SA_ERR_UNSUPPORTED: (ValueError, None),
    SA_ERR_IO: (OSError, _errno.EIO),
    SA_ERR_PANIC: (RuntimeError, None),
}


def error_for(status):
    """The exception for a failed call, carrying the library's message (and errno)."""
    msg = (lib.sa_last_error() or b"").decode("utf-8", "replace")
    cls, default_errno = _EXCEPTIONS.get(status, (OSError, _errno.EIO))
    if default_errno is None:
        exc = cls(msg)
    else:
        err = lib.sa_last_errno() or default_errno
        exc = cls(err, msg)
    exc.status = status
    return exc


def check(status):
    if status != SA_OK:
        raise error_for(status)
