//! The `ndshm` tool run as a separate process, on real arrays. Every array and file a
//! test makes lives in a directory of its own (or under a unique shm name) that a guard
//! removes also when the test fails. `gc` is only ever run on such a directory: other
//! test suites plant abandoned arrays in /dev/shm and must find them there.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use ndshm::format::{self, off};
use ndshm::{Array, AttachOptions, CreateOptions, Dtype};
use serde_json::Value;

/// The binary, with the environment's redirect removed (shm:// means /dev/shm).
fn ndshm() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ndshm"));
    c.env_remove("NDSHM_DIR")
        .env_remove("JOB_SHMTMPDIR")
        .env_remove("NDSHM_PROGRESS_DELAY_MS")
        .stdin(Stdio::null());
    c
}

fn run(args: &[&str]) -> Output {
    ndshm().args(args).output().expect("run ndshm")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and expects exit status `code`, returning the output.
#[track_caller]
fn expect(code: i32, args: &[&str]) -> Output {
    let o = run(args);
    assert_eq!(
        o.status.code(),
        Some(code),
        "ndshm {args:?}\nstdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    o
}

#[track_caller]
fn json(args: &[&str]) -> Value {
    let o = expect(0, args);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)))
}

/// A directory in /dev/shm for one test, removed with everything in it on drop, and
/// unique shm:// names removed on drop too.
struct Scratch {
    dir: PathBuf,
    shm: Vec<String>,
}

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(format!(
            "/dev/shm/ndshm-cli-{tag}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        Scratch {
            dir,
            shm: Vec::new(),
        }
    }
    /// `file://DIR/f`.
    fn name(&self, f: &str) -> String {
        format!("file://{}", self.dir.join(f).display())
    }
    fn path(&self, f: &str) -> PathBuf {
        self.dir.join(f)
    }
    fn dir_str(&self) -> &str {
        self.dir.to_str().unwrap()
    }
    /// A unique shm:// name, deleted on drop.
    fn shm_name(&mut self, tag: &str) -> String {
        let n = format!(
            "shm://ndshm-cli-{tag}-{}-{}",
            std::process::id(),
            self.shm.len()
        );
        self.shm.push(n.clone());
        n
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        for n in &self.shm {
            let _ = Array::delete_with(n, &ndshm::DeleteOptions { in_progress: true });
        }
    }
}

/// Runs ndshm with stdout and stderr on a new pseudo-terminal, the progress delay at
/// zero, and returns everything it wrote there.
fn on_terminal(args: &[&str]) -> String {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::fs::OpenOptionsExt;
    // SAFETY: plain libc calls on a descriptor this function owns; ptsname_r writes at
    // most buf.len() bytes.
    let (master, slave_path) = unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(m >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let mut buf = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(m, buf.as_mut_ptr(), buf.len()), 0);
        let path = std::ffi::CStr::from_ptr(buf.as_ptr())
            .to_str()
            .unwrap()
            .to_string();
        (std::fs::File::from(OwnedFd::from_raw_fd(m)), path)
    };
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&slave_path)
        .unwrap();
    let mut child = ndshm()
        .env("NDSHM_PROGRESS_DELAY_MS", "0")
        .args(args)
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .unwrap();
    // Everything the child wrote, until it closed the terminal (EIO on Linux).
    let mut master = master;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("reading the terminal: {e}"),
        }
    }
    let status = child.wait().unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    assert!(status.success(), "ndshm {args:?} on a terminal: {text}");
    text
}

/// A pid that is certainly not running any more.
fn dead_pid() -> i32 {
    let mut c = Command::new("true").spawn().unwrap();
    c.wait().unwrap();
    c.id() as i32
}

/// Writes at `path` a v1 segment of shape `[8]` float64 made by the library, with its
/// creator pid replaced by `pid` (start time unknown) and the given state word.
fn plant_segment(path: &Path, pid: i32, state: u32) {
    let tmp = path.with_extension("template");
    let name = format!("file://{}", tmp.display());
    drop(Array::create(&name, &[8], Dtype::Float64, &CreateOptions::default()).unwrap());
    let mut b = std::fs::read(&tmp).unwrap();
    Array::delete(&name).unwrap();
    b[off::STATE..off::STATE + 4].copy_from_slice(&state.to_ne_bytes());
    b[off::CREATOR_PID..off::CREATOR_PID + 4].copy_from_slice(&pid.to_ne_bytes());
    b[off::CREATOR_START..off::CREATOR_START + 8].copy_from_slice(&0u64.to_ne_bytes());
    let crc = format::header_checksum(&b);
    b[off::CHECKSUM..off::CHECKSUM + 4].copy_from_slice(&crc.to_ne_bytes());
    std::fs::write(path, &b).unwrap();
}

/// A process that stays alive while the value lives.
struct Sleeper(std::process::Child);
impl Sleeper {
    fn new() -> Sleeper {
        Sleeper(Command::new("sleep").arg("60").spawn().unwrap())
    }
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}
impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn help_on_every_subcommand() {
    let o = expect(0, &["--help"]);
    for sub in ["list", "info", "create", "load", "save", "rm", "gc"] {
        assert!(stdout(&o).contains(sub), "{sub} missing from --help");
        let o = expect(0, &[sub, "--help"]);
        assert!(
            stdout(&o).contains(&format!("Usage: ndshm {sub}")),
            "{sub}: {}",
            stdout(&o)
        );
    }
    let o = expect(0, &["--version"]);
    assert!(stdout(&o).contains(ndshm::VERSION));
}

#[test]
fn usage_errors_exit_2_and_create_nothing() {
    let s = Scratch::new("usage");
    let x = s.name("x");
    for (args, says) in [
        (vec!["frobnicate"], "unrecognized subcommand"),
        (vec!["info"], "required"),
        (vec!["rm"], "required"),
        (vec!["list", "--jsn"], "unexpected argument"),
        (
            vec!["create", &x, "--shape", "3,-2", "--dtype", "f8"],
            "not a dimension",
        ),
        (
            vec!["create", &x, "--shape", "3", "--dtype", "f16"],
            "unsupported dtype",
        ),
        (
            vec![
                "create", &x, "--shape", "3", "--dtype", "u1", "--fill", "300",
            ],
            "out of range",
        ),
        (
            vec![
                "create", &x, "--shape", "3", "--dtype", "f8", "--order", "Z",
            ],
            "invalid value",
        ),
        (vec!["create", &x, "--dtype", "f8"], "--shape"),
    ] {
        let o = expect(2, &args);
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{args:?}: {}", stdout(&o));
    }
    assert_eq!(std::fs::read_dir(&s.dir).unwrap().count(), 0);
}

#[test]
fn operational_errors_exit_1_with_the_library_message() {
    let mut s = Scratch::new("operr");
    let missing = s.shm_name("missing");
    let o = expect(1, &["info", &missing]);
    assert!(
        stderr(&o).contains(&format!("{missing}: no such array")),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());

    // Exists: the message, and the switch that lifts it.
    let a = s.shm_name("exists");
    expect(0, &["create", &a, "--shape", "2", "--dtype", "i8"]);
    let o = expect(1, &["create", &a, "--shape", "3", "--dtype", "i8"]);
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    expect(
        0,
        &["create", &a, "--shape", "3", "--dtype", "i8", "--force"],
    );
    assert_eq!(ndshm::info(&a).unwrap().geometry.shape, vec![3]);

    // rm refuses a file that is not an array, and leaves it; the other names are
    // still removed, and the status says something failed.
    let notes = s.path("notes.txt");
    std::fs::write(&notes, "not an array").unwrap();
    let o = expect(1, &["rm", &s.name("notes.txt"), &a]);
    assert!(stderr(&o).contains("refusing to delete"), "{}", stderr(&o));
    assert!(notes.exists());
    assert!(stdout(&o).contains(&format!("removed {a}")));
    assert!(!Path::new(&format!("/dev/shm/{}", &a["shm://".len()..])).exists());

    // A live creator's array in progress needs --in-progress, which the hint names.
    let live = Sleeper::new();
    plant_segment(&s.path("busy"), live.pid(), 0);
    let o = expect(1, &["rm", &s.name("busy")]);
    assert!(stderr(&o).contains("--in-progress"), "{}", stderr(&o));
    assert!(s.path("busy").exists());
    expect(0, &["rm", "--in-progress", &s.name("busy")]);
    assert!(!s.path("busy").exists());
}

#[test]
fn create_list_info_rm() {
    let mut s = Scratch::new("cycle");
    let (a, b) = (s.name("a"), s.name("b"));
    let o = expect(
        0,
        &[
            "create", &a, "--shape", "100,3", "--dtype", "f8", "--fill", "2.5",
        ],
    );
    assert!(
        stdout(&o).starts_with(&format!("created {a}")),
        "{}",
        stdout(&o)
    );
    expect(
        0,
        &[
            "create", &b, "--shape", "4,5", "--dtype", "int16", "--order", "F",
        ],
    );
    let c = s.name("c");
    expect(
        0,
        &[
            "create", &c, "--shape", "2", "--dtype", "c16", "--fill", "1-2j",
        ],
    );
    std::fs::write(s.path("notes.txt"), "skipped by list").unwrap();

    let ra = Array::attach(&a, &AttachOptions::default().readonly(true)).unwrap();
    assert_eq!(ra.to_vec::<f64>().unwrap(), vec![2.5; 300]);
    let rc = Array::attach(&c, &AttachOptions::default()).unwrap();
    let want = ndshm::Complex { re: 1.0, im: -2.0 };
    assert_eq!(rc.to_vec::<ndshm::Complex<f64>>().unwrap(), vec![want; 2]);
    drop(rc);

    // JSON, parsed back.
    let v = json(&["list", s.dir_str(), "--json"]);
    let l = v.as_array().unwrap();
    let names: Vec<&str> = l.iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(names, [a.as_str(), b.as_str(), c.as_str()]);
    assert_eq!(l[0]["dtype"], "float64");
    assert_eq!(l[0]["shape"], serde_json::json!([100, 3]));
    assert_eq!(l[0]["nbytes"], 2400);
    assert_eq!(l[0]["state"], "ready");
    let v1 = format!("v1.{}", ndshm::format::VERSION_MINOR);
    assert_eq!(l[0]["format"], v1.as_str());
    assert_eq!(l[0]["mode"], "0600");
    assert_eq!(l[0]["creator_alive"], false); // the ndshm process that made it
    assert!(l[0]["age_s"].as_f64().unwrap() >= 0.0);
    assert_eq!(l[1]["order"], "F");
    assert_eq!(l[1]["dtype_str"], "<i2");

    // The table: a header and one row per array, columns aligned, sorted.
    let o = expect(0, &["list", s.dir_str()]);
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let col = |line: &str, word: &str| {
        line.find(word)
            .unwrap_or_else(|| panic!("{word} in {line}"))
    };
    let header = lines[0];
    for h in [
        "NAME", "FORMAT", "DTYPE", "SHAPE", "SIZE", "PID", "ALIVE", "STATE", "AGE",
    ] {
        assert!(header.contains(h), "{header}");
    }
    assert!(lines[1].starts_with(&a) && lines[2].starts_with(&b) && lines[3].starts_with(&c));
    for l in &lines[1..] {
        let v1 = format!("v1.{}", ndshm::format::VERSION_MINOR);
        assert_eq!(col(l, &v1), col(header, "FORMAT"), "{text}");
        assert_eq!(
            col(l, " ready").saturating_add(1),
            col(header, "STATE"),
            "{text}"
        );
    }
    assert!(lines[2].contains("(4, 5) F"), "{text}");
    assert!(!text.contains("notes.txt"));

    // info: every header field, and this process among the mappers (read-only).
    let v = json(&["info", &a, "--json"]);
    assert_eq!(v["name"], a.as_str());
    assert_eq!(v["shape"], serde_json::json!([100, 3]));
    assert_eq!(v["header"]["version_major"], 1);
    assert_eq!(v["header"]["page_size"], ndshm::page_size());
    assert_eq!(v["header"]["attr_offset"], 4096);
    assert_eq!(v["sync"]["lock"], 0);
    assert_eq!(v["sync"]["shape_gen"], 0);
    assert_eq!(v["attributes"], "");
    let me = std::process::id();
    let mine = v["mapped_by"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["pid"] == me)
        .unwrap_or_else(|| panic!("pid {me} not among {}", v["mapped_by"]));
    assert_eq!(mine["writable"], false);
    let o = expect(0, &["info", &a]);
    let text = stdout(&o);
    for k in [
        "name:",
        "format:",
        "state:",
        "dtype:",
        "order:",
        "shape:",
        "nbytes:",
        "capacity:",
        "data offset:",
        "file size:",
        "mode:",
        "creator:",
        "created:",
        "byte order:",
        "header bytes:",
        "page size:",
        "create flags:",
        "creator start:",
        "boot id:",
        "checksum:",
        "attribute area:",
        "last write:",
        "lock:",
        "live flags:",
        "shape gen:",
        "seq:",
        "attributes:",
        "mapped by:",
    ] {
        assert!(text.contains(k), "{k} missing:\n{text}");
    }
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with(&me.to_string())),
        "{text}"
    );
    drop(ra);
    let v = json(&["info", &a, "--json"]);
    assert!(
        v["mapped_by"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["pid"] != me),
        "{v}"
    );

    // A shm:// array shows in the default listing.
    let d = s.shm_name("listed");
    expect(
        0,
        &[
            "create", &d, "--shape", "", "--dtype", "?", "--fill", "true",
        ],
    );
    let v = json(&["list", "--json"]);
    let e = v
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == d.as_str())
        .unwrap_or_else(|| panic!("{d} not listed"));
    assert_eq!(e["shape"], serde_json::json!([]));
    assert_eq!(e["dtype"], "bool");

    let o = expect(0, &["rm", &a, &b, &c, &d]);
    assert_eq!(stdout(&o).lines().count(), 4);
    assert_eq!(
        json(&["list", s.dir_str(), "--json"]),
        serde_json::json!([])
    );
    assert!(s.path("notes.txt").exists());
}

/// The creator's own mapping is of the unnamed file it made (`/dev/shm/#INODE
/// (deleted)` in /proc/PID/maps): it is found by device and inode all the same.
#[test]
fn info_shows_the_creating_test_process_among_the_mappers() {
    let mut s = Scratch::new("creator");
    let n = s.shm_name("mine");
    let a = Array::create(&n, &[1000], Dtype::Uint8, &CreateOptions::default()).unwrap();
    let v = json(&["info", &n, "--json"]);
    let me = std::process::id();
    let mine = v["mapped_by"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["pid"] == me)
        .unwrap_or_else(|| panic!("pid {me} not among {}", v["mapped_by"]));
    assert_eq!(mine["writable"], true);
    assert!(mine["command"].as_str().unwrap().contains("cli-"), "{mine}");
    assert_eq!(v["creator_pid"], me);
    assert_eq!(v["creator_alive"], true);
    drop(a);
}

#[test]
fn gc_removes_abandoned_and_unused_arrays_and_nothing_else() {
    let s = Scratch::new("gc");
    let dead = dead_pid();
    let live = Sleeper::new();
    // Garbage: a dead creator's array that never became ready, and a dead creator's
    // leftover temporary file that is an array.
    plant_segment(&s.path("abandoned"), dead, 0);
    let temp_array = format!(".ndshm-tmp.{dead}.0.1f");
    plant_segment(&s.path(&temp_array), dead, 1);
    // Kept by plain gc: a live creator's array in progress; a live creator's temporary
    // file; a dead creator's temporary file that is not an array; other files.
    plant_segment(&s.path("in-progress"), live.pid(), 0);
    let live_temp = format!(".ndshm-tmp.{}.0.2f", live.pid());
    plant_segment(&s.path(&live_temp), live.pid(), 1);
    let junk_temp = format!(".ndshm-tmp.{dead}.1.3f");
    std::fs::write(s.path(&junk_temp), b"").unwrap();
    std::fs::write(s.path("notes.txt"), "keep me").unwrap();
    let v1_look_alike = s.path("looks-like-v1");
    std::fs::write(&v1_look_alike, b"NDSHMARR but nothing else").unwrap();
    // Ready arrays whose creator (an ndshm process) has exited: unused, and mapped by
    // this test; and one whose creator (this test) is alive. Only --unused removes the
    // first.
    for f in ["unused", "mapped"] {
        expect(0, &["create", &s.name(f), "--shape", "10", "--dtype", "f4"]);
    }
    let held = Array::attach(&s.name("mapped"), &AttachOptions::default()).unwrap();
    drop(
        Array::create(
            &s.name("mine"),
            &[4],
            Dtype::Int8,
            &CreateOptions::default(),
        )
        .unwrap(),
    );

    let all_files = || {
        let mut v: Vec<String> = std::fs::read_dir(&s.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    let before = all_files();

    let o = expect(0, &["gc", s.dir_str(), "--dry-run"]);
    let out = stdout(&o);
    assert!(
        out.contains(&format!("would remove {}", s.name("abandoned"))),
        "{out}"
    );
    assert!(
        out.contains(&format!("would remove {}", s.name(&temp_array))),
        "{out}"
    );
    assert_eq!(out.matches("would remove").count(), 2, "{out}");
    assert_eq!(all_files(), before, "--dry-run removed something");

    let o = expect(0, &["gc", s.dir_str()]);
    let out = stdout(&o);
    assert!(
        out.contains(&format!("removed {}", s.name("abandoned"))),
        "{out}"
    );
    assert!(out.contains("died before it was ready"), "{out}");
    assert!(
        out.contains(&format!("removed {}", s.name(&temp_array))),
        "{out}"
    );
    assert_eq!(out.matches("removed").count(), 2, "{out}");
    assert!(
        out.contains(&format!("kept {}", s.name(&junk_temp))),
        "{out}"
    );
    let mut want: Vec<String> = before
        .iter()
        .filter(|f| *f != "abandoned" && **f != temp_array)
        .cloned()
        .collect();
    assert_eq!(all_files(), want);

    let o = expect(0, &["gc", s.dir_str(), "--unused"]);
    let out = stdout(&o);
    assert!(
        out.contains(&format!("removed {}: unused", s.name("unused"))),
        "{out}"
    );
    assert_eq!(out.matches("removed").count(), 1, "{out}");
    want.retain(|f| f != "unused");
    assert_eq!(all_files(), want);
    for f in [
        "in-progress",
        "mapped",
        "mine",
        "notes.txt",
        "looks-like-v1",
        junk_temp.as_str(),
        live_temp.as_str(),
    ] {
        assert!(s.path(f).exists(), "{f} was removed");
    }
    assert_eq!(std::fs::read(s.path("notes.txt")).unwrap(), b"keep me");

    // Once nobody maps it, the array of the exited creator goes too.
    drop(held);
    let o = expect(0, &["gc", s.dir_str(), "--unused"]);
    assert!(stdout(&o).contains(&format!("removed {}: unused", s.name("mapped"))));
    let o = expect(0, &["gc", s.dir_str(), "--unused"]);
    assert!(!stdout(&o).contains("removed"), "{}", stdout(&o));
    drop(live);
}

/// Progress goes to a terminal only: piped, a command prints its result and nothing
/// else, even with the progress delay at zero; on a terminal (a pseudo-terminal) the
/// same command draws its progress.
#[test]
fn progress_only_on_a_terminal() {
    let s = Scratch::new("progress");
    let a = s.name("big");
    let o = ndshm()
        .env("NDSHM_PROGRESS_DELAY_MS", "0")
        .args([
            "create",
            &a,
            "--shape",
            "1000,1000",
            "--dtype",
            "f8",
            "--fill",
            "1",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stderr.is_empty(), "progress on a pipe: {:?}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));
    assert!(!o.stdout.contains(&b'\r') && !o.stdout.contains(&0x1b));

    let b = s.name("big2");
    let term = on_terminal(&[
        "create",
        &b,
        "--shape",
        "1000,1000",
        "--dtype",
        "f8",
        "--fill",
        "1",
    ]);
    assert!(term.contains(&format!("creating {b}")), "{term:?}");
    assert!(term.contains(&format!("created {b}")), "{term:?}");
}

/// A `.npy` file (format 1.0, C order, little-endian float64) of `rows` × 3 elements
/// 0, 1, 2, ... written by hand.
fn write_npy(path: &Path, rows: usize) -> Vec<f64> {
    let values: Vec<f64> = (0..rows * 3).map(|i| i as f64).collect();
    let dict = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows}, 3), }}");
    let mut header = dict.into_bytes();
    // Magic (6) + version (2) + length (2) + dict + padding + newline: a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(header.len() as u16).to_le_bytes());
    b.extend_from_slice(&header);
    for v in &values {
        b.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, b).unwrap();
    values
}

/// The data of a `.npy` file as float64 and the header's text.
fn read_npy(path: &Path) -> (String, Vec<f64>) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..6], b"\x93NUMPY", "not a .npy file");
    let (len, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes(b[8..12].try_into().unwrap()) as usize,
            12,
        ),
    };
    let header = String::from_utf8(b[start..start + len].to_vec()).unwrap();
    let data = b[start + len..]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (header, data)
}

#[test]
fn load_and_save() {
    let s = Scratch::new("load");
    let input = s.path("in.npy");
    let values = write_npy(&input, 1000);
    let input_s = input.to_str().unwrap();
    let a = s.name("a");

    let o = expect(0, &["load", input_s, &a]);
    assert!(stdout(&o).starts_with(&format!("loaded {input_s} into {a} (1000, 3) float64")));
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    let arr = Array::attach(&a, &AttachOptions::default().readonly(true)).unwrap();
    assert_eq!(arr.to_vec::<f64>().unwrap(), values);
    drop(arr);
    // Loaded already: attached, not read again; --exclusive refuses.
    let o = expect(0, &["load", input_s, &a]);
    assert!(stdout(&o).contains("nothing loaded"), "{}", stdout(&o));
    let o = expect(1, &["load", input_s, &a, "--exclusive"]);
    assert!(stderr(&o).contains(&a), "{}", stderr(&o));

    // Rows.
    let b = s.name("b");
    expect(0, &["load", input_s, &b, "--rows", "10:20"]);
    let arr = Array::attach(&b, &AttachOptions::default().readonly(true)).unwrap();
    assert_eq!(arr.shape(), &[10, 3]);
    assert_eq!(arr.to_vec::<f64>().unwrap(), values[30..60].to_vec());
    drop(arr);

    // Save, whole and some rows; numpy's header describes what was written.
    let out = s.path("out.npy");
    let o = expect(0, &["save", &a, out.to_str().unwrap()]);
    assert!(
        stdout(&o).starts_with(&format!("saved {a} to ")),
        "{}",
        stdout(&o)
    );
    let (h, data) = read_npy(&out);
    assert!(h.contains("(1000, 3)") && h.contains("<f8"), "{h}");
    assert_eq!(data, values);
    expect(0, &["save", &a, out.to_str().unwrap(), "--rows", "5:7"]);
    let (h, data) = read_npy(&out);
    assert!(h.contains("(2, 3)"), "{h}");
    assert_eq!(data, values[15..21].to_vec());

    // Raw: the same bytes after the header, described on the command line.
    let header_len = std::fs::read(&input).unwrap().len() - values.len() * 8;
    let c = s.name("c");
    let offset = header_len.to_string();
    expect(
        0,
        &[
            "load", input_s, &c, "--format", "raw", "--dtype", "f8", "--shape", "1000,3",
            "--offset", &offset,
        ],
    );
    let arr = Array::attach(&c, &AttachOptions::default().readonly(true)).unwrap();
    assert_eq!(arr.to_vec::<f64>().unwrap(), values);
    drop(arr);

    // Errors: a file that is not .npy (1), bad arguments (2); nothing is created.
    let junk = s.path("junk.npy");
    std::fs::write(&junk, b"definitely not numpy").unwrap();
    let o = expect(1, &["load", junk.to_str().unwrap(), &s.name("d")]);
    assert!(stderr(&o).contains("junk.npy"), "{}", stderr(&o));
    expect(1, &["load", input_s, &s.name("d"), "--rows", "990:1001"]);
    expect(1, &["save", &s.name("missing"), out.to_str().unwrap()]);
    expect(2, &["load", input_s, &s.name("d"), "--rows", "5"]);
    expect(2, &["load", input_s, &s.name("d"), "--format", "raw"]);
    expect(2, &["save", &a]);
    assert!(!s.path("d").exists());
}

/// The progress bar of a load, the same way: never on a pipe; on a terminal, drawn.
#[test]
fn load_progress_only_on_a_terminal() {
    let s = Scratch::new("loadprog");
    let input = s.path("in.npy");
    write_npy(&input, 300_000); // 7 MiB
    let input_s = input.to_str().unwrap();
    let a = s.name("a");
    let o = ndshm()
        .env("NDSHM_PROGRESS_DELAY_MS", "0")
        .args(["load", input_s, &a])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stderr.is_empty(), "progress on a pipe: {:?}", stderr(&o));
    assert!(!o.stdout.contains(&b'\r') && !o.stdout.contains(&0x1b));
    let out = s.path("out.npy");
    let o = ndshm()
        .env("NDSHM_PROGRESS_DELAY_MS", "0")
        .args(["save", &a, out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stderr.is_empty(), "progress on a pipe: {:?}", stderr(&o));

    let b = s.name("b");
    let term = on_terminal(&["load", input_s, &b]);
    assert!(term.contains(&format!("loading {input_s}")), "{term:?}");
    assert!(term.contains("MiB"), "{term:?}");
    let term = on_terminal(&["save", &b, out.to_str().unwrap()]);
    assert!(term.contains(&format!("saving {b}")), "{term:?}");
    assert!(term.contains(&format!("saved {b}")), "{term:?}");
}
