//! `ndshm create`.

use clap::{Args, CommandFactory, ValueEnum};
use ndshm::{Array, CreateOptions, Dtype, Order, Share};

use crate::{Cli, OrderArg, Result, out, progress};

/// A shape given as `100,3` (`""` or `()` for a scalar).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape(pub Vec<i64>);

pub fn parse_shape(s: &str) -> std::result::Result<Shape, String> {
    let t = s
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .trim();
    if t.is_empty() {
        return Ok(Shape(Vec::new()));
    }
    // "5," as in numpy's (5,).
    let t = t.strip_suffix(',').unwrap_or(t);
    t.split(',')
        .map(str::trim)
        .map(|d| match d.parse::<i64>() {
            Ok(v) if v >= 0 => Ok(v),
            _ => Err(format!(
                "{d:?} is not a dimension (a non-negative integer); write shapes as 100,3"
            )),
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map(Shape)
}

pub fn parse_dtype(s: &str) -> std::result::Result<Dtype, String> {
    Dtype::from_numpy_str(s).map_err(|e| e.message().to_string())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ShareArg {
    /// 0600: the owner only
    Owner,
    /// 0660: owner and group
    Group,
    /// 0666: everybody
    All,
}

pub fn share(s: ShareArg) -> Share {
    match s {
        ShareArg::Owner => Share::Owner,
        ShareArg::Group => Share::Group,
        ShareArg::All => Share::All,
    }
}

#[derive(Args)]
pub struct CreateArgs {
    /// The array: shm://NAME, NAME or file://PATH
    name: String,
    /// The shape, comma-separated: 100,3 (an empty string for a scalar)
    #[arg(long, value_parser = parse_shape, allow_hyphen_values = true)]
    shape: Shape,
    /// The element type, as numpy writes it: f8, float64, <i4, int32, u1, ?, c16, ...
    #[arg(long, value_parser = parse_dtype)]
    dtype: Dtype,
    /// Storage order
    #[arg(long, value_enum, ignore_case = true, default_value = "c")]
    order: OrderArg,
    /// Set every element to this value (true/false, an integer, a float such as 1.5,
    /// nan or inf, a complex such as 1+2j); zeros otherwise. Written after the array is
    /// named: a process attaching meanwhile may see zeros
    #[arg(long, allow_hyphen_values = true)]
    fill: Option<String>,
    /// Replace an existing array of that name (atomically; never a file that is not an
    /// array)
    #[arg(long)]
    force: bool,
    /// Who may open it
    #[arg(long, value_enum, default_value = "owner")]
    share: ShareArg,
    /// Do not reserve the memory now (a full filesystem then means SIGBUS later)
    #[arg(long)]
    sparse: bool,
}

/// The bytes of one element of `dtype` with value `v`, in native byte order.
pub fn element_bytes(dtype: Dtype, v: &str) -> std::result::Result<Vec<u8>, String> {
    let t = v.trim();
    let bad = || format!("{v:?} is not a {} value", dtype.name());
    let int = |t: &str| -> std::result::Result<i128, String> { t.parse().map_err(|_| bad()) };
    let range = || format!("{v:?} is out of range for {}", dtype.name());
    let float = |t: &str| -> std::result::Result<f64, String> {
        t.to_ascii_lowercase()
            .replace("infinity", "inf")
            .parse::<f64>()
            .map_err(|_| bad())
    };
    Ok(match dtype {
        Dtype::Bool => match t.to_ascii_lowercase().as_str() {
            "true" | "1" => vec![1],
            "false" | "0" => vec![0],
            _ => return Err(bad()),
        },
        Dtype::Int8 => i8::try_from(int(t)?)
            .map_err(|_| range())?
            .to_ne_bytes()
            .to_vec(),
        Dtype::Uint8 => u8::try_from(int(t)?)
            .map_err(|_| range())?
            .to_ne_bytes()
            .to_vec(),
        Dtype::Int16 => i16::try_from(int(t)?)
            .map_err(|_| range())?
            .to_ne_bytes()
            .to_vec(),
        Dtype::Uint16 => u16::try_from(int(t)?)
            .map_err(|_| range())?
            .to_ne_bytes()
            .to_vec(),
        Dtype::Int32 => i32::try_from(int(t)?)
            .map_err(|_| range())?
            .to_ne_bytes()
            .to_vec(),
        Dtype::Uint32 => u32::try_from(int(t)?)
            .map_err(|_| range())?
            .to_ne_bytes()
            .to_vec(),
        Dtype::Int64 => i64::try_from(int(t)?)
            .map_err(|_| range())?
            .to_ne_bytes()
            .to_vec(),
        Dtype::Uint64 => u64::try_from(int(t)?)
            .map_err(|_| range())?
            .to_ne_bytes()
            .to_vec(),
        Dtype::Float16 => half::f16::from_f64(float(t)?).to_ne_bytes().to_vec(),
        Dtype::Float32 => (float(t)? as f32).to_ne_bytes().to_vec(),
        Dtype::Float64 => float(t)?.to_ne_bytes().to_vec(),
        Dtype::Complex64 | Dtype::Complex128 => {
            let (re, im) = complex(t).ok_or_else(bad)?;
            let (re, im) = (float(re)?, float(im)?);
            if dtype == Dtype::Complex64 {
                [(re as f32).to_ne_bytes(), (im as f32).to_ne_bytes()].concat()
            } else {
                [re.to_ne_bytes(), im.to_ne_bytes()].concat()
            }
        }
    })
}

/// Splits "1+2j", "-1.5e-3-2j", "2j", "3" (Python's notation, also with `i`) into the
/// real and imaginary parts' text.
fn complex(t: &str) -> Option<(&str, &str)> {
    let t = t.trim_start_matches('(').trim_end_matches(')');
    let Some(body) = t.strip_suffix(['j', 'J', 'i']) else {
        return Some((t, "0"));
    };
    // The sign that starts the imaginary part: the last + or - that is neither the first
    // character nor an exponent's sign.
    let b = body.as_bytes();
    let split = (1..b.len())
        .rev()
        .find(|&k| (b[k] == b'+' || b[k] == b'-') && !matches!(b[k - 1], b'e' | b'E'));
    let (re, im) = match split {
        Some(k) => (&body[..k], &body[k..]),
        None => ("0", body),
    };
    // "j", "+j" and "-j" mean an imaginary part of one.
    let im = match im {
        "" | "+" => "1",
        "-" => "-1",
        i => i.trim_start_matches('+'),
    };
    Some((re, im))
}

pub fn create(a: CreateArgs) -> Result<()> {
    let fill = match &a.fill {
        Some(v) => Some(element_bytes(a.dtype, v).unwrap_or_else(|m| {
            Cli::command()
                .error(
                    clap::error::ErrorKind::ValueValidation,
                    format!("invalid value for '--fill <FILL>': {m}"),
                )
                .exit()
        })),
        None => None,
    };
    let opts = CreateOptions::default()
        .order(match a.order {
            OrderArg::C => Order::C,
            OrderArg::F => Order::F,
        })
        .force(a.force)
        .sparse(a.sparse)
        .share(share(a.share));
    let what = format!("creating {}", a.name);
    let arr = progress::spinner_while(&what, || -> Result<Array> {
        let mut arr = Array::create(&a.name, &a.shape.0, a.dtype, &opts)?;
        if let Some(b) = &fill {
            arr.fill_bytes(b)?;
        }
        Ok(arr)
    })?;
    out(&format!(
        "created {} {} {} {}, {}\n",
        arr.name(),
        crate::show::shape_str(arr.shape()),
        arr.dtype(),
        crate::show::order_name(arr.order()),
        indicatif::HumanBytes(arr.nbytes() as u64)
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(parse_shape("100,3").unwrap().0, vec![100, 3]);
        assert_eq!(parse_shape(" (5,) ").unwrap().0, vec![5]);
        assert_eq!(parse_shape("").unwrap().0, Vec::<i64>::new());
        assert_eq!(parse_shape("0, 7").unwrap().0, vec![0, 7]);
        assert!(parse_shape("-1,3").is_err());
        assert!(parse_shape("a").is_err());
        assert!(parse_shape("1,,2").is_err());
    }

    #[test]
    fn fill_values() {
        assert_eq!(element_bytes(Dtype::Uint8, "255").unwrap(), vec![255]);
        assert!(
            element_bytes(Dtype::Uint8, "256")
                .unwrap_err()
                .contains("range")
        );
        assert!(element_bytes(Dtype::Int8, "x").is_err());
        assert_eq!(element_bytes(Dtype::Bool, "true").unwrap(), vec![1]);
        assert_eq!(
            element_bytes(Dtype::Float64, "-1.5").unwrap(),
            (-1.5f64).to_ne_bytes()
        );
        assert!(
            f64::from_ne_bytes(
                element_bytes(Dtype::Float64, "nan")
                    .unwrap()
                    .try_into()
                    .unwrap()
            )
            .is_nan()
        );
        assert_eq!(
            element_bytes(Dtype::Float64, "-inf").unwrap(),
            f64::NEG_INFINITY.to_ne_bytes()
        );
        assert_eq!(
            element_bytes(Dtype::Float16, "1").unwrap(),
            0x3c00u16.to_ne_bytes()
        );
        let c = |s| element_bytes(Dtype::Complex128, s).unwrap();
        let pair = |re: f64, im: f64| [re.to_ne_bytes(), im.to_ne_bytes()].concat();
        assert_eq!(c("1+2j"), pair(1.0, 2.0));
        assert_eq!(c("-1e-3-2j"), pair(-1e-3, -2.0));
        assert_eq!(c("2j"), pair(0.0, 2.0));
        assert_eq!(c("-j"), pair(0.0, -1.0));
        assert_eq!(c("3"), pair(3.0, 0.0));
        assert_eq!(c("1+j"), pair(1.0, 1.0));
        assert_eq!(c("(1.5e+2+0.5j)"), pair(150.0, 0.5));
        assert!(element_bytes(Dtype::Complex64, "1+xj").is_err());
    }
}
