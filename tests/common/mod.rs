//! Helpers shared by the integration tests: unique names that clean up after
//! themselves (also when a test fails), and C programs compiled against the header and
//! the built library.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// A unique `shm://` name for this test run, deleted (by any means) on drop.
pub struct TempName {
    pub name: String,
}

impl TempName {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        TempName {
            name: format!("ndshm-test-{}-{}-{n}", tag, std::process::id()),
        }
    }
    pub fn shm(&self) -> String {
        format!("shm://{}", self.name)
    }
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/dev/shm").join(&self.name)
    }
}

impl Drop for TempName {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path());
    }
}

/// A temporary directory removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("ndshm-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }
    pub fn file_name(&self, f: &str) -> String {
        format!("file://{}", self.path.join(f).display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding libndshm.so for this build (target/<profile>).
pub fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test-binary>
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// Compiles C sources into an executable linked against the built libndshm.so, with
/// warnings as errors. Extra flags (e.g. sanitizers) come from `extra`.
pub fn compile_c(sources: &[&Path], out_name: &str, extra: &[&str]) -> PathBuf {
    let lib = lib_dir();
    assert!(
        lib.join("libndshm.so").exists(),
        "libndshm.so not found in {}",
        lib.display()
    );
    let out_dir = lib.join("c-tests");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join(out_name);
    let target = env!("NDSHM_TARGET");
    let compiler = cc::Build::new()
        .cargo_metadata(false)
        .cargo_warnings(false)
        .target(target)
        .host(target)
        .opt_level(1)
        .debug(true)
        .get_compiler();
    let mut cmd = compiler.to_command();
    cmd.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg(format!("-I{}", root().join("include").display()))
        .args(sources)
        .args(extra)
        .arg(format!("-L{}", lib.display()))
        .arg("-lndshm")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(&out);
    let o = cmd.output().expect("the C compiler runs");
    assert!(
        o.status.success(),
        "compiling {out_name} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// Compiles one program from examples-c/ or tests/c/.
pub fn c_program(rel: &str) -> PathBuf {
    let src = root().join(rel);
    let stem = src.file_stem().unwrap().to_str().unwrap().to_string();
    compile_c(&[&src], &stem, &[])
}

/// Runs a command, returning its output; panics with both streams if it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn assert_ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
