//! The array handle: create, attach, delete, and what one can do with a mapping.

use std::fs::File;
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use memmap2::{MmapOptions, MmapRaw};

use crate::dtype::{Dtype, Element};
use crate::error::{Error, ErrorKind, Result, human_bytes};
use crate::format::{self, CHECKED_BYTES, Geometry, Header, Order, Probe, SegmentFormat, off};
use crate::name::ArrayName;
use crate::sys;

/// Who may open a new array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Share {
    /// 0600: the owner only (default).
    #[default]
    Owner,
    /// 0660: owner and group.
    Group,
    /// 0666: everybody.
    All,
}

impl Share {
    /// The permission bits.
    pub fn mode(self) -> u32 {
        match self {
            Share::Owner => 0o600,
            Share::Group => 0o660,
            Share::All => 0o666,
        }
    }
}

/// Bit flags shared with the C API (`SA_*`). Their values are ABI.
pub mod flags {
    /// Create: column-major (Fortran) order.
    pub const ORDER_F: u32 = 1 << 0;
    /// Create: replace an existing array of that name.
    pub const FORCE: u32 = 1 << 1;
    /// Create: do not reserve memory up front.
    pub const SPARSE: u32 = 1 << 2;
    /// Create and attach: prefault the pages.
    pub const POPULATE: u32 = 1 << 3;
    /// Create: ask for transparent huge pages where the kernel allows.
    pub const HUGEPAGES: u32 = 1 << 4;
    /// Create: permissions 0660.
    pub const SHARE_GROUP: u32 = 1 << 5;
    /// Create: permissions 0666.
    pub const SHARE_ALL: u32 = 1 << 6;
    /// Create: SharedArray 3.x layout (numpy-2 trailer).
    pub const FORMAT_SHAREDARRAY: u32 = 1 << 7;
    /// Attach: map read-only.
    pub const READONLY: u32 = 1 << 8;
    /// Every flag `create` accepts.
    pub const CREATE_MASK: u32 = ORDER_F
        | FORCE
        | SPARSE
        | POPULATE
        | HUGEPAGES
        | SHARE_GROUP
        | SHARE_ALL
        | FORMAT_SHAREDARRAY;
    /// Every flag `attach` accepts.
    pub const ATTACH_MASK: u32 = READONLY | POPULATE;
}

/// How to create an array. Build with `CreateOptions::default()` and the setters, or
/// from C flag bits with [`CreateOptions::from_flags`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// Storage order.
    pub order: Option<Order>,
    /// Replace an existing array of that name.
    pub force: bool,
    /// Do not reserve memory (pages are allocated on first write; a full filesystem
    /// then means SIGBUS, as with the tools ndshm replaces).
    pub sparse: bool,
    /// Prefault every page at create.
    pub populate: bool,
    /// Advise transparent huge pages on the data.
    pub hugepages: bool,
    /// Permissions.
    pub share: Share,
    /// Write SharedArray's layout instead of v1.
    pub sharedarray_format: bool,
}

impl CreateOptions {
    /// Options from `SA_*` create flags; unknown or contradictory bits are errors.
    pub fn from_flags(bits: u32) -> Result<Self> {
        use flags::*;
        if bits & !CREATE_MASK != 0 {
            return Err(Error::invalid(format!(
                "unknown create flag bits {:#x}",
                bits & !CREATE_MASK
            )));
        }
        if bits & SHARE_GROUP != 0 && bits & SHARE_ALL != 0 {
            return Err(Error::invalid(
                "SA_SHARE_GROUP and SA_SHARE_ALL are mutually exclusive",
            ));
        }
        Ok(CreateOptions {
            order: Some(if bits & ORDER_F != 0 {
                Order::F
            } else {
                Order::C
            }),
            force: bits & FORCE != 0,
            sparse: bits & SPARSE != 0,
            populate: bits & POPULATE != 0,
            hugepages: bits & HUGEPAGES != 0,
            share: if bits & SHARE_ALL != 0 {
                Share::All
            } else if bits & SHARE_GROUP != 0 {
                Share::Group
            } else {
                Share::Owner
            },
            sharedarray_format: bits & FORMAT_SHAREDARRAY != 0,
        })
    }

    /// Sets the storage order.
    pub fn order(mut self, o: Order) -> Self {
        self.order = Some(o);
        self
    }
    /// Replace an existing array.
    pub fn force(mut self, yes: bool) -> Self {
        self.force = yes;
        self
    }
    /// Do not reserve memory.
    pub fn sparse(mut self, yes: bool) -> Self {
        self.sparse = yes;
        self
    }
    /// Prefault pages.
    pub fn populate(mut self, yes: bool) -> Self {
        self.populate = yes;
        self
    }
    /// Advise huge pages.
    pub fn hugepages(mut self, yes: bool) -> Self {
        self.hugepages = yes;
        self
    }
    /// Permissions.
    pub fn share(mut self, s: Share) -> Self {
        self.share = s;
        self
    }
    /// SharedArray layout.
    pub fn sharedarray_format(mut self, yes: bool) -> Self {
        self.sharedarray_format = yes;
        self
    }
}

/// How to attach.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttachOptions {
    /// Map read-only: writes through the mapping fault, and mutating calls fail with
    /// [`ErrorKind::ReadOnly`].
    pub readonly: bool,
    /// Prefault every page.
    pub populate: bool,
}

impl AttachOptions {
    /// Options from `SA_*` attach flags; unknown bits are errors.
    pub fn from_flags(bits: u32) -> Result<Self> {
        if bits & !flags::ATTACH_MASK != 0 {
            return Err(Error::invalid(format!(
                "unknown attach flag bits {:#x}",
                bits & !flags::ATTACH_MASK
            )));
        }
        Ok(AttachOptions {
            readonly: bits & flags::READONLY != 0,
            populate: bits & flags::POPULATE != 0,
        })
    }
}

/// What a checked attach expects; `None` accepts anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expect {
    /// Expected shape; a negative entry accepts any length on that axis. Its length is
    /// the expected ndim.
    pub shape: Option<Vec<i64>>,
    /// Expected dtype.
    pub dtype: Option<Dtype>,
    /// Expected order.
    pub order: Option<Order>,
}

/// `msync` modes (the values of the C `SA_MS_*` constants).
pub mod ms {
    /// Schedule the write-back and return.
    pub const ASYNC: i32 = 1;
    /// Invalidate other mappings of the same file.
    pub const INVALIDATE: i32 = 2;
    /// Write back and wait.
    pub const SYNC: i32 = 4;
}

/// A mapped array: the handle behind the C `sa_array`. Unmapped when dropped; dropping
/// never deletes the array.
///
/// Other processes may write the same memory at any time: Rust's aliasing guarantees
/// hold within this process only. Use the snapshot and lock features (or your own
/// protocol) to coordinate writers and readers across processes.
#[derive(Debug)]
pub struct Array {
    name: ArrayName,
    map: MmapRaw,
    format: SegmentFormat,
    geometry: Geometry,
    readonly: bool,
}

// The mapping is plain shared memory; the handle has no thread-affine state.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Array>();
};

/// Maps an OS error to an Error naming the array; formats only when it fails.
fn ctx<'a>(name: &'a ArrayName, what: &'a str) -> impl Fn(io::Error) -> Error + 'a {
    move |e| Error::os(format!("{name}: {what}"), e)
}

impl Array {
    /// Creates a new array, zero-filled, and maps it read-write.
    ///
    /// Unless `opts.sparse`, the memory is reserved (`posix_fallocate`) first, so a full
    /// filesystem is [`ErrorKind::NoSpace`] here and never a SIGBUS later. Attachers
    /// see [`ErrorKind::NotReady`] until the header is complete. A failed create
    /// removes what it made.
    pub fn create(name: &str, shape: &[i64], dtype: Dtype, opts: &CreateOptions) -> Result<Array> {
        let name = ArrayName::parse(name)?;
        format::check_ndim(shape.len() as i64).map_err(|e| e.context(&name))?;
        let nbytes = format::nbytes_for(shape, dtype.itemsize()).map_err(|e| e.context(&name))?;
        let order = opts.order.unwrap_or(Order::C);
        if opts.sharedarray_format && order == Order::F {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("{name}: the SharedArray format stores C order only"),
            ));
        }
        let (format, data_offset, total) = if opts.sharedarray_format {
            let total = nbytes.checked_add(format::SA_TRAILER_NPY2 as u64);
            (SegmentFormat::SharedArray { maxdims: 64 }, 0, total)
        } else {
            let off = format::data_offset_for(sys::page_size());
            let v1 = SegmentFormat::V1 {
                minor: format::VERSION_MINOR,
            };
            (v1, off, off.checked_add(nbytes))
        };
        let total = total
            .filter(|&t| t <= isize::MAX as u64)
            .ok_or_else(|| Error::invalid(format!("{name}: shape {shape:?} is too large")))?;
        let geometry = Geometry {
            dtype,
            order,
            shape: shape.to_vec(),
            nbytes,
            capacity: nbytes,
            data_offset,
        };

        let mode = opts.share.mode();
        let file = create_exclusive(&name, mode, opts.force)?;
        // From here on the name is ours: remove it if anything fails.
        let made = Created {
            name: &name,
            keep: false,
        };
        let arr = init_segment(&name, file, format, geometry, total, opts)?;
        made.keep();
        Ok(arr)
    }

    /// Attaches to an existing array.
    ///
    /// Errors: [`ErrorKind::NotFound`], [`ErrorKind::NotReady`] while its creator is
    /// still initialising it, [`ErrorKind::Format`] for anything that is not a valid
    /// v1 or SharedArray segment.
    pub fn attach(name: &str, opts: &AttachOptions) -> Result<Array> {
        let name = ArrayName::parse(name)?;
        let oflag = if opts.readonly {
            libc::O_RDONLY
        } else {
            libc::O_RDWR
        };
        let file = sys::open(&name, oflag, 0).map_err(|e| {
            if e.raw_os_error() == Some(libc::ENOENT) {
                Error::os(format!("{name}: no such array"), e)
            } else {
                Error::os(format!("{name}: open"), e)
            }
        })?;
        map_existing(name, &file, opts)
    }

    /// Attaches, waiting up to `timeout` for the array to exist and be ready. A zero
    /// timeout tries once. Fails with [`ErrorKind::Timeout`] naming the last reason.
    pub fn attach_wait(name: &str, opts: &AttachOptions, timeout: Duration) -> Result<Array> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_micros(50);
        loop {
            match Array::attach(name, opts) {
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotReady) => {
                    let now = Instant::now();
                    if now >= deadline {
                        if timeout.is_zero() {
                            return Err(e);
                        }
                        return Err(Error::new(
                            ErrorKind::Timeout,
                            format!("timed out after {timeout:?}: {}", e.message()),
                        ));
                    }
                    std::thread::sleep(pause.min(deadline - now));
                    pause = (pause * 2).min(Duration::from_millis(5));
                }
                r => return r,
            }
        }
    }

    /// Attaches and checks the array against `expect`: [`ErrorKind::Mismatch`] names
    /// both the expected and the found values.
    pub fn attach_checked(name: &str, opts: &AttachOptions, expect: &Expect) -> Result<Array> {
        let a = Array::attach(name, opts)?;
        a.check(expect)?;
        Ok(a)
    }

    /// Attaches with everything at once: waits up to `timeout` when given (see
    /// [`Array::attach_wait`]), then checks against `expect` (see [`Array::attach_checked`]).
    pub fn attach_with(
        name: &str,
        opts: &AttachOptions,
        timeout: Option<Duration>,
        expect: &Expect,
    ) -> Result<Array> {
        let a = match timeout {
            Some(t) => Array::attach_wait(name, opts, t)?,
            None => Array::attach(name, opts)?,
        };
        a.check(expect)?;
        Ok(a)
    }

    /// Checks this array against `expect`.
    pub fn check(&self, expect: &Expect) -> Result<()> {
        let g = &self.geometry;
        let shape_ok = expect.shape.as_ref().is_none_or(|s| {
            s.len() == g.shape.len() && s.iter().zip(&g.shape).all(|(&e, &f)| e < 0 || e == f)
        });
        let dtype_ok = expect.dtype.is_none_or(|d| d == g.dtype);
        let order_ok = expect
            .order
            .is_none_or(|o| o == g.order || g.shape.len() <= 1);
        if shape_ok && dtype_ok && order_ok {
            return Ok(());
        }
        let show = |s: Option<&Vec<i64>>, d: Option<Dtype>, o: Option<Order>| {
            format!(
                "shape {} dtype {} order {}",
                s.map_or("any".into(), |s| format!("{s:?}")),
                d.map_or("any", |d| d.name()),
                o.map_or("any", |o| if o == Order::C { "C" } else { "F" })
            )
        };
        Err(Error::new(
            ErrorKind::Mismatch,
            format!(
                "{}: expected {}, found {}",
                self.name,
                show(expect.shape.as_ref(), expect.dtype, expect.order),
                show(Some(&g.shape), Some(g.dtype), Some(g.order))
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
        self.geometry.nbytes as usize
    }
    /// Bytes reserved for data.
    pub fn capacity(&self) -> usize {
        self.geometry.capacity as usize
    }
    /// Byte strides, numpy-style.
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

    /// Pointer to the first element (page aligned).
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

    /// The elements as a slice, in storage order. Fails with [`ErrorKind::Mismatch`]
    /// when `T` is not the array's dtype.
    pub fn as_slice<T: Element>(&self) -> Result<&[T]> {
        self.check_dtype::<T>()?;
        let ptr = NonNull::new(self.as_ptr() as *mut T).unwrap_or(NonNull::dangling());
        // SAFETY: the data region [data_offset, data_offset + nbytes) lies inside the
        // mapping (checked against the file size when mapped) and lives as long as
        // &self; it is page aligned, so aligned for T; T is plain old data valid for any
        // bits (Element contract) and T::DTYPE matches, so len * size_of::<T>() == nbytes.
        Ok(unsafe { std::slice::from_raw_parts(ptr.as_ptr(), self.len()) })
    }

    /// The elements as a mutable slice. Fails on a dtype mismatch or a read-only handle.
    pub fn as_mut_slice<T: Element>(&mut self) -> Result<&mut [T]> {
        self.check_dtype::<T>()?;
        let ptr = self.as_mut_ptr()? as *mut T;
        // SAFETY: as in as_slice, and &mut self gives exclusive access within this
        // process to a writable (PROT_WRITE) mapping.
        Ok(unsafe { std::slice::from_raw_parts_mut(ptr, self.len()) })
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
        if n == 0 {
            return Ok(());
        }
        // SAFETY: [ptr, ptr + n) is the writable data region of this mapping.
        let data = unsafe { std::slice::from_raw_parts_mut(ptr, n) };
        if value.iter().all(|&b| b == value[0]) {
            data.fill(value[0]); // memset
        } else {
            // Write one element, then double the filled prefix with memcpy.
            data[..value.len()].copy_from_slice(value);
            let mut done = value.len();
            while done < n {
                let k = done.min(n - done);
                data.copy_within(..k, done);
                done += k;
            }
        }
        self.touch_write_time();
        Ok(())
    }

    /// Sets every element to `value`; `T` must be the array's dtype.
    pub fn fill<T: Element>(&mut self, value: T) -> Result<()> {
        self.check_dtype::<T>()?;
        // SAFETY: T is plain old data without padding (Element contract).
        let bytes = unsafe {
            std::slice::from_raw_parts((&value as *const T).cast::<u8>(), size_of::<T>())
        };
        self.fill_bytes(bytes)
    }

    /// Records the current time as the last write (v1 only; no-op otherwise).
    pub fn touch_write_time(&self) {
        if let (SegmentFormat::V1 { .. }, false) = (self.format, self.readonly) {
            // SAFETY: v1 mappings are at least HEADER_BYTES long and page aligned, so
            // WRITE_NS is in bounds and 8-aligned; it is only accessed atomically.
            let w = unsafe { &*(self.map.as_ptr().add(off::WRITE_NS) as *const AtomicI64) };
            w.store(sys::now_ns(), Ordering::Relaxed);
        }
    }

    /// `msync(2)` over the whole mapping; `mode` is a combination of [`ms`] values.
    pub fn msync(&self, mode: i32) -> Result<()> {
        let known = ms::ASYNC | ms::SYNC | ms::INVALIDATE;
        if mode & !known != 0 || (mode & ms::ASYNC != 0 && mode & ms::SYNC != 0) {
            return Err(Error::invalid(format!(
                "{}: msync flags {mode:#x}: use SA_MS_ASYNC or SA_MS_SYNC, optionally with SA_MS_INVALIDATE",
                self.name
            )));
        }
        let mut f = 0;
        if mode & ms::ASYNC != 0 {
            f |= libc::MS_ASYNC;
        }
        if mode & ms::SYNC != 0 {
            f |= libc::MS_SYNC;
        }
        if mode & ms::INVALIDATE != 0 {
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
    /// [`ErrorKind::NoSpace`] or [`ErrorKind::Permission`] with the limit in the message.
    pub fn mlock(&self) -> Result<()> {
        let (ptr, len) = self.data_range();
        // SAFETY: the range lies inside our live mapping.
        if len > 0 && unsafe { libc::mlock(ptr, len) } != 0 {
            let err = io::Error::last_os_error();
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
    /// the last one. Files that are not arrays are refused with [`ErrorKind::Format`],
    /// so a typo cannot delete somebody else's segment.
    pub fn delete(name: &str) -> Result<()> {
        let name = ArrayName::parse(name)?;
        let no_such = |e: io::Error| {
            if e.raw_os_error() == Some(libc::ENOENT) {
                Error::os(format!("{name}: no such array"), e)
            } else {
                Error::os(format!("{name}: delete"), e)
            }
        };
        match sys::open(&name, libc::O_RDONLY | libc::O_NONBLOCK, 0) {
            Ok(f) => {
                if !crate::list::looks_like_array(&f).map_err(&no_such)? {
                    return Err(Error::format(format!(
                        "{name}: not an ndshm or SharedArray segment; refusing to delete it"
                    )));
                }
            }
            // Unreadable but present: unlinking needs only directory permission.
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => {}
            Err(e) => return Err(no_such(e)),
        }
        sys::unlink(&name).map_err(no_such)
    }
}

/// Removes a half-made array on drop unless kept.
struct Created<'a> {
    name: &'a ArrayName,
    keep: bool,
}

impl Created<'_> {
    fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for Created<'_> {
    fn drop(&mut self) {
        if !self.keep {
            let _ = sys::unlink(self.name);
        }
    }
}

fn create_exclusive(name: &ArrayName, mode: u32, force: bool) -> Result<File> {
    let oflag = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL;
    // With force, a racing creator can take the name between our unlink and our open;
    // retry a few times, then report it.
    for _ in 0..4 {
        match sys::open(name, oflag, mode) {
            Ok(f) => return Ok(f),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) && force => {
                if let Ok(old) = sys::open(name, libc::O_RDONLY | libc::O_NONBLOCK, 0) {
                    if !crate::list::looks_like_array(&old).unwrap_or(true) {
                        return Err(Error::new(
                            ErrorKind::Exists,
                            format!(
                                "{name}: exists and is not an array; SA_FORCE replaces arrays only"
                            ),
                        ));
                    }
                }
                match sys::unlink(name) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                    Err(e) => return Err(Error::os(format!("{name}: replace"), e)),
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                return Err(Error::os(
                    format!("{name}: already exists (use SA_FORCE to replace it)"),
                    e,
                ));
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                return Err(Error::os(
                    format!("{name}: create: the directory does not exist"),
                    e,
                ));
            }
            Err(e) => return Err(Error::os(format!("{name}: create"), e)),
        }
    }
    Err(Error::new(
        ErrorKind::Exists,
        format!("{name}: another process keeps creating this name; gave up replacing it"),
    ))
}

fn no_space(name: &ArrayName, requested: u64, e: io::Error) -> Error {
    let dir = sys::space_dir(name);
    let free = match sys::space(&dir) {
        Ok((_, free)) => format!("{} free in {}", human_bytes(free), dir.display()),
        Err(_) => format!("free space in {} unknown", dir.display()),
    };
    Error::os(
        format!(
            "{name}: no space left: {} requested, {free}",
            human_bytes(requested)
        ),
        e,
    )
}

fn init_segment(
    name: &ArrayName,
    file: File,
    format: SegmentFormat,
    geometry: Geometry,
    total: u64,
    opts: &CreateOptions,
) -> Result<Array> {
    // The umask may have removed bits the caller asked for; set them exactly.
    sys::fchmod(&file, opts.share.mode()).map_err(ctx(name, "chmod"))?;
    let reserve = |file: &File| -> Result<()> {
        if opts.sparse {
            file.set_len(total).map_err(ctx(name, "resize"))
        } else {
            sys::fallocate(file, total).map_err(|e| match e.raw_os_error() {
                Some(libc::ENOSPC) | Some(libc::EFBIG) | Some(libc::EDQUOT) => {
                    no_space(name, total, e)
                }
                _ => Error::os(format!("{name}: reserve {}", human_bytes(total)), e),
            })
        }
    };
    let mut create_flags = 0u32;
    if geometry.order == Order::F {
        create_flags |= flags::ORDER_F;
    }
    match format {
        SegmentFormat::V1 { minor } => {
            // Header first, through the fd (no page fault), with state INITIALISING:
            // from this point an attacher sees "not ready" with our pid, never garbage.
            let header = Header {
                minor,
                page_size: sys::page_size() as u32,
                geometry: geometry.clone(),
                creator: sys::current_creator(),
                create_flags,
                created_ns: sys::now_ns(),
            };
            let mut page = vec![0u8; format::HEADER_BYTES];
            page[..CHECKED_BYTES].copy_from_slice(&header.encode());
            page[off::WRITE_NS..off::WRITE_NS + 8]
                .copy_from_slice(&header.created_ns.to_ne_bytes());
            sys::pwrite_all(&file, &page, 0).map_err(|e| match e.raw_os_error() {
                Some(libc::ENOSPC) => no_space(name, total, e),
                _ => Error::os(format!("{name}: write header"), e),
            })?;
            reserve(&file)?;
        }
        SegmentFormat::SharedArray { .. } => {
            reserve(&file)?;
            let t = format::sharedarray_encode(&geometry);
            sys::pwrite_all(&file, &t, geometry.nbytes)
                .map_err(ctx(name, "write SharedArray trailer"))?;
        }
    }
    let mut mo = MmapOptions::new();
    mo.len(total as usize);
    if opts.populate {
        mo.populate();
    }
    let map = mo.map_raw(&file).map_err(ctx(name, "mmap"))?;
    if opts.hugepages {
        advise_hugepages(&map, geometry.data_offset as usize);
    }
    let arr = Array {
        name: name.clone(),
        map,
        format,
        geometry,
        readonly: false,
    };
    if let SegmentFormat::V1 { .. } = format {
        // Publish through the fd, after everything else: the header went in with the
        // first pwrite and the reservation is complete, and a syscall orders both before
        // this store for every reader. Writing through the mapping instead would fault
        // the header page in (several µs on a VM) for nothing. The word goes from 0 to
        // 1, so no reader can see a torn value.
        sys::pwrite_all(&file, &format::STATE_READY.to_ne_bytes(), off::STATE as u64)
            .map_err(ctx(name, "publish"))?;
    }
    Ok(arr)
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

#[cfg(not(target_os = "linux"))]
fn advise_hugepages(_: &MmapRaw, _: usize) {}

/// Validates an open segment and maps it. The header is read with pread, not through
/// the mapping: touching the mapped header page would cost a page fault and a TLB flush
/// at unmap, more than the syscall.
fn map_existing(name: ArrayName, file: &File, opts: &AttachOptions) -> Result<Array> {
    let mut head = [0u8; off::ATTR_LEN + 4];
    let n = sys::pread_full(file, &mut head, 0).map_err(ctx(&name, "read"))?;
    let v1 = format::probe(&head[..n]) == Probe::V1;
    // fstat after reading a READY header: the creator sized the file before publishing.
    let size = file.metadata().map_err(ctx(&name, "stat"))?.len();
    let (format, geometry) = if v1 {
        let h = match decode_v1(&name, &head[..n]) {
            Err(e) if e.kind() == ErrorKind::Format => {
                // A copy racing the creator's first write could mix old and new bytes:
                // read once more before calling the segment corrupt.
                let n = sys::pread_full(file, &mut head, 0).map_err(ctx(&name, "read"))?;
                decode_v1(&name, &head[..n])?
            }
            r => r?,
        };
        (SegmentFormat::V1 { minor: h.minor }, h.geometry)
    } else {
        let tail_len = size.min(format::SA_TRAILER_NPY2 as u64) as usize;
        let mut tail = [0u8; format::SA_TRAILER_NPY2];
        let got = sys::pread_full(file, &mut tail[..tail_len], size - tail_len as u64)
            .map_err(ctx(&name, "read"))?;
        match format::sharedarray_decode(&tail[..got], size) {
            Some(r) => {
                let (g, maxdims) = r.map_err(|e| e.context(&name))?;
                (SegmentFormat::SharedArray { maxdims }, g)
            }
            None if format::probe(&head[..n]) == Probe::Empty => {
                let why = if size == 0 {
                    "the segment is empty (its creator has not sized it yet)"
                } else {
                    "the header has not been written yet"
                };
                return Err(Error::new(
                    ErrorKind::NotReady,
                    format!("{name}: not ready: {why}"),
                ));
            }
            None => {
                return Err(Error::format(format!(
                    "{name}: not an ndshm or SharedArray segment"
                )));
            }
        }
    };
    geometry.check_fits(size).map_err(|e| e.context(&name))?;
    if size > isize::MAX as u64 {
        return Err(Error::format(format!(
            "{name}: file too large to map ({size} bytes)"
        )));
    }
    let mut mo = MmapOptions::new();
    mo.len(size as usize);
    if opts.populate {
        mo.populate();
    }
    let map = if opts.readonly {
        mo.map_raw_read_only(file)
    } else {
        mo.map_raw(file)
    }
    .map_err(ctx(&name, "mmap"))?;
    Ok(Array {
        name,
        map,
        format,
        geometry,
        readonly: opts.readonly,
    })
}

/// Validates a v1 header read from a segment (`head`: its first bytes).
fn decode_v1(name: &ArrayName, head: &[u8]) -> Result<Header> {
    if head.len() < off::ATTR_LEN + 4 {
        return Err(Error::format(format!(
            "{name}: truncated segment ({} bytes, the header alone needs {})",
            head.len(),
            format::HEADER_BYTES
        )));
    }
    let st = u32::from_ne_bytes(head[off::STATE..off::STATE + 4].try_into().unwrap());
    if st == format::STATE_INITIALISING {
        return Err(not_ready(name, head));
    }
    if st != format::STATE_READY {
        return Err(Error::format(format!("{name}: unknown header state {st}")));
    }
    Header::decode(&head[..CHECKED_BYTES]).map_err(|e| e.context(name))
}

fn not_ready(name: &ArrayName, head: &[u8]) -> Error {
    let who = match Header::decode(head) {
        Ok(h) => match sys::creator_alive(&h.creator) {
            Some(false) => format!(
                "its creator (pid {}) died before finishing it; remove it with sa_delete",
                h.creator.pid
            ),
            _ => format!(
                "its creator (pid {}) is still initialising it",
                h.creator.pid
            ),
        },
        Err(_) => "its creator is still writing the header".to_string(),
    };
    Error::new(ErrorKind::NotReady, format!("{name}: not ready: {who}"))
}
