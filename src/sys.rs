//! Thin wrappers over the POSIX calls ndshm needs, returning `io::Result`. The only
//! module that talks to the OS besides memmap2 (mappings). Linux: shared memory is the
//! files of /dev/shm, creation uses `O_TMPFILE` + `linkat`, liveness reads /proc.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

use std::os::unix::ffi::OsStrExt;

use crate::format::{Creator, MAX_HOSTNAME, truncate_utf8};
use crate::name::{ArrayName, Backend, SHM_DIR};

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Retries a call interrupted by a signal.
fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn owned(fd: libc::c_int) -> File {
    // SAFETY: `fd` was just returned by a successful open and is owned by nobody else.
    File::from(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens an existing file. `oflag` is `open(2)` flags; `O_CLOEXEC` is always added.
pub(crate) fn open(path: &CStr, oflag: libc::c_int) -> io::Result<File> {
    let oflag = oflag | libc::O_CLOEXEC;
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
    retry(|| cvt(unsafe { libc::open(path.as_ptr(), oflag) })).map(owned)
}

/// Creates `path` exclusively (`O_CREAT | O_EXCL`), read-write, with `mode`.
pub(crate) fn create_excl(path: &Path, mode: u32) -> io::Result<File> {
    let c = cstr(path)?;
    let oflag = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: valid NUL-terminated string; mode is passed as the variadic argument.
    retry(|| cvt(unsafe { libc::open(c.as_ptr(), oflag, mode as libc::c_uint) })).map(owned)
}

/// Creates `path` exclusively for writing with mode 0666 less the umask (how ordinary
/// data files are created), not following a symbolic link.
pub(crate) fn create_excl_umask(path: &Path) -> io::Result<File> {
    let c = cstr(path)?;
    let oflag = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: valid NUL-terminated string; mode is passed as the variadic argument.
    retry(|| cvt(unsafe { libc::open(c.as_ptr(), oflag, 0o666 as libc::c_uint) })).map(owned)
}

/// Creates an unnamed regular file in directory `dir` (`O_TMPFILE`): it gets a name
/// only through [`link_fd`]. Fails with `EOPNOTSUPP`, `EISDIR` or `EINVAL` where the
/// filesystem or kernel does not support it.
pub(crate) fn open_tmpfile(dir: &Path, mode: u32) -> io::Result<File> {
    if tmpfile_disabled() {
        return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
    }
    let c = cstr(dir)?;
    let oflag = libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC;
    // SAFETY: valid NUL-terminated string; mode is passed as the variadic argument.
    retry(|| cvt(unsafe { libc::open(c.as_ptr(), oflag, mode as libc::c_uint) })).map(owned)
}

/// `NDSHM_NO_TMPFILE=1` makes creation use the fallback protocol, so that tests can
/// exercise it on filesystems that do support `O_TMPFILE`.
fn tmpfile_disabled() -> bool {
    static OFF: OnceLock<bool> = OnceLock::new();
    *OFF.get_or_init(|| std::env::var_os("NDSHM_NO_TMPFILE").is_some_and(|v| v == "1"))
}

/// Gives the unnamed file `f` (from [`open_tmpfile`]) the name `path`; fails with
/// `EEXIST` if the name exists, exactly as `O_EXCL` would.
pub(crate) fn link_fd(f: &File, path: &Path) -> io::Result<()> {
    let to = cstr(path)?;
    // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; the /proc/self/fd link works for anyone
    // (the kernel's documented way to link an O_TMPFILE file).
    static EMPTY_PATH_WORKS: AtomicI32 = AtomicI32::new(1);
    if EMPTY_PATH_WORKS.load(Ordering::Relaxed) == 1 {
        // SAFETY: valid fd and NUL-terminated strings for the call's duration.
        let r = retry(|| {
            cvt(unsafe {
                libc::linkat(
                    f.as_raw_fd(),
                    c"".as_ptr(),
                    libc::AT_FDCWD,
                    to.as_ptr(),
                    libc::AT_EMPTY_PATH,
                )
            })
        });
        match r {
            Ok(_) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                EMPTY_PATH_WORKS.store(0, Ordering::Relaxed)
            }
            Err(e) => return Err(e),
        }
    }
    let from = CString::new(format!("/proc/self/fd/{}", f.as_raw_fd()))
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: valid NUL-terminated strings for the call's duration.
    retry(|| {
        cvt(unsafe {
            libc::linkat(
                libc::AT_FDCWD,
                from.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::AT_SYMLINK_FOLLOW,
            )
        })
    })
    .map(|_| ())
}

/// `link(2)`: gives the file at `from` a second name `to`; `EEXIST` if `to` exists.
pub(crate) fn link(from: &Path, to: &Path) -> io::Result<()> {
    let (a, b) = (cstr(from)?, cstr(to)?);
    // SAFETY: valid NUL-terminated strings for the call's duration.
    retry(|| cvt(unsafe { libc::link(a.as_ptr(), b.as_ptr()) })).map(|_| ())
}

/// `rename(2)`: atomically makes `to` name what `from` names (replacing `to`).
pub(crate) fn rename(from: &Path, to: &Path) -> io::Result<()> {
    let (a, b) = (cstr(from)?, cstr(to)?);
    // SAFETY: valid NUL-terminated strings for the call's duration.
    retry(|| cvt(unsafe { libc::rename(a.as_ptr(), b.as_ptr()) })).map(|_| ())
}

/// Removes the name `path` (never follows a symbolic link: unlink removes the link).
pub(crate) fn unlink(path: &Path) -> io::Result<()> {
    let c = cstr(path)?;
    // SAFETY: valid NUL-terminated string for the call's duration.
    retry(|| cvt(unsafe { libc::unlink(c.as_ptr()) })).map(|_| ())
}

/// `renameat2(from, to, RENAME_EXCHANGE)`: atomically swaps what the two names refer
/// to (both must exist). `EINVAL` where the filesystem cannot.
pub(crate) fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    let (ca, cb) = (cstr(a)?, cstr(b)?);
    // SAFETY: valid NUL-terminated strings for the call's duration.
    retry(|| {
        cvt(unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                ca.as_ptr(),
                libc::AT_FDCWD,
                cb.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        })
    })
    .map(|_| ())
}

/// Copies up to `len` bytes from `src` at `src_off` to `dst` at `dst_off` inside the
/// kernel (`sendfile`): no user-space copy, no page faults on the destination. Returns
/// the bytes copied; 0 means `src` ended.
pub(crate) fn sendfile(
    dst: &File,
    dst_off: u64,
    src: &File,
    src_off: u64,
    len: usize,
) -> io::Result<usize> {
    let d =
        libc::off_t::try_from(dst_off).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    let mut s =
        libc::off_t::try_from(src_off).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    // sendfile writes at the destination's file position.
    // SAFETY: plain syscall on an fd we own.
    cvt_off(unsafe { libc::lseek(dst.as_raw_fd(), d, libc::SEEK_SET) })?;
    // The kernel moves at most 0x7ffff000 bytes per call.
    let len = len.min(0x7fff_f000);
    loop {
        // SAFETY: valid fds and a valid offset pointer for the call's duration.
        let r = unsafe { libc::sendfile(dst.as_raw_fd(), src.as_raw_fd(), &mut s, len) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn cvt_off(r: libc::off_t) -> io::Result<libc::off_t> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Writes `len` bytes from `src` to `f` at `offset`. `src` may be memory other processes
/// write (an array's mapping): the kernel copies it, no Rust reference is formed.
///
/// # Safety
/// `[src, src + len)` is mapped and readable for the duration of the call.
pub(crate) unsafe fn pwrite_raw(
    f: &File,
    src: *const u8,
    len: usize,
    offset: u64,
) -> io::Result<()> {
    let mut done = 0usize;
    while done < len {
        let off = libc::off_t::try_from(offset + done as u64)
            .map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
        let chunk = (len - done).min(0x7fff_f000);
        // SAFETY: per this function's contract the range is readable.
        let r = unsafe { libc::pwrite(f.as_raw_fd(), src.add(done).cast(), chunk, off) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        done += r as usize;
    }
    Ok(())
}

/// Whether files in `dir` get transparent huge pages: a tmpfs mounted `huge=always` or
/// `huge=within_size`, or any tmpfs when `shmem_enabled` is `force`. Read from
/// /proc/self/mountinfo (the mount holding `dir`: the longest matching mount point).
pub(crate) fn tmpfs_huge(dir: &Path) -> bool {
    let Ok(dir) = std::fs::canonicalize(dir) else {
        return false;
    };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let mut best: Option<(usize, bool)> = None;
    for line in info.lines() {
        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mp) = left.split(' ').nth(4) else {
            continue;
        };
        let mp = mp.replace("\\040", " ").replace("\\011", "\t");
        let mut r = right.split(' ');
        let (fstype, superopts) = (r.next().unwrap_or(""), r.nth(1).unwrap_or(""));
        if dir.starts_with(&mp) && best.is_none_or(|(l, _)| mp.len() >= l) {
            let huge = fstype == "tmpfs"
                && superopts
                    .split(',')
                    .any(|o| o == "huge=always" || o == "huge=within_size");
            best = Some((mp.len(), huge));
        }
    }
    let forced = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/shmem_enabled")
        .is_ok_and(|s| s.contains("[force]"));
    best.is_some_and(|(_, huge)| huge || forced)
}

/// `fsync(2)` of the file, or of a directory so a rename in it is durable.
pub(crate) fn fsync_path(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// `lstat(2)`: the name itself, not what a symbolic link points to.
pub(crate) fn lstat(path: &Path) -> io::Result<std::fs::Metadata> {
    std::fs::symlink_metadata(path)
}

/// The effective user id of this process.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The login name of user `uid`, if the user database has one.
pub(crate) fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 1024];
    // SAFETY: passwd is plain data; zeroed is a valid initial value.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: valid out-pointers and a buffer of the given length.
    let r = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut out) };
    if r != 0 || out.is_null() || pw.pw_name.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points to a NUL-terminated string inside `buf`.
    Some(
        unsafe { CStr::from_ptr(pw.pw_name) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// A directory being listed: `readdir(3)` over one open directory, its entries'
/// names borrowed from libc's buffer (nothing allocated per entry), and files opened
/// relative to it (no path walk per entry).
pub(crate) struct Dir(std::ptr::NonNull<libc::DIR>);

/// What [`Dir::next`] reports of an entry's type (`d_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryType {
    /// A regular file.
    File,
    /// The filesystem does not say (`DT_UNKNOWN`): ask [`DirEntry::is_file`].
    Unknown,
    /// Anything else: directories, symbolic links, FIFOs, devices, sockets.
    Other,
}

impl Dir {
    /// Opens `path` for listing (`O_NONBLOCK`, as `opendir(3)` does).
    pub(crate) fn open(path: &Path) -> io::Result<Dir> {
        let c = cstr(path)?;
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NONBLOCK | libc::O_CLOEXEC;
        // SAFETY: a NUL-terminated path for the call's duration.
        let fd = retry(|| cvt(unsafe { libc::open(c.as_ptr(), flags) }))?;
        // SAFETY: fdopendir takes ownership of the fd we just opened (closedir closes it).
        match std::ptr::NonNull::new(unsafe { libc::fdopendir(fd) }) {
            Some(d) => Ok(Dir(d)),
            None => {
                let e = io::Error::last_os_error();
                // SAFETY: fdopendir failed, so the fd is still ours.
                unsafe { libc::close(fd) };
                Err(e)
            }
        }
    }

    /// The next entry, `None` at the end (or on a read error, as `std::fs::ReadDir`
    /// ends after one). Its name lives until the next call.
    pub(crate) fn next(&mut self) -> Option<DirEntry<'_>> {
        // SAFETY: an open DIR we own; readdir's result stays valid until the next call
        // on the same DIR, which needs `&mut self` while the borrow lives.
        let e = unsafe { libc::readdir(self.0.as_ptr()) };
        if e.is_null() {
            return None;
        }
        // SAFETY: readdir returned a valid entry whose d_name is NUL-terminated.
        let (name, t) = unsafe { (CStr::from_ptr((*e).d_name.as_ptr()), (*e).d_type) };
        let t = match t {
            libc::DT_REG => EntryType::File,
            libc::DT_UNKNOWN => EntryType::Unknown,
            _ => EntryType::Other,
        };
        // SAFETY: an open DIR we own.
        let dir = unsafe { libc::dirfd(self.0.as_ptr()) };
        Some(DirEntry { dir, name, t })
    }
}

/// An entry of a [`Dir`].
pub(crate) struct DirEntry<'a> {
    dir: libc::c_int,
    name: &'a CStr,
    t: EntryType,
}

impl DirEntry<'_> {
    /// The name in its directory.
    pub(crate) fn name(&self) -> &CStr {
        self.name
    }

    /// The type `readdir` reported.
    pub(crate) fn entry_type(&self) -> EntryType {
        self.t
    }

    /// Whether the entry is a regular file (`fstatat` without following a symbolic link):
    /// for filesystems that report no `d_type`.
    pub(crate) fn is_file(&self) -> bool {
        let name = self.name;
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: a valid directory fd, a NUL-terminated name and a buffer of the size
        // the call writes.
        let r = retry(|| {
            cvt(unsafe {
                libc::fstatat(
                    self.dir,
                    name.as_ptr(),
                    st.as_mut_ptr(),
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            })
        });
        // SAFETY: fstatat succeeded, so it filled the whole struct.
        r.is_ok() && unsafe { st.assume_init() }.st_mode & libc::S_IFMT == libc::S_IFREG
    }

    /// Opens the entry read-only without following a symbolic link and without
    /// blocking (a FIFO planted in the directory must not hang the listing).
    pub(crate) fn open(&self) -> io::Result<File> {
        let name = self.name;
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
        // SAFETY: a valid directory fd and NUL-terminated name for the call's duration.
        retry(|| cvt(unsafe { libc::openat(self.dir, name.as_ptr(), flags) })).map(owned)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: an open DIR we own, closed once.
        unsafe { libc::closedir(self.0.as_ptr()) };
    }
}

/// What a listing needs of an open file: whether it is a regular file, its size,
/// permission bits and owner.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileStat {
    /// A regular file (not a FIFO, device, directory...).
    pub is_file: bool,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Number of names (hard links); 0 once deleted.
    pub nlink: u64,
}

/// `fstat(2)`: cheaper than the `statx` that `File::metadata` makes (which also asks
/// for the birth time and mount id), and a listing makes one per entry.
pub(crate) fn fstat(f: &File) -> io::Result<FileStat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: an fd we own and a buffer of the size the call writes.
    retry(|| cvt(unsafe { libc::fstat(f.as_raw_fd(), st.as_mut_ptr()) }))?;
    // SAFETY: fstat succeeded, so it filled the whole struct.
    let st = unsafe { st.assume_init() };
    Ok(FileStat {
        is_file: st.st_mode & libc::S_IFMT == libc::S_IFREG,
        size: st.st_size as u64,
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        // nlink_t is 32 bits on some targets.
        #[allow(clippy::unnecessary_cast)]
        nlink: st.st_nlink as u64,
    })
}

/// Sets the permission bits exactly (the umask applied at creation is undone).
pub(crate) fn fchmod(f: &File, mode: u32) -> io::Result<()> {
    // SAFETY: plain syscall on an fd we own.
    retry(|| cvt(unsafe { libc::fchmod(f.as_raw_fd(), mode as libc::mode_t) })).map(|_| ())
}

/// Reserves `[0, len)` so later writes cannot fail for lack of space.
pub(crate) fn fallocate(f: &File, len: u64) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    loop {
        // SAFETY: plain syscall on an fd we own; posix_fallocate returns the error
        // number instead of setting errno.
        let r = unsafe { libc::posix_fallocate(f.as_raw_fd(), 0, len) };
        match r {
            0 => return Ok(()),
            libc::EINTR => continue,
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// Writes all of `buf` at `offset`.
pub(crate) fn pwrite_all(f: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, buf, offset)
}

/// Reads up to `buf.len()` bytes at `offset`; returns how many were read.
pub(crate) fn pread_full(f: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match std::os::unix::fs::FileExt::read_at(f, &mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// The directory whose free space limits an array: `/dev/shm` or the file's parent.
pub(crate) fn space_dir(name: &ArrayName) -> std::path::PathBuf {
    match name.backend() {
        Backend::Shm(_) => SHM_DIR.into(),
        Backend::File(p) => match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => ".".into(),
        },
    }
}

/// Total and available bytes of the filesystem holding `dir`.
pub fn space(dir: &Path) -> io::Result<(u64, u64)> {
    let c = cstr(dir)?;
    // SAFETY: statvfs is plain data; zeroed is a valid initial value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and a valid out-pointer.
    retry(|| cvt(unsafe { libc::statvfs(c.as_ptr(), &mut st) }))?;
    let frsize = st.f_frsize as u64;
    Ok((
        (st.f_blocks as u64).saturating_mul(frsize),
        (st.f_bavail as u64).saturating_mul(frsize),
    ))
}

/// The system page size.
pub fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    // SAFETY: sysconf has no preconditions.
    *PAGE.get_or_init(|| match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => 4096,
    })
}

/// Soft and hard RLIMIT_MEMLOCK (`u64::MAX` for unlimited).
pub(crate) fn memlock_limit() -> Option<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } != 0 {
        return None;
    }
    // rlim_t is narrower than u64 on some targets.
    #[allow(clippy::unnecessary_cast)]
    Some((r.rlim_cur as u64, r.rlim_max as u64))
}

/// Nanoseconds since the Unix epoch.
pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos().min(i64::MAX as u128) as i64)
        .unwrap_or(0)
}

/// This machine's boot id (zeros when unknown).
pub(crate) fn boot_id() -> [u8; 16] {
    static ID: OnceLock<[u8; 16]> = OnceLock::new();
    *ID.get_or_init(|| {
        let mut id = [0u8; 16];
        if let Ok(s) = std::fs::read_to_string("/proc/sys/kernel/random/boot_id") {
            let hex: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
            if hex.len() == 32 {
                for (i, pair) in hex.chunks(2).enumerate() {
                    let s = std::str::from_utf8(pair).unwrap_or("0");
                    id[i] = u8::from_str_radix(s, 16).unwrap_or(0);
                }
            }
        }
        id
    })
}

/// This machine's host name (empty when unknown).
pub(crate) fn hostname() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let mut buf = [0u8; 256];
        // SAFETY: valid buffer of the given length.
        if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
            return String::new();
        }
        CStr::from_bytes_until_nul(&buf)
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default()
    })
}

/// Start time of process `pid` in clock ticks after boot (field 22 of /proc/PID/stat).
fn start_ticks(pid: i32) -> Option<u64> {
    use std::io::Read;
    // One read into a stack buffer: the line is well under 1 KiB, and this runs once
    // per creator in every listing.
    let mut f = File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut buf = [0u8; 1024];
    let n = f.read(&mut buf).ok()?;
    let s = std::str::from_utf8(&buf[..n]).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let rest = &s[s.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// This process's pid and start time, cached: a create then costs no getpid(2) or read
/// of /proc. A forked child must not inherit the cache, so a fork handler clears it
/// (fork runs `pthread_atfork` handlers; posix_spawn and vfork children exec at once).
static CREATOR_PID: AtomicI32 = AtomicI32::new(0);
static CREATOR_TICKS: AtomicU64 = AtomicU64::new(0);

extern "C" fn forget_creator_in_child() {
    CREATOR_PID.store(0, Ordering::Relaxed);
}

/// The calling process as a creator.
pub(crate) fn current_creator() -> Creator {
    static AT_FORK: std::sync::Once = std::sync::Once::new();
    AT_FORK.call_once(|| {
        // SAFETY: registers a handler that only stores to an atomic, which is
        // async-signal-safe as fork's child handlers must be.
        unsafe { libc::pthread_atfork(None, None, Some(forget_creator_in_child)) };
    });
    let cached = CREATOR_PID.load(Ordering::Acquire);
    let (pid, ticks) = if cached != 0 {
        (cached, CREATOR_TICKS.load(Ordering::Relaxed))
    } else {
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        let t = start_ticks(pid).unwrap_or(0);
        CREATOR_TICKS.store(t, Ordering::Relaxed);
        CREATOR_PID.store(pid, Ordering::Release);
        (pid, t)
    };
    Creator {
        pid,
        start_ticks: ticks,
        boot_id: boot_id(),
        hostname: truncate_utf8(hostname(), MAX_HOSTNAME).to_string(),
        pid_ns: pid_namespace(),
    }
}

/// Whether a creator process is still running: `None` when this machine cannot tell
/// (another host, another PID namespace, or no pid recorded). Callers treat `None` as
/// alive: nothing of a creator that cannot be checked is deleted or taken over.
pub fn creator_alive(c: &Creator) -> Option<bool> {
    if c.pid <= 0 {
        return None;
    }
    if !c.hostname.is_empty() && c.hostname != truncate_utf8(hostname(), MAX_HOSTNAME) {
        return None;
    }
    let ours = boot_id();
    if c.boot_id != [0; 16] && ours != [0; 16] && c.boot_id != ours {
        return Some(false); // created before the last reboot
    }
    // Another container sharing /dev/shm: its pids are not ours to look up.
    let ns = pid_namespace();
    if c.pid_ns != 0 && ns != 0 && c.pid_ns != ns {
        return None;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(c.pid, 0) };
    if r != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return Some(false);
    }
    if c.start_ticks != 0 {
        if let Some(t) = start_ticks(c.pid) {
            return Some(t == c.start_ticks); // a different start time: the pid was reused
        }
    }
    Some(true)
}

// ---- Futexes and thread identity, for the seqlock waits and the lock (src/sync.rs).

/// Waits while `*word == expected`, at most `timeout` (`None`: no limit), on a futex
/// shared between processes (no `FUTEX_PRIVATE_FLAG`: the kernel keys a shared futex
/// by the mapped file and offset, so every process mapping the segment shares it; it
/// also works on a read-only mapping). Returns `false` when the time ran out, `true`
/// otherwise (woken, the word differed, or a signal): the caller re-checks the word.
pub(crate) fn futex_wait(
    word: &std::sync::atomic::AtomicU32,
    expected: u32,
    timeout: Option<std::time::Duration>,
) -> bool {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let tsp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned 4-byte atomic for the call's duration (the
    // kernel only reads it); `tsp` is NULL or points to `ts`, alive until return.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            tsp,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    !(r == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ETIMEDOUT))
}

/// Wakes up to `n` processes waiting on `word` (see [`futex_wait`]).
pub(crate) fn futex_wake(word: &std::sync::atomic::AtomicU32, n: i32) {
    // SAFETY: as in futex_wait; FUTEX_WAKE only uses the address as a key.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            n,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        )
    };
}

/// Bumped in every forked child, so per-thread caches of the thread id (which a child's
/// thread does not share with its parent's) are refreshed there.
static FORK_GEN: AtomicU32 = AtomicU32::new(1);

extern "C" fn bump_fork_gen() {
    FORK_GEN.fetch_add(1, Ordering::Relaxed);
}

/// The calling thread as a lock holder: thread id, start time of the thread in clock
/// ticks after boot (0 if unknown), process id. Cached per thread (the lock and
/// writers consult it on every call; `gettid` alone costs a system call).
pub(crate) fn this_thread() -> (i32, u64, i32) {
    use std::cell::Cell;
    static AT_FORK: std::sync::Once = std::sync::Once::new();
    AT_FORK.call_once(|| {
        // SAFETY: registers a handler that only increments an atomic, which is
        // async-signal-safe as fork's child handlers must be.
        unsafe { libc::pthread_atfork(None, None, Some(bump_fork_gen)) };
    });
    thread_local! {
        static ME: Cell<(u32, i32, u64, i32)> = const { Cell::new((0, 0, 0, 0)) };
    }
    let fork_gen = FORK_GEN.load(Ordering::Relaxed);
    ME.with(|me| {
        let (g, tid, ticks, pid) = me.get();
        if g == fork_gen {
            return (tid, ticks, pid);
        }
        // SAFETY: gettid and getpid have no preconditions.
        let (tid, pid) = unsafe { (libc::gettid(), libc::getpid()) };
        let ticks = start_ticks(tid).unwrap_or(0);
        me.set((fork_gen, tid, ticks, pid));
        (tid, ticks, pid)
    })
}

/// This process's PID namespace, as the inode number of `/proc/self/ns/pid` (low 32
/// bits; the kernel allocates these numbers below 2^32), 0 if unknown. Thread and
/// process ids are only meaningful inside one namespace.
pub(crate) fn pid_namespace() -> u32 {
    use std::os::unix::fs::MetadataExt;
    static NS: AtomicU64 = AtomicU64::new(0);
    let fork_gen = FORK_GEN.load(Ordering::Relaxed) as u64;
    let cached = NS.load(Ordering::Relaxed);
    if cached >> 32 == fork_gen {
        return cached as u32;
    }
    let ns = std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino() as u32);
    NS.store(fork_gen << 32 | ns as u64, Ordering::Relaxed);
    ns
}

/// The first 4 bytes of this machine's boot id, as a `u32` (0 if unknown).
pub(crate) fn boot_id_word() -> u32 {
    let b = boot_id();
    u32::from_ne_bytes([b[0], b[1], b[2], b[3]])
}

/// Whether the thread `tid` that recorded `start` (its start time in ticks, 0 if not
/// yet recorded), `ns` (its PID namespace, 0 if unknown) and `boot` (its boot id word,
/// 0 if unknown) still runs. `None` when this process cannot tell: the thread is in
/// another PID namespace, whose ids mean nothing here.
pub(crate) fn thread_alive(tid: i32, start: u64, ns: u32, boot: u32) -> Option<bool> {
    if tid <= 0 {
        return None;
    }
    let my_boot = boot_id_word();
    if boot != 0 && my_boot != 0 && boot != my_boot {
        return Some(false); // recorded before the last reboot
    }
    let my_ns = pid_namespace();
    if ns != 0 && my_ns != 0 && ns != my_ns {
        return None;
    }
    // SAFETY: signal 0 only checks that the task exists (EPERM: it does, another
    // user's); a thread id names its thread here as a process id names its process.
    let r = unsafe { libc::kill(tid, 0) };
    if r != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return Some(false);
    }
    if let Some((state, t)) = task_stat(tid) {
        // A zombie (killed, not yet reaped by its parent) or dead task holds nothing.
        if state == b'Z' || state == b'X' || state == b'x' {
            return Some(false);
        }
        // Another start time: the id was reused by an unrelated task.
        return Some(start == 0 || t == start);
    }
    if start != 0 {
        // Unreadable: gone since the kill, or hidden (a /proc mounted hidepid=2 hides
        // other users' tasks); only the first is a death.
        // SAFETY: as above.
        let gone = unsafe { libc::kill(tid, 0) } != 0
            && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        return Some(!gone);
    }
    Some(true)
}

/// State letter (field 3) and start time (field 22) of task `tid` from
/// `/proc/TID/stat` (which exists for every thread id, listed or not).
fn task_stat(tid: i32) -> Option<(u8, u64)> {
    use std::io::Read;
    let mut f = File::open(format!("/proc/{tid}/stat")).ok()?;
    let mut buf = [0u8; 1024];
    let n = f.read(&mut buf).ok()?;
    let s = std::str::from_utf8(&buf[..n]).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let mut rest = s[s.rfind(')')? + 1..].split_whitespace();
    let state = *rest.next()?.as_bytes().first()?;
    Some((state, rest.nth(18)?.parse().ok()?))
}
