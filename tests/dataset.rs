//! Loading files into shared memory (open-or-create) and saving arrays, with real files
//! written by numpy, real processes racing to load, and loaders killed mid-load.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TempDir, TempName, c_program, stdout};
use ndshm::dataset::{self, FileFormat, LoadOptions, Outcome};
use ndshm::{Array, AttachOptions, Dtype, ErrorKind, Order};

fn python(code: &str) -> std::process::Output {
    let lib = common::built_cdylib();
    Command::new("python3")
        .arg("-c")
        .arg(code)
        .env("PYTHONPATH", common::root().join("bindings/python"))
        .env("NDSHM_LIBRARY", lib)
        .output()
        .expect("python3 with numpy")
}

fn check_python(code: &str) -> String {
    let o = python(code);
    assert!(
        o.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(&o)
}

/// numpy writes files of every version, order, byte order and several dtypes; ndshm
/// loads each (whole and by rows) and a Python process compares the shared arrays with
/// numpy.load of the same files.
#[test]
fn loads_what_numpy_wrote() {
    let d = TempDir::new("npy");
    let dir = d.path.display().to_string();
    let out = check_python(&format!(
        r#"
import numpy as np, numpy.lib.format as F
cases = [
  ("f8c", np.arange(12.0).reshape(3, 4), (1, 0)),
  ("f8f", np.asfortranarray(np.arange(24.0).reshape(4, 3, 2)), (1, 0)),
  ("i4be", np.arange(10, dtype=">i4").reshape(5, 2), (2, 0)),
  ("c8be", (np.arange(6) + 1j * np.arange(6)).astype(">c8").reshape(3, 2), (3, 0)),
  ("f2", np.linspace(0, 1, 7, dtype=np.float16), (1, 0)),
  ("b1", np.array([[True, False], [False, True], [True, True]]), (2, 0)),
  ("u1", np.arange(256, dtype=np.uint8), (1, 0)),
  ("u8f", np.asfortranarray(np.arange(20, dtype=">u8").reshape(4, 5)), (3, 0)),
  ("scalar", np.array(3.5), (1, 0)),
  ("empty", np.zeros((0, 3)), (1, 0)),
]
for name, a, v in cases:
    with open("{dir}/" + name + ".npy", "wb") as f:
        F.write_array(f, a, version=v)
print(" ".join(c[0] for c in cases))
"#
    ));
    let names: Vec<&str> = out.split_whitespace().collect();
    let mut shm = Vec::new();
    for n in &names {
        for rows in [None, Some(1..3)] {
            let t = TempName::new("npy");
            let path = d.path.join(format!("{n}.npy"));
            let opts = LoadOptions {
                rows: rows.clone(),
                ..LoadOptions::default()
            };
            let r = dataset::load(&path, &FileFormat::Npy, &t.name, &opts, None);
            match (r, rows.is_some(), *n) {
                (Ok((a, o)), _, _) => {
                    assert_eq!(o, Outcome::Created);
                    drop(a);
                    shm.push((t, n.to_string(), rows));
                }
                // No rows 1..3 in a 0-d, 1-row-less or empty array.
                (Err(e), true, "scalar" | "empty") => {
                    assert_eq!(e.kind(), ErrorKind::Invalid, "{n}: {e}");
                }
                (Err(e), _, _) => panic!("{n} rows {rows:?}: {e}"),
            }
        }
    }
    let checks: Vec<String> = shm
        .iter()
        .map(|(t, n, rows)| {
            let sl = rows
                .as_ref()
                .map_or(String::new(), |r| format!("[{}:{}]", r.start, r.end));
            format!("('{}', '{dir}/{n}.npy', '{sl}')", t.name)
        })
        .collect();
    let out = check_python(&format!(
        r#"
import numpy as np, ndshm
bad = []
for name, path, sl in [{}]:
    want = eval("np.load(path)" + sl)
    got = ndshm.attach(name, ro=True)
    want_native = want.astype(want.dtype.newbyteorder("="))
    same = got.shape == want.shape and got.dtype == want_native.dtype and np.array_equal(got, want_native)
    order_ok = got.ndim < 2 or got.flags.f_contiguous == np.load(path).flags.f_contiguous
    if not (same and order_ok):
        bad.append((name, path, sl, got.dtype, want.dtype, got.shape, want.shape))
print("bad", bad, "checked", len([1 for _ in [{}]]))
"#,
        checks.join(", "),
        checks.join(", ")
    ));
    assert!(out.starts_with("bad [] checked"), "{out}");
    drop(shm);
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

fn npy_bytes(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    let hlen = dict.len() + 1;
    v.extend_from_slice(&(hlen as u16).to_le_bytes());
    v.extend_from_slice(dict.as_bytes());
    v.push(b'\n');
    v.extend_from_slice(data);
    v
}

/// Hand-made bad files are named errors, and a failed load leaves nothing under the name.
#[test]
fn malformed_files_are_named_errors() {
    let d = TempDir::new("badnpy");
    let f8 = vec![0u8; 48];
    type Case<'a> = (
        &'a str,
        Vec<u8>,
        Option<std::ops::Range<i64>>,
        ErrorKind,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "magic",
            b"\x93NUMPX\x01\x00\x10\x00{}".to_vec(),
            None,
            ErrorKind::Format,
            "magic",
        ),
        (
            "notdict",
            npy_bytes("[1, 2, 3]", &f8),
            None,
            ErrorKind::Format,
            "dict",
        ),
        (
            "size",
            npy_bytes(
                "{'descr': '<f8', 'fortran_order': False, 'shape': (7,), }",
                &f8,
            ),
            None,
            ErrorKind::Format,
            "the file has",
        ),
        (
            "object",
            npy_bytes(
                "{'descr': '|O', 'fortran_order': False, 'shape': (6,), }",
                &f8,
            ),
            None,
            ErrorKind::Unsupported,
            "objects",
        ),
        (
            "structured",
            npy_bytes(
                "{'descr': [('a', '<i4'), ('b', '<f8')], 'fortran_order': False, 'shape': (2,), }",
                &f8,
            ),
            None,
            ErrorKind::Unsupported,
            "structured",
        ),
        (
            "rows",
            npy_bytes(
                "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }",
                &f8,
            ),
            Some(4..9),
            ErrorKind::Invalid,
            "outside",
        ),
        ("empty", Vec::new(), None, ErrorKind::Format, "magic"),
    ];
    for (tag, bytes, rows, kind, word) in cases {
        let path = d.path.join(format!("{tag}.npy"));
        write(&path, &bytes);
        let t = TempName::new("bad");
        let opts = LoadOptions {
            rows,
            ..LoadOptions::default()
        };
        let e = dataset::load(&path, &FileFormat::Npy, &t.name, &opts, None).unwrap_err();
        assert_eq!(e.kind(), kind, "{tag}: {e}");
        assert!(e.message().contains(word), "{tag}: {e}");
        assert!(!t.path().exists(), "{tag}: a failed load leaves nothing");
    }
    // No such file, and a FIFO (must not hang).
    let t = TempName::new("bad");
    let e = dataset::load(
        &d.path.join("nope.npy"),
        &FileFormat::Npy,
        &t.name,
        &LoadOptions::default(),
        None,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let fifo = std::ffi::CString::new(d.path.join("fifo").to_str().unwrap()).unwrap();
    // SAFETY: valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let e = dataset::load(
        &d.path.join("fifo"),
        &FileFormat::Npy,
        &t.name,
        &LoadOptions::default(),
        None,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Format, "{e}");
}

/// A file truncated while it is being loaded is a format error, and the half-loaded
/// array is gone (waiters never attach it).
#[test]
fn file_truncated_while_loading() {
    let d = TempDir::new("trunc");
    let path = d.path.join("big.npy");
    let n = 40 << 20; // 320 MiB of f8: several progress blocks
    let mut bytes = ndshm::npy::encode_npy(Dtype::Float64, Order::C, &[n]);
    bytes.resize(bytes.len() + 8 * n as usize, 1);
    write(&path, &bytes);
    let t = TempName::new("trunc");
    let p2 = path.clone();
    let mut cut = false;
    let mut progress = |done: u64, _total: u64| {
        if !cut && done > 0 {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&p2)
                .unwrap()
                .set_len(1 << 20)
                .unwrap();
            cut = true;
        }
    };
    let e = dataset::load(
        &path,
        &FileFormat::Npy,
        &t.name,
        &LoadOptions::default(),
        Some(&mut progress),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Format, "{e}");
    assert!(e.message().contains("truncated"), "{e}");
    assert!(!t.path().exists());
}

/// Raw files and npio files, and open_or_create without a file.
#[test]
fn raw_npio_and_plain_open_or_create() {
    let d = TempDir::new("raw");
    let path = d.path.join("raw.bin");
    let data: Vec<u8> = (0..24i32).flat_map(|i| i.to_ne_bytes()).collect();
    let mut bytes = vec![0xEE; 100];
    bytes.extend_from_slice(&data);
    write(&path, &bytes);
    let t = TempName::new("raw");
    let fmt = FileFormat::Raw {
        dtype: Dtype::Int32,
        shape: vec![4, 6],
        order: Order::C,
        offset: 100,
    };
    let opts = LoadOptions {
        rows: Some(1..3),
        ..LoadOptions::default()
    };
    let (a, o) = dataset::load(&path, &fmt, &t.name, &opts, None).unwrap();
    assert_eq!((o, a.shape()), (Outcome::Created, &[2, 6][..]));
    assert_eq!(a.to_vec::<i32>().unwrap(), (6..18).collect::<Vec<_>>());
    // The same load again attaches; a different shape is a mismatch.
    let (_b, o) = dataset::load(&path, &fmt, &t.name, &opts, None).unwrap();
    assert_eq!(o, Outcome::Attached);
    let e = dataset::load(&path, &fmt, &t.name, &LoadOptions::default(), None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Mismatch, "{e}");
    // Unless asked for exclusivity.
    let excl = LoadOptions {
        accept_existing: false,
        ..opts.clone()
    };
    assert_eq!(
        dataset::load(&path, &fmt, &t.name, &excl, None)
            .unwrap_err()
            .kind(),
        ErrorKind::Exists
    );
    Array::delete(&t.name).unwrap();

    let npio = d.path.join("a.npio");
    let mut b = ndshm::npy::encode_npio(Dtype::Int32, &[4, 6]).unwrap();
    b.extend_from_slice(&data);
    write(&npio, &b);
    let (a, _) = dataset::load(
        &npio,
        &FileFormat::Npio,
        &t.name,
        &LoadOptions::default(),
        None,
    )
    .unwrap();
    assert_eq!(a.to_vec::<i32>().unwrap(), (0..24).collect::<Vec<_>>());
    drop(a);
    Array::delete(&t.name).unwrap();

    let (a, o) =
        dataset::open_or_create(&t.name, &[3], Dtype::Float32, &LoadOptions::default()).unwrap();
    assert_eq!(
        (o, a.to_vec::<f32>().unwrap()),
        (Outcome::Created, vec![0.0; 3])
    );
    let (_b, o) =
        dataset::open_or_create(&t.name, &[3], Dtype::Float32, &LoadOptions::default()).unwrap();
    assert_eq!(o, Outcome::Attached);
    Array::delete(&t.name).unwrap();
}

/// save writes a .npy file numpy reads (C, Fortran, rows), atomically: a reader that
/// reads the file while saves of different sizes replace it always sees a complete file.
#[test]
fn save_is_atomic_and_numpy_reads_it() {
    let d = TempDir::new("save");
    let t = TempName::new("save");
    let mut a = Array::create(
        &t.name,
        &[4, 3],
        Dtype::Int64,
        &ndshm::CreateOptions::default().order(Order::F),
    )
    .unwrap();
    a.copy_from(&(0..12i64).collect::<Vec<_>>()).unwrap();
    dataset::save(&a, &d.path.join("all.npy"), None, None).unwrap();
    dataset::save(&a, &d.path.join("rows.npy"), Some(1..3), None).unwrap();
    assert_eq!(
        dataset::save(&a, &d.path.join("bad.npy"), Some(2..9), None)
            .unwrap_err()
            .kind(),
        ErrorKind::Invalid
    );
    let out = check_python(&format!(
        r#"
import numpy as np
a = np.load("{0}/all.npy"); r = np.load("{0}/rows.npy")
ref = np.arange(12).reshape(4, 3, order="F")
print(a.flags.f_contiguous, np.array_equal(a, ref), np.array_equal(r, ref[1:3]))
"#,
        d.path.display()
    ));
    assert_eq!(out.trim(), "True True True");
    drop(a);
    Array::delete(&t.name).unwrap();

    // Atomicity: sizes alternate; every read sees a whole file.
    let path = d.path.join("swap.npy");
    let (ts, tb) = (TempName::new("s"), TempName::new("b"));
    let small = Array::create(&ts.name, &[10], Dtype::Uint8, &Default::default()).unwrap();
    let big = Array::create(&tb.name, &[1 << 20], Dtype::Uint8, &Default::default()).unwrap();
    dataset::save(&small, &path, None, None).unwrap();
    let reader = {
        let path = path.clone();
        std::thread::spawn(move || {
            let mut seen = 0;
            let end = Instant::now() + Duration::from_millis(600);
            while Instant::now() < end {
                let b = std::fs::read(&path).unwrap();
                let len = ndshm::npy::npy_header_len(&b).unwrap();
                let h = ndshm::npy::parse_npy(&b[..len]).unwrap();
                assert_eq!(
                    b.len() as u64,
                    h.data_offset + h.nbytes,
                    "a partial file was seen"
                );
                seen += 1;
            }
            seen
        })
    };
    for i in 0..40 {
        dataset::save(if i % 2 == 0 { &big } else { &small }, &path, None, None).unwrap();
    }
    assert!(reader.join().unwrap() > 0);
    let leftovers: Vec<_> = std::fs::read_dir(&d.path)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("ndshm-save"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    drop((small, big, ts, tb));
}

fn npy_file(dir: &Path, mib: usize) -> (PathBuf, u64) {
    let path = dir.join(format!("data{mib}.npy"));
    let n = (mib << 20) / 8;
    let mut bytes = ndshm::npy::encode_npy(Dtype::Uint64, Order::C, &[n as i64]);
    let mut sum = 0u64;
    for k in 0..n as u64 {
        let v = k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        sum = sum.wrapping_add(v);
        bytes.extend_from_slice(&v.to_ne_bytes());
    }
    write(&path, &bytes);
    (path, sum)
}

fn parse_load_line(line: &str) -> (String, u64, u64) {
    // "created read N sum S nbytes B"
    let w: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        (w.get(1), w.get(3)),
        (Some(&"read"), Some(&"sum")),
        "{line}"
    );
    (
        w[0].to_string(),
        w[2].parse().unwrap(),
        w[4].parse().unwrap(),
    )
}

/// Eight processes load the same 256 MiB file at once: exactly one reads it (bytes
/// read per process from /proc/PID/io, which counts sendfile), all see the same,
/// complete contents.
#[test]
fn eight_loaders_read_the_file_once() {
    let d = TempDir::new("eight");
    let (path, sum) = npy_file(&d.path, 256);
    let t = TempName::new("eight");
    let tool = c_program("tests/c/sa_tool.c");
    let kids: Vec<_> = (0..8)
        .map(|_| {
            Command::new(&tool)
                .args(["load", path.to_str().unwrap(), &t.name, "60000"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let lines: Vec<String> = kids
        .into_iter()
        .map(|k| {
            let o = k.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", stdout(&o));
            stdout(&o).trim().to_string()
        })
        .collect();
    let parsed: Vec<_> = lines.iter().map(|l| parse_load_line(l)).collect();
    let created: Vec<_> = parsed.iter().filter(|p| p.0 == "created").collect();
    assert_eq!(created.len(), 1, "{lines:#?}");
    assert!(
        created[0].1 >= 256 << 20,
        "the creator read the file: {lines:#?}"
    );
    for p in &parsed {
        assert_eq!(p.2, sum, "identical, complete contents: {lines:#?}");
        if p.0 == "attached" {
            assert!(p.1 < 1 << 20, "an attacher read the file: {lines:#?}");
        }
    }
    eprintln!("8 loaders: {lines:#?}");
    Array::delete(&t.name).unwrap();
}

/// Loaders killed at random points never leave waiters hanging: a waiter takes over and
/// loads; everyone ends with the complete contents; nothing is left behind.
#[test]
fn killed_loaders_never_strand_waiters() {
    let d = TempDir::new("killed");
    let (path, sum) = npy_file(&d.path, 96);
    let tool = c_program("tests/c/sa_tool.c");
    let mut seed = std::process::id() as u64 ^ 0x2545_F491_4F6C_DD1D;
    let mut rand = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut pids = Vec::new();
    for round in 0..8 {
        let t = TempName::new("killed");
        let spawn = || {
            Command::new(&tool)
                .args(["load", path.to_str().unwrap(), &t.name, "30000"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let mut victim = spawn();
        let waiters: Vec<_> = (0..2).map(|_| spawn()).collect();
        pids.push(victim.id());
        std::thread::sleep(Duration::from_millis(rand(60)));
        let _ = victim.kill();
        let _ = victim.wait();
        let start = Instant::now();
        for w in waiters {
            pids.push(w.id());
            let o = w.wait_with_output().unwrap();
            assert!(o.status.success(), "round {round}: {}", stdout(&o));
            let (_, _, s) = parse_load_line(stdout(&o).trim());
            assert_eq!(s, sum, "round {round}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "round {round}: waiters took {:?}",
            start.elapsed()
        );
        // The next open-or-create attaches the complete array.
        let o = spawn().wait_with_output().unwrap();
        let (what, _, s) = parse_load_line(stdout(&o).trim());
        assert_eq!((what.as_str(), s), ("attached", sum), "round {round}");
        Array::delete(&t.name).unwrap();
        assert!(!t.path().exists());
    }
    // No temporary file of any of these processes is left in /dev/shm.
    let left: Vec<String> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            pids.iter()
                .any(|p| n.starts_with(&format!(".ndshm-tmp.{p}.")))
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A waiter with a timeout that another live loader outlasts gets a Timeout naming it.
#[test]
fn waiting_for_a_slow_loader_times_out() {
    let d = TempDir::new("slow");
    let (path, _) = npy_file(&d.path, 8);
    let t = TempName::new("slow");
    let started = std::sync::Barrier::new(2);
    let release = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut first = true;
            let mut progress = |_: u64, _: u64| {
                if first {
                    first = false;
                    started.wait();
                    release.wait();
                }
            };
            dataset::load(
                &path,
                &FileFormat::Npy,
                &t.name,
                &LoadOptions::default(),
                Some(&mut progress),
            )
            .unwrap();
        });
        started.wait();
        let opts = LoadOptions {
            timeout: Some(Duration::from_millis(200)),
            attach: AttachOptions::default(),
            ..LoadOptions::default()
        };
        let e = dataset::load(&path, &FileFormat::Npy, &t.name, &opts, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
        assert!(
            e.message().contains(&format!("pid {}", std::process::id())),
            "{e}"
        );
        release.wait();
    });
    Array::delete(&t.name).unwrap();
}

fn mount(opts: &str) -> Option<common::Mount> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: mounting a tmpfs needs root");
        return None;
    }
    common::Mount::tmpfs(opts)
}

/// A tmpfs too small for the file: NO_SPACE from the copy (never a SIGBUS), the
/// message saying how much was asked, and nothing left in the directory.
#[test]
fn loading_into_a_full_tmpfs_is_no_space() {
    let Some(m) = mount("16m") else { return };
    let d = TempDir::new("nospace-load");
    let (path, _) = npy_file(&d.path, 32);
    let name = format!("file://{}/big", m.path().display());
    let e = dataset::load(
        &path,
        &FileFormat::Npy,
        &name,
        &LoadOptions::default(),
        None,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSpace, "{e}");
    assert!(e.message().contains("requested"), "{e}");
    assert_eq!(
        std::fs::read_dir(m.path()).unwrap().count(),
        0,
        "nothing left behind"
    );
}

/// On a tmpfs with huge pages the loader reserves first and copies from a mapping of
/// the file (the faster way there); the contents are the same.
#[test]
fn loading_into_a_huge_page_tmpfs() {
    let Some(m) = mount("256m,huge=within_size") else {
        return;
    };
    let d = TempDir::new("huge-load");
    let (path, sum) = npy_file(&d.path, 64);
    let name = format!("file://{}/big", m.path().display());
    let (a, o) = dataset::load(
        &path,
        &FileFormat::Npy,
        &name,
        &LoadOptions::default(),
        None,
    )
    .unwrap();
    assert_eq!(o, Outcome::Created);
    let got = a
        .to_vec::<u64>()
        .unwrap()
        .iter()
        .fold(0u64, |s, &v| s.wrapping_add(v));
    assert_eq!(got, sum);
    drop(a);
    Array::delete(&name).unwrap();
}
