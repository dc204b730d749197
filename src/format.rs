//! The segment formats, as pure functions over bytes: ndshm v1 (a fixed header page,
//! attributes, then page-aligned data) and SharedArray 3.x (data at offset 0, a packed
//! trailer at the end). Nothing here makes a system call, so it can be fuzzed and run
//! under miri. docs/FORMAT.md describes the same layout byte by byte.
//!
//! Everything read from a segment is untrusted: every size is checked with overflow-
//! checked arithmetic against the real file size before anyone forms a pointer.

use crate::dtype::Dtype;
use crate::error::{Error, ErrorKind, Result};

/// Magic at offset 0 of a v1 segment.
pub const MAGIC: [u8; 8] = *b"NDSHMARR";
/// Format major version written and read by this library.
pub const VERSION_MAJOR: u16 = 1;
/// Format minor version written by this library (1: the creator's PID namespace; 2: the
/// shadow header, and a capacity that may grow).
pub const VERSION_MINOR: u16 = 2;
/// Written in native byte order; reads as 0x04030201 on a machine of the other order.
pub const BYTE_ORDER_TAG: u32 = 0x0102_0304;
/// Size of the fixed header region (the first page of 4 KiB).
pub const HEADER_BYTES: usize = 4096;
/// The checksummed part of the header: identity and geometry.
pub const CHECKED_BYTES: usize = 1024;
/// Offset of the shadow header (v1.2): a copy of `[0, CHECKED_BYTES)` written, complete,
/// before every rewrite of the header, so that at every instant the header or its
/// shadow is valid (a writer killed in the middle of a rewrite leaves a readable array).
pub const SHADOW_OFFSET: usize = 2048;
/// Offset of the attribute area.
pub const ATTR_OFFSET: usize = 4096;
/// Size of the attribute area.
pub const ATTR_CAPACITY: usize = 4096;
/// Smallest data offset: header page plus attribute page.
pub const MIN_DATA_OFFSET: usize = ATTR_OFFSET + ATTR_CAPACITY;
/// Largest number of dimensions.
pub const MAX_NDIM: usize = 32;
/// Longest host name stored in a header, in bytes (the field is 64 bytes, NUL padded).
pub const MAX_HOSTNAME: usize = 63;

/// Byte offsets of the v1 header fields (see docs/FORMAT.md).
pub mod off {
    /// `u8[8]` magic.
    pub const MAGIC: usize = 0;
    /// `u16` major version.
    pub const MAJOR: usize = 8;
    /// `u16` minor version.
    pub const MINOR: usize = 10;
    /// `u32` byte-order tag.
    pub const BYTE_ORDER: usize = 12;
    /// `u32` size of the fixed header region.
    pub const HEADER_BYTES: usize = 16;
    /// `u32` page size of the creating machine.
    pub const PAGE_SIZE: usize = 20;
    /// `u64` offset of the attribute area.
    pub const ATTR_OFFSET: usize = 24;
    /// `u64` size of the attribute area.
    pub const ATTR_CAPACITY: usize = 32;
    /// `u64` offset of the data.
    pub const DATA_OFFSET: usize = 40;
    /// `u64` bytes reserved for data.
    pub const CAPACITY: usize = 48;
    /// `u64` bytes of data in use.
    pub const NBYTES: usize = 56;
    /// `i32` dtype code.
    pub const DTYPE: usize = 64;
    /// `u32` item size.
    pub const ITEMSIZE: usize = 68;
    /// `char[8]` numpy type string, NUL padded.
    pub const DTYPE_STR: usize = 72;
    /// `u32` order: 0 C, 1 Fortran.
    pub const ORDER: usize = 80;
    /// `u32` number of dimensions.
    pub const NDIM: usize = 84;
    /// `i64[32]` shape.
    pub const SHAPE: usize = 88;
    /// `i32` creator pid.
    pub const CREATOR_PID: usize = 344;
    /// `u32` flags given to create.
    pub const CREATE_FLAGS: usize = 348;
    /// `u64` creator start time, clock ticks after boot.
    pub const CREATOR_START: usize = 352;
    /// `u8[16]` boot id of the creating machine.
    pub const BOOT_ID: usize = 360;
    /// `char[64]` host name of the creating machine, NUL padded.
    pub const HOSTNAME: usize = 376;
    /// `i64` creation time, ns since the Unix epoch.
    pub const CREATED_NS: usize = 440;
    /// `u32` the creator's PID namespace (inode of /proc/self/ns/pid, low 32 bits; 0 if
    /// unknown or written by v1.0). Added in v1.1.
    pub const CREATOR_PIDNS: usize = 448;
    /// `u32` CRC-32 of bytes `[0, 1020)`.
    pub const CHECKSUM: usize = 1020;
    /// `u32` state word (atomic).
    pub const STATE: usize = 1024;
    /// `u32` published version (atomic; a futex word).
    pub const VERSION: usize = 1028;
    /// `u64` snapshot sequence (atomic).
    pub const SEQ: usize = 1032;
    /// `u32` lock word (atomic).
    pub const LOCK: usize = 1040;
    /// `u32` lock owner pid (atomic).
    pub const LOCK_OWNER: usize = 1044;
    /// `i64` last write time, ns since the Unix epoch (atomic).
    pub const WRITE_NS: usize = 1048;
    /// `u32` bytes of attribute text in use (atomic).
    pub const ATTR_LEN: usize = 1056;
    /// `u32` PID namespace of the lock holder (atomic; see src/sync.rs).
    pub const LOCK_NS: usize = 1060;
    /// `u64` start time of the lock holder's thread, clock ticks after boot (atomic).
    pub const LOCK_START: usize = 1064;
    /// `u32` first 4 bytes of the lock holder's boot id (atomic).
    pub const LOCK_BOOT: usize = 1072;
    /// `u32` flags (atomic): bit 0 set once the array was replaced under its name.
    pub const LIVE_FLAGS: usize = 1076;
    /// `u32` geometry generation (atomic): incremented by every shape change.
    pub const SHAPE_GEN: usize = 1080;
}

/// Header state: the creator is still writing it.
pub const STATE_INITIALISING: u32 = 0;
/// Header state: complete; attachers may use it.
pub const STATE_READY: u32 = 1;

/// Storage order of the elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(i32)]
pub enum Order {
    /// Row-major: the last index varies fastest (numpy's default).
    #[default]
    C = 0,
    /// Column-major: the first index varies fastest (Fortran, Julia).
    F = 1,
}

/// Which layout a segment has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentFormat {
    /// ndshm v1 with this minor version.
    V1 {
        /// Minor version found in the header.
        minor: u16,
    },
    /// SharedArray 3.x, whose trailer layout depends on the numpy it was built against.
    SharedArray(SharedArrayAbi),
    /// A numpy `.npy` file mapped in place (`npy://PATH`): data after its header.
    Npy,
}

/// The numpy ABI a SharedArray extension was built against, which fixes its trailer:
/// `NPY_MAXDIMS` is 32 under numpy 1 (a 292-byte trailer) and 64 under numpy 2 (548).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SharedArrayAbi {
    /// Built against numpy 1.x.
    Numpy1,
    /// Built against numpy 2.x (what ndshm writes).
    Numpy2,
}

impl SharedArrayAbi {
    /// `NPY_MAXDIMS` of that numpy: the number of `dims` slots in the trailer.
    pub fn maxdims(self) -> usize {
        match self {
            SharedArrayAbi::Numpy1 => 32,
            SharedArrayAbi::Numpy2 => 64,
        }
    }

    /// Size of the trailer in bytes.
    pub fn trailer_bytes(self) -> usize {
        36 + 8 * self.maxdims()
    }
}

/// Whether a v1 segment is ready for use (the `state` word).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Its creator is still filling it (or died doing so).
    Initialising,
    /// Complete.
    Ready,
}

impl State {
    /// The state for a `state` word read from a segment; `None` for an invalid value.
    pub fn from_word(w: u32) -> Option<State> {
        match w {
            STATE_INITIALISING => Some(State::Initialising),
            STATE_READY => Some(State::Ready),
            _ => None,
        }
    }

    /// The `state` word for this state.
    pub fn word(self) -> u32 {
        match self {
            State::Initialising => STATE_INITIALISING,
            State::Ready => STATE_READY,
        }
    }
}

/// Who created a v1 segment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Creator {
    /// Process id.
    pub pid: i32,
    /// Start time of that process in clock ticks after boot (0 when unknown); with the
    /// boot id it tells a live creator from a reused pid.
    pub start_ticks: u64,
    /// The kernel's boot id (0 when unknown).
    pub boot_id: [u8; 16],
    /// Host name, at most [`MAX_HOSTNAME`] bytes.
    pub hostname: String,
    /// The PID namespace the pid belongs to (0 when unknown): a pid means nothing in
    /// another namespace, e.g. another container sharing /dev/shm.
    pub pid_ns: u32,
}

/// The element layout of an array in any supported format: what attach validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    /// Element type.
    pub dtype: Dtype,
    /// Storage order.
    pub order: Order,
    /// Shape; its length is the number of dimensions (0 to 32).
    pub shape: Vec<i64>,
    /// Bytes in use: itemsize × product of the shape.
    pub nbytes: u64,
    /// Bytes reserved for data (≥ nbytes).
    pub capacity: u64,
    /// Offset of the first element from the start of the segment.
    pub data_offset: u64,
}

/// A decoded v1 header: geometry plus identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Minor version.
    pub minor: u16,
    /// Page size of the creating machine.
    pub page_size: u32,
    /// Element layout.
    pub geometry: Geometry,
    /// Creator.
    pub creator: Creator,
    /// Flags given to create (informational).
    pub create_flags: u32,
    /// Creation time, ns since the Unix epoch.
    pub created_ns: i64,
}

/// Checked product `itemsize × Π shape`, rejecting negative dimensions and shapes
/// whose product of *nonzero* dimensions times the item size exceeds `isize::MAX` (the
/// largest object Rust, C and numpy can index). numpy refuses such shapes even when a
/// zero dimension makes the array empty, so ndshm does too: every shape it accepts has
/// element counts and strides that fit in an `isize`.
pub fn nbytes_for(shape: &[i64], itemsize: usize) -> Result<u64> {
    if itemsize as u64 > isize::MAX as u64 {
        return Err(Error::invalid(format!("item size {itemsize} is too large")));
    }
    let mut n: u64 = itemsize as u64;
    let mut any_zero = false;
    for (i, &d) in shape.iter().enumerate() {
        if d < 0 {
            return Err(Error::invalid(format!(
                "dimension {i} is negative ({d}) in shape {shape:?}"
            )));
        }
        if d == 0 {
            any_zero = true;
            continue;
        }
        match n.checked_mul(d as u64) {
            Some(v) if v <= isize::MAX as u64 => n = v,
            _ => {
                let why = if any_zero || shape.contains(&0) {
                    "the product of its nonzero dimensions overflows, which numpy cannot \
                     represent even for an empty array"
                } else {
                    "the byte size overflows"
                };
                return Err(Error::invalid(format!(
                    "shape {shape:?} with {itemsize}-byte items is too large: {why}"
                )));
            }
        }
    }
    Ok(if any_zero { 0 } else { n })
}

/// Checks an ndim given by a caller.
pub fn check_ndim(ndim: i64) -> Result<usize> {
    if !(0..=MAX_NDIM as i64).contains(&ndim) {
        return Err(Error::invalid(format!(
            "ndim {ndim} is out of range: must be 0 to {MAX_NDIM}"
        )));
    }
    Ok(ndim as usize)
}

/// Rounds `n` up to a multiple of `align` (a power of two), checked.
pub fn round_up(n: u64, align: u64) -> Option<u64> {
    debug_assert!(align.is_power_of_two());
    Some(n.checked_add(align - 1)? & !(align - 1))
}

/// The data offset for a new v1 segment on a machine with this page size.
pub fn data_offset_for(page_size: usize) -> u64 {
    round_up(MIN_DATA_OFFSET as u64, page_size.max(4096) as u64).unwrap_or(u64::MAX)
}

fn rd_u16(b: &[u8], o: usize) -> u16 {
    u16::from_ne_bytes([b[o], b[o + 1]])
}
fn rd_u32(b: &[u8], o: usize) -> u32 {
    u32::from_ne_bytes(b[o..o + 4].try_into().unwrap())
}
fn rd_i32(b: &[u8], o: usize) -> i32 {
    i32::from_ne_bytes(b[o..o + 4].try_into().unwrap())
}
fn rd_u64(b: &[u8], o: usize) -> u64 {
    u64::from_ne_bytes(b[o..o + 8].try_into().unwrap())
}
fn rd_i64(b: &[u8], o: usize) -> i64 {
    i64::from_ne_bytes(b[o..o + 8].try_into().unwrap())
}
fn wr(b: &mut [u8], o: usize, v: &[u8]) {
    b[o..o + v.len()].copy_from_slice(v);
}

fn nul_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Sets the length of axis 0 (`shape[0]`), the data size and the capacity in encoded
/// header bytes `b` (of an array with at least one dimension) and updates the checksum.
/// Every other byte stays as it is, also fields of newer minor versions this library
/// does not know: the growth path rewrites headers this way (src/grow.rs).
pub fn patch_length(b: &mut [u8; CHECKED_BYTES], len0: i64, nbytes: u64, capacity: u64) {
    wr(b, off::SHAPE, &len0.to_ne_bytes());
    wr(b, off::NBYTES, &nbytes.to_ne_bytes());
    wr(b, off::CAPACITY, &capacity.to_ne_bytes());
    let crc = header_checksum(b);
    wr(b, off::CHECKSUM, &crc.to_ne_bytes());
}

/// CRC-32 (IEEE, as zlib.crc32) of the checksummed bytes `[0, 1020)`.
pub fn header_checksum(b: &[u8]) -> u32 {
    crc32fast::hash(&b[..off::CHECKSUM])
}

/// True when `head` (a file's first bytes, any length) starts with the v1 magic.
pub fn is_v1(head: &[u8]) -> bool {
    head.len() >= MAGIC.len() && head[..MAGIC.len()] == MAGIC
}

impl Header {
    /// Encodes the checksummed part `[0, 1024)` of a v1 header.
    pub fn encode(&self) -> [u8; CHECKED_BYTES] {
        let mut b = [0u8; CHECKED_BYTES];
        let g = &self.geometry;
        wr(&mut b, off::MAGIC, &MAGIC);
        wr(&mut b, off::MAJOR, &VERSION_MAJOR.to_ne_bytes());
        wr(&mut b, off::MINOR, &self.minor.to_ne_bytes());
        wr(&mut b, off::BYTE_ORDER, &BYTE_ORDER_TAG.to_ne_bytes());
        wr(
            &mut b,
            off::HEADER_BYTES,
            &(HEADER_BYTES as u32).to_ne_bytes(),
        );
        wr(&mut b, off::PAGE_SIZE, &self.page_size.to_ne_bytes());
        wr(
            &mut b,
            off::ATTR_OFFSET,
            &(ATTR_OFFSET as u64).to_ne_bytes(),
        );
        wr(
            &mut b,
            off::ATTR_CAPACITY,
            &(ATTR_CAPACITY as u64).to_ne_bytes(),
        );
        wr(&mut b, off::DATA_OFFSET, &g.data_offset.to_ne_bytes());
        wr(&mut b, off::CAPACITY, &g.capacity.to_ne_bytes());
        wr(&mut b, off::NBYTES, &g.nbytes.to_ne_bytes());
        wr(&mut b, off::DTYPE, &g.dtype.code().to_ne_bytes());
        wr(
            &mut b,
            off::ITEMSIZE,
            &(g.dtype.itemsize() as u32).to_ne_bytes(),
        );
        wr(&mut b, off::DTYPE_STR, g.dtype.numpy_str().as_bytes());
        wr(&mut b, off::ORDER, &(g.order as u32).to_ne_bytes());
        wr(&mut b, off::NDIM, &(g.shape.len() as u32).to_ne_bytes());
        for (i, d) in g.shape.iter().enumerate() {
            wr(&mut b, off::SHAPE + 8 * i, &d.to_ne_bytes());
        }
        let c = &self.creator;
        wr(&mut b, off::CREATOR_PID, &c.pid.to_ne_bytes());
        wr(&mut b, off::CREATE_FLAGS, &self.create_flags.to_ne_bytes());
        wr(&mut b, off::CREATOR_START, &c.start_ticks.to_ne_bytes());
        wr(&mut b, off::BOOT_ID, &c.boot_id);
        let host = truncate_utf8(&c.hostname, MAX_HOSTNAME).as_bytes();
        wr(&mut b, off::HOSTNAME, host);
        wr(&mut b, off::CREATED_NS, &self.created_ns.to_ne_bytes());
        wr(&mut b, off::CREATOR_PIDNS, &c.pid_ns.to_ne_bytes());
        let crc = header_checksum(&b);
        wr(&mut b, off::CHECKSUM, &crc.to_ne_bytes());
        b
    }

    /// Decodes and validates the checksummed part of a v1 header. `b` must hold at least
    /// [`CHECKED_BYTES`] bytes. Sizes are checked against each other here and against
    /// the file by [`Geometry::check_fits`].
    pub fn decode(b: &[u8]) -> Result<Header> {
        HeaderView::decode(b).map(|h| h.to_header())
    }
}

/// A shape of at most [`MAX_NDIM`] dimensions and the rest of a [`Geometry`], without a
/// heap allocation: what the segment reader decodes into (a listing reads thousands of
/// headers), made a [`Geometry`] only where one is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GeometryView {
    pub dtype: Dtype,
    pub order: Order,
    pub ndim: usize,
    pub dims: [i64; MAX_NDIM],
    pub nbytes: u64,
    pub capacity: u64,
    pub data_offset: u64,
}

impl GeometryView {
    /// The shape (`ndim` dimensions).
    pub fn shape(&self) -> &[i64] {
        &self.dims[..self.ndim]
    }

    pub fn to_geometry(&self) -> Geometry {
        Geometry {
            dtype: self.dtype,
            order: self.order,
            shape: self.shape().to_vec(),
            nbytes: self.nbytes,
            capacity: self.capacity,
            data_offset: self.data_offset,
        }
    }

    /// As [`Geometry::check_fits`].
    pub fn check_fits(&self, file_size: u64) -> Result<()> {
        check_fits(self.data_offset, self.capacity, file_size)
    }
}

/// A [`Creator`] without a heap allocation (the host name in a fixed buffer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CreatorView {
    pub pid: i32,
    pub start_ticks: u64,
    pub boot_id: [u8; 16],
    host: [u8; MAX_HOSTNAME],
    host_len: usize,
    pub pid_ns: u32,
}

impl CreatorView {
    /// The host name: at most [`MAX_HOSTNAME`] bytes of UTF-8.
    pub fn hostname(&self) -> &str {
        // Only ever filled from a &str cut at a character boundary.
        std::str::from_utf8(&self.host[..self.host_len]).unwrap_or_default()
    }

    pub fn to_creator(&self) -> Creator {
        Creator {
            pid: self.pid,
            start_ticks: self.start_ticks,
            boot_id: self.boot_id,
            hostname: self.hostname().to_string(),
            pid_ns: self.pid_ns,
        }
    }
}

/// A decoded v1 header without a heap allocation (see [`GeometryView`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeaderView {
    pub minor: u16,
    pub page_size: u32,
    pub geometry: GeometryView,
    pub creator: CreatorView,
    pub create_flags: u32,
    pub created_ns: i64,
}

impl HeaderView {
    pub fn to_header(&self) -> Header {
        Header {
            minor: self.minor,
            page_size: self.page_size,
            geometry: self.geometry.to_geometry(),
            creator: self.creator.to_creator(),
            create_flags: self.create_flags,
            created_ns: self.created_ns,
        }
    }

    /// [`Header::decode`]'s validation (the one implementation of it).
    pub fn decode(b: &[u8]) -> Result<HeaderView> {
        if b.len() < CHECKED_BYTES {
            return Err(Error::format(format!(
                "truncated header: {} bytes, need {CHECKED_BYTES}",
                b.len()
            )));
        }
        if b[..8] != MAGIC {
            return Err(Error::format("not an ndshm segment (wrong magic)"));
        }
        let tag = rd_u32(b, off::BYTE_ORDER);
        if tag == BYTE_ORDER_TAG.swap_bytes() {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "the segment was written on a machine of the other byte order",
            ));
        }
        if tag != BYTE_ORDER_TAG {
            return Err(Error::format(format!("bad byte-order tag {tag:#010x}")));
        }
        let major = rd_u16(b, off::MAJOR);
        let minor = rd_u16(b, off::MINOR);
        if major > VERSION_MAJOR {
            return Err(Error::format(format!(
                "format version {major}.{minor} is newer than this library reads \
                 ({VERSION_MAJOR}.x): upgrade ndshm"
            )));
        }
        if major != VERSION_MAJOR {
            return Err(Error::format(format!(
                "unknown format version {major}.{minor}"
            )));
        }
        let stored = rd_u32(b, off::CHECKSUM);
        let crc = header_checksum(b);
        if stored != crc {
            return Err(Error::format(format!(
                "header checksum mismatch (stored {stored:#010x}, computed {crc:#010x}): \
                 the header is corrupt"
            )));
        }
        let bad = |what: String| Error::format(format!("corrupt header: {what}"));
        let header_bytes = rd_u32(b, off::HEADER_BYTES) as u64;
        let attr_offset = rd_u64(b, off::ATTR_OFFSET);
        let attr_capacity = rd_u64(b, off::ATTR_CAPACITY);
        let data_offset = rd_u64(b, off::DATA_OFFSET);
        // Fixed in every v1.x (minor versions add fields in reserved space only).
        if header_bytes != HEADER_BYTES as u64 {
            return Err(bad(format!(
                "header size {header_bytes} (v1: {HEADER_BYTES})"
            )));
        }
        if (attr_offset, attr_capacity) != (ATTR_OFFSET as u64, ATTR_CAPACITY as u64) {
            return Err(bad(format!(
                "attribute area {attr_offset}+{attr_capacity} (v1: {ATTR_OFFSET}+{ATTR_CAPACITY})"
            )));
        }
        if data_offset < MIN_DATA_OFFSET as u64 {
            return Err(bad(format!(
                "data offset {data_offset} overlaps the attribute area (at least {MIN_DATA_OFFSET})"
            )));
        }
        if data_offset % 4096 != 0 {
            return Err(bad(format!(
                "data offset {data_offset} is not page aligned"
            )));
        }
        let code = rd_i32(b, off::DTYPE);
        let dtype = Dtype::from_code(code).ok_or_else(|| bad(format!("dtype code {code}")))?;
        let itemsize = rd_u32(b, off::ITEMSIZE);
        if itemsize as usize != dtype.itemsize() {
            return Err(bad(format!("item size {itemsize} for {dtype}")));
        }
        let dstr = &b[off::DTYPE_STR..off::DTYPE_STR + 8];
        let dlen = dstr.iter().position(|&c| c == 0).unwrap_or(8);
        if &dstr[..dlen] != dtype.numpy_str().as_bytes() {
            return Err(bad(format!(
                "type string {:?} does not match dtype {dtype}",
                nul_str(dstr)
            )));
        }
        let order = match rd_u32(b, off::ORDER) {
            0 => Order::C,
            1 => Order::F,
            o => return Err(bad(format!("order {o}"))),
        };
        let ndim = rd_u32(b, off::NDIM);
        if ndim as usize > MAX_NDIM {
            return Err(bad(format!("ndim {ndim} (at most {MAX_NDIM})")));
        }
        let mut dims = [0i64; MAX_NDIM];
        for (i, d) in dims.iter_mut().enumerate().take(ndim as usize) {
            *d = rd_i64(b, off::SHAPE + 8 * i);
        }
        let shape = &dims[..ndim as usize];
        let nbytes = nbytes_for(shape, dtype.itemsize()).map_err(|e| bad(e.to_string()))?;
        let stored_nbytes = rd_u64(b, off::NBYTES);
        if stored_nbytes != nbytes {
            return Err(bad(format!(
                "data size {stored_nbytes} does not match shape {shape:?} of {dtype} ({nbytes})"
            )));
        }
        let capacity = rd_u64(b, off::CAPACITY);
        if capacity < nbytes {
            return Err(bad(format!("capacity {capacity} < data size {nbytes}")));
        }
        let mut boot_id = [0u8; 16];
        boot_id.copy_from_slice(&b[off::BOOT_ID..off::BOOT_ID + 16]);
        // Informational: at most MAX_HOSTNAME bytes of UTF-8 whatever the bytes say, so
        // that decoding what encode wrote gives the same header.
        let raw = &b[off::HOSTNAME..off::HOSTNAME + MAX_HOSTNAME + 1];
        let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
        let mut host = [0u8; MAX_HOSTNAME];
        let host_len = match std::str::from_utf8(&raw[..end]) {
            Ok(s) => copy_truncated(&mut host, s),
            Err(_) => copy_truncated(&mut host, &nul_str(raw)),
        };
        Ok(HeaderView {
            minor,
            page_size: rd_u32(b, off::PAGE_SIZE),
            geometry: GeometryView {
                dtype,
                order,
                ndim: ndim as usize,
                dims,
                nbytes,
                capacity,
                data_offset,
            },
            creator: CreatorView {
                pid: rd_i32(b, off::CREATOR_PID),
                start_ticks: rd_u64(b, off::CREATOR_START),
                boot_id,
                host,
                host_len,
                // v1.0 headers have zero here: unknown.
                pid_ns: rd_u32(b, off::CREATOR_PIDNS),
            },
            create_flags: rd_u32(b, off::CREATE_FLAGS),
            created_ns: rd_i64(b, off::CREATED_NS),
        })
    }
}

/// Copies the longest prefix of `s` that fits `dst` and ends on a character boundary;
/// returns its length.
fn copy_truncated(dst: &mut [u8; MAX_HOSTNAME], s: &str) -> usize {
    let t = truncate_utf8(s, MAX_HOSTNAME).as_bytes();
    dst[..t.len()].copy_from_slice(t);
    t.len()
}

fn check_fits(data_offset: u64, capacity: u64, file_size: u64) -> Result<()> {
    match data_offset.checked_add(capacity) {
        Some(end) if end <= file_size => Ok(()),
        _ => Err(Error::format(format!(
            "truncated segment: data {data_offset}+{capacity} bytes but the file has {file_size}"
        ))),
    }
}

impl Geometry {
    /// Checks that the data region lies inside a file of `file_size` bytes.
    pub fn check_fits(&self, file_size: u64) -> Result<()> {
        check_fits(self.data_offset, self.capacity, file_size)
    }

    /// Number of elements: `nbytes / itemsize`. `nbytes` was computed with checked
    /// arithmetic when the geometry was validated, so no product is formed here.
    pub fn len(&self) -> usize {
        match self.dtype.itemsize() {
            0 => 0,
            s => (self.nbytes / s as u64) as usize,
        }
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// SharedArray's trailer magic: "[SharedArray]" NUL-padded to 16 bytes.
pub const SA_MAGIC: [u8; 16] = *b"[SharedArray]\0\0\0";
/// Trailer size of a SharedArray built against numpy 1 (`NPY_MAXDIMS` 32).
pub const SA_TRAILER_NPY1: usize = 36 + 8 * 32;
/// Trailer size of a SharedArray built against numpy 2 (`NPY_MAXDIMS` 64): the largest.
pub const SA_TRAILER_NPY2: usize = 36 + 8 * 64;

/// Looks for a SharedArray trailer at the end of a file. `tail` holds the last
/// `min(file_size, 548)` bytes. Returns `None` when neither trailer layout's magic is
/// there, else the validated geometry (or the reason it is unusable).
pub fn sharedarray_decode(
    tail: &[u8],
    file_size: u64,
) -> Option<Result<(Geometry, SharedArrayAbi)>> {
    sharedarray_decode_view(tail, file_size).map(|r| r.map(|(g, abi)| (g.to_geometry(), abi)))
}

/// [`sharedarray_decode`] without a heap allocation.
pub(crate) fn sharedarray_decode_view(
    tail: &[u8],
    file_size: u64,
) -> Option<Result<(GeometryView, SharedArrayAbi)>> {
    let at = |abi: SharedArrayAbi| {
        let o = tail.len().checked_sub(abi.trailer_bytes())?;
        Some(&tail[o..]).filter(|t| t[..16] == SA_MAGIC)
    };
    let (t, abi) = if let Some(t) = at(SharedArrayAbi::Numpy2) {
        (t, SharedArrayAbi::Numpy2)
    } else if let Some(t) = at(SharedArrayAbi::Numpy1) {
        (t, SharedArrayAbi::Numpy1)
    } else {
        return None;
    };
    Some(sharedarray_fields(t, abi, file_size).map(|g| (g, abi)))
}

fn sharedarray_fields(t: &[u8], abi: SharedArrayAbi, file_size: u64) -> Result<GeometryView> {
    let maxdims = abi.maxdims();
    let size = rd_u64(t, 16);
    let typenum = rd_i32(t, 24);
    let itemsize = rd_i32(t, 28);
    let ndims = rd_i32(t, 32);
    let bad = |what: String| Error::format(format!("corrupt SharedArray trailer: {what}"));
    if ndims < 0 || ndims as usize > maxdims {
        return Err(bad(format!("ndims {ndims} (at most {maxdims})")));
    }
    if ndims as usize > MAX_NDIM {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "SharedArray segment has {ndims} dimensions; ndshm supports at most {MAX_NDIM}"
            ),
        ));
    }
    let dtype = Dtype::from_numpy_typenum(typenum, itemsize).ok_or_else(|| {
        Error::new(
            ErrorKind::Unsupported,
            format!(
                "SharedArray segment has numpy type number {typenum} with item size {itemsize}, \
                 which ndshm does not support"
            ),
        )
    })?;
    let mut dims = [0i64; MAX_NDIM];
    for (i, d) in dims.iter_mut().enumerate().take(ndims as usize) {
        *d = rd_i64(t, 36 + 8 * i);
    }
    let shape = &dims[..ndims as usize];
    let nbytes = nbytes_for(shape, dtype.itemsize()).map_err(|e| bad(e.to_string()))?;
    if nbytes != size {
        return Err(bad(format!(
            "size {size} does not match dims {shape:?} of {dtype} ({nbytes} bytes)"
        )));
    }
    let trailer = abi.trailer_bytes() as u64;
    match size.checked_add(trailer) {
        Some(end) if end <= file_size => {}
        _ => {
            return Err(bad(format!(
                "{size} data bytes + {trailer}-byte trailer exceed the file ({file_size} bytes)"
            )));
        }
    }
    Ok(GeometryView {
        dtype,
        order: Order::C,
        ndim: ndims as usize,
        dims,
        nbytes,
        capacity: nbytes,
        data_offset: 0,
    })
}

/// Encodes a numpy-2 (548-byte) SharedArray trailer for `geometry` (C order).
pub fn sharedarray_encode(g: &Geometry) -> [u8; SA_TRAILER_NPY2] {
    let mut t = [0u8; SA_TRAILER_NPY2];
    wr(&mut t, 0, &SA_MAGIC);
    wr(&mut t, 16, &g.nbytes.to_ne_bytes());
    wr(&mut t, 24, &g.dtype.numpy_typenum().to_ne_bytes());
    wr(&mut t, 28, &(g.dtype.itemsize() as i32).to_ne_bytes());
    wr(&mut t, 32, &(g.shape.len() as i32).to_ne_bytes());
    for (i, d) in g.shape.iter().enumerate() {
        wr(&mut t, 36 + 8 * i, &d.to_ne_bytes());
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            minor: VERSION_MINOR,
            page_size: 4096,
            geometry: Geometry {
                dtype: Dtype::Float64,
                order: Order::F,
                shape: vec![3, 4],
                nbytes: 96,
                capacity: 96,
                data_offset: 8192,
            },
            creator: Creator {
                pid: 42,
                start_ticks: 7,
                boot_id: [1; 16],
                hostname: "node1".into(),
                pid_ns: 4026531836,
            },
            create_flags: 1,
            created_ns: 123,
        }
    }

    #[test]
    fn patched_lengths_decode_and_keep_other_bytes() {
        let g = Geometry {
            dtype: Dtype::Float64,
            order: Order::C,
            shape: vec![2, 3],
            nbytes: 48,
            capacity: 4096,
            data_offset: 8192,
        };
        let mut h = sample();
        h.geometry = g;
        let mut b = h.encode();
        b[600] = 0x5a; // a field of a newer minor version, unknown here
        let crc = header_checksum(&b);
        wr(&mut b, off::CHECKSUM, &crc.to_ne_bytes());
        patch_length(&mut b, 7, 7 * 24, 8192);
        let d = Header::decode(&b).unwrap();
        assert_eq!(d.geometry.shape, vec![7, 3]);
        assert_eq!((d.geometry.nbytes, d.geometry.capacity), (168, 8192));
        assert_eq!(b[600], 0x5a);
        // A length the data size does not match is caught by decode.
        patch_length(&mut b, 8, 7 * 24, 8192);
        assert!(Header::decode(&b).is_err());
    }

    #[test]
    fn round_trip() {
        let h = sample();
        let b = h.encode();
        assert_eq!(Header::decode(&b).unwrap(), h);
        assert!(is_v1(&b));
    }

    fn corrupt(f: impl FnOnce(&mut [u8]), fix_crc: bool) -> Error {
        let mut b = sample().encode();
        f(&mut b);
        if fix_crc {
            let crc = header_checksum(&b);
            b[off::CHECKSUM..off::CHECKSUM + 4].copy_from_slice(&crc.to_ne_bytes());
        }
        Header::decode(&b).unwrap_err()
    }

    #[test]
    fn rejects_corruption() {
        let e = corrupt(|b| b[off::SHAPE] ^= 1, false);
        assert!(e.message().contains("checksum"), "{e}");
        let e = corrupt(|b| wr(b, off::NDIM, &1000u32.to_ne_bytes()), true);
        assert!(e.message().contains("ndim 1000"), "{e}");
        let e = corrupt(|b| wr(b, off::SHAPE, &(-3i64).to_ne_bytes()), true);
        assert!(e.message().contains("negative"), "{e}");
        let e = corrupt(|b| wr(b, off::MAJOR, &2u16.to_ne_bytes()), true);
        assert!(e.message().contains("newer"), "{e}");
        let e = corrupt(|b| wr(b, off::DTYPE, &99i32.to_ne_bytes()), true);
        assert!(e.message().contains("dtype code 99"), "{e}");
        let e = corrupt(|b| wr(b, off::CAPACITY, &8u64.to_ne_bytes()), true);
        assert!(e.message().contains("capacity"), "{e}");
        let e = corrupt(|b| wr(b, off::SHAPE, &i64::MAX.to_ne_bytes()), true);
        assert!(e.message().contains("overflow"), "{e}");
        let e = corrupt(|b| wr(b, off::DATA_OFFSET, &8193u64.to_ne_bytes()), true);
        assert!(e.message().contains("aligned"), "{e}");
        // Found by the fuzzer: attribute area inside the data.
        let e = corrupt(
            |b| {
                wr(b, off::ATTR_CAPACITY, &0u64.to_ne_bytes());
                wr(b, off::DATA_OFFSET, &4096u64.to_ne_bytes());
            },
            true,
        );
        assert!(e.message().contains("attribute area"), "{e}");
        let e = corrupt(|b| wr(b, off::DATA_OFFSET, &4096u64.to_ne_bytes()), true);
        assert!(e.message().contains("overlaps"), "{e}");
        let e = corrupt(
            |b| {
                wr(
                    b,
                    off::BYTE_ORDER,
                    &BYTE_ORDER_TAG.swap_bytes().to_ne_bytes(),
                )
            },
            true,
        );
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert_eq!(corrupt(|b| b[0] = b'X', false).kind(), ErrorKind::Format);
    }

    /// Found by the fuzzer: host names that are not UTF-8 or fill the whole field.
    #[test]
    fn hostname_round_trips() {
        let mut not_utf8 = vec![b'h'; 64];
        not_utf8[12] = 0xff;
        not_utf8[63] = 0;
        for host in [not_utf8, vec![b'h'; 64]] {
            let mut b = sample().encode();
            b[off::HOSTNAME..off::HOSTNAME + 64].copy_from_slice(&host);
            let crc = header_checksum(&b);
            b[off::CHECKSUM..off::CHECKSUM + 4].copy_from_slice(&crc.to_ne_bytes());
            let h = Header::decode(&b).unwrap();
            assert!(h.creator.hostname.len() <= MAX_HOSTNAME);
            assert_eq!(Header::decode(&h.encode()).unwrap(), h);
        }
    }

    #[test]
    fn fits() {
        let g = sample().geometry;
        assert!(g.check_fits(8192 + 96).is_ok());
        assert!(g.check_fits(8192 + 95).is_err());
        let huge = Geometry {
            data_offset: u64::MAX,
            ..g
        };
        assert!(huge.check_fits(u64::MAX).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(nbytes_for(&[], 8).unwrap(), 8);
        assert_eq!(nbytes_for(&[0, 1 << 40], 8).unwrap(), 0);
        // Empty, but numpy cannot represent it: refused, never a panic or a wrap.
        assert!(nbytes_for(&[0, i64::MAX], 8).is_err());
        assert!(nbytes_for(&[1 << 40, 1 << 40, 0], 8).is_err());
        assert!(nbytes_for(&[0, 1 << 62, 1 << 62], 1).is_err());
        assert!(nbytes_for(&[i64::MAX, 2], 1).is_err());
        assert!(nbytes_for(&[1 << 62], 2).is_err());
        assert!(nbytes_for(&[-1], 1).is_err());
        // Found by the fuzzer: the item size alone can exceed isize::MAX.
        assert!(nbytes_for(&[], usize::MAX / 2 + 2).is_err());
        assert!(check_ndim(33).is_err());
        assert!(check_ndim(-1).is_err());
        assert_eq!(data_offset_for(4096), 8192);
        assert_eq!(data_offset_for(65536), 65536);
        assert_eq!(data_offset_for(16384), 16384);
    }

    #[test]
    fn sharedarray_both_layouts() {
        let g = Geometry {
            dtype: Dtype::Int32,
            order: Order::C,
            shape: vec![3, 4],
            nbytes: 48,
            capacity: 48,
            data_offset: 0,
        };
        let t2 = sharedarray_encode(&g);
        let mut file = vec![0u8; 48];
        file.extend_from_slice(&t2);
        let (g2, m) = sharedarray_decode(&file, file.len() as u64)
            .unwrap()
            .unwrap();
        assert_eq!((g2, m), (g.clone(), SharedArrayAbi::Numpy2));
        // numpy-1 layout: same fields, 32 dims.
        let mut file1 = vec![0u8; 48];
        file1.extend_from_slice(&t2[..SA_TRAILER_NPY1]);
        let (g1, m) = sharedarray_decode(&file1, file1.len() as u64)
            .unwrap()
            .unwrap();
        assert_eq!((g1, m), (g, SharedArrayAbi::Numpy1));
        // Trailer claiming more data than the file holds.
        let short = &file[20..];
        assert!(
            sharedarray_decode(short, short.len() as u64)
                .unwrap()
                .is_err()
        );
        assert!(sharedarray_decode(&[0u8; 100], 100).is_none());
    }
}
