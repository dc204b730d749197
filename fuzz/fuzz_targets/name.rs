//! `ArrayName::parse_with` on arbitrary UTF-8 (other inputs are skipped), without and
//! with a redirect directory. It must return (never panic); an accepted name's
//! canonical form must parse again to the same name, and whether a name is valid must
//! not depend on the redirect.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use ndshm::name::{ArrayName, Backend};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let plain = ArrayName::parse_with(s, None);
    let redirected = ArrayName::parse_with(s, Some(Path::new("/tmp/x")));
    assert_eq!(
        plain.is_ok(),
        redirected.is_ok(),
        "validity of {s:?} depends on the redirect: {plain:?} vs {redirected:?}"
    );
    for (n, dir) in [(plain, None), (redirected, Some(Path::new("/tmp/x")))] {
        let Ok(n) = n else { continue };
        let c = n.as_str();
        assert_eq!(n.to_string(), c);
        assert!(
            c.starts_with("shm://") || c.starts_with("file://") || c.starts_with("npy://"),
            "{s:?} gave {c:?}"
        );
        assert_eq!(n.is_npy(), c.starts_with("npy://"), "{s:?}");
        match ArrayName::parse_with(c, dir) {
            Ok(again) => assert_eq!(again, n, "{s:?}: {c:?} parses to another name"),
            Err(e) => panic!("{s:?} parsed, but its canonical form {c:?} does not: {e}"),
        }
        match n.backend() {
            Backend::Shm(x) => {
                assert!(dir.is_none(), "{s:?} was not redirected into {dir:?}");
                assert_eq!(c.strip_prefix("shm://"), Some(x.as_str()));
                assert!(
                    !x.is_empty() && !x.contains(['/', '\0']),
                    "{s:?} gave {x:?}"
                );
            }
            Backend::File(p) => {
                use std::os::unix::ffi::OsStrExt;
                assert!(!p.as_os_str().as_bytes().contains(&0), "{s:?} gave {p:?}");
                assert!(!p.as_os_str().is_empty(), "{s:?} gave an empty path");
            }
        }
    }
});
