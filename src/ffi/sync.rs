//! Live data through the C ABI: publishing (write-begin/end, shape changes), consistent
//! snapshots, waiting for a newer version, and the process-shared lock. Argument checks
//! and conversions only; the protocol is src/sync.rs.

use std::ffi::{c_char, c_int, c_void};
use std::time::Duration;

use super::array::{Handle, create_options, input_bytes, into_handle, sa_array, shape_arg};
use super::dtype::{dtype_arg, sa_dtype};
use super::{guard, null_arg, out_arg, str_arg, try_mut, try_ref, write_out};
use crate::array::Array;
use crate::error::{Error, ErrorKind};
use crate::sync::{LockStart, WriteStart};

/// `sa_write_shape`, `sa_publish_shape`: when the new shape does not fit the capacity,
/// grow the capacity in place (at least doubling it, reserved on the filesystem)
/// instead of failing with `SA_ERR_NO_SPACE`. `sa_data` may change; pointers from
/// before stay valid until `sa_release`. Readers follow with their next snapshot or
/// `sa_refresh`.
pub const SA_GROW: u32 = 1 << 12;

/// The C timeout convention: negative waits without limit, 0 tries once, else
/// milliseconds.
pub(crate) fn timeout_arg(ms: i64) -> Option<Duration> {
    (ms >= 0).then(|| Duration::from_millis(ms as u64))
}

fn grow_arg(flags: u32) -> Result<bool, Error> {
    if flags & !SA_GROW != 0 {
        return Err(Error::invalid(format!(
            "unknown shape-change flag bits {:#x}",
            flags & !SA_GROW
        )));
    }
    Ok(flags & SA_GROW != 0)
}

/// Keeps what the C accessors hand out (shape, strides) in step with the handle's
/// geometry, in place: pointers from sa_shape/sa_strides stay valid.
fn resync(h: &mut Handle) {
    h.refresh();
}

/// Writes an optional out-pointer.
///
/// # Safety
/// `out` is NULL or writable.
unsafe fn maybe_out<T>(out: *mut T, v: T) {
    if !out.is_null() {
        // SAFETY: non-NULL and writable per the contract.
        unsafe { write_out(out, v) };
    }
}

/// `sa_create` with room for shape changes: `capacity` bytes are reserved for data (0,
/// or anything less than the shape needs: exactly the shape's bytes), so later
/// `sa_write_shape`/`sa_publish_shape` calls up to that size happen in place. Same
/// flags, errors and guarantees as `sa_create`; `SA_ERR_UNSUPPORTED` for a larger
/// capacity with `SA_FORMAT_SHAREDARRAY`.
///
/// # Safety
/// As `sa_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_create_ex(
    name: *const c_char,
    ndim: i32,
    shape: *const i64,
    dtype: sa_dtype,
    flags: u32,
    capacity: u64,
    out: *mut *mut sa_array,
) -> c_int {
    guard(|| {
        out_arg(out, "out")?;
        // SAFETY: per this function's contract.
        let name = unsafe { str_arg(name, "name") }?;
        // SAFETY: per this function's contract.
        let shape = unsafe { shape_arg(ndim, shape) }?;
        let dtype = dtype_arg(dtype)?;
        let mut opts = create_options(flags)?;
        opts.capacity = (capacity > 0).then_some(capacity);
        let a = Array::create(name, shape, dtype, &opts)?;
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { write_out(out, into_handle(a)) };
        Ok(())
    })
}

/// The latest published version of the array into `*version`: the number of
/// completed writes (0 before the first). Any thread, any handle.
///
/// Returns `SA_OK`, `SA_ERR_INVALID` (NULL), `SA_ERR_UNSUPPORTED` (SharedArray layout).
///
/// # Safety
/// `arr` is NULL or a live handle; `version` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_get_version(arr: *const sa_array, version: *mut u64) -> c_int {
    guard(|| {
        out_arg(version, "version")?;
        // SAFETY: per this function's contract.
        let h = unsafe { try_ref::<sa_array>(arr, "arr") }?;
        let v = h.inner.version()?;
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { write_out(version, v) };
        Ok(())
    })
}

/// When the array was last written through the API (a publish, `sa_fill`, a copy),
/// in nanoseconds since the Unix epoch (wall clock), into `*ns`.
///
/// Returns `SA_OK`, `SA_ERR_INVALID` (NULL), `SA_ERR_UNSUPPORTED` (SharedArray layout).
///
/// # Safety
/// `arr` is NULL or a live handle; `ns` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_get_write_time(arr: *const sa_array, ns: *mut i64) -> c_int {
    guard(|| {
        out_arg(ns, "ns")?;
        // SAFETY: per this function's contract.
        let h = unsafe { try_ref::<sa_array>(arr, "arr") }?;
        let t = h.inner.write_time_ns()?;
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { write_out(ns, t) };
        Ok(())
    })
}

/// Blocks until a version newer than `newer_than` is published, at most `timeout_ms`
/// milliseconds (negative: no limit; 0: do not wait), and stores it in `*version`
/// (may be NULL). Sleeps in the kernel (a futex on the shared version word): a
/// waiting process uses no CPU and wakes as soon as the writer publishes. Any thread;
/// several threads may wait on one handle.
///
/// Returns `SA_OK`, `SA_ERR_TIMEOUT` (the message has the latest version),
/// `SA_ERR_STALE` (the array was replaced under its name: attach it again),
/// `SA_ERR_INVALID`, `SA_ERR_UNSUPPORTED`.
///
/// # Safety
/// `arr` is NULL or a live handle; `version` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_wait_version(
    arr: *const sa_array,
    newer_than: u64,
    timeout_ms: i64,
    version: *mut u64,
) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract.
        let h = unsafe { try_ref::<sa_array>(arr, "arr") }?;
        let v = h.inner.wait_newer(newer_than, timeout_arg(timeout_ms))?;
        // SAFETY: NULL or writable per the contract.
        unsafe { maybe_out(version, v) };
        Ok(())
    })
}

/// Begins a write: from now until `sa_write_end`, readers' snapshots wait and retry and
/// in-place reads report `SA_ERR_TORN`. Write the data through `sa_data` in between.
/// One writer at a time: several writers hold the lock (`sa_lock`) around their writes.
///
/// Returns `SA_OK`; `SA_ERR_OWNER_DIED` when the write has begun but the previous one
/// was never finished (its writer died mid-write; only a lock holder takes such a write
/// over): rewrite all the data, then `sa_write_end`; `SA_ERR_BUSY` (another writer is
/// writing and this thread does not hold the lock), `SA_ERR_READ_ONLY`,
/// `SA_ERR_UNSUPPORTED` (SharedArray layout), `SA_ERR_INVALID` (NULL, or a write
/// already begun on this handle).
///
/// # Safety
/// `arr` is NULL or a live handle not used by another thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_write_begin(arr: *mut sa_array) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract.
        let h = unsafe { try_mut::<sa_array>(arr, "arr") }?;
        let start = h.inner.write_begin()?;
        resync(h);
        match start {
            WriteStart::Clean => Ok(()),
            WriteStart::Repair => Err(Error::new(
                ErrorKind::OwnerDied,
                format!(
                    "{}: the write has begun, but the previous write was never finished \
                     (its writer died in the middle of it): the data may be torn; \
                     rewrite all of it",
                    h.inner.name()
                ),
            )),
        }
    })
}

/// Changes the shape and dtype inside a write (after `sa_write_begin`): readers see
/// the old shape with the old data or the new shape with the new data, never a mix.
/// The order stays. The new shape must fit the capacity reserved at create
/// (`sa_create_ex`): otherwise `SA_ERR_NO_SPACE` saying how much is reserved and what
/// was asked, unless `flags` has `SA_GROW`. `sa_ndim`, `sa_shape`, `sa_nbytes`,
/// `sa_get_dtype` (and, with `SA_GROW`, `sa_data`) describe the new shape afterwards.
///
/// Returns `SA_OK`, `SA_ERR_NO_SPACE`, `SA_ERR_INVALID` (NULL, bad shape, dtype or
/// flag, no write begun), and with `SA_GROW` those of `sa_append`.
///
/// # Safety
/// `arr` is NULL or a live handle not used by another thread during the call; `shape`
/// is NULL or points to `ndim` `int64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_write_shape(
    arr: *mut sa_array,
    ndim: i32,
    shape: *const i64,
    dtype: sa_dtype,
    flags: u32,
) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract.
        let h = unsafe { try_mut::<sa_array>(arr, "arr") }?;
        // SAFETY: per this function's contract.
        let shape = unsafe { shape_arg(ndim, shape) }?;
        let dtype = dtype_arg(dtype)?;
        let grow = grow_arg(flags)?;
        let r = h.inner.write_shape(shape, dtype, grow);
        resync(h);
        r
    })
}

/// Ends the write begun by `sa_write_begin`: publishes it as the next version (into
/// `*version`, which may be NULL) and wakes every waiting reader.
///
/// Returns `SA_OK` or `SA_ERR_INVALID` (NULL, or no write begun on this handle).
///
/// # Safety
/// `arr` is NULL or a live handle not used by another thread during the call;
/// `version` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_write_end(arr: *mut sa_array, version: *mut u64) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract.
        let h = unsafe { try_mut::<sa_array>(arr, "arr") }?;
        let v = h.inner.write_end()?;
        // SAFETY: NULL or writable per the contract.
        unsafe { maybe_out(version, v) };
        Ok(())
    })
}

/// Publishes `nbytes` bytes from `src` (exactly `sa_nbytes(arr)`) as the next version,
/// in one call: write-begin, one copy, write-end. The version goes to `*version`
/// (may be NULL).
///
/// Returns `SA_OK`, `SA_ERR_INVALID` (NULL, wrong size), and the errors of
/// `sa_write_begin` except `SA_ERR_OWNER_DIED` (a full rewrite repairs a dead
/// writer's unfinished write).
///
/// # Safety
/// `arr` is NULL or a live handle not used by another thread during the call; `src` is
/// NULL or points to `nbytes` readable bytes; `version` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_publish(
    arr: *mut sa_array,
    src: *const c_void,
    nbytes: usize,
    version: *mut u64,
) -> c_int {
    // SAFETY: same contract; no shape change.
    unsafe { publish(arr, None, src, nbytes, 0, version) }
}

/// Publishes `src` (`nbytes` bytes) with a new shape and dtype as the next version, in
/// one call (see `sa_write_shape` for what readers see, the capacity and `SA_GROW`).
/// `nbytes` must be exactly the new shape's size. On failure the published data and
/// shape are as they were.
///
/// # Safety
/// As `sa_publish`; `shape` is NULL or points to `ndim` `int64_t`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn sa_publish_shape(
    arr: *mut sa_array,
    ndim: i32,
    shape: *const i64,
    dtype: sa_dtype,
    src: *const c_void,
    nbytes: usize,
    flags: u32,
    version: *mut u64,
) -> c_int {
    // SAFETY: same contract.
    unsafe { publish(arr, Some((ndim, shape, dtype)), src, nbytes, flags, version) }
}

/// The body of `sa_publish` and `sa_publish_shape`.
///
/// # Safety
/// As `sa_publish`.
unsafe fn publish(
    arr: *mut sa_array,
    shape: Option<(i32, *const i64, sa_dtype)>,
    src: *const c_void,
    nbytes: usize,
    flags: u32,
    version: *mut u64,
) -> c_int {
    guard(|| {
        // SAFETY: per the caller's contract.
        let h = unsafe { try_mut::<sa_array>(arr, "arr") }?;
        let grow = grow_arg(flags)?;
        let shape = match shape {
            // SAFETY: `s` is NULL or points to `n` int64_t per the caller's contract.
            Some((n, s, d)) => Some((unsafe { shape_arg(n, s) }?, dtype_arg(d)?)),
            None => None,
        };
        let mut copy = Vec::new();
        // SAFETY: `src` is NULL or has `nbytes` readable bytes per the contract.
        let src = unsafe { input_bytes(&h.inner, src, nbytes, "src", &mut copy) }?;
        let r = h.inner.publish_bytes(shape, src, grow);
        resync(h);
        let v = r?;
        // SAFETY: NULL or writable per the contract.
        unsafe { maybe_out(version, v) };
        Ok(())
    })
}

/// Copies a consistent snapshot of the data into `dst` (`dst_bytes` bytes available):
/// retries while writers write, at most `timeout_ms` milliseconds (negative: no limit;
/// 0: one attempt), sleeping on the futex while a long write is in progress. Its
/// version goes to `*version` and whether its shape or dtype differs from the
/// handle's before the call to `*reshaped` (1 or 0); both may be NULL. Afterwards the
/// handle describes the snapshot: `sa_ndim`, `sa_shape`, `sa_get_dtype`, `sa_nbytes`.
///
/// Returns `SA_OK`; `SA_ERR_TIMEOUT` when every attempt overlapped a write;
/// `SA_ERR_MISMATCH` when `dst_bytes` is less than the snapshot's size (nothing useful
/// copied; `sa_nbytes(arr)` is the size needed: retry with a larger buffer);
/// `SA_ERR_STALE` (replaced under its name: attach again); `SA_ERR_INVALID`;
/// `SA_ERR_UNSUPPORTED`.
///
/// # Safety
/// `arr` is NULL or a live handle not used by another thread during the call; `dst` is
/// NULL (only with `dst_bytes` 0) or points to `dst_bytes` writable bytes that do not
/// overlap the array; `version` and `reshaped` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_read_copy(
    arr: *mut sa_array,
    dst: *mut c_void,
    dst_bytes: usize,
    timeout_ms: i64,
    version: *mut u64,
    reshaped: *mut i32,
) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract.
        let h = unsafe { try_mut::<sa_array>(arr, "arr") }?;
        let dst: &mut [u8] = if dst_bytes == 0 {
            &mut []
        } else if dst.is_null() {
            return Err(null_arg("dst"));
        } else if h.inner.overlaps(dst.cast::<u8>(), dst_bytes) {
            return Err(Error::invalid(format!(
                "{}: the snapshot's destination lies in the array's own memory; copy into \
                 a private buffer",
                h.inner.name()
            )));
        } else {
            // SAFETY: non-NULL with `dst_bytes` writable bytes, private to the caller.
            unsafe { std::slice::from_raw_parts_mut(dst.cast::<u8>(), dst_bytes) }
        };
        let r = h.inner.read_snapshot(dst, timeout_arg(timeout_ms));
        let changed = match &r {
            Ok(s) => s.reshaped,
            Err(e) => e.kind() == ErrorKind::Mismatch,
        };
        if changed {
            resync(h);
        }
        let s = r?;
        // SAFETY: NULL or writable per the contract.
        unsafe {
            maybe_out(version, s.version);
            maybe_out(reshaped, s.reshaped as i32);
        }
        Ok(())
    })
}

/// Begins an in-place read: waits (at most `timeout_ms`; negative: no limit) until no
/// write is in progress, makes the handle describe the current shape (`sa_shape`
/// etc.), and stores a token in `*token`. Read through `sa_data`, then call
/// `sa_read_end` to learn whether what was read may be torn.
///
/// Returns `SA_OK`, `SA_ERR_TIMEOUT`, `SA_ERR_INVALID`, `SA_ERR_UNSUPPORTED`.
///
/// # Safety
/// `arr` is NULL or a live handle not used by another thread during the call; `token`
/// is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_read_begin(
    arr: *mut sa_array,
    timeout_ms: i64,
    token: *mut u64,
) -> c_int {
    guard(|| {
        out_arg(token, "token")?;
        // SAFETY: per this function's contract.
        let h = unsafe { try_mut::<sa_array>(arr, "arr") }?;
        let before = h.inner.geometry().clone();
        let t = h.inner.read_begin(timeout_arg(timeout_ms));
        if *h.inner.geometry() != before {
            resync(h);
        }
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { write_out(token, t?) };
        Ok(())
    })
}

/// Ends an in-place read begun by `sa_read_begin` with its `token`: `SA_OK` when no
/// write happened in between (what was read is one consistent version, stored in
/// `*version`, which may be NULL), `SA_ERR_TORN` when a writer wrote meanwhile (what
/// was read may mix two versions: read again).
///
/// # Safety
/// `arr` is NULL or a live handle; `version` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_read_end(arr: *const sa_array, token: u64, version: *mut u64) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract.
        let h = unsafe { try_ref::<sa_array>(arr, "arr") }?;
        let v = h.inner.read_end(token)?;
        // SAFETY: NULL or writable per the contract.
        unsafe { maybe_out(version, v) };
        Ok(())
    })
}

/// Takes the array's process-shared lock (in its header), waiting at most
/// `timeout_ms` milliseconds (negative: no limit; 0: try once, as `sa_trylock`). The
/// lock belongs to the calling thread and is not recursive; any thread may use the
/// same handle. Not a `pthread_mutex_t`: a futex word with the holder's thread id, so
/// processes built against any C library share it.
///
/// Returns `SA_OK`; `SA_ERR_OWNER_DIED` with the lock **held**: the previous holder died
/// holding it (noticed within about 10 ms, even after SIGKILL), so what it protects may
/// be half updated: repair it, then `sa_unlock`; `SA_ERR_TIMEOUT` (naming the holder);
/// `SA_ERR_BUSY` (timeout 0 and a live holder); `SA_ERR_READ_ONLY`;
/// `SA_ERR_UNSUPPORTED` (SharedArray layout); `SA_ERR_INVALID` (NULL, or this thread
/// holds it already).
///
/// A holder in another PID namespace (a container with its own PID namespace sharing
/// the array) cannot be checked: it is presumed alive, so only lockers in its own
/// namespace notice its death; others time out.
///
/// # Safety
/// `arr` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_lock(arr: *const sa_array, timeout_ms: i64) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract.
        let h = unsafe { try_ref::<sa_array>(arr, "arr") }?;
        match h.inner.lock(timeout_arg(timeout_ms))? {
            LockStart::Clean => Ok(()),
            LockStart::OwnerDied(tid) => Err(Error::new(
                ErrorKind::OwnerDied,
                format!(
                    "{}: the lock is held now, but its previous holder (thread {tid}) died \
                     holding it: what the lock protects may be half updated",
                    h.inner.name()
                ),
            )),
        }
    })
}

/// `sa_lock(arr, 0)`: takes the lock if it is free (or its holder is dead:
/// `SA_ERR_OWNER_DIED`, held), else `SA_ERR_BUSY` at once.
///
/// # Safety
/// `arr` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_trylock(arr: *const sa_array) -> c_int {
    // SAFETY: same contract.
    unsafe { sa_lock(arr, 0) }
}

/// Releases the lock held by the calling thread and wakes one waiter.
///
/// Returns `SA_OK`, `SA_ERR_INVALID` (NULL, or this thread does not hold it),
/// `SA_ERR_READ_ONLY`, `SA_ERR_UNSUPPORTED`.
///
/// # Safety
/// `arr` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_unlock(arr: *const sa_array) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract.
        let h = unsafe { try_ref::<sa_array>(arr, "arr") }?;
        h.inner.unlock()
    })
}
