//! Errors of the safe core. Each error has a kind (which the C layer maps to one status
//! code) and a complete human-readable message that names the array and, where there is
//! one, the OS error.

use std::fmt;
use std::io;

/// What went wrong, coarsely: one kind per C status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An argument is invalid: a bad name, shape, dtype, flag or size.
    Invalid,
    /// No array (or file) of that name exists.
    NotFound,
    /// An array of that name already exists.
    Exists,
    /// The segment is not a valid array: corrupt, truncated, foreign or a newer format.
    Format,
    /// The array exists but does not have the expected shape, dtype or order.
    Mismatch,
    /// Not enough memory or space (full tmpfs, RLIMIT_MEMLOCK, ...).
    NoSpace,
    /// The OS refused access.
    Permission,
    /// The array is still being initialised by its creator.
    NotReady,
    /// A wait ran out of time.
    Timeout,
    /// The holder of a lock died while holding it.
    OwnerDied,
    /// A write was attempted through a read-only handle.
    ReadOnly,
    /// The operation is not supported (for this format, platform or dtype).
    Unsupported,
    /// Any other OS or I/O error.
    Io,
}

impl ErrorKind {
    /// A short name for the kind, as used in messages and by the C layer.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Invalid => "invalid argument",
            ErrorKind::NotFound => "not found",
            ErrorKind::Exists => "already exists",
            ErrorKind::Format => "bad format",
            ErrorKind::Mismatch => "mismatch",
            ErrorKind::NoSpace => "no space",
            ErrorKind::Permission => "permission denied",
            ErrorKind::NotReady => "not ready",
            ErrorKind::Timeout => "timed out",
            ErrorKind::OwnerDied => "owner died",
            ErrorKind::ReadOnly => "read-only",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Io => "I/O error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An ndshm error: a kind, a full message and, when the OS reported one, its errno.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    errno: Option<i32>,
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

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }

    pub(crate) fn format(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Format, message)
    }

    /// Prefixes the message (e.g. with the array's name) keeping kind and errno.
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
}
