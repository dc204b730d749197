//! Errors of the safe core. Each error has a kind (which the C layer maps to one status
//! code), a complete human-readable message that names the array and, where there is
//! one, the OS error, and optionally the option that would have made the call succeed
//! (which each binding names in its own words).

use std::fmt;
use std::io;

/// What went wrong, coarsely. This enum is the one list of error kinds: the C status
/// codes (`src/ffi/error.rs`) map from it and every binding derives from those.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, strum::Display, strum::IntoStaticStr, strum::EnumIter,
)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An argument is invalid: a bad name, shape, dtype, flag or size.
    #[strum(to_string = "invalid argument")]
    Invalid,
    /// No array (or file) of that name exists.
    #[strum(to_string = "not found")]
    NotFound,
    /// An array of that name already exists.
    #[strum(to_string = "already exists")]
    Exists,
    /// The segment is not a valid array: corrupt, truncated, foreign, a newer format,
    /// or not a regular file.
    #[strum(to_string = "bad format")]
    Format,
    /// The array exists but does not have the expected shape, dtype or order.
    #[strum(to_string = "mismatch")]
    Mismatch,
    /// Not enough memory or space (full tmpfs, RLIMIT_MEMLOCK, ...).
    #[strum(to_string = "no space")]
    NoSpace,
    /// The OS refused access, or the array belongs to another user and the caller did
    /// not opt in to trusting it.
    #[strum(to_string = "permission denied")]
    Permission,
    /// The array is still being initialised by a live creator.
    #[strum(to_string = "not ready")]
    NotReady,
    /// A wait ran out of time.
    #[strum(to_string = "timed out")]
    Timeout,
    /// The process that should have finished something died: the creator of an array
    /// still being initialised, or the holder of a lock.
    #[strum(to_string = "owner died")]
    OwnerDied,
    /// A write was attempted through a read-only handle.
    #[strum(to_string = "read-only")]
    ReadOnly,
    /// The operation is not supported (for this format, platform or dtype).
    #[strum(to_string = "unsupported")]
    Unsupported,
    /// Any other OS or I/O error.
    #[strum(to_string = "I/O error")]
    Io,
    /// Someone else holds what was asked for: the lock (try-lock), or a write in
    /// progress by another writer.
    #[strum(to_string = "busy")]
    Busy,
    /// The array was replaced under its name by a larger one (a shape change that did
    /// not fit): attach the name again.
    #[strum(to_string = "stale")]
    Stale,
    /// An in-place read overlapped a write: what was read may mix two versions.
    #[strum(to_string = "torn read")]
    Torn,
}

impl ErrorKind {
    /// A short name for the kind, as used in messages: `"no space"`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// An option of the API that changes what a call accepts; errors that a caller can get
/// past by choosing one name it, and each binding renders it in its own words (the C
/// flag, the Python keyword, the command-line switch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Opt {
    /// Replace an existing array (create).
    Force,
    /// Attach to an array owned by another user.
    AllowOtherOwner,
    /// Follow a symbolic link at the array's name.
    FollowSymlinks,
    /// Delete an array whose creator is still initialising it.
    InProgress,
}

impl Opt {
    /// The option's name in the Rust API (and the Python keyword).
    pub fn name(self) -> &'static str {
        match self {
            Opt::Force => "force",
            Opt::AllowOtherOwner => "allow_other_owner",
            Opt::FollowSymlinks => "follow_symlinks",
            Opt::InProgress => "in_progress",
        }
    }
}

/// An ndshm error: a kind, a full message, the OS errno when the OS reported one, and
/// the option that would lift it when there is one.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    errno: Option<i32>,
    option: Option<Opt>,
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            errno: None,
            option: None,
        }
    }

    /// An error from an OS error, classified by its errno. `what` names the array and the
    /// operation, e.g. `"shm://x: open"`.
    pub fn os(what: impl fmt::Display, err: io::Error) -> Self {
        let errno = err.raw_os_error();
        let kind = match errno {
            Some(libc::ENOENT) => ErrorKind::NotFound,
            Some(libc::EEXIST) => ErrorKind::Exists,
            Some(libc::EACCES) | Some(libc::EPERM) => ErrorKind::Permission,
            Some(libc::ENOSPC) | Some(libc::ENOMEM) | Some(libc::EDQUOT) | Some(libc::EFBIG) => {
                ErrorKind::NoSpace
            }
            Some(libc::EINVAL) | Some(libc::ENAMETOOLONG) => ErrorKind::Invalid,
            Some(libc::EROFS) => ErrorKind::ReadOnly,
            Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => ErrorKind::Unsupported,
            _ => ErrorKind::Io,
        };
        Error {
            kind,
            message: format!("{what}: {err}"),
            errno,
            option: None,
        }
    }

    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The full message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The OS errno behind the error, if any.
    pub fn errno(&self) -> Option<i32> {
        self.errno
    }

    /// The option that would make the call accept what it refused, if any. The message
    /// already names it in the Rust API's words.
    pub fn option(&self) -> Option<Opt> {
        self.option
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }

    pub(crate) fn format(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Format, message)
    }

    /// Records the option that lifts this error.
    pub(crate) fn with_option(mut self, o: Opt) -> Self {
        self.option = Some(o);
        self
    }

    /// Prefixes the message (e.g. with the array's name) keeping kind, errno and option.
    pub(crate) fn context(mut self, prefix: impl fmt::Display) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }
}

/// Formats a byte count for messages: `2.0 GiB`, `512 B`.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(2 << 30), "2.0 GiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }

    #[test]
    fn os_classification() {
        let e = Error::os("x", io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(e.kind(), ErrorKind::NoSpace);
        assert_eq!(e.errno(), Some(libc::ENOSPC));
        assert!(e.message().starts_with("x: "));
        let e = Error::os("x", io::Error::from_raw_os_error(libc::EIO));
        assert_eq!(e.kind(), ErrorKind::Io);
    }

    #[test]
    fn kind_names() {
        assert_eq!(ErrorKind::NoSpace.as_str(), "no space");
        assert_eq!(ErrorKind::Io.to_string(), "I/O error");
    }
}
