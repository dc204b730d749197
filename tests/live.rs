//! Live data across real processes: consistent snapshots while a writer changes data
//! and shape, waiting for a newer version (timeout, wake-up, no CPU while blocked),
//! torn in-place reads, a writer that dies mid-write, and a lock whose holder is
//! killed. The other processes are tests/c/live_tool.c.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{TempName, assert_ok, c_program, run, stdout};
use ndshm::{Array, AttachOptions, CreateOptions, Dtype, ErrorKind, LockStart};

fn tool() -> std::path::PathBuf {
    c_program("tests/c/live_tool.c")
}

/// Capacity for every shape of live_tool's pattern (up to 13 x 17 float64).
const CAPACITY: u64 = 13 * 17 * 8;

fn create(t: &TempName) -> Array {
    Array::create(
        &t.shm(),
        &[1, 1],
        Dtype::Float64,
        &CreateOptions::default().capacity(Some(CAPACITY)),
    )
    .unwrap()
}

/// A child process killed when the test ends, also when it fails.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str]) -> Child {
    Command::new(tool())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The next line of a child's stdout.
fn line(out: &mut BufReader<ChildStdout>) -> String {
    let mut s = String::new();
    out.read_line(&mut s).unwrap();
    s.trim().to_string()
}

fn now_s() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// CPU time (user + system) of a process so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &s[s.rfind(')').unwrap() + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// One writer (C) publishes versions whose every element equals the version, changing
/// shape and dtype every 5th version; two readers (C, other processes) take 60,000
/// snapshots each and check every one is uniform and has that version's shape and
/// dtype; this process takes snapshots too, through the Rust API.
#[test]
fn snapshots_are_uniform_while_a_writer_changes_data_and_shape() {
    let t = TempName::new("live-snap");
    let _a = create(&t);
    let mut writer = Killed(spawn(&["writer", &t.shm()]));
    let mut wout = BufReader::new(writer.0.stdout.take().unwrap());
    assert_eq!(line(&mut wout), "ready");
    let readers: Vec<Child> = (0..2)
        .map(|_| spawn(&["reader", &t.shm(), "60000"]))
        .collect();
    // This process as a third reader, through the Rust API.
    let mut r = Array::attach(&t.shm(), &AttachOptions::default().readonly(true)).unwrap();
    let mut mine = 0;
    let mut versions = std::collections::BTreeSet::new();
    let give_up = Instant::now() + Duration::from_secs(30);
    while mine < 5000 || (versions.len() < 20 && Instant::now() < give_up) {
        let mut buf = vec![0u8; CAPACITY as usize];
        let s = r
            .read_snapshot(&mut buf, Some(Duration::from_secs(5)))
            .unwrap();
        mine += 1;
        versions.insert(s.version);
        if s.version == 0 {
            continue;
        }
        let uniform = match r.dtype() {
            Dtype::Float64 => buf[..s.nbytes]
                .chunks(8)
                .all(|c| f64::from_ne_bytes(c.try_into().unwrap()) == s.version as f64),
            Dtype::Int32 => buf[..s.nbytes]
                .chunks(4)
                .all(|c| i32::from_ne_bytes(c.try_into().unwrap()) as u64 == s.version),
            d => panic!("unexpected dtype {d}"),
        };
        assert!(uniform, "torn snapshot of version {}", s.version);
        assert_eq!(s.nbytes, r.nbytes());
    }
    let mut total = mine;
    for rd in readers {
        let o = rd.wait_with_output().unwrap();
        assert_ok(&o, "reader");
        let out = stdout(&o);
        let f: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(f[0], "snapshots", "{out}");
        total += f[1].parse::<usize>().unwrap();
        let distinct: u64 = f[3].parse().unwrap();
        let reshapes: u64 = f[5].parse().unwrap();
        // The snapshots spanned many versions and shape changes, not one quiet state.
        assert!(distinct >= 50, "{out}");
        assert!(reshapes >= 5, "{out}");
    }
    drop(writer);
    assert!(total >= 100_000, "{total}");
    assert!(versions.len() > 10, "{versions:?}");
}

#[test]
fn wait_with_a_timeout_expires() {
    let t = TempName::new("live-timeout");
    let _a = create(&t);
    let t0 = Instant::now();
    let o = run(Command::new(tool()).args(["wait", &t.shm(), "0", "200"]));
    assert_ok(&o, "wait");
    let out = stdout(&o);
    assert!(out.contains("SA_ERR_TIMEOUT after 0.2"), "{out}");
    assert!(out.contains("no version newer than 0"), "{out}");
    assert!(t0.elapsed() >= Duration::from_millis(200));
}

/// A reader blocked in the wait uses no CPU and wakes right after the publish.
#[test]
fn waiting_reader_is_woken_by_a_publish() {
    let t = TempName::new("live-wake");
    let mut a = create(&t);
    let mut child = spawn(&["wait", &t.shm(), "0", "10000"]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    assert_eq!(line(&mut out), "waiting");
    std::thread::sleep(Duration::from_millis(100));
    let before = cpu_ticks(child.id());
    std::thread::sleep(Duration::from_millis(300));
    let spent = cpu_ticks(child.id()) - before;
    assert!(
        spent <= 1,
        "the blocked waiter used {spent} ticks of CPU in 300 ms"
    );
    let published = now_s();
    let v = a.publish(&[7.0f64]).unwrap();
    assert_eq!(v, 1);
    let woke = line(&mut out);
    let f: Vec<&str> = woke.split_whitespace().collect();
    assert_eq!(&f[..2], &["woke", "1"], "{woke}");
    let latency = f[2].parse::<f64>().unwrap() - published;
    // A millisecond on an idle machine (docs/BENCHMARKS.md); generous here, where
    // other tests run in parallel.
    assert!(latency < 0.05, "woke {latency} s after the publish");
    assert!(child.wait().unwrap().success());
}

/// A reader that began an in-place read learns that a publish in between tore it.
#[test]
fn torn_in_place_read_is_detected() {
    let t = TempName::new("live-torn");
    let mut a = create(&t);
    a.publish(&[1.0f64]).unwrap();
    for publish_between in [false, true] {
        let mut child = spawn(&["torn", &t.shm()]);
        let mut out = BufReader::new(child.stdout.take().unwrap());
        assert!(line(&mut out).starts_with("begun"));
        if publish_between {
            a.publish(&[2.0f64]).unwrap();
        }
        child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
        let want = if publish_between {
            "SA_ERR_TORN"
        } else {
            "SA_OK"
        };
        assert_eq!(line(&mut out), want);
        assert!(child.wait().unwrap().success());
    }
}

/// A writer killed in the middle of a write: snapshots time out (a named error, not a
/// hang), a writer without the lock is refused, and a lock holder repairs the array.
#[test]
fn writer_dying_mid_write_is_bounded_and_repaired() {
    let t = TempName::new("live-midwrite");
    let mut a = create(&t);
    a.publish(&[1.0f64]).unwrap();
    let o = run(Command::new(tool()).args(["die-mid-write", &t.shm()]));
    assert!(o.status.success(), "{o:?}");
    let mut r = Array::attach(&t.shm(), &AttachOptions::default()).unwrap();
    let t0 = Instant::now();
    let e = r
        .read_snapshot(&mut [0u8; 8], Some(Duration::from_millis(100)))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(a.write_begin().unwrap_err().kind(), ErrorKind::Busy);
    assert_eq!(a.lock(None).unwrap(), LockStart::Clean);
    assert_eq!(a.publish(&[3.0f64]).unwrap(), 2);
    a.unlock().unwrap();
    let (v, version) = r.snapshot_vec::<f64>(Some(Duration::from_secs(1))).unwrap();
    assert_eq!((v, version), (vec![3.0], 2));
}

/// The lock holder is SIGKILLed while another process waits for the lock: the waiter
/// gets it with OwnerDied well under 100 ms after the kill.
#[test]
fn killed_lock_holder_is_detected_quickly() {
    let t = TempName::new("live-lock");
    let a = create(&t);
    let mut holder = Killed(spawn(&["hold", &t.shm()]));
    let mut out = BufReader::new(holder.0.stdout.take().unwrap());
    assert!(line(&mut out).starts_with("locked"));
    assert_eq!(
        a.lock(Some(Duration::ZERO)).unwrap_err().kind(),
        ErrorKind::Busy
    );
    let e = a.lock(Some(Duration::from_millis(50))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(e.message().contains("held by thread"), "{e}");
    let name = t.shm();
    let waiter = std::thread::spawn(move || {
        let b = Array::attach(&name, &AttachOptions::default()).unwrap();
        let r = b.lock(Some(Duration::from_secs(10)));
        let at = Instant::now();
        let held = b.holds_lock();
        if held {
            b.unlock().unwrap();
        }
        (r.map_err(|e| e.to_string()), at, held)
    });
    std::thread::sleep(Duration::from_millis(100));
    let killed = Instant::now();
    // Not reaped until the end: a killed holder is a zombie meanwhile, as a killed
    // child is until its parent waits for it.
    holder.0.kill().unwrap();
    let (r, at, held) = waiter.join().unwrap();
    let after = at.saturating_duration_since(killed);
    assert!(matches!(r, Ok(LockStart::OwnerDied(_))), "{r:?}");
    assert!(held);
    assert!(
        after < Duration::from_millis(100),
        "noticed {after:?} after the kill"
    );
    // Free again: a plain lock.
    assert_eq!(a.lock(None).unwrap(), LockStart::Clean);
    a.unlock().unwrap();
}

/// A recorded holder whose thread id now belongs to an unrelated live process (pid
/// reuse) is dead: the start time differs. The same id with the right start time is a
/// live holder.
#[test]
fn reused_pid_is_not_mistaken_for_the_holder() {
    use std::os::unix::fs::FileExt;
    let t = TempName::new("live-reuse");
    let a = create(&t);
    let other = Killed(Command::new("sleep").arg("30").spawn().unwrap());
    let pid = other.0.id();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let start: u64 = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(t.path())
        .unwrap();
    let forge = |start: u64| {
        let word = (5u32 << 22) | pid; // generation 5, holder `pid`
        f.write_all_at(&word.to_ne_bytes(), 1040).unwrap();
        f.write_all_at(&start.to_ne_bytes(), 1064).unwrap();
        f.write_all_at(&0u32.to_ne_bytes(), 1060).unwrap();
        f.write_all_at(&0u32.to_ne_bytes(), 1072).unwrap();
        f.write_all_at(&word.to_ne_bytes(), 1044).unwrap();
    };
    forge(start);
    assert_eq!(
        a.lock(Some(Duration::ZERO)).unwrap_err().kind(),
        ErrorKind::Busy
    );
    forge(start + 12345);
    assert!(matches!(
        a.lock(Some(Duration::ZERO)).unwrap(),
        LockStart::OwnerDied(p) if p as u32 == pid
    ));
    a.unlock().unwrap();
    drop(other);
}

#[test]
fn shapes_beyond_the_capacity_say_what_is_reserved() {
    let t = TempName::new("live-cap");
    let mut a = create(&t);
    let big = vec![0u8; 14 * 17 * 8];
    let e = a
        .publish_bytes(Some((&[14, 17], Dtype::Float64)), &big, false)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSpace);
    assert!(
        e.message().contains("needs 1.9 KiB (1904 bytes)")
            && e.message().contains("reserves 1.7 KiB (1768 bytes)"),
        "{e}"
    );
    assert_eq!(a.version().unwrap(), 0, "nothing published");
    assert_eq!(a.shape(), &[1, 1]);
    // With grow the capacity grows in place: a reader attached before follows with its
    // next snapshot (no re-attach), and a pointer it had stays valid.
    let mut r = Array::attach(&t.shm(), &AttachOptions::default().readonly(true)).unwrap();
    let old_ptr = r.as_ptr();
    let v = a
        .publish_bytes(Some((&[14, 17], Dtype::Float64)), &big, true)
        .unwrap();
    assert_eq!(v, 1);
    assert!(a.capacity() >= big.len());
    assert!(!r.is_stale());
    let (v, version) = r.snapshot_vec::<f64>(None).unwrap();
    assert_eq!((v.len(), version), (14 * 17, 1));
    assert!(v.iter().all(|&x| x == 0.0));
    // SAFETY: the reader's first mapping is kept until the handle is dropped.
    let _ = unsafe { std::ptr::read_volatile(old_ptr) };
    assert_eq!(r.wait_newer(0, Some(std::time::Duration::ZERO)).unwrap(), 1);
    assert_eq!(r.shape(), &[14, 17]);
}

/// The C entry points as C calls them: NULLs, bad flags, read-only handles and the
/// SharedArray layout are named errors.
#[test]
fn c_api_refuses_bad_arguments() {
    use ndshm::ffi::array::{SA_FORMAT_SHAREDARRAY, SA_READONLY, sa_array, sa_attach, sa_release};
    use ndshm::ffi::sa_status::*;
    use ndshm::ffi::sync::*;
    use std::ffi::CString;
    use std::ptr::{null, null_mut};
    let t = TempName::new("live-capi");
    let name = CString::new(t.shm()).unwrap();
    let shape = [4i64];
    let mut a: *mut sa_array = null_mut();
    // SAFETY: valid arguments or NULLs, as the functions document; every handle made
    // here is released once.
    unsafe {
        let f64 = ndshm::Dtype::Float64.code();
        assert_eq!(
            sa_create_ex(name.as_ptr(), 1, shape.as_ptr(), f64, 0, 4096, &mut a),
            0
        );
        let mut v = 0u64;
        assert_eq!(sa_get_version(null(), &mut v), SA_ERR_INVALID as i32);
        assert_eq!(sa_get_version(a, null_mut()), SA_ERR_INVALID as i32);
        assert_eq!(
            sa_wait_version(null(), 0, 0, null_mut()),
            SA_ERR_INVALID as i32
        );
        assert_eq!(sa_publish(a, null(), 32, null_mut()), SA_ERR_INVALID as i32);
        assert_eq!(
            sa_publish(a, [0u8; 8].as_ptr().cast(), 8, null_mut()),
            SA_ERR_INVALID as i32
        );
        assert_eq!(
            sa_publish_shape(a, 1, null(), f64, null(), 0, 0, null_mut()),
            SA_ERR_INVALID as i32
        );
        assert_eq!(
            sa_publish_shape(
                a,
                1,
                shape.as_ptr(),
                f64,
                [0u8; 32].as_ptr().cast(),
                32,
                1 << 30,
                null_mut()
            ),
            SA_ERR_INVALID as i32
        );
        assert_eq!(
            sa_write_end(a, null_mut()),
            SA_ERR_INVALID as i32,
            "no write begun"
        );
        assert_eq!(
            sa_write_shape(a, 1, shape.as_ptr(), f64, 0),
            SA_ERR_INVALID as i32
        );
        assert_eq!(sa_write_begin(a), 0);
        assert_eq!(sa_write_begin(a), SA_ERR_INVALID as i32, "twice");
        assert_eq!(sa_write_end(a, &mut v), 0);
        assert_eq!(v, 1);
        assert_eq!(
            sa_read_copy(a, null_mut(), 32, 0, null_mut(), null_mut()),
            SA_ERR_INVALID as i32
        );
        assert_eq!(
            sa_read_copy(
                a,
                [0u8; 8].as_mut_ptr().cast(),
                8,
                0,
                null_mut(),
                null_mut()
            ),
            SA_ERR_MISMATCH as i32
        );
        assert_eq!(sa_read_begin(a, 0, null_mut()), SA_ERR_INVALID as i32);
        assert_eq!(sa_lock(null(), 0), SA_ERR_INVALID as i32);
        assert_eq!(sa_unlock(a), SA_ERR_INVALID as i32, "not held");
        assert_eq!(sa_trylock(a), 0);
        assert_eq!(sa_lock(a, 0), SA_ERR_INVALID as i32, "not recursive");
        assert_eq!(sa_unlock(a), 0);
        let mut r: *mut sa_array = null_mut();
        assert_eq!(sa_attach(name.as_ptr(), SA_READONLY, &mut r), 0);
        assert_eq!(sa_lock(r, 0), SA_ERR_READ_ONLY as i32);
        assert_eq!(sa_write_begin(r), SA_ERR_READ_ONLY as i32);
        sa_release(r);
        sa_release(a);
        // The SharedArray layout has no header for any of this.
        let t2 = TempName::new("live-capi-sa");
        let n2 = CString::new(t2.shm()).unwrap();
        let mut s: *mut sa_array = null_mut();
        assert_eq!(
            sa_create_ex(
                n2.as_ptr(),
                1,
                shape.as_ptr(),
                f64,
                SA_FORMAT_SHAREDARRAY,
                0,
                &mut s
            ),
            0
        );
        assert_eq!(sa_get_version(s, &mut v), SA_ERR_UNSUPPORTED as i32);
        assert_eq!(sa_lock(s, 0), SA_ERR_UNSUPPORTED as i32);
        assert_eq!(
            sa_publish(s, [0u8; 32].as_ptr().cast(), 32, null_mut()),
            SA_ERR_UNSUPPORTED as i32
        );
        sa_release(s);
        let mut s2: *mut sa_array = null_mut();
        assert_eq!(
            sa_create_ex(
                n2.as_ptr(),
                1,
                shape.as_ptr(),
                f64,
                SA_FORMAT_SHAREDARRAY | 2,
                4096,
                &mut s2
            ),
            SA_ERR_UNSUPPORTED as i32,
            "a larger capacity in the SharedArray layout"
        );
    }
}

/// sa_shape and sa_strides promise pointers valid until sa_release: a snapshot that
/// (re)reads the geometry must update the values in place, not free them.
#[test]
fn shape_and_strides_pointers_stay_valid_across_snapshots() {
    use ndshm::ffi::array::*;
    let t = common::TempName::new("live-ptrs");
    let name = std::ffi::CString::new(t.name.as_str()).unwrap();
    let shape = [4i64, 3];
    let mut a: *mut sa_array = std::ptr::null_mut();
    // SAFETY: valid arguments; the handle is released below.
    unsafe {
        assert_eq!(
            sa_create(
                name.as_ptr(),
                2,
                shape.as_ptr(),
                ndshm::ffi::dtype::SA_FLOAT64,
                0,
                &mut a
            ),
            0
        );
        let (p_shape, p_strides) = (sa_shape(a), sa_strides(a));
        let mut buf = [0f64; 12];
        let mut version = 0u64;
        for _ in 0..3 {
            let mut reshaped = 0i32;
            let rc = ndshm::ffi::sync::sa_read_copy(
                a,
                buf.as_mut_ptr().cast(),
                96,
                1000,
                &mut version,
                &mut reshaped,
            );
            assert_eq!(rc, 0);
        }
        assert_eq!(
            (sa_shape(a), sa_strides(a)),
            (p_shape, p_strides),
            "same pointers"
        );
        assert_eq!(std::slice::from_raw_parts(p_shape, 2), &[4, 3]);
        assert_eq!(std::slice::from_raw_parts(p_strides, 2), &[24, 8]);
        sa_release(a);
    }
}
