//! Growth along axis 0 (src/grow.rs): appending rows and setting the length, in place,
//! on both backends; what other handles and processes see; refusals; a full
//! filesystem; and crash safety with appenders killed by SIGKILL at random points while
//! a reader in another process checks every row it can see. The other processes are
//! tests/c/grow_tool.c.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Mount, TempDir, TempName, assert_ok, c_program, run, stdout};
use ndshm::{Array, AttachOptions, CreateOptions, Dtype, ErrorKind};

fn tool() -> std::path::PathBuf {
    c_program("tests/c/grow_tool.c")
}

/// Rows of `width` float64, row i all equal to i.
fn rows(from: i64, n: i64, width: i64) -> Vec<f64> {
    (from..from + n)
        .flat_map(|i| std::iter::repeat_n(i as f64, width as usize))
        .collect()
}

fn check_pattern(a: &Array) {
    let width = a.shape()[1];
    let v = a.to_vec::<f64>().unwrap();
    assert_eq!(v, rows(0, a.shape()[0], width), "rows follow the pattern");
}

#[test]
fn appending_one_row_at_a_time_grows_geometrically_in_place() {
    let t = TempName::new("grow-rows");
    let mut a = Array::create(&t.shm(), &[0, 16], Dtype::Float64, &Default::default()).unwrap();
    let mut r = Array::attach(&t.shm(), &AttachOptions::default().readonly(true)).unwrap();
    let mut capacities = vec![a.capacity()];
    for i in 0..5000 {
        assert_eq!(a.append(&rows(i, 1, 16)).unwrap(), i + 1);
        if *capacities.last().unwrap() != a.capacity() {
            capacities.push(a.capacity());
        }
    }
    assert_eq!(a.shape(), &[5000, 16]);
    check_pattern(&a);
    // 5000 rows of 128 bytes = 625 KiB: a doubling capacity changes about log2 times.
    assert!(
        capacities.len() <= 12,
        "capacity changed {} times: {capacities:?}",
        capacities.len()
    );
    for w in capacities.windows(2).skip(1) {
        assert!(w[1] >= 2 * w[0], "at least doubling: {capacities:?}");
    }
    // The file grew, it was not replaced: same inode, and the reader follows.
    let old_ptr = r.as_ptr();
    assert_eq!(r.shape(), &[0, 16]);
    assert!(r.refresh().unwrap());
    assert_eq!(r.shape(), &[5000, 16]);
    check_pattern(&r);
    assert!(!r.refresh().unwrap(), "nothing changed since");
    // SAFETY: the reader's first mapping is kept until the handle is dropped.
    let _ = unsafe { std::ptr::read_volatile(old_ptr) };
    // A fresh attach sees the same.
    let b = Array::attach(&t.shm(), &Default::default()).unwrap();
    assert_eq!(b.shape(), &[5000, 16]);
    check_pattern(&b);
}

#[test]
fn batches_set_len_and_file_backend() {
    let d = TempDir::new("grow-file");
    let name = d.file_name("series");
    let mut a = Array::create(&name, &[3, 4], Dtype::Float64, &Default::default()).unwrap();
    a.copy_from(&rows(0, 3, 4)).unwrap();
    assert_eq!(a.append(&rows(3, 1000, 4)).unwrap(), 1003);
    check_pattern(&a);
    // Shrink keeps the capacity; growing again brings zeros, not the old rows.
    let cap = a.capacity();
    a.set_len(10).unwrap();
    assert_eq!((a.shape(), a.capacity()), (&[10i64, 4][..], cap));
    check_pattern(&a);
    a.set_len(20).unwrap();
    let v = a.to_vec::<f64>().unwrap();
    assert_eq!(&v[..40], &rows(0, 10, 4)[..]);
    assert!(v[40..].iter().all(|&x| x == 0.0), "new rows are zeros");
    a.set_len(0).unwrap();
    assert_eq!(a.shape(), &[0, 4]);
    assert_eq!(a.append(&rows(0, 2, 4)).unwrap(), 2);
    drop(a);
    // A renamed file still opens with its shape: metadata is in the header.
    let moved = d.path.join("moved");
    std::fs::rename(d.path.join("series"), &moved).unwrap();
    let b = Array::attach(&format!("file://{}", moved.display()), &Default::default()).unwrap();
    assert_eq!(b.shape(), &[2, 4]);
    check_pattern(&b);
    // One dimension works in either order.
    let one = d.file_name("one");
    let mut c = Array::create(
        &one,
        &[2],
        Dtype::Int32,
        &CreateOptions::default().order(ndshm::Order::F),
    )
    .unwrap();
    assert_eq!(c.append(&[7i32, 8, 9]).unwrap(), 5);
    assert_eq!(c.to_vec::<i32>().unwrap(), vec![0, 0, 7, 8, 9]);
}

#[test]
fn what_cannot_grow_is_refused_with_a_reason() {
    let t = TempName::new("grow-refuse");
    let f = Array::create(
        &t.shm(),
        &[2, 3],
        Dtype::Float64,
        &CreateOptions::default().order(ndshm::Order::F).force(true),
    );
    let mut f = f.unwrap();
    let e = f.append(&[0.0f64; 3]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.message().contains("C-order"), "{e}");
    drop(f);

    let mut z = Array::create(
        &t.shm(),
        &[],
        Dtype::Float64,
        &CreateOptions::default().force(true),
    )
    .unwrap();
    let e = z.append(&[1.0f64]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(e.message().contains("0-d"), "{e}");
    drop(z);

    let mut s = Array::create(
        &t.shm(),
        &[2, 3],
        Dtype::Float64,
        &CreateOptions::default()
            .sharedarray_format(true)
            .force(true),
    )
    .unwrap();
    let e = s.append(&[0.0f64; 3]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.message().contains("SharedArray"), "{e}");
    drop(s);

    let mut a = Array::create(
        &t.shm(),
        &[2, 3],
        Dtype::Float64,
        &CreateOptions::default().force(true),
    )
    .unwrap();
    // Not a whole number of rows; another dtype; a byte count that does not match.
    assert_eq!(
        a.append(&[0.0f64; 4]).unwrap_err().kind(),
        ErrorKind::Invalid
    );
    assert_eq!(
        a.append(&[0i32; 3]).unwrap_err().kind(),
        ErrorKind::Mismatch
    );
    assert_eq!(
        a.append_bytes(2, &[0u8; 24]).unwrap_err().kind(),
        ErrorKind::Invalid
    );
    // A count whose byte size overflows, a length that overflows, a negative length.
    assert_eq!(
        a.append_bytes(u64::MAX, &[]).unwrap_err().kind(),
        ErrorKind::Invalid
    );
    assert_eq!(a.set_len(-1).unwrap_err().kind(), ErrorKind::Invalid);
    let e = a.set_len(i64::MAX).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
    assert_eq!(a.shape(), &[2, 3], "nothing changed");
    // Read-only handles cannot grow.
    let mut r = Array::attach(&t.shm(), &AttachOptions::default().readonly(true)).unwrap();
    assert_eq!(
        r.append(&[0.0f64; 3]).unwrap_err().kind(),
        ErrorKind::ReadOnly
    );
    // A handle whose array was deleted can append within the capacity, but not grow.
    a.set_len(2).unwrap();
    Array::delete(&t.shm()).unwrap();
    let big = vec![0.0f64; 3 * 100_000];
    let e = a.append(&big).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Stale, "{e}");
    assert!(e.message().contains("deleted"), "{e}");
    assert_eq!(a.shape(), &[2, 3]);
    // Another array under the name is never extended by the old handle.
    let _other = Array::create(&t.shm(), &[2, 3], Dtype::Float64, &Default::default()).unwrap();
    let e = a.append(&big).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Stale, "{e}");
    assert!(e.message().contains("another array"), "{e}");
    assert_eq!(
        Array::attach(&t.shm(), &Default::default())
            .unwrap()
            .shape(),
        &[2, 3]
    );
}

#[test]
fn a_full_filesystem_is_no_space_and_leaves_the_array_as_it_was() {
    let Some(m) = Mount::tmpfs("1m") else { return };
    let name = format!("file://{}/a", m.path().display());
    let mut a = Array::create(&name, &[0, 1024], Dtype::Uint8, &Default::default()).unwrap();
    let row = vec![5u8; 1024];
    let mut n = 0;
    let e = loop {
        match a.append(&row) {
            Ok(l) => n = l,
            Err(e) => break e,
        }
        assert!(n < 2000, "a 1 MiB filesystem must fill up");
    };
    assert_eq!(e.kind(), ErrorKind::NoSpace, "{e}");
    assert!(e.message().contains("requested"), "{e}");
    assert_eq!(a.shape(), &[n, 1024]);
    // Everything within the (reserved) capacity can be written: no SIGBUS.
    a.fill(9u8).unwrap();
    let size = std::fs::metadata(m.path().join("a")).unwrap().len();
    assert!(
        size <= a.geometry().data_offset + a.capacity() as u64 + 4096,
        "a failed extension is cut back ({size} bytes)"
    );
    let b = Array::attach(&name, &Default::default()).unwrap();
    assert_eq!(b.shape(), &[n, 1024]);
    assert!(b.to_vec::<u8>().unwrap().iter().all(|&x| x == 9));
    drop((a, b));
    Array::delete(&name).unwrap();

    // Large appends are written through the file: the same guarantees.
    let mut big = Array::create(&name, &[0, 64 << 10], Dtype::Uint8, &Default::default()).unwrap();
    let row = vec![7u8; 64 << 10];
    let mut n = 0;
    let e = loop {
        match big.append(&row) {
            Ok(l) => n = l,
            Err(e) => break e,
        }
        assert!(n < 100, "a 1 MiB filesystem must fill up");
    };
    assert_eq!(e.kind(), ErrorKind::NoSpace, "{e}");
    let b = Array::attach(&name, &Default::default()).unwrap();
    assert_eq!(b.shape(), &[n, 64 << 10]);
    assert!(b.to_vec::<u8>().unwrap().iter().all(|&x| x == 7));
}

#[test]
fn large_batches_are_written_through_the_file() {
    let t = TempName::new("grow-batch");
    let mut a = Array::create(&t.shm(), &[0, 16], Dtype::Float64, &Default::default()).unwrap();
    for k in 0..20 {
        assert_eq!(a.append(&rows(k * 1024, 1024, 16)).unwrap(), (k + 1) * 1024);
    }
    check_pattern(&a);
    let b = Array::attach(&t.shm(), &Default::default()).unwrap();
    check_pattern(&b);
    assert_eq!(b.shape(), &[20 * 1024, 16]);
}

/// A header rewrite cut short (a writer killed in the middle of it) leaves the shadow:
/// the array still opens, with the complete header.
#[test]
fn a_torn_header_falls_back_to_its_shadow() {
    let t = TempName::new("grow-shadow");
    let mut a = Array::create(&t.shm(), &[1, 2], Dtype::Float64, &Default::default()).unwrap();
    a.append(&[1.0f64, 1.0]).unwrap(); // writes the shadow, then the header
    drop(a);
    // Tear the header as a killed writer would: half of it rewritten.
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(t.path())
        .unwrap();
    f.write_all_at(&[0xEEu8; 300], 100).unwrap();
    let mut b = Array::attach(&t.shm(), &Default::default()).unwrap();
    assert_eq!(b.shape(), &[2, 2]);
    assert_eq!(b.to_vec::<f64>().unwrap(), vec![0.0, 0.0, 1.0, 1.0]);
    // The next append rewrites both.
    b.append(&[2.0f64, 2.0]).unwrap();
    let c = Array::attach(&t.shm(), &Default::default()).unwrap();
    assert_eq!(c.shape(), &[3, 2]);
    // Both torn: a named format error, not a crash.
    f.write_all_at(&[0xEEu8; 300], 100).unwrap();
    f.write_all_at(&[0xEEu8; 300], 2048 + 100).unwrap();
    let e = Array::attach(&t.shm(), &Default::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Format, "{e}");
}

fn spawn(args: &[&str]) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut c = Command::new(tool())
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(c.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "{args:?}: {line}");
    (c, out)
}

fn rest(out: &mut BufReader<std::process::ChildStdout>) -> String {
    let mut s = String::new();
    std::io::Read::read_to_string(out, &mut s).unwrap();
    s
}

/// Many rounds of an appender (a C process) killed by SIGKILL at a random point, while
/// a reader in another process checks that every row it sees is complete; after each
/// kill the array opens, and its length covers only written rows.
#[test]
fn appenders_killed_at_random_points_never_expose_unwritten_rows() {
    let t = TempName::new("grow-kill");
    drop(Array::create(&t.shm(), &[0, 16], Dtype::Float64, &Default::default()).unwrap());
    let (mut checker, mut check_out) = spawn(&["check", &t.shm(), "6"]);
    let mut seed = std::process::id() as u64;
    let mut rand = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    let start = Instant::now();
    let mut rounds = 0;
    let mut owner_died = 0;
    while start.elapsed() < Duration::from_secs(4) {
        let (mut c, mut out) = spawn(&["append", &t.shm(), "0"]);
        std::thread::sleep(Duration::from_micros(rand() % 20_000));
        c.kill().unwrap();
        c.wait().unwrap();
        owner_died += rest(&mut out).matches("owner died").count();
        let a = Array::attach(&t.shm(), &Default::default())
            .unwrap_or_else(|e| panic!("round {rounds}: the array must open: {e}"));
        check_pattern(&a);
        rounds += 1;
    }
    let o = checker.wait_with_output_from(&mut check_out);
    assert!(o.0.success(), "checker: {}", o.1);
    assert!(o.1.starts_with("checks "), "{}", o.1);
    let a = Array::attach(&t.shm(), &Default::default()).unwrap();
    check_pattern(&a);
    assert!(rounds >= 20, "only {rounds} rounds");
    assert!(a.shape()[0] > 0, "something was appended");
    eprintln!(
        "{rounds} rounds, {} rows, {owner_died} locks taken over from a killed appender; {}",
        a.shape()[0],
        o.1.trim()
    );
}

trait WaitOut {
    fn wait_with_output_from(
        &mut self,
        out: &mut BufReader<std::process::ChildStdout>,
    ) -> (std::process::ExitStatus, String);
}

impl WaitOut for Child {
    fn wait_with_output_from(
        &mut self,
        out: &mut BufReader<std::process::ChildStdout>,
    ) -> (std::process::ExitStatus, String) {
        let s = rest(out);
        (self.wait().unwrap(), s)
    }
}

/// Appenders in several processes are serialised: every row arrives whole, none lost.
#[test]
fn concurrent_appenders_in_processes_lose_no_row() {
    let t = TempName::new("grow-conc");
    drop(Array::create(&t.shm(), &[0, 8], Dtype::Float64, &Default::default()).unwrap());
    let per = 3000;
    let kids: Vec<_> = (1..=3)
        .map(|id| {
            Command::new(tool())
                .args(["tagged", &t.shm(), &id.to_string(), &per.to_string()])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for k in kids {
        let o = k.wait_with_output().unwrap();
        assert_ok(&o, "tagged appender");
        assert!(stdout(&o).contains("done"), "{}", stdout(&o));
    }
    let a = Array::attach(&t.shm(), &Default::default()).unwrap();
    assert_eq!(a.shape(), &[3 * per, 8]);
    let v = a.to_vec::<f64>().unwrap();
    let mut next = [0i64; 4];
    for row in v.chunks(8) {
        let id = row[1] as usize;
        assert!((1..=3).contains(&id), "row {row:?}");
        assert!(
            row[1..].iter().all(|&x| x == id as f64),
            "a whole row: {row:?}"
        );
        // Each process's rows arrive in its order.
        assert_eq!(row[0], (next[id] * 1000 + id as i64) as f64, "row {row:?}");
        next[id] += 1;
    }
    assert_eq!(&next[1..], &[per, per, per]);
    let _ = run(&mut Command::new("true"));
}

/// Found in review: a handle that refreshed before another appender died in the middle
/// of rewriting the header (the shadow complete, the header torn) must not append with
/// what it cached: it reads the shadow, maps the grown file, and appends after it.
#[test]
fn an_appender_after_a_torn_rewrite_uses_the_shadow_and_maps_the_growth() {
    use std::os::unix::fs::FileExt;
    let t = TempName::new("grow-torn");
    let mut a = Array::create(&t.shm(), &[4, 16], Dtype::Float64, &Default::default()).unwrap();
    a.copy_from(&rows(0, 4, 16)).unwrap();
    let mut r = Array::attach(&t.shm(), &Default::default()).unwrap();
    r.refresh().unwrap();
    // Another appender grows the array a lot, then (as if killed mid-rewrite) leaves
    // the header torn: the shadow is complete, the generation has changed.
    a.append(&rows(4, 100_000, 16)).unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(t.path())
        .unwrap();
    f.write_all_at(&[0xEE; 64], 80).unwrap();
    drop(a);
    assert_eq!(r.append(&rows(100_004, 1, 16)).unwrap(), 100_005);
    check_pattern(&r);
    let b = Array::attach(&t.shm(), &Default::default()).unwrap();
    assert_eq!(b.shape(), &[100_005, 16]);
    check_pattern(&b);
}

/// Found in review: a byte copy of the array moved under its name has the same header
/// identity; the handle must not grow the copy (nor leave its own lock held).
#[test]
fn a_copy_under_the_name_is_never_grown_by_the_old_handle() {
    let t = TempName::new("grow-copy");
    let mut a = Array::create(&t.shm(), &[4, 16], Dtype::Float64, &Default::default()).unwrap();
    a.copy_from(&rows(0, 4, 16)).unwrap();
    let copy = t.path().with_extension("copy");
    std::fs::copy(t.path(), &copy).unwrap();
    std::fs::rename(&copy, t.path()).unwrap();
    let e = a.append(&rows(4, 10_000, 16)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Stale, "{e}");
    assert!(!a.holds_lock(), "the lock is released");
    assert_eq!(a.shape(), &[4, 16]);
    let b = Array::attach(&t.shm(), &Default::default()).unwrap();
    assert_eq!(b.shape(), &[4, 16], "the copy is untouched");
    check_pattern(&b);
}

/// Found in review: rows taken from the array itself (here: rows a shrink dropped)
/// overlap the destination; they are copied out first.
#[test]
fn appending_rows_of_the_array_itself_is_safe() {
    let t = TempName::new("grow-alias");
    let mut a = Array::create(&t.shm(), &[100, 16], Dtype::Float64, &Default::default()).unwrap();
    a.copy_from(&rows(0, 100, 16)).unwrap();
    // SAFETY: the mapping stays alive with the handle; nobody else writes it.
    let view = unsafe { std::slice::from_raw_parts(a.as_ptr() as *const f64, 100 * 16) };
    let tail: Vec<f64> = view[50 * 16..90 * 16].to_vec();
    a.set_len(60).unwrap();
    assert_eq!(a.append(&view[50 * 16..90 * 16]).unwrap(), 100);
    assert_eq!(&a.to_vec::<f64>().unwrap()[60 * 16..], &tail[..]);
}

/// Found in review: C callers may pass the array's own memory (`sa_data`) as the data
/// to publish or the rows to append; it is copied first. A snapshot into the array's
/// own memory is refused.
#[test]
fn the_arrays_own_memory_as_input_through_c() {
    use ndshm::ffi::array::{sa_array, sa_attach, sa_data, sa_release};
    use ndshm::ffi::grow::sa_append;
    use ndshm::ffi::sa_status::*;
    use ndshm::ffi::sync::{sa_publish, sa_read_copy};
    use std::ffi::CString;
    let t = TempName::new("grow-own");
    let mut a = Array::create(&t.shm(), &[4, 2], Dtype::Float64, &Default::default()).unwrap();
    a.copy_from(&rows(0, 4, 2)).unwrap();
    let name = CString::new(t.shm()).unwrap();
    let mut h: *mut sa_array = std::ptr::null_mut();
    // SAFETY: valid C strings and out-pointers; the handle is released below.
    unsafe {
        assert_eq!(sa_attach(name.as_ptr(), 0, &mut h), 0);
        let d = sa_data(h);
        assert_eq!(sa_publish(h, d, 64, std::ptr::null_mut()), SA_OK as i32);
        let d = sa_data(h);
        let mut len = 0i64;
        // Rows 2 and 3 appended again (the source moves when the mapping grows).
        let src = (d as *const f64).add(4);
        assert_eq!(sa_append(h, src.cast(), 2, &mut len), SA_OK as i32);
        assert_eq!(len, 6);
        let d = sa_data(h);
        let e = sa_read_copy(h, d, 96, 0, std::ptr::null_mut(), std::ptr::null_mut());
        assert_eq!(e, SA_ERR_INVALID as i32);
        sa_release(h);
    }
    let b = Array::attach(&t.shm(), &Default::default()).unwrap();
    let mut want = rows(0, 4, 2);
    want.extend(rows(2, 2, 2));
    assert_eq!(b.to_vec::<f64>().unwrap(), want);
}
