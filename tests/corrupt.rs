//! Corrupt, truncated and foreign segments, written byte by byte: attach gives
//! SA_ERR_FORMAT (or NOT_READY for a header not yet written), never a crash or an
//! out-of-bounds read; list skips them.

mod common;

use std::time::Duration;

use common::TempName;
use ndshm::format::{self, off};
use ndshm::{Array, AttachOptions, CreateOptions, Dtype, ErrorKind};

fn ro() -> AttachOptions {
    AttachOptions {
        readonly: true,
        ..Default::default()
    }
}

/// A valid v1 segment's bytes (made by the library, read back).
fn valid_segment(shape: &[i64]) -> Vec<u8> {
    let t = TempName::new("tmpl");
    drop(Array::create(&t.name, shape, Dtype::Float64, &CreateOptions::default()).unwrap());
    std::fs::read(t.path()).unwrap()
}

fn put(b: &mut [u8], o: usize, v: &[u8]) {
    b[o..o + v.len()].copy_from_slice(v);
}

fn fix_crc(b: &mut [u8]) {
    let crc = format::header_checksum(b);
    put(b, off::CHECKSUM, &crc.to_ne_bytes());
}

fn attach_bytes(tag: &str, bytes: &[u8]) -> (ndshm::Error, bool) {
    let t = TempName::new(tag);
    std::fs::write(t.path(), bytes).unwrap();
    let e = Array::attach(&t.name, &ro()).expect_err("must not attach");
    let listed = ndshm::list(None)
        .unwrap()
        .iter()
        .any(|i| i.name.as_str() == t.shm());
    // Attaching read-write and info must fail the same way.
    let e2 = Array::attach(&t.name, &AttachOptions::default()).unwrap_err();
    assert_eq!(e.kind(), e2.kind());
    (e, listed)
}

#[test]
fn valid_template_attaches() {
    let t = TempName::new("valid");
    std::fs::write(t.path(), valid_segment(&[4, 4])).unwrap();
    let a = Array::attach(&t.name, &ro()).unwrap();
    assert_eq!(a.shape(), &[4, 4]);
}

#[test]
fn corrupt_segments_are_format_errors() {
    let good = valid_segment(&[16, 16]);
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let random: Vec<u8> = (0..20000)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng as u8
        })
        .collect();
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("random", random, "not an ndshm or SharedArray segment"),
        (
            "text",
            b"hello, I am a text file\n".repeat(100),
            "not an ndshm",
        ),
        ("short", b"NDSHMARR".to_vec(), "truncated"),
        ("truncated", good[..good.len() - 100].to_vec(), "truncated"),
        ("headeronly", good[..5000].to_vec(), "truncated"),
    ];
    let mut edit = |tag: &'static str, f: &dyn Fn(&mut Vec<u8>), crc: bool, want: &'static str| {
        let mut b = good.clone();
        f(&mut b);
        if crc {
            fix_crc(&mut b);
        }
        cases.push((tag, b, want));
    };
    edit("magic", &|b| b[0] = b'X', false, "not an ndshm");
    edit("checksum", &|b| b[off::SHAPE] ^= 0x01, false, "checksum");
    edit(
        "ndim1000",
        &|b| put(b, off::NDIM, &1000u32.to_ne_bytes()),
        true,
        "ndim 1000",
    );
    edit(
        "bigshape",
        &|b| {
            put(b, off::SHAPE, &1_000_000i64.to_ne_bytes());
            put(b, off::NBYTES, &(1_000_000u64 * 16 * 8).to_ne_bytes());
            put(b, off::CAPACITY, &(1_000_000u64 * 16 * 8).to_ne_bytes());
        },
        true,
        "truncated segment",
    );
    edit(
        "nbytes",
        &|b| put(b, off::NBYTES, &7u64.to_ne_bytes()),
        true,
        "does not match",
    );
    edit(
        "negdim",
        &|b| put(b, off::SHAPE + 8, &(-16i64).to_ne_bytes()),
        true,
        "negative",
    );
    edit(
        "overflow",
        &|b| {
            put(b, off::SHAPE, &(1i64 << 40).to_ne_bytes());
            put(b, off::SHAPE + 8, &(1i64 << 40).to_ne_bytes());
        },
        true,
        "overflow",
    );
    edit(
        "offset",
        &|b| put(b, off::DATA_OFFSET, &u64::MAX.to_ne_bytes()),
        true,
        "page aligned",
    );
    edit(
        "offsetwrap",
        &|b| put(b, off::DATA_OFFSET, &(u64::MAX - 4095).to_ne_bytes()),
        true,
        "truncated",
    );
    edit(
        "dtype",
        &|b| put(b, off::DTYPE, &77i32.to_ne_bytes()),
        true,
        "dtype code 77",
    );
    edit(
        "itemsize",
        &|b| put(b, off::ITEMSIZE, &4u32.to_ne_bytes()),
        true,
        "item size",
    );
    edit(
        "order",
        &|b| put(b, off::ORDER, &9u32.to_ne_bytes()),
        true,
        "order 9",
    );
    edit(
        "major",
        &|b| put(b, off::MAJOR, &2u16.to_ne_bytes()),
        true,
        "newer",
    );
    edit(
        "state",
        &|b| put(b, off::STATE, &77u32.to_ne_bytes()),
        false,
        "unknown header state",
    );

    for (tag, bytes, want) in cases {
        let (e, listed) = attach_bytes(tag, &bytes);
        assert_eq!(e.kind(), ErrorKind::Format, "{tag}: {e}");
        assert!(e.message().contains(want), "{tag}: {e} (want {want:?})");
        assert!(!listed, "{tag} must not be listed");
    }
}

#[test]
fn newer_minor_version_is_read() {
    let mut b = valid_segment(&[2]);
    put(&mut b, off::MINOR, &7u16.to_ne_bytes());
    put(&mut b, 900, &[0xEE; 8]); // a field a newer minor added in reserved space
    fix_crc(&mut b);
    let t = TempName::new("minor");
    std::fs::write(t.path(), &b).unwrap();
    let a = Array::attach(&t.name, &ro()).unwrap();
    assert_eq!(a.format(), ndshm::SegmentFormat::V1 { minor: 7 });
}

/// Arrays get their name only once their header is written, so an empty or all-zero
/// file under an array's name is not an array in the making: it is a format error, and
/// delete refuses it like any foreign file.
#[test]
fn empty_and_zero_files_are_not_arrays() {
    for (tag, bytes) in [("zero", vec![]), ("zeros", vec![0u8; 20000])] {
        let (e, listed) = attach_bytes(tag, &bytes);
        assert_eq!(e.kind(), ErrorKind::Format, "{tag}: {e}");
        assert!(!listed);
        let t = TempName::new(tag);
        std::fs::write(t.path(), &bytes).unwrap();
        let e = Array::delete(&t.name).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Format, "{tag}: {e}");
        assert!(t.path().exists(), "{tag} must not be deleted");
    }
}

/// A header still marked INITIALISING (what a loader shows while it fills an array in
/// place) written by `creator`.
fn initialising_segment(t: &TempName, creator: i32) {
    let mut b = valid_segment(&[8]);
    put(&mut b, off::STATE, &0u32.to_ne_bytes());
    put(&mut b, off::CREATOR_PID, &creator.to_ne_bytes());
    put(&mut b, off::CREATOR_START, &0u64.to_ne_bytes());
    fix_crc(&mut b);
    std::fs::write(t.path(), &b).unwrap();
}

#[test]
fn dead_creator_is_owner_died_at_once() {
    let t = TempName::new("dead");
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    initialising_segment(&t, gone.id() as i32);
    let e = Array::attach(&t.name, &ro()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OwnerDied, "{e}");
    assert!(e.message().contains("died"), "{e}");
    // A waiting attach does not wait for a dead creator.
    let start = std::time::Instant::now();
    let e = Array::attach(&t.name, &ro().wait(Duration::MAX)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OwnerDied, "{e}");
    assert!(start.elapsed() < Duration::from_secs(1));
    let i = ndshm::info(&t.name).unwrap();
    assert_eq!(i.state, ndshm::State::Initialising);
    assert_eq!(i.creator_alive, Some(false));
    // Abandoned arrays can be deleted without asking for in-progress ones.
    Array::delete(&t.name).unwrap();
}

#[test]
fn live_creator_is_not_ready_and_protected_until_it_dies() {
    let t = TempName::new("live");
    let mut alive = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    initialising_segment(&t, alive.id() as i32);
    let e = Array::attach(&t.name, &ro()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotReady, "{e}");
    assert!(e.message().contains(&format!("pid {}", alive.id())), "{e}");
    let e = Array::delete(&t.name).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotReady, "{e}");
    assert_eq!(e.option(), Some(ndshm::Opt::InProgress));
    assert!(e.message().contains("in_progress"), "{e}");
    assert!(t.path().exists());
    // A waiter sees the creator die and stops waiting well within its timeout.
    let pid = alive.id();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        alive.kill().unwrap();
        alive.wait().unwrap();
    });
    let start = std::time::Instant::now();
    let e = Array::attach(&t.name, &ro().wait(Duration::from_secs(30))).unwrap_err();
    killer.join().unwrap();
    assert_eq!(e.kind(), ErrorKind::OwnerDied, "{e}");
    assert!(e.message().contains(&format!("pid {pid}")), "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    Array::delete(&t.name).unwrap();

    // With a live creator, in_progress deletes it on request.
    let mut alive = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    initialising_segment(&t, alive.id() as i32);
    let opts = ndshm::DeleteOptions { in_progress: true };
    Array::delete_with(&t.name, &opts).unwrap();
    assert!(!t.path().exists());
    alive.kill().unwrap();
    alive.wait().unwrap();
}

/// SharedArray trailer of either layout, built by hand from the brief.
fn sa_file(
    data: &[u8],
    maxdims: usize,
    typenum: i32,
    itemsize: i32,
    dims: &[i64],
    size: u64,
) -> Vec<u8> {
    let mut f = data.to_vec();
    let mut t = vec![0u8; 36 + 8 * maxdims];
    t[..13].copy_from_slice(b"[SharedArray]");
    put(&mut t, 16, &size.to_ne_bytes());
    put(&mut t, 24, &typenum.to_ne_bytes());
    put(&mut t, 28, &itemsize.to_ne_bytes());
    put(&mut t, 32, &(dims.len() as i32).to_ne_bytes());
    for (i, d) in dims.iter().enumerate() {
        put(&mut t, 36 + 8 * i, &d.to_ne_bytes());
    }
    f.extend_from_slice(&t);
    f
}

#[test]
fn hostile_sharedarray_trailers() {
    let data = vec![0u8; 48];
    let cases: Vec<(&str, Vec<u8>, ErrorKind, &str)> = vec![
        // The SharedArray bug: a trailer claiming 10^6 elements over a tiny file.
        (
            "sahuge",
            sa_file(&data, 64, 12, 8, &[1_000_000], 8_000_000),
            ErrorKind::Format,
            "exceed",
        ),
        (
            "sasize",
            sa_file(&data, 64, 5, 4, &[3, 4], 40),
            ErrorKind::Format,
            "does not match",
        ),
        (
            "sandims",
            {
                let mut f = sa_file(&data, 64, 5, 4, &[12], 48);
                let at = f.len() - 548 + 32;
                put(&mut f, at, &100_000i32.to_ne_bytes());
                f
            },
            ErrorKind::Format,
            "ndims 100000",
        ),
        (
            "sandims40",
            sa_file(&data, 64, 5, 4, &[1; 40], 4),
            ErrorKind::Unsupported,
            "40 dimensions",
        ),
        (
            "saobject",
            sa_file(&data, 64, 17, 8, &[6], 48),
            ErrorKind::Unsupported,
            "type number 17",
        ),
        (
            "sanegative",
            sa_file(&data, 32, 5, 4, &[-12], 48),
            ErrorKind::Format,
            "negative",
        ),
    ];
    for (tag, bytes, kind, want) in cases {
        let (e, listed) = attach_bytes(tag, &bytes);
        assert_eq!(e.kind(), kind, "{tag}: {e}");
        assert!(e.message().contains(want), "{tag}: {e}");
        assert!(!listed, "{tag}");
    }
}

#[test]
fn sharedarray_numpy1_and_numpy2_trailers_attach() {
    let data: Vec<u8> = (0..12i32).flat_map(|i| (i * 10).to_ne_bytes()).collect();
    use ndshm::SharedArrayAbi::{Numpy1, Numpy2};
    for (maxdims, want) in [(32, Numpy1), (64, Numpy2)] {
        let t = TempName::new("sa");
        std::fs::write(t.path(), sa_file(&data, maxdims, 5, 4, &[3, 4], 48)).unwrap();
        let a = Array::attach(&t.name, &ro()).unwrap();
        assert_eq!(a.format(), ndshm::SegmentFormat::SharedArray(want));
        assert_eq!((a.shape(), a.dtype()), (&[3, 4][..], Dtype::Int32));
        assert_eq!(a.get::<i32>(11).unwrap(), 110);
        let l = ndshm::list(None).unwrap();
        let e = l
            .iter()
            .find(|i| i.name.as_str() == t.shm())
            .expect("listed");
        assert_eq!(e.format, ndshm::SegmentFormat::SharedArray(want));
        Array::delete(&t.name).unwrap();
    }
    // int64 written as NPY_LONGLONG (9) by an LLP64 build is also int64.
    let t = TempName::new("sall");
    std::fs::write(t.path(), sa_file(&[0u8; 16], 64, 9, 8, &[2], 16)).unwrap();
    assert_eq!(Array::attach(&t.name, &ro()).unwrap().dtype(), Dtype::Int64);
}

/// Random mutations of a valid segment (header bytes, sizes, the file length), with
/// and without a recomputed checksum: attach, info and list must return an error or a
/// consistent array, never crash or read outside the file.
#[test]
fn random_mutations_never_crash() {
    let good = valid_segment(&[8, 8]);
    let t = TempName::new("mut");
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut ok, mut failed) = (0, 0);
    for round in 0..400 {
        let mut b = good.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % 1100) as usize;
            b[at] = next() as u8;
        }
        if round % 7 == 0 {
            b.truncate((next() % good.len() as u64) as usize);
        }
        if round % 2 == 0 && b.len() >= 1024 {
            fix_crc(&mut b);
        }
        std::fs::write(t.path(), &b).unwrap();
        match Array::attach(&t.name, &ro()) {
            Ok(a) => {
                ok += 1;
                // Whatever attached must lie within the file.
                assert!(a.geometry().data_offset + a.geometry().capacity <= b.len() as u64);
                // SAFETY: nbytes bytes are mapped at as_ptr for the life of `a`.
                let bytes = unsafe { std::slice::from_raw_parts(a.as_ptr(), a.nbytes()) };
                std::hint::black_box(bytes.iter().map(|&x| x as u64).sum::<u64>());
            }
            Err(e) => {
                failed += 1;
                assert!(
                    matches!(
                        e.kind(),
                        ErrorKind::Format | ErrorKind::NotReady | ErrorKind::Unsupported
                    ),
                    "round {round}: {e}"
                );
            }
        }
        let _ = ndshm::info(&t.name);
    }
    assert!(
        failed > 100,
        "mutations must mostly be caught ({ok} attached)"
    );
}

/// A creator recorded in another PID namespace (another container sharing /dev/shm)
/// cannot be looked up by pid: its in-progress array is never judged abandoned, so it is
/// neither reported dead, nor deleted without in_progress, nor taken over by a loader.
#[test]
fn creator_in_another_pid_namespace_is_never_judged_dead() {
    let t = TempName::new("otherns");
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let mut b = valid_segment(&[8]);
    put(&mut b, off::STATE, &0u32.to_ne_bytes());
    put(&mut b, off::CREATOR_PID, &(gone.id() as i32).to_ne_bytes());
    put(&mut b, off::CREATOR_START, &0u64.to_ne_bytes());
    put(&mut b, off::CREATOR_PIDNS, &0x7fff_fff1u32.to_ne_bytes()); // not ours
    fix_crc(&mut b);
    std::fs::write(t.path(), &b).unwrap();
    let e = Array::attach(&t.name, &ro()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotReady, "{e}");
    assert_eq!(ndshm::info(&t.name).unwrap().creator_alive, None);
    let e = Array::delete(&t.name).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotReady, "{e}");
    Array::delete_with(&t.name, &ndshm::DeleteOptions { in_progress: true }).unwrap();
}
