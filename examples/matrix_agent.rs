//! Matrix agent in Rust (see tests/agents/PROTOCOL.md), also a small example of the
//! Rust API: create, attach, typed slices, order-aware indexing.

use std::io::BufRead;

use ndshm::{Array, AttachOptions, CreateOptions, Dtype, Order};

const DTYPES: [(&str, Dtype); 5] = [
    ("float64", Dtype::Float64),
    ("float32", Dtype::Float32),
    ("int32", Dtype::Int32),
    ("int64", Dtype::Int64),
    ("uint8", Dtype::Uint8),
];
const ORDERS: [(&str, Order); 2] = [("C", Order::C), ("F", Order::F)];

fn offset(o: Order, i: usize, j: usize, k: usize) -> usize {
    match o {
        Order::C => (i * 3 + j) * 4 + k,
        Order::F => i + 2 * (j + 3 * k),
    }
}

/// Element `off` as f64, whatever the dtype.
fn get(a: &Array, off: usize) -> f64 {
    match a.dtype() {
        Dtype::Float64 => a.get::<f64>(off).unwrap(),
        Dtype::Float32 => a.get::<f32>(off).unwrap() as f64,
        Dtype::Int32 => a.get::<i32>(off).unwrap() as f64,
        Dtype::Int64 => a.get::<i64>(off).unwrap() as f64,
        _ => a.get::<u8>(off).unwrap() as f64,
    }
}

fn set(a: &mut Array, off: usize, v: i32) {
    match a.dtype() {
        Dtype::Float64 => a.set::<f64>(off, v as f64).unwrap(),
        Dtype::Float32 => a.set::<f32>(off, v as f32).unwrap(),
        Dtype::Int32 => a.set::<i32>(off, v).unwrap(),
        Dtype::Int64 => a.set::<i64>(off, v as i64).unwrap(),
        _ => a.set::<u8>(off, v as u8).unwrap(),
    }
}

fn each(mut f: impl FnMut(usize, usize, usize, i32)) {
    for i in 0..2 {
        for j in 0..3 {
            for k in 0..4 {
                f(i, j, k, (100 * i + 10 * j + k) as i32);
            }
        }
    }
}

/// Checks dtype, shape, order and every element, then writes the reply pattern.
fn check_and_reply(a: &mut Array, dt: Dtype, o: Order) -> Option<String> {
    if a.dtype() != dt {
        return Some("wrong dtype".into());
    }
    if a.shape() != [2, 3, 4] {
        return Some("wrong shape".into());
    }
    if a.order() != o {
        return Some("wrong order".into());
    }
    let mut wrong = false;
    each(|i, j, k, v| wrong |= get(a, offset(o, i, j, k)) != v as f64);
    if wrong {
        return Some("wrong element".into());
    }
    each(|i, j, k, v| set(a, offset(o, i, j, k), 127 - v));
    None
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (cmd, prefix) = (args[1].as_str(), args[2].as_str());
    let mut bad = false;
    let mut made = Vec::new();
    for (dn, dt) in DTYPES {
        for (on, o) in ORDERS {
            let name = format!("{prefix}-{dn}-{on}");
            if cmd == "create" {
                let opts = CreateOptions::default().order(o);
                let mut a = Array::create(&name, &[2, 3, 4], dt, &opts).expect("create");
                each(|i, j, k, v| set(&mut a, offset(o, i, j, k), v));
                made.push((dn, on, o, a));
                continue;
            }
            let why = match Array::attach(&name, &AttachOptions::default()) {
                Err(e) => Some(e.to_string()),
                Ok(mut a) => check_and_reply(&mut a, dt, o),
            };
            println!(
                "{dn} {on} {}",
                why.as_deref().map_or("ok".into(), |w| format!("bad: {w}"))
            );
            bad |= why.is_some();
        }
    }
    if cmd == "create" {
        println!("ready");
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).unwrap();
        for (dn, on, o, a) in made {
            let mut wrong = false;
            each(|i, j, k, v| wrong |= get(&a, offset(o, i, j, k)) != (127 - v) as f64);
            println!(
                "{dn} {on} {}",
                if wrong { "bad: wrong reply" } else { "ok" }
            );
            bad |= wrong;
            let name = a.name().to_string();
            drop(a);
            Array::delete(&name).unwrap();
        }
    }
    std::process::exit(bad as i32);
}
