//! Element type codes and their numpy strings.

use std::ffi::{c_char, c_int};

use super::{guard, guard_value, out_arg, str_arg, write_out};
use crate::dtype::Dtype;
use crate::error::Error;

/// Element type code. Values are ABI and stored in segments: `SA_BOOL` ... `SA_COMPLEX128`.
/// Functions taking an `sa_dtype` reject values outside that list with `SA_ERR_INVALID`.
pub type sa_dtype = i32;

/// numpy `bool`, one byte.
pub const SA_BOOL: sa_dtype = 0;
/// `int8_t`.
pub const SA_INT8: sa_dtype = 1;
/// `uint8_t`.
pub const SA_UINT8: sa_dtype = 2;
/// `int16_t`.
pub const SA_INT16: sa_dtype = 3;
/// `uint16_t`.
pub const SA_UINT16: sa_dtype = 4;
/// `int32_t`.
pub const SA_INT32: sa_dtype = 5;
/// `uint32_t`.
pub const SA_UINT32: sa_dtype = 6;
/// `int64_t`.
pub const SA_INT64: sa_dtype = 7;
/// `uint64_t`.
pub const SA_UINT64: sa_dtype = 8;
/// IEEE binary16 (`_Float16`), stored as 2 bytes.
pub const SA_FLOAT16: sa_dtype = 9;
/// `float`.
pub const SA_FLOAT32: sa_dtype = 10;
/// `double`.
pub const SA_FLOAT64: sa_dtype = 11;
/// `float _Complex` (real, imaginary).
pub const SA_COMPLEX64: sa_dtype = 12;
/// `double _Complex` (real, imaginary).
pub const SA_COMPLEX128: sa_dtype = 13;
/// For `sa_attach_checked`: accept any dtype.
pub const SA_DTYPE_ANY: sa_dtype = -1;

/// Converts a C dtype code, naming it in the error.
pub(crate) fn dtype_arg(d: sa_dtype) -> Result<Dtype, Error> {
    Dtype::from_code(d).ok_or_else(|| {
        Error::invalid(format!(
            "unknown dtype code {d} (valid: SA_BOOL={SA_BOOL} .. SA_COMPLEX128={SA_COMPLEX128})"
        ))
    })
}

/// Parses a numpy type string or name (`"<f8"`, `"f8"`, `"float64"`, `"|u1"`, `"?"`)
/// into `*out`. Non-native byte order and unsupported types (strings, objects,
/// structured, datetime, float128) give `SA_ERR_UNSUPPORTED` naming the type;
/// NULL arguments or an empty string `SA_ERR_INVALID`. `*out` is written only on success.
///
/// # Safety
/// `str` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sa_dtype_from_str(str: *const c_char, out: *mut sa_dtype) -> c_int {
    guard(|| {
        out_arg(out, "out")?;
        // SAFETY: per this function's contract.
        let s = unsafe { str_arg(str, "str") }?;
        let d = Dtype::from_numpy_str(s)?;
        // SAFETY: checked non-NULL above; writable per the contract.
        unsafe { write_out(out, d.code()) };
        Ok(())
    })
}

/// The numpy type string of a dtype in this machine's byte order (`"<f8"`, `"|b1"`),
/// or NULL for an unknown code. Static; never freed.
#[unsafe(no_mangle)]
pub extern "C" fn sa_dtype_str(dtype: sa_dtype) -> *const c_char {
    guard_value(std::ptr::null(), || {
        Dtype::from_code(dtype).map_or(std::ptr::null(), |d| d.numpy_cstr().as_ptr())
    })
}

/// Bytes per element of a dtype, or 0 for an unknown code.
#[unsafe(no_mangle)]
pub extern "C" fn sa_dtype_itemsize(dtype: sa_dtype) -> usize {
    guard_value(0, || Dtype::from_code(dtype).map_or(0, |d| d.itemsize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn codes_match_core() {
        let c = [
            SA_BOOL,
            SA_INT8,
            SA_UINT8,
            SA_INT16,
            SA_UINT16,
            SA_INT32,
            SA_UINT32,
            SA_INT64,
            SA_UINT64,
            SA_FLOAT16,
            SA_FLOAT32,
            SA_FLOAT64,
            SA_COMPLEX64,
            SA_COMPLEX128,
        ];
        for (code, d) in c.iter().zip(crate::dtype::ALL_DTYPES) {
            assert_eq!(*code, d.code());
        }
    }

    #[test]
    fn strings_match_core() {
        for d in crate::dtype::ALL_DTYPES {
            // SAFETY: static NUL-terminated string for a valid code.
            let s = unsafe { CStr::from_ptr(sa_dtype_str(d.code())) };
            assert_eq!(s.to_str().unwrap(), d.numpy_str());
            assert_eq!(sa_dtype_itemsize(d.code()), d.itemsize());
        }
        assert!(sa_dtype_str(14).is_null());
        assert!(sa_dtype_str(-1).is_null());
        assert_eq!(sa_dtype_itemsize(99), 0);
    }
}
