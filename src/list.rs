//! Listing arrays and describing one array without mapping its data, through the one
//! segment reader ([`crate::segment::read`]).

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::{Error, Result};
use crate::format::{Creator, Geometry, SegmentFormat, State};
use crate::name::{ArrayName, Backend, ListedDir, SHM_DIR, redirect_dir};
use crate::segment::{self, Segment, TEMP_PREFIX};
use crate::sys;

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

fn describe(name: ArrayName, s: Segment, st: sys::FileStat, alive: &mut Liveness) -> Info {
    Info {
        name,
        format: s.format,
        geometry: s.geometry,
        state: s.state,
        creator_alive: s.creator.as_ref().and_then(|c| alive.of(c)),
        creator: s.creator,
        created_ns: s.created_ns,
        mode: st.mode,
        uid: st.uid,
        file_size: st.size,
    }
}

/// Describes one array without mapping its data, whoever owns it. A segment still being
/// initialised is described with [`State::Initialising`]. Files that are not arrays
/// are [`crate::ErrorKind::Format`].
pub fn info(name: &str) -> Result<Info> {
    let name = ArrayName::parse(name)?;
    let (_, meta, s) = segment::describe(&name)?;
    let st = sys::FileStat {
        is_file: meta.is_file(),
        size: meta.len(),
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        nlink: meta.nlink(),
    };
    Ok(describe(name, s, st, &mut Liveness::default()))
}

/// Lists the arrays in a directory, or, with `None`, in shared memory: `/dev/shm`
/// (as `shm://NAME`) and, when `NDSHM_DIR` / `JOB_SHMTMPDIR` is set, that directory
/// (as `shm://NAME`, while `/dev/shm` entries are then listed as `file:///dev/shm/NAME`
/// so that every listed name attaches as printed). Files that are not arrays, are
/// unreadable, or are not regular files are skipped, never an error. Sorted by name.
pub fn list(dir: Option<&Path>) -> Result<Vec<Info>> {
    let mut out = Vec::new();
    let l = &mut Liveness::default();
    match dir {
        Some(d) => scan(d, ListedDir::Files, &mut out, true, l)?,
        None => match redirect_dir() {
            Some(r) => {
                scan(&r, ListedDir::Redirect, &mut out, true, l)?;
                scan(Path::new(SHM_DIR), ListedDir::Files, &mut out, false, l)?;
            }
            None => scan(Path::new(SHM_DIR), ListedDir::Shm, &mut out, false, l)?,
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
        if file_name
            .as_encoded_bytes()
            .starts_with(TEMP_PREFIX.as_bytes())
        {
            continue; // an array being replaced, or a creator's fallback file
        }
        let Ok(file) = sys::open_at(&dirfd, &file_name) else {
            continue;
        };
        let Ok(st) = sys::fstat(&file) else { continue };
        if !st.is_file {
            continue;
        }
        let Ok(s) = segment::read(&placeholder, &file, st.size) else {
            continue;
        };
        let Some(name) = ArrayName::for_listed(kind, &file_name, dir) else {
            continue;
        };
        out.push(describe(name, s, st, alive));
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
