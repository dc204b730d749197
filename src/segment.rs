//! The segment protocol: how a segment is written and read by processes that do not
//! trust each other. docs/FORMAT.md ("Creating a segment", "Reading a segment")
//! describes the same steps for implementers in other languages.
//!
//! * [`open`] and [`read`] are the one reader, used by attach, info, list and delete.
//!   `open` refuses what is not a regular file, symbolic links and (unless asked) other
//!   users' segments, without ever blocking; `read` validates the header or trailer
//!   against the real file size with checked arithmetic.
//! * [`Writer`] creates a segment in explicit phases: [`Writer::begin`] makes a file
//!   with no name in the target directory (`O_TMPFILE`), [`Writer::write_header`],
//!   [`Writer::reserve`], optionally [`Writer::claim`] (name it while still
//!   INITIALISING, for loaders that fill in place while others wait), then
//!   [`Writer::publish`] stores READY and names the file: `linkat` for a new name
//!   (exclusive, like `O_EXCL`) or `rename` to replace an array. Nothing is ever
//!   visible under an array's name before its header is complete, and a failure never
//!   touches a name this call did not create.
//! * [`remove`] deletes only regular files that positively are arrays.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering, fence};

use crate::error::{Error, ErrorKind, Opt, Result, human_bytes};
use crate::format::{
    self, CHECKED_BYTES, Creator, CreatorView, Geometry, GeometryView, Header, HeaderView,
    SegmentFormat, SharedArrayAbi, State, off,
};
use crate::name::ArrayName;
use crate::options::DeleteOptions;
use crate::sys;

/// Prefix of the temporary names used where `O_TMPFILE` is unavailable and while an
/// array replaces another. Listings skip such names.
pub(crate) const TEMP_PREFIX: &str = ".ndshm-tmp.";

/// How many times a reader re-reads a header whose checksum fails before calling the
/// segment corrupt: a header rewritten by its owner (shape changes) can be read torn.
const TORN_READ_RETRIES: usize = 3;

/// What the reader found in a segment: everything but the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    pub format: SegmentFormat,
    pub geometry: Geometry,
    pub state: State,
    pub creator: Option<Creator>,
    pub created_ns: i64,
}

/// A [`Segment`] without a heap allocation: what a listing reads (see
/// [`format::GeometryView`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentView {
    pub format: SegmentFormat,
    pub geometry: GeometryView,
    pub state: State,
    pub creator: Option<CreatorView>,
    pub created_ns: i64,
}

impl SegmentView {
    pub fn to_segment(&self) -> Segment {
        Segment {
            format: self.format,
            geometry: self.geometry.to_geometry(),
            state: self.state,
            creator: self.creator.as_ref().map(CreatorView::to_creator),
            created_ns: self.created_ns,
        }
    }
}

/// How an existing segment may be opened.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Access {
    pub write: bool,
    pub allow_other_owner: bool,
    pub follow_symlinks: bool,
}

/// Opens an existing segment without blocking (a FIFO planted under an array's name
/// must not hang the caller), refusing anything but a regular file, a symbolic link
/// unless `follow_symlinks`, and another user's file unless `allow_other_owner`.
pub(crate) fn open(name: &ArrayName, a: &Access) -> Result<(File, Metadata)> {
    let file = open_unchecked(name, a)?;
    let meta = file
        .metadata()
        .map_err(|e| Error::os(format!("{name}: stat"), e))?;
    if !meta.is_file() {
        return Err(not_regular(name, &meta));
    }
    if !a.allow_other_owner && meta.uid() != sys::euid() {
        let (uid, me) = (meta.uid(), sys::euid());
        return Err(Error::new(
            ErrorKind::Permission,
            format!(
                "{name}: owned by {}, not by you ({}): another user's segment can be \
                 truncated under you (killing this process with SIGBUS) or planted under \
                 a name you expected; use the allow_other_owner option if you trust that user",
                user(uid),
                user(me)
            ),
        )
        .with_option(Opt::AllowOtherOwner));
    }
    Ok((file, meta))
}

/// [`open`] without the `fstat` checks: never blocks and never follows a symbolic link
/// unless asked, but the file may be of any type and owner.
fn open_unchecked(name: &ArrayName, a: &Access) -> Result<File> {
    let mut oflag = libc::O_NONBLOCK;
    oflag |= if a.write {
        libc::O_RDWR
    } else {
        libc::O_RDONLY
    };
    if !a.follow_symlinks {
        oflag |= libc::O_NOFOLLOW;
    }
    sys::open(&name.os_cstring(), oflag).map_err(|e| open_error(name, e, a))
}

fn user(uid: u32) -> String {
    match sys::user_name(uid) {
        Some(n) => format!("user {n} (uid {uid})"),
        None => format!("uid {uid}"),
    }
}

fn open_error(name: &ArrayName, e: io::Error, a: &Access) -> Error {
    match e.raw_os_error() {
        Some(libc::ENOENT) => Error::os(format!("{name}: no such array"), e),
        Some(libc::ELOOP) if !a.follow_symlinks => Error::new(
            ErrorKind::Permission,
            format!(
                "{name}: {} is a symbolic link; refusing to follow it (use the \
                 follow_symlinks option if you trust where it points)",
                name.path().display()
            ),
        )
        .with_option(Opt::FollowSymlinks),
        // Opening a Unix socket gives ENXIO.
        Some(libc::ENXIO) => Error::format(format!(
            "{name}: {} is not a regular file (a socket or device), not an array",
            name.path().display()
        )),
        Some(libc::EISDIR) => Error::format(format!(
            "{name}: {} is a directory, not an array",
            name.path().display()
        )),
        _ => Error::os(format!("{name}: open"), e),
    }
}

fn not_regular(name: &ArrayName, meta: &Metadata) -> Error {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    let what = if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    };
    Error::format(format!(
        "{name}: {} is {what}, not an array",
        name.path().display()
    ))
}

/// Opens and reads a segment to describe it, whoever owns it (reading a header cannot
/// be harmed by its owner): what `info` and `details` show.
pub(crate) fn describe(name: &ArrayName) -> Result<(File, Metadata, Segment)> {
    let access = Access {
        allow_other_owner: true,
        ..Access::default()
    };
    let (file, meta) = open(name, &access)?;
    let s = read(name, &file, meta.len())?;
    Ok((file, meta, s))
}

/// The result of inspecting a file that may be an array.
pub(crate) enum Inspected {
    /// A valid array.
    Array(Segment),
    /// Positively an ndshm v1 segment (magic, major version and byte order are right)
    /// that is damaged: still ours to delete or replace, never to attach.
    Damaged(Error),
}

/// The one reader: validates a segment's header (v1) or trailer (SharedArray) against
/// the file size `size`. Never maps, never trusts a field.
pub(crate) fn read(name: &ArrayName, file: &File, size: u64) -> Result<Segment> {
    match inspect(name, file, size)? {
        Inspected::Array(s) => Ok(s),
        Inspected::Damaged(e) => Err(e),
    }
}

/// Like [`read`], but tells a damaged v1 segment apart from a file that is not an array.
pub(crate) fn inspect(name: &ArrayName, file: &File, size: u64) -> Result<Inspected> {
    if name.is_npy() {
        return read_npy(name, file, size).map(Inspected::Array);
    }
    Ok(match inspect_view(name, file, size)? {
        InspectedView::Array(s) => Inspected::Array(s.to_segment()),
        InspectedView::Damaged(e) => Inspected::Damaged(e),
    })
}

/// [`read`] for a listing: nothing allocated for a valid array. Not for `npy://` names
/// (`name` only names the file in messages).
pub(crate) fn read_view(name: &ArrayName, file: &File, size: u64) -> Result<SegmentView> {
    match inspect_view(name, file, size)? {
        InspectedView::Array(s) => Ok(s),
        InspectedView::Damaged(e) => Err(e),
    }
}

// Boxing the large variant would put back the allocation per array this type avoids.
#[allow(clippy::large_enum_variant)]
enum InspectedView {
    Array(SegmentView),
    Damaged(Error),
}

/// The reader of ndshm v1 and SharedArray segments behind [`inspect`] and [`read_view`].
/// At most `size` bytes are asked for (no read past what fstat reported just to learn
/// the file ends), and a file no longer than the first read (a small SharedArray
/// segment) is decoded from that read alone.
fn inspect_view(name: &ArrayName, file: &File, size: u64) -> Result<InspectedView> {
    let rd = |e| Error::os(format!("{name}: read"), e);
    if size == 0 {
        return Err(Error::format(format!(
            "{name}: the file is empty, not an array (arrays get their name only once \
             their header is written)"
        )));
    }
    let mut head = [0u8; off::ATTR_LEN + 4];
    let want = size.min(head.len() as u64) as usize;
    let mut n = sys::pread_full(file, &mut head[..want], 0).map_err(rd)?;
    if format::is_v1(&head[..n]) {
        let mut tries = 0;
        loop {
            match read_v1(name, &head[..n], size) {
                Err(e) if e.kind() == ErrorKind::Format && tries < TORN_READ_RETRIES => {
                    tries += 1;
                    std::thread::yield_now();
                    n = sys::pread_full(file, &mut head[..want], 0).map_err(rd)?;
                }
                Ok(s) => return Ok(InspectedView::Array(s)),
                Err(e) if is_ours(&head[..n]) => {
                    // A writer killed in the middle of a header rewrite leaves the
                    // shadow complete (format v1.2): use it.
                    if let Some(s) = read_shadow(name, file, &head[..n], size) {
                        return Ok(InspectedView::Array(s));
                    }
                    return Ok(InspectedView::Damaged(e));
                }
                Err(e) => return Err(e),
            }
        }
    }
    let tail_len = size.min(format::SA_TRAILER_NPY2 as u64) as usize;
    let mut buf = [0u8; format::SA_TRAILER_NPY2];
    let tail = if n as u64 == size {
        // The whole file is in `head` already.
        &head[n - tail_len..n]
    } else {
        let got =
            sys::pread_full(file, &mut buf[..tail_len], size - tail_len as u64).map_err(rd)?;
        &buf[..got]
    };
    match format::sharedarray_decode_view(tail, size) {
        Some(Ok((geometry, abi))) => Ok(InspectedView::Array(SegmentView {
            format: SegmentFormat::SharedArray(abi),
            geometry,
            state: State::Ready,
            creator: None,
            created_ns: 0,
        })),
        Some(Err(e)) => Err(e.context(name)),
        None => Err(Error::format(format!(
            "{name}: not an ndshm or SharedArray segment"
        ))),
    }
}

/// An `npy://` name: the `.npy` header, the data checked against the file size.
fn read_npy(name: &ArrayName, file: &File, size: u64) -> Result<Segment> {
    let rd = |e| Error::os(format!("{name}: read"), e);
    let mut prefix = [0u8; 12];
    let n = sys::pread_full(file, &mut prefix, 0).map_err(rd)?;
    let len = crate::npy::npy_header_len(&prefix[..n]).map_err(|e| e.context(name))?;
    let mut head = vec![0u8; len];
    let n = sys::pread_full(file, &mut head, 0).map_err(rd)?;
    let fa = crate::npy::parse_npy(&head[..n]).map_err(|e| e.context(name))?;
    if fa.swap_bytes {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "{name}: the file's data is in the other byte order, so it cannot be used in \
                 place; load it into shared memory instead (loading converts it)"
            ),
        ));
    }
    // numpy pads its headers so the data is 64-byte aligned, but a version 1.0 header
    // may have any length: refuse data not aligned for its elements, which every typed
    // access (and C's `double *`) assumes.
    if fa.data_offset % fa.dtype.itemsize() as u64 != 0 {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "{name}: the file's data starts at byte {}, which is not aligned for {}; load \
                 it into shared memory instead",
                fa.data_offset, fa.dtype
            ),
        ));
    }
    let geometry = Geometry {
        dtype: fa.dtype,
        order: fa.order,
        shape: fa.shape,
        nbytes: fa.nbytes,
        capacity: fa.nbytes,
        data_offset: fa.data_offset,
    };
    geometry.check_fits(size).map_err(|e| e.context(name))?;
    Ok(Segment {
        format: SegmentFormat::Npy,
        geometry,
        state: State::Ready,
        creator: None,
        created_ns: 0,
    })
}

/// The magic, the major version and this machine's byte-order tag: enough to know a
/// damaged segment is an ndshm array and not somebody else's file.
fn is_ours(head: &[u8]) -> bool {
    let u16_at = |o: usize| head.get(o..o + 2).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        head.get(o..o + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    format::is_v1(head)
        && u16_at(off::MAJOR) == Some(format::VERSION_MAJOR)
        && u32_at(off::BYTE_ORDER) == Some(format::BYTE_ORDER_TAG)
}

fn read_v1(name: &ArrayName, head: &[u8], size: u64) -> Result<SegmentView> {
    if head.len() < off::ATTR_LEN + 4 {
        return Err(Error::format(format!(
            "{name}: truncated segment ({size} bytes; the header alone needs {})",
            format::HEADER_BYTES
        )));
    }
    let word = u32::from_ne_bytes(head[off::STATE..off::STATE + 4].try_into().unwrap());
    // Pairs with the fence before the creator stores READY (see Writer::publish).
    fence(Ordering::Acquire);
    let state = State::from_word(word)
        .ok_or_else(|| Error::format(format!("{name}: unknown header state {word}")))?;
    let h = HeaderView::decode(&head[..CHECKED_BYTES]).map_err(|e| e.context(name))?;
    // A claimed segment is reserved after it gets its name: only a READY one must fit
    // (an INITIALISING one is never mapped).
    if state == State::Ready {
        h.geometry.check_fits(size).map_err(|e| e.context(name))?;
    }
    Ok(SegmentView {
        format: SegmentFormat::V1 { minor: h.minor },
        geometry: h.geometry,
        state,
        creator: Some(h.creator),
        created_ns: h.created_ns,
    })
}

/// The segment described by the shadow header (see [`format::SHADOW_OFFSET`]) when the
/// header at offset 0 is not valid: `None` when the shadow is not valid either.
fn read_shadow(name: &ArrayName, file: &File, head: &[u8], size: u64) -> Option<SegmentView> {
    let mut b = [0u8; off::ATTR_LEN + 4];
    b.copy_from_slice(head.get(..off::ATTR_LEN + 4)?);
    let n = sys::pread_full(file, &mut b[..CHECKED_BYTES], format::SHADOW_OFFSET as u64).ok()?;
    if n != CHECKED_BYTES {
        return None;
    }
    read_v1(name, &b, size).ok()
}

/// The error for a segment whose creator has not published it: [`ErrorKind::NotReady`]
/// while the creator runs, [`ErrorKind::OwnerDied`] once it is known to be dead.
pub(crate) fn unfinished(name: &ArrayName, creator: Option<&Creator>) -> Error {
    let Some(c) = creator else {
        return Error::new(ErrorKind::NotReady, format!("{name}: not ready"));
    };
    match sys::creator_alive(c) {
        Some(false) => Error::new(
            ErrorKind::OwnerDied,
            format!(
                "{name}: its creator (pid {}{}) died before finishing it; delete it, or \
                 replace it with the force option",
                c.pid,
                host_suffix(c)
            ),
        ),
        _ => Error::new(
            ErrorKind::NotReady,
            format!(
                "{name}: not ready: its creator (pid {}{}) is still initialising it",
                c.pid,
                host_suffix(c)
            ),
        ),
    }
}

fn host_suffix(c: &Creator) -> String {
    if c.hostname.is_empty() {
        String::new()
    } else {
        format!(" on {}", c.hostname)
    }
}

/// Deletes the array `name`: only a regular file that positively is an array (valid or
/// damaged), never a symbolic link, never a file this process cannot read to check,
/// and an array still being initialised by a live creator only with
/// `opts.in_progress`.
///
/// Between the check and the unlink another process may replace the name. That needs
/// write permission on the directory, which is all unlinking needs: such a process could
/// remove the file itself, so a second check would protect nothing (and an array
/// replaced by another array in that instant is deleted as if just after the
/// replacement, a valid order of the two).
pub(crate) fn remove(name: &ArrayName, opts: &DeleteOptions) -> Result<()> {
    let path = name.path();
    if name.is_npy() {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!("{name}: an npy:// name maps a .npy file in place; ndshm does not delete it"),
        ));
    }
    let refuse = |why: String| {
        Error::format(format!(
            "{name}: {why}; refusing to delete it (ndshm deletes arrays only)"
        ))
    };
    let access = Access {
        allow_other_owner: true,
        ..Access::default()
    };
    let unlink = || {
        sys::unlink(&path).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => Error::os(format!("{name}: no such array"), e),
            _ => Error::os(format!("{name}: delete"), e),
        })
    };
    // The common case in one read, without fstat: a READY v1 header (only a regular
    // file can be read at offset 0 and start with it: pread fails on FIFOs and
    // directories, and sockets cannot be opened).
    if let Ok(file) = open_unchecked(name, &access) {
        let mut head = [0u8; off::STATE + 4];
        let n = sys::pread_full(&file, &mut head, 0).unwrap_or(0);
        if n == head.len() && is_ours(&head) {
            let word = u32::from_ne_bytes(head[off::STATE..off::STATE + 4].try_into().unwrap());
            if word == format::STATE_READY {
                return unlink();
            }
        }
    }
    let (file, meta) = match open(name, &access) {
        Ok(x) => x,
        Err(e) if e.kind() == ErrorKind::Permission && e.errno() == Some(libc::EACCES) => {
            return Err(Error::new(
                ErrorKind::Permission,
                format!(
                    "{name}: cannot read it to check that it is an array; refusing to \
                     delete it"
                ),
            ));
        }
        Err(e) if e.option() == Some(Opt::FollowSymlinks) => {
            return Err(refuse(format!("{} is a symbolic link", path.display())));
        }
        Err(e) if e.kind() == ErrorKind::Format => {
            return Err(refuse(e.message().to_string()));
        }
        Err(e) => return Err(e),
    };
    match inspect(name, &file, meta.len()) {
        Ok(Inspected::Array(s)) if s.state == State::Initialising && !opts.in_progress => {
            let e = unfinished(name, s.creator.as_ref());
            if e.kind() == ErrorKind::NotReady {
                return Err(Error::new(
                    ErrorKind::NotReady,
                    format!(
                        "{}; use the in_progress option to delete it anyway",
                        e.message()
                    ),
                )
                .with_option(Opt::InProgress));
            }
        }
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::Format => {
            return Err(refuse(e.message().to_string()));
        }
        Err(e) => return Err(e),
    }
    unlink()
}

/// Checks that whatever is at `name` now may be replaced by a new array: nothing, or
/// positively an array (never a symbolic link or another kind of file).
fn check_replaceable(name: &ArrayName) -> Result<()> {
    let taken = |why: &str| {
        Error::new(
            ErrorKind::Exists,
            format!("{name}: exists and {why}; force replaces arrays only"),
        )
    };
    let access = Access {
        allow_other_owner: true,
        ..Access::default()
    };
    let (file, meta) = match open(name, &access) {
        Ok(x) => x,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) if e.option() == Some(Opt::FollowSymlinks) => {
            return Err(taken("is a symbolic link"));
        }
        Err(e) if e.kind() == ErrorKind::Format => return Err(taken("is not a regular file")),
        Err(e) => return Err(e.context("cannot check the existing file")),
    };
    match inspect(name, &file, meta.len()) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::Format => Err(taken("is not an array")),
        Err(e) => Err(e),
    }
}

/// Creates a segment in phases; see the module documentation. Dropping a writer that
/// was not published removes what it created, and only that.
pub(crate) struct Writer<'n> {
    name: &'n ArrayName,
    file: File,
    /// The file's temporary name where `O_TMPFILE` is unavailable (fallback protocol).
    temp: Option<PathBuf>,
    /// The array's name refers to this file (after `claim`).
    named: bool,
    /// The header says INITIALISING; READY is still to be stored.
    ready_pending: bool,
    total: u64,
    done: bool,
}

impl<'n> Writer<'n> {
    /// Phase 1: a new file with no name in the array's directory, with exactly `mode`
    /// (the umask cannot remove bits). Where `O_TMPFILE` is unavailable, the file gets
    /// a unique temporary name instead (`.ndshm-tmp.PID.N`), never the array's name.
    pub fn begin(name: &'n ArrayName, mode: u32) -> Result<Self> {
        if name.is_npy() {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{name}: npy:// names map existing .npy files in place; create arrays under \
                     shm:// or file:// names, or write a .npy file with save"
                ),
            ));
        }
        let (dir, _) = name.dir_and_file();
        let create_err = |e: io::Error| match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => Error::os(
                format!(
                    "{name}: create: the directory {} does not exist",
                    dir.display()
                ),
                e,
            ),
            _ => Error::os(format!("{name}: create"), e),
        };
        let (file, temp) = match sys::open_tmpfile(&dir, mode) {
            Ok(f) => (f, None),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP) | Some(libc::EISDIR) | Some(libc::EINVAL)
                ) =>
            {
                let (f, p) = create_temp(&dir, mode).map_err(create_err)?;
                (f, Some(p))
            }
            Err(e) => return Err(create_err(e)),
        };
        let w = Writer {
            name,
            file,
            temp,
            named: false,
            ready_pending: false,
            total: 0,
            done: false,
        };
        sys::fchmod(&w.file, mode).map_err(|e| Error::os(format!("{name}: chmod"), e))?;
        Ok(w)
    }

    /// Phase 2, v1: the whole header page in one write. `state` is READY for an array
    /// named only once complete ([`Writer::publish`] without [`Writer::claim`]), or
    /// INITIALISING for one that will be claimed and filled in place.
    pub fn write_header(&mut self, h: &Header, state: State) -> Result<()> {
        let g = &h.geometry;
        self.total = g
            .data_offset
            .checked_add(g.capacity)
            .ok_or_else(|| too_large(self.name))?;
        let mut page = vec![0u8; format::HEADER_BYTES];
        page[..CHECKED_BYTES].copy_from_slice(&h.encode());
        page[off::WRITE_NS..off::WRITE_NS + 8].copy_from_slice(&h.created_ns.to_ne_bytes());
        page[off::STATE..off::STATE + 4].copy_from_slice(&state.word().to_ne_bytes());
        self.ready_pending = state == State::Initialising;
        sys::pwrite_all(&self.file, &page, 0).map_err(|e| self.space_error(e, "write header"))
    }

    /// Phase 2, SharedArray: the trailer after the data. Such a segment has no state
    /// word, so it cannot be claimed: it is named only once complete.
    pub fn write_sharedarray_trailer(&mut self, g: &Geometry) -> Result<()> {
        let t = format::sharedarray_encode(g);
        self.total = g
            .nbytes
            .checked_add(t.len() as u64)
            .ok_or_else(|| too_large(self.name))?;
        sys::pwrite_all(&self.file, &t, g.nbytes)
            .map_err(|e| self.space_error(e, "write SharedArray trailer"))
    }

    /// Phase 3: reserves the whole segment (`posix_fallocate`), so a full filesystem
    /// is [`ErrorKind::NoSpace`] here and never a SIGBUS later; `sparse` only sizes it.
    pub fn reserve(&mut self, sparse: bool) -> Result<()> {
        let r = if sparse {
            self.file.set_len(self.total)
        } else {
            sys::fallocate(&self.file, self.total)
        };
        r.map_err(|e| self.space_error(e, "reserve"))
    }

    /// Phase 3 for a writer that will fill every data byte through the descriptor
    /// (`sendfile`, `pwrite`): reserves only the pages before the data (header and
    /// attributes) and sizes the file. The fill allocates the data pages as it writes,
    /// so a full filesystem is `ENOSPC` from the fill, never a SIGBUS, and each page is
    /// touched once instead of twice (reserving zeroes the pages the copy then
    /// overwrites: measured in docs/BENCHMARKS.md).
    pub fn reserve_for_fill(&mut self, data_offset: u64) -> Result<()> {
        sys::fallocate(&self.file, data_offset.min(self.total))
            .and_then(|()| self.file.set_len(self.total))
            .map_err(|e| self.space_error(e, "reserve"))
    }

    /// The array's name.
    pub fn name(&self) -> &'n ArrayName {
        self.name
    }

    /// The total size of the segment.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The file, for filling through the descriptor or a mapping.
    #[cfg_attr(not(test), allow(dead_code))] // the loaders' fill phase (datasets issue)
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Optional phase 4: gives the array its name now, while its header says
    /// INITIALISING, exclusively (`EEXIST` as with `O_EXCL`). Attachers then see
    /// [`ErrorKind::NotReady`] naming this process until [`Writer::publish`]. If this
    /// writer is dropped unpublished, it removes the name, only if the name still
    /// refers to its file.
    #[cfg_attr(not(test), allow(dead_code))] // the loaders' open-or-create (datasets issue)
    pub fn claim(&mut self) -> Result<()> {
        if !self.ready_pending {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{}: only a v1 segment written INITIALISING can be claimed",
                    self.name
                ),
            ));
        }
        self.link_exclusive()?;
        self.named = true;
        Ok(())
    }

    /// Optional phase 4 for an array whose creator died while filling it: gives the name
    /// to this (INITIALISING) segment in place of the abandoned one, atomically
    /// (`renameat2(RENAME_EXCHANGE)` through a temporary name), only if what is at the
    /// name is still the abandoned file (device, inode). Returns false, with this writer
    /// unnamed again and the name untouched, when another process replaced it first.
    pub fn claim_over(&mut self, abandoned: (u64, u64)) -> Result<bool> {
        if !self.ready_pending {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{}: only a v1 segment written INITIALISING can be claimed",
                    self.name
                ),
            ));
        }
        let name = self.name;
        let path = name.path();
        let t = self.temp_name()?;
        sys::exchange(&t, &path).map_err(|e| match e.raw_os_error() {
            Some(libc::EINVAL) | Some(libc::ENOSYS) => Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{name}: this filesystem cannot exchange names atomically, so the \
                     abandoned array cannot be replaced safely; delete it and retry"
                ),
            ),
            Some(libc::ENOENT) => Error::os(format!("{name}: no such array"), e),
            _ => Error::os(format!("{name}: replace abandoned array"), e),
        })?;
        // `t` now names what was at the array's name.
        let was_abandoned = sys::lstat(&t)
            .map(|m| (m.dev(), m.ino()) == abandoned)
            .unwrap_or(false);
        if was_abandoned {
            let _ = sys::unlink(&t);
            self.temp = None;
            self.named = true;
            return Ok(true);
        }
        // Somebody else's file: give the name back, and drop our temporary name.
        // Only once that succeeded does `t` name our file again; otherwise it names
        // theirs, which must not be removed (and ours keeps the name: Drop removes it).
        let back = sys::exchange(&t, &path);
        if back.is_ok() {
            let _ = sys::unlink(&t);
            self.temp = None;
        } else {
            self.named = true;
        }
        back.map_err(|e| Error::os(format!("{name}: restore after a lost race"), e))?;
        Ok(false)
    }

    /// Phase 5: publishes the segment: stores READY if it was written INITIALISING,
    /// then, unless claimed, gives it its name: exclusively, or with `replace`
    /// atomically over an existing array (`rename`), so attachers see the old array or
    /// the new one and a failure leaves the old one untouched.
    pub fn publish(mut self, replace: bool) -> Result<File> {
        if !self.named {
            if self.ready_pending {
                self.store_ready()?;
            }
            if replace {
                self.replace()?;
            } else {
                self.link_exclusive()?;
            }
        } else if self.ready_pending {
            self.store_ready()?;
        }
        if let Some(t) = self.temp.take() {
            // The array has its name; the temporary one goes.
            let _ = sys::unlink(&t);
        }
        // Published: nothing is left for Drop to undo. Move the file out without a dup.
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped or used again, so `file` is moved out exactly
        // once; the other fields own no resources (`temp` was taken above, `name` is a
        // reference).
        Ok(unsafe { std::ptr::read(&this.file) })
    }

    fn store_ready(&mut self) -> Result<()> {
        // Everything this process wrote to the segment (header, data through the
        // descriptor or a mapping) happens before READY for any reader: the fence
        // orders our stores before the syscall that stores the word, and readers fence
        // after loading it (see read_v1 and docs/FORMAT.md, "Memory model").
        fence(Ordering::Release);
        sys::pwrite_all(
            &self.file,
            &format::STATE_READY.to_ne_bytes(),
            off::STATE as u64,
        )
        .map_err(|e| Error::os(format!("{}: publish", self.name), e))?;
        self.ready_pending = false;
        Ok(())
    }

    fn link_exclusive(&mut self) -> Result<()> {
        let path = self.name.path();
        let r = match &self.temp {
            None => sys::link_fd(&self.file, &path),
            Some(t) => sys::link(t, &path),
        };
        r.map_err(|e| match e.raw_os_error() {
            Some(libc::EEXIST) => Error::os(
                format!(
                    "{}: already exists; use the force option to replace it",
                    self.name
                ),
                e,
            )
            .with_option(Opt::Force),
            _ => self.space_error(e, "name"),
        })
    }

    /// The file's temporary name in the array's directory, linked now if it has none
    /// (an `O_TMPFILE` file); removed by Drop, or by publish once the array is named.
    fn temp_name(&mut self) -> Result<PathBuf> {
        if let Some(t) = &self.temp {
            return Ok(t.clone());
        }
        let (dir, _) = self.name.dir_and_file();
        let t = loop {
            let t = temp_path(&dir);
            match sys::link_fd(&self.file, &t) {
                Ok(()) => break t,
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
                Err(e) => return Err(self.space_error(e, "name")),
            }
        };
        self.temp = Some(t.clone());
        Ok(t)
    }

    fn replace(&mut self) -> Result<()> {
        let path = self.name.path();
        // A new name first: rename needs a source name, and an O_TMPFILE file has none.
        let t = self.temp_name()?;
        check_replaceable(self.name)?;
        sys::rename(&t, &path).map_err(|e| Error::os(format!("{}: replace", self.name), e))?;
        // The temporary name is now the array's name.
        self.temp = None;
        Ok(())
    }

    fn space_error(&self, e: io::Error, what: &str) -> Error {
        match e.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EFBIG) | Some(libc::EDQUOT) => {
                no_space(self.name, self.total, e)
            }
            _ => Error::os(format!("{}: {what}", self.name), e),
        }
    }
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.named {
            // Remove the name only while it still refers to our file: another process
            // may have replaced or deleted and re-created it since we claimed it.
            let path = self.name.path();
            if let (Ok(now), Ok(ours)) = (sys::lstat(&path), self.file.metadata()) {
                if now.dev() == ours.dev() && now.ino() == ours.ino() {
                    let _ = sys::unlink(&path);
                }
            }
        }
        if let Some(t) = &self.temp {
            // A unique name only this writer made.
            let _ = sys::unlink(t);
        }
    }
}

fn too_large(name: &ArrayName) -> Error {
    Error::invalid(format!("{name}: the array is too large"))
}

fn temp_path(dir: &Path) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    dir.join(format!(
        "{TEMP_PREFIX}{pid}.{n}.{:x}",
        sys::now_ns() as u64 & 0xffff_ffff
    ))
}

fn create_temp(dir: &Path, mode: u32) -> io::Result<(File, PathBuf)> {
    loop {
        let p = temp_path(dir);
        match sys::create_excl(&p, mode) {
            Ok(f) => return Ok((f, p)),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Docker gives containers a 64 MiB /dev/shm; tmpfs this small is the usual cause of
/// "no space" reports.
const SMALL_TMPFS: u64 = 64 << 20;

/// The error for a full filesystem: how much was asked, how much is free where, and,
/// when the filesystem is as small as a container's default /dev/shm, how to get more.
pub(crate) fn no_space(name: &ArrayName, requested: u64, e: io::Error) -> Error {
    let dir = sys::space_dir(name);
    let mut free = match sys::space(&dir) {
        Ok((_, free)) => format!("{} free in {}", human_bytes(free), dir.display()),
        Err(_) => format!("free space in {} unknown", dir.display()),
    };
    if let Ok((total, _)) = sys::space(&dir) {
        if total <= SMALL_TMPFS {
            free.push_str(&format!(
                " (the whole filesystem is only {}, the default /dev/shm of a Docker \
                 container: run the container with --shm-size=8g, remount it larger with \
                 `mount -o remount,size=8G {}`, or set NDSHM_DIR to a directory on a \
                 larger tmpfs)",
                human_bytes(total),
                dir.display()
            ));
        }
    }
    Error::os(
        format!(
            "{name}: no space left: {} requested, {free}",
            human_bytes(requested)
        ),
        e,
    )
}

/// SharedArray segments carry no state word: they are named only once complete.
pub(crate) fn sharedarray_format() -> SegmentFormat {
    SegmentFormat::SharedArray(SharedArrayAbi::Numpy2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::array::Array;
    use crate::format::{Creator, Order};
    use crate::options::AttachOptions;
    use crate::{Dtype, ErrorKind};

    struct Dir(PathBuf);
    impl Dir {
        fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!("ndshm-seg-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
        fn name(&self, f: &str) -> ArrayName {
            ArrayName::parse_with(&format!("file://{}/{f}", self.0.display()), None).unwrap()
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn header(shape: &[i64]) -> Header {
        let nbytes = format::nbytes_for(shape, 8).unwrap();
        Header {
            minor: format::VERSION_MINOR,
            page_size: 4096,
            geometry: Geometry {
                dtype: Dtype::Float64,
                order: Order::C,
                shape: shape.to_vec(),
                nbytes,
                capacity: nbytes,
                data_offset: 8192,
            },
            creator: sys::current_creator(),
            create_flags: 0,
            created_ns: sys::now_ns(),
        }
    }

    /// A writer at the claim phase: header INITIALISING, reserved, named.
    fn claimed<'n>(name: &'n ArrayName, h: &Header) -> Writer<'n> {
        let mut w = Writer::begin(name, 0o600).unwrap();
        w.write_header(h, State::Initialising).unwrap();
        w.reserve(false).unwrap();
        w.claim().unwrap();
        w
    }

    /// The loader's phases: claim the name while INITIALISING, fill through the
    /// descriptor, publish. Attachers see NOT_READY naming us in between.
    #[test]
    fn claim_fill_publish() {
        let d = Dir::new("claim");
        let name = d.name("a");
        let h = header(&[4]);
        let w = claimed(&name, &h);
        let e = Array::attach(name.as_str(), &AttachOptions::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotReady, "{e}");
        assert!(
            e.message().contains(&format!("pid {}", std::process::id())),
            "{e}"
        );
        let i = crate::list::info(name.as_str()).unwrap();
        assert_eq!(i.state, State::Initialising);
        // A second claimant loses, as with O_EXCL.
        let mut w2 = Writer::begin(&name, 0o600).unwrap();
        w2.write_header(&h, State::Initialising).unwrap();
        assert_eq!(w2.claim().unwrap_err().kind(), ErrorKind::Exists);
        drop(w2);
        let data: Vec<u8> = [1.0f64, 2.0, 3.0, 4.0]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        sys::pwrite_all(w.file(), &data, 8192).unwrap();
        w.publish(false).unwrap();
        let a = Array::attach(name.as_str(), &AttachOptions::default()).unwrap();
        assert_eq!(a.to_vec::<f64>().unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
    }

    /// A claimed writer dropped unpublished removes its name, but not a file another
    /// process has put under that name since.
    #[test]
    fn abandoned_claim_removes_only_its_own_file() {
        let d = Dir::new("abandon");
        let name = d.name("a");
        let h = header(&[2]);
        drop(claimed(&name, &h));
        assert!(!name.path().exists());

        let w = claimed(&name, &h);
        // Somebody replaces the name meanwhile (as SA_FORCE would).
        let other = d.0.join("other");
        std::fs::write(&other, b"theirs").unwrap();
        std::fs::rename(&other, name.path()).unwrap();
        drop(w);
        assert_eq!(std::fs::read(name.path()).unwrap(), b"theirs");
    }

    /// An unpublished writer leaves nothing behind; an unnamed file never shows up.
    #[test]
    fn unpublished_writer_leaves_nothing() {
        let d = Dir::new("unpub");
        let name = d.name("a");
        let mut w = Writer::begin(&name, 0o600).unwrap();
        w.write_header(&header(&[2]), State::Ready).unwrap();
        w.reserve(false).unwrap();
        assert_eq!(std::fs::read_dir(&d.0).unwrap().count(), 0);
        drop(w);
        assert_eq!(std::fs::read_dir(&d.0).unwrap().count(), 0);
    }

    #[test]
    fn unfinished_names_the_creator() {
        let name = ArrayName::parse_with("x", None).unwrap();
        let me = sys::current_creator();
        assert_eq!(unfinished(&name, Some(&me)).kind(), ErrorKind::NotReady);
        let dead = Creator {
            pid: i32::MAX - 1,
            ..Creator::default()
        };
        let e = unfinished(&name, Some(&dead));
        assert_eq!(e.kind(), ErrorKind::OwnerDied);
        assert!(
            e.message().contains(&format!("pid {}", i32::MAX - 1)),
            "{e}"
        );
    }
}
