//! Status codes, the last-error message and the version.

use std::ffi::{CString, c_char, c_int};
use std::sync::OnceLock;

use super::{LAST_ERROR, guard_value};
use crate::error::ErrorKind;

/// Status returned by every function that can fail: 0 on success, a negative code
/// naming the error otherwise (`sa_last_error()` has the message). Functions return it
/// as `int`. The values are ABI: never renumbered or reused (retired ones stay here as
/// comments). This enum is the one list of codes: their names (`sa_status_str`) and the
/// bindings' constants are derived from it.
#[repr(i32)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::FromRepr, strum::IntoStaticStr, strum::EnumIter,
)]
pub enum sa_status {
    /// Success.
    SA_OK = 0,
    /// An argument is invalid: NULL pointer, bad name, ndim, shape, dtype or flag.
    SA_ERR_INVALID = -1,
    /// No array of that name.
    SA_ERR_NOT_FOUND = -2,
    /// An array of that name already exists.
    SA_ERR_EXISTS = -3,
    /// Not a valid array: corrupt, truncated, foreign, a newer format version, or not a
    /// regular file.
    SA_ERR_FORMAT = -4,
    /// The array's shape, dtype or order differs from what was expected.
    SA_ERR_MISMATCH = -5,
    /// Not enough space or memory (full tmpfs, RLIMIT_MEMLOCK, ...).
    SA_ERR_NO_SPACE = -6,
    /// The OS refused access, or the array belongs to another user (see
    /// `SA_ALLOW_OTHER_OWNER`) or its name is a symbolic link (see `SA_FOLLOW_SYMLINKS`).
    SA_ERR_PERMISSION = -7,
    /// The array exists but its creator, still running, has not finished it.
    SA_ERR_NOT_READY = -8,
    /// A wait timed out.
    SA_ERR_TIMEOUT = -9,
    /// The process that should have finished something died: the creator of an array
    /// still being initialised, or the holder of a lock.
    SA_ERR_OWNER_DIED = -10,
    /// A write was attempted through a read-only handle.
    SA_ERR_READ_ONLY = -11,
    /// Not supported for this format, platform or dtype.
    SA_ERR_UNSUPPORTED = -12,
    /// Another OS or I/O error; `sa_last_errno()` gives the errno.
    SA_ERR_IO = -13,
    /// A bug: ndshm panicked. The message says where.
    SA_ERR_PANIC = -14,
    /// Someone else holds it: `sa_trylock` on a lock held by a live holder, or
    /// `sa_write_begin` while another writer is in the middle of a write.
    SA_ERR_BUSY = -15,
    /// The array was replaced under its name (by ndshm before format v1.2, which grew
    /// arrays so), or it grew while its name was deleted or given to another array, so
    /// this handle cannot map its new rows: attach the name again.
    SA_ERR_STALE = -16,
    /// `sa_read_end`: a writer wrote during the in-place read, so what was read may
    /// mix two versions; read again.
    SA_ERR_TORN = -17,
}

/// The status for an error kind: the one place where kinds become codes.
pub(crate) fn status_of(kind: ErrorKind) -> sa_status {
    use sa_status::*;
    match kind {
        ErrorKind::Invalid => SA_ERR_INVALID,
        ErrorKind::NotFound => SA_ERR_NOT_FOUND,
        ErrorKind::Exists => SA_ERR_EXISTS,
        ErrorKind::Format => SA_ERR_FORMAT,
        ErrorKind::Mismatch => SA_ERR_MISMATCH,
        ErrorKind::NoSpace => SA_ERR_NO_SPACE,
        ErrorKind::Permission => SA_ERR_PERMISSION,
        ErrorKind::NotReady => SA_ERR_NOT_READY,
        ErrorKind::Timeout => SA_ERR_TIMEOUT,
        ErrorKind::OwnerDied => SA_ERR_OWNER_DIED,
        ErrorKind::ReadOnly => SA_ERR_READ_ONLY,
        ErrorKind::Unsupported => SA_ERR_UNSUPPORTED,
        ErrorKind::Io => SA_ERR_IO,
        ErrorKind::Busy => SA_ERR_BUSY,
        ErrorKind::Stale => SA_ERR_STALE,
        ErrorKind::Torn => SA_ERR_TORN,
        // ErrorKind is non_exhaustive for Rust users; this crate maps every kind.
        #[allow(unreachable_patterns)]
        _ => SA_ERR_IO,
    }
}

/// The message of the last failed ndshm call on this thread, naming the array and the
/// OS error, e.g. `shm://sim-out: no space left: 2.0 GiB requested, 1.1 GiB free in
/// /dev/shm: No space left on device (os error 28)`. When a flag would have made the
/// call succeed, the message ends with it, e.g. `[flag SA_FORCE]`.
///
/// Never NULL; an empty string when no call has failed on this thread. Successful calls
/// leave it unchanged. The pointer is valid until the next failing ndshm call on the
/// same thread; copy the text to keep it. Thread-safe (each thread has its own).
#[unsafe(no_mangle)]
pub extern "C" fn sa_last_error() -> *const c_char {
    guard_value(c"".as_ptr(), || LAST_ERROR.with(|l| l.borrow().0.as_ptr()))
}

/// The OS errno behind the last failed ndshm call on this thread, or 0 when the failure
/// did not come from the OS.
#[unsafe(no_mangle)]
pub extern "C" fn sa_last_errno() -> c_int {
    guard_value(0, || LAST_ERROR.with(|l| l.borrow().1))
}

/// The name of a status code, e.g. `"SA_ERR_NOT_FOUND"`; `"SA_ERR_UNKNOWN"` for codes
/// this library does not define. Never NULL; the string is static.
#[unsafe(no_mangle)]
pub extern "C" fn sa_status_str(status: c_int) -> *const c_char {
    guard_value(c"SA_ERR_UNKNOWN".as_ptr(), || {
        // The names come from the enum's variants, NUL-terminated once per process.
        static NAMES: OnceLock<Vec<(sa_status, CString)>> = OnceLock::new();
        let names = NAMES.get_or_init(|| {
            use strum::IntoEnumIterator;
            sa_status::iter()
                .map(|s| (s, CString::new(<&str>::from(s)).unwrap_or_default()))
                .collect()
        });
        sa_status::from_repr(status)
            .and_then(|s| names.iter().find(|(n, _)| *n == s))
            .map_or(c"SA_ERR_UNKNOWN".as_ptr(), |(_, c)| c.as_ptr())
    })
}

/// The library version, e.g. `"0.1.0"` (compare with `NDSHM_VERSION` from the header
/// you compiled against). Never NULL; static.
#[unsafe(no_mangle)]
pub extern "C" fn sa_version() -> *const c_char {
    guard_value(std::ptr::null(), || {
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
    })
}

/// The segment format version this library writes, as `major * 1000 + minor` (1000
/// for v1.0). It reads every v1 minor version and refuses newer majors.
#[unsafe(no_mangle)]
pub extern "C" fn sa_format_version() -> u32 {
    guard_value(0, || {
        crate::format::VERSION_MAJOR as u32 * 1000 + crate::format::VERSION_MINOR as u32
    })
}
