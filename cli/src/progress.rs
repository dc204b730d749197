//! Progress for long operations: drawn on stderr only when stdout (and stderr) is a
//! terminal, and only once the operation has run for about a second, so quick commands
//! and scripts (stdout piped or redirected) never see it.
//!
//! `NDSHM_PROGRESS_DELAY_MS` changes the delay (the tests set it to 0).

use std::io::IsTerminal;
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

fn delay() -> Duration {
    std::env::var("NDSHM_PROGRESS_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(1), Duration::from_millis)
}

fn on_terminal() -> bool {
    std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

/// Runs `f`, showing a spinner with `msg` if it takes longer than the delay.
pub fn spinner_while<T>(msg: &str, f: impl FnOnce() -> T) -> T {
    if !on_terminal() {
        return f();
    }
    let wait_for = delay();
    if wait_for.is_zero() {
        // Shown at once, drawn before `f` starts: deterministic for the tests, which set
        // the delay to zero (a spinner thread could lose the race to a quick `f`).
        let pb = ProgressBar::new_spinner().with_message(msg.to_string());
        pb.tick();
        let r = f();
        pb.finish_and_clear();
        return r;
    }
    let (done, wait) = channel::<()>();
    std::thread::scope(|s| {
        s.spawn(move || {
            if wait.recv_timeout(wait_for) != Err(RecvTimeoutError::Timeout) {
                return; // finished (the sender is gone) before the delay
            }
            let pb = ProgressBar::new_spinner().with_message(msg.to_string());
            pb.enable_steady_tick(Duration::from_millis(100));
            pb.tick();
            let _ = wait.recv();
            pb.finish_and_clear();
        });
        let r = f();
        drop(done);
        r
    })
}

/// A byte-count progress bar, fed from a progress callback.
pub struct Bar {
    bar: Option<ProgressBar>,
    enabled: bool,
    start: Instant,
    total: u64,
    msg: String,
}

impl Bar {
    /// A bar for `total` bytes, not drawn yet.
    pub fn new(total: u64, msg: &str) -> Bar {
        Bar {
            bar: None,
            enabled: on_terminal(),
            start: Instant::now(),
            total,
            msg: msg.to_string(),
        }
    }

    /// `done` of the total bytes are transferred.
    pub fn set(&mut self, done: u64) {
        if !self.enabled {
            return;
        }
        if self.bar.is_none() && self.start.elapsed() >= delay() {
            let pb = ProgressBar::new(self.total).with_message(self.msg.clone());
            pb.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            self.bar = Some(pb);
        }
        if let Some(pb) = &self.bar {
            pb.set_position(done);
        }
    }

    /// Removes the bar.
    pub fn finish(self) {
        if let Some(pb) = self.bar {
            pb.finish_and_clear();
        }
    }
}
