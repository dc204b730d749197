//! Growth along axis 0 through the C ABI: appending rows, setting the length, and
//! refreshing a handle after another process changed them. Argument checks and
//! conversions only; the protocol is src/grow.rs.

use std::ffi::{c_int, c_void};

use super::array::{input_bytes, sa_array};
use super::{guard, try_mut, write_out};

/// Appends `nrows` rows along axis 0 from `rows` (`nrows` times the row size: the
/// bytes of one index of axis 0, `sa_nbytes / shape[0]` of a nonempty array) and
/// stores the new length in `*new_len` (may be NULL). Appenders in any process are
/// serialised by the array's lock (taken for the call unless this thread holds it).
/// The capacity grows in place, at least doubling, and is reserved on the filesystem:
/// a full filesystem is `SA_ERR_NO_SPACE` now, never a SIGBUS later, and leaves the
/// array as it was. A process killed in the middle of an append leaves the array with
/// or without the rows, never with a length that covers unwritten rows. Afterwards
/// `sa_shape`, `sa_nbytes`, `sa_capacity` and `sa_data` describe the grown array
/// (`sa_data` may change; pointers from before stay valid until `sa_release`). Other
/// handles see the new length after `sa_refresh` or their next snapshot.
///
/// Returns `SA_OK`; `SA_ERR_INVALID` (NULL handle, NULL `rows` with `nrows` > 0, a
/// 0-d array, a length that overflows); `SA_ERR_UNSUPPORTED` (Fortran order with more
/// than one dimension, SharedArray or `.npy` layout); `SA_ERR_READ_ONLY`;
/// `SA_ERR_NO_SPACE`; `SA_ERR_STALE` (the file must grow but the name was deleted or
/// now holds another array).
///
/// # Safety
/// `arr` is NULL or a live handle not used by another thread during the call; `rows`
/// is NULL or points to `nrows` rows of readable memory (they may be the array's own
/// rows: then they are copied first);
/// `new_len` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_append(
    arr: *mut sa_array,
    rows: *const c_void,
    nrows: u64,
    new_len: *mut i64,
) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract.
        let h = unsafe { try_mut::<sa_array>(arr, "arr") }?;
        let row = h.inner.row_size()?;
        let n = nrows
            .checked_mul(row)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| {
                crate::error::Error::invalid(format!(
                    "{}: {nrows} rows of {row} bytes are too many",
                    h.inner.name()
                ))
            })?;
        let mut copy = Vec::new();
        // SAFETY: `rows` is NULL or has `nrows` rows = n readable bytes (contract).
        let src = unsafe { input_bytes(&h.inner, rows, n, "rows", &mut copy) }?;
        let r = h.inner.append_bytes(nrows, src);
        h.refresh();
        let len = r?;
        if !new_len.is_null() {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { write_out(new_len, len) };
        }
        Ok(())
    })
}

/// Sets the length along axis 0 to `len`: shorter drops the last rows (the capacity
/// stays), longer adds rows of zeros, growing the capacity as `sa_append` does. Same
/// locking, errors and guarantees as `sa_append`; `SA_ERR_INVALID` for a negative
/// length.
///
/// # Safety
/// `arr` is NULL or a live handle not used by another thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_resize(arr: *mut sa_array, len: i64) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract.
        let h = unsafe { try_mut::<sa_array>(arr, "arr") }?;
        let r = h.inner.set_len(len);
        h.refresh();
        r
    })
}

/// Makes the handle describe the array as it is now, after another process appended,
/// resized or published a new shape: `*changed` (may be NULL) is 1 when the shape or
/// dtype changed, else 0. Cheap when nothing changed (one atomic load); never waits.
/// `sa_data` may change; pointers from before stay valid until `sa_release` (they
/// show the same file: the rows they showed, unless the array was shrunk and grown
/// again). Rows up to the new length are complete (data that a
/// publishing writer is rewriting are not: read those with a snapshot). Arrays in the
/// SharedArray or `.npy` layout never change: `*changed` is 0.
///
/// Returns `SA_OK`, `SA_ERR_INVALID` (NULL handle), `SA_ERR_FORMAT` (the header is
/// damaged), `SA_ERR_STALE` (the array grew but its name was deleted or now holds
/// another array, so the new rows cannot be mapped).
///
/// # Safety
/// `arr` is NULL or a live handle not used by another thread during the call;
/// `changed` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_refresh(arr: *mut sa_array, changed: *mut c_int) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract.
        let h = unsafe { try_mut::<sa_array>(arr, "arr") }?;
        let r = h.inner.refresh();
        h.refresh();
        let c = r?;
        if !changed.is_null() {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { write_out(changed, c_int::from(c)) };
        }
        Ok(())
    })
}
