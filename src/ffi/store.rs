//! The array store through the C ABI: a directory of named arrays (src/store.rs).
//! Argument checks and conversions only.

use std::ffi::{CString, c_char, c_int, c_void};
use std::path::Path;

use super::array::{SA_MAX_NDIM, SA_ORDER_F, SA_READONLY, into_handle, sa_array, shape_arg};
use super::dataset::opened;
use super::dtype::{dtype_arg, sa_dtype};
use super::{
    Castable, free_box, guard, guard_value, null_arg, out_arg, str_arg, to_box, try_ref, write_out,
};
use crate::error::Error;
use crate::format::{Order, nbytes_for};
use crate::store::{Entry, EntryFormat, Store};

/// An open array store (opaque). Close it with `sa_store_close`.
pub struct sa_store {
    _opaque: [u8; 0],
}

impl Castable for sa_store {
    type Rust = Store;
}

/// `sa_store_entry.format`: an ndshm v1 array.
pub const SA_STORE_V1: i32 = 0;
/// `sa_store_entry.format`: an ISF `SharedNumpyStore` raw file (`NAME__D0_..._Dn__DTYPE`).
pub const SA_STORE_ISF: i32 = 1;

/// One array of a store, from `sa_store_list`.
#[repr(C)]
pub struct sa_store_entry {
    /// The array's name in the store. Owned by the entry.
    pub name: *mut c_char,
    /// `SA_STORE_V1` or `SA_STORE_ISF`.
    pub format: i32,
    /// Element type.
    pub dtype: sa_dtype,
    /// `SA_ORDER_C` or `SA_ORDER_F`.
    pub order: i32,
    /// Number of dimensions; `shape[ndim..]` are 0.
    pub ndim: i32,
    /// Shape.
    pub shape: [i64; SA_MAX_NDIM],
}

/// Opens the array store in directory `dir` into `*out` (usable from several threads at
/// once), creating the directory unless
/// `flags` has `SA_READONLY`. A read-only store maps arrays read-only and refuses every
/// change with `SA_ERR_READ_ONLY`. The store also reads directories of ISF's
/// `SharedNumpyStore` (raw files named `NAME__D0_..._Dn__DTYPE`: listed and loadable
/// into shared memory).
///
/// Returns `SA_OK`, `SA_ERR_INVALID` (NULL, unknown flag, not a directory),
/// `SA_ERR_NOT_FOUND` (read-only and missing), `SA_ERR_PERMISSION`, `SA_ERR_IO`.
///
/// # Safety
/// `dir` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_store_open(
    dir: *const c_char,
    flags: u32,
    out: *mut *mut sa_store,
) -> c_int {
    guard(|| {
        out_arg(out, "out")?;
        // SAFETY: per this function's contract.
        let dir = unsafe { str_arg(dir, "dir") }?;
        if flags & !SA_READONLY != 0 {
            return Err(Error::invalid(format!(
                "unknown store flag bits {:#x}",
                flags & !SA_READONLY
            )));
        }
        let s = Store::open(Path::new(dir), flags & SA_READONLY != 0)?;
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { write_out(out, to_box::<sa_store>(s)) };
        Ok(())
    })
}

/// Closes a store (NULL is a no-op). Arrays obtained from it stay valid.
///
/// # Safety
/// `store` is NULL or a live store, closed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_store_close(store: *mut sa_store) {
    // SAFETY: per this function's contract.
    guard_value((), || unsafe { free_box(store) })
}

/// Saves `data` (an array of `ndim` dimensions `shape`, `dtype`; C order, or Fortran
/// with `SA_ORDER_F` in `flags`) as `name`, atomically: readers see the old array or
/// the complete new one; a failure (e.g. `SA_ERR_NO_SPACE`) leaves the old one. Names:
/// 1 to 128 bytes, no `/`, no `__`, not `Loader.json`/`Loader.pickle`.
///
/// Returns `SA_OK`, `SA_ERR_INVALID` (NULL, bad name, shape, dtype or flag),
/// `SA_ERR_READ_ONLY`, `SA_ERR_NO_SPACE`, `SA_ERR_PERMISSION`, `SA_ERR_IO`.
///
/// # Safety
/// `store` is NULL or a live store (stores may be used from several threads at once); `name`
/// NULL or a NUL-terminated string; `shape` NULL or `ndim` `int64_t`; `data` NULL or
/// the array's bytes (the product of `shape` times the item size).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_store_save(
    store: *const sa_store,
    name: *const c_char,
    ndim: i32,
    shape: *const i64,
    dtype: sa_dtype,
    flags: u32,
    data: *const c_void,
) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract (each helper checks NULL).
        let (s, name, shape) = unsafe {
            (
                try_ref::<sa_store>(store, "store")?,
                str_arg(name, "name")?,
                shape_arg(ndim, shape)?,
            )
        };
        let dtype = dtype_arg(dtype)?;
        if flags & !SA_ORDER_F != 0 {
            return Err(Error::invalid(format!(
                "unknown save flag bits {:#x}",
                flags & !SA_ORDER_F
            )));
        }
        let order = if flags & SA_ORDER_F != 0 {
            Order::F
        } else {
            Order::C
        };
        let n = nbytes_for(shape, dtype.itemsize())?;
        // SAFETY: per the contract, `data` holds the array's n bytes (checked NULL).
        let bytes = unsafe { bytes_arg(data, n, "data") }?;
        s.save(name, shape, dtype, order, bytes)
    })
}

/// `n` bytes at `p` (NULL allowed when `n` is 0).
///
/// # Safety
/// `p` is NULL or points to `n` readable bytes not written during `'a`.
unsafe fn bytes_arg<'a>(p: *const c_void, n: u64, what: &str) -> Result<&'a [u8], Error> {
    let n = usize::try_from(n).map_err(|_| Error::invalid(format!("`{what}` is too large")))?;
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(null_arg(what));
    }
    // SAFETY: non-NULL with n readable bytes per the contract.
    Ok(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n) })
}

/// Appends `nrows` rows (each of `row_ndim` dimensions `row_shape` and `dtype`, C order,
/// `nrows` times their size at `rows`) to `name` and stores the new length in
/// `*new_len` (may be NULL); creates the array when the store has none. The dtype and
/// row shape must be the array's (`SA_ERR_MISMATCH`: nothing is converted). Growth,
/// locking and crash safety are `sa_append`'s. The store keeps the array mapped, so
/// appending row by row costs one call per row.
///
/// Returns `SA_OK`, `SA_ERR_INVALID`, `SA_ERR_MISMATCH`, `SA_ERR_READ_ONLY`,
/// `SA_ERR_NO_SPACE`, `SA_ERR_UNSUPPORTED` (an ISF raw file or a Fortran-order array),
/// `SA_ERR_IO`.
///
/// # Safety
/// As `sa_store_save`; `rows` NULL or `nrows` rows; `new_len` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_store_append(
    store: *const sa_store,
    name: *const c_char,
    row_ndim: i32,
    row_shape: *const i64,
    dtype: sa_dtype,
    rows: *const c_void,
    nrows: u64,
    new_len: *mut i64,
) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract (each helper checks NULL).
        let (s, name, row_shape) = unsafe {
            (
                try_ref::<sa_store>(store, "store")?,
                str_arg(name, "name")?,
                shape_arg(row_ndim, row_shape)?,
            )
        };
        let dtype = dtype_arg(dtype)?;
        let row = nbytes_for(row_shape, dtype.itemsize())?;
        let n = nrows
            .checked_mul(row)
            .ok_or_else(|| Error::invalid(format!("{nrows} rows of {row} bytes are too many")))?;
        // SAFETY: per the contract, `rows` holds nrows rows = n bytes (checked NULL).
        let bytes = unsafe { bytes_arg(rows, n, "rows") }?;
        let len = s.append(name, row_shape, dtype, nrows, bytes)?;
        if !new_len.is_null() {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { write_out(new_len, len) };
        }
        Ok(())
    })
}

/// Maps the array `name` in place (no copy) into `*out`, read-only if the store is.
/// Rows appended later appear after `sa_refresh`. Release it with `sa_release`.
///
/// Returns `SA_OK`, `SA_ERR_INVALID`, `SA_ERR_NOT_FOUND`, `SA_ERR_FORMAT`,
/// `SA_ERR_UNSUPPORTED` (an ISF raw file: load it into shared memory instead),
/// `SA_ERR_PERMISSION`, `SA_ERR_IO`.
///
/// # Safety
/// `store` is NULL or a live store; `name` NULL or a NUL-terminated string; `out` NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_store_map(
    store: *const sa_store,
    name: *const c_char,
    out: *mut *mut sa_array,
) -> c_int {
    guard(|| {
        out_arg(out, "out")?;
        // SAFETY: per this function's contract.
        let (s, name) = unsafe { (try_ref::<sa_store>(store, "store")?, str_arg(name, "name")?) };
        let a = s.open_array(name)?;
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { write_out(out, into_handle(a)) };
        Ok(())
    })
}

/// Loads rows `[row_start, row_end)` of `name` (`row_start` negative: all) into shared
/// memory once for all processes of the node, into `*out`: the first caller copies,
/// the others (also those calling at the same time) wait for it (at most `timeout_ms`;
/// negative: no limit) and attach the same copy; `*outcome` (may be NULL) is
/// `SA_CREATED` or `SA_ATTACHED`. The copy's name (see `sa_name`) names the store's
/// directory, the array, the version of its contents and the rows: stores in different
/// directories never share a copy, and a saved-over array never reuses a stale one.
/// Copies stay until deleted (`sa_store_unload`). Works for ISF raw files too.
///
/// Returns `SA_OK`, `SA_ERR_INVALID` (rows outside the array), `SA_ERR_NOT_FOUND`,
/// `SA_ERR_NO_SPACE`, `SA_ERR_TIMEOUT`, `SA_ERR_FORMAT`, `SA_ERR_IO`.
///
/// # Safety
/// As `sa_store_map`; `outcome` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_store_load(
    store: *const sa_store,
    name: *const c_char,
    row_start: i64,
    row_end: i64,
    timeout_ms: i64,
    out: *mut *mut sa_array,
    outcome: *mut i32,
) -> c_int {
    guard(|| {
        out_arg(out, "out")?;
        // SAFETY: per this function's contract.
        let (s, name) = unsafe { (try_ref::<sa_store>(store, "store")?, str_arg(name, "name")?) };
        let rows = (row_start >= 0).then_some(row_start..row_end);
        let timeout = super::sync::timeout_arg(timeout_ms);
        let r = s.load_shm(name, rows, timeout);
        // SAFETY: out checked non-NULL; outcome NULL or writable per the contract.
        unsafe { opened(r, out, outcome) }
    })
}

/// Deletes the shared-memory copies of `name` made by `sa_store_load`; `*count` (may
/// be NULL) is how many. Processes that map one keep it until they release it.
///
/// # Safety
/// As `sa_store_map`; `count` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_store_unload(
    store: *const sa_store,
    name: *const c_char,
    count: *mut usize,
) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract.
        let (s, name) = unsafe { (try_ref::<sa_store>(store, "store")?, str_arg(name, "name")?) };
        let n = s.unload(name)?;
        if !count.is_null() {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { write_out(count, n) };
        }
        Ok(())
    })
}

/// Describes the array `name`: one entry at `*out` (free it with
/// `sa_store_list_free(*out, 1)`).
///
/// Returns `SA_OK`, `SA_ERR_INVALID`, `SA_ERR_NOT_FOUND`, `SA_ERR_FORMAT`, `SA_ERR_IO`.
///
/// # Safety
/// `store` NULL or a live store; `name` NULL or a NUL-terminated string; `out` NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_store_info(
    store: *const sa_store,
    name: *const c_char,
    out: *mut *mut sa_store_entry,
) -> c_int {
    guard(|| {
        out_arg(out, "out")?;
        // SAFETY: per this function's contract.
        let (s, name) = unsafe { (try_ref::<sa_store>(store, "store")?, str_arg(name, "name")?) };
        let e = entry(&s.entry(name)?);
        // One boxed entry, as sa_store_list makes them, so sa_store_list_free frees it.
        let p: *mut sa_store_entry = Box::into_raw(vec![e].into_boxed_slice()).cast();
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { write_out(out, p) };
        Ok(())
    })
}

/// Copies rows `[row_start, row_end)` of `name` (`row_start` negative: the whole array)
/// into `dst`, which has exactly their bytes (`dst_bytes`; `SA_ERR_MISMATCH` otherwise),
/// with `pread`: a private copy, faster than copying from a fresh mapping. C order for
/// row ranges (`SA_ERR_UNSUPPORTED` for a Fortran-order array's rows).
///
/// Returns `SA_OK`, `SA_ERR_INVALID` (rows outside the array), `SA_ERR_MISMATCH`,
/// `SA_ERR_NOT_FOUND`, `SA_ERR_UNSUPPORTED`, `SA_ERR_FORMAT` (truncated), `SA_ERR_IO`.
///
/// # Safety
/// As `sa_store_info`; `dst` NULL or `dst_bytes` writable bytes of the caller's own (not
/// an array's mapping).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_store_read(
    store: *const sa_store,
    name: *const c_char,
    row_start: i64,
    row_end: i64,
    dst: *mut c_void,
    dst_bytes: usize,
) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract.
        let (s, name) = unsafe { (try_ref::<sa_store>(store, "store")?, str_arg(name, "name")?) };
        let dst: &mut [u8] = if dst_bytes == 0 {
            &mut []
        } else if dst.is_null() {
            return Err(null_arg("dst"));
        } else {
            // SAFETY: non-NULL with dst_bytes writable bytes, the caller's own (contract).
            unsafe { std::slice::from_raw_parts_mut(dst.cast::<u8>(), dst_bytes) }
        };
        let rows = (row_start >= 0).then_some(row_start..row_end);
        s.read_into(name, rows, dst).map(|_| ())
    })
}

/// Deletes the array `name` (in either format).
///
/// Returns `SA_OK`, `SA_ERR_INVALID`, `SA_ERR_NOT_FOUND`, `SA_ERR_READ_ONLY`,
/// `SA_ERR_PERMISSION`, `SA_ERR_IO`.
///
/// # Safety
/// `store` NULL or a live store (stores may be used from several threads at once); `name`
/// NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_store_delete(store: *const sa_store, name: *const c_char) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract.
        let (s, name) = unsafe { (try_ref::<sa_store>(store, "store")?, str_arg(name, "name")?) };
        s.delete(name)
    })
}

fn entry(e: &Entry) -> sa_store_entry {
    let mut shape = [0i64; SA_MAX_NDIM];
    shape[..e.shape.len()].copy_from_slice(&e.shape);
    sa_store_entry {
        name: CString::new(e.name.as_str()).unwrap_or_default().into_raw(),
        format: match e.format {
            EntryFormat::V1 => SA_STORE_V1,
            EntryFormat::Isf => SA_STORE_ISF,
        },
        dtype: e.dtype.code(),
        order: e.order as i32,
        ndim: e.shape.len() as i32,
        shape,
    }
}

/// Lists the store's arrays, sorted by name, into a new array of `*count` entries at
/// `*entries` (NULL when there are none); free it with `sa_store_list_free`.
///
/// Returns `SA_OK`, `SA_ERR_INVALID`, `SA_ERR_NOT_FOUND` (the directory is gone),
/// `SA_ERR_PERMISSION`, `SA_ERR_IO`.
///
/// # Safety
/// `store` NULL or a live store; `entries` and `count` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_store_list(
    store: *const sa_store,
    entries: *mut *mut sa_store_entry,
    count: *mut usize,
) -> c_int {
    guard(|| {
        out_arg(entries, "entries")?;
        out_arg(count, "count")?;
        // SAFETY: per this function's contract.
        let s = unsafe { try_ref::<sa_store>(store, "store") }?;
        let v: Vec<sa_store_entry> = s.list()?.iter().map(entry).collect();
        let n = v.len();
        let p = if v.is_empty() {
            std::ptr::null_mut()
        } else {
            Box::into_raw(v.into_boxed_slice()).cast()
        };
        // SAFETY: both checked non-NULL; writable per the contract.
        unsafe {
            write_out(entries, p);
            write_out(count, n);
        }
        Ok(())
    })
}

/// Frees what `sa_store_list` returned (NULL is a no-op).
///
/// # Safety
/// `entries`/`count` exactly as `sa_store_list` returned them, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_store_list_free(entries: *mut sa_store_entry, count: usize) {
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
