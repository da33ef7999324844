//! What `ferry run` shows while mailboxes move: on a terminal, a table redrawn every second
//! (one line per active mailbox: its folder, items copied, rate, throttling; then totals and
//! an estimate of the time left by mailboxes finished); elsewhere, nothing between the lines
//! each mailbox prints when it ends.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_engine::{Note, Side, Watcher};

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
    started: Instant,
    table: Mutex<Table>,
}

impl Board {
    pub fn new(total: usize) -> Board {
        Board {
            total,
            shown: std::io::stderr().is_terminal(),
            started: Instant::now(),
            table: Mutex::new(Table::default()),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A watcher for mailbox `name`, now active.
    pub fn watch(self: &Arc<Board>, name: &str) -> Arc<dyn Watcher> {
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
            if !self.shown {
                return;
            }
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                self.draw();
            }
        })
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
            Note::Throttled(Side::Source | Side::Target, _) => line.throttled = true,
            Note::Resolving(_) | Note::ItemFailed(_) => {}
        }
    }
}
