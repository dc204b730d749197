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

/// The directory of this build's artefacts (target/<profile>).
pub fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test-binary>
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// Builds the C library (cdylib) from the current sources and returns its path.
/// `cargo test` itself only builds the rlib, so without this the C programs would run
/// against whatever libndshm.so an earlier `cargo build` left behind.
pub fn built_cdylib() -> PathBuf {
    use std::sync::OnceLock;
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let release = lib_dir().file_name().is_some_and(|n| n == "release");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args([
            "build",
            "--lib",
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(root().join("Cargo.toml"));
        if release {
            cmd.arg("--release");
        }
        let o = cmd.output().expect("cargo runs");
        assert!(
            o.status.success(),
            "cargo build --lib failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let out = String::from_utf8_lossy(&o.stdout);
        // The compiler-artifact message of our lib lists the .so among its filenames.
        let so = out
            .lines()
            .filter(|l| l.contains("\"compiler-artifact\"") && l.contains("libndshm.so"))
            .find_map(|l| {
                let at = l.find("libndshm.so\"")?;
                let start = l[..at].rfind('"')? + 1;
                Some(PathBuf::from(&l[start..at + "libndshm.so".len()]))
            })
            .expect("cargo reports libndshm.so");
        assert!(so.exists(), "{}", so.display());
        so
    })
    .clone()
}

/// Compiles C sources into an executable linked against the built libndshm.so, with
/// warnings as errors. Extra flags (e.g. sanitizers) come from `extra`.
pub fn compile_c(sources: &[&Path], out_name: &str, extra: &[&str]) -> PathBuf {
    let lib = soname_dir();
    let out_dir = lib_dir().join("c-tests");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join(out_name);
    // Compile to a private name, then rename: parallel tests never run a half-written
    // binary.
    let tmp = out_dir.join(format!("{out_name}.{}.tmp", std::process::id()));
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
        .arg(&tmp);
    let o = cmd.output().expect("the C compiler runs");
    assert!(
        o.status.success(),
        "compiling {out_name} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::rename(&tmp, &out).unwrap();
    out
}

/// A directory with libndshm.so and its versioned SONAME link (libndshm.so.0.1), as an
/// install would lay them out, for C programs to link and run against.
pub fn soname_dir() -> PathBuf {
    let built = built_cdylib();
    let dir = lib_dir().join("c-tests").join("lib");
    std::fs::create_dir_all(&dir).unwrap();
    let soname = soname_of(&built);
    for link in ["libndshm.so".to_string(), soname] {
        let tmp = dir.join(format!("{link}.{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&built, &tmp).unwrap();
        std::fs::rename(&tmp, dir.join(&link)).unwrap();
    }
    dir
}

/// The SONAME recorded in a shared library (read from `DT_SONAME` via readelf-free
/// parsing: the build script sets it, so look for the string it wrote).
pub fn soname_of(lib: &Path) -> String {
    let bytes = std::fs::read(lib).unwrap();
    let pat = b"libndshm.so.";
    let at = bytes
        .windows(pat.len())
        .position(|w| w == pat)
        .expect("the library records a versioned SONAME");
    let end = bytes[at..].iter().position(|&b| b == 0).unwrap() + at;
    String::from_utf8(bytes[at..end].to_vec()).unwrap()
}

/// Compiles each program once per test process.
pub fn c_program_cached(rel: &str) -> PathBuf {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut m = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(p) = m.get(rel) {
        return p.clone();
    }
    let p = c_program_uncached(rel);
    m.insert(rel.to_string(), p.clone());
    p
}

/// Compiles one program from examples-c/ or tests/c/ (once per test process).
pub fn c_program(rel: &str) -> PathBuf {
    c_program_cached(rel)
}

fn c_program_uncached(rel: &str) -> PathBuf {
    let src = root().join(rel);
    let stem = src.file_stem().unwrap().to_str().unwrap().to_string();
    compile_c(&[&src], &stem, &[])
}

/// Runs a command, returning its output; panics with both streams if it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
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

/// The status codes as the `int`s C functions return, derived from `sa_status`.
pub mod codes {
    use ndshm::ffi::error::sa_status;
    macro_rules! codes {
        ($($n:ident),* $(,)?) => { $(pub const $n: i32 = sa_status::$n as i32;)* };
    }
    codes!(
        SA_OK,
        SA_ERR_INVALID,
        SA_ERR_NOT_FOUND,
        SA_ERR_EXISTS,
        SA_ERR_FORMAT,
        SA_ERR_MISMATCH,
        SA_ERR_NO_SPACE,
        SA_ERR_PERMISSION,
        SA_ERR_NOT_READY,
        SA_ERR_TIMEOUT,
        SA_ERR_OWNER_DIED,
        SA_ERR_READ_ONLY,
        SA_ERR_UNSUPPORTED,
        SA_ERR_IO,
        SA_ERR_PANIC,
    );
}

/// A small tmpfs mounted for one test (root only), unmounted on drop.
pub struct Mount {
    pub dir: TempDir,
}

impl Mount {
    pub fn tmpfs(size: &str) -> Option<Mount> {
        let dir = TempDir::new("tmpfs");
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "ndshm-test"])
            .arg(&dir.path)
            .output();
        match o {
            Ok(o) if o.status.success() => Some(Mount { dir }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs here ({}); run the tests as root to check \
                     the full-filesystem behaviour",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: no mount command ({e})");
                None
            }
        }
    }
    pub fn path(&self) -> PathBuf {
        self.dir.path.clone()
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir.path).status();
    }
}
