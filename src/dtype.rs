//! Element types: the stable codes stored in segments, numpy type strings, and the
//! numpy type numbers that SharedArray segments carry.

use crate::error::{Error, Result};

/// The element type of an array. The discriminants are stable: they are stored in
/// segments and are the values of the C `SA_*` dtype constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Dtype {
    /// One byte, 0 or 1 (numpy `bool`).
    Bool = 0,
    /// Signed 8-bit integer.
    Int8 = 1,
    /// Unsigned 8-bit integer.
    Uint8 = 2,
    /// Signed 16-bit integer.
    Int16 = 3,
    /// Unsigned 16-bit integer.
    Uint16 = 4,
    /// Signed 32-bit integer.
    Int32 = 5,
    /// Unsigned 32-bit integer.
    Uint32 = 6,
    /// Signed 64-bit integer.
    Int64 = 7,
    /// Unsigned 64-bit integer.
    Uint64 = 8,
    /// IEEE 754 binary16.
    Float16 = 9,
    /// IEEE 754 binary32.
    Float32 = 10,
    /// IEEE 754 binary64.
    Float64 = 11,
    /// Two binary32: real, imaginary.
    Complex64 = 12,
    /// Two binary64: real, imaginary.
    Complex128 = 13,
}

/// Every dtype, in code order.
pub const ALL_DTYPES: [Dtype; 14] = [
    Dtype::Bool,
    Dtype::Int8,
    Dtype::Uint8,
    Dtype::Int16,
    Dtype::Uint16,
    Dtype::Int32,
    Dtype::Uint32,
    Dtype::Int64,
    Dtype::Uint64,
    Dtype::Float16,
    Dtype::Float32,
    Dtype::Float64,
    Dtype::Complex64,
    Dtype::Complex128,
];

/// The byte-order character numpy uses for multi-byte types on this machine.
#[cfg(target_endian = "little")]
const NATIVE: char = '<';
#[cfg(target_endian = "big")]
const NATIVE: char = '>';

impl Dtype {
    /// The dtype with stable code `code`, if any.
    pub fn from_code(code: i32) -> Option<Dtype> {
        usize::try_from(code)
            .ok()
            .and_then(|i| ALL_DTYPES.get(i).copied())
    }

    /// The stable code.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// Size of one element in bytes.
    pub fn itemsize(self) -> usize {
        use Dtype::*;
        match self {
            Bool | Int8 | Uint8 => 1,
            Int16 | Uint16 | Float16 => 2,
            Int32 | Uint32 | Float32 => 4,
            Int64 | Uint64 | Float64 | Complex64 => 8,
            Complex128 => 16,
        }
    }

    /// numpy's kind character and the lowercase name (`float64`).
    fn kind_and_name(self) -> (char, &'static str) {
        use Dtype::*;
        match self {
            Bool => ('b', "bool"),
            Int8 => ('i', "int8"),
            Uint8 => ('u', "uint8"),
            Int16 => ('i', "int16"),
            Uint16 => ('u', "uint16"),
            Int32 => ('i', "int32"),
            Uint32 => ('u', "uint32"),
            Int64 => ('i', "int64"),
            Uint64 => ('u', "uint64"),
            Float16 => ('f', "float16"),
            Float32 => ('f', "float32"),
            Float64 => ('f', "float64"),
            Complex64 => ('c', "complex64"),
            Complex128 => ('c', "complex128"),
        }
    }

    /// The canonical name, e.g. `"float64"`.
    pub fn name(self) -> &'static str {
        self.kind_and_name().1
    }

    /// The numpy type string in this machine's byte order: `"<f8"`, `"|u1"`, `"|b1"`.
    pub fn numpy_str(self) -> &'static str {
        // ASCII by construction, so the conversion cannot fail.
        self.numpy_cstr().to_str().unwrap_or("")
    }

    /// [`Dtype::numpy_str`] as a static NUL-terminated string, for the C layer to hand out
    /// without allocating.
    pub fn numpy_cstr(self) -> &'static std::ffi::CStr {
        use Dtype::*;
        #[cfg(target_endian = "little")]
        let s = match self {
            Bool => c"|b1",
            Int8 => c"|i1",
            Uint8 => c"|u1",
            Int16 => c"<i2",
            Uint16 => c"<u2",
            Int32 => c"<i4",
            Uint32 => c"<u4",
            Int64 => c"<i8",
            Uint64 => c"<u8",
            Float16 => c"<f2",
            Float32 => c"<f4",
            Float64 => c"<f8",
            Complex64 => c"<c8",
            Complex128 => c"<c16",
        };
        #[cfg(target_endian = "big")]
        let s = match self {
            Bool => c"|b1",
            Int8 => c"|i1",
            Uint8 => c"|u1",
            Int16 => c">i2",
            Uint16 => c">u2",
            Int32 => c">i4",
            Uint32 => c">u4",
            Int64 => c">i8",
            Uint64 => c">u8",
            Float16 => c">f2",
            Float32 => c">f4",
            Float64 => c">f8",
            Complex64 => c">c8",
            Complex128 => c">c16",
        };
        s
    }

    /// Parses a numpy type string or name: `"<f8"`, `"=f8"`, `"f8"`, `"float64"`, `"?"`,
    /// `"|u1"`, `"uint8"`, `"d"`, `"complex128"`. Non-native byte order and types outside
    /// the 14 supported ones are errors that name the string.
    pub fn from_numpy_str(s: &str) -> Result<Dtype> {
        let t = s.trim();
        if let Some(d) = ALL_DTYPES.iter().find(|d| d.name() == t) {
            return Ok(*d);
        }
        // numpy's one-letter codes (platform C types, LP64 here) and common aliases.
        let alias = match t {
            "?" | "bool_" => Some(Dtype::Bool),
            "b" | "byte" => Some(Dtype::Int8),
            "B" | "ubyte" => Some(Dtype::Uint8),
            "h" | "short" => Some(Dtype::Int16),
            "H" | "ushort" => Some(Dtype::Uint16),
            "i" | "intc" => Some(Dtype::Int32),
            "I" | "uintc" => Some(Dtype::Uint32),
            "q" | "longlong" => Some(Dtype::Int64),
            "Q" | "ulonglong" => Some(Dtype::Uint64),
            "e" | "half" => Some(Dtype::Float16),
            "f" | "single" => Some(Dtype::Float32),
            "d" | "double" | "float" => Some(Dtype::Float64),
            "F" | "csingle" => Some(Dtype::Complex64),
            "D" | "cdouble" | "complex" => Some(Dtype::Complex128),
            _ => None,
        };
        if let Some(d) = alias {
            return Ok(d);
        }
        let unsupported = || {
            Error::new(
                crate::ErrorKind::Unsupported,
                format!(
                    "unsupported dtype {t:?}: ndshm supports bool, int8..int64, uint8..uint64, \
                     float16, float32, float64, complex64 and complex128 in native byte order"
                ),
            )
        };
        let mut chars = t.chars();
        let (order, rest) = match chars.next() {
            Some(c @ ('<' | '>' | '=' | '|')) => (Some(c), chars.as_str()),
            Some(_) => (None, t),
            None => return Err(Error::invalid("empty dtype string")),
        };
        let mut rc = rest.chars();
        let kind = rc.next().ok_or_else(unsupported)?;
        let size: usize = rc.as_str().parse().map_err(|_| unsupported())?;
        let d = ALL_DTYPES
            .iter()
            .copied()
            .find(|d| d.kind_and_name().0 == kind && d.itemsize() == size)
            .ok_or_else(unsupported)?;
        match order {
            Some('=') | None => {}
            Some('|') if size == 1 => {}
            Some('|') => return Err(unsupported()),
            Some(c) if size == 1 || c == NATIVE => {}
            Some(_) => {
                return Err(Error::new(
                    crate::ErrorKind::Unsupported,
                    format!(
                        "unsupported dtype {t:?}: non-native byte order (this machine is {})",
                        if NATIVE == '<' {
                            "little-endian"
                        } else {
                            "big-endian"
                        }
                    ),
                ));
            }
        }
        Ok(d)
    }

    /// The numpy type number SharedArray stores for this dtype on this platform
    /// (LP64: int64 is `NPY_LONG` = 7).
    pub fn numpy_typenum(self) -> i32 {
        use Dtype::*;
        match self {
            Bool => 0,
            Int8 => 1,
            Uint8 => 2,
            Int16 => 3,
            Uint16 => 4,
            Int32 => 5,
            Uint32 => 6,
            Int64 => LONG64_TYPENUM.0,
            Uint64 => LONG64_TYPENUM.1,
            Float32 => 11,
            Float64 => 12,
            Complex64 => 14,
            Complex128 => 15,
            Float16 => 23,
        }
    }

    /// The dtype for a numpy type number read from a SharedArray trailer, checked against
    /// the item size also stored there. `NPY_LONG`/`NPY_LONGLONG` (7/9) and their
    /// unsigned forms are both accepted when the item size says 8 bytes, and `NPY_LONG`
    /// with item size 4 (an ILP32 creator) as int32.
    pub fn from_numpy_typenum(typenum: i32, itemsize: i32) -> Option<Dtype> {
        use Dtype::*;
        let d = match (typenum, itemsize) {
            (0, 1) => Bool,
            (1, 1) => Int8,
            (2, 1) => Uint8,
            (3, 2) => Int16,
            (4, 2) => Uint16,
            (5, 4) | (7, 4) => Int32,
            (6, 4) | (8, 4) => Uint32,
            (7, 8) | (9, 8) => Int64,
            (8, 8) | (10, 8) => Uint64,
            (11, 4) => Float32,
            (12, 8) => Float64,
            (14, 8) => Complex64,
            (15, 16) => Complex128,
            (23, 2) => Float16,
            _ => return None,
        };
        Some(d)
    }
}

#[cfg(target_pointer_width = "64")]
const LONG64_TYPENUM: (i32, i32) = (7, 8);
#[cfg(not(target_pointer_width = "64"))]
const LONG64_TYPENUM: (i32, i32) = (9, 10);

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Dtype {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Dtype::from_numpy_str(s)
    }
}

/// IEEE 754 binary16, stored as its bits (ndshm does no half-precision arithmetic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(transparent)]
pub struct F16(pub u16);

/// numpy's bool: one byte. Kept as a byte because another process may store any value
/// in it, and a Rust `bool` holding 2 would be undefined behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(transparent)]
pub struct Bool8(pub u8);

/// A complex number as numpy lays it out: real part, then imaginary part.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[repr(C)]
pub struct Complex<T> {
    /// Real part.
    pub re: T,
    /// Imaginary part.
    pub im: T,
}

/// Rust types that can view array elements.
///
/// # Safety
/// Implementors must be plain old data: `Copy`, no padding, valid for every bit pattern
/// (another process may write any bytes), with size equal to `DTYPE.itemsize()` and
/// alignment no larger than it.
pub unsafe trait Element: Copy + Default + 'static {
    /// The dtype this Rust type views.
    const DTYPE: Dtype;
}

macro_rules! element {
    ($($t:ty => $d:ident),* $(,)?) => {$(
        // SAFETY: a primitive (or repr(C/transparent) wrapper of primitives) of exactly
        // the dtype's size, without padding, valid for any bit pattern.
        unsafe impl Element for $t { const DTYPE: Dtype = Dtype::$d; }
    )*};
}
element! {
    Bool8 => Bool, i8 => Int8, u8 => Uint8, i16 => Int16, u16 => Uint16,
    i32 => Int32, u32 => Uint32, i64 => Int64, u64 => Uint64, F16 => Float16,
    f32 => Float32, f64 => Float64, Complex<f32> => Complex64, Complex<f64> => Complex128,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for (i, d) in ALL_DTYPES.iter().enumerate() {
            assert_eq!(d.code(), i as i32);
            assert_eq!(Dtype::from_code(i as i32), Some(*d));
            assert_eq!(Dtype::from_numpy_str(d.numpy_str()).unwrap(), *d);
            assert_eq!(Dtype::from_numpy_str(d.name()).unwrap(), *d);
            let n = d.numpy_typenum();
            assert_eq!(Dtype::from_numpy_typenum(n, d.itemsize() as i32), Some(*d));
        }
        assert_eq!(Dtype::from_code(14), None);
        assert_eq!(Dtype::from_code(-1), None);
    }

    #[test]
    fn parse_variants() {
        assert_eq!(Dtype::from_numpy_str("f8").unwrap(), Dtype::Float64);
        assert_eq!(Dtype::from_numpy_str("=i4").unwrap(), Dtype::Int32);
        assert_eq!(Dtype::from_numpy_str("|u1").unwrap(), Dtype::Uint8);
        assert_eq!(Dtype::from_numpy_str("<u1").unwrap(), Dtype::Uint8);
        assert_eq!(Dtype::from_numpy_str("?").unwrap(), Dtype::Bool);
        assert_eq!(Dtype::from_numpy_str("c16").unwrap(), Dtype::Complex128);
        for bad in [
            "<f16", "O", "|S5", "<U3", "V8", "<M8", "|i2", "float128", "x",
        ] {
            let e = Dtype::from_numpy_str(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Unsupported, "{bad}");
            assert!(e.message().contains(bad), "{bad}: {}", e.message());
        }
        assert_eq!(
            Dtype::from_numpy_str("").unwrap_err().kind(),
            crate::ErrorKind::Invalid
        );
        #[cfg(target_endian = "little")]
        {
            let e = Dtype::from_numpy_str(">f8").unwrap_err();
            assert!(e.message().contains("byte order"));
        }
    }

    #[test]
    fn typenum_checks_itemsize() {
        assert_eq!(Dtype::from_numpy_typenum(12, 4), None);
        assert_eq!(Dtype::from_numpy_typenum(9, 8), Some(Dtype::Int64));
        assert_eq!(Dtype::from_numpy_typenum(17, 8), None); // object
    }
}
