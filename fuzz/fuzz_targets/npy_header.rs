//! The `.npy` and npio header parsers on arbitrary bytes. The first byte picks the
//! parser (even: `.npy`, odd: npio), the rest is the file's start. Neither may panic;
//! a `.npy` header they accept must describe a size that `nbytes_for` agrees with, and
//! re-encoding what they read must parse back to the same array.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ndshm::format::nbytes_for;
use ndshm::npy;

fuzz_target!(|data: &[u8]| {
    let Some((&which, file)) = data.split_first() else {
        return;
    };
    let parsed = if which % 2 == 0 {
        npy::npy_header_len(file).and_then(|n| npy::parse_npy(&file[..n.min(file.len())]))
    } else {
        npy::npio_header_len(file).and_then(|n| npy::parse_npio(&file[..n.min(file.len())]))
    };
    let Ok(a) = parsed else { return };
    assert_eq!(nbytes_for(&a.shape, a.dtype.itemsize()).unwrap(), a.nbytes);
    let again = npy::encode_npy(a.dtype, a.order, &a.shape);
    let b = npy::parse_npy(&again).expect("our own header parses");
    assert_eq!((b.dtype, b.order, &b.shape, b.nbytes), (a.dtype, a.order, &a.shape, a.nbytes));
    assert_eq!(b.data_offset % 64, 0);
});
