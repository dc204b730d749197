//! Datasets: load a file into a shared array once per node (open-or-create), save an
//! array to a `.npy` file atomically.
//!
//! [`load`] and [`open_or_create`] give exactly one process the job of creating (and
//! filling) the array, however many start at once: the creator claims the name while
//! the header says INITIALISING ([`crate::segment::Writer::claim`]), fills the memory
//! through the file descriptor, and publishes READY; every other process waits for READY
//! and attaches, so nobody ever sees partial data. A creator that dies is noticed by the
//! waiters ([`ErrorKind::OwnerDied`] is not returned to them: the next one takes the
//! name over atomically and loads again).
//!
//! Loads copy inside the kernel (`sendfile`) from the page cache into the segment:
//! writing through the descriptor avoids the page faults of filling a fresh mapping
//! (docs/BENCHMARKS.md has the measurements). Data in the other byte order is converted
//! to this machine's while it is copied.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::array::{Array, new_geometry, new_header};
use crate::dtype::Dtype;
use crate::error::{Error, ErrorKind, Result, human_bytes};
use crate::format::{Geometry, Order, SegmentFormat, State};
use crate::name::ArrayName;
use crate::npy::{self, FileArray};
use crate::options::{AttachOptions, CreateOptions, Expect, ShapeExpect};
use crate::segment::{self, Access, Writer};
use crate::sys;

/// The layout of a data file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileFormat {
    /// numpy `.npy`, format versions 1.0, 2.0 and 3.0, either order, either byte order
    /// (converted to this machine's while loading).
    Npy,
    /// cdxcore's `npio` (big-endian header, C-order native data).
    Npio,
    /// Raw elements at `offset`, in this machine's byte order.
    Raw {
        /// Element type.
        dtype: Dtype,
        /// Shape of the whole array in the file.
        shape: Vec<i64>,
        /// Storage order in the file.
        order: Order,
        /// Offset of the first element.
        offset: u64,
    },
}

/// How to load or open-or-create.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Only rows `start..end` of axis 0.
    pub rows: Option<Range<i64>>,
    /// How a new array is created (permissions, huge pages, populate). `force` loads a
    /// fresh copy and atomically replaces whatever array has the name; `order` and
    /// `sharedarray_format` are taken from the file.
    pub create: CreateOptions,
    /// How an existing array is attached, and the returned handle mapped (read-only,
    /// other owners, symbolic links). Its `wait` is not used: see `timeout`.
    pub attach: AttachOptions,
    /// Attach an existing array of the same shape, dtype and order instead of loading
    /// (the default); when false an existing array is [`ErrorKind::Exists`].
    pub accept_existing: bool,
    /// How long to wait for another process that is loading the same array (`None`: no
    /// limit; a loader that dies ends the wait at once, and this process takes over).
    pub timeout: Option<Duration>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            rows: None,
            create: CreateOptions::default(),
            attach: AttachOptions::default(),
            accept_existing: true,
            timeout: None,
        }
    }
}

/// What open-or-create did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// This process created (and filled) the array.
    Created,
    /// The array existed (or another process made it meanwhile) and was attached.
    Attached,
}

/// Progress of a transfer: `(bytes done, bytes in all)`.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// One contiguous run of bytes to copy.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// Offset in the file.
    file: u64,
    /// Offset in the array's data.
    data: u64,
    len: u64,
}

/// What to copy from a file: the array it becomes and the runs.
struct Plan {
    dtype: Dtype,
    order: Order,
    shape: Vec<i64>,
    swap: bool,
    runs: Vec<Run>,
}

/// Which runs hold rows `rows` of an array of `shape` (axis 0) stored at `base`.
fn row_runs(
    shape: &[i64],
    itemsize: u64,
    order: Order,
    base: u64,
    rows: Option<&Range<i64>>,
) -> Result<(Vec<i64>, Vec<Run>)> {
    let nbytes = crate::format::nbytes_for(shape, itemsize as usize)?;
    let Some(r) = rows else {
        return Ok((
            shape.to_vec(),
            vec![Run {
                file: base,
                data: 0,
                len: nbytes,
            }],
        ));
    };
    let Some(&n) = shape.first() else {
        return Err(Error::invalid(
            "a row range needs an array of at least one dimension",
        ));
    };
    if r.start < 0 || r.start > r.end || r.end > n {
        return Err(Error::invalid(format!(
            "rows {}..{} are outside the array's {n} rows",
            r.start, r.end
        )));
    }
    let mut out_shape = shape.to_vec();
    out_shape[0] = r.end - r.start;
    let take = (r.end - r.start) as u64;
    // Rows of a C-order array are contiguous; in Fortran order each "column" (every
    // index but the first) holds a contiguous run of them.
    let (per_run, runs_n, stride) = match order {
        Order::C => {
            let row = nbytes.checked_div(n as u64).unwrap_or(0);
            (row * take, 1, 0)
        }
        Order::F => {
            let cols: u64 = shape[1..].iter().map(|&d| d as u64).product();
            (itemsize * take, cols, itemsize * n as u64)
        }
    };
    let first = match order {
        Order::C => nbytes.checked_div(n as u64).unwrap_or(0) * r.start as u64,
        Order::F => itemsize * r.start as u64,
    };
    let runs = (0..runs_n)
        .map(|k| Run {
            file: base + first + k * stride,
            data: k * per_run,
            len: per_run,
        })
        .filter(|r| r.len > 0)
        .collect();
    Ok((out_shape, runs))
}

fn plan(fa: &FileArray, rows: Option<&Range<i64>>, file_size: u64, path: &Path) -> Result<Plan> {
    let itemsize = fa.dtype.itemsize() as u64;
    let end = fa
        .data_offset
        .checked_add(fa.nbytes)
        .ok_or_else(|| Error::format(format!("{}: the data size overflows", path.display())))?;
    if end > file_size {
        return Err(Error::format(format!(
            "{}: the header says {:?} {} ({}) from byte {}, but the file has {file_size} bytes",
            path.display(),
            fa.shape,
            fa.dtype,
            human_bytes(fa.nbytes),
            fa.data_offset
        )));
    }
    let (shape, runs) = row_runs(&fa.shape, itemsize, fa.order, fa.data_offset, rows)
        .map_err(|e| e.context(path.display()))?;
    Ok(Plan {
        dtype: fa.dtype,
        order: fa.order,
        shape,
        swap: fa.swap_bytes,
        runs,
    })
}

/// Reads a data file's header.
fn file_array(src: &File, path: &Path, format: &FileFormat) -> Result<FileArray> {
    let rd = |e| Error::os(format!("{}: read", path.display()), e);
    let ctx = |e: Error| e.context(path.display());
    match format {
        FileFormat::Npy => {
            let mut prefix = [0u8; 12];
            let n = sys::pread_full(src, &mut prefix, 0).map_err(rd)?;
            let len = npy::npy_header_len(&prefix[..n]).map_err(ctx)?;
            let mut head = vec![0u8; len];
            let n = sys::pread_full(src, &mut head, 0).map_err(rd)?;
            npy::parse_npy(&head[..n]).map_err(ctx)
        }
        FileFormat::Npio => {
            let mut prefix = [0u8; 8];
            let n = sys::pread_full(src, &mut prefix, 0).map_err(rd)?;
            let len = npy::npio_header_len(&prefix[..n]).map_err(ctx)?;
            let mut head = vec![0u8; len];
            let n = sys::pread_full(src, &mut head, 0).map_err(rd)?;
            npy::parse_npio(&head[..n]).map_err(ctx)
        }
        FileFormat::Raw {
            dtype,
            shape,
            order,
            offset,
        } => {
            crate::format::check_ndim(shape.len() as i64)?;
            Ok(FileArray {
                dtype: *dtype,
                order: *order,
                shape: shape.clone(),
                swap_bytes: false,
                data_offset: *offset,
                nbytes: crate::format::nbytes_for(shape, dtype.itemsize())?,
            })
        }
    }
}

fn open_source(path: &Path) -> Result<(File, u64)> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::invalid(format!("{}: the path contains a NUL byte", path.display())))?;
    // O_NONBLOCK: a FIFO at the path must not hang the loader.
    let f = sys::open(&c, libc::O_RDONLY | libc::O_NONBLOCK)
        .map_err(|e| Error::os(format!("{}: open", path.display()), e))?;
    let m = f
        .metadata()
        .map_err(|e| Error::os(format!("{}: stat", path.display()), e))?;
    if !m.is_file() {
        return Err(Error::format(format!(
            "{}: not a regular file",
            path.display()
        )));
    }
    Ok((f, m.len()))
}

/// Loads `path` (of `format`) into the shared array `name`, or attaches it when it
/// exists with the same shape, dtype and order: exactly one of many processes loading
/// the same name at once reads the file (see the module documentation). `progress`, if
/// given, is called as the creator copies.
///
/// Errors: [`ErrorKind::Format`] / [`ErrorKind::Unsupported`] for a malformed file (bad
/// magic, a header that is not a dict, a size that does not match the file, object or
/// structured dtypes, a file truncated while loading); [`ErrorKind::Invalid`] for a row
/// range outside the array; [`ErrorKind::Mismatch`] when an existing array differs;
/// [`ErrorKind::Timeout`] when another loader takes longer than `opts.timeout`.
pub fn load(
    path: &Path,
    format: &FileFormat,
    name: &str,
    opts: &LoadOptions,
    progress: Option<Progress<'_>>,
) -> Result<(Array, Outcome)> {
    let name = ArrayName::parse(name)?;
    let (src, size) = open_source(path)?;
    let fa = file_array(&src, path, format)?;
    let p = plan(&fa, opts.rows.as_ref(), size, path)?;
    let create = CreateOptions {
        order: p.order,
        sharedarray_format: false,
        ..opts.create.clone()
    };
    let geometry = new_geometry(&name, &p.shape, p.dtype, &create)?;
    let total = geometry.nbytes;
    // The fastest copy depends on the target's pages (docs/BENCHMARKS.md, "Loading").
    let huge = sys::tmpfs_huge(&name.dir_and_file().0);
    let engine = if p.swap {
        Engine::Swap
    } else if huge {
        Engine::ReserveThenPwrite
    } else {
        Engine::Sendfile
    };
    let fill = move |w: &Writer<'_>, g: &Geometry| -> Result<()> {
        copy_runs(
            w.name(),
            w.file(),
            g.data_offset,
            &src,
            path,
            &p,
            engine,
            total,
            progress,
        )
    };
    let reserve_first = engine == Engine::ReserveThenPwrite;
    open_or_create_with(
        name,
        geometry,
        opts,
        &create,
        Fill::EveryByte(fill, reserve_first),
    )
}

/// How a load copies the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    /// `sendfile` from the page cache, allocating the destination's pages as it goes
    /// (fastest on a tmpfs of 4 KiB pages: reserving first would zero every page once
    /// more).
    Sendfile,
    /// Reserve the whole segment, then `pwrite` from a read-only mapping of the source
    /// (fastest on a tmpfs with huge pages, where reserving is cheap).
    ReserveThenPwrite,
    /// Read, swap each element's bytes, `pwrite`: data in the other byte order.
    Swap,
}

/// Attaches the array `name` when it exists with this shape and dtype, or creates it
/// zero-filled: exactly one of many processes doing this at once creates it.
pub fn open_or_create(
    name: &str,
    shape: &[i64],
    dtype: Dtype,
    opts: &LoadOptions,
) -> Result<(Array, Outcome)> {
    let name = ArrayName::parse(name)?;
    let create = CreateOptions {
        sharedarray_format: false,
        ..opts.create.clone()
    };
    let geometry = new_geometry(&name, shape, dtype, &create)?;
    let zeros = Fill::<fn(&Writer<'_>, &Geometry) -> Result<()>>::Zeros;
    open_or_create_with(name, geometry, opts, &create, zeros)
}

fn expect_of(g: &Geometry) -> Expect {
    Expect {
        shape: ShapeExpect::Dims(g.shape.iter().map(|&d| Some(d)).collect()),
        dtype: Some(g.dtype),
        order: Some(g.order),
    }
}

/// How a new array gets its contents.
enum Fill<F> {
    /// Zeros: the memory is reserved up front (unless sparse).
    Zeros,
    /// `F` writes every data byte through the descriptor, allocating as it goes unless
    /// the flag asks to reserve everything first.
    EveryByte(F, bool),
}

/// A writer at the claim phase: unnamed file, header INITIALISING, nothing reserved yet.
fn prepare<'n>(name: &'n ArrayName, g: &Geometry, create: &CreateOptions) -> Result<Writer<'n>> {
    let mut w = Writer::begin(name, create.share.mode())?;
    w.write_header(&new_header(g), State::Initialising)?;
    Ok(w)
}

/// Reserves, fills and publishes a claimed (or unnamed, with `replace`) writer, and
/// returns the array mapped.
fn finish(
    mut w: Writer<'_>,
    name: &ArrayName,
    g: Geometry,
    opts: &LoadOptions,
    create: &CreateOptions,
    replace: Option<bool>,
    fill: Fill<impl FnOnce(&Writer<'_>, &Geometry) -> Result<()>>,
) -> Result<(Array, Outcome)> {
    match fill {
        Fill::Zeros => w.reserve(create.sparse)?,
        Fill::EveryByte(f, reserve_first) => {
            if reserve_first {
                w.reserve(false)?;
            } else {
                w.reserve_for_fill(g.data_offset)?;
            }
            f(&w, &g)?;
        }
    }
    let total = w.total();
    let file = w.publish(replace.unwrap_or(false))?;
    let format = SegmentFormat::V1 {
        minor: crate::format::VERSION_MINOR,
    };
    let mut a = Array::from_published(name.clone(), &file, total, format, g, create)?;
    if opts.attach.readonly {
        // The loader's own handle honours the read-only request: map again read-only.
        drop(a);
        a = Array::attach(name.as_str(), &access_opts(opts))?;
    }
    Ok((a, Outcome::Created))
}

fn access_opts(opts: &LoadOptions) -> AttachOptions {
    AttachOptions {
        wait: None,
        ..opts.attach
    }
}

fn open_or_create_with(
    name: ArrayName,
    g: Geometry,
    opts: &LoadOptions,
    create: &CreateOptions,
    fill: Fill<impl FnOnce(&Writer<'_>, &Geometry) -> Result<()>>,
) -> Result<(Array, Outcome)> {
    if create.force {
        // A fresh copy, named only once complete, replacing any array atomically.
        let w = prepare(&name, &g, create)?;
        return finish(w, &name, g, opts, create, Some(true), fill);
    }
    let start = Instant::now();
    let deadline = opts.timeout.and_then(|t| start.checked_add(t));
    let access = Access {
        write: !opts.attach.readonly,
        allow_other_owner: opts.attach.allow_other_owner,
        follow_symlinks: opts.attach.follow_symlinks,
    };
    let expect = expect_of(&g);
    let mut pause = Duration::from_micros(100);
    let mut fill = Some(fill);
    loop {
        match segment::open(&name, &access) {
            Ok((file, meta)) => {
                let seg = segment::read(&name, &file, meta.len())?;
                match seg.state {
                    State::Ready => {
                        if !opts.accept_existing {
                            return Err(Error::new(
                                ErrorKind::Exists,
                                format!("{name}: already exists (and accepting it was not asked)"),
                            ));
                        }
                        let a = Array::attach(name.as_str(), &access_opts(opts))?;
                        a.check(&expect).map_err(|e| {
                            Error::new(
                                ErrorKind::Mismatch,
                                format!("{}; use the force option to replace it", e.message()),
                            )
                            .with_option(crate::Opt::Force)
                        })?;
                        return Ok((a, Outcome::Attached));
                    }
                    State::Initialising
                        if sys::creator_alive(seg.creator.as_ref().expect("v1")) == Some(false) =>
                    {
                        // Abandoned by a dead loader: take the name over and load.
                        let mut w = prepare(&name, &g, create)?;
                        if w.claim_over((meta.dev(), meta.ino()))? {
                            let f = fill.take().expect("filled once");
                            return finish(w, &name, g, opts, create, None, f);
                        }
                        continue; // another process took it over first
                    }
                    State::Initialising => {
                        // Another process is loading it: wait for READY.
                        let now = Instant::now();
                        if deadline.is_some_and(|d| now >= d) {
                            let c = seg.creator.as_ref().map_or(0, |c| c.pid);
                            return Err(Error::new(
                                ErrorKind::Timeout,
                                format!(
                                    "{name}: timed out after {:?} waiting for pid {c} to finish \
                                     loading it",
                                    now - start
                                ),
                            ));
                        }
                        std::thread::sleep(pause);
                        pause = (pause * 2).min(Duration::from_millis(5));
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let mut w = prepare(&name, &g, create)?;
                match w.claim() {
                    Ok(()) => {
                        let f = fill.take().expect("filled once");
                        return finish(w, &name, g, opts, create, None, f);
                    }
                    // The name exists but could not be opened as an array a moment ago:
                    // another process claimed it first (wait for it), or something keeps
                    // replacing it (a dangling symbolic link, a hostile process): bounded
                    // by the deadline and paced, never a busy loop.
                    Err(e) if e.kind() == ErrorKind::Exists => {
                        if deadline.is_some_and(|d| Instant::now() >= d) {
                            return Err(Error::new(
                                ErrorKind::Timeout,
                                format!("{name}: timed out: {}", e.message()),
                            ));
                        }
                        if sys::lstat(&name.path()).is_ok_and(|m| m.file_type().is_symlink()) {
                            return Err(Error::new(
                                ErrorKind::Permission,
                                format!("{name}: a symbolic link that does not lead to an array"),
                            ));
                        }
                        std::thread::sleep(pause);
                        pause = (pause * 2).min(Duration::from_millis(5));
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Block size for progress reports and byte swapping.
const BLOCK: u64 = 64 << 20;

#[allow(clippy::too_many_arguments)]
fn copy_runs(
    name: &ArrayName,
    dst: &File,
    data_offset: u64,
    src: &File,
    path: &Path,
    p: &Plan,
    engine: Engine,
    total: u64,
    mut progress: Option<Progress<'_>>,
) -> Result<()> {
    let itemsize = p.dtype.itemsize();
    let source_map = match engine {
        Engine::ReserveThenPwrite if total > 0 => Some(
            memmap2::MmapOptions::new()
                .populate()
                .map_raw_read_only(src)
                .map_err(|e| Error::os(format!("{}: mmap", path.display()), e))?,
        ),
        _ => None,
    };
    let mut done = 0u64;
    let mut swap_buf = Vec::new();
    let write_error = |e: std::io::Error| match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG) => {
            segment::no_space(name, total + data_offset, e)
        }
        _ => Error::os(format!("{name}: copy {} into the array", path.display()), e),
    };
    let truncated = |at: u64| {
        Error::format(format!(
            "{}: the file ended at byte {at}, before the data its header announces (was it \
             truncated while loading?)",
            path.display()
        ))
    };
    for run in &p.runs {
        let mut off = 0u64;
        while off < run.len {
            let n = (run.len - off).min(BLOCK);
            let (s, d) = (run.file + off, data_offset + run.data + off);
            if let Some(m) = &source_map {
                // The kernel copies from the mapping: a source truncated meanwhile is
                // EFAULT from pwrite (no SIGBUS: the access happens in the kernel).
                if s + n > m.len() as u64 {
                    return Err(truncated(m.len() as u64));
                }
                // SAFETY: [s, s + n) lies inside the mapping (checked just above), which
                // lives until the end of this function; no Rust reference is formed.
                unsafe { sys::pwrite_raw(dst, m.as_ptr().add(s as usize), n as usize, d) }
                    .map_err(|e| match e.raw_os_error() {
                        Some(libc::EFAULT) => truncated(s),
                        _ => write_error(e),
                    })?;
            } else if engine == Engine::Swap {
                // Whole elements per block, swapped to this machine's byte order.
                swap_buf.resize(n as usize, 0);
                let got = sys::pread_full(src, &mut swap_buf, s)
                    .map_err(|e| Error::os(format!("{}: read", path.display()), e))?;
                if got < n as usize {
                    return Err(truncated(s + got as u64));
                }
                swap_elements(&mut swap_buf, itemsize, p.dtype);
                sys::pwrite_all(dst, &swap_buf, d).map_err(write_error)?;
            } else {
                let mut left = n;
                while left > 0 {
                    let k = sys::sendfile(dst, d + (n - left), src, s + (n - left), left as usize)
                        .map_err(write_error)?;
                    if k == 0 {
                        return Err(truncated(s + (n - left)));
                    }
                    left -= k as u64;
                }
            }
            off += n;
            done += n;
            if let Some(f) = progress.as_deref_mut() {
                f(done, total);
            }
        }
    }
    Ok(())
}

/// Reverses the bytes of each element (each half for complex numbers).
fn swap_elements(buf: &mut [u8], itemsize: usize, dtype: Dtype) {
    let unit = match dtype {
        Dtype::Complex64 | Dtype::Complex128 => itemsize / 2,
        _ => itemsize,
    };
    if unit > 1 {
        buf.chunks_exact_mut(unit).for_each(<[u8]>::reverse);
    }
}

/// Writes `array` (or rows `rows` of axis 0) to the `.npy` file `path`, atomically: the
/// data goes to a temporary file in the same directory, which is synced and renamed over
/// `path`, so a reader sees the old file or the complete new one, never a half-written
/// one. `numpy.load` reads the result (Fortran-order arrays are saved as such).
pub fn save(
    array: &Array,
    path: &Path,
    rows: Option<Range<i64>>,
    progress: Option<Progress<'_>>,
) -> Result<()> {
    let g = array.geometry();
    let (shape, runs) = row_runs(
        &g.shape,
        g.dtype.itemsize() as u64,
        g.order,
        0,
        rows.as_ref(),
    )
    .map_err(|e| e.context(array.name()))?;
    let header = npy::encode_npy(g.dtype, g.order, &shape);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::invalid(format!("{}: not a file name", path.display())))?;
    let fail = |what: &str, e| Error::os(format!("{}: {what}", path.display()), e);
    let (tmp_file, tmp) = loop {
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        let t = dir.join(format!(
            ".{}.ndshm-save.{pid}.{:x}",
            file_name.to_string_lossy(),
            sys::now_ns() as u64
        ));
        // Mode 0666 less the umask, as numpy.save and every editor create files.
        match sys::create_excl_umask(&t) {
            Ok(f) => break (f, t),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
            Err(e) => return Err(fail("create", e)),
        }
    };
    let write = || -> Result<()> {
        sys::pwrite_all(&tmp_file, &header, 0).map_err(|e| fail("write", e))?;
        let total: u64 = runs.iter().map(|r| r.len).sum();
        let mut progress = progress;
        let mut out = header.len() as u64;
        let base = array.as_ptr();
        for run in &runs {
            let mut off = 0;
            while off < run.len {
                let n = (run.len - off).min(BLOCK);
                // SAFETY: every run lies inside the array's data (row_runs checked the
                // rows against the shape), which stays mapped while `array` lives; the
                // kernel copies it without a Rust reference to shared memory.
                unsafe {
                    sys::pwrite_raw(
                        &tmp_file,
                        base.add((run.file + off) as usize),
                        n as usize,
                        out,
                    )
                }
                .map_err(|e| match e.raw_os_error() {
                    Some(libc::ENOSPC) | Some(libc::EDQUOT) => fail("no space left", e),
                    _ => fail("write", e),
                })?;
                off += n;
                out += n;
                if let Some(f) = progress.as_deref_mut() {
                    f(out - header.len() as u64, total);
                }
            }
        }
        tmp_file.sync_all().map_err(|e| fail("fsync", e))?;
        sys::rename(&tmp, path).map_err(|e| fail("rename", e))?;
        // The rename itself durable: best effort (not every filesystem syncs a directory).
        let _ = sys::fsync_path(&dir);
        Ok(())
    };
    let r = write();
    if r.is_err() {
        let _ = sys::unlink(&tmp);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_runs_c_and_f() {
        let (s, r) = row_runs(&[4, 3], 8, Order::C, 100, Some(&(1..3))).unwrap();
        assert_eq!(s, vec![2, 3]);
        assert_eq!(
            (r.len(), r[0].file, r[0].data, r[0].len),
            (1, 100 + 24, 0, 48)
        );
        // F order: each of the 3 columns holds rows 1..3 contiguously.
        let (s, r) = row_runs(&[4, 3], 8, Order::F, 0, Some(&(1..3))).unwrap();
        assert_eq!(s, vec![2, 3]);
        let runs: Vec<(u64, u64, u64)> = r.iter().map(|r| (r.file, r.data, r.len)).collect();
        assert_eq!(runs, vec![(8, 0, 16), (40, 16, 16), (72, 32, 16)]);
        assert!(row_runs(&[4, 3], 8, Order::C, 0, Some(&(3..5))).is_err());
        assert!(row_runs(&[4, 3], 8, Order::C, 0, Some(&(-1..2))).is_err());
        assert!(row_runs(&[], 8, Order::C, 0, Some(&(0..0))).is_err());
        let (s, r) = row_runs(&[4, 3], 8, Order::C, 0, Some(&(2..2))).unwrap();
        assert_eq!((s, r.len()), (vec![0, 3], 0));
    }

    #[test]
    fn swapping() {
        let mut b = vec![1, 2, 3, 4, 5, 6, 7, 8];
        swap_elements(&mut b, 4, Dtype::Int32);
        assert_eq!(b, vec![4, 3, 2, 1, 8, 7, 6, 5]);
        swap_elements(&mut b, 8, Dtype::Complex64);
        assert_eq!(b, vec![1, 2, 3, 4, 5, 6, 7, 8]);
    }
}
