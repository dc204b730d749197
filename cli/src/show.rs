//! `ndshm list` and `ndshm info`: tables, key-value text and JSON.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use comfy_table::{CellAlignment, Table, presets};
use indicatif::HumanBytes;
use ndshm::{Info, Order, SegmentFormat, SharedArrayAbi, State};
use serde::Serialize;

use crate::{Result, out};

/// One array as `list --json` prints it (and the base of `info --json`).
#[derive(Serialize)]
pub struct ArrayJson {
    pub name: String,
    pub path: String,
    /// "v1.MINOR", "sharedarray-numpy1" or "sharedarray-numpy2".
    pub format: String,
    /// numpy's name: "float64".
    pub dtype: String,
    /// numpy's type string: "<f8".
    pub dtype_str: String,
    pub itemsize: usize,
    /// "C" or "F".
    pub order: &'static str,
    pub shape: Vec<i64>,
    /// Bytes of data.
    pub nbytes: u64,
    /// Bytes reserved for data.
    pub capacity: u64,
    pub data_offset: u64,
    /// Bytes of the whole segment (what it occupies in /dev/shm).
    pub file_size: u64,
    /// "ready" or "initialising".
    pub state: &'static str,
    pub creator_pid: Option<i32>,
    pub creator_host: Option<String>,
    /// true, false, or null when this machine cannot tell.
    pub creator_alive: Option<bool>,
    /// Nanoseconds since the Unix epoch; null when unknown (SharedArray segments).
    pub created_ns: Option<i64>,
    /// Seconds since creation; null when unknown.
    pub age_s: Option<f64>,
    /// Permission bits, octal: "0600".
    pub mode: String,
    pub uid: u32,
}

pub fn format_name(f: SegmentFormat) -> String {
    match f {
        SegmentFormat::V1 { minor } => format!("v1.{minor}"),
        SegmentFormat::SharedArray(SharedArrayAbi::Numpy1) => "sharedarray-numpy1".into(),
        SegmentFormat::SharedArray(SharedArrayAbi::Numpy2) => "sharedarray-numpy2".into(),
        SegmentFormat::Npy => "npy".into(),
    }
}

pub fn state_name(s: State) -> &'static str {
    match s {
        State::Ready => "ready",
        State::Initialising => "initialising",
    }
}

pub fn order_name(o: Order) -> &'static str {
    match o {
        Order::C => "C",
        Order::F => "F",
    }
}

fn age(created_ns: i64) -> Option<Duration> {
    if created_ns <= 0 {
        return None;
    }
    let created = UNIX_EPOCH + Duration::from_nanos(created_ns as u64);
    Some(
        SystemTime::now()
            .duration_since(created)
            .unwrap_or_default(),
    )
}

/// A compact age: "42s", "17m", "5h12m", "3d4h".
fn short_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

/// numpy's notation: "(100, 3)", "(5,)", "()".
pub fn shape_str(shape: &[i64]) -> String {
    match shape {
        [d] => format!("({d},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", dims.join(", "))
        }
    }
}

pub fn array_json(i: &Info) -> ArrayJson {
    let g = &i.geometry;
    ArrayJson {
        name: i.name.as_str().to_string(),
        path: i.name.path().display().to_string(),
        format: format_name(i.format),
        dtype: g.dtype.name().to_string(),
        dtype_str: g.dtype.numpy_str().to_string(),
        itemsize: g.dtype.itemsize(),
        order: order_name(g.order),
        shape: g.shape.clone(),
        nbytes: g.nbytes,
        capacity: g.capacity,
        data_offset: g.data_offset,
        file_size: i.file_size,
        state: state_name(i.state),
        creator_pid: i.creator.as_ref().map(|c| c.pid),
        creator_host: i.creator.as_ref().map(|c| c.hostname.clone()),
        creator_alive: i.creator_alive,
        created_ns: (i.created_ns > 0).then_some(i.created_ns),
        age_s: age(i.created_ns).map(|d| d.as_secs_f64()),
        mode: format!("{:04o}", i.mode),
        uid: i.uid,
    }
}

fn alive_str(a: Option<bool>) -> &'static str {
    match a {
        Some(true) => "yes",
        Some(false) => "no",
        None => "?",
    }
}

fn json(v: &impl Serialize) -> Result<()> {
    let mut s = serde_json::to_string_pretty(v)
        .map_err(|e| crate::Failure::Msg(format!("encoding JSON: {e}")))?;
    s.push('\n');
    out(&s);
    Ok(())
}

pub fn list(dir: Option<&Path>, as_json: bool) -> Result<()> {
    let arrays = ndshm::list(dir)?;
    if as_json {
        return json(&arrays.iter().map(array_json).collect::<Vec<_>>());
    }
    if arrays.is_empty() {
        let where_ = match dir {
            Some(d) => d.display().to_string(),
            None => "shared memory".to_string(),
        };
        out(&format!("no arrays in {where_}\n"));
        return Ok(());
    }
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t.set_header(vec![
        "NAME", "FORMAT", "DTYPE", "SHAPE", "SIZE", "PID", "ALIVE", "STATE", "AGE",
    ]);
    for i in &arrays {
        let g = &i.geometry;
        let order = if g.shape.len() > 1 && g.order == Order::F {
            " F"
        } else {
            ""
        };
        t.add_row(vec![
            i.name.as_str().to_string(),
            format_name(i.format),
            g.dtype.name().to_string(),
            format!("{}{order}", shape_str(&g.shape)),
            HumanBytes(i.file_size).to_string(),
            i.creator
                .as_ref()
                .map_or("-".to_string(), |c| c.pid.to_string()),
            alive_str(i.creator_alive).to_string(),
            state_name(i.state).to_string(),
            age(i.created_ns).map_or("-".to_string(), short_age),
        ]);
    }
    let last = 8;
    for (k, c) in t.column_iter_mut().enumerate() {
        c.set_padding((0, if k == last { 0 } else { 2 }));
        if matches!(k, 4 | 5 | 8) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut s = String::new();
    for line in t.lines() {
        s.push_str(line.trim_end());
        s.push('\n');
    }
    out(&s);
    Ok(())
}

#[derive(Serialize)]
struct HeaderJson {
    version_major: u16,
    version_minor: u16,
    byte_order: String,
    header_bytes: usize,
    page_size: u32,
    attr_offset: usize,
    attr_capacity: usize,
    create_flags: u32,
    creator_start_ticks: u64,
    boot_id: String,
    checksum: String,
}

#[derive(Serialize)]
struct SyncJson {
    version: u32,
    seq: u64,
    lock: u32,
    lock_owner: u32,
    write_ns: i64,
    attr_len: u32,
    lock_ns: u32,
    lock_start: u64,
    lock_boot: u32,
    live_flags: u32,
    shape_gen: u32,
}

#[derive(Serialize)]
struct MapperJson {
    pid: i32,
    command: String,
    writable: bool,
    bytes: u64,
}

#[derive(Serialize)]
struct InfoJson {
    #[serde(flatten)]
    array: ArrayJson,
    /// The v1 header's other fields; null for SharedArray segments.
    header: Option<HeaderJson>,
    /// The synchronisation words; null for SharedArray segments.
    sync: Option<SyncJson>,
    /// The attribute text (invalid UTF-8 replaced), "" when there is none.
    attributes: String,
    /// Processes that map the array.
    mapped_by: Vec<MapperJson>,
    /// Processes whose mappings could not be read but which could open the array.
    unchecked_pids: Vec<i32>,
}

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

fn time_str(ns: i64) -> String {
    if ns <= 0 {
        return "-".to_string();
    }
    let t = UNIX_EPOCH + Duration::from_nanos(ns as u64);
    let ago = age(ns).map_or(String::new(), |d| format!(" ({} ago)", short_age(d)));
    format!("{}{ago}", humantime::format_rfc3339_seconds(t))
}

pub fn info(name: &str, as_json: bool) -> Result<()> {
    let d = ndshm::details(name)?;
    let m = ndshm::mappers(d.info.name.as_str())?;
    let header = d.header.as_ref().map(|h| HeaderJson {
        version_major: ndshm::format::VERSION_MAJOR,
        version_minor: h.minor,
        byte_order: format!("{:#010x}", ndshm::format::BYTE_ORDER_TAG),
        header_bytes: ndshm::format::HEADER_BYTES,
        page_size: h.page_size,
        attr_offset: ndshm::format::ATTR_OFFSET,
        attr_capacity: ndshm::format::ATTR_CAPACITY,
        create_flags: h.create_flags,
        creator_start_ticks: h.creator.start_ticks,
        boot_id: hex(&h.creator.boot_id),
        checksum: format!("{:#010x}", d.checksum.unwrap_or(0)),
    });
    let sync = d.sync.map(|s| SyncJson {
        version: s.version,
        seq: s.seq,
        lock: s.lock,
        lock_owner: s.lock_owner,
        write_ns: s.write_ns,
        attr_len: s.attr_len,
        lock_ns: s.lock_ns,
        lock_start: s.lock_start,
        lock_boot: s.lock_boot,
        live_flags: s.live_flags,
        shape_gen: s.shape_gen,
    });
    let attributes = String::from_utf8_lossy(&d.attributes).into_owned();
    let mapped_by: Vec<MapperJson> = m
        .processes
        .iter()
        .map(|p| MapperJson {
            pid: p.pid,
            command: p.command.clone(),
            writable: p.writable,
            bytes: p.bytes,
        })
        .collect();
    let j = InfoJson {
        array: array_json(&d.info),
        header,
        sync,
        attributes,
        mapped_by,
        unchecked_pids: m.unchecked.clone(),
    };
    if as_json {
        return json(&j);
    }
    out(&info_text(&j, &d));
    Ok(())
}

fn info_text(j: &InfoJson, d: &ndshm::Details) -> String {
    let a = &j.array;
    let mut s = String::new();
    let mut kv = |k: &str, v: String| {
        let _ = writeln!(s, "{:<16}{v}", format!("{k}:"));
    };
    kv("name", a.name.clone());
    kv("path", a.path.clone());
    kv("format", a.format.clone());
    kv("state", a.state.to_string());
    kv(
        "dtype",
        format!(
            "{} ({}, {} bytes per element, code {})",
            a.dtype,
            a.dtype_str,
            a.itemsize,
            d.info.geometry.dtype.code()
        ),
    );
    kv("order", a.order.to_string());
    kv(
        "shape",
        format!("{} ({} dimensions)", shape_str(&a.shape), a.shape.len()),
    );
    kv("nbytes", format!("{} ({})", a.nbytes, HumanBytes(a.nbytes)));
    kv(
        "capacity",
        format!("{} ({})", a.capacity, HumanBytes(a.capacity)),
    );
    kv("data offset", a.data_offset.to_string());
    kv(
        "file size",
        format!("{} ({})", a.file_size, HumanBytes(a.file_size)),
    );
    kv("mode", a.mode.clone());
    kv("owner uid", a.uid.to_string());
    match &d.info.creator {
        Some(c) => {
            let alive = match a.creator_alive {
                Some(true) => "alive",
                Some(false) => "dead",
                None => "unknown (another host)",
            };
            let host = if c.hostname.is_empty() {
                String::new()
            } else {
                format!(" on {}", c.hostname)
            };
            kv("creator", format!("pid {}{host}, {alive}", c.pid));
        }
        None => kv(
            "creator",
            "unknown (SharedArray segments do not record it)".into(),
        ),
    }
    kv("created", time_str(d.info.created_ns));
    if let Some(h) = &j.header {
        kv("byte order", format!("{} (this machine's)", h.byte_order));
        kv("header bytes", h.header_bytes.to_string());
        kv("page size", h.page_size.to_string());
        kv(
            "create flags",
            format!(
                "{:#x}{}",
                h.create_flags,
                if h.create_flags & 1 != 0 {
                    " (F order)"
                } else {
                    ""
                }
            ),
        );
        kv(
            "creator start",
            format!("{} clock ticks after boot", h.creator_start_ticks),
        );
        kv("boot id", h.boot_id.clone());
        kv("checksum", format!("{} (verified)", h.checksum));
        kv(
            "attribute area",
            format!("offset {}, capacity {}", h.attr_offset, h.attr_capacity),
        );
    }
    if let Some(w) = &j.sync {
        kv("last write", time_str(w.write_ns));
        kv(
            "lock",
            if w.lock == 0 {
                "free".to_string()
            } else {
                format!(
                    "held (word {:#x}, owner pid {}, pid namespace {}, thread start {}, \
                     boot {:#010x})",
                    w.lock, w.lock_owner, w.lock_ns, w.lock_start, w.lock_boot
                )
            },
        );
        kv(
            "live flags",
            format!(
                "{:#x}{}",
                w.live_flags,
                if w.live_flags & 1 != 0 {
                    " (replaced: another array has its name now)"
                } else {
                    ""
                }
            ),
        );
        kv("shape gen", format!("{} (shape changes)", w.shape_gen));
        kv(
            "version",
            format!("{} (published-version counter)", w.version),
        );
        kv("seq", format!("{} (snapshot sequence)", w.seq));
        kv("attr len", w.attr_len.to_string());
    }
    if j.attributes.is_empty() {
        kv("attributes", "none".into());
    } else {
        kv("attributes", String::new());
        for line in j.attributes.lines() {
            let _ = writeln!(s, "  {line}");
        }
    }
    let n = j.mapped_by.len();
    let _ = writeln!(
        s,
        "{:<16}{n} process{}",
        "mapped by:",
        if n == 1 { "" } else { "es" }
    );
    if n > 0 {
        let mut t = Table::new();
        t.load_preset(presets::NOTHING);
        t.set_header(vec!["PID", "ACCESS", "MAPPED", "COMMAND"]);
        for p in &j.mapped_by {
            t.add_row(vec![
                p.pid.to_string(),
                if p.writable { "rw" } else { "ro" }.to_string(),
                HumanBytes(p.bytes).to_string(),
                p.command.clone(),
            ]);
        }
        for (k, c) in t.column_iter_mut().enumerate() {
            c.set_padding((if k == 0 { 2 } else { 0 }, if k == 3 { 0 } else { 2 }));
            if matches!(k, 0 | 2) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
        for line in t.lines() {
            s.push_str(line.trim_end());
            s.push('\n');
        }
    }
    if !j.unchecked_pids.is_empty() {
        let _ = writeln!(
            s,
            "  (and possibly {} process(es) whose mappings this user may not read; run as \
             root to see them)",
            j.unchecked_pids.len()
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_shapes() {
        assert_eq!(short_age(Duration::from_secs(42)), "42s");
        assert_eq!(short_age(Duration::from_secs(125)), "2m5s");
        assert_eq!(short_age(Duration::from_secs(3 * 3600 + 120)), "3h2m");
        assert_eq!(short_age(Duration::from_secs(2 * 86400 + 3600)), "2d1h");
        assert_eq!(shape_str(&[100, 3]), "(100, 3)");
        assert_eq!(shape_str(&[5]), "(5,)");
        assert_eq!(shape_str(&[]), "()");
        assert_eq!(hex(&[0, 255, 16]), "00ff10");
    }
}
