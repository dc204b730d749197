//! Loading files into shared arrays (open-or-create) and saving arrays to `.npy`.

use std::ffi::{c_char, c_int};
use std::path::Path;

use super::array::{
    Handle, SA_ALLOW_OTHER_OWNER, SA_FOLLOW_SYMLINKS, SA_FORCE, SA_HUGEPAGES, SA_POPULATE,
    SA_READONLY, SA_SHARE_ALL, SA_SHARE_GROUP, SA_SPARSE, attach_options, create_options,
    into_handle, sa_array,
};
use super::dtype::{dtype_arg, sa_dtype};
use super::{guard, out_arg, str_arg, try_ref, write_out};
use crate::dataset::{self, FileFormat, LoadOptions, Outcome};
use crate::error::Error;
use crate::format::Order;

/// `sa_load` file format: numpy `.npy` (format 1.0, 2.0, 3.0; C or Fortran order; data
/// in the other byte order is converted to this machine's while loading).
pub const SA_FILE_NPY: i32 = 1;
/// `sa_load` file format: cdxcore's npio (big-endian header, C-order native data).
pub const SA_FILE_NPIO: i32 = 2;

/// `*outcome` of an open-or-create: the array existed (or another process made it
/// meanwhile) and was attached.
pub const SA_ATTACHED: i32 = 0;
/// `*outcome` of an open-or-create: this call created (and filled) the array.
pub const SA_CREATED: i32 = 1;

/// Load / open-or-create: fail with `SA_ERR_EXISTS` instead of attaching an existing array.
pub const SA_EXCLUSIVE: u32 = 1 << 15;
/// Raw files (`sa_load_raw`): the data is in Fortran order.
pub const SA_RAW_ORDER_F: u32 = 1 << 0;

const LOAD_MASK: u32 = SA_FORCE
    | SA_SPARSE
    | SA_POPULATE
    | SA_HUGEPAGES
    | SA_SHARE_GROUP
    | SA_SHARE_ALL
    | SA_READONLY
    | SA_ALLOW_OTHER_OWNER
    | SA_FOLLOW_SYMLINKS
    | SA_EXCLUSIVE;

/// Flags, rows and timeout to options. `row_start < 0` means every row.
fn load_options(
    flags: u32,
    row_start: i64,
    row_end: i64,
    timeout_ms: i64,
) -> Result<LoadOptions, Error> {
    // SA_ORDER_F (bit 0) is accepted by sa_load_raw only, as SA_RAW_ORDER_F.
    let bits = flags & !SA_RAW_ORDER_F;
    if bits & !LOAD_MASK != 0 {
        return Err(Error::invalid(format!(
            "unknown load flag bits {:#x}",
            bits & !LOAD_MASK
        )));
    }
    const CREATE_BITS: u32 =
        SA_FORCE | SA_SPARSE | SA_POPULATE | SA_HUGEPAGES | SA_SHARE_GROUP | SA_SHARE_ALL;
    const ATTACH_BITS: u32 = SA_READONLY | SA_POPULATE | SA_ALLOW_OTHER_OWNER | SA_FOLLOW_SYMLINKS;
    let rows = (row_start >= 0).then_some(row_start..row_end);
    Ok(LoadOptions {
        rows,
        // The order comes from the file (or SA_ORDER_F for sa_open_or_create).
        create: create_options(bits & CREATE_BITS)?,
        attach: attach_options(bits & ATTACH_BITS, 0)?,
        accept_existing: flags & SA_EXCLUSIVE == 0,
        timeout: super::sync::timeout_arg(timeout_ms),
    })
}

/// Writes the results of an open-or-create.
///
/// # Safety
/// `out` is non-NULL and writable; `outcome` is NULL or writable.
pub(crate) unsafe fn opened(
    r: Result<(crate::Array, Outcome), Error>,
    out: *mut *mut sa_array,
    outcome: *mut i32,
) -> Result<(), Error> {
    let (a, o) = r?;
    if !outcome.is_null() {
        let v = match o {
            Outcome::Created => SA_CREATED,
            Outcome::Attached => SA_ATTACHED,
        };
        // SAFETY: non-NULL and writable per the contract.
        unsafe { write_out(outcome, v) };
    }
    // SAFETY: non-NULL and writable per the contract.
    unsafe { write_out(out, into_handle(a)) };
    Ok(())
}

/// Loads the data file `path` (`SA_FILE_NPY` or `SA_FILE_NPIO`) into the shared array
/// `name`, or attaches it when an array of that name already exists with the file's
/// shape, dtype and order: however many processes call this at once, exactly one reads
/// the file; the others wait until it is complete (at most `timeout_ms`; negative: no
/// limit) and attach. Nobody ever sees partial data. If the loading process dies, a
/// waiting one takes over and loads. `*outcome` (if not NULL) says which happened:
/// `SA_CREATED` or `SA_ATTACHED`.
///
/// `row_start`/`row_end`: only rows `[row_start, row_end)` of axis 0 (`row_start`
/// negative: the whole array). `flags`: `SA_SHARE_GROUP`/`SA_SHARE_ALL`, `SA_HUGEPAGES`,
/// `SA_POPULATE`, `SA_SPARSE` (for a new array), `SA_READONLY`, `SA_ALLOW_OTHER_OWNER`,
/// `SA_FOLLOW_SYMLINKS` (for the handle and an existing array), `SA_FORCE` (load a fresh
/// copy and replace any existing array atomically), `SA_EXCLUSIVE` (an existing array is
/// `SA_ERR_EXISTS`).
///
/// Returns `SA_OK`; `SA_ERR_FORMAT` (bad magic, a header that is not a dict, a shape that
/// does not match the file size, a file truncated while loading); `SA_ERR_UNSUPPORTED`
/// (object, string, structured or datetime dtypes, an unknown format version);
/// `SA_ERR_INVALID` (rows outside the array, NULL, bad flags); `SA_ERR_MISMATCH` (an
/// existing array differs); `SA_ERR_EXISTS` (with `SA_EXCLUSIVE`); `SA_ERR_TIMEOUT`;
/// `SA_ERR_NO_SPACE`; `SA_ERR_NOT_FOUND` (no such file); `SA_ERR_PERMISSION`; `SA_ERR_IO`.
///
/// # Safety
/// `path` and `name` are NULL or NUL-terminated strings; `out` is NULL or writable;
/// `outcome` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_load(
    path: *const c_char,
    format: i32,
    name: *const c_char,
    row_start: i64,
    row_end: i64,
    flags: u32,
    timeout_ms: i64,
    out: *mut *mut sa_array,
    outcome: *mut i32,
) -> c_int {
    // SAFETY: same contract.
    unsafe {
        load_with(
            path,
            name,
            row_start,
            row_end,
            flags,
            timeout_ms,
            out,
            outcome,
            || {
                if flags & SA_RAW_ORDER_F != 0 {
                    return Err(Error::invalid("SA_RAW_ORDER_F is for sa_load_raw"));
                }
                match format {
                    SA_FILE_NPY => Ok(FileFormat::Npy),
                    SA_FILE_NPIO => Ok(FileFormat::Npio),
                    f => Err(Error::invalid(format!(
                        "unknown file format {f} (SA_FILE_NPY or SA_FILE_NPIO)"
                    ))),
                }
            },
        )
    }
}

/// The body of `sa_load` and `sa_load_raw`; `format` says how the file is laid out.
///
/// # Safety
/// As `sa_load`.
#[allow(clippy::too_many_arguments)]
unsafe fn load_with(
    path: *const c_char,
    name: *const c_char,
    row_start: i64,
    row_end: i64,
    flags: u32,
    timeout_ms: i64,
    out: *mut *mut sa_array,
    outcome: *mut i32,
    format: impl FnOnce() -> Result<FileFormat, Error>,
) -> c_int {
    guard(|| {
        out_arg(out, "out")?;
        // SAFETY: per this function's contract.
        let path = unsafe { str_arg(path, "path") }?;
        // SAFETY: per this function's contract.
        let name = unsafe { str_arg(name, "name") }?;
        let fmt = format()?;
        let opts = load_options(flags, row_start, row_end, timeout_ms)?;
        let r = dataset::load(Path::new(path), &fmt, name, &opts, None);
        // SAFETY: `out` checked non-NULL; both writable per the contract.
        unsafe { opened(r, out, outcome) }
    })
}

/// Like `sa_load` for a raw binary file: `ndim` dimensions `shape[0..ndim]` of `dtype`
/// starting at byte `offset`, in this machine's byte order, C order (or Fortran order
/// with `SA_RAW_ORDER_F` in `flags`).
///
/// # Safety
/// As `sa_load`; `shape` is NULL or points to `ndim` `int64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_load_raw(
    path: *const c_char,
    offset: u64,
    ndim: i32,
    shape: *const i64,
    dtype: sa_dtype,
    name: *const c_char,
    row_start: i64,
    row_end: i64,
    flags: u32,
    timeout_ms: i64,
    out: *mut *mut sa_array,
    outcome: *mut i32,
) -> c_int {
    // SAFETY: same contract; `shape` is read inside, per this function's contract.
    unsafe {
        load_with(
            path,
            name,
            row_start,
            row_end,
            flags,
            timeout_ms,
            out,
            outcome,
            || {
                // SAFETY: per this function's contract.
                let shape = super::array::shape_arg(ndim, shape)?.to_vec();
                Ok(FileFormat::Raw {
                    dtype: dtype_arg(dtype)?,
                    shape,
                    order: if flags & SA_RAW_ORDER_F != 0 {
                        Order::F
                    } else {
                        Order::C
                    },
                    offset,
                })
            },
        )
    }
}

/// Attaches the array `name` when it exists with this shape and dtype (C order, or
/// Fortran order with `SA_ORDER_F`), or creates it zero-filled: however many processes
/// call this at once, exactly one creates it. `flags` and `timeout_ms` as for `sa_load`
/// (plus `SA_ORDER_F`); `*outcome` (if not NULL) is `SA_CREATED` or `SA_ATTACHED`.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `shape` is NULL or points to `ndim`
/// `int64_t`; `out` is NULL or writable; `outcome` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_open_or_create(
    name: *const c_char,
    ndim: i32,
    shape: *const i64,
    dtype: sa_dtype,
    flags: u32,
    timeout_ms: i64,
    out: *mut *mut sa_array,
    outcome: *mut i32,
) -> c_int {
    guard(|| {
        out_arg(out, "out")?;
        // SAFETY: per this function's contract.
        let name = unsafe { str_arg(name, "name") }?;
        // SAFETY: per this function's contract.
        let shape = unsafe { super::array::shape_arg(ndim, shape) }?;
        let dtype = dtype_arg(dtype)?;
        let mut opts = load_options(flags, -1, -1, timeout_ms)?;
        if flags & super::array::SA_ORDER_F != 0 {
            opts.create.order = Order::F;
        }
        let r = dataset::open_or_create(name, shape, dtype, &opts);
        // SAFETY: `out` checked non-NULL; both writable per the contract.
        unsafe { opened(r, out, outcome) }
    })
}

/// Writes the array (or rows `[row_start, row_end)` of axis 0; `row_start` negative: all)
/// to the `.npy` file `path`, atomically: a temporary file in the same directory is
/// written, synced and renamed over `path`, so readers see the old file or the complete
/// new one. `numpy.load` reads it.
///
/// Returns `SA_OK`, `SA_ERR_INVALID` (NULL, rows outside the array), `SA_ERR_NO_SPACE`,
/// `SA_ERR_PERMISSION`, `SA_ERR_NOT_FOUND` (no such directory), `SA_ERR_IO`.
///
/// # Safety
/// `arr` is NULL or a live handle; `path` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_save(
    arr: *const sa_array,
    path: *const c_char,
    row_start: i64,
    row_end: i64,
) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract.
        let h: &Handle = unsafe { try_ref::<sa_array>(arr, "arr") }?;
        // SAFETY: per this function's contract.
        let path = unsafe { str_arg(path, "path") }?;
        let rows = (row_start >= 0).then_some(row_start..row_end);
        dataset::save(h.array(), Path::new(path), rows, None)
    })
}

const _: () = assert!(SA_RAW_ORDER_F == super::array::SA_ORDER_F);

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn load_flags_convert() {
        let o = load_options(SA_SHARE_GROUP | SA_READONLY | SA_EXCLUSIVE, 2, 5, 1500).unwrap();
        assert_eq!(o.rows, Some(2..5));
        assert_eq!(o.create.share, crate::options::Share::Group);
        assert!(o.attach.readonly && !o.accept_existing);
        assert_eq!(o.timeout, Some(Duration::from_millis(1500)));
        let o = load_options(0, -1, 99, -1).unwrap();
        assert_eq!((o.rows, o.timeout, o.accept_existing), (None, None, true));
        assert!(load_options(1 << 30, -1, -1, 0).is_err());
        assert!(load_options(SA_SHARE_ALL | SA_SHARE_GROUP, -1, -1, 0).is_err());
    }
}
