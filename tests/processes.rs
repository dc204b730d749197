//! Real processes sharing real memory: C programs compiled against include/ndshm.h and
//! the built library, run as separate processes next to this Rust test process.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{TempDir, TempName, assert_ok, c_program, run, stdout};
use ndshm::{Array, AttachOptions, CreateOptions, Dtype, ErrorKind};

fn tool() -> std::path::PathBuf {
    c_program("tests/c/sa_tool.c")
}

#[test]
fn c_examples_share_an_array() {
    let t = TempName::new("ex");
    let producer = c_program("examples-c/producer.c");
    let consumer = c_program("examples-c/consumer.c");
    let list = c_program("examples-c/list.c");
    let o = run(Command::new(&producer).args([&t.shm(), "300", "200"]));
    assert_ok(&o, "producer");
    // The Rust side sees what the C process wrote.
    let a = Array::attach(&t.shm(), &AttachOptions::default()).unwrap();
    assert_eq!(a.get::<f64>(201).unwrap(), 1.001);
    let want: f64 = (0..300)
        .flat_map(|i| (0..200).map(move |j| i as f64 + j as f64 / 1000.0))
        .sum();
    drop(a);
    let o = run(Command::new(&consumer).arg(t.shm()));
    assert_ok(&o, "consumer");
    let out = stdout(&o);
    assert!(
        out.contains("dtype <f8, order C, shape (300, 200), 60000 elements"),
        "{out}"
    );
    assert!(
        out.contains(&format!("checksum (sum) {want:.6}")),
        "{out} want {want:.6}"
    );
    let o = run(&mut Command::new(&list));
    assert_ok(&o, "list");
    let line = stdout(&o)
        .lines()
        .find(|l| l.starts_with(&t.shm()))
        .map(str::to_string);
    let line = line.unwrap_or_else(|| panic!("not listed:\n{}", stdout(&o)));
    assert!(
        line.contains("ndshm-v1") && line.contains("300x200") && line.contains("480000"),
        "{line}"
    );
    assert!(line.contains("(dead)"), "the producer has exited: {line}");
    let o = run(Command::new(&consumer).args([&t.shm(), "--delete"]));
    assert_ok(&o, "consumer --delete");
    assert_eq!(
        Array::attach(&t.shm(), &AttachOptions::default())
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn c_creates_rust_reads_and_replies() {
    let t = TempName::new("reply");
    let tool = tool();
    assert_ok(
        &run(Command::new(&tool).args(["create", &t.shm(), "50", "40"])),
        "create",
    );
    let a = Array::attach(&t.shm(), &AttachOptions::default()).unwrap();
    let x = a.to_vec::<i64>().unwrap();
    assert!(x.iter().enumerate().all(|(k, &v)| v == k as i64 + 1));
    drop(a);
    // A second C process checks every element and writes the reply.
    let o = run(Command::new(&tool).args(["verify", &t.shm()]));
    assert_ok(&o, "verify");
    assert_eq!(stdout(&o).trim(), "verified 2000");
    let a = Array::attach(&t.shm(), &AttachOptions::default()).unwrap();
    assert!(
        a.to_vec::<i64>()
            .unwrap()
            .iter()
            .enumerate()
            .all(|(k, &v)| v == -(k as i64 + 1))
    );
    Array::delete(&t.shm()).unwrap();
}

#[test]
fn attachers_never_see_half_made_arrays() {
    let t = TempName::new("atomic");
    let tool = tool();
    let looper = Command::new(&tool)
        .args(["attach-loop", &t.shm(), "2.0", "64", "1024"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let o = run(Command::new(&tool).args(["create-loop", &t.shm(), "3000", "64", "1024"]));
    assert_ok(&o, "create-loop");
    let o = looper.wait_with_output().unwrap();
    assert_ok(&o, "attach-loop");
    let out = stdout(&o);
    eprintln!("3000 create/delete rounds raced by a tight attach loop: {out}");
    let words: Vec<&str> = out.split_whitespace().collect();
    let attached: u64 = words[1].parse().unwrap();
    assert!(attached > 0, "the race was never exercised: {out}");
    // Arrays are named only once complete: an attacher never even sees one being made.
    assert_eq!(words[4], "not_ready");
    assert_eq!(words[5], "0", "{out}");
}

/// Eight processes create the same name at once: exactly one wins, with `O_TMPFILE` and
/// with the fallback protocol (temporary name, then `link`), and no temporary file is
/// left behind.
#[test]
fn racing_creators_one_wins() {
    for round in 0..10 {
        let fallback = round % 2 == 1;
        let t = TempName::new("race");
        let tool = tool();
        let kids: Vec<_> = (0..8)
            .map(|_| {
                Command::new(&tool)
                    .args(["race-create", &t.shm()])
                    .env("NDSHM_NO_TMPFILE", if fallback { "1" } else { "0" })
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        // Only these processes' temporary files count: other tests run in parallel.
        let pids: Vec<String> = kids
            .iter()
            .map(|k| format!(".ndshm-tmp.{}.", k.id()))
            .collect();
        let outs: Vec<String> = kids
            .into_iter()
            .map(|k| {
                let o = k.wait_with_output().unwrap();
                assert_ok(&o, "race-create");
                stdout(&o).trim().to_string()
            })
            .collect();
        let won = outs.iter().filter(|s| *s == "won").count();
        let lost = outs.iter().filter(|s| *s == "lost").count();
        assert_eq!((won, lost), (1, 7), "round {round}: {outs:?}");
        let temps = std::fs::read_dir("/dev/shm")
            .unwrap()
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                pids.iter().any(|p| n.starts_with(p))
            })
            .count();
        assert_eq!(temps, 0, "temporary files left behind");
        let a = Array::attach(&t.shm(), &AttachOptions::default()).unwrap();
        assert_eq!(a.shape(), &[1 << 20]);
        Array::delete(&t.shm()).unwrap();
    }
}

/// A creator killed at any point inside `sa_create` leaves either nothing under the name
/// or a complete array: the name is given only once the header is written and the
/// memory reserved. Run with `O_TMPFILE` and with the fallback protocol (a temporary
/// name, then `link`), whose leftover temporary file is the only trace.
#[test]
fn creator_killed_mid_create_leaves_nothing_half_made() {
    let tool = tool();
    for fallback in [false, true] {
        for delay_ms in [0u64, 5, 20, 60] {
            let t = TempName::new("killed");
            let mut cmd = Command::new(&tool);
            cmd.args(["big-create", &t.shm(), "3072"])
                .stdout(Stdio::piped());
            if fallback {
                cmd.env("NDSHM_NO_TMPFILE", "1");
            }
            let mut child = cmd.spawn().unwrap();
            let mut line = String::new();
            BufReader::new(child.stdout.as_mut().unwrap())
                .read_line(&mut line)
                .unwrap();
            assert_eq!(line.trim(), "starting");
            std::thread::sleep(Duration::from_millis(delay_ms));
            child.kill().unwrap();
            child.wait().unwrap();
            // Whatever the kill interrupted, the fallback's temporary file is the only
            // possible leftover; remove it (as `ndshm gc` will).
            let pid = child.id();
            for e in std::fs::read_dir("/dev/shm").unwrap().flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with(&format!(".ndshm-tmp.{pid}.")) {
                    assert!(fallback, "O_TMPFILE creation left {n}");
                    std::fs::remove_file(e.path()).unwrap();
                }
            }
            if !t.path().exists() {
                continue; // killed before the name was given: nothing to see
            }
            // The name exists: it must be the complete array.
            let a = Array::attach(&t.shm(), &AttachOptions::default().readonly(true))
                .expect("a named array is complete");
            assert_eq!(a.nbytes(), 3072 << 20);
            drop(a);
            Array::delete(&t.shm()).unwrap();
        }
    }
}

#[test]
fn mlock_beyond_rlimit_names_the_limit() {
    let t = TempName::new("mlim");
    let _a = Array::create(
        &t.shm(),
        &[1 << 20],
        Dtype::Uint8,
        &CreateOptions::default(),
    )
    .unwrap();
    let mut cmd = Command::new(tool());
    cmd.args(["mlock", &t.shm()]);
    // SAFETY: only async-signal-safe syscalls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 64 << 10,
                rlim_max: 64 << 10,
            };
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Root has CAP_IPC_LOCK, which ignores the limit: drop it from the bounding
            // set so the exec'd program runs without it (fails harmlessly as non-root).
            libc::prctl(libc::PR_CAPBSET_DROP, 14 /* CAP_IPC_LOCK */, 0, 0, 0);
            Ok(())
        });
    }
    let o = run(&mut cmd);
    assert_ok(&o, "mlock");
    let out = stdout(&o);
    assert!(
        out.starts_with("mlock SA_ERR_NO_SPACE") || out.starts_with("mlock SA_ERR_PERMISSION"),
        "{out}"
    );
    assert!(out.contains("RLIMIT_MEMLOCK soft 64.0 KiB"), "{out}");
    assert!(out.contains("mlock of 1.0 MiB"), "{out}");
    Array::delete(&t.shm()).unwrap();
}

#[test]
fn ndshm_dir_redirects_shm_names() {
    let tool = tool();
    let list = c_program("examples-c/list.c");
    for var in ["NDSHM_DIR", "JOB_SHMTMPDIR"] {
        let dir = TempDir::new("redir");
        let t = TempName::new("redir");
        let env = |c: &mut Command| {
            c.env_remove("NDSHM_DIR")
                .env_remove("JOB_SHMTMPDIR")
                .env(var, &dir.path);
        };
        let mut c = Command::new(&tool);
        c.args(["create", &t.shm(), "4", "4"]);
        env(&mut c);
        assert_ok(&run(&mut c), "create");
        assert!(
            dir.path.join(&t.name).exists(),
            "{var}: created in the directory"
        );
        assert!(!t.path().exists(), "{var}: not in /dev/shm");
        let mut c = Command::new(&tool);
        c.args(["verify", &t.name]);
        env(&mut c);
        assert_ok(&run(&mut c), "verify");
        let mut c = Command::new(&list);
        env(&mut c);
        let o = run(&mut c);
        assert_ok(&o, "list");
        assert!(
            stdout(&o).lines().any(|l| l.starts_with(&t.shm())),
            "{}",
            stdout(&o)
        );
        // Without the variable the name is not found in /dev/shm.
        let mut c = Command::new(&tool);
        c.args(["status", &t.shm()])
            .env_remove("NDSHM_DIR")
            .env_remove("JOB_SHMTMPDIR");
        assert!(stdout(&run(&mut c)).starts_with("SA_ERR_NOT_FOUND"));
    }
}

/// The C examples built with AddressSanitizer and UndefinedBehaviorSanitizer (checked
/// to be really linked), then run under valgrind: no memory error on the C side of the
/// API, including list and free.
#[test]
fn c_examples_under_sanitizers_and_valgrind() {
    let t = TempName::new("asan");
    let flags = [
        "-fsanitize=address,undefined",
        "-fno-omit-frame-pointer",
        "-fno-sanitize-recover=all",
    ];
    let root = common::root();
    let producer = common::compile_c(
        &[&root.join("examples-c/producer.c")],
        "producer-asan",
        &flags,
    );
    let consumer = common::compile_c(
        &[&root.join("examples-c/consumer.c")],
        "consumer-asan",
        &flags,
    );
    let list = common::compile_c(&[&root.join("examples-c/list.c")], "list-asan", &flags);
    for exe in [&producer, &consumer, &list] {
        let bytes = std::fs::read(exe).unwrap();
        assert!(
            bytes.windows(11).any(|w| w == b"__asan_init"),
            "{} is not linked with ASan",
            exe.display()
        );
    }
    // ASan's leak checker would also report the Rust runtime's one-time allocations.
    let env = [
        ("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=1"),
        ("UBSAN_OPTIONS", "halt_on_error=1"),
    ];
    let o = run(Command::new(&producer)
        .args([&t.shm(), "64", "32"])
        .envs(env));
    assert_ok(&o, "producer (ASan)");
    let o = run(Command::new(&list).envs(env));
    assert_ok(&o, "list (ASan)");
    let o = run(Command::new(&consumer).arg(t.shm()).envs(env));
    assert_ok(&o, "consumer (ASan)");

    let valgrind = Command::new("valgrind").arg("--version").output();
    if valgrind.map(|o| !o.status.success()).unwrap_or(true) {
        eprintln!("SKIPPED valgrind part: valgrind is not installed");
    } else {
        for (exe, args) in [
            (c_program("examples-c/consumer.c"), vec![t.shm()]),
            (c_program("examples-c/list.c"), vec![]),
        ] {
            let o = run(Command::new("valgrind")
                .args(["-q", "--error-exitcode=99", "--leak-check=no"])
                .arg(&exe)
                .args(&args));
            assert_ok(&o, &format!("valgrind {}", exe.display()));
        }
    }
    Array::delete(&t.shm()).unwrap();
}
