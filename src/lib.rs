//! ndshm: named, typed, page-aligned N-dimensional arrays in POSIX shared memory or in
//! files, in one segment format that C, C++, Fortran, Julia, Python and Rust share with
//! zero copies.
//!
//! ```no_run
//! use ndshm::{Array, AttachOptions, CreateOptions, Dtype};
//!
//! // Process A
//! let mut a = Array::create("shm://sim-out", &[3, 4], Dtype::Float64, &CreateOptions::default())?;
//! a.as_mut_slice::<f64>()?.iter_mut().enumerate().for_each(|(i, x)| *x = i as f64);
//!
//! // Process B
//! let b = Array::attach("shm://sim-out", &AttachOptions { readonly: true, ..Default::default() })?;
//! assert_eq!(b.as_slice::<f64>()?[5], 5.0);
//! # ndshm::Array::delete("shm://sim-out")?;
//! # Ok::<(), ndshm::Error>(())
//! ```
//!
//! The C ABI (`sa_*` functions, `include/ndshm.h`) wraps this API one to one; see
//! `docs/FORMAT.md` for the segment layout.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(not(unix))]
compile_error!("ndshm supports POSIX systems only");

mod array;
pub mod dtype;
mod error;
pub mod ffi;
pub mod format;
mod list;
pub mod name;
mod sys;

pub use array::{Array, AttachOptions, CreateOptions, Expect, Share, flags, ms};
pub use dtype::{Bool8, Complex, Dtype, Element, F16};
pub use error::{Error, ErrorKind, Result};
pub use format::{Order, SegmentFormat};
pub use list::{Info, State, info, list};
pub use name::{ArrayName, Backend};
pub use sys::{creator_alive, page_size, space};

/// The library version, e.g. `"0.1.0"`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
