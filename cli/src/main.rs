//! `ndshm`: see, create, remove and clean up shared-memory arrays from the shell.
//!
//! Exit status: 0 on success, 1 when an operation failed (the library's message on
//! stderr), 2 for a usage error (clap's). Uses only the public API of the `ndshm` crate.

mod create;
mod gc;
mod progress;
mod show;
mod transfer;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "ndshm",
    version,
    about = "Named N-dimensional arrays in shared memory: list, inspect, create, load, save, \
             remove, clean up",
    after_help = "Names: shm://NAME or NAME (/dev/shm/NAME, or $NDSHM_DIR/NAME when NDSHM_DIR \
                  is set), file://PATH. Exit status: 0 success, 1 operational error, 2 usage error."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the arrays in shared memory (or in DIR) as a table; other files are skipped
    List {
        /// A directory to list instead of /dev/shm (and $NDSHM_DIR)
        dir: Option<PathBuf>,
        /// Print a JSON array instead of the table
        #[arg(long)]
        json: bool,
    },
    /// Show every header field of an array, its attributes and which processes map it
    Info {
        /// The array: shm://NAME, NAME or file://PATH
        name: String,
        /// Print a JSON object
        #[arg(long)]
        json: bool,
    },
    /// Create an array (zero-filled unless --fill)
    Create(create::CreateArgs),
    /// Load a .npy (or npio, or raw) file into a shared array, unless it is there already
    Load(transfer::LoadArgs),
    /// Save an array (or some of its rows) to a .npy file, atomically
    Save(transfer::SaveArgs),
    /// Remove arrays (only arrays: other files are refused and left alone)
    Rm {
        /// The arrays to remove
        #[arg(required = true)]
        names: Vec<String>,
        /// Also remove an array whose creator is alive and still initialising it
        #[arg(long)]
        in_progress: bool,
    },
    /// Remove abandoned arrays: those whose creator died before they became ready, the
    /// creators' leftover temporary files and, with --unused, unused arrays
    Gc(gc::GcArgs),
}

/// How `ndshm` reports a failure.
#[derive(Debug)]
pub enum Failure {
    /// The library's error, printed with its message.
    Lib(ndshm::Error),
    /// A message of the tool itself.
    Msg(String),
    /// Already reported (e.g. some of several arrays could not be removed).
    Reported,
}

impl From<ndshm::Error> for Failure {
    fn from(e: ndshm::Error) -> Self {
        Failure::Lib(e)
    }
}

pub type Result<T, E = Failure> = std::result::Result<T, E>;

/// Prints an error to stderr: the library's message, then the command-line switch
/// that would lift it, when there is one.
pub fn report(e: &ndshm::Error) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "ndshm: {}", e.message());
    let switch = match e.option() {
        Some(ndshm::Opt::Force) => Some("--force"),
        Some(ndshm::Opt::InProgress) => Some("--in-progress (ndshm rm)"),
        _ => None,
    };
    if let Some(s) = switch {
        let _ = writeln!(err, "ndshm: on the command line: {s}");
    }
}

/// Writes to stdout; a closed pipe (`ndshm list | head -1`) ends the program quietly.
pub fn out(text: &str) {
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(text.as_bytes()).and_then(|_| o.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        let _ = writeln!(std::io::stderr(), "ndshm: writing the output: {e}");
        std::process::exit(1);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OrderArg {
    /// Row-major (numpy's default)
    C,
    /// Column-major (Fortran, Julia)
    F,
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::List { dir, json } => show::list(dir.as_deref(), json),
        Cmd::Info { name, json } => show::info(&name, json),
        Cmd::Create(a) => create::create(a),
        Cmd::Rm { names, in_progress } => {
            let opts = ndshm::DeleteOptions { in_progress };
            let mut failed = false;
            for n in &names {
                match ndshm::Array::delete_with(n, &opts) {
                    Ok(()) => out(&format!("removed {n}\n")),
                    Err(e) => {
                        report(&e);
                        failed = true;
                    }
                }
            }
            if failed {
                Err(Failure::Reported)
            } else {
                Ok(())
            }
        }
        Cmd::Gc(a) => gc::gc(a),
        Cmd::Load(a) => transfer::load(a),
        Cmd::Save(a) => transfer::save(a),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse(); // usage errors exit 2, --help and --version 0
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            match f {
                Failure::Lib(e) => report(&e),
                Failure::Msg(m) => eprintln!("ndshm: {m}"),
                Failure::Reported => {}
            }
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
