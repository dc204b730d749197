//! Listing arrays and describing one array without mapping its data, through the one
//! segment reader ([`crate::segment::read`]).

use std::ffi::OsStr;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::{Error, Result};
use crate::format::{Creator, CreatorView, Geometry, SegmentFormat, State};
use crate::name::{ArrayName, Backend, ListedDir, SHM_DIR, redirect_dir};
use crate::segment::{self, Segment, SegmentView, TEMP_PREFIX};
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
    fn of(&mut self, c: &CreatorView) -> Option<bool> {
        if let Some(&(_, _, v)) = self
            .0
            .iter()
            .find(|(p, t, _)| *p == c.pid && *t == c.start_ticks)
        {
            return v;
        }
        let v = sys::creator_alive(&c.to_creator());
        self.0.push((c.pid, c.start_ticks, v));
        v
    }
}

fn describe(name: ArrayName, s: Segment, st: sys::FileStat, alive: Option<bool>) -> Info {
    Info {
        name,
        format: s.format,
        geometry: s.geometry,
        state: s.state,
        creator_alive: alive,
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
    let alive = s.creator.as_ref().and_then(sys::creator_alive);
    Ok(describe(name, s, st, alive))
}

/// Lists the arrays in a directory, or, with `None`, in shared memory: `/dev/shm`
/// (as `shm://NAME`) and, when `NDSHM_DIR` / `JOB_SHMTMPDIR` is set, that directory
/// (as `shm://NAME`, while `/dev/shm` entries are then listed as `file:///dev/shm/NAME`
/// so that every listed name attaches as printed). Files that are not arrays, are
/// unreadable, or are not regular files are skipped, never an error. Sorted by name.
pub fn list(dir: Option<&Path>) -> Result<Vec<Info>> {
    let mut out = Vec::new();
    for_each(dir, |d, f| {
        if let Some(name) = ArrayName::for_listed(d.kind, OsStr::new(f.file_name), d.path) {
            out.push(describe(
                name,
                f.segment.to_segment(),
                f.stat,
                f.creator_alive,
            ));
        }
    })?;
    out.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
    Ok(out)
}

/// A directory [`for_each`] lists.
pub(crate) struct Listed<'a> {
    /// How its entries are named.
    pub kind: ListedDir,
    pub path: &'a Path,
    /// What every entry's name starts with, the file name following (`None`: the
    /// directory's path is not UTF-8, so none of its entries has a name).
    pub prefix: Option<&'a str>,
}

/// An array [`for_each`] found, before anything is allocated for it.
pub(crate) struct Found<'a> {
    /// The file name in its directory (UTF-8: other names cannot be spelled).
    pub file_name: &'a str,
    pub segment: &'a SegmentView,
    pub stat: sys::FileStat,
    /// Whether the creator still runs (checked once per creator per listing).
    pub creator_alive: Option<bool>,
}

/// Calls `f` for every array [`list`] lists, unsorted: the one directory walk behind
/// `list` and the C `sa_list` (which builds its entries from what is found here
/// without a heap allocation per entry).
pub(crate) fn for_each(dir: Option<&Path>, mut f: impl FnMut(&Listed, &Found)) -> Result<()> {
    let l = &mut Liveness::default();
    match dir {
        Some(d) => scan(d, ListedDir::Files, true, l, &mut f),
        None => match redirect_dir() {
            Some(r) => {
                scan(&r, ListedDir::Redirect, true, l, &mut f)?;
                scan(Path::new(SHM_DIR), ListedDir::Files, false, l, &mut f)
            }
            None => scan(Path::new(SHM_DIR), ListedDir::Shm, false, l, &mut f),
        },
    }
}

fn scan(
    dir: &Path,
    kind: ListedDir,
    must_exist: bool,
    alive: &mut Liveness,
    f: &mut impl FnMut(&Listed, &Found),
) -> Result<()> {
    let fail = |e: io::Error| Error::os(format!("list {}", dir.display()), e);
    let mut entries = match sys::Dir::open(dir) {
        Ok(e) => e,
        Err(e) if !must_exist && e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(fail(e)),
    };
    let prefix = kind.prefix(dir);
    let listed = Listed {
        kind,
        path: dir,
        prefix: prefix.as_deref(),
    };
    // Messages of non-arrays are discarded, so the real name is only built for arrays.
    let placeholder = ArrayName::parse_with("listing", None).expect("valid name");
    while let Some(entry) = entries.next() {
        // d_type when the filesystem reports it, lstat otherwise (DT_UNKNOWN): nothing
        // but a regular file is opened (opening a device can act on it).
        match entry.entry_type() {
            sys::EntryType::File => {}
            sys::EntryType::Unknown if entry.is_file() => {}
            _ => continue,
        }
        let bytes = entry.name().to_bytes();
        if bytes.starts_with(TEMP_PREFIX.as_bytes()) {
            continue; // an array being replaced, or a creator's fallback file
        }
        // A name that is not UTF-8 cannot be spelled as an array name: skipped.
        let Ok(file_name) = std::str::from_utf8(bytes) else {
            continue;
        };
        // Entries are opened relative to the directory: no path walk per entry.
        let Ok(file) = entry.open() else {
            continue;
        };
        let Ok(st) = sys::fstat(&file) else { continue };
        if !st.is_file {
            continue;
        }
        let Ok(s) = segment::read_view(&placeholder, &file, st.size) else {
            continue;
        };
        drop(file);
        let found = Found {
            file_name,
            segment: &s,
            stat: st,
            creator_alive: s.creator.as_ref().and_then(|c| alive.of(c)),
        };
        f(&listed, &found);
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
