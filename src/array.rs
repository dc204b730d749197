//! The array handle: create, attach, delete, and access to the mapped data.
//!
//! # Memory model
//!
//! The data of an array is memory that other processes may read and write at any
//! time. Rust's references promise the opposite (`&[T]`: nobody writes; `&mut [T]`:
//! nobody else reads or writes), so the safe API never hands one out. It gives:
//!
//! * element and bulk copies ([`Array::get`], [`Array::set`], [`Array::copy_to`],
//!   [`Array::copy_from`], [`Array::to_vec`], [`Array::fill`]) that go through raw
//!   pointers only. Another process writing at the same time can make a copy mix old
//!   and new values (a *torn* read), never undefined behaviour in this process: the
//!   bytes are plain data valid for every bit pattern ([`Element`]) and no reference
//!   to the shared bytes ever exists. Consistent snapshots are built on top of these
//!   by the seqlock in the header (docs/FORMAT.md, "Memory model");
//! * raw pointers ([`Array::as_ptr`], [`Array::as_mut_ptr`]) for code that brings its
//!   own protocol;
//! * `unsafe` slice views ([`Array::as_slice`], [`Array::as_mut_slice`]) whose
//!   contract is that no process writes (respectively, no other process reads or
//!   writes) the data while the slice lives: a lock, a barrier, or an array that is
//!   written once and then only read.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use memmap2::{MmapOptions, MmapRaw};

use crate::dtype::{Dtype, Element};
use crate::error::{Error, ErrorKind, Result, human_bytes};
use crate::format::{self, Geometry, Header, Order, SegmentFormat, State, off};
use crate::name::ArrayName;
use crate::options::{AttachOptions, CreateOptions, DeleteOptions, Expect, Flush, ShapeExpect};
use crate::segment::{self, Access, Writer};
use crate::sys;

/// A mapped array: the handle behind the C `sa_array`. Unmapped when dropped; dropping
/// never deletes the array. See the module documentation for how the data may be
/// accessed while other processes use it.
#[derive(Debug)]
pub struct Array {
    name: ArrayName,
    // The mapping and geometry are also used by src/sync.rs: a shape change replaces
    // the geometry, and the seqlock and lock words live in the mapped header.
    pub(crate) map: MmapRaw,
    format: SegmentFormat,
    pub(crate) geometry: Geometry,
    readonly: bool,
    /// Snapshot and lock state of this handle (src/sync.rs).
    pub(crate) live: crate::sync::Live,
}

// The handle has no thread-affine state; the mapping is shared memory whose accesses
// go through raw pointers (see the memory model above).
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Array>();
};

impl Array {
    /// Creates a new array, zero-filled, and maps it read-write.
    ///
    /// The array gets its name only once its header is complete and its memory
    /// reserved (unless `opts.sparse`), so attachers never see it half made, a full
    /// filesystem is [`ErrorKind::NoSpace`] here and never a SIGBUS later, and a failed
    /// create leaves every name as it was. With `opts.force` an existing array (only an
    /// array) is replaced atomically.
    pub fn create(name: &str, shape: &[i64], dtype: Dtype, opts: &CreateOptions) -> Result<Array> {
        let name = ArrayName::parse(name)?;
        let geometry = new_geometry(&name, shape, dtype, opts)?;
        let mut w = Writer::begin(&name, opts.share.mode())?;
        let format = if opts.sharedarray_format {
            w.write_sharedarray_trailer(&geometry)?;
            segment::sharedarray_format()
        } else {
            w.write_header(&new_header(&geometry), State::Ready)?;
            SegmentFormat::V1 {
                minor: format::VERSION_MINOR,
            }
        };
        w.reserve(opts.sparse)?;
        let total = w.total();
        let file = w.publish(opts.force)?;
        Array::from_published(name, &file, total, format, geometry, opts)
    }

    /// The handle of a segment this process has just published (see
    /// [`segment::Writer::publish`]): maps `file`, read-write.
    pub(crate) fn from_published(
        name: ArrayName,
        file: &File,
        total: u64,
        format: SegmentFormat,
        geometry: Geometry,
        opts: &CreateOptions,
    ) -> Result<Array> {
        let map = map_file(&name, file, total, false, opts.populate)?;
        if opts.hugepages {
            advise_hugepages(&map, geometry.data_offset as usize);
        }
        let mut live = crate::sync::Live::default();
        live.ident = file_ident(file);
        Ok(Array {
            name,
            map,
            format,
            geometry,
            readonly: false,
            live,
        })
    }

    /// Attaches to an existing array, waiting when `opts.wait` says so.
    ///
    /// Errors: [`ErrorKind::NotFound`]; [`ErrorKind::NotReady`] while a live creator is
    /// still initialising it; [`ErrorKind::OwnerDied`] when that creator died;
    /// [`ErrorKind::Format`] for anything that is not a valid v1 or SharedArray
    /// segment in a regular file; [`ErrorKind::Permission`] for another user's array
    /// (see [`AttachOptions::allow_other_owner`]) or a symbolic link (see
    /// [`AttachOptions::follow_symlinks`]); [`ErrorKind::Timeout`] when a wait ran out,
    /// naming the last reason.
    pub fn attach(name: &str, opts: &AttachOptions) -> Result<Array> {
        let name = ArrayName::parse(name)?;
        let Some(timeout) = opts.wait else {
            return attach_once(name, opts);
        };
        // No deadline when the timeout does not fit (Duration::MAX: wait forever).
        let deadline = Instant::now().checked_add(timeout);
        let mut pause = Duration::from_micros(50);
        loop {
            match attach_once(name.clone(), opts) {
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotReady) => {
                    let now = Instant::now();
                    if deadline.is_some_and(|d| now >= d) {
                        if timeout.is_zero() {
                            return Err(e);
                        }
                        return Err(Error::new(
                            ErrorKind::Timeout,
                            format!("timed out after {timeout:?}: {}", e.message()),
                        ));
                    }
                    let left = deadline.map_or(pause, |d| d - now);
                    std::thread::sleep(pause.min(left));
                    pause = (pause * 2).min(Duration::from_millis(5));
                }
                r => return r,
            }
        }
    }

    /// Attaches (see [`Array::attach`]) and checks the array against `expect`:
    /// [`ErrorKind::Mismatch`] names both the expected and the found values.
    pub fn attach_checked(name: &str, opts: &AttachOptions, expect: &Expect) -> Result<Array> {
        let a = Array::attach(name, opts)?;
        a.check(expect)?;
        Ok(a)
    }

    /// Checks this array against `expect`.
    pub fn check(&self, expect: &Expect) -> Result<()> {
        let g = &self.geometry;
        let shape_ok = match &expect.shape {
            ShapeExpect::Any => true,
            ShapeExpect::Ndim(n) => *n == g.shape.len(),
            ShapeExpect::Dims(d) => {
                d.len() == g.shape.len()
                    && d.iter()
                        .zip(&g.shape)
                        .all(|(e, &f)| e.is_none_or(|e| e == f))
            }
        };
        let dtype_ok = expect.dtype.is_none_or(|d| d == g.dtype);
        let order_ok = expect
            .order
            .is_none_or(|o| o == g.order || g.shape.len() <= 1);
        if shape_ok && dtype_ok && order_ok {
            return Ok(());
        }
        let shape = match &expect.shape {
            ShapeExpect::Any => "any".to_string(),
            ShapeExpect::Ndim(n) => format!("any of {n} dimensions"),
            ShapeExpect::Dims(d) => {
                let dims: Vec<String> = d
                    .iter()
                    .map(|x| x.map_or("any".to_string(), |v| v.to_string()))
                    .collect();
                format!("[{}]", dims.join(", "))
            }
        };
        let order = |o: Option<Order>| o.map_or("any", |o| if o == Order::C { "C" } else { "F" });
        Err(Error::new(
            ErrorKind::Mismatch,
            format!(
                "{}: expected shape {shape} dtype {} order {}, found shape {:?} dtype {} order {}",
                self.name,
                expect.dtype.map_or("any", |d| d.name()),
                order(expect.order),
                g.shape,
                g.dtype,
                order(Some(g.order))
            ),
        ))
    }

    /// The array's name, with its scheme.
    pub fn name(&self) -> &ArrayName {
        &self.name
    }
    /// Element type.
    pub fn dtype(&self) -> Dtype {
        self.geometry.dtype
    }
    /// Storage order.
    pub fn order(&self) -> Order {
        self.geometry.order
    }
    /// Shape.
    pub fn shape(&self) -> &[i64] {
        &self.geometry.shape
    }
    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.geometry.shape.len()
    }
    /// Bytes per element.
    pub fn itemsize(&self) -> usize {
        self.geometry.dtype.itemsize()
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.geometry.len()
    }
    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.geometry.is_empty()
    }
    /// Bytes of data.
    pub fn nbytes(&self) -> usize {
        // Validated to be at most isize::MAX.
        self.geometry.nbytes as usize
    }
    /// Bytes reserved for data.
    pub fn capacity(&self) -> usize {
        self.geometry.capacity as usize
    }
    /// Byte strides, numpy-style. Every shape ndshm accepts has strides that fit in an
    /// `i64` (see [`format::nbytes_for`]); zero dimensions count as one.
    pub fn strides(&self) -> Vec<i64> {
        let shape = &self.geometry.shape;
        let mut s = vec![0i64; shape.len()];
        let mut acc = self.itemsize() as i64;
        let mut step = |i: usize| {
            s[i] = acc;
            acc = acc.saturating_mul(shape[i].max(1));
        };
        match self.geometry.order {
            Order::C => (0..shape.len()).rev().for_each(&mut step),
            Order::F => (0..shape.len()).for_each(&mut step),
        }
        s
    }
    /// The segment's layout.
    pub fn format(&self) -> SegmentFormat {
        self.format
    }
    /// The validated geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }
    /// True when mapped read-only.
    pub fn is_readonly(&self) -> bool {
        self.readonly
    }

    /// Pointer to the first element, aligned for the dtype (page aligned, except for an
    /// `npy://` file: aligned to the item size). Other processes may write through
    /// it at any time; see the module documentation.
    pub fn as_ptr(&self) -> *const u8 {
        // data_offset + capacity <= mapping length was checked when mapping.
        self.map
            .as_ptr()
            .wrapping_add(self.geometry.data_offset as usize)
    }

    /// Mutable pointer to the first element, or [`ErrorKind::ReadOnly`].
    pub fn as_mut_ptr(&mut self) -> Result<*mut u8> {
        self.writable()?;
        Ok(self
            .map
            .as_mut_ptr()
            .wrapping_add(self.geometry.data_offset as usize))
    }

    fn writable(&self) -> Result<()> {
        if self.readonly {
            return Err(Error::new(
                ErrorKind::ReadOnly,
                format!("{}: the array is attached read-only", self.name),
            ));
        }
        Ok(())
    }

    fn check_dtype<T: Element>(&self) -> Result<()> {
        if T::DTYPE != self.dtype() {
            return Err(Error::new(
                ErrorKind::Mismatch,
                format!(
                    "{}: the array holds {}, not {}",
                    self.name,
                    self.dtype(),
                    T::DTYPE
                ),
            ));
        }
        Ok(())
    }

    fn typed_ptr<T: Element>(&self) -> Result<*const T> {
        self.check_dtype::<T>()?;
        Ok(self.as_ptr().cast())
    }

    fn index(&self, i: usize) -> Result<()> {
        if i >= self.len() {
            return Err(Error::invalid(format!(
                "{}: index {i} is out of bounds for {} elements",
                self.name,
                self.len()
            )));
        }
        Ok(())
    }

    /// Element `i` in storage order (a volatile read: another process may write it).
    pub fn get<T: Element>(&self, i: usize) -> Result<T> {
        let p = self.typed_ptr::<T>()?;
        self.index(i)?;
        // SAFETY: i < len, so the element lies inside the mapped data region, which is
        // aligned for T (see `as_ptr`); T is valid for any bits (Element).
        Ok(unsafe { p.add(i).read_volatile() })
    }

    /// Sets element `i` in storage order (a volatile write).
    pub fn set<T: Element>(&mut self, i: usize, v: T) -> Result<()> {
        self.check_dtype::<T>()?;
        self.index(i)?;
        let p = self.as_mut_ptr()?.cast::<T>();
        // SAFETY: as in `get`, and the mapping is writable (checked by as_mut_ptr).
        unsafe { p.add(i).write_volatile(v) };
        Ok(())
    }

    /// Copies the elements into `dst`, which must hold exactly [`Array::len`] of them.
    /// A concurrent writer can make the copy torn (see the module documentation).
    pub fn copy_to<T: Element>(&self, dst: &mut [T]) -> Result<()> {
        let p = self.typed_ptr::<T>()?;
        self.same_len(dst.len())?;
        // SAFETY: the source is the mapped data region of len elements (checked when
        // mapped), read through a raw pointer only; the destination is a private,
        // distinct buffer of the same length; T is plain data.
        unsafe { std::ptr::copy_nonoverlapping(p, dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    /// The elements, copied into a new vector.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        let mut v = vec![T::default(); self.len()];
        self.copy_to(&mut v)?;
        Ok(v)
    }

    /// Copies `src`, which must hold exactly [`Array::len`] elements, into the array.
    pub fn copy_from<T: Element>(&mut self, src: &[T]) -> Result<()> {
        self.check_dtype::<T>()?;
        self.same_len(src.len())?;
        let p = self.as_mut_ptr()?.cast::<T>();
        // SAFETY: the destination is the writable mapped data region of len elements,
        // written through a raw pointer only; the source is a distinct private slice.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), p, src.len()) };
        self.touch_write_time();
        Ok(())
    }

    fn same_len(&self, n: usize) -> Result<()> {
        if n != self.len() {
            return Err(Error::invalid(format!(
                "{}: the buffer has {n} elements, the array {}",
                self.name,
                self.len()
            )));
        }
        Ok(())
    }

    /// The elements as a slice, in storage order.
    ///
    /// # Safety
    /// No process (this one included, through another handle or pointer) may write the
    /// array's data while the returned slice lives: Rust assumes a `&[T]` never
    /// changes. Hold a lock, or use arrays that are written once and then only read.
    pub unsafe fn as_slice<T: Element>(&self) -> Result<&[T]> {
        let p = self.typed_ptr::<T>()?;
        let p = if self.is_empty() {
            std::ptr::NonNull::<T>::dangling().as_ptr()
        } else {
            p.cast_mut()
        };
        // SAFETY: the data region [data_offset, data_offset + nbytes) lies inside the
        // mapping (checked against the file size when mapped) and lives as long as
        // &self; it is aligned for T (page aligned, or for an npy:// file a multiple of
        // the item size, checked by segment::read_npy); T is valid for any bits and
        // T::DTYPE matches, so len * size_of::<T>() == nbytes; nobody writes it while
        // the slice lives, per this function's contract.
        Ok(unsafe { std::slice::from_raw_parts(p, self.len()) })
    }

    /// The elements as a mutable slice. Fails on a dtype mismatch or a read-only handle.
    ///
    /// # Safety
    /// No other process may read or write the array's data while the returned slice
    /// lives: Rust assumes a `&mut [T]` is the only access.
    pub unsafe fn as_mut_slice<T: Element>(&mut self) -> Result<&mut [T]> {
        self.check_dtype::<T>()?;
        let p = if self.is_empty() {
            self.writable()?;
            std::ptr::NonNull::<T>::dangling().as_ptr()
        } else {
            self.as_mut_ptr()?.cast::<T>()
        };
        // SAFETY: as in as_slice, and &mut self plus this function's contract give
        // exclusive access to a writable (PROT_WRITE) mapping.
        Ok(unsafe { std::slice::from_raw_parts_mut(p, self.len()) })
    }

    /// Sets every element to the value whose bytes are `value` (exactly `itemsize` bytes).
    pub fn fill_bytes(&mut self, value: &[u8]) -> Result<()> {
        if value.len() != self.itemsize() {
            return Err(Error::invalid(format!(
                "{}: fill value has {} bytes, the {} elements have {}",
                self.name,
                value.len(),
                self.dtype(),
                self.itemsize()
            )));
        }
        let n = self.nbytes();
        let ptr = self.as_mut_ptr()?;
        if n > 0 {
            if value.iter().all(|&b| b == value[0]) {
                // SAFETY: [ptr, ptr + n) is the writable data region of this mapping.
                unsafe { std::ptr::write_bytes(ptr, value[0], n) };
            } else {
                // One element, then the filled prefix doubled with memcpy, all through
                // raw pointers (no reference to shared memory).
                // SAFETY: every range below lies inside [ptr, ptr + n), source and
                // destination of each copy are disjoint (done <= n - done is not
                // required: k = min(done, n - done) bytes from the prefix [0, done) to
                // [done, done + k)), and value has itemsize <= n bytes.
                unsafe {
                    std::ptr::copy_nonoverlapping(value.as_ptr(), ptr, value.len());
                    let mut done = value.len();
                    while done < n {
                        let k = done.min(n - done);
                        std::ptr::copy_nonoverlapping(ptr, ptr.add(done), k);
                        done += k;
                    }
                }
            }
        }
        self.touch_write_time();
        Ok(())
    }

    /// Sets every element to `value`; `T` must be the array's dtype.
    pub fn fill<T: Element>(&mut self, value: T) -> Result<()> {
        self.check_dtype::<T>()?;
        // SAFETY: T is plain old data without padding (Element contract), so its bytes
        // are initialised.
        let bytes = unsafe {
            std::slice::from_raw_parts((&value as *const T).cast::<u8>(), size_of::<T>())
        };
        self.fill_bytes(bytes)
    }

    /// Records the current time as the last write (v1 only; no-op otherwise).
    pub fn touch_write_time(&self) {
        if let (SegmentFormat::V1 { .. }, false) = (self.format, self.readonly) {
            // SAFETY: v1 mappings are at least HEADER_BYTES long and page aligned, so
            // WRITE_NS is in bounds and 8-aligned; every process accesses it atomically.
            let w = unsafe { &*(self.map.as_ptr().add(off::WRITE_NS) as *const AtomicI64) };
            w.store(sys::now_ns(), Ordering::Relaxed);
        }
    }

    /// `msync(2)` over the whole mapping, optionally invalidating other mappings.
    pub fn msync(&self, flush: Flush, invalidate: bool) -> Result<()> {
        let mut f = match flush {
            Flush::Async => libc::MS_ASYNC,
            Flush::Sync => libc::MS_SYNC,
        };
        if invalidate {
            f |= libc::MS_INVALIDATE;
        }
        // SAFETY: the range is exactly our live mapping.
        let r = unsafe { libc::msync(self.map.as_mut_ptr().cast(), self.map.len(), f) };
        if r != 0 {
            return Err(Error::os(
                format!("{}: msync", self.name),
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Locks the data pages in memory (`mlock(2)`). Beyond `RLIMIT_MEMLOCK` this is
    /// [`ErrorKind::NoSpace`] or [`ErrorKind::Permission`] with the limit in the message;
    /// a segment truncated by another process is [`ErrorKind::Format`] saying so.
    pub fn mlock(&self) -> Result<()> {
        let (ptr, len) = self.data_range();
        // SAFETY: the range lies inside our live mapping.
        if len > 0 && unsafe { libc::mlock(ptr, len) } != 0 {
            let err = io::Error::last_os_error();
            if let Some(size) = self.truncated_to() {
                return Err(Error::format(format!(
                    "{}: mlock: the segment was truncated to {} by another process, so \
                     the pages past its end no longer exist",
                    self.name,
                    human_bytes(size)
                )));
            }
            let limit = match sys::memlock_limit() {
                Some((soft, hard)) => {
                    // rlim_t is narrower than u64 on some targets.
                    #[allow(clippy::unnecessary_cast)]
                    let show = |v: u64| {
                        if v == libc::RLIM_INFINITY as u64 {
                            "unlimited".to_string()
                        } else {
                            human_bytes(v)
                        }
                    };
                    format!(
                        " (RLIMIT_MEMLOCK soft {}, hard {}; raise it with `ulimit -l` \
                         or grant CAP_IPC_LOCK)",
                        show(soft),
                        show(hard)
                    )
                }
                None => String::new(),
            };
            return Err(Error::os(
                format!("{}: mlock of {}{limit}", self.name, human_bytes(len as u64)),
                err,
            ));
        }
        Ok(())
    }

    /// The current size of the mapped file when it is now shorter than the mapping.
    fn truncated_to(&self) -> Option<u64> {
        // The kernel may have split our mapping (mlock does): find the piece holding
        // the data and stat the file behind it.
        let addr = self.as_ptr() as usize;
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        let range = maps.lines().find_map(|l| {
            let r = l.split_whitespace().next()?;
            let (a, b) = r.split_once('-')?;
            let (a, b) = (
                usize::from_str_radix(a, 16).ok()?,
                usize::from_str_radix(b, 16).ok()?,
            );
            (a <= addr && addr < b).then(|| r.to_string())
        })?;
        let size = std::fs::metadata(format!("/proc/self/map_files/{range}"))
            .ok()?
            .len();
        (size < self.map.len() as u64).then_some(size)
    }

    /// Undoes [`Array::mlock`].
    pub fn munlock(&self) -> Result<()> {
        let (ptr, len) = self.data_range();
        // SAFETY: the range lies inside our live mapping.
        if len > 0 && unsafe { libc::munlock(ptr, len) } != 0 {
            return Err(Error::os(
                format!("{}: munlock", self.name),
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    fn data_range(&self) -> (*const libc::c_void, usize) {
        (self.as_ptr().cast(), self.nbytes())
    }

    /// Removes an array's name. Existing mappings stay valid; the memory is freed with
    /// the last one. Only regular files that positively are arrays are removed (others
    /// are [`ErrorKind::Format`]), never a symbolic link, and an array whose live
    /// creator is still initialising it only with `in_progress` (else
    /// [`ErrorKind::NotReady`]).
    pub fn delete(name: &str) -> Result<()> {
        Array::delete_with(name, &DeleteOptions::default())
    }

    /// [`Array::delete`] with options.
    pub fn delete_with(name: &str, opts: &DeleteOptions) -> Result<()> {
        segment::remove(&ArrayName::parse(name)?, opts)
    }
}

/// The validated geometry of a new array (v1, or SharedArray with `opts`).
pub(crate) fn new_geometry(
    name: &ArrayName,
    shape: &[i64],
    dtype: Dtype,
    opts: &CreateOptions,
) -> Result<Geometry> {
    format::check_ndim(shape.len() as i64).map_err(|e| e.context(name))?;
    let nbytes = format::nbytes_for(shape, dtype.itemsize()).map_err(|e| e.context(name))?;
    if opts.sharedarray_format && opts.order == Order::F {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!("{name}: the SharedArray format stores C order only"),
        ));
    }
    let data_offset = if opts.sharedarray_format {
        0
    } else {
        format::data_offset_for(sys::page_size())
    };
    // Room for later shape changes (src/sync.rs); never less than the shape needs.
    let capacity = match opts.capacity {
        Some(c) if c > nbytes && opts.sharedarray_format => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("{name}: the SharedArray format cannot reserve a larger capacity"),
            ));
        }
        Some(c) => c.max(nbytes),
        None => nbytes,
    };
    let total_ok = data_offset
        .checked_add(capacity)
        .and_then(|t| t.checked_add(format::SA_TRAILER_NPY2 as u64))
        .is_some_and(|t| t <= isize::MAX as u64);
    if !total_ok {
        return Err(Error::invalid(format!(
            "{name}: shape {shape:?} is too large"
        )));
    }
    Ok(Geometry {
        dtype,
        order: opts.order,
        shape: shape.to_vec(),
        nbytes,
        capacity,
        data_offset,
    })
}

/// A v1 header for a new array of `geometry`, created by this process now.
pub(crate) fn new_header(geometry: &Geometry) -> Header {
    Header {
        minor: format::VERSION_MINOR,
        page_size: sys::page_size() as u32,
        geometry: geometry.clone(),
        creator: sys::current_creator(),
        create_flags: (geometry.order == Order::F) as u32,
        created_ns: sys::now_ns(),
    }
}

fn attach_once(name: ArrayName, opts: &AttachOptions) -> Result<Array> {
    let access = Access {
        write: !opts.readonly,
        allow_other_owner: opts.allow_other_owner,
        follow_symlinks: opts.follow_symlinks,
    };
    let (file, meta) = segment::open(&name, &access)?;
    let size = meta.len();
    let seg = segment::read(&name, &file, size)?;
    if seg.state == State::Initialising {
        return Err(segment::unfinished(&name, seg.creator.as_ref()));
    }
    let map = map_file(&name, &file, size, opts.readonly, opts.populate)?;
    let mut live = crate::sync::Live::default();
    {
        use std::os::unix::fs::MetadataExt;
        live.ident = Some((meta.dev(), meta.ino()));
    }
    Ok(Array {
        name,
        map,
        format: seg.format,
        geometry: seg.geometry,
        readonly: opts.readonly,
        live,
    })
}

/// The device and inode of `file`: which file a handle maps, for opening it again by
/// name (growth) and knowing it is the same one.
fn file_ident(file: &File) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    file.metadata().ok().map(|m| (m.dev(), m.ino()))
}

fn map_file(
    name: &ArrayName,
    file: &File,
    size: u64,
    readonly: bool,
    populate: bool,
) -> Result<MmapRaw> {
    let len = usize::try_from(size)
        .ok()
        .filter(|&l| l <= isize::MAX as usize)
        .ok_or_else(|| Error::format(format!("{name}: file too large to map ({size} bytes)")))?;
    let mut mo = MmapOptions::new();
    mo.len(len);
    if populate {
        mo.populate();
    }
    if readonly {
        mo.map_raw_read_only(file)
    } else {
        mo.map_raw(file)
    }
    .map_err(|e| Error::os(format!("{name}: mmap"), e))
}

#[cfg(target_os = "linux")]
fn advise_hugepages(map: &MmapRaw, data_offset: usize) {
    let len = map.len().saturating_sub(data_offset);
    if len > 0 {
        // Advice only: on a tmpfs without huge= (or shmem_enabled=never) the kernel
        // accepts it and does nothing, which is the documented behaviour.
        let _ = map.advise_range(memmap2::Advice::HugePage, data_offset, len);
    }
}
