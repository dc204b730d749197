//! `ndshm load` and `ndshm save`, through the library's `ndshm::dataset`.

use std::ops::Range;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use indicatif::HumanBytes;
use ndshm::dataset::{self, FileFormat, LoadOptions, Outcome};
use ndshm::{Array, AttachOptions, Dtype, Order};

use crate::create::{Shape, ShareArg, parse_dtype, parse_shape, share};
use crate::progress::Bar;
use crate::show::{order_name, shape_str};
use crate::{OrderArg, Result, out};

/// Rows `a:b` of axis 0 (`a` included, `b` excluded, as in Python).
pub fn parse_rows(s: &str) -> std::result::Result<Range<i64>, String> {
    let bad = || format!("{s:?} is not a row range: write START:END, e.g. 0:1000");
    let (a, b) = s.split_once(':').ok_or_else(bad)?;
    let a: i64 = a.trim().parse().map_err(|_| bad())?;
    let b: i64 = b.trim().parse().map_err(|_| bad())?;
    if a < 0 || b < a {
        return Err(format!(
            "{s:?}: a row range needs 0 <= START <= END (END excluded)"
        ));
    }
    Ok(a..b)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// numpy .npy (versions 1.0 to 3.0, either order, either byte order)
    Npy,
    /// cdxcore's npio files
    Npio,
    /// Raw elements: give --dtype and --shape (and --offset, --order)
    Raw,
}

#[derive(Args)]
pub struct LoadArgs {
    /// The file to load
    file: PathBuf,
    /// The array to load it into: shm://NAME, NAME or file://PATH
    name: String,
    /// Only rows START:END of axis 0 (END excluded)
    #[arg(long, value_parser = parse_rows)]
    rows: Option<Range<i64>>,
    /// The file's layout
    #[arg(long, value_enum, default_value = "npy")]
    format: FormatArg,
    /// Raw files: the element type (f8, int32, ...)
    #[arg(long, value_parser = parse_dtype, required_if_eq("format", "raw"))]
    dtype: Option<Dtype>,
    /// Raw files: the shape of the whole array in the file, e.g. 100,3
    #[arg(long, value_parser = parse_shape, required_if_eq("format", "raw"))]
    shape: Option<Shape>,
    /// Raw files: the byte offset of the first element
    #[arg(long, default_value_t = 0)]
    offset: u64,
    /// Raw files: the storage order in the file
    #[arg(long, value_enum, ignore_case = true, default_value = "c")]
    order: OrderArg,
    /// Load a fresh copy and replace an existing array of that name (atomically)
    #[arg(long)]
    force: bool,
    /// Fail if the array exists, instead of attaching it when it has the same shape,
    /// dtype and order
    #[arg(long)]
    exclusive: bool,
    /// Wait at most this many seconds for another process loading the same array
    #[arg(long)]
    timeout: Option<f64>,
    /// Who may open a new array
    #[arg(long, value_enum, default_value = "owner")]
    share: ShareArg,
}

#[derive(Args)]
pub struct SaveArgs {
    /// The array to save: shm://NAME, NAME or file://PATH
    name: String,
    /// The .npy file to write (replaced atomically if it exists)
    file: PathBuf,
    /// Only rows START:END of axis 0 (END excluded)
    #[arg(long, value_parser = parse_rows)]
    rows: Option<Range<i64>>,
}

/// A progress callback drawing `bar`, and the bar.
fn with_bar<T>(msg: String, f: impl FnOnce(&mut dyn FnMut(u64, u64)) -> T) -> T {
    let mut bar: Option<Bar> = None;
    let r = f(&mut |done, total| {
        bar.get_or_insert_with(|| Bar::new(total, &msg)).set(done);
    });
    if let Some(b) = bar {
        b.finish();
    }
    r
}

fn rate(bytes: u64, t: Duration) -> String {
    let s = t.as_secs_f64();
    if s < 0.1 {
        return format!("{:.0} ms", s * 1000.0);
    }
    format!("{s:.2} s, {}/s", HumanBytes((bytes as f64 / s) as u64))
}

pub fn load(a: LoadArgs) -> Result<()> {
    let format = match a.format {
        FormatArg::Npy => FileFormat::Npy,
        FormatArg::Npio => FileFormat::Npio,
        FormatArg::Raw => FileFormat::Raw {
            dtype: a.dtype.expect("clap requires --dtype with --format raw"),
            shape: a.shape.expect("clap requires --shape with --format raw").0,
            order: match a.order {
                OrderArg::C => Order::C,
                OrderArg::F => Order::F,
            },
            offset: a.offset,
        },
    };
    let mut opts = LoadOptions {
        rows: a.rows.clone(),
        accept_existing: !a.exclusive,
        timeout: a.timeout.map(Duration::from_secs_f64),
        ..LoadOptions::default()
    };
    opts.create = opts.create.force(a.force).share(share(a.share));
    opts.attach = AttachOptions::default().readonly(true);
    let start = Instant::now();
    let msg = format!("loading {}", a.file.display());
    let (arr, outcome) = with_bar(msg, |cb| {
        dataset::load(&a.file, &format, &a.name, &opts, Some(cb))
    })?;
    let what = format!(
        "{} {} {} {}, {}",
        arr.name(),
        shape_str(arr.shape()),
        arr.dtype(),
        order_name(arr.order()),
        HumanBytes(arr.nbytes() as u64)
    );
    match outcome {
        Outcome::Created => out(&format!(
            "loaded {} into {what} in {}\n",
            a.file.display(),
            rate(arr.nbytes() as u64, start.elapsed())
        )),
        Outcome::Attached => out(&format!(
            "{what} exists with that shape, dtype and order: nothing loaded\n"
        )),
    }
    Ok(())
}

pub fn save(a: SaveArgs) -> Result<()> {
    let arr = Array::attach(&a.name, &AttachOptions::default().readonly(true))?;
    let start = Instant::now();
    let msg = format!("saving {}", arr.name());
    with_bar(msg, |cb| {
        dataset::save(&arr, &a.file, a.rows.clone(), Some(cb))
    })?;
    let bytes = match &a.rows {
        Some(r) if !arr.shape().is_empty() && arr.shape()[0] > 0 => {
            arr.nbytes() as u64 / arr.shape()[0] as u64 * (r.end - r.start) as u64
        }
        _ => arr.nbytes() as u64,
    };
    out(&format!(
        "saved {}{} to {} ({}) in {}\n",
        arr.name(),
        a.rows
            .as_ref()
            .map_or(String::new(), |r| format!(" rows {}:{}", r.start, r.end)),
        a.file.display(),
        HumanBytes(bytes),
        rate(bytes, start.elapsed())
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows() {
        assert_eq!(parse_rows("0:10").unwrap(), 0..10);
        assert_eq!(parse_rows(" 5 : 5 ").unwrap(), 5..5);
        assert!(parse_rows("10:5").is_err());
        assert!(parse_rows("-1:5").is_err());
        assert!(parse_rows("5").is_err());
        assert!(parse_rows("a:b").is_err());
        assert!(parse_rows("1:").is_err());
    }
}
