//! Listing arrays and describing one array.

use std::ffi::{c_char, c_int};
use std::path::Path;

use super::array::{SA_MAX_NDIM, format_code};
use super::dtype::sa_dtype;
use super::{guard, guard_value, out_arg, str_arg, write_out};
use crate::dtype::Dtype;
use crate::error::{Error, ErrorKind, Result};
use crate::format::{MAX_HOSTNAME, Order, SegmentFormat, State};
use crate::list::{Found, Info, Listed};
use crate::name::{Backend, ListedDir};

/// List entry backend: POSIX shared memory.
pub const SA_BACKEND_SHM: i32 = 0;
/// List entry backend: a file (`file://`, or `shm://` redirected by `NDSHM_DIR`).
pub const SA_BACKEND_FILE: i32 = 1;
/// List entry state: the creator is still initialising it (or died doing so).
pub const SA_STATE_INITIALISING: i32 = 0;
/// List entry state: ready.
pub const SA_STATE_READY: i32 = 1;

/// One array found by `sa_list` or described by `sa_info`.
#[repr(C)]
pub struct sa_list_entry {
    /// Name with scheme, as `sa_attach` accepts it. Owned by the entry.
    pub name: *mut c_char,
    /// `SA_BACKEND_SHM` or `SA_BACKEND_FILE`.
    pub backend: i32,
    /// `SA_FORMAT_V1`, `SA_FORMAT_SHAREDARRAY_NPY1` or `SA_FORMAT_SHAREDARRAY_NPY2`.
    pub format: i32,
    /// `SA_STATE_READY` or `SA_STATE_INITIALISING`.
    pub state: i32,
    /// Element type.
    pub dtype: sa_dtype,
    /// `SA_ORDER_C` or `SA_ORDER_F`.
    pub order: i32,
    /// Number of dimensions; `shape[ndim..]` are 0.
    pub ndim: i32,
    /// Shape.
    pub shape: [i64; SA_MAX_NDIM],
    /// Bytes of data in use.
    pub nbytes: u64,
    /// Bytes reserved for data.
    pub capacity: u64,
    /// Size of the whole segment (header, data, trailer).
    pub file_size: u64,
    /// Creation time, nanoseconds since the Unix epoch (0 if not recorded).
    pub created_ns: i64,
    /// Creator's pid (0 if not recorded, as in SharedArray segments).
    pub creator_pid: i32,
    /// 1 if the creator process still runs, 0 if it is gone, -1 if unknown (another
    /// host, or not recorded).
    pub creator_alive: i32,
    /// Permission bits.
    pub mode: u32,
    /// Owner's user id.
    pub uid: u32,
    /// Creator's host name, NUL-terminated (empty if not recorded).
    pub host: [c_char; 64],
}

const _: () = assert!(MAX_HOSTNAME + 1 == 64);

/// What an entry is made of: borrowed from an [`Info`] (`sa_info`) or from what the
/// listing found (`sa_list`, with nothing allocated per entry).
struct Parts<'a> {
    backend: i32,
    format: SegmentFormat,
    state: State,
    dtype: Dtype,
    order: Order,
    shape: &'a [i64],
    nbytes: u64,
    capacity: u64,
    created_ns: i64,
    /// The creator's pid and host name.
    creator: Option<(i32, &'a str)>,
    creator_alive: Option<bool>,
    file_size: u64,
    mode: u32,
    uid: u32,
}

/// An entry whose `name` is still NULL (see [`Entries`]).
fn entry(p: &Parts) -> sa_list_entry {
    let mut shape = [0i64; SA_MAX_NDIM];
    shape[..p.shape.len()].copy_from_slice(p.shape);
    let mut host = [0 as c_char; MAX_HOSTNAME + 1];
    if let Some((_, h)) = p.creator {
        // The core keeps host names at most MAX_HOSTNAME bytes; the last byte stays NUL.
        for (d, s) in host.iter_mut().zip(h.bytes().take(MAX_HOSTNAME)) {
            *d = s as c_char;
        }
    }
    sa_list_entry {
        name: std::ptr::null_mut(),
        backend: p.backend,
        format: format_code(p.format),
        state: match p.state {
            State::Initialising => SA_STATE_INITIALISING,
            State::Ready => SA_STATE_READY,
        },
        dtype: p.dtype.code(),
        order: p.order as i32,
        ndim: p.shape.len() as i32,
        shape,
        nbytes: p.nbytes,
        capacity: p.capacity,
        file_size: p.file_size,
        created_ns: p.created_ns,
        creator_pid: p.creator.map_or(0, |(pid, _)| pid),
        creator_alive: match p.creator_alive {
            Some(true) => 1,
            Some(false) => 0,
            None => -1,
        },
        mode: p.mode,
        uid: p.uid,
        host,
    }
}

fn info_parts(i: &Info) -> Parts<'_> {
    let g = &i.geometry;
    Parts {
        backend: match i.backend() {
            Backend::Shm(_) => SA_BACKEND_SHM,
            Backend::File(_) => SA_BACKEND_FILE,
        },
        format: i.format,
        state: i.state,
        dtype: g.dtype,
        order: g.order,
        shape: &g.shape,
        nbytes: g.nbytes,
        capacity: g.capacity,
        created_ns: i.created_ns,
        creator: i.creator.as_ref().map(|c| (c.pid, c.hostname.as_str())),
        creator_alive: i.creator_alive,
        file_size: i.file_size,
        mode: i.mode,
        uid: i.uid,
    }
}

/// Entries being collected, their names in one buffer: the result is one `malloc`
/// block, the entries followed by their NUL-terminated names, which `sa_list_free`
/// frees at once (a listing of 50,000 arrays makes no allocation per entry).
#[derive(Default)]
struct Entries {
    entries: Vec<sa_list_entry>,
    /// Each entry's name: offset and length in `names` (without its NUL).
    spans: Vec<(usize, usize)>,
    names: Vec<u8>,
}

impl Entries {
    fn push(&mut self, e: sa_list_entry, name: &[&str]) {
        let at = self.names.len();
        for part in name {
            self.names.extend_from_slice(part.as_bytes());
        }
        self.spans.push((at, self.names.len() - at));
        self.names.push(0);
        self.entries.push(e);
    }

    /// The block, sorted by name (as `list` sorts), and its count; NULL when empty.
    fn into_raw(self) -> Result<(*mut sa_list_entry, usize)> {
        let n = self.entries.len();
        if n == 0 {
            return Ok((std::ptr::null_mut(), 0));
        }
        let name = |i: usize| {
            let (at, len) = self.spans[i];
            &self.names[at..at + len]
        };
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| name(a).cmp(name(b)));
        let head = n * size_of::<sa_list_entry>();
        // SAFETY: plain allocation; checked for NULL below. malloc's alignment suits
        // every fundamental type, sa_list_entry's fields included.
        let block = unsafe { libc::malloc(head + self.names.len()) }.cast::<u8>();
        if block.is_null() {
            return Err(Error::new(ErrorKind::NoSpace, "sa_list: out of memory"));
        }
        let entries = block.cast::<sa_list_entry>();
        // SAFETY: the block holds n entries, then names.len() bytes; the names'
        // offsets are inside names, each followed by its NUL.
        unsafe {
            let names = block.add(head);
            std::ptr::copy_nonoverlapping(self.names.as_ptr(), names, self.names.len());
            for (k, &i) in order.iter().enumerate() {
                let mut e = std::ptr::read(&self.entries[i]);
                e.name = names.add(self.spans[i].0).cast::<c_char>();
                entries.add(k).write(e);
            }
        }
        Ok((entries, n))
    }
}

fn found_entry(d: &Listed, f: &Found) -> sa_list_entry {
    let s = f.segment;
    let g = &s.geometry;
    entry(&Parts {
        backend: match d.kind {
            ListedDir::Shm => SA_BACKEND_SHM,
            ListedDir::Redirect | ListedDir::Files => SA_BACKEND_FILE,
        },
        format: s.format,
        state: s.state,
        dtype: g.dtype,
        order: g.order,
        shape: g.shape(),
        nbytes: g.nbytes,
        capacity: g.capacity,
        created_ns: s.created_ns,
        creator: s.creator.as_ref().map(|c| (c.pid, c.hostname())),
        creator_alive: f.creator_alive,
        file_size: f.stat.size,
        mode: f.stat.mode,
        uid: f.stat.uid,
    })
}

/// Lists arrays into a new array of `*count` entries at `*entries`, sorted by name.
/// `where` NULL lists shared memory: `/dev/shm` and, when `NDSHM_DIR` (or
/// `JOB_SHMTMPDIR`) is set, that directory (its entries named `shm://NAME`; `/dev/shm`
/// entries are then named `file:///dev/shm/NAME`). Otherwise `where` is a directory
/// whose arrays are listed as `file://` names. Files that are not arrays are skipped.
/// With no arrays, `*entries` is NULL and `*count` 0.
///
/// Free the result with `sa_list_free(*entries, *count)`.
/// Returns `SA_OK`, `SA_ERR_INVALID`, `SA_ERR_NOT_FOUND` (no such directory),
/// `SA_ERR_PERMISSION`, `SA_ERR_IO`.
///
/// # Safety
/// `where` is NULL or a NUL-terminated string; `entries` and `count` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_list(
    r#where: *const c_char,
    entries: *mut *mut sa_list_entry,
    count: *mut usize,
) -> c_int {
    guard(|| {
        out_arg(entries, "entries")?;
        out_arg(count, "count")?;
        let dir = if r#where.is_null() {
            None
        } else {
            // SAFETY: per this function's contract.
            Some(unsafe { str_arg(r#where, "where") }?)
        };
        let mut out = Entries::default();
        crate::list::for_each(dir.map(Path::new), |d, f| {
            if let Some(prefix) = d.prefix {
                out.push(found_entry(d, f), &[prefix, f.file_name]);
            }
        })?;
        let (block, n) = out.into_raw()?;
        // SAFETY: both checked non-NULL; writable per the contract.
        unsafe {
            write_out(entries, block);
            write_out(count, n);
        }
        Ok(())
    })
}

/// Frees what `sa_list` or `sa_info` returned. `count` must be the count returned with
/// it. NULL is a no-op.
///
/// # Safety
/// `entries` is NULL or an unfreed result of `sa_list`/`sa_info` with its `count`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_list_free(entries: *mut sa_list_entry, count: usize) {
    guard_value((), || {
        if entries.is_null() {
            return;
        }
        // One block holds the entries and their names (see Entries::into_raw).
        let _ = count;
        // SAFETY: made by malloc in Entries::into_raw, freed once per the contract.
        unsafe { libc::free(entries.cast()) };
    })
}

/// Describes the array `name` without mapping its data: one entry at `*out` (free it
/// with `sa_list_free(*out, 1)`). An array still being initialised is described with
/// `state` `SA_STATE_INITIALISING` once its header exists, else `SA_ERR_NOT_READY`.
///
/// Returns `SA_OK`, `SA_ERR_INVALID`, `SA_ERR_NOT_FOUND`, `SA_ERR_NOT_READY`,
/// `SA_ERR_FORMAT` (not an array), `SA_ERR_PERMISSION`, `SA_ERR_IO`.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_info(name: *const c_char, out: *mut *mut sa_list_entry) -> c_int {
    guard(|| {
        out_arg(out, "out")?;
        // SAFETY: per this function's contract.
        let name = unsafe { str_arg(name, "name") }?;
        let i = crate::list::info(name)?;
        let mut one = Entries::default();
        one.push(entry(&info_parts(&i)), &[i.name.as_str()]);
        let (block, _) = one.into_raw()?;
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { write_out(out, block) };
        Ok(())
    })
}
