//! Writes the seed corpus in fuzz/corpus/: valid inputs made with the library's own
//! encoders plus hand-picked edge cases. Run from the repository root (stable is fine):
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example seeds
//!
//! It only adds or overwrites its own `seed-*` files; crash reproducers (`crash-*`)
//! and anything else in the directories are kept.
use std::fs;
use std::path::Path;

use ndshm::Dtype;
use ndshm::format::{
    CHECKED_BYTES, Creator, Geometry, HEADER_BYTES, Header, Order, SA_TRAILER_NPY1,
    SA_TRAILER_NPY2, STATE_READY, header_checksum, off, sharedarray_encode,
};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
}

fn geometry(dtype: Dtype, order: Order, shape: &[i64], extra: u64, data_offset: u64) -> Geometry {
    let nbytes = ndshm::format::nbytes_for(shape, dtype.itemsize()).unwrap();
    Geometry {
        dtype,
        order,
        shape: shape.to_vec(),
        nbytes,
        capacity: nbytes + extra,
        data_offset,
    }
}

fn header(g: Geometry, page_size: u32, hostname: &str) -> Header {
    Header {
        minor: 0,
        page_size,
        geometry: g,
        creator: Creator {
            pid: 4242,
            start_ticks: 123_456,
            boot_id: *b"0123456789abcdef",
            hostname: hostname.into(),
        },
        create_flags: 0,
        created_ns: 1_700_000_000_000_000_000,
    }
}

fn v1_header() {
    let t = "v1_header";
    let h = header(
        geometry(Dtype::Float64, Order::F, &[3, 4], 0, 8192),
        4096,
        "node1",
    );
    let b = h.encode();
    write(t, "f64-F-3x4", &b);
    // The whole 4096-byte header page as a creator writes it, state READY.
    let mut page = vec![0u8; HEADER_BYTES];
    page[..CHECKED_BYTES].copy_from_slice(&b);
    page[off::STATE..off::STATE + 4].copy_from_slice(&STATE_READY.to_ne_bytes());
    write(t, "f64-F-3x4-page", &page);
    write(
        t,
        "i8-scalar",
        &header(geometry(Dtype::Int8, Order::C, &[], 0, 8192), 4096, "").encode(),
    );
    write(
        t,
        "c128-32dims",
        &header(
            geometry(Dtype::Complex128, Order::C, &[1; 32], 0, 8192),
            4096,
            "h",
        )
        .encode(),
    );
    write(
        t,
        "u16-empty-64k-page",
        &header(
            geometry(Dtype::Uint16, Order::C, &[0, 1000], 1 << 20, 65536),
            65536,
            "x",
        )
        .encode(),
    );
    write(
        t,
        "bool-hostname-63",
        &header(
            geometry(Dtype::Bool, Order::C, &[7], 4089, 8192),
            4096,
            &"h".repeat(63),
        )
        .encode(),
    );
    write(
        t,
        "f16-utf8-hostname",
        &header(
            geometry(Dtype::Float16, Order::F, &[2, 2], 0, 8192),
            4096,
            "nœud-η",
        )
        .encode(),
    );
    // Corrupt variants: bad checksum, bad field with a fixed-up checksum, truncated.
    let mut bad = b;
    bad[off::SHAPE] ^= 1;
    write(t, "bad-checksum", &bad);
    let mut bad = b;
    bad[off::NDIM..off::NDIM + 4].copy_from_slice(&33u32.to_ne_bytes());
    let crc = header_checksum(&bad);
    bad[off::CHECKSUM..off::CHECKSUM + 4].copy_from_slice(&crc.to_ne_bytes());
    write(t, "ndim-33", &bad);
    write(t, "truncated", &b[..CHECKED_BYTES - 4]);
    write(t, "zeros", &[0u8; CHECKED_BYTES]);
}

/// Input: file size (8 bytes, little-endian), then the file's last min(size, 548) bytes.
fn trailer_input(data_bytes: u64, trailer: &[u8]) -> Vec<u8> {
    let size = data_bytes + trailer.len() as u64;
    let mut file = vec![0u8; data_bytes as usize];
    file.extend_from_slice(trailer);
    let tail = &file[file.len().saturating_sub(SA_TRAILER_NPY2)..];
    let mut v = size.to_le_bytes().to_vec();
    v.extend_from_slice(tail);
    v
}

fn sharedarray_trailer() {
    let t = "sharedarray_trailer";
    let g = geometry(Dtype::Int32, Order::C, &[3, 4], 0, 0);
    let t2 = sharedarray_encode(&g);
    write(t, "i32-3x4-npy2", &trailer_input(48, &t2));
    write(
        t,
        "i32-3x4-npy1",
        &trailer_input(48, &t2[..SA_TRAILER_NPY1]),
    );
    let g = geometry(Dtype::Float64, Order::C, &[4096], 0, 0);
    write(
        t,
        "f64-4096-npy2",
        &trailer_input(g.nbytes, &sharedarray_encode(&g)),
    );
    let g = geometry(Dtype::Uint8, Order::C, &[], 0, 0);
    write(
        t,
        "u8-scalar-npy2",
        &trailer_input(1, &sharedarray_encode(&g)),
    );
    let g = geometry(Dtype::Complex64, Order::C, &[1; 32], 0, 0);
    write(
        t,
        "c64-32dims-npy2",
        &trailer_input(8, &sharedarray_encode(&g)),
    );
    // NPY_LONGLONG (9) for int64, as numpy writes on some platforms.
    let g = geometry(Dtype::Int64, Order::C, &[5], 0, 0);
    let mut tr = sharedarray_encode(&g);
    tr[24..28].copy_from_slice(&9i32.to_ne_bytes());
    write(t, "longlong-npy2", &trailer_input(40, &tr));
    // 33 dimensions: a valid SharedArray, unsupported by ndshm.
    let mut tr = sharedarray_encode(&geometry(Dtype::Uint8, Order::C, &[1; 32], 0, 0));
    tr[32..36].copy_from_slice(&33i32.to_ne_bytes());
    tr[36 + 8 * 32..36 + 8 * 33].copy_from_slice(&1i64.to_ne_bytes());
    write(t, "33dims-npy2", &trailer_input(1, &tr));
    // The trailer claims more data than the file holds.
    let g = geometry(Dtype::Int32, Order::C, &[3, 4], 0, 0);
    let mut v = trailer_input(48, &sharedarray_encode(&g));
    v[..8].copy_from_slice(&(SA_TRAILER_NPY2 as u64 + 20).to_le_bytes());
    write(t, "short-file", &v);
    write(t, "no-magic", &trailer_input(0, &[0u8; SA_TRAILER_NPY2]));
}

fn name() {
    let t = "name";
    let long = "a".repeat(255);
    let too_long = "a".repeat(256);
    let wide = "é".repeat(127) + "a"; // 255 bytes
    let wide_long = "é".repeat(128); // 256 bytes
    let path_long = format!("file:///{}", "p".repeat(4095));
    for (label, s) in [
        ("bare", "abc"),
        ("shm", "shm://abc"),
        ("file-abs", "file:///tmp/x.arr"),
        ("file-rel", "file://rel/x"),
        ("file-dir", "file:///tmp/"),
        ("file-dotdot", "file:///tmp/.."),
        ("file-empty", "file://"),
        ("shm-empty", "shm://"),
        ("slash", "a/b"),
        ("dot", "."),
        ("shm-dotdot", "shm://.."),
        ("scheme", "http://x"),
        ("nested-scheme", "shm://file://x"),
        ("colon", "a:b"),
        ("nul", "a\0b"),
        ("unicode", "shm://données-η-🙂"),
        ("space", "shm://a b"),
        ("max", long.as_str()),
        ("too-long", too_long.as_str()),
        ("wide-max", wide.as_str()),
        ("wide-too-long", wide_long.as_str()),
        ("path-too-long", path_long.as_str()),
    ] {
        write(t, label, s.as_bytes());
    }
}

fn shape() {
    let t = "shape";
    let input = |itemsize: u64, dims: &[i64]| {
        let mut v = itemsize.to_le_bytes().to_vec();
        for d in dims {
            v.extend_from_slice(&d.to_le_bytes());
        }
        v
    };
    write(t, "f64-3x4", &input(8, &[3, 4]));
    write(t, "scalar", &input(1, &[]));
    write(t, "zero-then-max", &input(8, &[0, i64::MAX]));
    write(t, "max-times-2", &input(1, &[i64::MAX, 2]));
    write(t, "negative", &input(1, &[5, -1]));
    write(t, "40-dims", &input(2, &[2; 40]));
    write(t, "big-big-zero", &input(8, &[1 << 40, 1 << 40, 0]));
    write(t, "limit", &input(16, &[1 << 59]));
    write(t, "itemsize-0", &input(0, &[i64::MAX, i64::MAX]));
    write(t, "itemsize-max", &input(u64::MAX, &[1]));
}

fn main() {
    v1_header();
    sharedarray_trailer();
    name();
    shape();
}
