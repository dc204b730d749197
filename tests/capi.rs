//! The C ABI called as C would call it: NULL pointers, out-of-range values, unknown
//! codes and flags, read-only handles. Each is a named status with a message.

mod common;

use std::ffi::{CStr, CString, c_char};
use std::ptr::{null, null_mut};

use common::TempName;
use common::codes::*;
use ndshm::ffi::array::*;
use ndshm::ffi::dtype::*;
use ndshm::ffi::error::*;
use ndshm::ffi::list::*;

fn last() -> String {
    // SAFETY: sa_last_error never returns NULL.
    unsafe { CStr::from_ptr(sa_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn status(c: i32) -> String {
    // SAFETY: static string.
    unsafe { CStr::from_ptr(sa_status_str(c)) }
        .to_string_lossy()
        .into_owned()
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

#[track_caller]
fn expect(rc: i32, code: i32, word: &str) {
    assert_eq!(status(rc), status(code), "message: {}", last());
    assert!(
        last().contains(word),
        "{:?} should mention {word:?}",
        last()
    );
}

#[test]
fn create_attach_accessors() {
    let t = TempName::new("c");
    let name = c(&t.shm());
    let shape = [3i64, 4];
    let mut a: *mut sa_array = null_mut();
    // SAFETY: valid pointers as the C contract requires.
    unsafe {
        assert_eq!(
            sa_create(
                name.as_ptr(),
                2,
                shape.as_ptr(),
                SA_FLOAT64,
                SA_ORDER_F,
                &mut a
            ),
            SA_OK
        );
        assert!(!a.is_null());
        assert_eq!(sa_ndim(a), 2);
        assert_eq!(std::slice::from_raw_parts(sa_shape(a), 2), &shape);
        assert_eq!(std::slice::from_raw_parts(sa_strides(a), 2), &[8, 24]);
        assert_eq!(sa_get_dtype(a), SA_FLOAT64);
        assert_eq!(sa_itemsize(a), 8);
        assert_eq!(sa_nbytes(a), 96);
        assert_eq!(sa_capacity(a), 96);
        assert_eq!(sa_order(a), SA_ORDER_F as i32);
        assert_eq!(sa_format(a), SA_FORMAT_V1);
        assert_eq!(sa_is_readonly(a), 0);
        assert_eq!(CStr::from_ptr(sa_name(a)).to_str().unwrap(), t.shm());
        let v = 2.5f64;
        assert_eq!(sa_fill(a, (&v as *const f64).cast()), SA_OK);
        let mut b: *mut sa_array = null_mut();
        assert_eq!(sa_attach(name.as_ptr(), SA_READONLY, &mut b), SA_OK);
        assert_eq!(*(sa_data(b) as *const f64).add(11), 2.5);
        assert_eq!(sa_is_readonly(b), 1);
        expect(
            sa_fill(b, (&v as *const f64).cast()),
            SA_ERR_READ_ONLY,
            "read-only",
        );
        assert_eq!(sa_msync(b, SA_MS_SYNC), SA_OK);
        assert_eq!(sa_mlock(a), SA_OK);
        assert_eq!(sa_munlock(a), SA_OK);
        sa_release(b);
        sa_release(a);
        assert_eq!(sa_delete(name.as_ptr()), SA_OK);
    }
}

#[test]
fn null_pointers_are_invalid() {
    let t = TempName::new("null");
    let name = c(&t.shm());
    let shape = [2i64];
    let mut a: *mut sa_array = null_mut();
    let mut e: *mut sa_list_entry = null_mut();
    let mut n = 0usize;
    let mut d: sa_dtype = 0;
    // SAFETY: NULLs where the contract allows them to be checked.
    unsafe {
        expect(
            sa_create(null(), 1, shape.as_ptr(), SA_UINT8, 0, &mut a),
            SA_ERR_INVALID,
            "`name` is NULL",
        );
        expect(
            sa_create(name.as_ptr(), 1, null(), SA_UINT8, 0, &mut a),
            SA_ERR_INVALID,
            "`shape` is NULL",
        );
        expect(
            sa_create(name.as_ptr(), 1, shape.as_ptr(), SA_UINT8, 0, null_mut()),
            SA_ERR_INVALID,
            "`out` is NULL",
        );
        assert!(a.is_null(), "out untouched on failure");
        expect(sa_attach(null(), 0, &mut a), SA_ERR_INVALID, "`name`");
        expect(
            sa_attach(name.as_ptr(), 0, null_mut()),
            SA_ERR_INVALID,
            "`out`",
        );
        expect(
            sa_attach_wait(name.as_ptr(), 0, 0, null_mut()),
            SA_ERR_INVALID,
            "`out`",
        );
        expect(
            sa_attach_checked(null(), 0, -1, null(), SA_DTYPE_ANY, &mut a),
            SA_ERR_INVALID,
            "`name`",
        );
        expect(sa_delete(null()), SA_ERR_INVALID, "`name`");
        expect(
            sa_list(null(), null_mut(), &mut n),
            SA_ERR_INVALID,
            "`entries`",
        );
        expect(
            sa_list(null(), &mut e, null_mut()),
            SA_ERR_INVALID,
            "`count`",
        );
        expect(sa_info(null(), &mut e), SA_ERR_INVALID, "`name`");
        expect(sa_info(name.as_ptr(), null_mut()), SA_ERR_INVALID, "`out`");
        expect(
            sa_fill(null_mut(), (&d as *const i32).cast()),
            SA_ERR_INVALID,
            "`arr`",
        );
        expect(sa_msync(null_mut(), SA_MS_SYNC), SA_ERR_INVALID, "`arr`");
        expect(sa_mlock(null_mut()), SA_ERR_INVALID, "`arr`");
        expect(sa_munlock(null_mut()), SA_ERR_INVALID, "`arr`");
        expect(sa_dtype_from_str(null(), &mut d), SA_ERR_INVALID, "`str`");
        expect(
            sa_dtype_from_str(c("f8").as_ptr(), null_mut()),
            SA_ERR_INVALID,
            "`out`",
        );
        // Accessors on NULL return a documented sentinel; release/free accept NULL.
        assert!(sa_data(null()).is_null());
        assert_eq!(sa_ndim(null()), -1);
        assert!(sa_shape(null()).is_null());
        assert!(sa_strides(null()).is_null());
        assert_eq!(sa_get_dtype(null()), SA_DTYPE_ANY);
        assert_eq!(sa_itemsize(null()), 0);
        assert_eq!(sa_nbytes(null()), 0);
        assert_eq!(sa_order(null()), -1);
        assert!(sa_name(null()).is_null());
        sa_release(null_mut());
        sa_list_free(null_mut(), 0);
        // A value pointer of NULL for fill.
        let mut h: *mut sa_array = null_mut();
        assert_eq!(
            sa_create(name.as_ptr(), 1, shape.as_ptr(), SA_UINT8, 0, &mut h),
            SA_OK
        );
        expect(sa_fill(h, null()), SA_ERR_INVALID, "`value`");
        sa_release(h);
        assert_eq!(sa_delete(name.as_ptr()), SA_OK);
    }
}

#[test]
fn bad_values_are_invalid() {
    let t = TempName::new("bad");
    let name = c(&t.shm());
    let shape = [2i64; 40];
    let mut a: *mut sa_array = null_mut();
    // SAFETY: valid pointers; only values are wrong.
    unsafe {
        expect(
            sa_create(name.as_ptr(), -1, shape.as_ptr(), SA_UINT8, 0, &mut a),
            SA_ERR_INVALID,
            "ndim -1",
        );
        expect(
            sa_create(name.as_ptr(), 33, shape.as_ptr(), SA_UINT8, 0, &mut a),
            SA_ERR_INVALID,
            "ndim 33",
        );
        let neg = [4i64, -2];
        expect(
            sa_create(name.as_ptr(), 2, neg.as_ptr(), SA_UINT8, 0, &mut a),
            SA_ERR_INVALID,
            "negative",
        );
        let big = [i64::MAX, 2];
        expect(
            sa_create(name.as_ptr(), 2, big.as_ptr(), SA_UINT8, 0, &mut a),
            SA_ERR_INVALID,
            "overflow",
        );
        let big = [1i64 << 61];
        expect(
            sa_create(name.as_ptr(), 1, big.as_ptr(), SA_FLOAT64, 0, &mut a),
            SA_ERR_INVALID,
            "overflow",
        );
        // Empty, but the nonzero dimensions overflow: numpy cannot represent it.
        let empty_huge = [0i64, 1 << 62, 1 << 62];
        expect(
            sa_create(name.as_ptr(), 3, empty_huge.as_ptr(), SA_UINT8, 0, &mut a),
            SA_ERR_INVALID,
            "numpy cannot",
        );
        // Unknown delete flags, and the wait sentinels: negative waits forever, and
        // i64::MIN is as negative as any.
        expect(
            sa_delete_ex(name.as_ptr(), 1 << 30),
            SA_ERR_INVALID,
            "unknown delete flag",
        );
        expect(
            sa_attach_ex(
                name.as_ptr(),
                1 << 30,
                i64::MIN,
                -1,
                null(),
                SA_DTYPE_ANY,
                &mut a,
            ),
            SA_ERR_INVALID,
            "unknown attach flag",
        );
        expect(
            sa_create(name.as_ptr(), 1, shape.as_ptr(), 14, 0, &mut a),
            SA_ERR_INVALID,
            "unknown dtype code 14",
        );
        expect(
            sa_create(name.as_ptr(), 1, shape.as_ptr(), -5, 0, &mut a),
            SA_ERR_INVALID,
            "unknown dtype code -5",
        );
        expect(
            sa_create(name.as_ptr(), 1, shape.as_ptr(), SA_UINT8, 1 << 30, &mut a),
            SA_ERR_INVALID,
            "unknown create flag",
        );
        expect(
            sa_create(
                name.as_ptr(),
                1,
                shape.as_ptr(),
                SA_UINT8,
                SA_READONLY,
                &mut a,
            ),
            SA_ERR_INVALID,
            "unknown create flag",
        );
        expect(
            sa_attach(name.as_ptr(), SA_FORCE, &mut a),
            SA_ERR_INVALID,
            "unknown attach flag",
        );
        expect(
            sa_attach(c("nfs://x").as_ptr(), 0, &mut a),
            SA_ERR_INVALID,
            "unknown scheme",
        );
        expect(
            sa_attach(c("a/b").as_ptr(), 0, &mut a),
            SA_ERR_INVALID,
            "'/'",
        );
        expect(
            sa_attach(c("").as_ptr(), 0, &mut a),
            SA_ERR_INVALID,
            "empty",
        );
        let long = c(&"n".repeat(256));
        expect(sa_attach(long.as_ptr(), 0, &mut a), SA_ERR_INVALID, "255");
        let bad_utf8 = [0xffu8, 0xfe, 0];
        expect(
            sa_attach(bad_utf8.as_ptr() as *const c_char, 0, &mut a),
            SA_ERR_INVALID,
            "UTF-8",
        );
        expect(
            sa_attach(name.as_ptr(), 0, &mut a),
            SA_ERR_NOT_FOUND,
            "no such array",
        );
        assert!(a.is_null());

        let one = [5i64];
        assert_eq!(
            sa_create(name.as_ptr(), 1, one.as_ptr(), SA_INT32, 0, &mut a),
            SA_OK
        );
        expect(
            sa_msync(a, SA_MS_SYNC | SA_MS_ASYNC),
            SA_ERR_INVALID,
            "msync flags",
        );
        expect(sa_msync(a, 1 << 10), SA_ERR_INVALID, "msync flags");
        let mut b: *mut sa_array = null_mut();
        expect(
            sa_create(name.as_ptr(), 1, one.as_ptr(), SA_INT32, 0, &mut b),
            SA_ERR_EXISTS,
            "already exists",
        );
        // Checked attach.
        let want = [5i64];
        assert_eq!(
            sa_attach_checked(name.as_ptr(), 0, 1, want.as_ptr(), SA_INT32, &mut b),
            SA_OK
        );
        sa_release(b);
        assert_eq!(
            sa_attach_checked(name.as_ptr(), 0, 1, null(), SA_DTYPE_ANY, &mut b),
            SA_OK
        );
        sa_release(b);
        b = null_mut();
        let wrong = [6i64];
        expect(
            sa_attach_checked(name.as_ptr(), 0, 1, wrong.as_ptr(), SA_INT32, &mut b),
            SA_ERR_MISMATCH,
            "expected shape [6]",
        );
        expect(
            sa_attach_checked(name.as_ptr(), 0, 2, null(), SA_INT32, &mut b),
            SA_ERR_MISMATCH,
            "found shape [5]",
        );
        expect(
            sa_attach_checked(name.as_ptr(), 0, -1, null(), SA_FLOAT32, &mut b),
            SA_ERR_MISMATCH,
            "dtype float32",
        );
        expect(
            sa_attach_checked(name.as_ptr(), 0, -1, want.as_ptr(), SA_INT32, &mut b),
            SA_ERR_INVALID,
            "ndim -1",
        );
        expect(
            sa_attach_checked(name.as_ptr(), 0, 1, want.as_ptr(), 99, &mut b),
            SA_ERR_INVALID,
            "dtype code 99",
        );
        assert!(b.is_null());
        expect(
            sa_attach_wait(c(&format!("{}-missing", t.shm())).as_ptr(), 0, 30, &mut b),
            SA_ERR_TIMEOUT,
            "timed out",
        );
        sa_release(a);
        assert_eq!(sa_delete(name.as_ptr()), SA_OK);
        expect(sa_delete(name.as_ptr()), SA_ERR_NOT_FOUND, "no such array");
    }
}

#[test]
fn dtype_strings() {
    let mut d: sa_dtype = -1;
    // SAFETY: valid pointers.
    unsafe {
        for (s, want) in [
            ("<f8", SA_FLOAT64),
            ("float32", SA_FLOAT32),
            ("|u1", SA_UINT8),
            ("?", SA_BOOL),
            ("<c16", SA_COMPLEX128),
            ("<f2", SA_FLOAT16),
        ] {
            assert_eq!(sa_dtype_from_str(c(s).as_ptr(), &mut d), SA_OK, "{s}");
            assert_eq!(d, want);
            assert_eq!(
                CStr::from_ptr(sa_dtype_str(d)).to_str().unwrap(),
                ndshm::Dtype::from_code(d).unwrap().numpy_str()
            );
        }
        d = 123;
        expect(
            sa_dtype_from_str(c("O").as_ptr(), &mut d),
            SA_ERR_UNSUPPORTED,
            "\"O\"",
        );
        expect(
            sa_dtype_from_str(c("<U8").as_ptr(), &mut d),
            SA_ERR_UNSUPPORTED,
            "<U8",
        );
        expect(
            sa_dtype_from_str(c(">f8").as_ptr(), &mut d),
            SA_ERR_UNSUPPORTED,
            "byte order",
        );
        expect(
            sa_dtype_from_str(c("").as_ptr(), &mut d),
            SA_ERR_INVALID,
            "empty",
        );
        assert_eq!(d, 123, "out untouched on failure");
    }
    assert_eq!(status(SA_ERR_NO_SPACE), "SA_ERR_NO_SPACE");
    assert_eq!(status(SA_OK), "SA_OK");
    assert_eq!(status(12345), "SA_ERR_UNKNOWN");
    // SAFETY: static strings.
    let v = unsafe { CStr::from_ptr(sa_version()) }
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
    assert_eq!(sa_format_version(), 1002);
}

#[test]
fn list_and_info_through_c() {
    let dir = common::TempDir::new("clist");
    let name = c(&dir.file_name("x"));
    let shape = [2i64, 3];
    let mut a: *mut sa_array = null_mut();
    let mut e: *mut sa_list_entry = null_mut();
    let mut n = 99usize;
    // SAFETY: valid pointers; entries freed with their count.
    unsafe {
        let empty = c(dir.path.to_str().unwrap());
        assert_eq!(sa_list(empty.as_ptr(), &mut e, &mut n), SA_OK);
        assert_eq!((e.is_null(), n), (true, 0));
        assert_eq!(
            sa_create(
                name.as_ptr(),
                2,
                shape.as_ptr(),
                SA_UINT16,
                SA_SHARE_GROUP,
                &mut a
            ),
            SA_OK
        );
        assert_eq!(sa_list(empty.as_ptr(), &mut e, &mut n), SA_OK);
        assert_eq!(n, 1);
        let x = &*e;
        assert_eq!(CStr::from_ptr(x.name), name.as_c_str());
        assert_eq!(
            (x.backend, x.format, x.state),
            (SA_BACKEND_FILE, SA_FORMAT_V1, SA_STATE_READY)
        );
        assert_eq!(
            (x.dtype, x.order, x.ndim),
            (SA_UINT16, SA_ORDER_C as i32, 2)
        );
        assert_eq!(&x.shape[..3], &[2, 3, 0]);
        assert_eq!((x.nbytes, x.capacity), (12, 12));
        assert_eq!(x.file_size, 8192 + 12);
        assert_eq!(x.creator_pid, std::process::id() as i32);
        assert_eq!(x.creator_alive, 1);
        assert_eq!(x.mode, 0o660);
        assert!(!CStr::from_ptr(x.host.as_ptr()).to_bytes().is_empty());
        sa_list_free(e, n);
        let mut i: *mut sa_list_entry = null_mut();
        assert_eq!(sa_info(name.as_ptr(), &mut i), SA_OK);
        assert_eq!((*i).nbytes, 12);
        sa_list_free(i, 1);
        expect(
            sa_list(c("/nonexistent-dir-xyz").as_ptr(), &mut e, &mut n),
            SA_ERR_NOT_FOUND,
            "nonexistent-dir-xyz",
        );
        sa_release(a);
        assert_eq!(sa_delete(name.as_ptr()), SA_OK);
    }
}

#[test]
fn dataset_functions_check_their_arguments() {
    use ndshm::ffi::dataset::*;
    let t = TempName::new("capi-load");
    let name = c(&t.name);
    let dir = common::TempDir::new("capi-load");
    let npy = dir.path.join("a.npy");
    let mut bytes = ndshm::npy::encode_npy(ndshm::Dtype::Int32, ndshm::Order::C, &[4]);
    bytes.extend_from_slice(&[0u8; 16]);
    std::fs::write(&npy, &bytes).unwrap();
    let path = c(npy.to_str().unwrap());
    let mut a: *mut sa_array = null_mut();
    let mut outcome = -1i32;
    // SAFETY: every pointer is NULL, valid, or writable as each contract says.
    unsafe {
        expect(
            sa_load(
                null(),
                SA_FILE_NPY,
                name.as_ptr(),
                -1,
                -1,
                0,
                0,
                &mut a,
                &mut outcome,
            ),
            SA_ERR_INVALID,
            "`path`",
        );
        expect(
            sa_load(
                path.as_ptr(),
                SA_FILE_NPY,
                null(),
                -1,
                -1,
                0,
                0,
                &mut a,
                &mut outcome,
            ),
            SA_ERR_INVALID,
            "`name`",
        );
        expect(
            sa_load(
                path.as_ptr(),
                SA_FILE_NPY,
                name.as_ptr(),
                -1,
                -1,
                0,
                0,
                null_mut(),
                &mut outcome,
            ),
            SA_ERR_INVALID,
            "`out`",
        );
        expect(
            sa_load(
                path.as_ptr(),
                77,
                name.as_ptr(),
                -1,
                -1,
                0,
                0,
                &mut a,
                &mut outcome,
            ),
            SA_ERR_INVALID,
            "file format 77",
        );
        expect(
            sa_load(
                path.as_ptr(),
                SA_FILE_NPY,
                name.as_ptr(),
                -1,
                -1,
                1 << 29,
                0,
                &mut a,
                &mut outcome,
            ),
            SA_ERR_INVALID,
            "load flag",
        );
        expect(
            sa_load(
                path.as_ptr(),
                SA_FILE_NPY,
                name.as_ptr(),
                2,
                9,
                0,
                0,
                &mut a,
                &mut outcome,
            ),
            SA_ERR_INVALID,
            "outside",
        );
        expect(
            sa_load(
                path.as_ptr(),
                SA_FILE_NPIO,
                name.as_ptr(),
                -1,
                -1,
                0,
                0,
                &mut a,
                &mut outcome,
            ),
            SA_ERR_FORMAT,
            "npio",
        );
        assert!(a.is_null() && outcome == -1, "nothing written on failure");
        // Success, with a NULL outcome allowed.
        assert_eq!(
            sa_load(
                path.as_ptr(),
                SA_FILE_NPY,
                name.as_ptr(),
                1,
                3,
                0,
                0,
                &mut a,
                null_mut()
            ),
            SA_OK
        );
        assert_eq!(sa_nbytes(a), 8);
        expect(
            sa_save(null(), path.as_ptr(), -1, -1),
            SA_ERR_INVALID,
            "`arr`",
        );
        expect(sa_save(a, null(), -1, -1), SA_ERR_INVALID, "`path`");
        expect(sa_save(a, path.as_ptr(), 0, 5), SA_ERR_INVALID, "outside");
        sa_release(a);
        let shape = [3i64];
        expect(
            sa_open_or_create(
                name.as_ptr(),
                1,
                shape.as_ptr(),
                SA_DTYPE_ANY,
                0,
                0,
                &mut a,
                &mut outcome,
            ),
            SA_ERR_INVALID,
            "dtype",
        );
        expect(
            sa_open_or_create(
                name.as_ptr(),
                1,
                shape.as_ptr(),
                SA_INT32,
                0,
                0,
                &mut a,
                &mut outcome,
            ),
            SA_ERR_MISMATCH,
            "expected",
        );
        expect(
            sa_load_raw(
                path.as_ptr(),
                0,
                1,
                null(),
                SA_INT32,
                name.as_ptr(),
                -1,
                -1,
                0,
                0,
                &mut a,
                &mut outcome,
            ),
            SA_ERR_INVALID,
            "`shape`",
        );
        let c_npy = c(&format!("npy://{}", npy.display()));
        expect(
            sa_create(c_npy.as_ptr(), 1, shape.as_ptr(), SA_INT32, 0, &mut a),
            SA_ERR_UNSUPPORTED,
            "npy://",
        );
        expect(
            sa_delete(c_npy.as_ptr()),
            SA_ERR_UNSUPPORTED,
            "does not delete",
        );
    }
    ndshm::Array::delete(&t.name).unwrap();
}

/// `sa_list` builds its entries straight from the directory walk (one block, no
/// allocation per entry): the same arrays, fields and order as `ndshm::list`, and every
/// hostile or foreign entry still skipped: a FIFO (never opened blocking), a symbolic
/// link to an array, a directory, a truncated or corrupt header, an empty or foreign
/// file, a temporary name, a name that is not UTF-8. SharedArray segments are read both
/// when the first read holds the whole file and when the trailer needs its own read.
#[test]
fn list_through_c_matches_rust_and_skips_hostile_entries() {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{PermissionsExt, symlink};

    let dir = common::TempDir::new("clist-hostile");
    let p = |f: &str| dir.path.join(f);
    for (f, shape) in [("b", vec![2i64, 3]), ("a", vec![5]), ("c", vec![])] {
        let o = ndshm::CreateOptions::default();
        drop(ndshm::Array::create(&dir.file_name(f), &shape, ndshm::Dtype::Float64, &o).unwrap());
    }
    // SharedArray segments: 1 element (the whole file fits the first read) and 1,000.
    for (f, n) in [("sa-small", 1i64), ("sa-big", 1000)] {
        let g = ndshm::format::Geometry {
            dtype: ndshm::Dtype::Float64,
            order: ndshm::Order::C,
            shape: vec![n],
            nbytes: 8 * n as u64,
            capacity: 8 * n as u64,
            data_offset: 0,
        };
        let mut bytes = vec![0u8; 8 * n as usize];
        bytes.extend_from_slice(&ndshm::format::sharedarray_encode(&g));
        std::fs::write(p(f), bytes).unwrap();
    }
    let header = std::fs::read(p("a")).unwrap();
    std::fs::write(p("truncated"), &header[..500]).unwrap();
    let mut corrupt = header.clone();
    corrupt[200] ^= 0xff; // inside the checksummed bytes, and no valid shadow
    corrupt[2048 + 200] ^= 0xff;
    std::fs::write(p("corrupt"), &corrupt).unwrap();
    std::fs::write(p("empty"), b"").unwrap();
    std::fs::write(p("foreign"), b"just some text, not an array\n").unwrap();
    std::fs::write(p(".ndshm-tmp.x"), &header).unwrap();
    std::fs::write(
        dir.path.join(std::ffi::OsStr::from_bytes(b"not-utf8-\xff")),
        &header,
    )
    .unwrap();
    symlink(p("a"), p("link")).unwrap();
    std::fs::create_dir(p("subdir")).unwrap();
    let fifo = c(p("fifo").to_str().unwrap());
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    // Another user's array is listed as before (reading a header cannot be harmed by
    // its owner), with its owner.
    std::fs::write(p("theirs"), &header).unwrap();
    std::fs::set_permissions(p("theirs"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let other = CString::new(p("theirs").to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path (fails harmlessly unless we are root).
    let chowned = unsafe { libc::chown(other.as_ptr(), 65534, 65534) } == 0;

    let rust = ndshm::list(Some(&dir.path)).unwrap();
    let names: Vec<&str> = rust.iter().map(|i| i.name.as_str()).collect();
    let want: Vec<String> = ["a", "b", "c", "sa-big", "sa-small", "theirs"]
        .iter()
        .map(|f| dir.file_name(f))
        .collect();
    assert_eq!(names, want);
    let mut e: *mut sa_list_entry = null_mut();
    let mut n = 0usize;
    let where_ = c(dir.path.to_str().unwrap());
    // SAFETY: valid pointers; the entries are freed with their count.
    unsafe {
        assert_eq!(sa_list(where_.as_ptr(), &mut e, &mut n), SA_OK);
        let got = std::slice::from_raw_parts(e, n);
        assert_eq!(n, rust.len());
        for (x, i) in got.iter().zip(&rust) {
            let g = &i.geometry;
            assert_eq!(CStr::from_ptr(x.name).to_str().unwrap(), i.name.as_str());
            assert_eq!(x.backend, SA_BACKEND_FILE);
            assert_eq!(x.ndim as usize, g.shape.len());
            assert_eq!(&x.shape[..g.shape.len()], &g.shape[..]);
            assert!(x.shape[g.shape.len()..].iter().all(|&d| d == 0));
            assert_eq!((x.nbytes, x.capacity), (g.nbytes, g.capacity));
            assert_eq!((x.file_size, x.mode, x.uid), (i.file_size, i.mode, i.uid));
            assert_eq!(x.created_ns, i.created_ns);
            assert_eq!(x.creator_pid, i.creator.as_ref().map_or(0, |c| c.pid));
            let host = CStr::from_ptr(x.host.as_ptr()).to_str().unwrap();
            assert_eq!(host, i.creator.as_ref().map_or("", |c| c.hostname.as_str()));
            let alive = i.creator_alive.map_or(-1, |a| a as i32);
            assert_eq!(x.creator_alive, alive);
        }
        let f = |k: usize| got[k].format;
        assert_eq!(
            (f(0), f(3), f(4)),
            (
                SA_FORMAT_V1,
                SA_FORMAT_SHAREDARRAY_NPY2,
                SA_FORMAT_SHAREDARRAY_NPY2
            )
        );
        assert_eq!((got[3].nbytes, got[4].nbytes), (8000, 8));
        if chowned {
            assert_eq!(got[5].uid, 65534);
        }
        sa_list_free(e, n);
    }
}
