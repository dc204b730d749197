//! The library used as a hostile or unlucky user would: failed and racing creates,
//! files that are not arrays under an array's name (FIFOs, sockets, symbolic links,
//! other users' files), other users' segments, truncation. Every scenario runs real
//! processes (the C test tool `tests/c/sa_tool.c`, some as a second user), and each
//! backs a line of the README's "Guarantees and limits".
//!
//! Tests that need root (mounting a tmpfs, running a process as another user) print
//! `SKIPPED:` with the reason elsewhere.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Mount, TempDir, TempName, c_program, stdout};
use ndshm::{Array, AttachOptions, CreateOptions, Dtype, ErrorKind, Opt};

/// A user id no account uses: a second user as far as the kernel is concerned.
const OTHER_UID: u32 = 54321;

fn tool() -> std::path::PathBuf {
    c_program("tests/c/sa_tool.c")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs the tool with `args` (and `env`), killing it if it has not finished in 20 s:
/// a hang is a failure, not a stuck test run.
fn tool_run(args: &[&str], env: &[(&str, &str)], uid: Option<u32>) -> Output {
    let mut cmd = Command::new(tool());
    cmd.args(args)
        .env_remove("NDSHM_DIR")
        .env_remove("JOB_SHMTMPDIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(u) = uid {
        cmd.uid(u).gid(u);
    }
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("sa_tool {args:?} hung for 20 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The first word the tool printed: a status name such as `SA_ERR_FORMAT`.
fn status_of(o: &Output) -> String {
    stdout(o)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// A tmpfs of `size`, or None with a printed reason.
fn tmpfs(size: &str) -> Option<Mount> {
    if !is_root() {
        eprintln!("SKIPPED: mounting a tmpfs needs root");
        return None;
    }
    Mount::tmpfs(size)
}

const SA_FORCE: &str = "2"; // 1 << 1
const SA_ALLOW_OTHER_OWNER: &str = "512"; // 1 << 9
const SA_FOLLOW_SYMLINKS: &str = "1024"; // 1 << 10
const SA_READONLY: &str = "256"; // 1 << 8
const SA_SHARE_ALL: &str = "64"; // 1 << 6

#[test]
fn flag_values_match_the_header() {
    use ndshm::ffi::array as f;
    for (s, v) in [
        (SA_FORCE, f::SA_FORCE),
        (SA_ALLOW_OTHER_OWNER, f::SA_ALLOW_OTHER_OWNER),
        (SA_FOLLOW_SYMLINKS, f::SA_FOLLOW_SYMLINKS),
        (SA_READONLY, f::SA_READONLY),
        (SA_SHARE_ALL, f::SA_SHARE_ALL),
    ] {
        assert_eq!(s.parse::<u32>().unwrap(), v);
    }
}

/// Failed creates, with and without force, on a nearly full filesystem never touch the
/// array another process has under the name, and leave no file behind; the message of
/// a small tmpfs says how to get a bigger one.
#[test]
fn failed_creates_keep_the_existing_array() {
    let Some(m) = tmpfs("64m") else { return };
    let dir = m.path();
    let env = [("NDSHM_DIR", dir.to_str().unwrap())];
    // D creates x (16 MiB of 0x5A); 48 MiB stay free.
    let o = tool_run(
        &["create-bytes", "x", &(16 << 20).to_string(), "0", "90"],
        &env,
        None,
    );
    assert_eq!(status_of(&o), "SA_OK", "{}", stdout(&o));
    // Six processes try to replace it with 60 MiB at once, and one without force.
    let racers: Vec<_> = (0..6)
        .map(|_| {
            let mut c = Command::new(tool());
            c.args(["create-bytes", "x", &(60 << 20).to_string(), SA_FORCE, "1"])
                .env("NDSHM_DIR", dir.to_str().unwrap())
                .stdout(Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for r in racers {
        let o = r.wait_with_output().unwrap();
        assert_eq!(status_of(&o), "SA_ERR_NO_SPACE", "{}", stdout(&o));
        let msg = stdout(&o);
        assert!(msg.contains("60.0 MiB requested"), "{msg}");
        assert!(
            msg.contains("--shm-size"),
            "a 64 MiB tmpfs gets the hint: {msg}"
        );
        assert!(msg.contains("NDSHM_DIR"), "{msg}");
    }
    let o = tool_run(
        &["create-bytes", "x", &(60 << 20).to_string(), "0", "1"],
        &env,
        None,
    );
    assert_eq!(status_of(&o), "SA_ERR_NO_SPACE", "{}", stdout(&o));
    // x is D's array, intact, and nothing else is in the directory.
    let o = tool_run(
        &["check-bytes", "x", &(16 << 20).to_string(), "90"],
        &env,
        None,
    );
    assert_eq!(stdout(&o).trim(), "ok");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["x"]);
}

/// Under racing force-replacements and failing creates of the same name, the name
/// always holds a complete array: an attacher never sees NOT_FOUND while replacements
/// happen (rename is atomic) and never sees a half-made array.
#[test]
fn force_replacement_is_atomic_for_attachers() {
    let t = TempName::new("atomic");
    let o = tool_run(&["create-bytes", &t.name, "65536", "0", "7"], &[], None);
    assert_eq!(status_of(&o), "SA_OK");
    let replacer = {
        let name = t.name.clone();
        std::thread::spawn(move || {
            for i in 0..300 {
                let fill = (i % 200 + 1) as u8;
                let mut a = Array::create(
                    &name,
                    &[65536],
                    Dtype::Uint8,
                    &CreateOptions::default().force(true),
                )
                .unwrap();
                a.fill(fill).unwrap();
            }
        })
    };
    let mut seen = 0;
    while !replacer.is_finished() {
        match Array::attach(&t.name, &AttachOptions::default().readonly(true)) {
            Ok(a) => {
                assert_eq!(a.nbytes(), 65536);
                seen += 1;
            }
            Err(e) => panic!("attach during force replacement: {e}"),
        }
    }
    replacer.join().unwrap();
    assert!(seen > 0);
    Array::delete(&t.name).unwrap();
}

/// Only regular files that are arrays are ever deleted or replaced: FIFOs, sockets,
/// directories, symbolic links (to an array, even), empty files, zero-filled files and
/// other files survive both `sa_delete` and `SA_FORCE`.
#[test]
fn only_arrays_are_deleted_or_replaced() {
    let d = TempDir::new("notarrays");
    let env = [("NDSHM_DIR", d.path.to_str().unwrap())];
    let target = d.path.join("real");
    Array::create(
        &format!("file://{}", target.display()),
        &[4],
        Dtype::Uint8,
        &CreateOptions::default(),
    )
    .unwrap();
    let mk = |n: &str| d.path.join(n);
    let fifo = std::ffi::CString::new(mk("fifo").to_str().unwrap()).unwrap();
    // SAFETY: valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let _sock = std::os::unix::net::UnixListener::bind(mk("sock")).unwrap();
    std::fs::create_dir(mk("dir")).unwrap();
    std::os::unix::fs::symlink(&target, mk("link")).unwrap();
    std::fs::write(mk("empty"), b"").unwrap();
    std::fs::write(mk("zeros"), vec![0u8; 20000]).unwrap();
    std::fs::write(mk("text"), b"somebody's notes").unwrap();
    for n in ["fifo", "sock", "dir", "link", "empty", "zeros", "text"] {
        let o = tool_run(&["delete", n, "0"], &env, None);
        let s = status_of(&o);
        assert!(s == "SA_ERR_FORMAT", "delete {n}: {}", stdout(&o));
        assert!(stdout(&o).contains("refusing"), "{n}: {}", stdout(&o));
        let o = tool_run(&["create-bytes", n, "8", SA_FORCE, "1"], &env, None);
        assert_eq!(
            status_of(&o),
            "SA_ERR_EXISTS",
            "force over {n}: {}",
            stdout(&o)
        );
        assert!(std::fs::symlink_metadata(mk(n)).is_ok(), "{n} must survive");
    }
    // The link still points at the untouched array.
    assert_eq!(std::fs::read_link(mk("link")).unwrap(), target);
    assert!(
        Array::attach(
            &format!("file://{}", target.display()),
            &AttachOptions::default()
        )
        .is_ok()
    );
}

/// Attaching never blocks, whatever is planted under the name: a FIFO in /dev/shm, in
/// NDSHM_DIR or at a file:// path is a format error at once, read-only, read-write and
/// with a timeout.
#[test]
fn fifo_under_a_name_never_hangs() {
    let t = TempName::new("fifo");
    let d = TempDir::new("fifo");
    let in_dir = d.path.join("f");
    for path in [t.path(), in_dir.clone()] {
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }
    let file_name = format!("file://{}", in_dir.display());
    let cases: [(&str, Vec<(&str, &str)>); 3] = [
        (t.name.as_str(), vec![]),
        ("f", vec![("NDSHM_DIR", d.path.to_str().unwrap())]),
        (file_name.as_str(), vec![]),
    ];
    for (name, env) in &cases {
        for (flags, timeout) in [(SA_READONLY, "0"), ("0", "0"), (SA_READONLY, "5000")] {
            let start = Instant::now();
            let o = tool_run(&["attach-flags", name, flags, timeout], env, None);
            assert_eq!(status_of(&o), "SA_ERR_FORMAT", "{name}: {}", stdout(&o));
            assert!(stdout(&o).contains("FIFO"), "{}", stdout(&o));
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "{name} took {:?}",
                start.elapsed()
            );
        }
    }
    std::fs::remove_file(t.path()).unwrap();
}

/// Symbolic links at an array's name are refused unless the caller opts in.
#[test]
fn symlinks_need_opt_in() {
    let d = TempDir::new("symlink");
    let real = format!("file://{}", d.path.join("real").display());
    Array::create(&real, &[3], Dtype::Int32, &CreateOptions::default()).unwrap();
    std::os::unix::fs::symlink(d.path.join("real"), d.path.join("link")).unwrap();
    let link = format!("file://{}", d.path.join("link").display());
    let e = Array::attach(&link, &AttachOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permission, "{e}");
    assert_eq!(e.option(), Some(Opt::FollowSymlinks));
    assert!(e.message().contains("symbolic link"), "{e}");
    let a = Array::attach(&link, &AttachOptions::default().follow_symlinks(true)).unwrap();
    assert_eq!(a.shape(), &[3]);
    // The C flag is named in the C message.
    let o = tool_run(&["attach-flags", &link, "0", "0"], &[], None);
    assert_eq!(status_of(&o), "SA_ERR_PERMISSION");
    assert!(stdout(&o).contains("SA_FOLLOW_SYMLINKS"), "{}", stdout(&o));
    let o = tool_run(&["attach-flags", &link, SA_FOLLOW_SYMLINKS, "0"], &[], None);
    assert_eq!(status_of(&o), "SA_OK", "{}", stdout(&o));
}

/// Another user's segment (squatted name, or a shared 0666 array) is refused by
/// default, root included, with a message naming the owner; the opt-in attaches it.
#[test]
fn other_users_segments_need_opt_in() {
    if !is_root() {
        eprintln!("SKIPPED: running a process as a second user needs root");
        return;
    }
    let t = TempName::new("other");
    let o = tool_run(
        &["create-bytes", &t.name, "4096", SA_SHARE_ALL, "3"],
        &[],
        Some(OTHER_UID),
    );
    assert_eq!(status_of(&o), "SA_OK", "{}", stdout(&o));
    let e = Array::attach(&t.name, &AttachOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permission, "{e}");
    assert!(e.message().contains(&format!("uid {OTHER_UID}")), "{e}");
    assert!(e.message().contains("allow_other_owner"), "{e}");
    assert_eq!(e.option(), Some(Opt::AllowOtherOwner));
    let o = tool_run(&["attach-flags", &t.name, "0", "0"], &[], None);
    assert_eq!(status_of(&o), "SA_ERR_PERMISSION");
    assert!(
        stdout(&o).contains("SA_ALLOW_OTHER_OWNER"),
        "{}",
        stdout(&o)
    );
    let a = Array::attach(&t.name, &AttachOptions::default().allow_other_owner(true)).unwrap();
    assert_eq!(a.get::<u8>(4095).unwrap(), 3);
    // The other user cannot attach root's private arrays at all (the OS says no).
    let mine = TempName::new("mine");
    Array::create(&mine.name, &[1], Dtype::Uint8, &CreateOptions::default()).unwrap();
    let o = tool_run(
        &["attach-flags", &mine.name, SA_ALLOW_OTHER_OWNER, "0"],
        &[],
        Some(OTHER_UID),
    );
    assert_eq!(status_of(&o), "SA_ERR_PERMISSION", "{}", stdout(&o));
    Array::delete(&mine.name).unwrap();
    Array::delete(&t.name).unwrap();
}

/// A second user who may write the directory cannot make ndshm delete a file it cannot
/// read: without reading it, nothing proves it is an array.
#[test]
fn unreadable_files_are_not_deleted() {
    if !is_root() {
        eprintln!("SKIPPED: running a process as a second user needs root");
        return;
    }
    let d = TempDir::new("unreadable");
    std::fs::set_permissions(&d.path, std::fs::Permissions::from_mode(0o777)).unwrap();
    let victim = d.path.join("victim");
    std::fs::write(&victim, b"root's private data, not an array").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    let arr = format!("file://{}", d.path.join("arr").display());
    Array::create(&arr, &[8], Dtype::Uint8, &CreateOptions::default()).unwrap();
    let env = [("NDSHM_DIR", d.path.to_str().unwrap())];
    for n in ["victim", "arr"] {
        let o = tool_run(&["delete", n, "0"], &env, Some(OTHER_UID));
        assert_eq!(status_of(&o), "SA_ERR_PERMISSION", "{n}: {}", stdout(&o));
        assert!(stdout(&o).contains("cannot read it"), "{}", stdout(&o));
        assert!(d.path.join(n).exists(), "{n} must survive");
    }
    Array::delete(&arr).unwrap();
}

/// mlock on a segment another process truncated says so, instead of blaming
/// RLIMIT_MEMLOCK.
#[test]
fn mlock_on_truncated_segment_says_truncated() {
    let d = TempDir::new("trunc");
    let name = format!("file://{}", d.path.join("a").display());
    let a = Array::create(&name, &[1 << 20], Dtype::Uint8, &CreateOptions::default()).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(d.path.join("a"))
        .unwrap()
        .set_len(4096)
        .unwrap();
    let e = a.mlock().unwrap_err();
    assert!(e.message().contains("truncated"), "{e}");
    assert!(!e.message().contains("RLIMIT"), "{e}");
}

/// Shapes numpy cannot represent are refused even when empty, from every entry point.
#[test]
fn shapes_with_overflowing_partial_products_are_refused() {
    for shape in [
        vec![0, 1 << 62, 1 << 62],
        vec![1 << 40, 1 << 40, 0],
        vec![0, i64::MAX],
    ] {
        let e = Array::create("x", &shape, Dtype::Float64, &CreateOptions::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid, "{shape:?}");
        assert!(e.message().contains("numpy cannot"), "{e}");
    }
    assert!(!Path::new("/dev/shm/x").exists());
}
