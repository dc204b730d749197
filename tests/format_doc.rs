//! docs/FORMAT.md is the specification other languages implement: its offset tables must
//! say what the code does. Every header field the code reads or writes is documented at
//! its offset with its size, and the documentation lists no field the code lacks.

use std::collections::BTreeMap;

use ndshm::format::{self, off};

/// (name in FORMAT.md, offset in the code, size in bytes).
const FIELDS: &[(&str, usize, usize)] = &[
    ("magic", off::MAGIC, 8),
    ("version_major", off::MAJOR, 2),
    ("version_minor", off::MINOR, 2),
    ("byte_order", off::BYTE_ORDER, 4),
    ("header_bytes", off::HEADER_BYTES, 4),
    ("page_size", off::PAGE_SIZE, 4),
    ("attr_offset", off::ATTR_OFFSET, 8),
    ("attr_capacity", off::ATTR_CAPACITY, 8),
    ("data_offset", off::DATA_OFFSET, 8),
    ("capacity", off::CAPACITY, 8),
    ("nbytes", off::NBYTES, 8),
    ("dtype", off::DTYPE, 4),
    ("itemsize", off::ITEMSIZE, 4),
    ("dtype_str", off::DTYPE_STR, 8),
    ("order", off::ORDER, 4),
    ("ndim", off::NDIM, 4),
    ("shape", off::SHAPE, 8 * format::MAX_NDIM),
    ("creator_pid", off::CREATOR_PID, 4),
    ("create_flags", off::CREATE_FLAGS, 4),
    ("creator_start", off::CREATOR_START, 8),
    ("boot_id", off::BOOT_ID, 16),
    ("hostname", off::HOSTNAME, format::MAX_HOSTNAME + 1),
    ("created_ns", off::CREATED_NS, 8),
    ("creator_pidns", off::CREATOR_PIDNS, 4),
    ("checksum", off::CHECKSUM, 4),
    ("state", off::STATE, 4),
    ("version", off::VERSION, 4),
    ("seq", off::SEQ, 8),
    ("lock", off::LOCK, 4),
    ("lock_owner", off::LOCK_OWNER, 4),
    ("write_ns", off::WRITE_NS, 8),
    ("attr_len", off::ATTR_LEN, 4),
    ("lock_ns", off::LOCK_NS, 4),
    ("lock_start", off::LOCK_START, 8),
    ("lock_boot", off::LOCK_BOOT, 4),
    ("live_flags", off::LIVE_FLAGS, 4),
    ("shape_gen", off::SHAPE_GEN, 4),
];

/// Rows `| offset | size | type | field | ...` of the header tables in FORMAT.md.
fn documented() -> BTreeMap<String, (usize, usize)> {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/FORMAT.md")).unwrap();
    let start = doc.find("## Fixed header").expect("header section");
    let end = doc.find("## Attribute area").expect("attribute section");
    let mut out = BTreeMap::new();
    for line in doc[start..end].lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // ["", offset, size, type, field, ...]
        if cells.len() < 6 {
            continue;
        }
        let (Ok(offset), Ok(size)) = (cells[1].parse::<usize>(), cells[2].parse::<usize>()) else {
            continue;
        };
        let field = cells[4].trim_end_matches(" *G*").trim();
        if field == "reserved" || field == "—" {
            continue;
        }
        assert!(
            out.insert(field.to_string(), (offset, size)).is_none(),
            "{field} documented twice"
        );
    }
    out
}

#[test]
fn format_md_offsets_match_the_code() {
    let doc = documented();
    for &(name, offset, size) in FIELDS {
        assert_eq!(
            doc.get(name),
            Some(&(offset, size)),
            "docs/FORMAT.md: field {name} must be at offset {offset} with size {size}"
        );
    }
    let known: Vec<&str> = FIELDS.iter().map(|f| f.0).collect();
    for name in doc.keys() {
        assert!(
            known.contains(&name.as_str()),
            "docs/FORMAT.md documents {name}, which the code does not have"
        );
    }
}

#[test]
fn format_md_sizes_match_the_code() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/FORMAT.md")).unwrap();
    assert!(doc.contains(&format!("fixed header, {} bytes", format::HEADER_BYTES)));
    assert!(doc.contains(&format!(
        "[0, {})     identity and geometry, covered by a CRC-32",
        format::CHECKED_BYTES
    )));
    assert!(doc.contains(&format!(
        "offset {}   attribute area, {} bytes",
        format::ATTR_OFFSET,
        format::ATTR_CAPACITY
    )));
    assert!(doc.contains(&format!("{}-byte trailer", format::SA_TRAILER_NPY1)));
    assert!(doc.contains(&format!("{}-byte trailer", format::SA_TRAILER_NPY2)));
    // The sync words end at 1060 and the reader reads exactly that much.
    assert!(doc.contains(&format!("`pread` bytes `[0, {})`", off::ATTR_LEN + 4)));
}

/// Every test the README's "Guarantees and limits" table cites exists, so a promise
/// cannot outlive the test behind it.
#[test]
fn readme_guarantees_cite_real_tests() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme.find("## Guarantees and limits").expect("section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let mut cited = 0;
    for cell in section.split('`') {
        if let Some((file, func)) = cell.split_once("::") {
            let src = std::fs::read_to_string(root.join(file))
                .unwrap_or_else(|_| panic!("README cites {file}, which does not exist"));
            assert!(
                src.contains(&format!("fn {func}(")) || src.contains(&format!("def {func}(")),
                "README cites {file}::{func}, which does not exist"
            );
            cited += 1;
        } else if cell.ends_with(".py") || cell.ends_with('/') {
            assert!(root.join(cell).exists(), "README cites {cell}");
        }
    }
    assert!(cited >= 15, "only {cited} tests cited");
}
