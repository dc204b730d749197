//! The array store: a directory of named arrays that can be saved, appended to, listed,
//! deleted, and loaded whole or by row range, either mapped in place (no copy) or
//! copied into shared memory once for all processes of a node.
//!
//! Each array is one file named after the array, in the ndshm v1 format (a `file://`
//! segment): its shape, dtype and order live in its header, not in its name, so a
//! renamed or moved file still opens. Saving is atomic (a complete new file replaces
//! the old one under its name); appending grows the file in place (src/grow.rs: crash
//! safe, concurrent appenders serialised by the array's lock).
//!
//! The store also reads directories written by ISF's `SharedNumpyStore`: raw C-order
//! files named `NAME__D0_D1_..._Dn__DTYPE`. They are listed and loaded into shared
//! memory like the store's own arrays; the Python package adds mapping, appending and
//! saving them in ISF's own format (`ndshm._isf`), so ISF still reads them.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::array::{Array, new_geometry, new_header};
use crate::dataset::{self, FileFormat, LoadOptions, Outcome};
use crate::dtype::Dtype;
use crate::error::{Error, ErrorKind, Result};
use crate::format::{Order, SegmentFormat, State};
use crate::name::ArrayName;
use crate::options::{AttachOptions, CreateOptions};
use crate::segment::Writer;
use crate::sys;

/// Longest array name in a store, in bytes (leaves room in a 255-byte file name for
/// ISF's shape and dtype suffix and for shared-memory copy names).
pub const MAX_STORE_NAME: usize = 128;

/// File names a store never uses for arrays (ISF keeps its loader description there).
const RESERVED: [&str; 2] = ["Loader.pickle", "Loader.json"];

/// The layout of one array in a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryFormat {
    /// An ndshm v1 segment (`file://`).
    V1,
    /// An ISF `SharedNumpyStore` raw file: C-order data, metadata in the file name.
    Isf,
}

/// One array of a store, described without mapping it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The array's name in the store.
    pub name: String,
    /// The file holding it (in the store's directory).
    pub path: PathBuf,
    /// Its layout.
    pub format: EntryFormat,
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<i64>,
    /// Storage order.
    pub order: Order,
    /// Offset of the data in the file.
    pub data_offset: u64,
    /// Identity of the file's contents (v1: creation time; ISF: inode and size), part of
    /// the names of shared-memory copies, so a saved-over array is never served from a
    /// stale copy.
    pub version_tag: u64,
}

/// A directory of arrays (see the module documentation).
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    readonly: bool,
    /// Tag of the directory (its device and inode, in hex), in shared-memory copy names
    /// so that stores in different directories never share a copy.
    tag: String,
    /// Arrays this store appended to, kept mapped: one-row appends cost one call. Behind
    /// a mutex: a store may be used from several threads at once.
    appending: std::sync::Mutex<HashMap<String, Array>>,
}

/// Checks a name for use in a store: 1 to [`MAX_STORE_NAME`] bytes, no `/`, NUL or
/// `__` (ISF separates its metadata with it), not `.`/`..`, not reserved, not one of
/// ndshm's temporary names.
pub fn check_name(name: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::invalid(format!("store name {name:?}: {why}")));
    if name.is_empty() || name.len() > MAX_STORE_NAME {
        return bad(&format!("must have 1 to {MAX_STORE_NAME} bytes"));
    }
    if name.contains('/') || name.contains('\0') {
        return bad("must not contain '/' or NUL");
    }
    if name.contains("__") {
        return bad("must not contain '__' (ISF's metadata separator)");
    }
    if name == "." || name == ".." || name.starts_with(".ndshm") {
        return bad("is reserved");
    }
    if RESERVED.contains(&name) {
        return bad("is reserved for ISF's loader description");
    }
    Ok(())
}

/// Parses an ISF raw file name `NAME__D0_D1_..._Dn__DTYPE`: `None` for anything else
/// (including ISF's `*.saving` leftovers, whose dtype field does not parse).
pub fn parse_isf_name(file: &str) -> Option<(String, Vec<i64>, Dtype)> {
    let mut parts = file.split("__");
    let (name, dims, dtype) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || name.is_empty() || dims.is_empty() {
        return None;
    }
    let shape = dims
        .split('_')
        .map(|d| {
            d.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| d.parse::<i64>().ok())
                .flatten()
        })
        .collect::<Option<Vec<i64>>>()?;
    // Only numpy names ("float64"), as ISF writes them; not type strings.
    let dtype = Dtype::from_numpy_str(dtype)
        .ok()
        .filter(|d| d.name() == dtype)?;
    crate::format::nbytes_for(&shape, dtype.itemsize()).ok()?;
    Some((name.to_string(), shape, dtype))
}

impl Store {
    /// Opens the store in directory `dir`, creating the directory (not its parents'
    /// parents: like `mkdir -p`) unless `readonly`. A read-only store maps arrays
    /// read-only and refuses every change with [`ErrorKind::ReadOnly`].
    pub fn open(dir: &Path, readonly: bool) -> Result<Store> {
        let shown = dir.display();
        let meta = match std::fs::metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !readonly => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::os(format!("store {shown}: create the directory"), e))?;
                std::fs::metadata(dir)
            }
            r => r,
        }
        .map_err(|e| Error::os(format!("store {shown}"), e))?;
        if !meta.is_dir() {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!("store {shown}: not a directory"),
            ));
        }
        let dir = std::fs::canonicalize(dir).map_err(|e| Error::os(format!("store {shown}"), e))?;
        if dir.to_str().is_none() {
            // Arrays are named by file:// names, which are UTF-8.
            return Err(Error::invalid(format!(
                "store {shown}: the path is not UTF-8"
            )));
        }
        let tag = format!("{:x}.{:x}", meta.dev(), meta.ino());
        Ok(Store {
            dir,
            readonly,
            tag,
            appending: Default::default(),
        })
    }

    /// The store's directory (absolute).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True when opened read-only.
    pub fn is_readonly(&self) -> bool {
        self.readonly
    }

    fn writable(&self) -> Result<()> {
        if self.readonly {
            return Err(Error::new(
                ErrorKind::ReadOnly,
                format!("store {}: opened read-only", self.dir.display()),
            ));
        }
        Ok(())
    }

    fn v1_name(&self, name: &str) -> String {
        format!("file://{}", self.dir.join(name).display())
    }

    /// Saves `data` (the bytes of an array of `shape`, `dtype`, `order`) as `name`,
    /// atomically: readers see the old array or the complete new one, never a mix, and
    /// a failure (a full filesystem) leaves the old one. Replaces an array of that
    /// name, in either format.
    pub fn save(
        &self,
        name: &str,
        shape: &[i64],
        dtype: Dtype,
        order: Order,
        data: &[u8],
    ) -> Result<()> {
        self.writable()?;
        check_name(name)?;
        let an = ArrayName::parse(&self.v1_name(name))?;
        let opts = CreateOptions::default().order(order);
        let g = new_geometry(&an, shape, dtype, &opts)?;
        if data.len() as u64 != g.nbytes {
            return Err(Error::invalid(format!(
                "{}: shape {shape:?} of {dtype} has {} bytes, the data {}",
                an,
                g.nbytes,
                data.len()
            )));
        }
        let isf = self.isf_file(name)?;
        // The array being replaced, to tell its appenders (in any process) afterwards.
        let old = crate::segment::open(
            &an,
            &crate::segment::Access {
                write: true,
                ..Default::default()
            },
        )
        .ok();
        let mut w = Writer::begin(&an, opts.share.mode())?;
        w.write_header(&new_header(&g), State::Ready)?;
        w.reserve(false)?;
        sys::pwrite_all(w.file(), data, g.data_offset)
            .map_err(|e| Error::os(format!("{an}: write"), e))?;
        w.publish(true)?;
        if let Some((f, _)) = old {
            crate::sync::mark_stale(&f);
        }
        self.handles().remove(name);
        if let Some(old) = isf {
            // The v1 file is complete under the name: the ISF one is a stale duplicate.
            let _ = std::fs::remove_file(old);
        }
        Ok(())
    }

    /// Appends `nrows` rows (`data`: their bytes, each of shape `row_shape` and
    /// `dtype`, C order) to `name` and returns its new length, creating the array (of
    /// `nrows` rows) when there is none. The dtype and row shape must be the array's
    /// ([`ErrorKind::Mismatch`] otherwise: nothing is converted). See
    /// [`Array::append_bytes`] for growth, locking and crash safety.
    pub fn append(
        &self,
        name: &str,
        row_shape: &[i64],
        dtype: Dtype,
        nrows: u64,
        data: &[u8],
    ) -> Result<i64> {
        self.append_try(name, row_shape, dtype, nrows, data, 0)
    }

    fn append_try(
        &self,
        name: &str,
        row_shape: &[i64],
        dtype: Dtype,
        nrows: u64,
        data: &[u8],
        tries: u32,
    ) -> Result<i64> {
        self.writable()?;
        check_name(name)?;
        // Each retry follows an array saved over or deleted meanwhile: a name that keeps
        // changing is an error, not a loop.
        let again = || {
            if tries >= 3 {
                return Err(Error::new(
                    ErrorKind::Stale,
                    format!("{name}: replaced again and again while appending"),
                ));
            }
            self.append_try(name, row_shape, dtype, nrows, data, tries + 1)
        };
        let mut map = self.handles();
        if !map.contains_key(name) {
            match self.attach_or_create(name, row_shape, dtype, nrows, data)? {
                Err(len) => return Ok(len),
                Ok(a) => {
                    map.insert(name.to_string(), a);
                }
            }
        }
        let a = map
            .get_mut(name)
            .ok_or_else(|| Error::invalid("unreachable: no handle"))?;
        if a.is_unlinked()? || a.is_stale() {
            // Deleted or replaced meanwhile (by anyone: ndshm, `rm`, a rename): the rows
            // belong to the array under the name now, or to a new one.
            map.remove(name);
            drop(map);
            return again();
        }
        if a.dtype() != dtype || a.shape().get(1..) != Some(row_shape) {
            a.refresh()?;
            if a.dtype() != dtype {
                return Err(Error::new(
                    ErrorKind::Mismatch,
                    format!(
                        "{}: the array holds {}, the rows are {dtype} (nothing is converted)",
                        a.name(),
                        a.dtype()
                    ),
                ));
            }
            if a.shape().get(1..) != Some(row_shape) {
                return Err(Error::new(
                    ErrorKind::Mismatch,
                    format!(
                        "{}: the array's rows have shape {:?}, the rows given {row_shape:?}",
                        a.name(),
                        a.shape().get(1..).unwrap_or(&[])
                    ),
                ));
            }
        }
        match a.append_bytes(nrows, data) {
            // Saved over or deleted by someone else since the check: the rows belong to
            // the array now under the name.
            Err(e) if e.kind() == ErrorKind::Stale => {
                map.remove(name);
                drop(map);
                again()
            }
            r => r,
        }
    }

    /// The handles this store appends through (one per array, kept mapped).
    fn handles(&self) -> std::sync::MutexGuard<'_, HashMap<String, Array>> {
        // A panic while holding it leaves handles that are still valid.
        self.appending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The array `name` attached for appending (`Ok`), or, when there is none, created
    /// with the `nrows` rows in `data` (`Err(length)`): atomically, so a concurrent first
    /// append of the same name loses the race and appends to the winner's array.
    fn attach_or_create(
        &self,
        name: &str,
        row_shape: &[i64],
        dtype: Dtype,
        nrows: u64,
        data: &[u8],
    ) -> Result<std::result::Result<Array, i64>> {
        let v1 = self.v1_name(name);
        match Array::attach(&v1, &AttachOptions::default()) {
            Ok(a) => return Ok(Ok(a)),
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            Err(_) => {}
        }
        if self.isf_file(name)?.is_some() {
            return Err(isf_only(name, "appending"));
        }
        let mut shape = Vec::with_capacity(row_shape.len() + 1);
        shape.push(i64::try_from(nrows).map_err(|_| Error::invalid("too many rows"))?);
        shape.extend_from_slice(row_shape);
        let an = ArrayName::parse(&v1)?;
        let opts = CreateOptions::default();
        let g = new_geometry(&an, &shape, dtype, &opts)?;
        if data.len() as u64 != g.nbytes {
            return Err(Error::invalid(format!(
                "{an}: {nrows} rows of {row_shape:?} {dtype} have {} bytes, the data {}",
                g.nbytes,
                data.len()
            )));
        }
        let mut w = Writer::begin(&an, opts.share.mode())?;
        w.write_header(&new_header(&g), State::Ready)?;
        w.reserve(false)?;
        sys::pwrite_all(w.file(), data, g.data_offset)
            .map_err(|e| Error::os(format!("{an}: write"), e))?;
        match w.publish(false) {
            Ok(_) => Ok(Err(shape[0])),
            Err(e) if e.kind() == ErrorKind::Exists => {
                Ok(Ok(Array::attach(&v1, &AttachOptions::default())?))
            }
            Err(e) => Err(e),
        }
    }

    /// The ISF raw file holding `name`, if any.
    fn isf_file(&self, name: &str) -> Result<Option<PathBuf>> {
        Ok(self
            .isf_entries()?
            .into_iter()
            .find(|e| e.name == name)
            .map(|e| e.path))
    }

    /// The ISF raw files of the store, from their names and sizes alone (no file is
    /// opened). A file shorter than its name says is not an array (ISF died saving it).
    fn isf_entries(&self) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        let rd = std::fs::read_dir(&self.dir)
            .map_err(|e| Error::os(format!("store {}", self.dir.display()), e))?;
        for d in rd.flatten() {
            let file = d.file_name();
            let Some((name, shape, dtype)) = file.to_str().and_then(parse_isf_name) else {
                continue;
            };
            let Ok(meta) = std::fs::symlink_metadata(d.path()) else {
                continue;
            };
            let need = crate::format::nbytes_for(&shape, dtype.itemsize()).unwrap_or(u64::MAX);
            // A file shorter than its name says is not an array (ISF crashed mid-save).
            if !meta.is_file() || meta.len() < need || check_name(&name).is_err() {
                continue;
            }
            out.push(Entry {
                name,
                path: d.path(),
                format: EntryFormat::Isf,
                dtype,
                shape,
                order: Order::C,
                data_offset: 0,
                version_tag: isf_version(&meta),
            });
        }
        Ok(out)
    }

    /// Describes every array of the store, sorted by name: the store's own (v1) and ISF
    /// raw files. Other files are skipped. When both formats hold one name, the v1 one
    /// is listed (it is the newer: saving over an ISF array writes v1 and removes the
    /// ISF file).
    pub fn list(&self) -> Result<Vec<Entry>> {
        let mut out: Vec<Entry> = Vec::new();
        for i in crate::list::list(Some(&self.dir))? {
            let path = i.name.path().into_owned();
            let Some(name) = path.file_name().and_then(OsStr::to_str) else {
                continue;
            };
            if check_name(name).is_err() {
                continue;
            }
            if let Some(e) = v1_entry(name, &path, &i) {
                out.push(e);
            }
        }
        for e in self.isf_entries()? {
            if !out.iter().any(|v| v.name == e.name) {
                out.push(e);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The description of `name`: [`ErrorKind::NotFound`] when the store has none.
    pub fn entry(&self, name: &str) -> Result<Entry> {
        check_name(name)?;
        if let Ok(i) = crate::list::info(&self.v1_name(name)) {
            if let Some(e) = v1_entry(name, &self.dir.join(name), &i) {
                return Ok(e);
            }
        }
        self.list()?
            .into_iter()
            .find(|e| e.name == name)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!("store {}: no array {name:?}", self.dir.display()),
                )
            })
    }

    /// Copies rows `rows` of `name` (all when `None`) into `dst`, which must hold exactly
    /// their bytes, with `pread` (no mapping, so no page faults: about twice as fast as
    /// copying from a fresh mapping). Rows of axis 0 are contiguous in C order only: a
    /// row range of a Fortran-order array is [`ErrorKind::Unsupported`] (map it and
    /// copy). Returns the array's description as read. Rows another process is
    /// rewriting may be read torn, as with any copy.
    pub fn read_into(&self, name: &str, rows: Option<Range<i64>>, dst: &mut [u8]) -> Result<Entry> {
        let e = self.entry(name)?;
        let itemsize = e.dtype.itemsize();
        let (offset, len) = match (&rows, e.shape.first()) {
            (None, _) => (
                e.data_offset,
                crate::format::nbytes_for(&e.shape, itemsize)?,
            ),
            (Some(_), None) => {
                return Err(Error::invalid(format!("{name}: a 0-d array has no rows")));
            }
            (Some(r), Some(&n)) => {
                if r.start < 0 || r.start > r.end || r.end > n {
                    return Err(Error::invalid(format!(
                        "{name}: rows {}..{} outside its {n} rows",
                        r.start, r.end
                    )));
                }
                if e.order == Order::F && e.shape.len() > 1 {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        format!("{name}: rows of a Fortran-order array are not contiguous"),
                    ));
                }
                let row = crate::format::nbytes_for(&e.shape[1..], itemsize)?;
                // Within nbytes_for(shape), which fits (the header was validated).
                (
                    e.data_offset + r.start as u64 * row,
                    (r.end - r.start) as u64 * row,
                )
            }
        };
        if dst.len() as u64 != len {
            return Err(Error::new(
                ErrorKind::Mismatch,
                format!(
                    "{name}: the rows have {len} bytes, the buffer {}",
                    dst.len()
                ),
            ));
        }
        // The file found under the name now (not followed if a link; regular files only).
        let an = ArrayName::parse(&format!("file://{}", e.path.display()))?;
        let access = crate::segment::Access {
            allow_other_owner: true,
            ..Default::default()
        };
        let (file, meta) = crate::segment::open(&an, &access)?;
        if meta.len() < offset.saturating_add(len) {
            return Err(Error::format(format!(
                "{name}: the file has {} bytes, the rows end at {}",
                meta.len(),
                offset.saturating_add(len)
            )));
        }
        let n = sys::pread_full(&file, dst, offset)
            .map_err(|err| Error::os(format!("{an}: read"), err))?;
        if n != dst.len() {
            return Err(Error::format(format!("{name}: truncated while reading")));
        }
        Ok(e)
    }

    /// Maps `name` in place (no copy), read-only when the store is. Rows beyond those
    /// mapped appear after [`Array::refresh`]. ISF raw files have no header to map as
    /// an ndshm array: [`ErrorKind::Unsupported`] (load them into shared memory, or map
    /// them with the Python package).
    pub fn open_array(&self, name: &str) -> Result<Array> {
        check_name(name)?;
        match Array::attach(
            &self.v1_name(name),
            &AttachOptions::default().readonly(self.readonly),
        ) {
            Err(e) if e.kind() == ErrorKind::NotFound && self.isf_file(name)?.is_some() => {
                Err(isf_only(name, "mapping in place"))
            }
            r => r,
        }
    }

    /// The shared-memory name [`Store::load_shm`] gives rows `rows` of `e`: it names
    /// the store's directory, the array, the version of its contents and the rows, so
    /// two stores never share a copy, and a saved-over array never reuses a stale one.
    pub fn shm_name(&self, e: &Entry, rows: Range<i64>) -> String {
        format!(
            "shm://ndshm-store-{}-{}-{:x}-{}-{}",
            self.tag, e.name, e.version_tag, rows.start, rows.end
        )
    }

    /// Loads rows `rows` of `name` (all when `None`) into shared memory once for all
    /// processes of the node: the first caller copies, the others (also those calling
    /// at the same time) attach the same copy (`dataset::load`'s open-or-create). The
    /// copy is read-only for this handle when the store is. Returns the copy and what
    /// happened; the copy stays until deleted ([`Store::unload`]).
    pub fn load_shm(
        &self,
        name: &str,
        rows: Option<Range<i64>>,
        timeout: Option<Duration>,
    ) -> Result<(Array, Outcome)> {
        let mut e = self.entry(name)?;
        if e.format == EntryFormat::V1 {
            // The contents' version too (appends, resizes, publishes): a copy of rows
            // that changed since is never served.
            if let Some(w) = crate::details::details(&self.v1_name(name))?.sync {
                e.version_tag = e.version_tag.rotate_left(17) ^ (w.seq >> 1);
            }
        }
        let len = e.shape.first().copied().unwrap_or(0);
        let r = rows.clone().unwrap_or(0..len);
        let shm = self.shm_name(&e, r.clone());
        let format = FileFormat::Raw {
            dtype: e.dtype,
            shape: e.shape.clone(),
            order: e.order,
            offset: e.data_offset,
        };
        let opts = LoadOptions {
            rows: if e.shape.is_empty() { None } else { Some(r) },
            attach: AttachOptions::default().readonly(self.readonly),
            timeout,
            ..Default::default()
        };
        dataset::load(&e.path, &format, &shm, &opts, None)
    }

    /// Deletes the shared-memory copies of `name` that [`Store::load_shm`] made (any
    /// rows, any version); returns how many. Processes that still map one keep it.
    pub fn unload(&self, name: &str) -> Result<usize> {
        check_name(name)?;
        let prefix = format!("ndshm-store-{}-{name}-", self.tag);
        let mut n = 0;
        for i in crate::list::list(None)? {
            let shown = i.name.as_str().to_string();
            let file = i
                .name
                .path()
                .file_name()
                .and_then(OsStr::to_str)
                .map(str::to_string);
            // The version and rows follow the name: exactly three more '-' fields.
            if let Some(rest) = file.as_deref().and_then(|f| f.strip_prefix(&prefix)) {
                if rest.split('-').count() == 3 && Array::delete(&shown).is_ok() {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Deletes `name` (in either format). [`ErrorKind::NotFound`] when there is none.
    pub fn delete(&self, name: &str) -> Result<()> {
        self.writable()?;
        let e = self.entry(name)?;
        self.handles().remove(name);
        match e.format {
            EntryFormat::V1 => {
                let an = ArrayName::parse(&self.v1_name(name))?;
                let access = crate::segment::Access {
                    write: true,
                    ..Default::default()
                };
                let old = crate::segment::open(&an, &access).ok();
                Array::delete(an.as_str())?;
                if let Some((f, _)) = old {
                    crate::sync::mark_stale(&f);
                }
                Ok(())
            }
            EntryFormat::Isf => std::fs::remove_file(&e.path)
                .map_err(|err| Error::os(format!("{}", e.path.display()), err)),
        }
    }
}

/// The entry of a complete v1 array described by `i` (`None` for anything else).
fn v1_entry(name: &str, path: &Path, i: &crate::list::Info) -> Option<Entry> {
    if !matches!(i.format, SegmentFormat::V1 { .. }) || i.state != State::Ready {
        return None;
    }
    Some(Entry {
        name: name.to_string(),
        path: path.to_path_buf(),
        format: EntryFormat::V1,
        dtype: i.geometry.dtype,
        shape: i.geometry.shape.clone(),
        order: i.geometry.order,
        data_offset: i.geometry.data_offset,
        version_tag: i.created_ns as u64,
    })
}

/// A version of an ISF raw file's contents: inode, size and modification time (ISF
/// rewrites files by rename and appends in place).
fn isf_version(meta: &std::fs::Metadata) -> u64 {
    let t = meta.mtime() as u64 ^ (meta.mtime_nsec() as u64).rotate_left(40);
    meta.ino() ^ meta.len().rotate_left(32) ^ t.rotate_left(13)
}

fn isf_only(name: &str, what: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!(
            "{name:?} is an ISF raw file: {what} it needs ISF's own format, which the \
             Python package's store handles (ndshm.Store); load it into shared memory \
             with load_shm, or save it as an ndshm array"
        ),
    )
}
