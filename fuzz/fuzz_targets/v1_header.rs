//! `Header::decode` on arbitrary bytes: it must return (never panic), and every header
//! it accepts must survive `encode` → `decode` unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ndshm::format::{CHECKED_BYTES, Header, header_checksum, off};

fn check(b: &[u8]) {
    let Ok(h) = Header::decode(b) else { return };
    let again = h.encode();
    match Header::decode(&again) {
        Ok(h2) => assert_eq!(h2, h, "encode then decode changed an accepted header"),
        Err(e) => panic!("decode accepted a header whose own encoding it rejects: {e}\n{h:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    // Mutated bytes almost never carry a valid CRC-32, which would stop nearly every
    // input at the checksum test; decode a copy with the checksum fixed up too, so the
    // field checks behind it are reached.
    if data.len() >= CHECKED_BYTES {
        let mut b = data.to_vec();
        let crc = header_checksum(&b);
        b[off::CHECKSUM..off::CHECKSUM + 4].copy_from_slice(&crc.to_ne_bytes());
        check(&b);
    }
});
