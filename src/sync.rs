//! Live data: consistent snapshots (a seqlock), waiting for a newer version (a futex),
//! shape changes under the seqlock, and a process-shared lock that survives its holder.
//!
//! Everything here works on the synchronisation words of the v1 header
//! (`[1024, 1088)`), which every attached process has mapped. docs/FORMAT.md
//! ("Synchronisation words", "Snapshots", "The lock") specifies the same protocol for
//! implementers in other languages; this module is its reference implementation.
//!
//! # Memory ordering
//!
//! *Snapshots* are a seqlock on `seq` (u64). A writer makes `seq` odd (a compare-and-
//! swap from the even value it read, so a second writer that does not hold the lock
//! is detected), issues a **release fence**, writes the data (and, for a shape change,
//! the header), then stores `seq + 1` (even) with **release**. A reader loads `seq`
//! with **acquire** (s1; odd means a write is in progress), copies, issues an
//! **acquire fence**, and loads `seq` again (s2): the copy is consistent iff s1 == s2.
//! Why this is enough: if the copy read any byte written by a later write, the
//! writer's release fence (after its odd store) synchronises with the reader's acquire
//! fence (after the copy), so the second load sees that odd value or a later one, and
//! s2 != s1. If s2 == s1, every byte read was written before s1's release store,
//! which the first acquire load made visible. The copy itself is a plain memcpy
//! through raw pointers: the bytes may be torn, which is harmless for plain-data
//! elements and is exactly what the s1/s2 check reports. The published version is
//! `seq / 2`.
//!
//! *Waiting* uses the `version` word (u32) as a futex: bits 0-30 are a counter that
//! changes whenever waiters must look again (every publish, and the replacement of the
//! array), bit 31 says that someone sleeps on it. A waiter loads `version`, then `seq`
//! (both acquire); if nothing newer is published it sets bit 31 (compare-and-swap from
//! the value it loaded) and sleeps in `FUTEX_WAIT` on that value. A publisher, after
//! its release store of `seq`, changes the counter by compare-and-swap (clearing
//! bit 31) and calls `FUTEX_WAKE` only if bit 31 was set: a publish without waiters
//! costs no system call. Either the waiter's compare-and-swap precedes the publisher's
//! (which then sees bit 31 and wakes it), or it fails or the futex value differs (and
//! the waiter looks again): no lost wake-up.
//!
//! *The lock* is a futex word `lock` holding the holder's thread id (bits 0-21), a
//! generation (bits 22-30, incremented by every acquisition, so a recorded holder is
//! never confused with a later one) and a waiters bit (31); 0 in bits 0-21 is free.
//! Acquiring is a compare-and-swap (acquire) from a free value; releasing is a
//! compare-and-swap (release) back to free, then `FUTEX_WAKE` if waiters are marked.
//! After acquiring, the holder records its thread's start time (`lock_start`), PID
//! namespace (`lock_ns`) and boot id (`lock_boot`), then stores its lock word (without
//! the waiters bit) in `lock_owner` with release: a checker that finds `lock_owner`
//! equal to the current lock word knows the other fields describe this holder. Waiters
//! sleep with a timeout of at most [`LIVENESS_INTERVAL`] and check the holder's
//! liveness when it expires, so a holder killed with SIGKILL is detected within about
//! that long; the checker that wins the compare-and-swap over the dead holder's word
//! gets the lock and [`ErrorKind::OwnerDied`].

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use memmap2::{MmapOptions, MmapRaw};

use crate::array::Array;
use crate::dtype::{Dtype, Element};
use crate::error::{Error, ErrorKind, Result, human_bytes};
use crate::format::{self, CHECKED_BYTES, Geometry, Header, SegmentFormat, off};
use crate::sys;

/// Bit 31 of `version` and of `lock`: someone sleeps on the word.
const WAITERS: u32 = 1 << 31;
/// The counter bits of `version`.
const COUNTER: u32 = !WAITERS;
/// The thread id bits of `lock` (Linux thread ids are below 2^22, `PID_MAX_LIMIT`).
const TID_MASK: u32 = (1 << 22) - 1;
/// The generation bits of `lock`.
const GEN_MASK: u32 = 0x1ff << 22;
/// `live_flags` bit: the array was replaced under its name by a larger one.
const FLAG_STALE: u32 = 1;

/// How long a lock waiter sleeps at most before checking whether the holder is alive:
/// the bound on noticing a dead holder (plus the check itself, tens of microseconds).
pub const LIVENESS_INTERVAL: Duration = Duration::from_millis(10);
/// A holder seen to have taken the lock but not yet recorded its identity, for this
/// long, is presumed to have died in between (a window of a few instructions).
const UNRECORDED_GRACE: Duration = Duration::from_secs(1);
/// Spins on a write in progress before sleeping until it ends.
const SPINS: u32 = 2000;

/// Snapshot and lock state of one handle: which geometry generation its cached
/// geometry belongs to, whether it is between write-begin and write-end, and, for a
/// read-only handle, a writable mapping of the header page to register as a waiter.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub(crate) known_gen: Option<u32>,
    writing: bool,
    sync_page: OnceLock<Option<MmapRaw>>,
    /// The header bytes this handle last wrote, with the geometry generation they
    /// have: a writer whose generation is still current skips reading and checking
    /// the header again (src/grow.rs).
    pub(crate) header: Option<(u32, Box<[u8; CHECKED_BYTES]>)>,
    /// Earlier mappings of this handle's file, replaced by larger ones when the array
    /// grew: kept until the handle is dropped, so pointers handed out before
    /// (`sa_data`, numpy arrays) never dangle.
    pub(crate) retired: Vec<MmapRaw>,
    /// The array's file, opened when this handle first grew it (src/grow.rs): large
    /// appends write through it.
    pub(crate) file: Option<std::fs::File>,
    /// Device and inode of the mapped file (None if unknown): a file opened again by
    /// name is used only if it is this one.
    pub(crate) ident: Option<(u64, u64)>,
}

/// How a write began (see [`Array::write_begin`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStart {
    /// Normally.
    Clean,
    /// The previous write was never finished: its writer died in the middle of it (or
    /// wrote without holding the lock). The data may be torn: rewrite all of it.
    Repair,
}

/// How the lock was acquired (see [`Array::lock`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockStart {
    /// Normally.
    Clean,
    /// The previous holder died holding it (thread id in the field): the data it
    /// protected may be half updated. The lock is held now.
    OwnerDied(i32),
}

/// A consistent copy's description (see [`Array::read_snapshot`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// The published version the copy belongs to (0: nothing published yet).
    pub version: u64,
    /// Bytes copied (the snapshot's `nbytes`).
    pub nbytes: usize,
    /// True when the snapshot's shape or dtype differs from what the handle had before
    /// the call (the handle now describes the snapshot).
    pub reshaped: bool,
}

fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

fn left(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

impl Array {
    pub(crate) fn v1(&self) -> Result<()> {
        match self.format() {
            SegmentFormat::V1 { .. } => Ok(()),
            other => Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{}: snapshots, waiting and the lock need an ndshm v1 array; this one \
                     has the {other:?} layout, which has no header for them",
                    self.name()
                ),
            )),
        }
    }

    pub(crate) fn rw(&self) -> Result<()> {
        if self.is_readonly() {
            return Err(Error::new(
                ErrorKind::ReadOnly,
                format!("{}: the array is attached read-only", self.name()),
            ));
        }
        Ok(())
    }

    pub(crate) fn w32(&self, offset: usize) -> &AtomicU32 {
        debug_assert!(offset % 4 == 0 && offset + 4 <= format::HEADER_BYTES);
        // SAFETY: v1 mappings are at least HEADER_BYTES long (checked at attach and
        // create) and page aligned, so the word is in bounds and 4-aligned; every
        // process accesses the synchronisation words only atomically (FORMAT.md), and
        // a read-only mapping is only ever loaded from here (stores go through
        // `w32_mut`).
        unsafe { &*(self.map.as_ptr().add(offset) as *const AtomicU32) }
    }

    pub(crate) fn w64(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset % 8 == 0 && offset + 8 <= format::HEADER_BYTES);
        // SAFETY: as in w32, 8-aligned.
        unsafe { &*(self.map.as_ptr().add(offset) as *const AtomicU64) }
    }

    /// A word this handle may store to: through the mapping when read-write, else
    /// through a writable mapping of the header page if this process may open the
    /// array for writing (`None` otherwise).
    fn w32_mut(&self, offset: usize) -> Option<&AtomicU32> {
        if !self.is_readonly() {
            return Some(self.w32(offset));
        }
        let page = self
            .live
            .sync_page
            .get_or_init(|| self.open_sync_page())
            .as_ref()?;
        // SAFETY: a live read-write mapping of the same file's first page (checked to
        // be the same file in open_sync_page), 4096 bytes, page aligned.
        Some(unsafe { &*(page.as_ptr().add(offset) as *const AtomicU32) })
    }

    /// Maps the header page of this handle's file read-write, so a read-only handle can
    /// set the waiters bit (the data stay mapped read-only). The name is opened again,
    /// so the file found there must be the one mapped: same identity and geometry
    /// bytes (creator, creation time), which a replacement never has.
    fn open_sync_page(&self) -> Option<MmapRaw> {
        let access = crate::segment::Access {
            write: true,
            allow_other_owner: true,
            follow_symlinks: false,
        };
        let (file, meta) = crate::segment::open(self.name(), &access).ok()?;
        if meta.len() < format::HEADER_BYTES as u64 {
            return None;
        }
        let page = MmapOptions::new()
            .len(format::HEADER_BYTES)
            .map_raw(&file)
            .ok()?;
        let same = |o: usize, n: usize| {
            // Copied out before comparing: other processes may rewrite these bytes (a
            // shape change rewrites [0, 1024)), so no reference to them is formed.
            let (mut a, mut b) = (vec![0u8; n], vec![0u8; n]);
            // SAFETY: both ranges lie in the first page of their live mappings (o + n <=
            // 1024 for both uses below), and the destinations are distinct private
            // buffers of n bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(page.as_ptr().add(o), a.as_mut_ptr(), n);
                std::ptr::copy_nonoverlapping(self.map.as_ptr().add(o), b.as_mut_ptr(), n);
            }
            a == b
        };
        (same(0, off::NBYTES) && same(off::CREATOR_PID, off::CREATED_NS + 8 - off::CREATOR_PID))
            .then_some(page)
    }

    // ---------------------------------------------------------------- versions

    /// The latest published version: how many writes have completed (0 before the
    /// first). v1 arrays only.
    pub fn version(&self) -> Result<u64> {
        self.v1()?;
        Ok(self.w64(off::SEQ).load(Ordering::Acquire) >> 1)
    }

    /// When the array was last written through the API (a publish, a fill, a copy),
    /// in nanoseconds since the Unix epoch (wall clock). v1 arrays only.
    pub fn write_time_ns(&self) -> Result<i64> {
        self.v1()?;
        // SAFETY: WRITE_NS is an 8-aligned word of the header page (as in w64); every
        // process accesses it atomically.
        let w = unsafe {
            &*(self.map.as_ptr().add(off::WRITE_NS) as *const std::sync::atomic::AtomicI64)
        };
        Ok(w.load(Ordering::Relaxed))
    }

    /// True once the array was replaced under its name by a larger one (as ndshm
    /// before format v1.2 grew arrays; growth is in place now): attach the name again
    /// for newer data.
    pub fn is_stale(&self) -> bool {
        matches!(self.format(), SegmentFormat::V1 { .. })
            && self.w32(off::LIVE_FLAGS).load(Ordering::Acquire) & FLAG_STALE != 0
    }

    pub(crate) fn stale_error(&self) -> Error {
        Error::new(
            ErrorKind::Stale,
            format!(
                "{}: the array was replaced or deleted under its name: attach the name \
                 again",
                self.name()
            ),
        )
    }

    /// Changes the `version` counter and wakes its sleepers, if any.
    fn bump_and_wake(&self) {
        let w = self.w32(off::VERSION);
        let mut cur = w.load(Ordering::Relaxed);
        loop {
            let next = (cur.wrapping_add(1)) & COUNTER;
            match w.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => break,
                Err(v) => cur = v,
            }
        }
        if cur & WAITERS != 0 {
            sys::futex_wake(w, i32::MAX);
        }
    }

    /// Sleeps until the `version` counter moves away from `seen` (or `timeout`),
    /// after marking that someone waits. Returns at once if it already moved. A
    /// handle that cannot store to the header (read-only, and this process may not
    /// open the array for writing) sleeps in slices of one millisecond instead.
    fn sleep_on_version(&self, seen: u32, timeout: Option<Duration>) {
        let w = self.w32(off::VERSION);
        let Some(wm) = self.w32_mut(off::VERSION) else {
            let slice = Duration::from_millis(1);
            sys::futex_wait(w, seen, Some(timeout.map_or(slice, |t| t.min(slice))));
            return;
        };
        let marked = seen | WAITERS;
        if seen & WAITERS == 0
            && wm
                .compare_exchange(seen, marked, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return; // it moved: look again
        }
        sys::futex_wait(w, marked, timeout);
    }

    /// Blocks until a version newer than `newer_than` is published and returns it,
    /// without polling (a futex on the shared `version` word). `timeout` `None` waits
    /// without limit. Errors: [`ErrorKind::Timeout`] naming the latest version,
    /// [`ErrorKind::Stale`] when the array was replaced under its name.
    pub fn wait_newer(&self, newer_than: u64, timeout: Option<Duration>) -> Result<u64> {
        self.v1()?;
        let end = deadline(timeout);
        loop {
            let seen = self.w32(off::VERSION).load(Ordering::Acquire);
            let v = self.w64(off::SEQ).load(Ordering::Acquire) >> 1;
            if v > newer_than {
                return Ok(v);
            }
            if self.is_stale() {
                return Err(self.stale_error());
            }
            let rest = left(end);
            if rest.is_some_and(|r| r.is_zero()) {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "{}: no version newer than {newer_than} within {:?} (the latest \
                         is {v})",
                        self.name(),
                        timeout.unwrap_or_default()
                    ),
                ));
            }
            self.sleep_on_version(seen, rest);
        }
    }

    // ---------------------------------------------------------------- writing

    /// Begins a write: readers' snapshots taken from now until [`Array::write_end`]
    /// are retried, and in-place reads report themselves torn. One writer at a time:
    /// several writers must hold the lock ([`Array::lock`]) around their writes.
    ///
    /// Errors: [`ErrorKind::Busy`] when another writer is in the middle of a write and
    /// this thread does not hold the lock; [`ErrorKind::ReadOnly`];
    /// [`ErrorKind::Unsupported`] (SharedArray layout); [`ErrorKind::Invalid`] when this
    /// handle already began a write. A write left unfinished by a writer that died is
    /// taken over when this thread holds the lock ([`WriteStart::Repair`]).
    pub fn write_begin(&mut self) -> Result<WriteStart> {
        self.v1()?;
        self.rw()?;
        if self.is_stale() {
            // Nobody reads a replaced array any more: a write into it would be lost.
            return Err(self.stale_error());
        }
        if self.live.writing {
            return Err(Error::invalid(format!(
                "{}: a write is already in progress on this handle (write_begin twice)",
                self.name()
            )));
        }
        let seq = self.w64(off::SEQ);
        let mut s = seq.load(Ordering::Relaxed);
        let start = loop {
            if s & 1 == 1 {
                if self.holds_lock() {
                    // The lock holder is the only legitimate writer: the odd count
                    // is a dead writer's (or a lock-less writer's) unfinished write,
                    // which may have rewritten the header: forget what was cached.
                    self.live.known_gen = None;
                    self.live.header = None;
                    break WriteStart::Repair;
                }
                return Err(Error::new(
                    ErrorKind::Busy,
                    format!(
                        "{}: another writer is in the middle of a write (after version \
                         {}); writers must take turns with the lock. If that writer \
                         died, take the lock and write again to repair the array",
                        self.name(),
                        s >> 1
                    ),
                ));
            }
            match seq.compare_exchange_weak(
                s,
                s.wrapping_add(1),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break WriteStart::Clean,
                Err(v) => s = v,
            }
        };
        // Orders the odd count before every data store of this write (module doc).
        fence(Ordering::Release);
        self.live.writing = true;
        // Another writer may have changed the shape since this handle last looked;
        // nobody else writes now, so the header is stable.
        let sgen = self.w32(off::SHAPE_GEN).load(Ordering::Acquire);
        if self.live.known_gen != Some(sgen) {
            if let Err(e) = self.header_from_map().and_then(|h| self.adopt(h.geometry)) {
                self.abandon_write(start);
                return Err(e);
            }
            self.live.known_gen = Some(sgen);
        }
        Ok(start)
    }

    /// Ends a write begun with [`Array::write_begin`]: publishes it as the next version
    /// (returned) and wakes the waiters.
    pub fn write_end(&mut self) -> Result<u64> {
        if !self.live.writing {
            return Err(Error::invalid(format!(
                "{}: no write in progress on this handle (call write_begin first)",
                self.name()
            )));
        }
        let seq = self.w64(off::SEQ);
        let s = seq.load(Ordering::Relaxed) | 1;
        seq.store(s.wrapping_add(1), Ordering::Release);
        self.live.writing = false;
        self.bump_and_wake();
        self.touch_write_time();
        Ok(s.wrapping_add(1) >> 1)
    }

    /// Changes the shape and dtype, inside a write ([`Array::write_begin`] ..
    /// [`Array::write_end`]): readers see the old shape with the old data or the new
    /// shape with the new data, never a mix. The order stays. The new shape must fit
    /// the capacity reserved at create ([`crate::options::CreateOptions::capacity`]); otherwise the
    /// error ([`ErrorKind::NoSpace`]) says how much is reserved and what was asked, and
    /// with `grow` the capacity grows instead, in place (at least doubling: see
    /// src/grow.rs): readers follow with their next snapshot or refresh, and pointers
    /// obtained before stay valid until the handle is dropped.
    pub fn write_shape(&mut self, shape: &[i64], dtype: Dtype, grow: bool) -> Result<()> {
        if !self.live.writing {
            return Err(Error::invalid(format!(
                "{}: a shape change must happen inside a write (call write_begin first)",
                self.name()
            )));
        }
        format::check_ndim(shape.len() as i64).map_err(|e| e.context(self.name()))?;
        let nbytes =
            format::nbytes_for(shape, dtype.itemsize()).map_err(|e| e.context(self.name()))?;
        if nbytes > self.geometry.capacity {
            if !grow {
                return Err(self.no_room(shape, dtype, nbytes));
            }
            // In place (src/grow.rs): readers follow with their next snapshot.
            self.ensure_capacity(nbytes)?;
        }
        if self.geometry.shape == shape && self.geometry.dtype == dtype {
            return Ok(());
        }
        let mut header = self.header_from_map()?;
        header.geometry.capacity = header.geometry.capacity.max(self.geometry.capacity);
        header.geometry.dtype = dtype;
        header.geometry.shape = shape.to_vec();
        header.geometry.nbytes = nbytes;
        // The handle never describes more than it maps.
        let end = header
            .geometry
            .data_offset
            .saturating_add(header.geometry.capacity);
        self.map_at_least(end)?;
        self.store_header(&header);
        self.geometry = header.geometry;
        self.live.known_gen = Some(self.w32(off::SHAPE_GEN).load(Ordering::Relaxed));
        Ok(())
    }

    fn no_room(&self, shape: &[i64], dtype: Dtype, nbytes: u64) -> Error {
        Error::new(
            ErrorKind::NoSpace,
            format!(
                "{}: shape {shape:?} of {dtype} needs {} ({nbytes} bytes), but the array \
                 reserves {} ({} bytes) for data: create it with a larger capacity, or \
                 let the writer grow it (grow)",
                self.name(),
                human_bytes(nbytes),
                human_bytes(self.geometry.capacity),
                self.geometry.capacity
            ),
        )
    }

    /// The header as it is in the mapping now, decoded and validated (a private copy):
    /// the shadow's when the header itself is not valid (a writer killed in the middle
    /// of rewriting it, or rewriting it now: see [`format::SHADOW_OFFSET`]). The data
    /// region must start where this handle mapped it; its capacity may have grown
    /// ([`Array::adopt`] maps the rest).
    pub(crate) fn header_from_map(&self) -> Result<Header> {
        self.raw_header_from_map().map(|(h, _)| h)
    }

    /// [`Array::header_from_map`] with the bytes it was decoded from.
    pub(crate) fn raw_header_from_map(&self) -> Result<(Header, [u8; CHECKED_BYTES])> {
        let (h, b) = match self.header_at(0) {
            Ok(x) => x,
            Err(e) => {
                // Pairs with the release fence between the shadow and the header in
                // store_header: a torn header means the shadow is complete.
                fence(Ordering::Acquire);
                self.header_at(format::SHADOW_OFFSET).map_err(|_| e)?
            }
        };
        let g = &h.geometry;
        if g.data_offset != self.geometry.data_offset {
            return Err(Error::format(format!(
                "{}: the header's data offset changed ({}, mapped at {})",
                self.name(),
                g.data_offset,
                self.geometry.data_offset
            )));
        }
        Ok((h, b))
    }

    fn header_at(&self, at: usize) -> Result<(Header, [u8; CHECKED_BYTES])> {
        let mut b = [0u8; CHECKED_BYTES];
        // SAFETY: [at, at + CHECKED_BYTES) lies in the header page of a v1 mapping (at is
        // 0 or SHADOW_OFFSET, 2048 + 1024 <= 4096), read through a raw pointer into a
        // private buffer; the bytes may be torn by a concurrent rewrite, which decode
        // (checksum) or the caller's seqlock check reports.
        unsafe {
            std::ptr::copy_nonoverlapping(self.map.as_ptr().add(at), b.as_mut_ptr(), CHECKED_BYTES)
        };
        let h = Header::decode(&b).map_err(|e| e.context(self.name()))?;
        Ok((h, b))
    }

    /// Rewrites the header, inside a write (the count is odd): see
    /// [`Array::store_header_bytes`].
    pub(crate) fn store_header(&mut self, h: &Header) {
        self.store_header_bytes(&h.encode());
    }

    /// Rewrites the header with `bytes` (complete, checksummed), inside a write (the
    /// count is odd): first the shadow, complete, then the header itself, so that at
    /// every instant one of the two is valid, also for a reader that finds this writer
    /// killed in between. Remembers the bytes for the next rewrite by this handle.
    pub(crate) fn store_header_bytes(&mut self, bytes: &[u8; CHECKED_BYTES]) {
        debug_assert!(self.live.writing);
        // The generation changes before the first byte and again after the last: a
        // rewrite cut short (a writer killed) still changed it, so no handle trusts
        // what it cached of the header before.
        self.w32(off::SHAPE_GEN).fetch_add(1, Ordering::Relaxed);
        fence(Ordering::Release);
        // SAFETY: both ranges lie in the header page of the writable v1 mapping (checked
        // by write_begin: v1, read-write); written through raw pointers from a private
        // buffer. Readers validate what they read of it with the seqlock.
        unsafe {
            let base = self.map.as_mut_ptr();
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                base.add(format::SHADOW_OFFSET),
                CHECKED_BYTES,
            );
            // Orders the complete shadow before any byte of the header (see
            // header_from_map).
            fence(Ordering::Release);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), base, CHECKED_BYTES);
        }
        // Release: a reader that sees the new generation sees the header, and the rows
        // an append wrote before (src/grow.rs).
        let sgen = self.w32(off::SHAPE_GEN).fetch_add(1, Ordering::Release) + 1;
        self.live.header = Some((sgen, Box::new(*bytes)));
    }

    /// Makes the handle describe geometry `g` (read from its header), first mapping the
    /// rest of the file when the capacity grew beyond this mapping.
    pub(crate) fn adopt(&mut self, g: Geometry) -> Result<()> {
        let end = g
            .data_offset
            .checked_add(g.capacity)
            .ok_or_else(|| Error::format(format!("{}: capacity overflows", self.name())))?;
        self.map_at_least(end)?;
        self.geometry = g;
        Ok(())
    }

    /// Publishes `src` (exactly [`Array::len`] elements of the array's dtype) as the
    /// next version: write-begin, one copy, write-end. Returns the version.
    pub fn publish<T: Element>(&mut self, src: &[T]) -> Result<u64> {
        if T::DTYPE != self.dtype() {
            return Err(Error::new(
                ErrorKind::Mismatch,
                format!(
                    "{}: the array holds {}, not {}",
                    self.name(),
                    self.dtype(),
                    T::DTYPE
                ),
            ));
        }
        // SAFETY: T is plain data without padding (Element), so its bytes are
        // initialised; the slice covers exactly src's memory.
        let bytes = unsafe {
            std::slice::from_raw_parts(src.as_ptr().cast::<u8>(), std::mem::size_of_val(src))
        };
        self.publish_bytes(None, bytes, false)
    }

    /// Publishes `src` as the next version, first changing the shape and dtype when
    /// `shape` is given (see [`Array::write_shape`], `grow` included). `src` holds
    /// exactly the (new) `nbytes` bytes. Returns the version. A failure leaves the
    /// published data and shape as they were.
    pub fn publish_bytes(
        &mut self,
        shape: Option<(&[i64], Dtype)>,
        src: &[u8],
        grow: bool,
    ) -> Result<u64> {
        if let Some((s, d)) = shape {
            // Everything that can fail is checked before the header changes.
            let n = format::nbytes_for(s, d.itemsize()).map_err(|e| e.context(self.name()))?;
            if src.len() as u64 != n {
                return Err(self.wrong_length(src.len(), n));
            }
            if n > self.geometry.capacity && !grow {
                return Err(self.no_room(s, d, n));
            }
        }
        let start = self.write_begin()?;
        if let Some((s, d)) = shape {
            if let Err(e) = self.write_shape(s, d, grow) {
                self.abandon_write(start);
                return Err(e);
            }
        } else if src.len() != self.nbytes() {
            let e = self.wrong_length(src.len(), self.nbytes() as u64);
            self.abandon_write(start);
            return Err(e);
        }
        let dst = self.as_mut_ptr()?;
        // SAFETY: dst is the writable data region, which holds nbytes == src.len()
        // bytes (at most the capacity: write_shape); src is a distinct private buffer;
        // written through raw pointers only.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
        self.write_end()
    }

    fn wrong_length(&self, got: usize, want: u64) -> Error {
        Error::invalid(format!(
            "{}: the buffer has {got} bytes, the array {want}",
            self.name()
        ))
    }

    /// Ends a write that changed nothing: the count goes back to the last published
    /// version (no new version). A repair stays unfinished: the data are still torn.
    pub(crate) fn abandon_write(&mut self, start: WriteStart) {
        if self.live.writing {
            self.live.writing = false;
            if start == WriteStart::Clean {
                let seq = self.w64(off::SEQ);
                let s = seq.load(Ordering::Relaxed) | 1;
                seq.store(s.wrapping_sub(1), Ordering::Release);
                self.bump_and_wake();
            }
        }
    }

    // ---------------------------------------------------------------- reading

    /// Waits (spinning briefly, then sleeping on the futex) while a write is in
    /// progress; returns the even count, or `None` when `end` passed first.
    fn stable_seq(&self, end: Option<Instant>) -> Option<u64> {
        let seq = self.w64(off::SEQ);
        let mut spins = 0;
        loop {
            let seen = self.w32(off::VERSION).load(Ordering::Acquire);
            let s = seq.load(Ordering::Acquire);
            if s & 1 == 0 {
                return Some(s);
            }
            let rest = left(end);
            if rest.is_some_and(|r| r.is_zero()) {
                return None;
            }
            if spins < SPINS {
                spins += 1;
                std::hint::spin_loop();
            } else {
                self.sleep_on_version(seen, rest);
            }
        }
    }

    /// The geometry for generation `sgen` of the header, re-read from the mapping when
    /// this handle's cached one is older. Unvalidated until the caller's seqlock check.
    fn geometry_at(&self, sgen: u32) -> Result<Option<Geometry>> {
        if self.live.known_gen == Some(sgen) {
            return Ok(None);
        }
        self.header_from_map().map(|h| Some(h.geometry))
    }

    fn timeout_error(&self, timeout: Option<Duration>, tries: u32) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!(
                "{}: no consistent snapshot within {:?} ({tries} attempts): a write was in \
                 progress each time. A writer that died in the middle of a write leaves \
                 the array so until the next writer (holding the lock) writes it",
                self.name(),
                timeout.unwrap_or_default()
            ),
        )
    }

    /// Copies a consistent snapshot of the data into `dst` and makes this handle
    /// describe it (shape, dtype: see [`Snapshot::reshaped`]). Retries while writers
    /// write, for at most `timeout` (`None`: no limit; zero: one attempt), then
    /// [`ErrorKind::Timeout`]. A `dst` shorter than the snapshot is
    /// [`ErrorKind::Mismatch`] naming both sizes (the handle then describes the
    /// snapshot, so its [`Array::nbytes`] is the size needed). [`ErrorKind::Stale`]
    /// once the array was replaced under its name.
    pub fn read_snapshot(&mut self, dst: &mut [u8], timeout: Option<Duration>) -> Result<Snapshot> {
        self.v1()?;
        let end = deadline(timeout);
        let mut tries = 0u32;
        loop {
            tries += 1;
            let Some(s1) = self.stable_seq(end) else {
                return Err(self.timeout_error(timeout, tries));
            };
            if self.w32(off::LIVE_FLAGS).load(Ordering::Relaxed) & FLAG_STALE != 0 {
                return Err(self.stale_error());
            }
            let sgen = self.w32(off::SHAPE_GEN).load(Ordering::Relaxed);
            let fresh = match self.geometry_at(sgen) {
                Ok(g) => g,
                Err(e) => {
                    // A torn header is retried; a stable bad one is an error.
                    fence(Ordering::Acquire);
                    if self.w64(off::SEQ).load(Ordering::Relaxed) == s1 {
                        return Err(e);
                    }
                    continue;
                }
            };
            let g = fresh.as_ref().unwrap_or(&self.geometry);
            let n = g.nbytes as usize; // <= capacity
            if g.data_offset + g.nbytes > self.map.len() as u64 {
                // The array grew beyond this mapping: map the rest once the header read
                // is known to be consistent, then look again.
                let g = g.clone();
                fence(Ordering::Acquire);
                if self.w64(off::SEQ).load(Ordering::Relaxed) == s1 {
                    self.adopt(g)?;
                    self.live.known_gen = Some(sgen);
                }
                continue;
            }
            let fits = dst.len() >= n;
            if fits {
                // SAFETY: the source [data_offset, data_offset + n) lies in the
                // mapping (checked above);
                // the destination is a private buffer of at least n bytes; the bytes
                // may be torn, which the check below detects.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        self.map.as_ptr().add(g.data_offset as usize),
                        dst.as_mut_ptr(),
                        n,
                    )
                };
            }
            fence(Ordering::Acquire);
            if self.w64(off::SEQ).load(Ordering::Relaxed) != s1 {
                if end.is_some_and(|d| Instant::now() >= d) {
                    return Err(self.timeout_error(timeout, tries));
                }
                continue;
            }
            let reshaped = fresh
                .as_ref()
                .is_some_and(|g| g.shape != self.geometry.shape || g.dtype != self.geometry.dtype);
            if let Some(g) = fresh {
                self.adopt(g)?; // within the mapping: cannot fail
            }
            self.live.known_gen = Some(sgen);
            if !fits {
                return Err(Error::new(
                    ErrorKind::Mismatch,
                    format!(
                        "{}: the snapshot has {n} bytes (shape {:?} of {}), the buffer {}",
                        self.name(),
                        self.geometry.shape,
                        self.geometry.dtype,
                        dst.len()
                    ),
                ));
            }
            return Ok(Snapshot {
                version: s1 >> 1,
                nbytes: n,
                reshaped,
            });
        }
    }

    /// A consistent snapshot of the elements as a vector, with its version (see
    /// [`Array::read_snapshot`]).
    pub fn snapshot_vec<T: Element>(&mut self, timeout: Option<Duration>) -> Result<(Vec<T>, u64)> {
        loop {
            if T::DTYPE != self.dtype() {
                // The handle may be behind: learn the snapshot's geometry first.
                match self.read_snapshot(&mut [], timeout) {
                    Err(e) if e.kind() != ErrorKind::Mismatch => return Err(e),
                    _ => {}
                }
                if T::DTYPE != self.dtype() {
                    return Err(Error::new(
                        ErrorKind::Mismatch,
                        format!(
                            "{}: the array holds {}, not {}",
                            self.name(),
                            self.dtype(),
                            T::DTYPE
                        ),
                    ));
                }
            }
            let mut v = vec![T::default(); self.len()];
            // SAFETY: T is plain data valid for every bit pattern (Element); the byte
            // view covers exactly v's initialised memory.
            let bytes = unsafe {
                std::slice::from_raw_parts_mut(
                    v.as_mut_ptr().cast::<u8>(),
                    std::mem::size_of_val(v.as_slice()),
                )
            };
            match self.read_snapshot(bytes, timeout) {
                Ok(s) if !s.reshaped => return Ok((v, s.version)),
                // The shape changed since the vector was sized: size it again.
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::Mismatch => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Begins an in-place read: waits (at most `timeout`) until no write is in
    /// progress, makes the handle describe the current shape, and returns a token for
    /// [`Array::read_end`]. Read the data in place (through [`Array::as_ptr`]) in
    /// between.
    pub fn read_begin(&mut self, timeout: Option<Duration>) -> Result<u64> {
        self.v1()?;
        let end = deadline(timeout);
        let mut tries = 0;
        loop {
            tries += 1;
            let Some(s1) = self.stable_seq(end) else {
                return Err(self.timeout_error(timeout, tries));
            };
            let sgen = self.w32(off::SHAPE_GEN).load(Ordering::Relaxed);
            let fresh = self.geometry_at(sgen);
            fence(Ordering::Acquire);
            if self.w64(off::SEQ).load(Ordering::Relaxed) != s1 {
                continue;
            }
            if let Some(g) = fresh? {
                self.adopt(g)?;
            }
            self.live.known_gen = Some(sgen);
            return Ok(s1);
        }
    }

    /// Ends an in-place read begun with [`Array::read_begin`]: the version read when
    /// no write happened since (what was read is consistent), else
    /// [`ErrorKind::Torn`]: what was read may mix two versions; read again.
    pub fn read_end(&self, token: u64) -> Result<u64> {
        self.v1()?;
        fence(Ordering::Acquire);
        let s2 = self.w64(off::SEQ).load(Ordering::Relaxed);
        if s2 == token && token & 1 == 0 {
            return Ok(token >> 1);
        }
        Err(Error::new(
            ErrorKind::Torn,
            format!(
                "{}: torn: a writer wrote during the read (version {} -> {}{}); read again",
                self.name(),
                token >> 1,
                s2 >> 1,
                if s2 & 1 == 1 {
                    ", a write in progress"
                } else {
                    ""
                }
            ),
        ))
    }

    // ---------------------------------------------------------------- the lock

    /// True when the calling thread holds this array's lock.
    pub fn holds_lock(&self) -> bool {
        if self.v1().is_err() {
            return false;
        }
        let (tid, start, _) = sys::this_thread();
        let w = self.w32(off::LOCK).load(Ordering::Acquire);
        // The start time tells this thread from a dead one that had the same id.
        w & TID_MASK == tid as u32
            && self.w32(off::LOCK_OWNER).load(Ordering::Acquire) == w & !WAITERS
            && self.w64(off::LOCK_START).load(Ordering::Relaxed) == start
    }

    /// Takes the array's process-shared lock, waiting at most `timeout` (`None`: no
    /// limit; zero: try once). The lock belongs to the calling thread; it is not
    /// recursive. A holder that died (even by SIGKILL) is noticed within about
    /// [`LIVENESS_INTERVAL`]; the next locker gets the lock with
    /// [`LockStart::OwnerDied`] and should repair what the lock protects.
    ///
    /// Errors: [`ErrorKind::Busy`] (zero timeout, held by a live holder),
    /// [`ErrorKind::Timeout`] (naming the holder), [`ErrorKind::ReadOnly`],
    /// [`ErrorKind::Unsupported`] (SharedArray layout), [`ErrorKind::Invalid`] (this
    /// thread already holds it).
    ///
    /// Across PID namespaces: a holder in another namespace (a container with its own
    /// PID namespace sharing this /dev/shm) cannot be checked from here; it is presumed
    /// alive, so its death is noticed only by lockers in its own namespace (others
    /// time out).
    pub fn lock(&self, timeout: Option<Duration>) -> Result<LockStart> {
        self.v1()?;
        self.rw()?;
        let (tid, _, _) = sys::this_thread();
        if tid <= 0 || tid as u32 > TID_MASK {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{}: thread id {tid} does not fit the lock word",
                    self.name()
                ),
            ));
        }
        if self.holds_lock() {
            return Err(Error::invalid(format!(
                "{}: this thread already holds the lock (it is not recursive)",
                self.name()
            )));
        }
        let word = self.w32(off::LOCK);
        let next = |w: u32, extra: u32| {
            ((((w & GEN_MASK) >> 22) + 1) << 22 & GEN_MASK) | tid as u32 | extra
        };
        // Fast path: free.
        let w = word.load(Ordering::Relaxed);
        if w & TID_MASK == 0
            && word
                .compare_exchange(w, next(w, 0), Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            self.record_holder(next(w, 0));
            return Ok(LockStart::Clean);
        }
        let end = deadline(timeout);
        let try_once = timeout.is_some_and(|t| t.is_zero());
        let mut interval = Duration::from_millis(1);
        let mut check_now = try_once;
        let mut unrecorded: Option<(u32, Instant)> = None;
        loop {
            let w = word.load(Ordering::Relaxed);
            if w & TID_MASK == 0 {
                // Others may sleep too: keep the waiters bit so our unlock wakes them.
                let mine = next(w, if try_once { w & WAITERS } else { WAITERS });
                if word
                    .compare_exchange(w, mine, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    self.record_holder(mine);
                    return Ok(LockStart::Clean);
                }
                continue;
            }
            if check_now {
                check_now = false;
                if let Some(dead) = self.holder_dead(w, &mut unrecorded) {
                    let mine = next(w, w & WAITERS);
                    if word
                        .compare_exchange(w, mine, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        self.record_holder(mine);
                        return Ok(LockStart::OwnerDied(dead));
                    }
                    continue;
                }
            }
            let rest = left(end);
            if try_once || rest.is_some_and(|r| r.is_zero()) {
                let holder = self.describe_holder(w);
                return Err(if try_once {
                    Error::new(
                        ErrorKind::Busy,
                        format!("{}: the lock is held by {holder}", self.name()),
                    )
                } else {
                    Error::new(
                        ErrorKind::Timeout,
                        format!(
                            "{}: timed out after {:?} waiting for the lock, held by {holder}",
                            self.name(),
                            timeout.unwrap_or_default()
                        ),
                    )
                });
            }
            if w & WAITERS == 0
                && word
                    .compare_exchange(w, w | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            let nap = rest.map_or(interval, |r| r.min(interval));
            if !sys::futex_wait(word, w | WAITERS, Some(nap)) {
                // Slept the whole interval without a wake-up: is the holder alive?
                check_now = true;
                interval = (interval * 2).min(LIVENESS_INTERVAL);
            }
        }
    }

    /// Records the calling thread as the holder of lock word `mine` (see module doc).
    fn record_holder(&self, mine: u32) {
        let (_, start, _) = sys::this_thread();
        self.w64(off::LOCK_START).store(start, Ordering::Relaxed);
        self.w32(off::LOCK_NS)
            .store(sys::pid_namespace(), Ordering::Relaxed);
        self.w32(off::LOCK_BOOT)
            .store(sys::boot_id_word(), Ordering::Relaxed);
        self.w32(off::LOCK_OWNER)
            .store(mine & !WAITERS, Ordering::Release);
    }

    /// The thread id of the holder of lock word `w` if it is known to be dead.
    fn holder_dead(&self, w: u32, unrecorded: &mut Option<(u32, Instant)>) -> Option<i32> {
        let tid = (w & TID_MASK) as i32;
        let owner = self.w32(off::LOCK_OWNER).load(Ordering::Acquire);
        let start = self.w64(off::LOCK_START).load(Ordering::Relaxed);
        let ns = self.w32(off::LOCK_NS).load(Ordering::Relaxed);
        let boot = self.w32(off::LOCK_BOOT).load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        let now = self.w32(off::LOCK).load(Ordering::Relaxed);
        if now & !WAITERS != w & !WAITERS {
            return None; // changed hands meanwhile
        }
        if owner != w & !WAITERS {
            // Taken but not yet recorded (a window of a few instructions). If it stays
            // so, the holder died in that window; only then judge by the id alone.
            match *unrecorded {
                Some((u, since)) if u == w & !WAITERS => {
                    if since.elapsed() < UNRECORDED_GRACE {
                        return None;
                    }
                    return (sys::thread_alive(tid, 0, 0, 0) == Some(false)).then_some(tid);
                }
                _ => {
                    *unrecorded = Some((w & !WAITERS, Instant::now()));
                    return None;
                }
            }
        }
        (sys::thread_alive(tid, start, ns, boot) == Some(false)).then_some(tid)
    }

    fn describe_holder(&self, w: u32) -> String {
        let tid = w & TID_MASK;
        let ns = self.w32(off::LOCK_NS).load(Ordering::Relaxed);
        let mine = sys::pid_namespace();
        if ns != 0 && mine != 0 && ns != mine {
            format!(
                "thread {tid} of another PID namespace (a container), whose liveness \
                 cannot be checked from here"
            )
        } else {
            format!("thread {tid}")
        }
    }

    /// Releases the lock held by the calling thread. [`ErrorKind::Invalid`] when this
    /// thread does not hold it.
    pub fn unlock(&self) -> Result<()> {
        self.v1()?;
        self.rw()?;
        if !self.holds_lock() {
            let w = self.w32(off::LOCK).load(Ordering::Relaxed);
            let who = if w & TID_MASK == 0 {
                "nobody".to_string()
            } else {
                self.describe_holder(w)
            };
            return Err(Error::invalid(format!(
                "{}: this thread does not hold the lock (held by {who})",
                self.name()
            )));
        }
        let word = self.w32(off::LOCK);
        self.w32(off::LOCK_OWNER).store(0, Ordering::Relaxed);
        let mut w = word.load(Ordering::Relaxed);
        loop {
            match word.compare_exchange_weak(w, w & GEN_MASK, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(v) => w = v,
            }
        }
        if w & WAITERS != 0 {
            sys::futex_wake(word, 1);
        }
        Ok(())
    }
}

/// Marks the v1 array in `file` as replaced or deleted under its name (called after
/// the replacement or the unlink, with the file opened before): handles still mapping
/// it get [`ErrorKind::Stale`] from appends, writes, snapshots and waits instead of
/// working on a file nobody will read again, and its waiters are woken. Best effort:
/// a file that cannot be mapped read-write (another user's) is left as it is.
pub(crate) fn mark_stale(file: &std::fs::File) {
    let Ok(page) = MmapOptions::new().len(format::HEADER_BYTES).map_raw(file) else {
        return;
    };
    let mut magic = [0u8; 8];
    // SAFETY: the first 8 bytes of a live mapping of one page, copied into a private
    // buffer.
    unsafe { std::ptr::copy_nonoverlapping(page.as_ptr(), magic.as_mut_ptr(), 8) };
    if magic != format::MAGIC {
        return;
    }
    // SAFETY: 4-aligned words of the header page of a v1 segment (page-aligned mapping
    // of HEADER_BYTES), accessed atomically by every process (FORMAT.md).
    let (flags, version) = unsafe {
        (
            &*(page.as_ptr().add(off::LIVE_FLAGS) as *const AtomicU32),
            &*(page.as_ptr().add(off::VERSION) as *const AtomicU32),
        )
    };
    flags.fetch_or(FLAG_STALE, Ordering::Release);
    let old = version.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |v| {
        Some(v.wrapping_add(1) & COUNTER)
    });
    if old.is_ok_and(|v| v & WAITERS != 0) {
        sys::futex_wake(version, i32::MAX);
    }
}
