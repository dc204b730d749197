//! Growth along axis 0: appending rows to a C-order v1 array and changing its length,
//! in place. The file is extended (never replaced), so every process keeps its mapping
//! and its pointers to the rows it had; others see the new length after
//! [`Array::refresh`] (or their next snapshot, which refreshes by itself).
//!
//! # Protocol (docs/FORMAT.md, "Growth")
//!
//! 1. Take the array's lock ([`Array::lock`]): appenders are serialised by it. A holder
//!    killed in the middle is noticed by the next appender, which needs no repair (see
//!    below), so an append proceeds after [`crate::sync::LockStart::OwnerDied`] too.
//! 2. Read the header (or its shadow, see [`crate::format::SHADOW_OFFSET`]).
//! 3. If the rows do not fit the capacity, extend the file with `posix_fallocate` to a
//!    capacity at least twice the old one (so appending one row at a time costs
//!    amortised O(row size)): a full filesystem is an error here and never a SIGBUS
//!    later, and a failed extension is cut back. The header does not change yet.
//! 4. Copy the rows after the last row of the array. Nobody reads there: readers use
//!    the header's length.
//! 5. One write under the seqlock rewrites the header, shadow first: new length, new
//!    capacity. Snapshot readers see the old length or the new one, never a mix.
//!
//! A process killed before step 5 leaves the old length (its rows are not part of the
//! array; the next append overwrites them; a file extended in step 3 is just larger
//! than its capacity, which readers accept). Killed in the middle of step 5, the
//! shadow holds the new header, complete, and the rows it covers were written in step
//! 4. So the array has the appended rows or it has not, and a length never covers rows
//! that were not written.

use crate::array::Array;
use crate::dtype::Element;
use crate::error::{Error, ErrorKind, Result};
use crate::format::{self, Order, SegmentFormat, off};
use crate::segment::{self, Access};
use crate::sys;

use memmap2::MmapOptions;
use std::fs::File;
use std::sync::atomic::{Ordering, fence};

/// Appends of at least this many bytes are written through the file, smaller ones
/// through the mapping (a system call costs more than the page faults it saves).
const PWRITE_FROM: usize = 64 << 10;

impl Array {
    /// The size in bytes of one row (one index of axis 0) when this handle may change
    /// the length along axis 0: a v1 array, attached read-write, with at least one
    /// dimension, in C order (or of one dimension). Otherwise the error that
    /// [`Array::append_bytes`] would give.
    pub fn row_size(&self) -> Result<u64> {
        if !matches!(self.format(), SegmentFormat::V1 { .. }) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{}: only ndshm v1 arrays can grow; this one has the {:?} layout, \
                     whose size is fixed (copy it into a new array)",
                    self.name(),
                    self.format()
                ),
            ));
        }
        self.rw()?;
        let g = &self.geometry;
        if g.shape.is_empty() {
            return Err(Error::invalid(format!(
                "{}: a 0-d array has no rows to append or remove",
                self.name()
            )));
        }
        if g.order == Order::F && g.shape.len() > 1 {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{}: rows can be appended only to a C-order array: in Fortran order \
                     the elements of one row are not contiguous, so every existing element \
                     would move",
                    self.name()
                ),
            ));
        }
        format::nbytes_for(&g.shape[1..], g.dtype.itemsize()).map_err(|e| e.context(self.name()))
    }

    /// Appends `nrows` rows along axis 0, given as their bytes (`src` holds exactly
    /// `nrows` rows of the array's row size and dtype), and returns the new length.
    /// Takes the array's lock for the call unless this thread holds it already. The
    /// capacity grows geometrically when needed, in place: see the module
    /// documentation for what other processes see and for crash safety.
    ///
    /// Errors: [`ErrorKind::Invalid`] (wrong byte count, 0-d array, length
    /// overflow), [`ErrorKind::Unsupported`] (Fortran order with more than one
    /// dimension, SharedArray or `.npy` layout), [`ErrorKind::ReadOnly`],
    /// [`ErrorKind::NoSpace`] (the filesystem is full: the array is unchanged),
    /// [`ErrorKind::Stale`] (the array's name was deleted or now holds another array,
    /// and the file must grow).
    pub fn append_bytes(&mut self, nrows: u64, src: &[u8]) -> Result<i64> {
        let row = self.row_size()?;
        let want = nrows.checked_mul(row);
        if want != Some(src.len() as u64) {
            return Err(Error::invalid(format!(
                "{}: {nrows} rows of {row} bytes need {}, the buffer has {} bytes",
                self.name(),
                want.map_or("more than 2^64 bytes".to_string(), |w| w.to_string()),
                src.len()
            )));
        }
        // Rows taken from this very array (e.g. a view of rows dropped by a shrink) would
        // overlap the destination: copy them out first.
        let bounce;
        let src = if self.maps_any(src) {
            bounce = src.to_vec();
            &bounce[..]
        } else {
            src
        };
        self.with_lock(|a| {
            a.refresh_locked()?;
            if a.is_stale() {
                // Rows appended to a replaced or deleted array would be lost.
                return Err(a.stale_error());
            }
            let len0 = a.geometry.shape[0];
            if nrows == 0 {
                return Ok(len0);
            }
            let len = i64::try_from(nrows)
                .ok()
                .and_then(|n| len0.checked_add(n))
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "{}: {len0} + {nrows} rows overflow the length",
                        a.name()
                    ))
                })?;
            let old = a.geometry.nbytes;
            let nbytes = a.commit_check(len)?;
            a.ensure_capacity(nbytes)?;
            if src.len() >= PWRITE_FROM {
                // Through the file: no page faults on fresh pages (about twice as fast
                // on tmpfs for large batches). The pages are reserved (ensure_capacity).
                let at = a.geometry.data_offset + old;
                let f = a.appender_file()?;
                sys::pwrite_all(f, src, at)
                    .map_err(|e| Error::os(format!("{}: write", a.name()), e))?;
            } else {
                let dst = a.as_mut_ptr()?;
                // SAFETY: [old, old + src.len()) = [old, nbytes) lies in the data region,
                // which holds capacity >= nbytes bytes of the mapping (ensure_capacity);
                // past the array's length nobody reads (module doc); src is a private
                // buffer distinct from the mapping; written through raw pointers only.
                unsafe {
                    std::ptr::copy_nonoverlapping(src.as_ptr(), dst.add(old as usize), src.len())
                };
            }
            a.commit_len(len, nbytes)?;
            Ok(len)
        })
    }

    /// Appends rows given as elements (a whole number of rows of the array's dtype) and
    /// returns the new length. See [`Array::append_bytes`].
    pub fn append<T: Element>(&mut self, rows: &[T]) -> Result<i64> {
        if T::DTYPE != self.dtype() {
            return Err(Error::new(
                ErrorKind::Mismatch,
                format!(
                    "{}: the array holds {}, the rows are {}",
                    self.name(),
                    self.dtype(),
                    T::DTYPE
                ),
            ));
        }
        let row = self.row_size()? / T::DTYPE.itemsize() as u64;
        let n = rows.len() as u64;
        if row == 0 || n % row != 0 {
            return Err(Error::invalid(format!(
                "{}: {n} elements are not a whole number of rows of {row} elements{}",
                self.name(),
                if row == 0 {
                    " (rows of no elements: use append_bytes with a row count)"
                } else {
                    ""
                }
            )));
        }
        // SAFETY: T is plain data without padding (Element): its bytes are initialised.
        let bytes = unsafe {
            std::slice::from_raw_parts(rows.as_ptr().cast::<u8>(), std::mem::size_of_val(rows))
        };
        self.append_bytes(n / row, bytes)
    }

    /// Sets the length along axis 0: shorter drops the last rows (the capacity stays),
    /// longer adds rows of zeros (growing the capacity as [`Array::append_bytes`]
    /// does). Same locking, errors and guarantees as `append_bytes`.
    pub fn set_len(&mut self, len: i64) -> Result<()> {
        self.row_size()?;
        if len < 0 {
            return Err(Error::invalid(format!(
                "{}: negative length {len}",
                self.name()
            )));
        }
        self.with_lock(|a| {
            a.refresh_locked()?;
            if len == a.geometry.shape[0] {
                return Ok(());
            }
            let old = a.geometry.nbytes;
            let nbytes = a.commit_check(len)?;
            if nbytes > old {
                a.ensure_capacity(nbytes)?;
                let dst = a.as_mut_ptr()?;
                // SAFETY: [old, nbytes) lies in the data region of the mapping
                // (ensure_capacity), past the array's length where nobody reads; it may
                // hold rows dropped by an earlier shrink, hence the zeroing.
                unsafe { std::ptr::write_bytes(dst.add(old as usize), 0, (nbytes - old) as usize) };
            }
            a.commit_len(len, nbytes)
        })
    }

    /// Makes the handle describe the array as it is now (its length may have changed
    /// by another process's append or resize, or its shape by a publish): true when the
    /// shape or dtype changed. Cheap when nothing changed (one atomic load); never
    /// waits, also not for a writer that died in the middle of a write (the header or
    /// its shadow is always complete). Pointers obtained before stay valid until the
    /// handle is dropped (they show the same file: the rows they showed, unless the
    /// array was shrunk and grown again); [`Array::as_ptr`] may differ
    /// afterwards. Rows up to the new length are complete; data a publishing writer
    /// is rewriting are not (read those with a snapshot).
    pub fn refresh(&mut self) -> Result<bool> {
        if !matches!(self.format(), SegmentFormat::V1 { .. }) {
            return Ok(false);
        }
        let mut tries = 0;
        loop {
            let g1 = self.w32(off::SHAPE_GEN).load(Ordering::Acquire);
            if self.live.known_gen == Some(g1) {
                return Ok(false);
            }
            let h = self.header_from_map();
            // Pairs with the release in store_header's generation increment.
            fence(Ordering::Acquire);
            let g2 = self.w32(off::SHAPE_GEN).load(Ordering::Relaxed);
            match h {
                Ok(h) if g1 == g2 => {
                    let changed = (h.geometry.shape.as_slice(), h.geometry.dtype)
                        != (self.geometry.shape.as_slice(), self.geometry.dtype);
                    self.adopt(h.geometry)?;
                    self.live.known_gen = Some(g1);
                    return Ok(changed);
                }
                // Rewritten meanwhile: look again (a rewrite takes a microsecond).
                Err(_) | Ok(_) if tries < 100 => {
                    tries += 1;
                    std::thread::yield_now();
                }
                Err(e) => return Err(e),
                Ok(_) => {
                    return Err(Error::new(
                        ErrorKind::Busy,
                        format!(
                            "{}: the header changes faster than it can be read",
                            self.name()
                        ),
                    ));
                }
            }
        }
    }

    /// Runs `f` holding the array's lock: taken for the call unless this thread holds
    /// it already. A dead previous holder is no obstacle: what the lock protects here
    /// (the header, the rows past the length) needs no repair (module doc).
    fn with_lock<R>(&mut self, f: impl FnOnce(&mut Self) -> Result<R>) -> Result<R> {
        let held = self.holds_lock();
        if !held {
            self.lock(None)?;
        }
        let r = f(self);
        if !held {
            self.unlock()?;
        }
        r
    }

    /// Under the lock: the handle describes the header as it is (or its shadow), the
    /// rest of the file mapped when the capacity grew; the rows the caller sized for
    /// still fit.
    fn refresh_locked(&mut self) -> Result<()> {
        let (dtype, ndim) = (self.dtype(), self.ndim());
        self.refresh()?;
        if self.dtype() != dtype || self.ndim() != ndim {
            return Err(Error::new(
                ErrorKind::Mismatch,
                format!(
                    "{}: the array changed to shape {:?} of {} meanwhile",
                    self.name(),
                    self.shape(),
                    self.dtype()
                ),
            ));
        }
        Ok(())
    }

    /// The data size of the array with `len` rows.
    fn commit_check(&self, len: i64) -> Result<u64> {
        let mut shape = self.geometry.shape.clone();
        shape[0] = len;
        format::nbytes_for(&shape, self.geometry.dtype.itemsize())
            .map_err(|e| e.context(self.name()))
    }

    /// Publishes the length `len` (data size `nbytes`, within the capacity) and this
    /// handle's capacity in one write under the seqlock (step 5 of the module doc). The
    /// header is patched in place of being decoded and encoded again: three fields and
    /// the checksum change, every other byte stays (also fields of newer versions).
    fn commit_len(&mut self, len: i64, nbytes: u64) -> Result<()> {
        let start = self.write_begin()?;
        let sgen = self.w32(off::SHAPE_GEN).load(Ordering::Relaxed);
        let mut raw = match &self.live.header {
            // What this handle wrote last is still the header: no need to read it.
            Some((g, b)) if *g == sgen => **b,
            _ => match self.raw_header_from_map() {
                Ok((_, b)) => b,
                Err(e) => {
                    self.abandon_write(start);
                    return Err(e);
                }
            },
        };
        let stored = u64::from_ne_bytes(
            raw[off::CAPACITY..off::CAPACITY + 8]
                .try_into()
                .unwrap_or_default(),
        );
        // Never below what the file holds for this handle, nor what the header says;
        // and the handle never describes more than it maps.
        let capacity = stored.max(self.geometry.capacity);
        if let Err(e) = self.map_at_least(self.geometry.data_offset.saturating_add(capacity)) {
            self.abandon_write(start);
            return Err(e);
        }
        format::patch_length(&mut raw, len, nbytes, capacity);
        self.store_header_bytes(&raw);
        self.geometry.shape[0] = len;
        self.geometry.nbytes = nbytes;
        self.geometry.capacity = capacity;
        self.live.known_gen = self.live.header.as_ref().map(|(g, _)| *g);
        self.write_end()?;
        Ok(())
    }

    /// Makes the capacity (this handle's, and the file's) at least `need` bytes of
    /// data, growing it to at least twice the old one; the header's capacity changes
    /// with the next header rewrite. Caller: a lock holder, or a writer in a write.
    pub(crate) fn ensure_capacity(&mut self, need: u64) -> Result<()> {
        let g = &self.geometry;
        if need <= g.capacity {
            return Ok(());
        }
        let (data_offset, old) = (g.data_offset, g.capacity);
        let page = sys::page_size() as u64;
        let round = |n: u64| n.checked_add(page - 1).map(|n| n / page * page);
        let too_large = || {
            Error::invalid(format!(
                "{}: {need} bytes of data cannot be mapped",
                self.name()
            ))
        };
        let exact = round(need).ok_or_else(too_large)?;
        let doubled = round(need.max(old.saturating_mul(2))).unwrap_or(exact);
        let file = match self.live.file.take() {
            Some(f) => f,
            None => self.reopen_same()?.0,
        };
        let r = self.grow_file(&file, data_offset, old, exact, doubled);
        self.live.file = Some(file);
        r
    }

    /// The file of this handle's array, opened (and checked to be it) on first use.
    fn appender_file(&mut self) -> Result<&File> {
        if self.live.file.is_none() {
            self.live.file = Some(self.reopen_same()?.0);
        }
        Ok(self.live.file.as_ref().expect("just set"))
    }

    /// Extends `file` to a capacity of `doubled` bytes of data (`exact` when that does
    /// not fit) from `old`, and maps it.
    fn grow_file(
        &mut self,
        file: &File,
        data_offset: u64,
        old: u64,
        exact: u64,
        doubled: u64,
    ) -> Result<()> {
        let too_large = || {
            Error::invalid(format!(
                "{}: {exact} bytes of data cannot be mapped",
                self.name()
            ))
        };
        let mut cap = doubled;
        loop {
            let end = data_offset
                .checked_add(cap)
                .filter(|&e| e <= isize::MAX as u64)
                .ok_or_else(too_large)?;
            match extend(self, file, end, cap - old) {
                // The doubled size may not fit where the exact one does.
                Err(e) if e.kind() == ErrorKind::NoSpace && cap > exact => cap = exact,
                Err(e) => return Err(e),
                Ok(()) => {
                    self.map_from(file, end)?;
                    self.geometry.capacity = cap;
                    return Ok(());
                }
            }
        }
    }

    /// Makes the mapping cover at least `[0, end)` of the file: in place when the
    /// address space after it is free, else by a new mapping of the same file (opened
    /// again by name and checked to be the same file). The old mapping is kept until
    /// the handle is dropped, so pointers handed out before stay valid (they show the
    /// same file: after a shrink and a regrowth, the new rows).
    pub(crate) fn map_at_least(&mut self, end: u64) -> Result<()> {
        if end <= self.map.len() as u64 {
            return Ok(());
        }
        let (file, _) = self.reopen_same()?;
        self.map_from(&file, end)
    }

    fn map_from(&mut self, file: &File, end: u64) -> Result<()> {
        if end <= self.map.len() as u64 {
            return Ok(());
        }
        let name = self.name().clone();
        let size = file
            .metadata()
            .map_err(|e| Error::os(format!("{name}: stat"), e))?
            .len();
        if size < end {
            return Err(Error::format(format!(
                "{name}: truncated segment: the header needs {end} bytes but the file has \
                 {size}"
            )));
        }
        let len = usize::try_from(end)
            .ok()
            .filter(|&l| l <= isize::MAX as usize)
            .ok_or_else(|| Error::format(format!("{name}: too large to map ({end} bytes)")))?;
        // In place when the address space after the mapping is free: the address stays.
        // SAFETY: the file holds at least `len` bytes (checked above), so the grown
        // mapping covers file pages only; nothing else refers to the mapping's address
        // range past its old end (it was not mapped).
        if unsafe { self.map.remap(len, memmap2::RemapOptions::new()) }.is_ok() {
            return Ok(());
        }
        let mut opts = MmapOptions::new();
        opts.len(len);
        let mut map = if self.is_readonly() {
            opts.map_raw_read_only(file)
        } else {
            opts.map_raw(file)
        }
        .map_err(|e| Error::os(format!("{name}: mmap"), e))?;
        std::mem::swap(&mut self.map, &mut map);
        self.live.retired.push(map);
        Ok(())
    }

    /// Opens this handle's array again by name (to extend or map more of it), checked
    /// to be the same array: identity bytes (creator, start time, boot id, creation
    /// time) equal to the mapped ones, which a replacement under the name never has.
    fn reopen_same(&self) -> Result<(File, std::fs::Metadata)> {
        let name = self.name();
        let gone = |why: &str| {
            Error::new(
                ErrorKind::Stale,
                format!(
                    "{name}: the array must grow, but {why}, so this handle cannot reach \
                     its file: attach it again"
                ),
            )
        };
        // Whatever is found is used only if it is the mapped file itself (same device
        // and inode), so following links or other owners' files trusts nothing new.
        let access = Access {
            write: !self.is_readonly(),
            allow_other_owner: true,
            follow_symlinks: true,
        };
        let (file, meta) = match segment::open(name, &access) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(gone("its name was deleted")),
            r => r?,
        };
        use std::os::unix::fs::MetadataExt;
        match self.live.ident {
            Some(id) if id == (meta.dev(), meta.ino()) => Ok((file, meta)),
            Some(_) => Err(gone(
                "its name now holds another file (a copy, or another array)",
            )),
            None => Err(gone("the mapped file's identity is unknown")),
        }
    }

    /// True when `b` overlaps any mapping of this handle (current or retired).
    fn maps_any(&self, b: &[u8]) -> bool {
        self.overlaps(b.as_ptr(), b.len())
    }

    /// True when the `len` bytes at `p` overlap any mapping of this handle (current or
    /// retired): the C layer copies such input before forming a slice of it.
    pub(crate) fn overlaps(&self, p: *const u8, len: usize) -> bool {
        let (lo, hi) = (p as usize, (p as usize).saturating_add(len));
        std::iter::once(&self.map)
            .chain(self.live.retired.iter())
            .any(|m| {
                let s = m.as_ptr() as usize;
                lo < s + m.len() && s < hi
            })
    }

    /// True when the mapped file no longer has any name (deleted, or replaced by a
    /// rename): appending to it would write rows nobody can find. One `fstat` of the
    /// file this handle keeps for growth (opened on first use).
    pub(crate) fn is_unlinked(&mut self) -> Result<bool> {
        let f = match self.appender_file() {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::Stale => return Ok(true),
            Err(e) => return Err(e),
        };
        let m = sys::fstat(f).map_err(|e| Error::os(format!("{}: stat", self.name()), e))?;
        Ok(m.nlink == 0)
    }
}

/// Reserves `[0, end)` of `file` (the array `a`'s), cutting the file back to its old
/// size when that fails part way, so a full filesystem leaves the array as it was.
fn extend(a: &Array, file: &File, end: u64, more: u64) -> Result<()> {
    let name = a.name();
    let size = file
        .metadata()
        .map_err(|e| Error::os(format!("{name}: stat"), e))?
        .len();
    match sys::fallocate(file, end) {
        Ok(()) => Ok(()),
        Err(e) => {
            // Nobody uses bytes past the header's capacity, which is at most `size`.
            if file.metadata().is_ok_and(|m| m.len() > size) {
                let _ = file.set_len(size);
            }
            if e.raw_os_error() == Some(libc::ENOSPC) {
                Err(segment::no_space(name, more, e))
            } else {
                Err(Error::os(format!("{name}: reserve {end} bytes"), e))
            }
        }
    }
}
