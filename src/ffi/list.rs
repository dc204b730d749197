//! Listing arrays and describing one array.

use std::ffi::{CString, c_char, c_int};
use std::path::Path;

use super::array::{SA_MAX_NDIM, format_code};
use super::dtype::sa_dtype;
use super::{guard, guard_value, out_arg, str_arg, write_out};
use crate::format::{MAX_HOSTNAME, State};
use crate::list::Info;
use crate::name::Backend;

/// List entry backend: POSIX shared memory.
pub const SA_BACKEND_SHM: i32 = 0;
/// List entry backend: a file (`file://`, or `shm://` redirected by `NDSHM_DIR`).
pub const SA_BACKEND_FILE: i32 = 1;
/// List entry state: the creator is still initialising it (or died doing so).
pub const SA_STATE_INITIALISING: i32 = 0;
/// List entry state: ready.
pub const SA_STATE_READY: i32 = 1;

/// One array found by `sa_list` or described by `sa_info`.
#[repr(C)]
pub struct sa_list_entry {
    /// Name with scheme, as `sa_attach` accepts it. Owned by the entry.
    pub name: *mut c_char,
    /// `SA_BACKEND_SHM` or `SA_BACKEND_FILE`.
    pub backend: i32,
    /// `SA_FORMAT_V1`, `SA_FORMAT_SHAREDARRAY_NPY1` or `SA_FORMAT_SHAREDARRAY_NPY2`.
    pub format: i32,
    /// `SA_STATE_READY` or `SA_STATE_INITIALISING`.
    pub state: i32,
    /// Element type.
    pub dtype: sa_dtype,
    /// `SA_ORDER_C` or `SA_ORDER_F`.
    pub order: i32,
    /// Number of dimensions; `shape[ndim..]` are 0.
    pub ndim: i32,
    /// Shape.
    pub shape: [i64; SA_MAX_NDIM],
    /// Bytes of data in use.
    pub nbytes: u64,
    /// Bytes reserved for data.
    pub capacity: u64,
    /// Size of the whole segment (header, data, trailer).
    pub file_size: u64,
    /// Creation time, nanoseconds since the Unix epoch (0 if not recorded).
    pub created_ns: i64,
    /// Creator's pid (0 if not recorded, as in SharedArray segments).
    pub creator_pid: i32,
    /// 1 if the creator process still runs, 0 if it is gone, -1 if unknown (another
    /// host, or not recorded).
    pub creator_alive: i32,
    /// Permission bits.
    pub mode: u32,
    /// Owner's user id.
    pub uid: u32,
    /// Creator's host name, NUL-terminated (empty if not recorded).
    pub host: [c_char; 64],
}

const _: () = assert!(MAX_HOSTNAME + 1 == 64);

fn entry(i: &Info) -> sa_list_entry {
    let g = &i.geometry;
    let mut shape = [0i64; SA_MAX_NDIM];
    shape[..g.shape.len()].copy_from_slice(&g.shape);
    let mut host = [0 as c_char; MAX_HOSTNAME + 1];
    if let Some(c) = &i.creator {
        // The core keeps host names at most MAX_HOSTNAME bytes; the last byte stays NUL.
        for (d, s) in host.iter_mut().zip(c.hostname.bytes().take(MAX_HOSTNAME)) {
            *d = s as c_char;
        }
    }
    sa_list_entry {
        name: CString::new(i.name.as_str()).unwrap_or_default().into_raw(),
        backend: match i.backend() {
            Backend::Shm(_) => SA_BACKEND_SHM,
            Backend::File(_) => SA_BACKEND_FILE,
        },
        format: format_code(i.format),
        state: match i.state {
            State::Initialising => SA_STATE_INITIALISING,
            State::Ready => SA_STATE_READY,
        },
        dtype: g.dtype.code(),
        order: g.order as i32,
        ndim: g.shape.len() as i32,
        shape,
        nbytes: g.nbytes,
        capacity: g.capacity,
        file_size: i.file_size,
        created_ns: i.created_ns,
        creator_pid: i.creator.as_ref().map_or(0, |c| c.pid),
        creator_alive: match i.creator_alive {
            Some(true) => 1,
            Some(false) => 0,
            None => -1,
        },
        mode: i.mode,
        uid: i.uid,
        host,
    }
}

fn into_raw(entries: Vec<sa_list_entry>) -> *mut sa_list_entry {
    if entries.is_empty() {
        return std::ptr::null_mut();
    }
    Box::into_raw(entries.into_boxed_slice()).cast()
}

/// Lists arrays into a new array of `*count` entries at `*entries`, sorted by name.
/// `where` NULL lists shared memory: `/dev/shm` and, when `NDSHM_DIR` (or
/// `JOB_SHMTMPDIR`) is set, that directory (its entries named `shm://NAME`; `/dev/shm`
/// entries are then named `file:///dev/shm/NAME`). Otherwise `where` is a directory
/// whose arrays are listed as `file://` names. Files that are not arrays are skipped.
/// With no arrays, `*entries` is NULL and `*count` 0.
///
/// Free the result with `sa_list_free(*entries, *count)`.
/// Returns `SA_OK`, `SA_ERR_INVALID`, `SA_ERR_NOT_FOUND` (no such directory),
/// `SA_ERR_PERMISSION`, `SA_ERR_IO`.
///
/// # Safety
/// `where` is NULL or a NUL-terminated string; `entries` and `count` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_list(
    r#where: *const c_char,
    entries: *mut *mut sa_list_entry,
    count: *mut usize,
) -> c_int {
    guard(|| {
        out_arg(entries, "entries")?;
        out_arg(count, "count")?;
        let dir = if r#where.is_null() {
            None
        } else {
            // SAFETY: per this function's contract.
            Some(unsafe { str_arg(r#where, "where") }?)
        };
        let found = crate::list::list(dir.map(Path::new))?;
        let v: Vec<sa_list_entry> = found.iter().map(entry).collect();
        let n = v.len();
        // SAFETY: both checked non-NULL; writable per the contract.
        unsafe {
            write_out(entries, into_raw(v));
            write_out(count, n);
        }
        Ok(())
    })
}

/// Frees what `sa_list` or `sa_info` returned. `count` must be the count returned with
/// it. NULL is a no-op.
///
/// # Safety
/// `entries` is NULL or an unfreed result of `sa_list`/`sa_info` with its `count`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_list_free(entries: *mut sa_list_entry, count: usize) {
    guard_value((), || {
        if entries.is_null() {
            return;
        }
        // SAFETY: made by Box::into_raw of a boxed slice of `count` entries.
        let b = unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(entries, count)) };
        for e in b.iter() {
            if !e.name.is_null() {
                // SAFETY: made by CString::into_raw in `entry`.
                drop(unsafe { CString::from_raw(e.name) });
            }
        }
    })
}

/// Describes the array `name` without mapping its data: one entry at `*out` (free it
/// with `sa_list_free(*out, 1)`). An array still being initialised is described with
/// `state` `SA_STATE_INITIALISING` once its header exists, else `SA_ERR_NOT_READY`.
///
/// Returns `SA_OK`, `SA_ERR_INVALID`, `SA_ERR_NOT_FOUND`, `SA_ERR_NOT_READY`,
/// `SA_ERR_FORMAT` (not an array), `SA_ERR_PERMISSION`, `SA_ERR_IO`.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_info(name: *const c_char, out: *mut *mut sa_list_entry) -> c_int {
    guard(|| {
        out_arg(out, "out")?;
        // SAFETY: per this function's contract.
        let name = unsafe { str_arg(name, "name") }?;
        let i = crate::list::info(name)?;
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { write_out(out, into_raw(vec![entry(&i)])) };
        Ok(())
    })
}
