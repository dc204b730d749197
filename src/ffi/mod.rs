//! The C ABI: argument checks, conversions and error mapping around the safe core,
//! nothing else. Every export runs its body inside [`guard`], so no panic crosses the
//! boundary, and reports failures through a status code plus a thread-local message
//! ([`error::sa_last_error`]).
#![allow(non_camel_case_types)]

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::{Error, ErrorKind};

pub mod array;
pub mod dtype;
pub mod error;
pub mod list;

pub use error::*;

thread_local! {
    static LAST_ERROR: RefCell<(CString, c_int)> = RefCell::new((CString::default(), 0));
}

/// Stores `msg` as this thread's last error message.
fn set_last_error(msg: &str, errno: Option<i32>) {
    // Interior NULs cannot appear in a C string; show them visibly instead.
    let c = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|l| *l.borrow_mut() = (c, errno.unwrap_or(0)));
}

/// The status code for an error kind: the one place where kinds become codes.
pub(crate) fn status_of(kind: ErrorKind) -> c_int {
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
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// Runs an export's body: errors become status codes with the message stored, panics
/// become `SA_ERR_PANIC`.
pub(crate) fn guard(f: impl FnOnce() -> Result<(), Error>) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => SA_OK,
        Ok(Err(e)) => {
            set_last_error(e.message(), e.errno());
            status_of(e.kind())
        }
        Err(p) => {
            set_last_error(&format!("panic in ndshm: {}", panic_message(&*p)), None);
            SA_ERR_PANIC
        }
    }
}

/// Like [`guard`] for exports that return a value rather than a status: a panic
/// returns `default`.
pub(crate) fn guard_value<T>(default: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(p) => {
            set_last_error(&format!("panic in ndshm: {}", panic_message(&*p)), None);
            default
        }
    }
}

/// An `Error` for a NULL pointer argument.
pub(crate) fn null_arg(what: &str) -> Error {
    Error::invalid(format!("argument `{what}` is NULL"))
}

/// Reads a C string argument as UTF-8.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for the call.
pub(crate) unsafe fn str_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str, Error> {
    if p.is_null() {
        return Err(null_arg(what));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str()
        .map_err(|_| Error::invalid(format!("argument `{what}` is not valid UTF-8")))
}

/// Writes `v` to an out-pointer that was checked non-NULL.
///
/// # Safety
/// `out` is non-NULL, aligned and writable.
pub(crate) unsafe fn write_out<T>(out: *mut T, v: T) {
    // SAFETY: per the caller's contract.
    unsafe { out.write(v) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_becomes_status_with_message() {
        let code = guard(|| panic!("boom {}", 42));
        assert_eq!(code, SA_ERR_PANIC);
        // SAFETY: sa_last_error returns a valid NUL-terminated string.
        let msg = unsafe { CStr::from_ptr(sa_last_error()) }.to_str().unwrap();
        assert!(msg.contains("boom 42"), "{msg}");
        assert_eq!(guard_value(7, || panic!("x")), 7);
    }

    #[test]
    fn every_kind_has_a_distinct_code() {
        use ErrorKind::*;
        let kinds = [
            Invalid,
            NotFound,
            Exists,
            Format,
            Mismatch,
            NoSpace,
            Permission,
            NotReady,
            Timeout,
            OwnerDied,
            ReadOnly,
            Unsupported,
            Io,
        ];
        let mut codes: Vec<c_int> = kinds.iter().map(|&k| status_of(k)).collect();
        codes.push(SA_ERR_PANIC);
        let n = codes.len();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), n);
        for c in codes {
            assert!(c < 0);
            // SAFETY: sa_status_str returns a static NUL-terminated string.
            let s = unsafe { CStr::from_ptr(sa_status_str(c)) }
                .to_str()
                .unwrap();
            assert!(s.starts_with("SA_ERR_"), "{s}");
        }
    }
}
