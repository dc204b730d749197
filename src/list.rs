//! Listing arrays and describing one array without mapping its data.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};
use crate::format::{self, CHECKED_BYTES, Creator, Geometry, Header, Probe, SegmentFormat, off};
use crate::name::{ArrayName, Backend, ListedDir, redirect_dir};
use crate::sys;

/// Whether a segment is ready for use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum State {
    /// Its creator is still writing it (or died doing so).
    Initialising = 0,
    /// Complete.
    Ready = 1,
}

/// A description of one array, read from its header alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The name, as it would be attached.
    pub name: ArrayName,
    /// The layout.
    pub format: SegmentFormat,
    /// dtype, order, shape, sizes.
    pub geometry: Geometry,
    /// Ready or still initialising.
    pub state: State,
    /// The creator (v1 segments only).
    pub creator: Option<Creator>,
    /// Whether the creator still runs (`None`: unknown, e.g. another host or a
    /// SharedArray segment).
    pub creator_alive: Option<bool>,
    /// Creation time, ns since the Unix epoch (v1 only; 0 otherwise).
    pub created_ns: i64,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Size of the whole segment in bytes.
    pub file_size: u64,
}

/// What reading a segment's header found.
enum Found {
    Array(Box<Info>),
    /// Empty or not yet written: cannot be described yet.
    NotReady,
    NotArray(Error),
}

/// Creator liveness, checked once per creator within one listing (many arrays usually
/// share a creator, and each check costs a kill(2) and a read of /proc).
#[derive(Default)]
struct Liveness(Vec<(i32, u64, Option<bool>)>);

impl Liveness {
    fn of(&mut self, c: &Creator) -> Option<bool> {
        if let Some(&(_, _, v)) = self
            .0
            .iter()
            .find(|(p, t, _)| *p == c.pid && *t == c.start_ticks)
        {
            return v;
        }
        let v = sys::creator_alive(c);
        self.0.push((c.pid, c.start_ticks, v));
        v
    }
}

/// Reads and validates a segment's header. `alive`: where to check creator liveness;
/// None skips the check (it is only reported by list and info).
fn read_segment(name: ArrayName, file: &File, alive: Option<&mut Liveness>) -> io::Result<Found> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(Found::NotArray(Error::format(format!(
            "{name}: not a regular file"
        ))));
    }
    read_segment_meta(name, file, &meta, alive)
}

fn read_segment_meta(
    name: ArrayName,
    file: &File,
    meta: &std::fs::Metadata,
    alive: Option<&mut Liveness>,
) -> io::Result<Found> {
    let size = meta.len();
    if size == 0 {
        return Ok(Found::NotReady);
    }
    let mut head = [0u8; off::ATTR_LEN + 4];
    let n = sys::pread_full(file, &mut head, 0)?;
    let mut alive = alive;
    let mut base = |format, geometry, state, creator: Option<Creator>, created_ns| {
        let creator_alive = match (&creator, alive.as_deref_mut()) {
            (Some(c), Some(l)) => l.of(c),
            _ => None,
        };
        Found::Array(Box::new(Info {
            name: name.clone(),
            format,
            geometry,
            state,
            creator,
            creator_alive,
            created_ns,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            file_size: size,
        }))
    };
    let probe = format::probe(&head[..n]);
    if probe == Probe::V1 {
        if n < head.len() {
            return Ok(Found::NotArray(Error::format(format!(
                "{name}: truncated segment"
            ))));
        }
        let st = u32::from_ne_bytes(head[off::STATE..off::STATE + 4].try_into().unwrap());
        let state = match st {
            format::STATE_READY => State::Ready,
            format::STATE_INITIALISING => State::Initialising,
            _ => {
                return Ok(Found::NotArray(Error::format(format!(
                    "{name}: unknown header state {st}"
                ))));
            }
        };
        return Ok(match Header::decode(&head[..CHECKED_BYTES]) {
            Ok(h) => match h.geometry.check_fits(size) {
                // An initialising segment may not be sized yet.
                Err(e) if state == State::Ready => Found::NotArray(e.context(&name)),
                _ => base(
                    SegmentFormat::V1 { minor: h.minor },
                    h.geometry,
                    state,
                    Some(h.creator),
                    h.created_ns,
                ),
            },
            Err(_) if state == State::Initialising => Found::NotReady,
            Err(e) => Found::NotArray(e.context(&name)),
        });
    }
    let tail_len = size.min(format::SA_TRAILER_NPY2 as u64) as usize;
    let mut tail = [0u8; format::SA_TRAILER_NPY2];
    let got = sys::pread_full(file, &mut tail[..tail_len], size - tail_len as u64)?;
    Ok(match format::sharedarray_decode(&tail[..got], size) {
        Some(Ok((g, maxdims))) => base(
            SegmentFormat::SharedArray { maxdims },
            g,
            State::Ready,
            None,
            0,
        ),
        Some(Err(e)) => Found::NotArray(e.context(&name)),
        None if probe == Probe::Empty => Found::NotReady,
        None => Found::NotArray(Error::format(format!(
            "{name}: not an ndshm or SharedArray segment"
        ))),
    })
}

/// True when the open file is an array (valid or still being made): what `delete` and
/// `SA_FORCE` accept to remove.
pub(crate) fn looks_like_array(file: &File) -> io::Result<bool> {
    // The common case in one pread: v1 magic (valid or not: a corrupt v1 segment is
    // still ours to remove) or a header not written yet.
    let mut head = [0u8; 16];
    let n = sys::pread_full(file, &mut head, 0)?;
    if n == 0 || format::probe(&head[..n]) == Probe::V1 {
        return Ok(true);
    }
    // The name only appears in messages, which are discarded here.
    let name = ArrayName::parse_with("probe", None).expect("valid name");
    Ok(!matches!(
        read_segment(name, file, None)?,
        Found::NotArray(_)
    ))
}

/// Describes one array without mapping its data. A segment still being initialised
/// is described with [`State::Initialising`] once its header is written; before that
/// it is [`ErrorKind::NotReady`].
pub fn info(name: &str) -> Result<Info> {
    let name = ArrayName::parse(name)?;
    let file = sys::open(&name, libc::O_RDONLY | libc::O_NONBLOCK, 0).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENOENT) {
            Error::os(format!("{name}: no such array"), e)
        } else {
            Error::os(format!("{name}: open"), e)
        }
    })?;
    let ctx_name = name.clone();
    let found = read_segment(name, &file, Some(&mut Liveness::default()));
    match found.map_err(|e| Error::os(format!("{ctx_name}: read"), e))? {
        Found::Array(i) => Ok(*i),
        Found::NotReady => Err(Error::new(
            ErrorKind::NotReady,
            format!("{ctx_name}: not ready: the header has not been written yet"),
        )),
        Found::NotArray(e) => Err(e),
    }
}

/// Lists the arrays in a directory, or, with `None`, in shared memory: `/dev/shm`
/// (as `shm://NAME`) and, when `NDSHM_DIR` / `JOB_SHMTMPDIR` is set, that directory
/// (as `shm://NAME`, while `/dev/shm` entries are then listed as `file:///dev/shm/NAME`
/// so that every listed name attaches as printed). Files that are not arrays, are
/// unreadable or still empty are skipped, never an error. Sorted by name.
pub fn list(dir: Option<&Path>) -> Result<Vec<Info>> {
    let mut out = Vec::new();
    let l = &mut Liveness::default();
    match dir {
        Some(d) => scan(d, ListedDir::Files, &mut out, true, l)?,
        None => match redirect_dir() {
            Some(r) => {
                scan(&r, ListedDir::Redirect, &mut out, true, l)?;
                scan(
                    Path::new(sys::SHM_DIR),
                    ListedDir::Files,
                    &mut out,
                    false,
                    l,
                )?;
            }
            None => scan(Path::new(sys::SHM_DIR), ListedDir::Shm, &mut out, false, l)?,
        },
    }
    out.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
    Ok(out)
}

fn scan(
    dir: &Path,
    kind: ListedDir,
    out: &mut Vec<Info>,
    must_exist: bool,
    alive: &mut Liveness,
) -> Result<()> {
    let fail = |e: io::Error| Error::os(format!("list {}", dir.display()), e);
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if !must_exist && e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(fail(e)),
    };
    // Entries are opened relative to the directory: no path walk per entry.
    let dirfd = File::open(dir).map_err(fail)?;
    // Messages of non-arrays are discarded, so the real name is only built for arrays.
    let placeholder = ArrayName::parse_with("listing", None).expect("valid name");
    for entry in entries {
        let Ok(entry) = entry else { continue };
        // d_type when the filesystem reports it, lstat otherwise (DT_UNKNOWN).
        match entry.file_type() {
            Ok(t) if t.is_file() => {}
            _ => continue,
        }
        let file_name = entry.file_name();
        let Ok(file) = sys::open_at(&dirfd, &file_name) else {
            continue;
        };
        let Ok(meta) = file.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let found = read_segment_meta(placeholder.clone(), &file, &meta, Some(&mut *alive));
        if let Ok(Found::Array(mut info)) = found {
            let Some(name) = ArrayName::for_listed(kind, &file_name, dir) else {
                continue;
            };
            info.name = name;
            out.push(*info);
        }
    }
    Ok(())
}

impl Info {
    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.geometry.shape.len()
    }

    /// The backend kind.
    pub fn backend(&self) -> &Backend {
        self.name.backend()
    }
}
