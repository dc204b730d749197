//! `nbytes_for` on arbitrary shapes (up to 40 dimensions, more than ndshm accepts) and
//! item sizes. Input: the item size as 8 little-endian bytes, then each dimension as 8
//! little-endian bytes (a trailing partial dimension is ignored). It must never panic,
//! and its answer must agree with an exact 128-bit computation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ndshm::format::nbytes_for;

fuzz_target!(|data: &[u8]| {
    let Some((item, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let itemsize = u64::from_le_bytes(*item) as usize;
    let shape: Vec<i64> = rest
        .chunks_exact(8)
        .take(40)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let r = nbytes_for(&shape, itemsize);
    if let Err(e) = &r {
        // The message names the shape; formatting it must not panic either.
        let _ = e.to_string();
    }

    let negative = shape.iter().any(|&d| d < 0);
    let zero = shape.contains(&0);
    // itemsize × the product of the nonzero dimensions, if it is at most isize::MAX.
    // All factors are ≥ 1, so the running product only grows: stop at the first excess.
    let mut exact = Some(itemsize as u128).filter(|&e| e <= isize::MAX as u128);
    for &d in shape.iter().filter(|&&d| d > 0) {
        exact = exact
            .and_then(|e| e.checked_mul(d as u128))
            .filter(|&e| e <= isize::MAX as u128);
    }

    if negative {
        assert!(r.is_err(), "negative dimension accepted: {shape:?} → {r:?}");
        return;
    }
    if let Ok(n) = r {
        assert!(n <= isize::MAX as u64, "{shape:?} × {itemsize} → {n}");
    }
    if zero {
        // Empty. Whether a shape whose nonzero dimensions overflow is refused is a
        // policy choice; one whose nonzero product fits must be accepted as 0 bytes.
        if let Ok(n) = r {
            assert_eq!(n, 0, "{shape:?} × {itemsize}");
        }
        if exact.is_some() {
            assert_eq!(r.ok(), Some(0), "{shape:?} × {itemsize}");
        }
    } else if itemsize > 0 {
        assert_eq!(r.ok(), exact.map(|e| e as u64), "{shape:?} × {itemsize}");
    }
});
