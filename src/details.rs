//! Everything an array's header says, and its attribute text, read through the one
//! segment reader without mapping the data: what `ndshm info` shows.

use std::fs::File;
use std::os::unix::fs::MetadataExt;

use crate::error::{Error, Result};
use crate::format::{self, Header, SegmentFormat, off};
use crate::list::Info;
use crate::name::ArrayName;
use crate::segment;
use crate::sys;

/// The synchronisation words of a v1 header (`[1024, 1088)`, docs/FORMAT.md), each
/// read as one whole word. They change while the array is in use: a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncWords {
    /// Published-version counter.
    pub version: u32,
    /// Snapshot sequence counter (odd while a writer writes).
    pub seq: u64,
    /// Lock word (0 = unlocked).
    pub lock: u32,
    /// Pid of the lock holder (0 when free).
    pub lock_owner: u32,
    /// Time of the last write through the API, ns since the Unix epoch.
    pub write_ns: i64,
    /// Bytes of attribute text in use, as stored (may exceed the area if damaged;
    /// [`Details::attributes`] is bounded by the area).
    pub attr_len: u32,
    /// PID namespace of the lock holder.
    pub lock_ns: u32,
    /// Start time of the lock holder's thread, clock ticks after boot.
    pub lock_start: u64,
    /// First 4 bytes of the lock holder's boot id.
    pub lock_boot: u32,
    /// Flags: bit 0 is set once the array was replaced under its name.
    pub live_flags: u32,
    /// Geometry generation: incremented by every shape change.
    pub shape_gen: u32,
}

/// An array described from its header: [`Info`] plus the v1 header's remaining fields,
/// its synchronisation words and its attribute text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Details {
    /// What [`crate::info`] reports.
    pub info: Info,
    /// The decoded v1 header (page size, create flags, minor version, creator, ...);
    /// `None` for SharedArray segments, which have none.
    pub header: Option<Header>,
    /// The header's stored CRC-32 (already verified); `None` for SharedArray segments.
    pub checksum: Option<u32>,
    /// The synchronisation words; `None` for SharedArray segments.
    pub sync: Option<SyncWords>,
    /// The attribute text: bytes `[attr_offset, attr_offset + attr_len)`, bounded by
    /// the attribute area's capacity. Empty when none were written (and for SharedArray
    /// segments). Usually UTF-8 (e.g. JSON), but not checked.
    pub attributes: Vec<u8>,
}

/// Describes the array `name` from its header, whoever owns it, without mapping its
/// data. Like [`crate::info`], a segment still being initialised is described (with
/// [`crate::State::Initialising`]) and files that are not arrays are
/// [`crate::ErrorKind::Format`].
pub fn details(name: &str) -> Result<Details> {
    let name = ArrayName::parse(name)?;
    let (file, meta, s) = segment::describe(&name)?;
    let (header, checksum, sync, attributes) = match s.format {
        SegmentFormat::V1 { .. } => {
            let mut head = [0u8; format::CHECKED_BYTES];
            read_exact(&name, &file, &mut head, 0)?;
            // Validated by segment::read already; decoded again for the fields Info
            // does not carry. The checksummed part never changes once named.
            let header = Header::decode(&head).map_err(|e| e.context(&name))?;
            let checksum = u32::from_ne_bytes(word(&head, off::CHECKSUM));
            let sync = read_sync(&name, &file)?;
            let len = (sync.attr_len as usize).min(format::ATTR_CAPACITY);
            let mut attributes = vec![0u8; len];
            read_exact(&name, &file, &mut attributes, format::ATTR_OFFSET as u64)?;
            (Some(header), Some(checksum), Some(sync), attributes)
        }
        SegmentFormat::SharedArray(_) | SegmentFormat::Npy => (None, None, None, Vec::new()),
    };
    let info = Info {
        name,
        format: s.format,
        geometry: s.geometry,
        state: s.state,
        creator_alive: s.creator.as_ref().and_then(sys::creator_alive),
        creator: s.creator,
        created_ns: s.created_ns,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        file_size: meta.len(),
    };
    Ok(Details {
        info,
        header,
        checksum,
        sync,
        attributes,
    })
}

fn word<const N: usize>(b: &[u8], o: usize) -> [u8; N] {
    b[o..o + N].try_into().expect("in bounds")
}

fn read_exact(name: &ArrayName, file: &File, buf: &mut [u8], at: u64) -> Result<()> {
    let n = sys::pread_full(file, buf, at).map_err(|e| Error::os(format!("{name}: read"), e))?;
    if n < buf.len() {
        return Err(Error::format(format!(
            "{name}: truncated while reading its header"
        )));
    }
    Ok(())
}

/// Each word with a `pread` of exactly that word, which the kernel performs as one
/// aligned copy (docs/FORMAT.md, "Memory model").
fn read_sync(name: &ArrayName, file: &File) -> Result<SyncWords> {
    let u32_at = |o: usize| -> Result<u32> {
        let mut b = [0u8; 4];
        read_exact(name, file, &mut b, o as u64)?;
        Ok(u32::from_ne_bytes(b))
    };
    let u64_at = |o: usize| -> Result<u64> {
        let mut b = [0u8; 8];
        read_exact(name, file, &mut b, o as u64)?;
        Ok(u64::from_ne_bytes(b))
    };
    Ok(SyncWords {
        version: u32_at(off::VERSION)?,
        seq: u64_at(off::SEQ)?,
        lock: u32_at(off::LOCK)?,
        lock_owner: u32_at(off::LOCK_OWNER)?,
        write_ns: u64_at(off::WRITE_NS)? as i64,
        attr_len: u32_at(off::ATTR_LEN)?,
        lock_ns: u32_at(off::LOCK_NS)?,
        lock_start: u64_at(off::LOCK_START)?,
        lock_boot: u32_at(off::LOCK_BOOT)?,
        live_flags: u32_at(off::LIVE_FLAGS)?,
        shape_gen: u32_at(off::SHAPE_GEN)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Array, CreateOptions, Dtype, ErrorKind, Order, State};
    use std::os::unix::fs::FileExt;

    struct Gone(String);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = Array::delete(&self.0);
        }
    }

    fn put_attributes(path: &std::path::Path, text: &[u8], len: u32) {
        let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.write_all_at(text, format::ATTR_OFFSET as u64).unwrap();
        f.write_all_at(&len.to_ne_bytes(), off::ATTR_LEN as u64)
            .unwrap();
    }

    #[test]
    fn header_fields_sync_words_and_attributes() {
        let g = Gone(format!("shm://ndshm-details-{}", std::process::id()));
        let opts = CreateOptions::default().order(Order::F);
        let a = Array::create(&g.0, &[3, 4], Dtype::Int32, &opts).unwrap();
        let d = details(&g.0).unwrap();
        assert_eq!(d.info, crate::info(&g.0).unwrap());
        let h = d.header.clone().unwrap();
        assert_eq!(h.geometry.shape, vec![3, 4]);
        assert_eq!(h.create_flags, 1); // F order
        assert_eq!(h.page_size as usize, crate::page_size());
        assert_eq!(h.creator.pid, std::process::id() as i32);
        assert_eq!(h.created_ns, d.info.created_ns);
        let mut head = [0u8; format::CHECKED_BYTES];
        head.copy_from_slice(&std::fs::read(a.name().path()).unwrap()[..format::CHECKED_BYTES]);
        assert_eq!(d.checksum, Some(format::header_checksum(&head)));
        let s = d.sync.unwrap();
        assert_eq!(s.write_ns, d.info.created_ns);
        assert_eq!((s.lock, s.lock_owner, s.attr_len), (0, 0, 0));
        assert_eq!((s.live_flags, s.shape_gen, s.lock_start), (0, 0, 0));
        assert!(d.attributes.is_empty());

        // Attribute text as a writer stores it: the text, then its length.
        put_attributes(&a.name().path(), br#"{"units": "m"}"#, 14);
        assert_eq!(details(&g.0).unwrap().attributes, br#"{"units": "m"}"#);
        // A damaged length never reads past the area.
        put_attributes(&a.name().path(), b"", u32::MAX);
        let d = details(&g.0).unwrap();
        assert_eq!(d.attributes.len(), format::ATTR_CAPACITY);
        assert_eq!(d.sync.unwrap().attr_len, u32::MAX);
        assert_eq!(d.info.state, State::Ready);
    }

    #[test]
    fn sharedarray_segments_have_no_header_words() {
        let g = Gone(format!("shm://ndshm-details-sa-{}", std::process::id()));
        let opts = CreateOptions::default().sharedarray_format(true);
        drop(Array::create(&g.0, &[5], Dtype::Float64, &opts).unwrap());
        let d = details(&g.0).unwrap();
        assert!(d.header.is_none() && d.sync.is_none() && d.checksum.is_none());
        assert!(d.attributes.is_empty());
        assert_eq!(d.info.geometry.shape, vec![5]);
    }

    #[test]
    fn not_arrays_are_format_errors() {
        let p = std::env::temp_dir().join(format!("ndshm-details-junk-{}", std::process::id()));
        std::fs::write(&p, b"not an array at all").unwrap();
        let e = details(&format!("file://{}", p.display())).unwrap_err();
        std::fs::remove_file(&p).unwrap();
        assert_eq!(e.kind(), ErrorKind::Format, "{e}");
        let e = details("shm://ndshm-details-no-such").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    }
}
