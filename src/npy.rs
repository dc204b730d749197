//! File formats ndshm loads from and saves to, as pure functions over bytes (no system
//! calls, so they can be fuzzed and run under Miri):
//!
//! * numpy's `.npy` (format versions 1.0, 2.0 and 3.0): magic `\x93NUMPY`, a version,
//!   a little-endian header length (u16 in 1.0, u32 in 2.0 and 3.0), then a Python dict
//!   literal `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }` padded with
//!   spaces to a multiple of 64 bytes and ending in `\n`, then the data;
//! * cdxcore's `npio`: a big-endian header (`u32` length = 8 + 8·ndim, `u8` dtype code,
//!   `u24` ndim, `u64` shape entries), then C-order data in native byte order.
//!
//! Every header is untrusted: each number is checked, and the data size is computed with
//! [`crate::format::nbytes_for`] (overflow-checked) before anyone compares it with a file.

use crate::dtype::Dtype;
use crate::error::{Error, ErrorKind, Result};
use crate::format::{MAX_NDIM, Order, nbytes_for};

/// `.npy` magic.
pub const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Longest `.npy` header this library reads (numpy itself refuses more than 10 KiB
/// unless asked; a header is a short dict).
pub const NPY_MAX_HEADER: usize = 64 * 1024;

/// What a data file's header says about its array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileArray {
    /// Element type.
    pub dtype: Dtype,
    /// Storage order of the data in the file.
    pub order: Order,
    /// Shape.
    pub shape: Vec<i64>,
    /// True when the data is in the other byte order than this machine's, so loading
    /// must swap each element's bytes.
    pub swap_bytes: bool,
    /// Offset of the first element in the file.
    pub data_offset: u64,
    /// Bytes of data (`itemsize × Π shape`).
    pub nbytes: u64,
}

fn bad(what: impl std::fmt::Display) -> Error {
    Error::format(format!("not a valid .npy file: {what}"))
}

/// How many bytes of a `.npy` file hold its header, from the first 12 bytes (magic,
/// version, length): `Ok(n)` means the header is bytes `[0, n)`. Needs at least 12 bytes.
pub fn npy_header_len(prefix: &[u8]) -> Result<usize> {
    if prefix.len() < 10 || &prefix[..6] != NPY_MAGIC {
        return Err(bad(
            "the file does not start with the .npy magic \\x93NUMPY",
        ));
    }
    let (major, minor) = (prefix[6], prefix[7]);
    let (len, start) = match major {
        1 => (u16::from_le_bytes([prefix[8], prefix[9]]) as usize, 10),
        2 | 3 => {
            if prefix.len() < 12 {
                return Err(bad("truncated header"));
            }
            (
                u32::from_le_bytes([prefix[8], prefix[9], prefix[10], prefix[11]]) as usize,
                12,
            )
        }
        _ => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(".npy format version {major}.{minor} is not supported (1.0, 2.0, 3.0 are)"),
            ));
        }
    };
    if len > NPY_MAX_HEADER {
        return Err(bad(format!(
            "header of {len} bytes (at most {NPY_MAX_HEADER})"
        )));
    }
    Ok(start + len)
}

/// Parses a `.npy` header: `header` holds the file's first [`npy_header_len`] bytes.
pub fn parse_npy(header: &[u8]) -> Result<FileArray> {
    let total = npy_header_len(header)?;
    if header.len() < total {
        return Err(bad(format!(
            "truncated header ({} of {total} bytes)",
            header.len()
        )));
    }
    let start = if header[6] == 1 { 10 } else { 12 };
    let text = &header[start..total];
    // 1.0 and 2.0 headers are latin-1 (ASCII in practice), 3.0 UTF-8; every byte the
    // grammar below accepts is ASCII, so UTF-8 covers all three.
    let text = std::str::from_utf8(text).map_err(|_| bad("the header is not text"))?;
    let dict = parse_dict(text)?;
    let mut descr = None;
    let mut fortran = None;
    let mut shape = None;
    for (k, v) in dict {
        match (k.as_str(), v) {
            ("descr", Value::Str(s)) => descr = Some(s),
            ("descr", Value::List) => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    "the .npy file holds a structured dtype (a record array); ndshm supports \
                     bool, integers, floats and complex numbers",
                ));
            }
            ("fortran_order", Value::Bool(b)) => fortran = Some(b),
            ("shape", Value::Tuple(t)) => shape = Some(t),
            (k @ ("descr" | "fortran_order" | "shape"), _) => {
                return Err(bad(format!("'{k}' has the wrong type")));
            }
            (k, _) => return Err(bad(format!("unexpected key '{k}' in the header"))),
        }
    }
    let descr = descr.ok_or_else(|| bad("the header has no 'descr'"))?;
    let fortran = fortran.ok_or_else(|| bad("the header has no 'fortran_order'"))?;
    let shape = shape.ok_or_else(|| bad("the header has no 'shape'"))?;
    let (dtype, swap_bytes) = descr_dtype(&descr)?;
    file_array(dtype, fortran, shape, swap_bytes, total as u64)
}

fn file_array(
    dtype: Dtype,
    fortran: bool,
    shape: Vec<i64>,
    swap_bytes: bool,
    data_offset: u64,
) -> Result<FileArray> {
    if shape.len() > MAX_NDIM {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "the array has {} dimensions; ndshm supports at most {MAX_NDIM}",
                shape.len()
            ),
        ));
    }
    let nbytes = nbytes_for(&shape, dtype.itemsize()).map_err(|e| bad(e.message()))?;
    Ok(FileArray {
        dtype,
        order: if fortran { Order::F } else { Order::C },
        shape,
        swap_bytes,
        data_offset,
        nbytes,
    })
}

/// The dtype of a numpy type string, and whether its byte order is the other one.
fn descr_dtype(descr: &str) -> Result<(Dtype, bool)> {
    let unsupported = |why: &str| {
        Error::new(
            ErrorKind::Unsupported,
            format!("the .npy file holds dtype '{descr}': {why}"),
        )
    };
    let native = if cfg!(target_endian = "little") {
        '<'
    } else {
        '>'
    };
    let (order, rest) = match descr.chars().next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (c, &descr[1..]),
        _ => ('=', descr),
    };
    let kind = rest.chars().next().unwrap_or(' ');
    if matches!(kind, 'O') {
        return Err(unsupported(
            "Python objects cannot be shared between processes",
        ));
    }
    if matches!(kind, 'S' | 'U' | 'V' | 'a') {
        return Err(unsupported(
            "strings and raw bytes records are not supported",
        ));
    }
    if matches!(kind, 'M' | 'm') {
        return Err(unsupported("datetime64/timedelta64 are not supported"));
    }
    // Same spelling as the native string, whatever the byte order.
    let dtype = Dtype::from_numpy_str(&format!("={rest}"))
        .map_err(|_| unsupported("not one of the types ndshm supports"))?;
    let swap = dtype.itemsize() > 1 && order != '=' && order != '|' && order != native;
    Ok((dtype, swap))
}

/// A value in the header dict.
enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<i64>),
    List,
}

/// Parses the dict literal numpy writes: string keys; string, bool, tuple-of-int or list
/// values; optional trailing commas; spaces and a final newline.
fn parse_dict(text: &str) -> Result<Vec<(String, Value)>> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    p.ws();
    p.expect(b'{')?;
    let mut out = Vec::new();
    loop {
        p.ws();
        if p.eat(b'}') {
            break;
        }
        let key = p.string()?;
        p.ws();
        p.expect(b':')?;
        p.ws();
        let value = p.value()?;
        if out.iter().any(|(k, _): &(String, Value)| *k == key) {
            return Err(bad(format!("key '{key}' appears twice")));
        }
        out.push((key, value));
        p.ws();
        if p.eat(b',') {
            continue;
        }
        p.ws();
        p.expect(b'}')?;
        break;
    }
    p.ws();
    if p.i != p.s.len() {
        return Err(bad("text after the header dict"));
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\n' | b'\t' | b'\r') {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8) -> Result<()> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(bad(format!(
                "the header is not a dict literal (expected '{}' at byte {})",
                c as char, self.i
            )))
        }
    }
    fn string(&mut self) -> Result<String> {
        let q = match self.s.get(self.i) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => return Err(bad(format!("expected a string at byte {}", self.i))),
        };
        self.i += 1;
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i] != q {
            if self.s[self.i] == b'\\' || !self.s[self.i].is_ascii() {
                return Err(bad(
                    "escapes and non-ASCII text are not expected in the header",
                ));
            }
            self.i += 1;
        }
        if self.i == self.s.len() {
            return Err(bad("unterminated string"));
        }
        let s = std::str::from_utf8(&self.s[start..self.i])
            .map_err(|_| bad("the header is not text"))?
            .to_string();
        self.i += 1;
        Ok(s)
    }
    fn word(&mut self, w: &str) -> bool {
        if self.s[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            true
        } else {
            false
        }
    }
    fn int(&mut self) -> Result<i64> {
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        // Python 2 era files may write `3L`.
        let digits = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
        self.eat(b'L');
        digits
            .parse::<i64>()
            .map_err(|_| bad(format!("expected a non-negative dimension at byte {start}")))
    }
    fn value(&mut self) -> Result<Value> {
        match self.s.get(self.i) {
            Some(b'\'' | b'"') => Ok(Value::Str(self.string()?)),
            Some(b'(') => {
                self.i += 1;
                let mut dims = Vec::new();
                loop {
                    self.ws();
                    if self.eat(b')') {
                        break;
                    }
                    dims.push(self.int()?);
                    if dims.len() > MAX_NDIM {
                        return Err(Error::new(
                            ErrorKind::Unsupported,
                            format!("more than {MAX_NDIM} dimensions"),
                        ));
                    }
                    self.ws();
                    if self.eat(b',') {
                        continue;
                    }
                    self.ws();
                    self.expect(b')')?;
                    break;
                }
                Ok(Value::Tuple(dims))
            }
            Some(b'[') => {
                // A structured dtype's field list: skipped (balanced brackets, strings).
                let mut depth = 0usize;
                while let Some(&c) = self.s.get(self.i) {
                    match c {
                        b'\'' | b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'[' | b'(' => depth += 1,
                        b']' | b')' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Ok(Value::List);
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
                Err(bad("unterminated list"))
            }
            _ if self.word("True") => Ok(Value::Bool(true)),
            _ if self.word("False") => Ok(Value::Bool(false)),
            _ => Err(bad(format!("unexpected value at byte {}", self.i))),
        }
    }
}

/// A `.npy` version 1.0 (or 2.0 when the header needs it) header for `dtype`, `order`
/// and `shape`, padded so the data starts at a multiple of 64 bytes.
pub fn encode_npy(dtype: Dtype, order: Order, shape: &[i64]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': {}, 'shape': {shape}, }}",
        dtype.numpy_str(),
        if order == Order::F { "True" } else { "False" }
    );
    let encode = |major: u8, len_bytes: usize| {
        let unpadded = 6 + 2 + len_bytes + dict.len() + 1;
        let pad = (64 - unpadded % 64) % 64;
        let hlen = dict.len() + pad + 1;
        let mut out = Vec::with_capacity(unpadded + pad);
        out.extend_from_slice(NPY_MAGIC);
        out.extend_from_slice(&[major, 0]);
        if len_bytes == 2 {
            out.extend_from_slice(&(hlen as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(hlen as u32).to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        out.extend(std::iter::repeat_n(b' ', pad));
        out.push(b'\n');
        (out, hlen)
    };
    let (v1, hlen) = encode(1, 2);
    if hlen <= u16::MAX as usize {
        v1
    } else {
        encode(2, 4).0
    }
}

/// cdxcore's npio dtype codes (its `_DTYPE_TO_CODE`); uint8 and datetimes have none.
const NPIO_CODES: [(u8, Dtype); 13] = [
    (0, Dtype::Bool),
    (1, Dtype::Int8),
    (2, Dtype::Int16),
    (3, Dtype::Int32),
    (4, Dtype::Int64),
    (5, Dtype::Uint16),
    (6, Dtype::Uint32),
    (7, Dtype::Uint64),
    (8, Dtype::Float16),
    (9, Dtype::Float32),
    (10, Dtype::Float64),
    (11, Dtype::Complex64),
    (12, Dtype::Complex128),
];

fn npio_bad(what: impl std::fmt::Display) -> Error {
    Error::format(format!("not a valid npio file: {what}"))
}

/// How many bytes the npio header has, from its first 8 bytes.
pub fn npio_header_len(prefix: &[u8]) -> Result<usize> {
    if prefix.len() < 8 {
        return Err(npio_bad("shorter than the 8-byte header"));
    }
    let total = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    let ndim = u32::from_be_bytes([0, prefix[5], prefix[6], prefix[7]]) as usize;
    // Consistency first: without a magic, this is what tells an npio file from others.
    if total != 8 + 8 * ndim {
        return Err(npio_bad(format!(
            "header length {total} does not match {ndim} dimensions (8 + 8 × ndim)"
        )));
    }
    if ndim > MAX_NDIM {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!("the array has {ndim} dimensions; ndshm supports at most {MAX_NDIM}"),
        ));
    }
    Ok(total)
}

/// Parses an npio header (`header` holds at least [`npio_header_len`] bytes). The data is
/// C order in the writer's byte order, which npio does not record: native is assumed.
pub fn parse_npio(header: &[u8]) -> Result<FileArray> {
    let total = npio_header_len(header)?;
    if header.len() < total {
        return Err(npio_bad("truncated header"));
    }
    let code = header[4];
    let dtype = NPIO_CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, d)| *d)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                format!(
                    "npio dtype code {code} is not supported (datetime64/timedelta64 or unknown)"
                ),
            )
        })?;
    let ndim = (total - 8) / 8;
    let mut shape = Vec::with_capacity(ndim);
    for i in 0..ndim {
        let o = 8 + 8 * i;
        let d = u64::from_be_bytes(header[o..o + 8].try_into().expect("8 bytes"));
        let d = i64::try_from(d).map_err(|_| npio_bad(format!("dimension {i} is {d}")))?;
        shape.push(d);
    }
    file_array(dtype, false, shape, false, total as u64).map_err(|e| {
        if e.kind() == ErrorKind::Format {
            npio_bad(e.message())
        } else {
            e
        }
    })
}

/// An npio header for a C-order array, or `Unsupported` for dtypes npio has no code for.
pub fn encode_npio(dtype: Dtype, shape: &[i64]) -> Result<Vec<u8>> {
    let code = NPIO_CODES
        .iter()
        .find(|(_, d)| *d == dtype)
        .map(|(c, _)| *c)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                format!("npio has no code for {dtype}"),
            )
        })?;
    let mut out = Vec::with_capacity(8 + 8 * shape.len());
    out.extend_from_slice(&((8 + 8 * shape.len()) as u32).to_be_bytes());
    out.push(code);
    out.extend_from_slice(&(shape.len() as u32).to_be_bytes()[1..]);
    for &d in shape {
        out.extend_from_slice(&(d as u64).to_be_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(dict: &str) -> Vec<u8> {
        let mut v = NPY_MAGIC.to_vec();
        v.extend_from_slice(&[1, 0]);
        v.extend_from_slice(&((dict.len() + 1) as u16).to_le_bytes());
        v.extend_from_slice(dict.as_bytes());
        v.push(b'\n');
        v
    }

    #[test]
    fn round_trip_and_numpy_spellings() {
        for (d, o, s) in [
            (Dtype::Float64, Order::C, vec![3, 4]),
            (Dtype::Int16, Order::F, vec![5]),
            (Dtype::Bool, Order::C, vec![]),
            (Dtype::Complex128, Order::F, vec![2, 0, 7]),
        ] {
            let h = encode_npy(d, o, &s);
            assert_eq!(h.len() % 64, 0);
            let f = parse_npy(&h).unwrap();
            assert_eq!((f.dtype, f.order, f.shape.clone()), (d, o, s.clone()));
            assert_eq!(f.data_offset, h.len() as u64);
            assert!(!f.swap_bytes);
        }
        // What numpy writes, and variations it accepts.
        let f = parse_npy(&npy(
            "{'descr': '>i4', 'fortran_order': False, 'shape': (2, 3), }",
        ))
        .unwrap();
        assert_eq!(
            (f.dtype, f.swap_bytes, f.nbytes),
            (Dtype::Int32, cfg!(target_endian = "little"), 24)
        );
        let f = parse_npy(&npy(
            "{\"shape\":(7,),\"descr\":\"|u1\",\"fortran_order\":True}",
        ))
        .unwrap();
        assert_eq!(
            (f.dtype, f.order, f.shape),
            (Dtype::Uint8, Order::F, vec![7])
        );
        let f = parse_npy(&npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3L, 2L), }",
        ))
        .unwrap();
        assert_eq!(f.shape, vec![3, 2]);
    }

    #[test]
    fn malformed_headers_are_named_errors() {
        let cases: [(&[u8], &str); 12] = [
            (b"\x93NUMPX\x01\x00\x00\x00", "magic"),
            (&npy("['descr', 1]"), "dict"),
            (
                &npy("{'descr': '<f8', 'fortran_order': False}"),
                "no 'shape'",
            ),
            (&npy("{'descr': '<f8', 'shape': (1,)}"), "fortran_order"),
            (
                &npy("{'descr': 'O', 'fortran_order': False, 'shape': (1,)}"),
                "objects",
            ),
            (
                &npy("{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (1,)}"),
                "structured",
            ),
            (
                &npy("{'descr': '<U3', 'fortran_order': False, 'shape': (1,)}"),
                "strings",
            ),
            (
                &npy("{'descr': '<M8[ns]', 'fortran_order': False, 'shape': (1,)}"),
                "datetime",
            ),
            (
                &npy("{'descr': '<f8', 'fortran_order': False, 'shape': (-1,)}"),
                "dimension",
            ),
            (
                &npy("{'descr': '<f8', 'fortran_order': 0, 'shape': (1,)}"),
                "value",
            ),
            (
                &npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4)}"),
                "overflow",
            ),
            (
                &npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 1}"),
                "value",
            ),
        ];
        for (bytes, word) in cases {
            let e = parse_npy(bytes).unwrap_err();
            assert!(
                matches!(e.kind(), ErrorKind::Format | ErrorKind::Unsupported),
                "{word}: {e}"
            );
            assert!(e.message().contains(word), "{word}: {e}");
        }
        let mut v3 = npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,)}");
        v3[6] = 9;
        assert_eq!(parse_npy(&v3).unwrap_err().kind(), ErrorKind::Unsupported);
        let h = encode_npy(Dtype::Float64, Order::C, &[2]);
        assert!(
            parse_npy(&h[..h.len() - 1])
                .unwrap_err()
                .message()
                .contains("truncated")
        );
    }

    #[test]
    fn npio_round_trip_and_errors() {
        let h = encode_npio(Dtype::Int64, &[5, 6]).unwrap();
        assert_eq!(&h[..8], &[0, 0, 0, 24, 4, 0, 0, 2]);
        let f = parse_npio(&h).unwrap();
        assert_eq!(
            (f.dtype, f.shape.clone(), f.data_offset, f.nbytes),
            (Dtype::Int64, vec![5, 6], 24, 240)
        );
        // cdxcore's own example: a 0-d int64.
        let f = parse_npio(&[0, 0, 0, 8, 4, 0, 0, 0]).unwrap();
        assert_eq!((f.shape.len(), f.nbytes), (0, 8));
        assert!(
            encode_npio(Dtype::Uint8, &[1]).is_err(),
            "npio has no uint8"
        );
        assert!(parse_npio(&[0, 0, 0, 9, 4, 0, 0, 0]).is_err());
        assert!(
            parse_npio(&[0, 0, 0, 8, 13, 0, 0, 0]).is_err(),
            "datetime code"
        );
        assert!(
            parse_npio(&[
                0, 0, 0, 16, 10, 0, 0, 1, 255, 255, 255, 255, 255, 255, 255, 255
            ])
            .is_err()
        );
    }
}
