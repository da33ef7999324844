//! `ferry report` of a project: per project, batch and mailbox, what was migrated, what is
//! behind (failed, refused, unreadable, in conflict), deletions propagated, timings, and each
//! run's throughput; from the project journal alone (a mailbox's own journal has the items and
//! their reasons: `ferry report --journal DIR`). Text, JSON (schema `docs/schema/
//! project-report.v1.json`, its version in `schema`) and one self-contained HTML page (no
//! script, no request: the chart is inline SVG).

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use super::ledger::{self, Outcome, Pair, ProjectEvent};
use super::mapping::Mapping;
use crate::render::{escape, time};

/// The schema's identifier and version.
pub const SCHEMA: &str = "https://ferry.invalid/schema/project-report.v1.json";

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Sums {
    pub mailboxes: u64,
    pub never_run: u64,
    pub running: u64,
    pub done: u64,
    pub done_with_failures: u64,
    pub paused: u64,
    pub deletions_held: u64,
    pub failed: u64,
    pub copied: u64,
    pub copied_bytes: u64,
    pub updated: u64,
    pub deleted: u64,
    pub conflicts: u64,
    pub behind: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MailboxReport {
    pub source: String,
    pub target: String,
    pub batch: String,
    /// never_run, running, done, done_with_failures, paused, deletions_held, failed.
    pub state: &'static str,
    pub reason: Option<String>,
    pub runs: u32,
    pub last_run_at: Option<String>,
    pub last_complete_at: Option<String>,
    /// Over every run.
    pub copied: u64,
    pub copied_bytes: u64,
    pub updated: u64,
    pub deleted: u64,
    /// As the last run left them.
    pub conflicts: u64,
    pub behind: u64,
    pub seconds: u64,
    /// What is behind, by kind and reason, as the mailbox's last run left it.
    pub behind_reasons: Vec<ledger::Behind>,
    /// The last run's time waiting because a server throttled.
    pub throttled_seconds: f64,
    /// The last run's time waiting for limits a server declared.
    pub paced_seconds: f64,
    /// The last run read every item back on the target.
    pub verified: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct BatchReport {
    pub name: String,
    #[serde(flatten)]
    pub sums: Sums,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run: u32,
    pub batch: Option<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub paused: bool,
    pub mailboxes: u64,
    pub copied: u64,
    pub seconds: f64,
    pub items_per_second: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProjectReport {
    pub schema: &'static str,
    pub generated_at: String,
    pub totals: Sums,
    pub batches: Vec<BatchReport>,
    pub mailboxes: Vec<MailboxReport>,
    pub runs: Vec<RunReport>,
    /// Mapping lines that cannot run, and why.
    pub left_out: Vec<String>,
}

fn state_of(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Done => "done",
        Outcome::DoneWithFailures => "done_with_failures",
        Outcome::Paused => "paused",
        Outcome::DeletionsHeld => "deletions_held",
        Outcome::Failed(_) => "failed",
    }
}

impl Sums {
    fn add(&mut self, mailbox: &MailboxReport) {
        self.mailboxes += 1;
        match mailbox.state {
            "never_run" => self.never_run += 1,
            "running" => self.running += 1,
            "done" => self.done += 1,
            "done_with_failures" => self.done_with_failures += 1,
            "paused" => self.paused += 1,
            "deletions_held" => self.deletions_held += 1,
            _ => self.failed += 1,
        }
        self.copied += mailbox.copied;
        self.copied_bytes += mailbox.copied_bytes;
        self.updated += mailbox.updated;
        self.deleted += mailbox.deleted;
        self.conflicts += mailbox.conflicts;
        self.behind += mailbox.behind;
    }
}

/// The report of the project whose mapping is `mapping` and whose journal holds `events`;
/// `running`: a process holds the project journal now.
pub fn build(
    mapping: &Mapping,
    events: &[ProjectEvent],
    running: bool,
    now: ledger::Millis,
) -> ProjectReport {
    // Each run's throughput (each mailbox's sums are the fold's).
    let mut runs: Vec<RunReport> = Vec::new();
    let mut started_at: ledger::Millis = 0;
    for event in events {
        match event {
            ProjectEvent::RunStarted {
                run,
                at,
                batch,
                mailboxes,
            } => {
                started_at = *at;
                runs.push(RunReport {
                    run: *run,
                    batch: batch.clone(),
                    started_at: time(*at),
                    ended_at: None,
                    paused: false,
                    mailboxes: mailboxes.len() as u64,
                    copied: 0,
                    seconds: 0.0,
                    items_per_second: 0.0,
                });
            }
            ProjectEvent::MailboxStarted { .. }
            | ProjectEvent::Provisioning { .. }
            | ProjectEvent::MailboxDetail { .. } => {}
            ProjectEvent::MailboxEnded { totals, .. } => {
                if let Some(run) = runs.last_mut() {
                    run.copied += totals.copied;
                }
            }
            ProjectEvent::RunEnded { at, paused, .. } => {
                if let Some(run) = runs.last_mut() {
                    let took = (at - started_at).max(1) as f64 / 1000.0;
                    run.ended_at = Some(time(*at));
                    run.paused = *paused;
                    run.seconds = took;
                    run.items_per_second = run.copied as f64 / took;
                }
            }
        }
    }
    let (known, _) = ledger::fold(events);
    let mut mailboxes = Vec::new();
    for mailbox in &mapping.mailboxes {
        let pair = Pair::from(mailbox);
        let entry = known.get(&pair);
        let detail = entry.and_then(|e| e.detail.as_ref());
        let sum = entry.map(|e| e.sum.clone()).unwrap_or_default();
        let (state, reason, last) = match entry {
            None => ("never_run", None, None),
            Some(entry) if entry.running && running => ("running", None, None),
            Some(entry) => match &entry.last {
                None => (
                    "paused",
                    Some("the process ended mid-run".to_string()),
                    None,
                ),
                Some((at, outcome, totals)) => (
                    state_of(outcome),
                    match outcome {
                        Outcome::Failed(why) => Some(why.clone()),
                        _ => None,
                    },
                    Some((*at, totals.clone())),
                ),
            },
        };
        mailboxes.push(MailboxReport {
            source: mailbox.source.clone(),
            target: mailbox.target.clone(),
            batch: mailbox.batch.clone(),
            state,
            reason,
            runs: entry.map_or(0, |e| e.runs),
            last_run_at: last.as_ref().map(|(at, _)| time(*at)),
            last_complete_at: entry.and_then(|e| e.last_complete).map(time),
            copied: sum.copied,
            copied_bytes: sum.copied_bytes,
            updated: sum.updated,
            deleted: sum.deleted,
            conflicts: last.as_ref().map_or(0, |(_, t)| t.conflicts),
            behind: last.as_ref().map_or(0, |(_, t)| t.behind),
            seconds: entry.map_or(0, |e| e.seconds),
            behind_reasons: detail.map(|d| d.behind.clone()).unwrap_or_default(),
            throttled_seconds: detail.map_or(0.0, |d| d.throttled_ms as f64 / 1000.0),
            paced_seconds: detail.map_or(0.0, |d| d.paced_ms as f64 / 1000.0),
            verified: detail.is_some_and(|d| d.verified),
        });
    }
    let mut totals = Sums::default();
    let mut batches: BTreeMap<String, Sums> = BTreeMap::new();
    for mailbox in &mailboxes {
        totals.add(mailbox);
        batches
            .entry(mailbox.batch.clone())
            .or_default()
            .add(mailbox);
    }
    ProjectReport {
        schema: SCHEMA,
        generated_at: time(now),
        totals,
        batches: batches
            .into_iter()
            .map(|(name, sums)| BatchReport { name, sums })
            .collect(),
        mailboxes,
        runs,
        left_out: mapping.problems.iter().map(ToString::to_string).collect(),
    }
}

/// As JSON.
pub fn json(report: &ProjectReport, out: &mut dyn Write) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    writeln!(out)?;
    Ok(())
}

/// How long a mailbox's last run waited on its servers, when it did.
fn waited(mailbox: &MailboxReport) -> String {
    let mut said = Vec::new();
    if mailbox.throttled_seconds > 0.0 {
        said.push(format!("{:.1} s throttled", mailbox.throttled_seconds));
    }
    if mailbox.paced_seconds > 0.0 {
        said.push(format!("{:.1} s paced", mailbox.paced_seconds));
    }
    if said.is_empty() {
        String::new()
    } else {
        format!("; waited {}", said.join(", "))
    }
}

fn sums_line(sums: &Sums) -> String {
    format!(
        "{} mailboxes: {} done, {} with failures, {} failed, {} paused, {} never run; \
         {} copied ({:.1} MB), {} updated, {} deleted, {} conflicts, {} behind",
        sums.mailboxes,
        sums.done,
        sums.done_with_failures,
        sums.failed,
        sums.paused,
        sums.never_run,
        sums.copied,
        sums.copied_bytes as f64 / 1e6,
        sums.updated,
        sums.deleted,
        sums.conflicts,
        sums.behind
    )
}

/// As text.
pub fn text(report: &ProjectReport, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(out, "project: {}", sums_line(&report.totals))?;
    for batch in &report.batches {
        writeln!(out, "batch {}: {}", batch.name, sums_line(&batch.sums))?;
    }
    for mailbox in &report.mailboxes {
        writeln!(
            out,
            "  {} → {} [{}]: {}{}; {} copied, {} updated, {} deleted, {} behind{}{}",
            mailbox.source,
            mailbox.target,
            mailbox.batch,
            mailbox.state.replace('_', " "),
            mailbox
                .reason
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            mailbox.copied,
            mailbox.updated,
            mailbox.deleted,
            mailbox.behind,
            if mailbox.verified {
                "; read back on the target"
            } else {
                ""
            },
            waited(mailbox)
        )?;
        for behind in &mailbox.behind_reasons {
            writeln!(
                out,
                "    {} {}: {}",
                behind.items, behind.kind, behind.reason
            )?;
        }
    }
    for run in &report.runs {
        writeln!(
            out,
            "run {}{}: {} mailboxes, {} copied in {:.1} s ({:.0} items/s){}",
            run.run,
            run.batch
                .as_ref()
                .map(|b| format!(" (batch {b})"))
                .unwrap_or_default(),
            run.mailboxes,
            run.copied,
            run.seconds,
            run.items_per_second,
            if run.paused { ", paused" } else { "" }
        )?;
    }
    for line in &report.left_out {
        writeln!(out, "left out: {line}")?;
    }
    Ok(())
}

/// As one self-contained HTML page.
pub fn html(report: &ProjectReport, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut page = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>ferry project report</title><style>\
         body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
         table{border-collapse:collapse;margin-bottom:1.5em}\
         td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}\
         td:first-child,th:first-child,td.text{text-align:left}\
         .failed,.done_with_failures{color:#a00}.done{color:#070}\
         </style></head><body>\n<h1>ferry project report</h1>\n",
    );
    page.push_str(&format!(
        "<p>Generated {}.</p>\n",
        escape(&report.generated_at)
    ));
    let head = "<tr><th>scope</th><th>mailboxes</th><th>done</th><th>with failures</th>\
                <th>failed</th><th>paused</th><th>never run</th><th>copied</th><th>MB</th>\
                <th>updated</th><th>deleted</th><th>conflicts</th><th>behind</th></tr>";
    let row = |id: &str, name: &str, s: &Sums| {
        format!(
            "<tr id=\"{id}\"><td>{}</td><td class=\"mailboxes\">{}</td><td class=\"done\">{}</td>\
             <td>{}</td><td class=\"failed\">{}</td><td>{}</td><td>{}</td>\
             <td class=\"copied\">{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"behind\">{}</td></tr>\n",
            escape(name),
            s.mailboxes,
            s.done,
            s.done_with_failures,
            s.failed,
            s.paused,
            s.never_run,
            s.copied,
            s.copied_bytes as f64 / 1e6,
            s.updated,
            s.deleted,
            s.conflicts,
            s.behind
        )
    };
    page.push_str("<h2>Totals</h2><table>");
    page.push_str(head);
    page.push_str(&row("totals", "project", &report.totals));
    for batch in &report.batches {
        page.push_str(&row(
            &format!("batch-{}", escape(&batch.name)),
            &format!("batch {}", batch.name),
            &batch.sums,
        ));
    }
    page.push_str(
        "</table>\n<h2>Mailboxes</h2><table><tr><th>source</th><th>target</th>\
                   <th>batch</th><th>state</th><th>runs</th><th>last complete run</th>\
                   <th>copied</th><th>updated</th><th>deleted</th><th>conflicts</th>\
                   <th>behind</th><th>seconds</th><th>waited</th><th>why behind</th></tr>\n",
    );
    for m in &report.mailboxes {
        page.push_str(&format!(
            "<tr class=\"mailbox\"><td>{}</td><td class=\"text\">{}</td><td class=\"text\">{}</td>\
             <td class=\"text {}\">{}{}</td><td>{}</td><td class=\"text\">{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"text\">{}</td><td class=\"text why\">{}</td></tr>\n",
            escape(&m.source),
            escape(&m.target),
            escape(&m.batch),
            m.state,
            m.state.replace('_', " "),
            m.reason
                .as_ref()
                .map(|r| format!(": {}", escape(r)))
                .unwrap_or_default(),
            m.runs,
            escape(m.last_complete_at.as_deref().unwrap_or("-")),
            m.copied,
            m.updated,
            m.deleted,
            m.conflicts,
            m.behind,
            m.seconds,
            escape(waited(m).trim_start_matches("; waited ")),
            m.behind_reasons
                .iter()
                .map(|b| format!("{} {}: {}", b.items, b.kind, escape(&b.reason)))
                .collect::<Vec<_>>()
                .join("<br>")
        ));
    }
    page.push_str("</table>\n<h2>Throughput per run</h2>\n");
    page.push_str(&chart(&report.runs));
    if !report.left_out.is_empty() {
        page.push_str("<h2>Left out of the mapping</h2><ul>\n");
        for line in &report.left_out {
            page.push_str(&format!("<li>{}</li>\n", escape(line)));
        }
        page.push_str("</ul>\n");
    }
    page.push_str("</body></html>\n");
    out.write_all(page.as_bytes())?;
    Ok(())
}

/// Items copied per second in each run, as bars of inline SVG.
fn chart(runs: &[RunReport]) -> String {
    let (width, height, bar) = (640.0_f64, 200.0_f64, 28.0_f64);
    let most = runs
        .iter()
        .map(|r| r.items_per_second)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let mut svg = format!(
        "<svg id=\"throughput\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" \
         height=\"{}\" role=\"img\" aria-label=\"items per second per run\">\n",
        height + 40.0
    );
    for (index, run) in runs.iter().enumerate() {
        let x = 40.0 + index as f64 * (bar + 8.0);
        let h = (run.items_per_second / most * height).max(1.0);
        svg.push_str(&format!(
            "<rect x=\"{x:.0}\" y=\"{:.0}\" width=\"{bar:.0}\" height=\"{h:.0}\" fill=\"#3366cc\">\
             <title>run {}: {:.0} items/s</title></rect>\
             <text x=\"{:.0}\" y=\"{:.0}\" font-size=\"11\" text-anchor=\"middle\">{}</text>\n",
            height - h + 10.0,
            run.run,
            run.items_per_second,
            x + bar / 2.0,
            height + 25.0,
            run.run
        ));
    }
    svg.push_str(&format!(
        "<text x=\"4\" y=\"20\" font-size=\"11\">{most:.0}/s</text></svg>\n"
    ));
    svg
}
