//! The C ABI: argument checks, conversions and error mapping around the safe core,
//! nothing else. Every export runs its body inside [`guard`], so no panic crosses the
//! boundary, and reports failures through a status code plus a thread-local message
//! ([`error::sa_last_error`]).
#![allow(non_camel_case_types)]

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::{Error, Opt};

pub mod array;
pub mod dataset;
pub mod dtype;
pub mod error;
pub mod grow;
pub mod list;
pub mod store;
pub mod sync;

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

/// The C flag that selects a core option, for messages C callers read.
fn flag_name(o: Opt) -> &'static str {
    match o {
        Opt::Force => "SA_FORCE",
        Opt::AllowOtherOwner => "SA_ALLOW_OTHER_OWNER",
        Opt::FollowSymlinks => "SA_FOLLOW_SYMLINKS",
        Opt::InProgress => "SA_DELETE_IN_PROGRESS",
    }
}

/// The message of an error as C callers see it: the core's message, which names the
/// option in words every binding shares, followed by the C flag that sets it.
fn message(e: &Error) -> String {
    match e.option() {
        Some(o) => format!("{} [flag {}]", e.message(), flag_name(o)),
        None => e.message().to_string(),
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
        Ok(Ok(())) => sa_status::SA_OK as c_int,
        Ok(Err(e)) => {
            set_last_error(&message(&e), e.errno());
            status_of(e.kind()) as c_int
        }
        Err(p) => {
            set_last_error(&format!("panic in ndshm: {}", panic_message(&*p)), None);
            sa_status::SA_ERR_PANIC as c_int
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

/// Binds an opaque C handle type to the Rust value it points to, so every cast between
/// the two goes through the typed helpers below (as rustls-ffi's `Castable`).
pub(crate) trait Castable {
    /// The Rust value behind the handle, boxed.
    type Rust;
}

/// Moves `v` to the heap and returns it as the C handle type. Free with [`free_box`].
pub(crate) fn to_box<C: Castable>(v: C::Rust) -> *mut C {
    Box::into_raw(Box::new(v)).cast()
}

/// The value behind a handle, or an error naming the NULL argument.
///
/// # Safety
/// `p` is NULL or a live handle made by [`to_box`] for the same `C`, not used mutably
/// elsewhere during `'a`.
pub(crate) unsafe fn try_ref<'a, C: Castable>(
    p: *const C,
    what: &str,
) -> Result<&'a C::Rust, Error> {
    // SAFETY: per the contract, a live, properly aligned box of C::Rust or NULL.
    unsafe { p.cast::<C::Rust>().as_ref() }.ok_or_else(|| null_arg(what))
}

/// The value behind a handle, mutably, or an error naming the NULL argument.
///
/// # Safety
/// `p` is NULL or a live handle made by [`to_box`] for the same `C`, not used elsewhere
/// during `'a`.
pub(crate) unsafe fn try_mut<'a, C: Castable>(
    p: *mut C,
    what: &str,
) -> Result<&'a mut C::Rust, Error> {
    // SAFETY: per the contract, a live, properly aligned, unaliased box or NULL.
    unsafe { p.cast::<C::Rust>().as_mut() }.ok_or_else(|| null_arg(what))
}

/// Frees a handle made by [`to_box`]; NULL is a no-op.
///
/// # Safety
/// `p` is NULL or a live handle made by [`to_box`] for the same `C`, freed once.
pub(crate) unsafe fn free_box<C: Castable>(p: *mut C) {
    if !p.is_null() {
        // SAFETY: per the contract, made by Box::into_raw and freed exactly once.
        drop(unsafe { Box::from_raw(p.cast::<C::Rust>()) });
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

/// Checks an out-pointer argument before any work is done.
pub(crate) fn out_arg<T>(out: *mut T, what: &str) -> Result<(), Error> {
    if out.is_null() {
        return Err(null_arg(what));
    }
    Ok(())
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
        assert_eq!(code, sa_status::SA_ERR_PANIC as c_int);
        // SAFETY: sa_last_error returns a valid NUL-terminated string.
        let msg = unsafe { CStr::from_ptr(sa_last_error()) }.to_str().unwrap();
        assert!(msg.contains("boom 42"), "{msg}");
        assert_eq!(guard_value(7, || panic!("x")), 7);
    }

    #[test]
    fn every_kind_has_a_distinct_code() {
        use strum::IntoEnumIterator;
        let mut codes: Vec<c_int> = crate::ErrorKind::iter()
            .map(|k| status_of(k) as c_int)
            .collect();
        codes.push(sa_status::SA_ERR_PANIC as c_int);
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
        // SAFETY: as above.
        let ok = unsafe { CStr::from_ptr(sa_status_str(0)) };
        assert_eq!(ok.to_str().unwrap(), "SA_OK");
        // SAFETY: as above.
        let unknown = unsafe { CStr::from_ptr(sa_status_str(-1000)) };
        assert_eq!(unknown.to_str().unwrap(), "SA_ERR_UNKNOWN");
    }

    #[test]
    fn options_are_named_as_flags() {
        let e = Error::invalid("x").with_option(Opt::Force);
        assert_eq!(message(&e), "x [flag SA_FORCE]");
    }
}
