"""Loads the ndshm library, declares its functions and maps its statuses to exceptions.

The constants, structs and declarations come from _abi.py, generated from
include/ndshm.h by scripts/gen_python.py (tests/test_declarations.py fails when it is
stale). Every function returning a status is checked by ctypes itself (errcheck): a
nonzero status raises the mapped exception, so no call can ignore one.

``ext`` is the compiled fast path (ndshm/_ext.c, a thin C layer over the same library
for the hot calls), or None: when it was not built, cannot be loaded (a warning says
why), or ``NDSHM_NO_EXT=1`` asks for ctypes alone. Everything works without it.
"""

import ctypes
import ctypes.util
import errno as _errno
import os
import re
import warnings
from typing import Any, Optional

from ._abi import *  # noqa: F403 - the header's constants, structs and DECLARATIONS
from ._abi import C_RESULTS, DECLARATIONS, SA_OK


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


# Results spelt `int` in the header are statuses (SA_OK or an SA_ERR_* code), except
# these, which return a plain number. A status enum type counts as a status too.
NOT_STATUS = frozenset({"sa_last_errno"})
STATUS_FUNCTIONS = frozenset(
    name for name, c in C_RESULTS.items() if (c == "int" or "status" in c) and name not in NOT_STATUS
)


def _errcheck(status, func, args):
    if status != SA_OK:
        raise error_for(status)
    return status


for _name, (_res, _args) in DECLARATIONS.items():
    try:
        _f = getattr(lib, _name)
    except AttributeError:
        raise ImportError(
            f"ndshm: {lib._name} has no {_name}, which include/ndshm.h declares: the library "
            "is older than this binding; rebuild it (cargo build --release --lib)"
        ) from None
    _f.restype = _res
    _f.argtypes = _args
    if _name in STATUS_FUNCTIONS:
        _f.errcheck = _errcheck


class NdshmError(OSError):
    """Base of the ndshm-specific errors that are not a builtin exception."""


class FormatError(NdshmError):
    """The segment is not a valid array (corrupt, truncated, foreign, newer format)."""


class NotReadyError(NdshmError):
    """The array exists but its creator has not finished initialising it."""


class StaleError(NdshmError):
    """The array was replaced under its name by a larger one: attach the name again."""


class TornReadError(NdshmError):
    """An in-place read overlapped a write: what was read may mix two versions."""


class OwnerDiedError(NdshmError):
    """The process that should have finished something died: the array's creator, or
    the holder of its lock (the lock is then held by the caller), or a writer in the
    middle of a write (the write is then the caller's: rewrite all the data)."""


# The library names the C flag that lifts an error ("[flag SA_FORCE]"); Python users
# pass a keyword instead.
_KEYWORDS = {
    "SA_FORCE": "force=True",
    "SA_ALLOW_OTHER_OWNER": "allow_other_owner=True",
    "SA_FOLLOW_SYMLINKS": "follow_symlinks=True",
    "SA_DELETE_IN_PROGRESS": "in_progress=True",
}


def _python_words(msg):
    return re.sub(
        r" \[flag (SA_\w+)\]$",
        lambda m: f" (pass {_KEYWORDS[m.group(1)]})" if m.group(1) in _KEYWORDS else m.group(0),
        msg,
    )


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
    SA_ERR_OWNER_DIED: (OwnerDiedError, _errno.EOWNERDEAD),
    SA_ERR_READ_ONLY: (PermissionError, _errno.EROFS),
    SA_ERR_UNSUPPORTED: (ValueError, None),
    SA_ERR_IO: (OSError, _errno.EIO),
    SA_ERR_PANIC: (RuntimeError, None),
    SA_ERR_BUSY: (BlockingIOError, _errno.EBUSY),
    SA_ERR_STALE: (StaleError, _errno.ESTALE),
    SA_ERR_TORN: (TornReadError, _errno.EAGAIN),
}


def error_for(status):
    """The exception for a failed call, carrying the library's message (and errno)."""
    msg = _python_words((lib.sa_last_error() or b"").decode("utf-8", "replace"))
    if status not in _EXCEPTIONS:  # a status newer than this mapping: name it
        msg = f"{lib.sa_status_str(status).decode()} ({status}): {msg}"
    cls, default_errno = _EXCEPTIONS.get(status, (OSError, _errno.EIO))
    if default_errno is None:
        exc = cls(msg)
    else:
        err = lib.sa_last_errno() or default_errno
        exc = cls(err, msg)
    exc.status = status
    return exc


def _load_extension() -> Optional[Any]:
    """ndshm._ext, or None (see the module's docstring). Bound by ndshm/__init__.py."""
    if os.environ.get("NDSHM_NO_EXT", "") not in ("", "0"):
        return None
    try:
        from . import _ext  # type: ignore[attr-defined]
    except ModuleNotFoundError:
        return None  # not built (a source tree without `make python-ext`)
    except Exception as exc:  # built but unusable, e.g. numpy refusing it: say so
        warnings.warn(f"ndshm: the compiled fast path does not load ({exc}); using ctypes alone",
                      RuntimeWarning, stacklevel=3)
        return None
    return _ext


ext = _load_extension()
