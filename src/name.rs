//! Array names: `shm://NAME`, `file://PATH`, bare `NAME`, and the `NDSHM_DIR` /
//! `JOB_SHMTMPDIR` redirect of `shm://` names into a directory.

use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Longest shm name accepted (NAME_MAX on Linux).
pub const MAX_SHM_NAME: usize = 255;
/// Longest `file://` path accepted (PATH_MAX on Linux, including the NUL).
pub const MAX_PATH: usize = 4095;

/// Where POSIX shared memory objects live as files on Linux.
pub const SHM_DIR: &str = "/dev/shm";

/// Environment variable that redirects `shm://NAME` to the file `$NDSHM_DIR/NAME`.
pub const ENV_DIR: &str = "NDSHM_DIR";
/// ISF's name for a job-private shared-memory directory; used when `NDSHM_DIR` is unset.
pub const ENV_JOB_DIR: &str = "JOB_SHMTMPDIR";

/// Where an array's bytes live.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Backend {
    /// POSIX shared memory object; the string is NAME without a leading slash.
    Shm(String),
    /// A regular file mapped shared: a `file://` name, or a `shm://` name redirected
    /// into `NDSHM_DIR`.
    File(PathBuf),
}

/// A parsed, validated array name together with where it resolves to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArrayName {
    canonical: String,
    backend: Backend,
    redirected: bool,
    /// An `npy://PATH` name: an existing `.npy` file mapped in place.
    npy: bool,
}

/// The directory `shm://` names are redirected to, if any (`NDSHM_DIR`, else
/// `JOB_SHMTMPDIR`; empty values count as unset).
pub fn redirect_dir() -> Option<PathBuf> {
    [ENV_DIR, ENV_JOB_DIR]
        .iter()
        .filter_map(std::env::var_os)
        .find(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn check_shm_name(name: &str, full: &str) -> Result<()> {
    let why = if name.is_empty() {
        "the name is empty"
    } else if name.contains('/') {
        "a shm name may not contain '/'"
    } else if name.len() > MAX_SHM_NAME {
        "the name is longer than 255 bytes"
    } else if name.contains('\0') {
        "the name contains a NUL byte"
    } else if name == "." || name == ".." {
        "'.' and '..' are not names"
    } else {
        return Ok(());
    };
    Err(Error::invalid(format!(
        "invalid array name {full:?}: {why}"
    )))
}

impl ArrayName {
    /// Parses `name` with the current environment's redirect.
    pub fn parse(name: &str) -> Result<ArrayName> {
        Self::parse_with(name, redirect_dir().as_deref())
    }

    /// Parses `name`, redirecting `shm://` names into `dir` when given.
    pub fn parse_with(name: &str, dir: Option<&Path>) -> Result<ArrayName> {
        let file = name
            .strip_prefix("file://")
            .map(|p| (p, false))
            .or_else(|| name.strip_prefix("npy://").map(|p| (p, true)));
        if let Some((path, npy)) = file {
            if path.is_empty() {
                return Err(Error::invalid(format!(
                    "invalid array name {name:?}: the path is empty"
                )));
            }
            if path.contains('\0') {
                return Err(Error::invalid(format!(
                    "invalid array name {name:?}: the path contains a NUL byte"
                )));
            }
            let last = path.rsplit('/').next().unwrap_or("");
            if last.is_empty() || last == "." || last == ".." {
                return Err(Error::invalid(format!(
                    "invalid array name {name:?}: the path names a directory, not a file"
                )));
            }
            if path.len() > MAX_PATH {
                return Err(Error::invalid(format!(
                    "invalid array name: the path is longer than {MAX_PATH} bytes"
                )));
            }
            return Ok(ArrayName {
                canonical: name.to_string(),
                backend: Backend::File(PathBuf::from(path)),
                redirected: false,
                npy,
            });
        }
        let shm = if let Some(n) = name.strip_prefix("shm://") {
            n
        } else if let Some(pos) = name.find("://") {
            return Err(Error::invalid(format!(
                "invalid array name {name:?}: unknown scheme {:?} (use shm://, file:// or npy://)",
                &name[..pos]
            )));
        } else {
            name
        };
        check_shm_name(shm, name)?;
        let mut canonical = String::with_capacity(6 + shm.len() + 1);
        canonical.push_str("shm://");
        canonical.push_str(shm);
        Ok(match dir {
            Some(d) => ArrayName {
                canonical,
                backend: Backend::File(d.join(shm)),
                redirected: true,
                npy: false,
            },
            None => ArrayName {
                canonical,
                backend: Backend::Shm(shm.to_string()),
                redirected: false,
                npy: false,
            },
        })
    }

    /// The name as users write it, with its scheme: `shm://x` or `file:///data/x`.
    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// Where the bytes live.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// True for an `npy://PATH` name: an existing numpy `.npy` file mapped in place (no
    /// copy), not an array ndshm creates or deletes.
    pub fn is_npy(&self) -> bool {
        self.npy
    }

    /// True when a `shm://` name was redirected into `NDSHM_DIR` / `JOB_SHMTMPDIR`.
    pub fn is_redirected(&self) -> bool {
        self.redirected
    }

    /// The file the array lives in: `/dev/shm/NAME` for POSIX shared memory (exactly
    /// what glibc's and musl's `shm_open` open on Linux), the path for a file.
    pub fn path(&self) -> std::borrow::Cow<'_, Path> {
        match &self.backend {
            Backend::Shm(n) => {
                let mut p = PathBuf::with_capacity(SHM_DIR.len() + 1 + n.len());
                p.push(SHM_DIR);
                p.push(n);
                p.into()
            }
            Backend::File(p) => p.as_path().into(),
        }
    }

    /// [`ArrayName::path`] as a C string, for the system calls.
    pub(crate) fn os_cstring(&self) -> CString {
        let path = self.path();
        let b = path.as_os_str().as_bytes();
        // Room for the NUL up front, so CString::new does not reallocate.
        let mut v = Vec::with_capacity(b.len() + 1);
        v.extend_from_slice(b);
        // Names were checked for NUL bytes when parsed (and NDSHM_DIR comes from the
        // environment, which cannot hold NUL).
        CString::new(v).expect("names are checked for NUL bytes")
    }

    /// The directory holding the array's file and the file's name in it.
    pub(crate) fn dir_and_file(&self) -> (PathBuf, OsString) {
        let path = self.path();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let file = path
            .file_name()
            .map(OsStr::to_os_string)
            .unwrap_or_default();
        (dir, file)
    }

    /// The name of an entry found in a listed directory, as it would be attached.
    pub(crate) fn for_listed(dir_kind: ListedDir, file_name: &OsStr, dir: &Path) -> Option<Self> {
        let name = file_name.to_str()?;
        match dir_kind {
            ListedDir::Shm => Some(ArrayName {
                canonical: format!("shm://{name}"),
                backend: Backend::Shm(name.to_string()),
                redirected: false,
                npy: false,
            }),
            ListedDir::Redirect => Some(ArrayName {
                canonical: format!("shm://{name}"),
                backend: Backend::File(dir.join(name)),
                redirected: true,
                npy: false,
            }),
            ListedDir::Files => {
                let path = dir.join(name);
                let s = OsString::from(path.clone()).into_vec();
                let s = String::from_utf8(s).ok()?;
                Some(ArrayName {
                    canonical: format!("file://{s}"),
                    backend: Backend::File(path),
                    redirected: false,
                    npy: false,
                })
            }
        }
    }
}

/// How names found in a listed directory are spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListedDir {
    /// `/dev/shm` while no redirect is active: `shm://NAME`.
    Shm,
    /// The redirect directory: `shm://NAME`.
    Redirect,
    /// Any other directory: `file://DIR/NAME`.
    Files,
}

impl ListedDir {
    /// What the name of every entry of `dir` starts with, its file name following: the
    /// name [`ArrayName::for_listed`] spells, without building one per entry. `None`
    /// when `dir` is not UTF-8 (then no entry of it has a name).
    pub(crate) fn prefix(self, dir: &Path) -> Option<String> {
        match self {
            ListedDir::Shm | ListedDir::Redirect => Some("shm://".to_string()),
            ListedDir::Files => {
                // Joined as for_listed joins (a separator only where one is missing).
                let joined = dir.join("x").into_os_string().into_string().ok()?;
                Some(format!("file://{}", &joined[..joined.len() - 1]))
            }
        }
    }
}

impl fmt::Display for ArrayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn p(s: &str) -> Result<ArrayName> {
        ArrayName::parse_with(s, None)
    }

    #[test]
    fn schemes() {
        let n = p("abc").unwrap();
        assert_eq!(n.as_str(), "shm://abc");
        assert_eq!(n.backend(), &Backend::Shm("abc".into()));
        assert_eq!(p("shm://abc").unwrap(), n);
        let f = p("file:///tmp/x.arr").unwrap();
        assert_eq!(f.backend(), &Backend::File("/tmp/x.arr".into()));
        assert_eq!(f.os_cstring().as_bytes(), b"/tmp/x.arr");
        assert_eq!(n.os_cstring().as_bytes(), b"/dev/shm/abc");
        assert_eq!(f.dir_and_file(), ("/tmp".into(), "x.arr".into()));
        assert_eq!(n.dir_and_file(), ("/dev/shm".into(), "abc".into()));
        let rel = p("file://rel/x").unwrap();
        assert_eq!(rel.backend(), &Backend::File("rel/x".into()));
    }

    #[test]
    fn redirect() {
        let n = ArrayName::parse_with("shm://abc", Some(Path::new("/job/shm"))).unwrap();
        assert_eq!(n.as_str(), "shm://abc");
        assert_eq!(n.backend(), &Backend::File("/job/shm/abc".into()));
        assert!(n.is_redirected());
        // file:// names are never redirected.
        let f = ArrayName::parse_with("file:///x", Some(Path::new("/job"))).unwrap();
        assert_eq!(f.backend(), &Backend::File("/x".into()));
    }

    #[test]
    fn invalid_names() {
        let long = "a".repeat(256);
        let long_path = format!("file:///{}", "a".repeat(5000));
        for bad in [
            "",
            "shm://",
            "a/b",
            "shm://a/b",
            "/abc",
            long.as_str(),
            "http://x",
            "s3://bucket/x",
            "file://",
            "file:///tmp/",
            "file:///tmp/..",
            "file://.",
            "a\0b",
            "file:///a\0b",
            ".",
            "shm://..",
            long_path.as_str(),
        ] {
            let e = p(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Invalid, "{bad:?}");
            assert!(e.message().starts_with("invalid array name"), "{}", e);
        }
        assert!(p(&"a".repeat(255)).is_ok());
    }
}
