//! `sharedarray_decode` on arbitrary trailers and file sizes. Input: the file size as
//! 8 little-endian bytes, then the file's tail. It must return (never panic); what it
//! accepts must be self-consistent and survive `sharedarray_encode` → decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ndshm::format::{MAX_NDIM, nbytes_for, sharedarray_decode, sharedarray_encode};

fuzz_target!(|data: &[u8]| {
    let Some((size, tail)) = data.split_first_chunk::<8>() else {
        return;
    };
    let file_size = u64::from_le_bytes(*size);
    let Some(Ok((g, _))) = sharedarray_decode(tail, file_size) else {
        return;
    };
    assert!(g.shape.len() <= MAX_NDIM, "{g:?}");
    assert_eq!(
        nbytes_for(&g.shape, g.dtype.itemsize()).ok(),
        Some(g.nbytes),
        "{g:?}"
    );
    assert!(g.capacity >= g.nbytes, "{g:?}");
    assert!(
        g.check_fits(file_size).is_ok(),
        "{g:?} in {file_size} bytes"
    );

    // Write it back as a numpy-2 trailer after the data and read that.
    let t = sharedarray_encode(&g);
    let file_size2 = g.nbytes + t.len() as u64;
    match sharedarray_decode(&t, file_size2) {
        Some(Ok((g2, _))) => assert_eq!(g2, g, "encode then decode changed the geometry"),
        Some(Err(e)) => panic!("decode rejects the encoding of a geometry it accepted: {e}\n{g:?}"),
        None => panic!("no trailer found in the encoding of {g:?}"),
    }
});
