//! Creating, attaching, releasing and deleting arrays, and reading a handle.

use std::ffi::{CString, c_char, c_int, c_void};
use std::time::Duration;

use super::dtype::{SA_DTYPE_ANY, dtype_arg, sa_dtype};
use super::{
    Castable, free_box, guard, guard_value, null_arg, out_arg, str_arg, to_box, try_ref, write_out,
};
use crate::array::Array;
use crate::error::Error;
use crate::format::{MAX_NDIM, Order, SegmentFormat, SharedArrayAbi, check_ndim};
use crate::options::{
    AttachOptions, CreateOptions, DeleteOptions, Expect, Flush, ShapeExpect, Share,
};

/// Opaque handle to a mapped array. Made by `sa_create`/`sa_attach*`, freed exactly once
/// by `sa_release`. Accessors may be called from any thread; `sa_fill` and releasing
/// need the caller to ensure no other thread uses the handle at the same time.
pub struct sa_array {
    _opaque: [u8; 0],
}

/// What an `sa_array` points to: the core handle plus what C accessors hand out.
pub(crate) struct Handle {
    pub(crate) inner: Array,
    name: CString,
    // What sa_shape and sa_strides point into: fixed arrays inside the boxed handle, so
    // the pointers stay valid until sa_release (they promise that); refreshed in place
    // by `refresh` when a snapshot or a write changes the shape (src/ffi/sync.rs).
    shape: [i64; SA_MAX_NDIM],
    strides: [i64; SA_MAX_NDIM],
}

impl Castable for sa_array {
    type Rust = Handle;
}

impl Handle {
    /// The core handle.
    pub(crate) fn array(&self) -> &Array {
        &self.inner
    }

    /// Copies the core handle's shape and strides into the arrays C pointers refer to.
    pub(crate) fn refresh(&mut self) {
        let n = self.inner.ndim();
        self.shape = [0; SA_MAX_NDIM];
        self.strides = [0; SA_MAX_NDIM];
        self.shape[..n].copy_from_slice(self.inner.shape());
        self.strides[..n].copy_from_slice(&self.inner.strides());
    }
}

// Flag values (ABI). Create, attach and delete flags share one bit space so a flag
// given to the wrong call is detected.

/// Create: column-major (Fortran) order. Also the value `sa_order` returns for it.
pub const SA_ORDER_F: u32 = 1 << 0;
/// `sa_order` value for row-major (C) order.
pub const SA_ORDER_C: u32 = 0;
/// Create: replace an existing array of that name, atomically (`rename`), once the new
/// one is complete: a failure leaves the old array as it was. Only arrays are replaced,
/// never other files or symbolic links.
pub const SA_FORCE: u32 = 1 << 1;
/// Create: do not reserve memory up front (a full filesystem then means SIGBUS on
/// first write, as with the tools ndshm replaces).
pub const SA_SPARSE: u32 = 1 << 2;
/// Create or attach: prefault every page (`MAP_POPULATE`).
pub const SA_POPULATE: u32 = 1 << 3;
/// Create: advise transparent huge pages (effective on a tmpfs mounted `huge=advise`,
/// e.g. via `NDSHM_DIR`; accepted and ignored elsewhere).
pub const SA_HUGEPAGES: u32 = 1 << 4;
/// Create: permissions 0660 (owner and group). The default is 0600.
pub const SA_SHARE_GROUP: u32 = 1 << 5;
/// Create: permissions 0666 (everybody).
pub const SA_SHARE_ALL: u32 = 1 << 6;
/// Create: SharedArray 3.x layout (data at offset 0, numpy-2 trailer), attachable by
/// the SharedArray Python package. C order only.
pub const SA_FORMAT_SHAREDARRAY: u32 = 1 << 7;
/// Attach: map read-only. Writes through `sa_data` fault; `sa_fill` gives
/// `SA_ERR_READ_ONLY`.
pub const SA_READONLY: u32 = 1 << 8;
/// Attach: accept an array owned by another user. Without it such an array is
/// `SA_ERR_PERMISSION` (root included): whoever can write a segment can truncate it
/// and kill this process with SIGBUS, and anyone can create a name in /dev/shm first.
pub const SA_ALLOW_OTHER_OWNER: u32 = 1 << 9;
/// Attach: follow a symbolic link at the array's name (refused by default).
pub const SA_FOLLOW_SYMLINKS: u32 = 1 << 10;
/// Delete (`sa_delete_ex`): also delete an array whose creator is alive and still
/// initialising it.
pub const SA_DELETE_IN_PROGRESS: u32 = 1 << 11;

/// `sa_msync`: schedule write-back and return.
pub const SA_MS_ASYNC: i32 = 1;
/// `sa_msync`: invalidate other mappings of the same file.
pub const SA_MS_INVALIDATE: i32 = 2;
/// `sa_msync`: write back and wait.
pub const SA_MS_SYNC: i32 = 4;

/// Largest number of dimensions (the size of the `shape` arrays in `sa_list_entry` and
/// `sa_desc`).
pub const SA_MAX_NDIM: usize = 32;
const _: () = assert!(SA_MAX_NDIM == MAX_NDIM);

/// `sa_format` / list entry: ndshm v1 segment.
pub const SA_FORMAT_V1: i32 = 1;
/// `sa_format` / list entry: SharedArray segment written by a numpy-1 build (292-byte trailer).
pub const SA_FORMAT_SHAREDARRAY_NPY1: i32 = 2;
/// `sa_format` / list entry: SharedArray segment written by a numpy-2 build (548-byte trailer).
pub const SA_FORMAT_SHAREDARRAY_NPY2: i32 = 3;
/// `sa_format`: a numpy `.npy` file mapped in place (an `npy://PATH` name).
pub const SA_FORMAT_NPY: i32 = 4;

pub(crate) fn format_code(f: SegmentFormat) -> i32 {
    match f {
        SegmentFormat::V1 { .. } => SA_FORMAT_V1,
        SegmentFormat::SharedArray(SharedArrayAbi::Numpy1) => SA_FORMAT_SHAREDARRAY_NPY1,
        SegmentFormat::SharedArray(SharedArrayAbi::Numpy2) => SA_FORMAT_SHAREDARRAY_NPY2,
        SegmentFormat::Npy => SA_FORMAT_NPY,
    }
}

const CREATE_MASK: u32 = SA_ORDER_F
    | SA_FORCE
    | SA_SPARSE
    | SA_POPULATE
    | SA_HUGEPAGES
    | SA_SHARE_GROUP
    | SA_SHARE_ALL
    | SA_FORMAT_SHAREDARRAY;
const ATTACH_MASK: u32 = SA_READONLY | SA_POPULATE | SA_ALLOW_OTHER_OWNER | SA_FOLLOW_SYMLINKS;
const DELETE_MASK: u32 = SA_DELETE_IN_PROGRESS;

fn unknown_bits(call: &str, bits: u32, mask: u32) -> Result<(), Error> {
    if bits & !mask != 0 {
        return Err(Error::invalid(format!(
            "unknown {call} flag bits {:#x}",
            bits & !mask
        )));
    }
    Ok(())
}

/// Create flags to options; unknown or contradictory bits are errors.
pub(crate) fn create_options(bits: u32) -> Result<CreateOptions, Error> {
    unknown_bits("create", bits, CREATE_MASK)?;
    let has = |f: u32| bits & f != 0;
    if has(SA_SHARE_GROUP) && has(SA_SHARE_ALL) {
        return Err(Error::invalid(
            "SA_SHARE_GROUP and SA_SHARE_ALL are mutually exclusive",
        ));
    }
    Ok(CreateOptions {
        order: if has(SA_ORDER_F) { Order::F } else { Order::C },
        force: has(SA_FORCE),
        sparse: has(SA_SPARSE),
        populate: has(SA_POPULATE),
        hugepages: has(SA_HUGEPAGES),
        share: if has(SA_SHARE_ALL) {
            Share::All
        } else if has(SA_SHARE_GROUP) {
            Share::Group
        } else {
            Share::Owner
        },
        sharedarray_format: has(SA_FORMAT_SHAREDARRAY),
        capacity: None,
    })
}

/// Attach flags and the C timeout convention (0: try once; negative: no limit; else
/// milliseconds) to options.
pub(crate) fn attach_options(bits: u32, timeout_ms: i64) -> Result<AttachOptions, Error> {
    unknown_bits("attach", bits, ATTACH_MASK)?;
    let has = |f: u32| bits & f != 0;
    Ok(AttachOptions {
        readonly: has(SA_READONLY),
        populate: has(SA_POPULATE),
        wait: match timeout_ms {
            0 => None,
            m if m < 0 => Some(Duration::MAX),
            m => Some(Duration::from_millis(m as u64)),
        },
        allow_other_owner: has(SA_ALLOW_OTHER_OWNER),
        follow_symlinks: has(SA_FOLLOW_SYMLINKS),
    })
}

pub(crate) fn into_handle(a: Array) -> *mut sa_array {
    let mut bytes = Vec::with_capacity(a.name().as_str().len() + 1);
    bytes.extend_from_slice(a.name().as_str().as_bytes());
    let name = CString::new(bytes).unwrap_or_default();
    let mut h = Handle {
        inner: a,
        name,
        shape: [0; SA_MAX_NDIM],
        strides: [0; SA_MAX_NDIM],
    };
    h.refresh();
    to_box::<sa_array>(h)
}

/// `n` bytes at `p` (NULL allowed when `n` is 0) as input for an operation that
/// writes `a`: a private copy in `copy` when they lie in one of `a`'s own mappings
/// (a caller publishing or appending the array's own data, e.g. from `sa_data`), so
/// no slice of memory the call writes is ever formed; else the caller's memory.
///
/// # Safety
/// `p` is NULL or points to `n` readable bytes that no other thread writes during the
/// call.
pub(crate) unsafe fn input_bytes<'a>(
    a: &Array,
    p: *const c_void,
    n: usize,
    what: &str,
    copy: &'a mut Vec<u8>,
) -> Result<&'a [u8], Error> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(null_arg(what));
    }
    if a.overlaps(p.cast(), n) {
        copy.resize(n, 0);
        // SAFETY: `p` has n readable bytes (contract); `copy` is a private buffer of n
        // bytes; raw copy, no reference to the mapping.
        unsafe { std::ptr::copy_nonoverlapping(p.cast::<u8>(), copy.as_mut_ptr(), n) };
        return Ok(&copy[..]);
    }
    // SAFETY: non-NULL with n readable bytes outside the array's mappings (checked), not
    // written during the call (contract).
    Ok(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n) })
}

/// Reads the shape argument.
///
/// # Safety
/// `shape` is NULL or points to `ndim` readable `int64_t`.
pub(crate) unsafe fn shape_arg<'a>(ndim: i32, shape: *const i64) -> Result<&'a [i64], Error> {
    let n = check_ndim(ndim as i64)?;
    if n == 0 {
        return Ok(&[]);
    }
    if shape.is_null() {
        return Err(null_arg("shape"));
    }
    // SAFETY: non-NULL and `n` elements readable per the contract.
    Ok(unsafe { std::slice::from_raw_parts(shape, n) })
}

/// Creates the array `name` (`shm://NAME`, `file://PATH` or a bare NAME) with `ndim`
/// dimensions (0 to 32) of sizes `shape[0..ndim]` (each >= 0; `shape` may be NULL when
/// `ndim` is 0), zero-filled, and maps it read-write into `*out`.
///
/// `flags`: `SA_ORDER_F`, `SA_FORCE`, `SA_SPARSE`, `SA_POPULATE`, `SA_HUGEPAGES`,
/// `SA_SHARE_GROUP` or `SA_SHARE_ALL`, `SA_FORMAT_SHAREDARRAY`. Memory is reserved
/// unless `SA_SPARSE`, so a full filesystem is `SA_ERR_NO_SPACE` here, never a SIGBUS
/// later. Permissions are exactly 0600/0660/0666 whatever the umask. The array gets
/// its name only once complete (`O_TMPFILE` + `linkat`), so no process ever sees it
/// half made; with `SA_FORCE` it replaces an existing array atomically. On failure
/// every name is as it was and `*out` is not written.
///
/// Returns `SA_OK`, `SA_ERR_INVALID` (NULL, bad name, ndim, negative or overflowing
/// shape, unknown dtype or flag), `SA_ERR_EXISTS`, `SA_ERR_NO_SPACE`,
/// `SA_ERR_PERMISSION`, `SA_ERR_NOT_FOUND` (missing directory), `SA_ERR_UNSUPPORTED`
/// (`SA_ORDER_F` with `SA_FORMAT_SHAREDARRAY`), `SA_ERR_IO`.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `shape` is NULL or points to `ndim`
/// `int64_t`; `out` is NULL or writable. Release the handle with `sa_release`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_create(
    name: *const c_char,
    ndim: i32,
    shape: *const i64,
    dtype: sa_dtype,
    flags: u32,
    out: *mut *mut sa_array,
) -> c_int {
    // SAFETY: same contract; capacity 0 reserves exactly what the shape needs.
    unsafe { super::sync::sa_create_ex(name, ndim, shape, dtype, flags, 0, out) }
}

/// Attaches the existing array `name` into `*out`. `flags`: `SA_READONLY` (a
/// read-only mapping: writes fault), `SA_POPULATE`, `SA_ALLOW_OTHER_OWNER`,
/// `SA_FOLLOW_SYMLINKS`. Recognises ndshm v1 and SharedArray segments (both trailer
/// sizes). Never blocks: a FIFO or socket under the name is `SA_ERR_FORMAT`.
///
/// Returns `SA_OK`, `SA_ERR_INVALID`, `SA_ERR_NOT_FOUND`, `SA_ERR_NOT_READY` (its
/// creator is still filling it: retry, or use `sa_attach_wait`), `SA_ERR_OWNER_DIED`
/// (that creator died), `SA_ERR_FORMAT` (corrupt, truncated, foreign, a newer format
/// version, or not a regular file), `SA_ERR_UNSUPPORTED`, `SA_ERR_PERMISSION` (also:
/// another user's array without `SA_ALLOW_OTHER_OWNER`, a symbolic link without
/// `SA_FOLLOW_SYMLINKS`), `SA_ERR_IO`. `*out` is written only on success.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_attach(
    name: *const c_char,
    flags: u32,
    out: *mut *mut sa_array,
) -> c_int {
    // SAFETY: same contract; no waiting, no expectations.
    unsafe { sa_attach_ex(name, flags, 0, -1, std::ptr::null(), SA_DTYPE_ANY, out) }
}

/// Like `sa_attach`, but waits up to `timeout_ms` milliseconds for the array to exist
/// and be ready (0: try once; negative: wait without limit). Polls with a backoff of
/// up to 5 ms. Returns `SA_ERR_TIMEOUT` naming the last reason when time runs out, and
/// `SA_ERR_OWNER_DIED` as soon as the creator of the array is seen to have died.
///
/// # Safety
/// As `sa_attach`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_attach_wait(
    name: *const c_char,
    flags: u32,
    timeout_ms: i64,
    out: *mut *mut sa_array,
) -> c_int {
    // SAFETY: same contract; no expectations.
    unsafe {
        sa_attach_ex(
            name,
            flags,
            timeout_ms,
            -1,
            std::ptr::null(),
            SA_DTYPE_ANY,
            out,
        )
    }
}

/// Like `sa_attach`, then checks the array: `ndim` (-1: any), `shape[0..ndim]` (NULL:
/// any; a negative entry: any length on that axis) and `dtype` (`SA_DTYPE_ANY`: any).
/// A difference gives `SA_ERR_MISMATCH` with both expected and found values in the
/// message, and no handle.
///
/// # Safety
/// As `sa_attach`; `shape` is NULL or points to `ndim` `int64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_attach_checked(
    name: *const c_char,
    flags: u32,
    ndim: i32,
    shape: *const i64,
    dtype: sa_dtype,
    out: *mut *mut sa_array,
) -> c_int {
    // SAFETY: same contract; timeout 0 means no waiting.
    unsafe { sa_attach_ex(name, flags, 0, ndim, shape, dtype, out) }
}

/// The general attach: waits up to `timeout_ms` as `sa_attach_wait` does (0: try once;
/// negative: no limit), then checks `ndim`, `shape` and `dtype` as `sa_attach_checked`
/// does. The other attach functions are special cases of this one.
///
/// # Safety
/// As `sa_attach_checked`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_attach_ex(
    name: *const c_char,
    flags: u32,
    timeout_ms: i64,
    ndim: i32,
    shape: *const i64,
    dtype: sa_dtype,
    out: *mut *mut sa_array,
) -> c_int {
    guard(|| {
        out_arg(out, "out")?;
        // SAFETY: per this function's contract.
        let name = unsafe { str_arg(name, "name") }?;
        let opts = attach_options(flags, timeout_ms)?;
        let shape = match (ndim, shape.is_null()) {
            (-1, true) => ShapeExpect::Any,
            (-1, false) => {
                return Err(Error::invalid("`shape` given with ndim -1 (any)"));
            }
            (n, true) => ShapeExpect::Ndim(check_ndim(n as i64)?),
            (n, false) => {
                // SAFETY: non-NULL, `ndim` entries per the contract.
                let dims = unsafe { shape_arg(n, shape) }?;
                ShapeExpect::Dims(dims.iter().map(|&d| (d >= 0).then_some(d)).collect())
            }
        };
        let dtype = match dtype {
            SA_DTYPE_ANY => None,
            d => Some(dtype_arg(d)?),
        };
        let expect = Expect {
            shape,
            dtype,
            order: None,
        };
        let a = Array::attach_checked(name, &opts, &expect)?;
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { write_out(out, into_handle(a)) };
        Ok(())
    })
}

/// Unmaps the array and frees the handle. Never deletes the array. NULL is a no-op.
///
/// # Safety
/// `arr` is NULL or a handle from `sa_create`/`sa_attach*` not yet released; it must
/// not be used afterwards. Release each handle exactly once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_release(arr: *mut sa_array) {
    // SAFETY: NULL or a live handle made by into_handle, released once per the contract.
    guard_value((), || unsafe { free_box(arr) })
}

/// Removes the name of an array; existing mappings stay valid and the memory is freed
/// with the last one. Only a regular file that positively is an array (v1, possibly
/// damaged, or SharedArray) is removed, never a symbolic link: anything else is
/// `SA_ERR_FORMAT`. An array whose creator is alive and still initialising it is
/// `SA_ERR_NOT_READY` (see `sa_delete_ex`). A file this process cannot read to check is
/// `SA_ERR_PERMISSION`.
///
/// Returns `SA_OK`, `SA_ERR_INVALID`, `SA_ERR_NOT_FOUND`, `SA_ERR_FORMAT`,
/// `SA_ERR_NOT_READY`, `SA_ERR_PERMISSION`, `SA_ERR_IO`.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_delete(name: *const c_char) -> c_int {
    // SAFETY: same contract; no flags.
    unsafe { sa_delete_ex(name, 0) }
}

/// `sa_delete` with flags: `SA_DELETE_IN_PROGRESS` also deletes an array whose live
/// creator is still initialising it.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_delete_ex(name: *const c_char, flags: u32) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract.
        let name = unsafe { str_arg(name, "name") }?;
        unknown_bits("delete", flags, DELETE_MASK)?;
        let opts = DeleteOptions {
            in_progress: flags & SA_DELETE_IN_PROGRESS != 0,
        };
        Array::delete_with(name, &opts)
    })
}

/// An accessor's body: `f` of the handle behind `arr`, or `null` for a NULL handle
/// (and after a panic, which the guard reports).
///
/// # Safety
/// `arr` is NULL or a live handle.
unsafe fn read_handle<T: Copy>(arr: *const sa_array, null: T, f: impl FnOnce(&Handle) -> T) -> T {
    // SAFETY: per the contract, a live handle or NULL.
    guard_value(null, || unsafe { try_ref(arr, "arr") }.map_or(null, f))
}

/// Pointer to the first element (page aligned; for an `npy://` file aligned to the item
/// size), or NULL for a NULL handle. Valid until
/// `sa_release`. For a read-only handle the memory must not be written (it faults).
///
/// # Safety
/// `arr` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_data(arr: *const sa_array) -> *mut c_void {
    // SAFETY: per this function's contract.
    unsafe {
        read_handle(arr, std::ptr::null_mut(), |a| {
            a.inner.as_ptr() as *mut c_void
        })
    }
}

/// Number of dimensions (0 to 32), or -1 for a NULL handle.
///
/// # Safety
/// `arr` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_ndim(arr: *const sa_array) -> i32 {
    // SAFETY: per this function's contract.
    unsafe { read_handle(arr, -1, |a| a.inner.ndim() as i32) }
}

/// The shape, `sa_ndim(arr)` entries; NULL for a NULL handle. The pointer stays valid
/// until `sa_release`; the values follow shape changes this handle observes (snapshots,
/// writes). (For ndim 0 the pointer is non-NULL but must not be read.)
///
/// # Safety
/// `arr` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_shape(arr: *const sa_array) -> *const i64 {
    // SAFETY: per this function's contract.
    unsafe { read_handle(arr, std::ptr::null(), |a| a.shape.as_ptr()) }
}

/// Byte strides, numpy-style, `sa_ndim(arr)` entries, valid until `sa_release`; NULL
/// for a NULL handle.
///
/// # Safety
/// `arr` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_strides(arr: *const sa_array) -> *const i64 {
    // SAFETY: per this function's contract.
    unsafe { read_handle(arr, std::ptr::null(), |a| a.strides.as_ptr()) }
}

/// The element type, or `SA_DTYPE_ANY` (-1) for a NULL handle.
///
/// # Safety
/// `arr` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_get_dtype(arr: *const sa_array) -> sa_dtype {
    // SAFETY: per this function's contract.
    unsafe { read_handle(arr, SA_DTYPE_ANY, |a| a.inner.dtype().code()) }
}

/// Bytes per element, or 0 for a NULL handle.
///
/// # Safety
/// `arr` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_itemsize(arr: *const sa_array) -> usize {
    // SAFETY: per this function's contract.
    unsafe { read_handle(arr, 0, |a| a.inner.itemsize()) }
}

/// Bytes of data (itemsize times the number of elements), or 0 for a NULL handle.
///
/// # Safety
/// `arr` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_nbytes(arr: *const sa_array) -> usize {
    // SAFETY: per this function's contract.
    unsafe { read_handle(arr, 0, |a| a.inner.nbytes()) }
}

/// Bytes reserved for data (at least `sa_nbytes`), or 0 for a NULL handle.
///
/// # Safety
/// `arr` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_capacity(arr: *const sa_array) -> usize {
    // SAFETY: per this function's contract.
    unsafe { read_handle(arr, 0, |a| a.inner.capacity()) }
}

/// `SA_ORDER_C` (0) or `SA_ORDER_F` (1); -1 for a NULL handle.
///
/// # Safety
/// `arr` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_order(arr: *const sa_array) -> i32 {
    // SAFETY: per this function's contract.
    unsafe {
        read_handle(arr, -1, |a| match a.inner.order() {
            Order::C => SA_ORDER_C as i32,
            Order::F => SA_ORDER_F as i32,
        })
    }
}

/// `SA_FORMAT_V1`, `SA_FORMAT_SHAREDARRAY_NPY1` or `SA_FORMAT_SHAREDARRAY_NPY2`; -1 for
/// a NULL handle.
///
/// # Safety
/// `arr` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_format(arr: *const sa_array) -> i32 {
    // SAFETY: per this function's contract.
    unsafe { read_handle(arr, -1, |a| format_code(a.inner.format())) }
}

/// 1 if the handle is read-only, 0 if writable, -1 for a NULL handle.
///
/// # Safety
/// `arr` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_is_readonly(arr: *const sa_array) -> i32 {
    // SAFETY: per this function's contract.
    unsafe { read_handle(arr, -1, |a| a.inner.is_readonly() as i32) }
}

/// The array's name with its scheme (`shm://x`, `file:///data/x`), valid until
/// `sa_release`; NULL for a NULL handle.
///
/// # Safety
/// `arr` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_name(arr: *const sa_array) -> *const c_char {
    // SAFETY: per this function's contract.
    unsafe { read_handle(arr, std::ptr::null(), |a| a.name.as_ptr()) }
}

/// Sets every element to the value at `value` (`sa_itemsize(arr)` bytes, e.g. a
/// `double*` for an `SA_FLOAT64` array).
///
/// Returns `SA_OK`, `SA_ERR_INVALID` (NULL argument), `SA_ERR_READ_ONLY`.
///
/// # Safety
/// `arr` is NULL or a live handle not used by another thread during the call; `value`
/// is NULL or points to `sa_itemsize(arr)` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_fill(arr: *mut sa_array, value: *const c_void) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract.
        let a = unsafe { super::try_mut::<sa_array>(arr, "arr") }?;
        if value.is_null() {
            return Err(null_arg("value"));
        }
        let mut copy = Vec::new();
        // SAFETY: `value` points to itemsize readable bytes per the contract.
        let v = unsafe { input_bytes(&a.inner, value, a.inner.itemsize(), "value", &mut copy) }?;
        a.inner.fill_bytes(v)
    })
}

/// `msync(2)` on the whole mapping: `SA_MS_ASYNC` or `SA_MS_SYNC`, optionally with
/// `SA_MS_INVALIDATE`. Useful for `file://` arrays; harmless on shared memory.
///
/// Returns `SA_OK`, `SA_ERR_INVALID`, `SA_ERR_IO`.
///
/// # Safety
/// `arr` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_msync(arr: *mut sa_array, flags: i32) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract.
        let a = unsafe { try_ref::<sa_array>(arr, "arr") }?;
        let known = SA_MS_ASYNC | SA_MS_SYNC | SA_MS_INVALIDATE;
        let flush = match (flags & SA_MS_ASYNC != 0, flags & SA_MS_SYNC != 0) {
            (true, false) if flags & !known == 0 => Flush::Async,
            (false, true) if flags & !known == 0 => Flush::Sync,
            _ => {
                return Err(Error::invalid(format!(
                    "{}: msync flags {flags:#x}: use SA_MS_ASYNC or SA_MS_SYNC, optionally \
                     with SA_MS_INVALIDATE",
                    a.inner.name()
                )));
            }
        };
        a.inner.msync(flush, flags & SA_MS_INVALIDATE != 0)
    })
}

/// Locks the data pages in memory (`mlock(2)`). Beyond `RLIMIT_MEMLOCK` (without
/// CAP_IPC_LOCK) this fails with `SA_ERR_NO_SPACE` or `SA_ERR_PERMISSION`, the limit
/// named in the message. Unmapping (`sa_release`) unlocks.
///
/// # Safety
/// `arr` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_mlock(arr: *mut sa_array) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract.
        let a = unsafe { try_ref::<sa_array>(arr, "arr") }?;
        a.inner.mlock()
    })
}

/// Undoes `sa_mlock`.
///
/// # Safety
/// `arr` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_munlock(arr: *mut sa_array) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract.
        let a = unsafe { try_ref::<sa_array>(arr, "arr") }?;
        a.inner.munlock()
    })
}

/// Everything about a handle in one call (for bindings, where each foreign call costs
/// far more than in C). Filled by `sa_describe`.
#[repr(C)]
pub struct sa_desc {
    /// `sa_data`.
    pub data: *mut c_void,
    /// `sa_nbytes`.
    pub nbytes: usize,
    /// `sa_itemsize`.
    pub itemsize: usize,
    /// `sa_ndim`.
    pub ndim: i32,
    /// `sa_get_dtype`.
    pub dtype: sa_dtype,
    /// `sa_order`.
    pub order: i32,
    /// `sa_is_readonly`.
    pub readonly: i32,
    /// `sa_format`.
    pub format: i32,
    /// `sa_shape`, `ndim` entries; the rest 0.
    pub shape: [i64; SA_MAX_NDIM],
    /// `sa_strides`, `ndim` entries; the rest 0.
    pub strides: [i64; SA_MAX_NDIM],
    /// `sa_name`, valid until `sa_release`.
    pub name: *const c_char,
    /// `sa_dtype_str` of the dtype (static).
    pub typestr: *const c_char,
}

/// Fills `*out` with everything the accessors return, in one call.
///
/// Returns `SA_OK` or `SA_ERR_INVALID` (NULL argument).
///
/// # Safety
/// `arr` is NULL or a live handle; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_describe(arr: *const sa_array, out: *mut sa_desc) -> c_int {
    guard(|| {
        out_arg(out, "out")?;
        // SAFETY: per this function's contract.
        let h = unsafe { try_ref::<sa_array>(arr, "arr") }?;
        let a = &h.inner;
        let (shape, strides) = (h.shape, h.strides);
        let d = sa_desc {
            data: a.as_ptr() as *mut c_void,
            nbytes: a.nbytes(),
            itemsize: a.itemsize(),
            ndim: a.ndim() as i32,
            dtype: a.dtype().code(),
            order: a.order() as i32,
            readonly: a.is_readonly() as i32,
            format: format_code(a.format()),
            shape,
            strides,
            name: h.name.as_ptr(),
            typestr: a.dtype().numpy_cstr().as_ptr(),
        };
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { write_out(out, d) };
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_convert() {
        let o = create_options(SA_ORDER_F | SA_FORCE | SA_SHARE_GROUP).unwrap();
        assert_eq!((o.order, o.force, o.share), (Order::F, true, Share::Group));
        assert!(create_options(SA_SHARE_GROUP | SA_SHARE_ALL).is_err());
        assert!(create_options(SA_READONLY).is_err());
        assert!(create_options(1 << 30).is_err());
        let a = attach_options(SA_READONLY | SA_ALLOW_OTHER_OWNER, -1).unwrap();
        assert!(a.readonly && a.allow_other_owner && !a.follow_symlinks);
        assert_eq!(a.wait, Some(Duration::MAX));
        assert_eq!(attach_options(0, 0).unwrap().wait, None);
        assert_eq!(
            attach_options(0, 1500).unwrap().wait,
            Some(Duration::from_millis(1500))
        );
        assert!(attach_options(SA_FORCE, 0).is_err());
        assert_eq!(SA_ORDER_F as i32, Order::F as i32);
        assert_eq!(SA_ORDER_C as i32, Order::C as i32);
    }
}
