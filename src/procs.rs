//! Which processes map an array, from `/proc/*/maps`.
//!
//! Mappings are matched by **device and inode**, never by path: an array is created
//! without a name (`O_TMPFILE`) and named afterwards, so its creator's mapping shows as
//! `/dev/shm/#INODE (deleted)` while every attacher's shows the array's path; a renamed
//! or replaced array changes its path but not its inode (docs/FORMAT.md, "Creating a
//! segment", step 7).
//!
//! What this can and cannot see:
//!
//! * `/proc/PID/maps` of another user's process (and of a non-dumpable process of one's
//!   own) is readable only with `CAP_SYS_PTRACE` (root). Such processes are reported as
//!   [`Mappers::unchecked`] when the array's permission bits would let them open it
//!   (its owner's processes; anyone's when the array is shared with a group or with
//!   all). Processes running as root are never counted there, because they can open
//!   anything: run as root to see them.
//! * A mapping of a file on overlayfs may show the underlying filesystem's device and
//!   inode rather than what `stat` reports; arrays in `/dev/shm` and other tmpfs
//!   directories are unaffected.
//! * A process may open an array without mapping it, or map it a moment after the
//!   scan: the answer describes one instant.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;

use crate::error::Result;
use crate::name::ArrayName;
use crate::segment::{self, Access};

/// A process that maps an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapper {
    /// Process id.
    pub pid: i32,
    /// Its command line, arguments joined by spaces (`[comm]` when it has none, as for
    /// kernel threads).
    pub command: String,
    /// Whether any of its mappings of the array is writable.
    pub writable: bool,
    /// Bytes of the array it maps, summed over its mappings.
    pub bytes: u64,
}

/// The processes that map one array.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mappers {
    /// Processes that map it, sorted by pid.
    pub processes: Vec<Mapper>,
    /// Processes whose mappings this process may not read but which could have the
    /// array open according to its owner and permission bits (root's processes are not
    /// counted; see the module documentation). Empty when running as root. Sorted.
    pub unchecked: Vec<i32>,
}

impl Mappers {
    /// True when no process maps the array and none could without this process seeing
    /// it.
    pub fn is_unused(&self) -> bool {
        self.processes.is_empty() && self.unchecked.is_empty()
    }
}

/// One process whose maps could not be read, with its user ids (real, effective,
/// saved, filesystem) from `/proc/PID/status`, which anyone may read.
#[derive(Debug, Clone)]
struct Hidden {
    pid: i32,
    uids: Vec<u32>,
}

/// One pass over `/proc/*/maps`: which processes map which files. Read once, then
/// asked about many arrays (as `ndshm gc --unused` does).
#[derive(Debug, Clone, Default)]
pub struct ProcessMaps {
    /// (device, inode) of a mapped file → the processes mapping it.
    by_file: HashMap<(u64, u64), Vec<Mapper>>,
    hidden: Vec<Hidden>,
}

impl ProcessMaps {
    /// Reads the mappings of every process this process may inspect. Processes that
    /// exit during the scan are skipped.
    pub fn read() -> ProcessMaps {
        let mut pm = ProcessMaps::default();
        let Ok(dir) = fs::read_dir("/proc") else {
            return pm;
        };
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            match fs::read(format!("/proc/{pid}/maps")) {
                Ok(text) => pm.add(pid, &text),
                Err(_) => {
                    // Gone (ENOENT/ESRCH) or not ours to read (EACCES): the status file
                    // says which, and whose it is.
                    if let Some(uids) = status_uids(pid) {
                        pm.hidden.push(Hidden { pid, uids });
                    }
                }
            }
        }
        pm
    }

    fn add(&mut self, pid: i32, maps: &[u8]) {
        let mut mine: HashMap<(u64, u64), (bool, u64)> = HashMap::new();
        for line in maps.split(|&b| b == b'\n') {
            let Some(m) = parse_maps_line(line) else {
                continue;
            };
            let e = mine.entry((m.dev, m.inode)).or_default();
            e.0 |= m.writable;
            e.1 += m.len;
        }
        if mine.is_empty() {
            return;
        }
        let command = command_line(pid);
        for (file, (writable, bytes)) in mine {
            self.by_file.entry(file).or_default().push(Mapper {
                pid,
                command: command.clone(),
                writable,
                bytes,
            });
        }
    }

    /// The processes that map the file with this device number (`st_dev`) and inode.
    pub fn mapping(&self, dev: u64, inode: u64) -> Vec<Mapper> {
        let mut v = self.by_file.get(&(dev, inode)).cloned().unwrap_or_default();
        v.sort_by_key(|m| m.pid);
        v
    }

    /// The processes that map the array `name` (any owner's; symbolic links are not
    /// followed), and those that might without this process being able to tell.
    pub fn mappers(&self, name: &str) -> Result<Mappers> {
        let name = ArrayName::parse(name)?;
        let access = Access {
            allow_other_owner: true,
            ..Access::default()
        };
        let (_, meta) = segment::open(&name, &access)?;
        Ok(self.mappers_of(&meta))
    }

    fn mappers_of(&self, meta: &fs::Metadata) -> Mappers {
        let shared = meta.mode() & 0o066 != 0;
        let mut unchecked: Vec<i32> = self
            .hidden
            .iter()
            // Effective uid 0 opens anything: not counted (see the module docs).
            .filter(|h| h.uids.get(1) != Some(&0))
            .filter(|h| shared || h.uids.contains(&meta.uid()))
            .map(|h| h.pid)
            .collect();
        unchecked.sort_unstable();
        Mappers {
            processes: self.mapping(meta.dev(), meta.ino()),
            unchecked,
        }
    }
}

/// The processes that map the array `name` right now; see the module documentation.
/// To ask about many arrays, read [`ProcessMaps`] once instead.
pub fn mappers(name: &str) -> Result<Mappers> {
    ProcessMaps::read().mappers(name)
}

/// One line of `/proc/PID/maps` that maps a file.
#[derive(Debug, PartialEq, Eq)]
struct MapsLine {
    len: u64,
    writable: bool,
    dev: u64,
    inode: u64,
}

/// Parses `start-end perms offset MAJ:MIN inode [path]` (hexadecimal except the
/// inode); `None` for anonymous mappings (inode 0) and malformed lines.
fn parse_maps_line(line: &[u8]) -> Option<MapsLine> {
    // The path may hold any bytes; only the first five fields (ASCII) matter.
    let mut f = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .map(|w| std::str::from_utf8(w).unwrap_or(""));
    let (start, end) = f.next()?.split_once('-')?;
    let perms = f.next()?;
    let _offset = f.next()?;
    let (major, minor) = f.next()?.split_once(':')?;
    let inode: u64 = f.next()?.parse().ok()?;
    if inode == 0 {
        return None;
    }
    let start = u64::from_str_radix(start, 16).ok()?;
    let end = u64::from_str_radix(end, 16).ok()?;
    let major = u32::from_str_radix(major, 16).ok()?;
    let minor = u32::from_str_radix(minor, 16).ok()?;
    Some(MapsLine {
        len: end.checked_sub(start)?,
        writable: perms.as_bytes().get(1) == Some(&b'w'),
        dev: libc::makedev(major, minor),
        inode,
    })
}

/// The `Uid:` line of `/proc/PID/status`; `None` when the process is gone.
fn status_uids(pid: i32) -> Option<Vec<u32>> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    Some(
        line.split_ascii_whitespace()
            .filter_map(|u| u.parse().ok())
            .collect(),
    )
}

fn command_line(pid: i32) -> String {
    let args = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let words: Vec<String> = args
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    if !words.is_empty() {
        return words.join(" ");
    }
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    format!("[{}]", comm.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Array, CreateOptions, Dtype};

    #[test]
    fn parses_maps_lines() {
        let l =
            b"7f00a0000000-7f00a0003000 rw-s 00000000 00:1b 4242        /dev/shm/#4242 (deleted)";
        assert_eq!(
            parse_maps_line(l),
            Some(MapsLine {
                len: 0x3000,
                writable: true,
                dev: libc::makedev(0, 0x1b),
                inode: 4242,
            })
        );
        let l = b"55d0-55e0 r--s 00001000 fe:01 17   /data/with spaces/x";
        let m = parse_maps_line(l).unwrap();
        assert!(!m.writable);
        assert_eq!(m.dev, libc::makedev(0xfe, 1));
        // Anonymous mappings and garbage are skipped.
        assert_eq!(
            parse_maps_line(b"7ffd-7ffe rw-p 00000000 00:00 0   [stack]"),
            None
        );
        assert_eq!(parse_maps_line(b"nonsense"), None);
        assert_eq!(parse_maps_line(b""), None);
        assert_eq!(parse_maps_line(b"10-5 rw-s 0 00:1b 1 /x"), None);
    }

    /// This process maps an array it created (whose mapping the maps file names
    /// `#INODE (deleted)`, the unnamed file) and one it attached; both are found by
    /// device and inode, and an array nobody maps has no mappers.
    #[test]
    fn finds_this_process_by_inode() {
        let n = format!("shm://ndshm-procs-{}", std::process::id());
        let a = Array::create(&n, &[1024], Dtype::Float64, &CreateOptions::default()).unwrap();
        struct Gone<'a>(&'a str);
        impl Drop for Gone<'_> {
            fn drop(&mut self) {
                let _ = Array::delete(self.0);
            }
        }
        let _g = Gone(&n);
        let me = std::process::id() as i32;
        let m = mappers(&n).unwrap();
        let mine = m
            .processes
            .iter()
            .find(|p| p.pid == me)
            .expect("this process");
        assert!(mine.writable);
        assert!(mine.bytes >= 8 * 1024, "{mine:?}");
        assert!(!mine.command.is_empty());
        assert!(!m.is_unused());
        drop(a);
        let m = mappers(&n).unwrap();
        assert!(m.processes.iter().all(|p| p.pid != me), "{m:?}");
        let b = Array::attach(&n, &crate::AttachOptions::default().readonly(true)).unwrap();
        let m = mappers(&n).unwrap();
        let mine = m
            .processes
            .iter()
            .find(|p| p.pid == me)
            .expect("this process");
        assert!(!mine.writable);
        drop(b);
        assert_eq!(
            mappers("shm://ndshm-procs-no-such-array")
                .unwrap_err()
                .kind(),
            crate::ErrorKind::NotFound
        );
    }

    #[test]
    fn unchecked_follows_owner_and_mode() {
        let pm = ProcessMaps {
            by_file: HashMap::new(),
            hidden: vec![
                Hidden {
                    pid: 10,
                    uids: vec![0, 0, 0, 0],
                },
                Hidden {
                    pid: 11,
                    uids: vec![1000, 1000, 1000, 1000],
                },
                Hidden {
                    pid: 12,
                    uids: vec![2000, 2000, 2000, 2000],
                },
            ],
        };
        let d = std::env::temp_dir().join(format!("ndshm-procs-mode-{}", std::process::id()));
        fs::write(&d, b"x").unwrap();
        let uid = fs::metadata(&d).unwrap().uid();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&d, fs::Permissions::from_mode(0o600)).unwrap();
        let owner_only = pm.mappers_of(&fs::metadata(&d).unwrap()).unchecked;
        fs::set_permissions(&d, fs::Permissions::from_mode(0o660)).unwrap();
        let shared = pm.mappers_of(&fs::metadata(&d).unwrap()).unchecked;
        fs::remove_file(&d).unwrap();
        // Root's processes never count; the owner's always; others' when shared.
        let want_owner: Vec<i32> = [(11, 1000), (12, 2000)]
            .iter()
            .filter(|&&(_, u)| u == uid)
            .map(|&(p, _)| p)
            .collect();
        assert_eq!(owner_only, want_owner);
        assert_eq!(shared, vec![11, 12]);
    }
}
