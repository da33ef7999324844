//! What a lone `ferry migrate` shows while it runs: a progress bar on a terminal, a plain line
//! every few seconds otherwise.

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferry_engine::{Note, Watcher};

/// Progress on a terminal; plain lines otherwise.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    state: Mutex<ProgressState>,
}

struct ProgressState {
    copied: u64,
    bytes: u64,
    planned: u64,
    last_line: Instant,
}

impl Progress {
    pub fn new(shown: bool) -> Progress {
        let bar = (shown && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            state: Mutex::new(ProgressState {
                copied: 0,
                bytes: 0,
                planned: 0,
                last_line: Instant::now(),
            }),
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Watcher for Progress {
    fn note(&self, note: Note) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match note {
            Note::Resolving(count) => {
                drop(state);
                self.line(&format!(
                    "resuming: settling {count} writes left in doubt by an interrupted run"
                ));
            }
            Note::Listing(side, folder) => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("listing {side:?} {folder}"));
                }
            }
            Note::Planned {
                copies,
                bytes,
                other,
            } => {
                state.planned = copies as u64;
                drop(state);
                self.line(&format!(
                    "plan: {copies} messages to copy ({:.1} MB), {other} other changes",
                    bytes as f64 / 1e6
                ));
                if let Some(bar) = &self.bar {
                    bar.set_length(copies as u64);
                    bar.set_style(
                        indicatif::ProgressStyle::with_template(
                            "{bar:40} {pos}/{len} messages {msg} ({per_sec}, eta {eta})",
                        )
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                    );
                    bar.set_message("");
                }
            }
            Note::Copied(size) => {
                state.copied += 1;
                state.bytes += size;
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                } else if state.last_line.elapsed() >= Duration::from_secs(5) {
                    state.last_line = Instant::now();
                    let text = format!(
                        "copied {}/{} messages ({:.1} MB)",
                        state.copied,
                        state.planned,
                        state.bytes as f64 / 1e6
                    );
                    drop(state);
                    self.line(&text);
                }
            }
            Note::Wrote => {}
            Note::Throttled(side, wait_ms) => {
                drop(state);
                self.line(&format!(
                    "{side:?} asked to slow down: waiting {:.1} s",
                    wait_ms as f64 / 1e3
                ));
            }
            Note::ItemFailed(reason) => {
                drop(state);
                self.line(&format!("item failed (the run goes on): {reason}"));
            }
        }
    }
}
