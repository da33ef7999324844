//! What `ferry run` shows while mailboxes move: on a terminal, a table redrawn every second
//! (one line per active mailbox: its folder, items copied, rate, throttling; then totals and
//! an estimate of the time left by mailboxes finished); elsewhere, nothing between the lines
//! each mailbox prints when it ends. With `--json`, events on stdout instead, one JSON object
//! per line ([`emit`]): a mailbox started, its progress every few seconds, a throttled side,
//! an item that failed (and, from the run, each mailbox's end and the run's).

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_engine::{Note, Side, Watcher};
use serde_json::json;

/// How often `--json` tells each active mailbox's progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Writes one event as a line of JSON on stdout, with `event` and the time (`at`, RFC 3339),
/// in one write: lines of events from several mailboxes never mix.
pub fn emit(event: &str, mut fields: serde_json::Value) {
    if let Some(object) = fields.as_object_mut() {
        object.insert("event".into(), event.into());
        object.insert(
            "at".into(),
            humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                .to_string()
                .into(),
        );
    }
    let mut line = fields.to_string();
    line.push('\n');
    let mut stdout = std::io::stdout();
    let _ = stdout.write_all(line.as_bytes());
    let _ = stdout.flush();
}

/// One active mailbox.
#[derive(Debug, Clone)]
struct Line {
    folder: String,
    copied: u64,
    planned: u64,
    throttled: bool,
    since: Instant,
}

#[derive(Debug, Default)]
struct Table {
    active: BTreeMap<String, Line>,
    done: usize,
    copied: u64,
    drawn: usize,
}

/// The live display of a project run.
#[derive(Debug)]
pub struct Board {
    total: usize,
    shown: bool,
    json: bool,
    started: Instant,
    table: Mutex<Table>,
}

impl Board {
    /// The display of `total` mailboxes: JSON events with `json`, else a table on a terminal.
    pub fn new(total: usize, json: bool) -> Board {
        Board {
            total,
            shown: !json && std::io::stderr().is_terminal(),
            json,
            started: Instant::now(),
            table: Mutex::new(Table::default()),
        }
    }

    /// Whether events go out as JSON lines.
    pub fn json(&self) -> bool {
        self.json
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A watcher for mailbox `name`, now active.
    pub fn watch(self: &Arc<Board>, name: &str) -> Arc<dyn Watcher> {
        if self.json {
            emit("mailbox_started", json!({ "mailbox": name }));
        }
        self.table().active.insert(
            name.to_string(),
            Line {
                folder: String::new(),
                copied: 0,
                planned: 0,
                throttled: false,
                since: Instant::now(),
            },
        );
        Arc::new(MailboxWatcher {
            board: Arc::clone(self),
            name: name.to_string(),
        })
    }

    /// Mailbox `name` ended.
    pub fn done(&self, name: &str) {
        let mut table = self.table();
        if let Some(line) = table.active.remove(name) {
            table.copied += line.copied;
        }
        table.done += 1;
    }

    /// Redraws the table every second, on a terminal.
    pub fn tick(self: Arc<Board>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            if self.json {
                loop {
                    tokio::time::sleep(PROGRESS_EVERY).await;
                    self.progress();
                }
            }
            if !self.shown {
                return;
            }
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                self.draw();
            }
        })
    }

    /// Each active mailbox's progress, as events.
    fn progress(&self) {
        let table = self.table();
        for (name, line) in &table.active {
            let seconds = line.since.elapsed().as_secs_f64().max(0.001);
            emit(
                "progress",
                json!({
                    "mailbox": name,
                    "folder": line.folder,
                    "items_done": line.copied,
                    "items_planned": line.planned,
                    "items_per_second": (line.copied as f64 / seconds * 10.0).round() / 10.0,
                    "throttled": line.throttled,
                }),
            );
        }
    }

    fn draw(&self) {
        let mut table = self.table();
        let mut text = String::new();
        // Back over what was drawn last time.
        for _ in 0..table.drawn {
            text.push_str("\x1b[1A\x1b[2K");
        }
        let mut lines = 0;
        for (name, line) in &table.active {
            let seconds = line.since.elapsed().as_secs_f64().max(0.001);
            text.push_str(&format!(
                "{name}  {}  {}/{} items  {:.0}/s{}\n",
                if line.folder.is_empty() {
                    "…"
                } else {
                    &line.folder
                },
                line.copied,
                line.planned,
                line.copied as f64 / seconds,
                if line.throttled { "  throttled" } else { "" }
            ));
            lines += 1;
        }
        let copied = table.copied + table.active.values().map(|l| l.copied).sum::<u64>();
        let elapsed = self.started.elapsed().as_secs_f64();
        let left = if table.done == 0 {
            "—".to_string()
        } else {
            let per = elapsed / table.done as f64;
            let rest = per * (self.total - table.done) as f64;
            format!("~{:.0} s", rest)
        };
        text.push_str(&format!(
            "{}/{} mailboxes done, {} active, {copied} items copied, {:.0} s, left {left}\n",
            table.done,
            self.total,
            table.active.len(),
            elapsed
        ));
        lines += 1;
        table.drawn = lines;
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(text.as_bytes());
        let _ = stderr.flush();
    }

    /// The last drawing stays.
    pub fn finish(&self) {
        if self.shown {
            self.draw();
        }
    }
}

struct MailboxWatcher {
    board: Arc<Board>,
    name: String,
}

impl Watcher for MailboxWatcher {
    fn note(&self, note: Note) {
        let mut table = self.board.table();
        let Some(line) = table.active.get_mut(&self.name) else {
            return;
        };
        match note {
            Note::Listing(_, folder) => line.folder = folder,
            Note::Planned { copies, other, .. } => line.planned = (copies + other) as u64,
            Note::Copied(_) | Note::Wrote => {
                line.copied += 1;
                line.throttled = false;
            }
            Note::Throttled(side, wait_ms) => {
                line.throttled = true;
                if self.board.json {
                    let side = match side {
                        Side::Source => "source",
                        Side::Target => "target",
                    };
                    emit(
                        "throttled",
                        json!({ "mailbox": self.name, "side": side, "wait_ms": wait_ms }),
                    );
                }
            }
            Note::ItemFailed(reason) => {
                if self.board.json {
                    emit(
                        "item_failed",
                        json!({ "mailbox": self.name, "reason": reason }),
                    );
                }
            }
            Note::Resolving(_) => {}
        }
    }
}
