//! A full filesystem is SA_ERR_NO_SPACE at create, with requested and free bytes in the
//! message, and never a SIGBUS afterwards. Runs on a 1 MiB tmpfs the test mounts
//! (root only; skipped with a printed reason elsewhere).

mod common;

use std::process::Command;

use common::{Mount, assert_ok, c_program, run, stdout};
use ndshm::{Array, CreateOptions, Dtype, ErrorKind};

#[test]
fn full_tmpfs_is_no_space_not_sigbus() {
    let Some(m) = Mount::tmpfs("1m") else { return };
    let big = format!("file://{}/big", m.path().display());
    let e = Array::create(&big, &[4 << 20], Dtype::Uint8, &CreateOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSpace, "{e}");
    assert!(e.message().contains("4.0 MiB requested"), "{e}");
    assert!(
        e.message()
            .contains(&format!("free in {}", m.path().display())),
        "{e}"
    );
    assert_eq!(e.errno(), Some(libc::ENOSPC));
    assert!(
        !m.path().join("big").exists(),
        "a failed create leaves nothing behind"
    );

    // What fits is reserved: writing every byte afterwards cannot fault, even when the
    // rest of the filesystem is then filled by someone else.
    let a_name = format!("file://{}/a", m.path().display());
    let mut a = Array::create(
        &a_name,
        &[600 << 10],
        Dtype::Uint8,
        &CreateOptions::default(),
    )
    .unwrap();
    let e = Array::create(
        &format!("file://{}/b", m.path().display()),
        &[600 << 10],
        Dtype::Uint8,
        &CreateOptions::default(),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSpace, "{e}");
    let filler = m.path().join("filler");
    let _ = std::fs::write(&filler, vec![1u8; 1 << 20]); // fails partway: disk full
    a.fill(0xABu8).unwrap(); // would SIGBUS if sparse
    assert!(a.to_vec::<u8>().unwrap().iter().all(|&b| b == 0xAB));
    let _ = std::fs::remove_file(&filler);

    // SA_SPARSE opts out of the reservation: create succeeds (nothing is written here).
    let s = format!("file://{}/sparse", m.path().display());
    drop(
        Array::create(
            &s,
            &[4 << 20],
            Dtype::Uint8,
            &CreateOptions::default().sparse(true),
        )
        .unwrap(),
    );
    Array::delete(&s).unwrap();
    drop(a);
    Array::delete(&a_name).unwrap();
}

#[test]
fn full_ndshm_dir_through_c() {
    let Some(m) = Mount::tmpfs("1m") else { return };
    let tool = c_program("tests/c/sa_tool.c");
    let o = run(Command::new(&tool)
        .args(["create", "shm://too-big", "1024", "1024"])
        .env("NDSHM_DIR", m.path()));
    let out = stdout(&o);
    assert!(!o.status.success());
    assert!(
        out.starts_with("create SA_ERR_NO_SPACE shm://too-big: no space left: 8.0 MiB requested"),
        "{out}"
    );
    let o = run(Command::new(&tool)
        .args(["create", "shm://fits", "8", "8"])
        .env("NDSHM_DIR", m.path()));
    assert_ok(&o, "create small");
    assert!(m.path().join("fits").exists());
}
