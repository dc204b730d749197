//! Generates the C header from the FFI sources into OUT_DIR. The checked-in copy in
//! include/ndshm.h is compared against it by tests/header.rs.
use std::{env, path::PathBuf};

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("ndshm.h");
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml must parse");
    // Only the C layer is parsed (cbindgen follows its `mod` declarations): the core's
    // public Rust items are not part of the ABI.
    let builder = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/ffi/mod.rs"));
    match builder.generate() {
        Ok(bindings) => {
            bindings.write_to_file(&out);
        }
        // A syntax error in the sources is reported by rustc itself; do not mask it.
        Err(e) => println!("cargo:warning=cbindgen failed: {e}"),
    }
    println!("cargo:rustc-env=NDSHM_GENERATED_HEADER={}", out.display());
    println!(
        "cargo:rustc-env=NDSHM_TARGET={}",
        env::var("TARGET").unwrap()
    );
    // Versioned SONAME so C consumers link against the ABI, not the file.
    let major = env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    let minor = env::var("CARGO_PKG_VERSION_MINOR").unwrap();
    let abi = if major == "0" {
        format!("0.{minor}")
    } else {
        major
    };
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libndshm.so.{abi}");
    }
}
