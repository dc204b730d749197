//! ndshm: named, typed, page-aligned N-dimensional arrays in POSIX shared memory or in
//! files, in one segment format that C, C++, Fortran, Julia, Python and Rust share with
//! zero copies.
//!
//! ```no_run
//! use ndshm::{Array, AttachOptions, CreateOptions, Dtype};
//!
//! // Process A
//! let mut a = Array::create("shm://sim-out", &[3, 4], Dtype::Float64, &CreateOptions::default())?;
//! let values: Vec<f64> = (0..12).map(f64::from).collect();
//! a.copy_from(&values)?;
//!
//! // Process B
//! let b = Array::attach("shm://sim-out", &AttachOptions::default().readonly(true))?;
//! assert_eq!(b.get::<f64>(5)?, 5.0);
//! assert_eq!(b.to_vec::<f64>()?, values);
//! # ndshm::Array::delete("shm://sim-out")?;
//! # Ok::<(), ndshm::Error>(())
//! ```
//!
//! Other processes may write an array's memory at any time, so the safe API copies
//! through raw pointers and never hands out `&[T]` over shared memory; see [`Array`]'s
//! module documentation and docs/FORMAT.md ("Memory model").
//!
//! Layout of the crate: [`format`] is the byte format (pure), `segment` the protocol for
//! writing and reading a segment, `sys` the OS calls, `array` the handle, `list` listing,
//! `details` a whole header, [`procs`] which processes map an array (the `ndshm` tool's
//! `info` and `gc`), and [`ffi`] the C ABI, which only converts arguments and calls this
//! API.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(not(target_os = "linux"))]
compile_error!("ndshm supports Linux only for now: it relies on /dev/shm, O_TMPFILE and /proc");

mod array;
pub mod dataset;
mod details;
pub mod dtype;
mod error;
pub mod ffi;
pub mod format;
mod grow;
mod list;
pub mod name;
pub mod npy;
mod options;
pub mod procs;
mod segment;
pub mod store;
mod sync;
mod sys;

pub use array::Array;
pub use dataset::{FileFormat, LoadOptions, Outcome};
pub use details::{Details, SyncWords, details};
pub use dtype::{Bool8, Complex, Dtype, Element, F16};
pub use error::{Error, ErrorKind, Opt, Result};
pub use format::{Order, SegmentFormat, SharedArrayAbi, State};
pub use list::{Info, info, list};
pub use name::{ArrayName, Backend};
pub use options::{AttachOptions, CreateOptions, DeleteOptions, Expect, Flush, ShapeExpect, Share};
pub use procs::{Mapper, Mappers, ProcessMaps, mappers};
pub use store::{Entry as StoreEntry, EntryFormat, Store};
pub use sync::{LIVENESS_INTERVAL, LockStart, Snapshot, WriteStart};
pub use sys::{creator_alive, page_size, space};

/// The library version, e.g. `"0.1.0"`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
