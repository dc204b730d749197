//! `ndshm gc`: removes what dead processes left behind, and only arrays.
//!
//! * An array whose creator died before it became ready (state INITIALISING, creator
//!   known to be dead): nobody can ever use it; attachers get "owner died".
//! * With `--unused`, a ready array whose creator is known to be dead and that no live
//!   process maps (by device and inode in /proc/*/maps, see `ndshm::procs`); an array
//!   that some process might map without this user being able to see it is kept.
//! * A creator's leftover temporary file `.ndshm-tmp.PID.N.X` (docs/FORMAT.md,
//!   "Fallback") whose PID is dead, only if the file positively is an array.
//!
//! Every removal goes through the library's delete, which refuses anything that is not
//! an array; arrays whose creator is alive or unknown (another host, SharedArray
//! segments, which record none) are never removed.

use std::path::{Path, PathBuf};

use clap::Args;
use ndshm::format::Creator;
use ndshm::{Array, Info, ProcessMaps, State};

use crate::{Failure, Result, out, report};

/// The prefix of a creator's temporary names (docs/FORMAT.md, "Creating a segment").
const TEMP_PREFIX: &str = ".ndshm-tmp.";

#[derive(Args)]
pub struct GcArgs {
    /// A directory to clean instead of /dev/shm (and $NDSHM_DIR)
    dir: Option<PathBuf>,
    /// Print what would be removed, remove nothing
    #[arg(long)]
    dry_run: bool,
    /// Also remove ready arrays that no live process maps and whose creator has exited
    #[arg(long)]
    unused: bool,
}

/// Why an array is garbage, or `None` to keep it.
fn verdict(i: &Info, maps: Option<&ProcessMaps>) -> Result<Option<String>> {
    let Some(c) = &i.creator else {
        return Ok(None); // SharedArray: no creator recorded
    };
    if i.creator_alive != Some(false) {
        return Ok(None);
    }
    match (i.state, maps) {
        (State::Initialising, _) => Ok(Some(format!(
            "its creator (pid {}) died before it was ready",
            c.pid
        ))),
        (State::Ready, Some(maps)) => {
            let m = match maps.mappers(i.name.as_str()) {
                Ok(m) => m,
                Err(e) if e.kind() == ndshm::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            Ok(m.is_unused().then(|| {
                format!(
                    "unused: no process maps it and its creator (pid {}) has exited",
                    c.pid
                )
            }))
        }
        _ => Ok(None),
    }
}

/// `.ndshm-tmp.PID.N.X` → PID.
fn temp_pid(file_name: &str) -> Option<i32> {
    let rest = file_name.strip_prefix(TEMP_PREFIX)?;
    let pid: i32 = rest.split('.').next()?.parse().ok()?;
    (pid > 0).then_some(pid)
}

/// Leftover temporary files in `dir` whose creating process is dead: (array name, pid).
fn temp_files(dir: &Path) -> Vec<(String, i32)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<(String, i32)> = entries
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            let pid = temp_pid(&n)?;
            let creator = Creator {
                pid,
                ..Creator::default()
            };
            (ndshm::creator_alive(&creator) == Some(false))
                .then(|| (format!("file://{}", dir.join(&n).display()), pid))
        })
        .collect();
    v.sort();
    v
}

pub fn gc(a: GcArgs) -> Result<()> {
    let arrays = ndshm::list(a.dir.as_deref())?;
    let dirs: Vec<PathBuf> = match &a.dir {
        Some(d) => vec![d.clone()],
        None => std::iter::once(PathBuf::from(ndshm::name::SHM_DIR))
            .chain(ndshm::name::redirect_dir())
            .collect(),
    };
    let maps = a.unused.then(ProcessMaps::read);
    let mut doomed: Vec<(String, String)> = Vec::new();
    for i in &arrays {
        if let Some(why) = verdict(i, maps.as_ref())? {
            doomed.push((i.name.as_str().to_string(), why));
        }
    }
    for d in &dirs {
        for (name, pid) in temp_files(d) {
            // Only a file that positively is an array, whose own creator is not alive.
            match ndshm::info(&name) {
                Ok(i) if i.creator_alive != Some(true) => doomed.push((
                    name,
                    format!("temporary file of a creator (pid {pid}) that died"),
                )),
                Ok(_) => {}
                Err(e) => out(&format!("kept {name}: {}\n", e.message())),
            }
        }
    }
    let mut failed = false;
    for (name, why) in &doomed {
        if a.dry_run {
            out(&format!("would remove {name}: {why}\n"));
            continue;
        }
        match Array::delete(name) {
            Ok(()) => out(&format!("removed {name}: {why}\n")),
            // Gone meanwhile (another gc, or its owner): nothing to do.
            Err(e) if e.kind() == ndshm::ErrorKind::NotFound => {}
            Err(e) => {
                report(&e);
                failed = true;
            }
        }
    }
    if doomed.is_empty() {
        out("nothing to remove\n");
    }
    if failed {
        return Err(Failure::Reported);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names() {
        assert_eq!(temp_pid(".ndshm-tmp.1234.0.9af3"), Some(1234));
        assert_eq!(temp_pid(".ndshm-tmp.x.0.1"), None);
        assert_eq!(temp_pid(".ndshm-tmp.-5.0.1"), None);
        assert_eq!(temp_pid("ndshm-tmp.12.0.1"), None);
    }
}
