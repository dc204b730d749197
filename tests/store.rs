//! The array store (src/store.rs): save, append, list, map, load into shared memory
//! once, delete; metadata in the header (renamed files open); read-only stores; ISF
//! `SharedNumpyStore` directories written by ISF's rules; shared-memory copies never
//! shared between stores or served stale; the C API (tests/c/grow_tool.c `store`).

mod common;

use std::process::Command;

use common::{TempDir, assert_ok, c_program, run, stdout};
use ndshm::{Array, Dtype, EntryFormat, ErrorKind, Order, Outcome, Store};

fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_ne_bytes()).collect()
}

/// Deletes every shared-memory copy the store made of `names`, also when a test fails.
struct Unload(Store, &'static [&'static str]);

impl Unload {
    fn new(s: &Store, names: &'static [&'static str]) -> Unload {
        Unload(Store::open(s.dir(), true).unwrap(), names)
    }
}

impl Drop for Unload {
    fn drop(&mut self) {
        for n in self.1 {
            let _ = self.0.unload(n);
        }
    }
}

#[test]
fn save_append_list_map_load_delete() {
    let d = TempDir::new("store");
    let s = Store::open(&d.path.join("sub"), false).unwrap();
    let _u = Unload::new(&s, &["a", "b"]);
    s.save(
        "a",
        &[2, 2],
        Dtype::Float64,
        Order::C,
        &f64_bytes(&[1.0, 2.0, 3.0, 4.0]),
    )
    .unwrap();
    // Appending creates an array that does not exist yet, then grows it.
    assert_eq!(s.append("b", &[3], Dtype::Int32, 1, &[1u8; 12]).unwrap(), 1);
    assert_eq!(s.append("b", &[3], Dtype::Int32, 2, &[2u8; 24]).unwrap(), 3);
    // No silent conversion: another dtype or row shape is refused.
    let e = s
        .append("b", &[3], Dtype::Float32, 1, &[0u8; 12])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Mismatch, "{e}");
    let e = s
        .append("b", &[4], Dtype::Int32, 1, &[0u8; 16])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Mismatch, "{e}");
    let l = s.list().unwrap();
    let names: Vec<_> = l
        .iter()
        .map(|e| (e.name.as_str(), e.shape.clone()))
        .collect();
    assert_eq!(names, vec![("a", vec![2, 2]), ("b", vec![3, 3])]);
    assert!(l.iter().all(|e| e.format == EntryFormat::V1));

    // Mapped in place: the store's own file, no copy.
    let a = s.open_array("a").unwrap();
    assert_eq!(a.to_vec::<f64>().unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(
        a.name().path(),
        d.path.join("sub").join("a").canonicalize().unwrap()
    );

    // Into shared memory once: the second load attaches the first copy.
    let (c1, o1) = s.load_shm("b", Some(1..3), None).unwrap();
    let (c2, o2) = s.load_shm("b", Some(1..3), None).unwrap();
    assert_eq!((o1, o2), (Outcome::Created, Outcome::Attached));
    assert_eq!(c1.name(), c2.name());
    assert_eq!(c2.shape(), &[2, 3]);
    assert_eq!(c2.to_vec::<i32>().unwrap(), vec![0x0202_0202; 6]);
    // Saving over an array gives new copies (its version is in the copy's name).
    s.save("b", &[1, 3], Dtype::Int32, Order::C, &[7u8; 12])
        .unwrap();
    let (c3, o3) = s.load_shm("b", None, None).unwrap();
    assert_eq!(o3, Outcome::Created);
    assert_ne!(c3.name(), c1.name());
    assert_eq!(c3.to_vec::<i32>().unwrap(), vec![0x0707_0707; 3]);
    assert_eq!(s.unload("b").unwrap(), 2);
    assert_eq!(s.unload("b").unwrap(), 0);

    // Rows out of range and bad names are named errors.
    assert_eq!(
        s.load_shm("a", Some(1..5), None).unwrap_err().kind(),
        ErrorKind::Invalid
    );
    for bad in [
        "",
        "x/y",
        "a__b",
        "Loader.json",
        "Loader.pickle",
        "..",
        ".ndshm-tmp",
    ] {
        let e = s.save(bad, &[1], Dtype::Uint8, Order::C, &[0]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid, "{bad:?}: {e}");
    }
    assert_eq!(
        s.save("a", &[3], Dtype::Float64, Order::C, &[0u8; 8])
            .unwrap_err()
            .kind(),
        ErrorKind::Invalid,
        "a byte count that does not match the shape"
    );

    // Metadata is in the header: a renamed file is still an array of the store.
    std::fs::rename(d.path.join("sub/a"), d.path.join("sub/renamed")).unwrap();
    let e = s.entry("renamed").unwrap();
    assert_eq!(
        (e.shape.as_slice(), e.dtype),
        (&[2i64, 2][..], Dtype::Float64)
    );

    s.delete("renamed").unwrap();
    assert_eq!(s.delete("renamed").unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        s.open_array("renamed").unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn read_only_stores_change_nothing() {
    let d = TempDir::new("store-ro");
    assert_eq!(
        Store::open(&d.path.join("missing"), true)
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    let w = Store::open(&d.path, false).unwrap();
    w.save("x", &[3], Dtype::Uint8, Order::C, &[1, 2, 3])
        .unwrap();
    let r = Store::open(&d.path, true).unwrap();
    let _u = Unload::new(&r, &["x"]);
    for e in [
        r.save("y", &[1], Dtype::Uint8, Order::C, &[0]).unwrap_err(),
        r.append("x", &[], Dtype::Uint8, 1, &[0]).unwrap_err(),
        r.delete("x").unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::ReadOnly, "{e}");
    }
    let a = r.open_array("x").unwrap();
    assert!(a.is_readonly());
    let (c, _) = r.load_shm("x", None, None).unwrap();
    assert_eq!(c.to_vec::<u8>().unwrap(), vec![1, 2, 3]);
    // Not a directory.
    std::fs::write(d.path.join("file"), b"x").unwrap();
    assert_eq!(
        Store::open(&d.path.join("file"), false).unwrap_err().kind(),
        ErrorKind::Invalid
    );
}

/// A directory as ISF's SharedNumpyStore writes it: raw C-order files named
/// `NAME__D0_..._Dn__DTYPE`, plus its loader files and a leftover `.saving` file.
#[test]
fn isf_directories_are_listed_and_loaded() {
    let d = TempDir::new("store-isf");
    let v: Vec<f64> = (0..30).map(f64::from).collect();
    std::fs::write(d.path.join("voltage__10_3__float64"), f64_bytes(&v)).unwrap();
    std::fs::write(d.path.join("spikes__4__int32"), [1u8; 16]).unwrap();
    std::fs::write(d.path.join("Loader.json"), b"{}").unwrap();
    std::fs::write(d.path.join("Loader.pickle"), b"x").unwrap();
    std::fs::write(d.path.join("old__5__float64.saving"), [0u8; 40]).unwrap();
    // Shorter than its name says (ISF died writing it): not listed.
    std::fs::write(d.path.join("short__10__float64"), [0u8; 8]).unwrap();
    let s = Store::open(&d.path, false).unwrap();
    let _u = Unload::new(&s, &["voltage", "spikes"]);
    let l = s.list().unwrap();
    let got: Vec<_> = l
        .iter()
        .map(|e| (e.name.as_str(), e.shape.clone(), e.dtype, e.format))
        .collect();
    assert_eq!(
        got,
        vec![
            ("spikes", vec![4], Dtype::Int32, EntryFormat::Isf),
            ("voltage", vec![10, 3], Dtype::Float64, EntryFormat::Isf),
        ]
    );
    let (c, _) = s.load_shm("voltage", Some(2..5), None).unwrap();
    assert_eq!(c.shape(), &[3, 3]);
    assert_eq!(c.to_vec::<f64>().unwrap(), v[6..15].to_vec());
    // Mapping or appending in ISF's format is the Python package's; here a clear error.
    assert_eq!(
        s.open_array("voltage").unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    let e = s
        .append("voltage", &[3], Dtype::Float64, 1, &[0u8; 24])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    // Saving over an ISF array writes the store's format and removes the ISF file.
    s.save("spikes", &[2], Dtype::Int32, Order::C, &[0u8; 8])
        .unwrap();
    assert!(!d.path.join("spikes__4__int32").exists());
    assert_eq!(s.entry("spikes").unwrap().format, EntryFormat::V1);
    s.delete("voltage").unwrap();
    assert!(!d.path.join("voltage__10_3__float64").exists());
}

/// ISF named shared-memory copies NAME__START_END, so two stores holding the same
/// array name read each other's data. Here the copy's name carries the directory.
#[test]
fn two_stores_never_share_a_copy() {
    let (d1, d2) = (TempDir::new("store-one"), TempDir::new("store-two"));
    let s1 = Store::open(&d1.path, false).unwrap();
    let s2 = Store::open(&d2.path, false).unwrap();
    let (_u1, _u2) = (Unload::new(&s1, &["x"]), Unload::new(&s2, &["x"]));
    s1.save("x", &[2], Dtype::Uint8, Order::C, &[1, 1]).unwrap();
    s2.save("x", &[2], Dtype::Uint8, Order::C, &[2, 2]).unwrap();
    let (a, _) = s1.load_shm("x", None, None).unwrap();
    let (b, o) = s2.load_shm("x", None, None).unwrap();
    assert_eq!(o, Outcome::Created);
    assert_eq!(
        (a.to_vec::<u8>().unwrap(), b.to_vec::<u8>().unwrap()),
        (vec![1, 1], vec![2, 2])
    );
}

/// The C API end to end, in a C process.
#[test]
fn the_store_from_c() {
    let d = TempDir::new("store-c");
    let o = run(Command::new(c_program("tests/c/grow_tool.c"))
        .arg("store")
        .arg(&d.path));
    assert_ok(&o, "grow_tool store");
    let out = stdout(&o);
    assert!(
        out.contains("entry series format 0 ndim 2 shape 1000 3"),
        "{out}"
    );
    assert!(out.contains("mapped 1000 rows"), "{out}");
    assert!(
        out.contains("loaded 10 rows first 10 outcomes 1 0 same 1"),
        "{out}"
    );
    assert!(out.contains("unloaded 1"), "{out}");
    assert!(out.trim_end().ends_with("ok"), "{out}");
    assert!(
        Array::attach(
            &format!("file://{}/series", d.path.display()),
            &Default::default()
        )
        .is_err()
    );
}

/// An appender holding an array mapped never appends into a file that another store
/// saved over or deleted (those rows would be lost): it follows the name.
#[test]
fn appends_follow_an_array_saved_over_or_deleted_elsewhere() {
    let d = TempDir::new("store-follow");
    let a = Store::open(&d.path, false).unwrap();
    let b = Store::open(&d.path, false).unwrap();
    assert_eq!(a.append("t", &[2], Dtype::Uint8, 1, &[1, 1]).unwrap(), 1);
    assert_eq!(a.append("t", &[2], Dtype::Uint8, 1, &[2, 2]).unwrap(), 2);
    b.save("t", &[5, 2], Dtype::Uint8, Order::C, &[9; 10])
        .unwrap();
    assert_eq!(a.append("t", &[2], Dtype::Uint8, 1, &[3, 3]).unwrap(), 6);
    let v = b.open_array("t").unwrap().to_vec::<u8>().unwrap();
    assert_eq!(&v[10..], &[3, 3]);
    b.delete("t").unwrap();
    assert_eq!(
        a.append("t", &[2], Dtype::Uint8, 1, &[4, 4]).unwrap(),
        1,
        "created anew"
    );
    // A handle of the replaced array says so.
    let mut old = a.open_array("t").unwrap();
    b.save("t", &[1, 2], Dtype::Uint8, Order::C, &[0; 2])
        .unwrap();
    assert!(old.is_stale());
    assert_eq!(old.append(&[1u8, 1]).unwrap_err().kind(), ErrorKind::Stale);
}

/// Found in review: a store's cached handle must not append into a file that was
/// deleted or replaced by other means (ndshm's delete, `rm`), and a shared-memory copy
/// must not be served after the array's rows changed.
#[test]
fn appends_follow_deletes_by_anyone_and_copies_follow_changes() {
    let d = TempDir::new("store-rm");
    let s = Store::open(&d.path, false).unwrap();
    let _u = Unload::new(&s, &["t"]);
    s.append("t", &[2], Dtype::Uint8, 1, &[1, 1]).unwrap();
    s.append("t", &[2], Dtype::Uint8, 1, &[2, 2]).unwrap();
    Array::delete(&format!("file://{}/t", d.path.display())).unwrap();
    assert_eq!(s.append("t", &[2], Dtype::Uint8, 1, &[3, 3]).unwrap(), 1);
    std::fs::remove_file(d.path.join("t")).unwrap();
    assert_eq!(s.append("t", &[2], Dtype::Uint8, 1, &[4, 4]).unwrap(), 1);
    assert_eq!(s.append("t", &[2], Dtype::Uint8, 1, &[5, 5]).unwrap(), 2);
    let (c1, _) = s.load_shm("t", Some(0..2), None).unwrap();
    assert_eq!(c1.to_vec::<u8>().unwrap(), vec![4, 4, 5, 5]);
    let mut a = s.open_array("t").unwrap();
    a.set_len(1).unwrap();
    a.append(&[9u8, 9]).unwrap();
    let (c2, _) = s.load_shm("t", Some(0..2), None).unwrap();
    assert_eq!(
        c2.to_vec::<u8>().unwrap(),
        vec![4, 4, 9, 9],
        "not the stale copy"
    );
}

/// One store used from several threads at once (as the C API allows): appends to one
/// array and to separate arrays are all kept, whole.
#[test]
fn one_store_from_many_threads() {
    let d = TempDir::new("store-threads");
    let s = Store::open(&d.path, false).unwrap();
    std::thread::scope(|sc| {
        for t in 0..4u8 {
            let s = &s;
            sc.spawn(move || {
                for _ in 0..500 {
                    s.append("shared", &[4], Dtype::Uint8, 1, &[t; 4]).unwrap();
                    s.append(&format!("own{t}"), &[4], Dtype::Uint8, 1, &[t; 4])
                        .unwrap();
                }
            });
        }
    });
    let v = s.open_array("shared").unwrap().to_vec::<u8>().unwrap();
    assert_eq!(v.len(), 4 * 500 * 4);
    assert!(
        v.chunks(4).all(|r| r.iter().all(|&x| x == r[0])),
        "rows whole"
    );
    for t in 0..4u8 {
        assert_eq!(v.chunks(4).filter(|r| r[0] == t).count(), 500);
        let own = s.open_array(&format!("own{t}")).unwrap();
        assert_eq!(own.shape(), &[500, 4]);
    }
}

/// Rows copied with pread into a caller's buffer: both formats; sizes checked; rows of
/// a Fortran-order array refused (not contiguous).
#[test]
fn reading_rows_into_a_buffer() {
    let d = TempDir::new("store-read");
    let s = Store::open(&d.path, false).unwrap();
    let v: Vec<f64> = (0..30).map(f64::from).collect();
    s.save("c", &[10, 3], Dtype::Float64, Order::C, &f64_bytes(&v))
        .unwrap();
    s.save("f", &[10, 3], Dtype::Float64, Order::F, &f64_bytes(&v))
        .unwrap();
    std::fs::write(d.path.join("raw__10_3__float64"), f64_bytes(&v)).unwrap();
    for name in ["c", "raw"] {
        let mut buf = vec![0u8; 3 * 3 * 8];
        let e = s.read_into(name, Some(2..5), &mut buf).unwrap();
        assert_eq!(e.shape, vec![10, 3]);
        assert_eq!(buf, f64_bytes(&v[6..15]), "{name}");
        let mut all = vec![0u8; 30 * 8];
        s.read_into(name, None, &mut all).unwrap();
        assert_eq!(all, f64_bytes(&v));
        assert_eq!(
            s.read_into(name, Some(2..5), &mut all).unwrap_err().kind(),
            ErrorKind::Mismatch
        );
        assert_eq!(
            s.read_into(name, Some(8..12), &mut buf).unwrap_err().kind(),
            ErrorKind::Invalid
        );
    }
    let mut all = vec![0u8; 30 * 8];
    s.read_into("f", None, &mut all).unwrap();
    assert_eq!(all, f64_bytes(&v), "a whole Fortran-order array");
    let mut buf = vec![0u8; 3 * 3 * 8];
    assert_eq!(
        s.read_into("f", Some(2..5), &mut buf).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    assert_eq!(
        s.read_into("none", None, &mut buf).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}
