//! The checked-in header must equal what cbindgen generates from the sources, and its
//! version macros must match Cargo.toml.

use std::path::Path;

#[test]
fn header_is_up_to_date() {
    let generated = std::fs::read_to_string(env!("NDSHM_GENERATED_HEADER"))
        .expect("build.rs generates the header");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/ndshm.h");
    if std::env::var_os("NDSHM_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "include/ndshm.h is stale: regenerate it with `NDSHM_BLESS=1 cargo test --test header` \
         and commit the result"
    );
}

#[test]
fn header_version_matches_cargo() {
    // The generated header: the checked-in copy equals it whenever the test above
    // passes, and reading it does not race with blessing.
    let h = std::fs::read_to_string(env!("NDSHM_GENERATED_HEADER")).unwrap();
    let v = env!("CARGO_PKG_VERSION");
    assert!(
        h.contains(&format!("#define NDSHM_VERSION \"{v}\"")),
        "NDSHM_VERSION"
    );
    for (macro_name, val) in [
        ("NDSHM_VERSION_MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("NDSHM_VERSION_MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("NDSHM_VERSION_PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ] {
        assert!(
            h.contains(&format!("#define {macro_name} {val}\n")),
            "{macro_name} must be {val}: update after_includes in cbindgen.toml"
        );
    }
}

#[test]
fn every_function_is_declared_once() {
    let h = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/ndshm.h"))
        .unwrap();
    let mut names: Vec<&str> = h
        .lines()
        .filter(|l| {
            !l.starts_with(' ') && !l.starts_with('#') && l.contains("sa_") && l.contains('(')
        })
        .filter_map(|l| l.split('(').next()?.rsplit([' ', '*']).next())
        .filter(|n| n.starts_with("sa_"))
        .collect();
    let n = names.len();
    assert!(n > 30, "found only {n} declarations");
    names.sort();
    names.dedup();
    assert_eq!(
        names.len(),
        n,
        "a function is declared more than once in include/ndshm.h"
    );
}
