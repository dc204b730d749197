//! The safe Rust API against real shared memory and files.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{TempDir, TempName};
use ndshm::{
    Array, AttachOptions, Complex, CreateOptions, Dtype, ErrorKind, Expect, Flush, Order,
    SegmentFormat, ShapeExpect, Share, SharedArrayAbi, State,
};

fn rw() -> AttachOptions {
    AttachOptions::default()
}
fn ro() -> AttachOptions {
    AttachOptions {
        readonly: true,
        ..Default::default()
    }
}

#[test]
fn create_attach_same_bytes() {
    let t = TempName::new("same");
    let mut a = Array::create(&t.name, &[3, 4], Dtype::Float64, &CreateOptions::default()).unwrap();
    assert_eq!(a.name().as_str(), t.shm());
    assert!(
        a.to_vec::<f64>().unwrap().iter().all(|&x| x == 0.0),
        "zero-filled"
    );
    let values: Vec<f64> = (0..12).map(|i| i as f64 * 0.5).collect();
    a.copy_from(&values).unwrap();
    assert_eq!(a.as_ptr() as usize % 4096, 0, "data is page aligned");
    let b = Array::attach(&t.shm(), &ro()).unwrap();
    assert_eq!(b.shape(), &[3, 4]);
    assert_eq!(b.dtype(), Dtype::Float64);
    assert_eq!(b.order(), Order::C);
    assert_eq!(b.strides(), vec![32, 8]);
    assert_eq!(b.get::<f64>(11).unwrap(), 5.5);
    assert_eq!(b.to_vec::<f64>().unwrap(), values);
    assert_eq!(
        b.format(),
        SegmentFormat::V1 {
            minor: ndshm::format::VERSION_MINOR
        }
    );
    // Writes through one mapping are seen through the other.
    a.set(0, 42.0f64).unwrap();
    assert_eq!(b.get::<f64>(0).unwrap(), 42.0);
    assert_eq!(b.get::<f64>(12).unwrap_err().kind(), ErrorKind::Invalid);
    let mut out = vec![0.0f64; 11];
    assert_eq!(b.copy_to(&mut out).unwrap_err().kind(), ErrorKind::Invalid);
    // The unsafe views, under their contract: nobody writes while they live.
    // SAFETY: no other handle writes this array during the borrow.
    assert_eq!(unsafe { b.as_slice::<f64>() }.unwrap()[11], 5.5);
    // SAFETY: no other process or handle uses the data during the borrow.
    unsafe { a.as_mut_slice::<f64>() }.unwrap()[1] = -1.0;
    assert_eq!(b.get::<f64>(1).unwrap(), -1.0);
    Array::delete(&t.name).unwrap();
}

#[test]
fn typed_slice_checks_dtype() {
    let t = TempName::new("dtype");
    let mut a = Array::create(&t.name, &[5], Dtype::Int32, &CreateOptions::default()).unwrap();
    let e = a.to_vec::<f64>().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Mismatch);
    assert!(
        e.message().contains("int32") && e.message().contains("float64"),
        "{e}"
    );
    assert!(a.set(0, 1u32).is_err());
    // SAFETY: the dtype check fails before any slice exists.
    assert!(unsafe { a.as_mut_slice::<u32>() }.is_err());
    a.set(4, -7i32).unwrap();
    assert_eq!(a.to_vec::<i32>().unwrap(), &[0, 0, 0, 0, -7]);
    Array::delete(&t.name).unwrap();
}

#[test]
fn every_dtype_round_trips() {
    for d in ndshm::dtype::ALL_DTYPES {
        let t = TempName::new("all");
        let mut a = Array::create(&t.name, &[2, 3], d, &CreateOptions::default()).unwrap();
        let v: Vec<u8> = (1..=d.itemsize() as u8).collect();
        a.fill_bytes(&v).unwrap();
        let b = Array::attach(&t.name, &ro()).unwrap();
        assert_eq!(b.dtype(), d);
        assert_eq!(b.nbytes(), 6 * d.itemsize());
        // SAFETY: nbytes bytes are mapped at as_ptr.
        let bytes = unsafe { std::slice::from_raw_parts(b.as_ptr(), b.nbytes()) };
        assert!(bytes.chunks(d.itemsize()).all(|c| c == v.as_slice()), "{d}");
        Array::delete(&t.name).unwrap();
    }
}

#[test]
fn fill_typed_values() {
    let t = TempName::new("fill");
    let mut a = Array::create(
        &t.name,
        &[1000],
        Dtype::Complex128,
        &CreateOptions::default(),
    )
    .unwrap();
    a.fill(Complex { re: 1.5, im: -2.0 }).unwrap();
    assert!(
        a.to_vec::<Complex<f64>>()
            .unwrap()
            .iter()
            .all(|c| c.re == 1.5 && c.im == -2.0)
    );
    assert!(a.fill(1.0f64).is_err(), "fill checks the dtype");
    assert_eq!(
        a.fill_bytes(&[1, 2]).unwrap_err().kind(),
        ErrorKind::Invalid
    );
    Array::delete(&t.name).unwrap();
}

#[test]
fn read_only_handle_refuses_writes() {
    let t = TempName::new("ro");
    let _a = Array::create(&t.name, &[4], Dtype::Uint8, &CreateOptions::default()).unwrap();
    let mut b = Array::attach(&t.name, &ro()).unwrap();
    assert!(b.is_readonly());
    assert_eq!(b.as_mut_ptr().unwrap_err().kind(), ErrorKind::ReadOnly);
    // SAFETY: refused before any slice exists.
    assert_eq!(
        unsafe { b.as_mut_slice::<u8>() }.unwrap_err().kind(),
        ErrorKind::ReadOnly
    );
    assert_eq!(b.set(0, 1u8).unwrap_err().kind(), ErrorKind::ReadOnly);
    assert_eq!(
        b.copy_from(&[1u8; 4]).unwrap_err().kind(),
        ErrorKind::ReadOnly
    );
    assert_eq!(b.fill(3u8).unwrap_err().kind(), ErrorKind::ReadOnly);
    Array::delete(&t.name).unwrap();
}

#[test]
fn fortran_order_and_zero_sizes() {
    let t = TempName::new("f");
    let a = Array::create(
        &t.name,
        &[3, 4, 5],
        Dtype::Float32,
        &CreateOptions::default().order(Order::F),
    )
    .unwrap();
    let b = Array::attach(&t.name, &rw()).unwrap();
    assert_eq!(b.order(), Order::F);
    assert_eq!(b.strides(), vec![4, 12, 48]);
    drop((a, b));
    Array::delete(&t.name).unwrap();

    for shape in [&[][..], &[0][..], &[5, 0, 3][..]] {
        let t = TempName::new("zero");
        let a = Array::create(&t.name, shape, Dtype::Int16, &CreateOptions::default()).unwrap();
        let b = Array::attach(&t.name, &ro()).unwrap();
        assert_eq!(b.shape(), shape);
        let expect = if shape.is_empty() { 1 } else { 0 };
        assert_eq!(b.len(), expect);
        assert_eq!(a.to_vec::<i16>().unwrap().len(), expect);
        // SAFETY: nobody writes this array.
        assert_eq!(unsafe { a.as_slice::<i16>() }.unwrap().len(), expect);
        Array::delete(&t.name).unwrap();
    }
}

#[test]
fn checked_attach() {
    let t = TempName::new("chk");
    let _a = Array::create(&t.name, &[3, 4], Dtype::Float64, &CreateOptions::default()).unwrap();
    let ok = Expect {
        shape: ShapeExpect::Dims(vec![Some(3), None]),
        dtype: Some(Dtype::Float64),
        order: Some(Order::C),
    };
    Array::attach_checked(&t.name, &ro(), &Expect::default().ndim(2)).unwrap();
    Array::attach_checked(&t.name, &ro(), &Expect::default().shape(&[3, 4])).unwrap();
    Array::attach_checked(&t.name, &ro(), &ok).unwrap();
    for bad in [
        Expect::default().shape(&[4, 3]),
        Expect::default().shape(&[3, 4, 1]),
        Expect::default().ndim(3),
        Expect {
            dtype: Some(Dtype::Float32),
            ..Default::default()
        },
        Expect {
            order: Some(Order::F),
            ..Default::default()
        },
    ] {
        let e = Array::attach_checked(&t.name, &ro(), &bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Mismatch);
        assert!(
            e.message().contains("expected") && e.message().contains("found shape [3, 4]"),
            "{e}"
        );
    }
    Array::delete(&t.name).unwrap();
}

#[test]
fn exists_force_and_delete_while_attached() {
    let t = TempName::new("force");
    let mut a = Array::create(&t.name, &[8], Dtype::Int64, &CreateOptions::default()).unwrap();
    a.fill(7i64).unwrap();
    let e = Array::create(&t.name, &[8], Dtype::Int64, &CreateOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Exists);
    assert!(e.message().contains("already exists"), "{e}");

    // Delete while attached: the mapping stays valid, new attaches fail.
    Array::delete(&t.name).unwrap();
    assert_eq!(a.to_vec::<i64>().unwrap(), &[7; 8]);
    a.set(0, 1i64).unwrap();
    assert_eq!(a.get::<i64>(0).unwrap(), 1);
    assert_eq!(
        Array::attach(&t.name, &rw()).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        Array::delete(&t.name).unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // Force replaces: the old mapping keeps the old data.
    let b = Array::create(&t.name, &[2, 2], Dtype::Uint8, &CreateOptions::default()).unwrap();
    let c = Array::create(
        &t.name,
        &[5],
        Dtype::Float32,
        &CreateOptions::default().force(true),
    )
    .unwrap();
    let d = Array::attach(&t.name, &ro()).unwrap();
    assert_eq!((d.shape(), d.dtype()), (&[5][..], Dtype::Float32));
    assert_eq!(b.shape(), &[2, 2]);
    drop((b, c, d));
    Array::delete(&t.name).unwrap();
}

#[test]
fn force_never_replaces_a_foreign_file() {
    let t = TempName::new("foreign");
    std::fs::write(t.path(), b"somebody else's data, not an array").unwrap();
    let e = Array::create(
        &t.name,
        &[1],
        Dtype::Uint8,
        &CreateOptions::default().force(true),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Exists);
    let e = Array::delete(&t.name).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Format);
    assert!(e.message().contains("refusing"), "{e}");
    assert!(t.path().exists());
}

#[test]
fn permissions_ignore_umask() {
    // SAFETY: umask is process-wide; the other tests only create 0600-or-wider files
    // and check nothing that a stricter umask changes, which is the point.
    let old = unsafe { libc::umask(0o077) };
    for (share, mode) in [
        (Share::Owner, 0o600),
        (Share::Group, 0o660),
        (Share::All, 0o666),
    ] {
        let t = TempName::new("perm");
        let _a = Array::create(
            &t.name,
            &[1],
            Dtype::Uint8,
            &CreateOptions::default().share(share),
        )
        .unwrap();
        let m = std::fs::metadata(t.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(m, mode, "{share:?}");
        assert_eq!(ndshm::info(&t.name).unwrap().mode, mode);
        Array::delete(&t.name).unwrap();
    }
    // SAFETY: restores the previous mask.
    unsafe { libc::umask(old) };
}

#[test]
fn file_backend_and_msync() {
    let dir = TempDir::new("files");
    let name = dir.file_name("a.arr");
    let mut a = Array::create(&name, &[10, 10], Dtype::Float64, &CreateOptions::default()).unwrap();
    a.fill(2.5f64).unwrap();
    for (f, inv) in [
        (Flush::Sync, false),
        (Flush::Async, false),
        (Flush::Sync, true),
    ] {
        a.msync(f, inv).unwrap();
    }
    // The bytes are in the file itself, at the recorded data offset.
    let raw = std::fs::read(dir.path.join("a.arr")).unwrap();
    let v = f64::from_ne_bytes(raw[8192..8200].try_into().unwrap());
    assert_eq!(v, 2.5);
    let b = Array::attach(&name, &ro()).unwrap();
    b.msync(Flush::Sync, false).unwrap();
    assert_eq!(b.get::<f64>(99).unwrap(), 2.5);
    let s = TempName::new("msync");
    let c = Array::create(&s.name, &[10], Dtype::Uint8, &CreateOptions::default()).unwrap();
    c.msync(Flush::Sync, false).unwrap();
    Array::delete(&s.name).unwrap();
    Array::delete(&name).unwrap();
    assert!(!dir.path.join("a.arr").exists());
}

#[test]
fn mlock_and_munlock() {
    let t = TempName::new("mlock");
    let a = Array::create(&t.name, &[4096], Dtype::Uint8, &CreateOptions::default()).unwrap();
    a.mlock().unwrap();
    a.munlock().unwrap();
    Array::delete(&t.name).unwrap();
}

#[test]
fn sharedarray_layout_written() {
    let t = TempName::new("salayout");
    let mut a = Array::create(
        &t.name,
        &[3, 4],
        Dtype::Int32,
        &CreateOptions::default().sharedarray_format(true),
    )
    .unwrap();
    unsafe { a.as_mut_slice::<i32>() }
        .unwrap()
        .iter_mut()
        .enumerate()
        .for_each(|(i, x)| *x = i as i32);
    let raw = std::fs::read(t.path()).unwrap();
    assert_eq!(
        raw.len(),
        48 + 548,
        "data + numpy-2 trailer, as SharedArray writes it"
    );
    assert_eq!(&raw[48..61], b"[SharedArray]");
    assert_eq!(
        i32::from_ne_bytes(raw[4..8].try_into().unwrap()),
        1,
        "data at offset 0"
    );
    assert_eq!(
        i32::from_ne_bytes(raw[48 + 24..48 + 28].try_into().unwrap()),
        5,
        "NPY_INT"
    );
    let b = Array::attach(&t.name, &ro()).unwrap();
    assert_eq!(
        b.format(),
        SegmentFormat::SharedArray(SharedArrayAbi::Numpy2)
    );
    assert_eq!(b.get::<i32>(11).unwrap(), 11);
    let e = Array::create(
        "x",
        &[2],
        Dtype::Int32,
        &CreateOptions::default()
            .sharedarray_format(true)
            .order(Order::F),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    Array::delete(&t.name).unwrap();
}

#[test]
fn info_and_list_fields() {
    let dir = TempDir::new("list");
    let a_name = dir.file_name("a");
    let b_name = dir.file_name("b");
    let _a = Array::create(
        &a_name,
        &[2, 3, 4],
        Dtype::Uint16,
        &CreateOptions::default().order(Order::F),
    )
    .unwrap();
    let _b = Array::create(
        &b_name,
        &[7],
        Dtype::Float64,
        &CreateOptions::default().sharedarray_format(true),
    )
    .unwrap();
    std::fs::write(dir.path.join("junk"), vec![0xABu8; 10000]).unwrap();
    std::fs::write(dir.path.join("empty"), b"").unwrap();
    std::fs::create_dir(dir.path.join("subdir")).unwrap();
    let l = ndshm::list(Some(&dir.path)).unwrap();
    assert_eq!(l.len(), 2, "{l:#?}");
    let a = &l[0];
    assert_eq!(a.name.as_str(), a_name);
    assert_eq!(
        a.format,
        SegmentFormat::V1 {
            minor: ndshm::format::VERSION_MINOR
        }
    );
    assert_eq!(
        (a.geometry.dtype, a.geometry.order),
        (Dtype::Uint16, Order::F)
    );
    assert_eq!(a.geometry.shape, vec![2, 3, 4]);
    assert_eq!(a.geometry.nbytes, 48);
    assert_eq!(a.state, State::Ready);
    let me = std::process::id() as i32;
    assert_eq!(a.creator.as_ref().unwrap().pid, me);
    assert_eq!(a.creator_alive, Some(true));
    assert_eq!(a.mode, 0o600);
    assert!(a.created_ns > 1_600_000_000_000_000_000);
    let b = &l[1];
    assert_eq!(b.format, SegmentFormat::SharedArray(SharedArrayAbi::Numpy2));
    assert_eq!(
        (b.geometry.dtype, b.geometry.shape.clone()),
        (Dtype::Float64, vec![7])
    );
    assert!(b.creator.is_none() && b.creator_alive.is_none());
    assert_eq!(ndshm::info(&a_name).unwrap(), *a);
    assert_eq!(
        ndshm::info(&dir.file_name("junk")).unwrap_err().kind(),
        ErrorKind::Format
    );
    assert_eq!(
        ndshm::info(&dir.file_name("none")).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        ndshm::list(Some(&dir.path.join("none")))
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn list_shared_memory_shows_new_array() {
    let t = TempName::new("lshm");
    let _a = Array::create(&t.name, &[3], Dtype::Int8, &CreateOptions::default()).unwrap();
    let l = ndshm::list(None).unwrap();
    let e = l
        .iter()
        .find(|i| i.name.as_str() == t.shm())
        .expect("listed");
    assert_eq!(e.geometry.shape, vec![3]);
    assert_eq!(e.backend(), &ndshm::Backend::Shm(t.name.clone()));
    Array::delete(&t.name).unwrap();
    assert!(
        !ndshm::list(None)
            .unwrap()
            .iter()
            .any(|i| i.name.as_str() == t.shm())
    );
}

#[test]
fn invalid_arguments_are_named_errors() {
    let d = CreateOptions::default();
    let cases: Vec<(ndshm::Error, &str)> = vec![
        (
            Array::create("a/b", &[1], Dtype::Uint8, &d).unwrap_err(),
            "'/'",
        ),
        (
            Array::create("", &[1], Dtype::Uint8, &d).unwrap_err(),
            "empty",
        ),
        (
            Array::create("ftp://x", &[1], Dtype::Uint8, &d).unwrap_err(),
            "scheme",
        ),
        (
            Array::create("x", &[-1], Dtype::Uint8, &d).unwrap_err(),
            "negative",
        ),
        (
            Array::create("x", &[1 << 40, 1 << 40], Dtype::Uint8, &d).unwrap_err(),
            "overflow",
        ),
        (
            Array::create("x", &[1; 33], Dtype::Uint8, &d).unwrap_err(),
            "ndim 33",
        ),
        (Array::attach(&"x".repeat(300), &ro()).unwrap_err(), "255"),
    ];
    for (e, word) in cases {
        assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
        assert!(e.message().contains(word), "{e} should mention {word}");
    }
}

#[test]
fn attach_wait_times_out_and_succeeds() {
    let t = TempName::new("wait");
    let start = std::time::Instant::now();
    let e = Array::attach(&t.name, &ro().wait(std::time::Duration::from_millis(100))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(start.elapsed() >= std::time::Duration::from_millis(100));
    assert!(e.message().contains("no such array"), "{e}");
    let name = t.name.clone();
    let creator = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        Array::create(&name, &[1], Dtype::Uint8, &CreateOptions::default()).unwrap()
    });
    let b = Array::attach(&t.name, &ro().wait(std::time::Duration::MAX)).unwrap();
    assert_eq!(b.shape(), &[1]);
    drop(creator.join().unwrap());
    Array::delete(&t.name).unwrap();
}
