//! Status codes, the last-error message and the version.

use std::ffi::{c_char, c_int};

use super::LAST_ERROR;

// Status codes are ABI: never renumber or reuse one. Retired codes stay as comments.

/// Success.
pub const SA_OK: c_int = 0;
/// An argument is invalid: NULL pointer, bad name, ndim, shape, dtype or flag.
pub const SA_ERR_INVALID: c_int = -1;
/// No array of that name.
pub const SA_ERR_NOT_FOUND: c_int = -2;
/// An array of that name already exists.
pub const SA_ERR_EXISTS: c_int = -3;
/// Not a valid array segment: corrupt, truncated, foreign, or a newer format version.
pub const SA_ERR_FORMAT: c_int = -4;
/// The array's shape, dtype or order differs from what was expected.
pub const SA_ERR_MISMATCH: c_int = -5;
/// Not enough space or memory (full tmpfs, RLIMIT_MEMLOCK, ...).
pub const SA_ERR_NO_SPACE: c_int = -6;
/// The OS refused access.
pub const SA_ERR_PERMISSION: c_int = -7;
/// The array exists but its creator has not finished initialising it.
pub const SA_ERR_NOT_READY: c_int = -8;
/// A wait timed out.
pub const SA_ERR_TIMEOUT: c_int = -9;
/// The holder of a lock died; the lock is now held by the caller.
pub const SA_ERR_OWNER_DIED: c_int = -10;
/// A write was attempted through a read-only handle.
pub const SA_ERR_READ_ONLY: c_int = -11;
/// Not supported for this format, platform or dtype.
pub const SA_ERR_UNSUPPORTED: c_int = -12;
/// Another OS or I/O error; `sa_last_errno()` gives the errno.
pub const SA_ERR_IO: c_int = -13;
/// A bug: ndshm panicked. The message says where.
pub const SA_ERR_PANIC: c_int = -14;

/// The message of the last failed ndshm call on this thread, naming the array and the
/// OS error, e.g. `shm://sim-out: no space left: 2.0 GiB requested, 1.1 GiB free in
/// /dev/shm: No space left on device (os error 28)`.
///
/// Never NULL; an empty string when no call has failed on this thread. Successful calls
/// leave it unchanged. The pointer is valid until the next failing ndshm call on the
/// same thread; copy the text to keep it. Thread-safe (each thread has its own).
#[unsafe(no_mangle)]
pub extern "C" fn sa_last_error() -> *const c_char {
    LAST_ERROR.with(|l| l.borrow().0.as_ptr())
}

/// The OS errno behind the last failed ndshm call on this thread, or 0 when the failure
/// did not come from the OS.
#[unsafe(no_mangle)]
pub extern "C" fn sa_last_errno() -> c_int {
    LAST_ERROR.with(|l| l.borrow().1)
}

/// The name of a status code, e.g. `"SA_ERR_NOT_FOUND"`; `"SA_ERR_UNKNOWN"` for codes
/// this library does not define. Never NULL; the string is static.
#[unsafe(no_mangle)]
pub extern "C" fn sa_status_str(status: c_int) -> *const c_char {
    let s: &'static [u8] = match status {
        SA_OK => b"SA_OK\0",
        SA_ERR_INVALID => b"SA_ERR_INVALID\0",
        SA_ERR_NOT_FOUND => b"SA_ERR_NOT_FOUND\0",
        SA_ERR_EXISTS => b"SA_ERR_EXISTS\0",
        SA_ERR_FORMAT => b"SA_ERR_FORMAT\0",
        SA_ERR_MISMATCH => b"SA_ERR_MISMATCH\0",
        SA_ERR_NO_SPACE => b"SA_ERR_NO_SPACE\0",
        SA_ERR_PERMISSION => b"SA_ERR_PERMISSION\0",
        SA_ERR_NOT_READY => b"SA_ERR_NOT_READY\0",
        SA_ERR_TIMEOUT => b"SA_ERR_TIMEOUT\0",
        SA_ERR_OWNER_DIED => b"SA_ERR_OWNER_DIED\0",
        SA_ERR_READ_ONLY => b"SA_ERR_READ_ONLY\0",
        SA_ERR_UNSUPPORTED => b"SA_ERR_UNSUPPORTED\0",
        SA_ERR_IO => b"SA_ERR_IO\0",
        SA_ERR_PANIC => b"SA_ERR_PANIC\0",
        _ => b"SA_ERR_UNKNOWN\0",
    };
    s.as_ptr().cast()
}

/// The library version, e.g. `"0.1.0"` (compare with `NDSHM_VERSION` from the header
/// you compiled against). Never NULL; static.
#[unsafe(no_mangle)]
pub extern "C" fn sa_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The segment format version this library writes, as `major * 1000 + minor` (1000
/// for v1.0). It reads every v1 minor version and refuses newer majors.
#[unsafe(no_mangle)]
pub extern "C" fn sa_format_version() -> u32 {
    crate::format::VERSION_MAJOR as u32 * 1000 + crate::format::VERSION_MINOR as u32
}
