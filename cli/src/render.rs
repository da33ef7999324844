//! Rendering of projections for the operator: report (text, JSON, HTML), audit lines, plans and
//! status. The engine's projections are not `Serialize`; the JSON shape is this module's own.

use std::io::Write;

use ferry_engine::event::{Action, FailureClass, Millis, RunOutcome};
use ferry_engine::projection::audit::{Audit, AuditOutcome};
use ferry_engine::projection::delta::Delta;
use ferry_engine::projection::report::{Report, RunSummary};
use serde::Serialize;

/// An RFC 3339 UTC timestamp.
pub fn time(ms: Millis) -> String {
    let ms = u64::try_from(ms).unwrap_or(0);
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

/// What a finished run did, in two sentences that cannot be misread: what it wrote, and what
/// was on the target before it.
pub fn run_line(summary: &ferry_engine::RunSummary) -> String {
    let counts = &summary.counts;
    let refused = summary.delta.skipped.len();
    let mut line = format!(
        "run {}: {}. Copied {} messages ({:.1} MB), {} flag updates, {} deletions, {} moves on the target, {} folders created or renamed; {} writes failed",
        summary.run.unwrap_or(0),
        outcome_words(summary.outcome),
        counts.copied,
        counts.copied_bytes as f64 / 1e6,
        counts.flags_updated,
        counts.deleted,
        counts.moved,
        counts.folders,
        summary.failed,
    );
    if refused > 0 {
        line.push_str(&format!(
            "; {refused} source items not copied (refused by the target or unreadable: see ferry report)"
        ));
    }
    if counts.updated > 0 {
        line.push_str(&format!("; {} items updated in place", counts.updated));
    }
    if counts.conflicts > 0 {
        line.push_str(&format!(
            "; {} items in conflict, left as they are on the target (changed there behind ferry's back: see ferry report)",
            counts.conflicts
        ));
    }
    line.push_str(&format!(
        ". {} source messages were already on the target before this run.",
        summary.already
    ));
    if let Some(held) = &summary.held {
        line.push_str(&format!(
            "\nnothing was deleted: {held} check that the source really lost these (a folder deleted or listed empty by a faulty server?), then run again with --confirm-deletions"
        ));
    }
    line
}

/// How a run ended, in words, with why when it says.
pub fn outcome(run: &RunSummary) -> String {
    let words = match run.outcome {
        Some(outcome) => outcome_words(outcome).to_owned(),
        None => match run.resumed_by {
            Some(next) => {
                format!(
                    "interrupted (killed or cut off before it could end); run {next} resumed it"
                )
            }
            None => "interrupted (killed or cut off before it could end); the next run resumes it"
                .to_owned(),
        },
    };
    match &run.reason {
        Some(reason) => format!("{words}: {reason}"),
        None => words,
    }
}

/// A run outcome in words.
pub fn outcome_words(outcome: RunOutcome) -> &'static str {
    match outcome {
        RunOutcome::Completed => "completed",
        RunOutcome::CompletedWithFailures => {
            "completed, but some source items are not on the target (see ferry report)"
        }
        RunOutcome::Paused => "paused on request (run the same command to resume)",
        RunOutcome::Aborted => "stopped on an error (run the same command once it is fixed)",
        RunOutcome::DeletionsHeld => {
            "done but for its deletions, held back as too many at once (see `ferry plan --delete-removed`; confirm with --confirm-deletions)"
        }
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    runs: Vec<JsonRun<'a>>,
    folders: Vec<JsonFolder<'a>>,
    renames: Vec<(u64, &'a str, &'a str)>,
    notices: Vec<&'a str>,
    failed_items: u64,
    refused_items: u64,
    unreadable_items: u64,
    conflict_items: u64,
}

#[derive(Serialize)]
struct JsonRun<'a> {
    run: u64,
    started: String,
    ended: Option<String>,
    outcome: String,
    source: &'a str,
    target: &'a str,
    copied: u64,
    copied_bytes: u64,
    flags_updated: u64,
    deleted: u64,
    moved: u64,
    folders_created: u64,
    folders_renamed: u64,
    folders_deleted: u64,
    failed: u64,
    throttled_ms: u64,
    paced_ms: u64,
    updated: u64,
    conflicts: u64,
}

#[derive(Serialize)]
struct JsonFolder<'a> {
    folder: &'a str,
    copied: u64,
    flags_updated: u64,
    deleted: u64,
    moved_in: u64,
    failed: &'a std::collections::BTreeMap<String, u64>,
    refused: &'a std::collections::BTreeMap<String, u64>,
    unreadable: &'a std::collections::BTreeMap<String, u64>,
    updated: u64,
    conflicts: &'a std::collections::BTreeMap<String, u64>,
}

/// The report as JSON.
pub fn report_json(report: &Report, out: &mut dyn Write) -> anyhow::Result<()> {
    let json = JsonReport {
        runs: report
            .runs
            .iter()
            .map(|run| JsonRun {
                run: run.run,
                started: time(run.started),
                ended: run.ended.map(time),
                outcome: outcome(run),
                source: &run.source,
                target: &run.target,
                copied: run.copied,
                copied_bytes: run.copied_bytes,
                flags_updated: run.flags_updated,
                deleted: run.deleted,
                moved: run.moved,
                folders_created: run.folders_created,
                folders_renamed: run.folders_renamed,
                folders_deleted: run.folders_deleted,
                failed: run.failed,
                throttled_ms: run.throttled_ms,
                paced_ms: run.paced_ms,
                updated: run.updated,
                conflicts: run.conflicts,
            })
            .collect(),
        folders: report
            .folders
            .iter()
            .map(|(folder, f)| JsonFolder {
                folder,
                copied: f.copied,
                flags_updated: f.flags_updated,
                deleted: f.deleted,
                moved_in: f.moved_in,
                failed: &f.failed,
                refused: &f.refused,
                unreadable: &f.unreadable,
                updated: f.updated,
                conflicts: &f.conflicts,
            })
            .collect(),
        renames: report
            .renames
            .iter()
            .map(|(run, from, to)| (*run, from.as_str(), to.as_str()))
            .collect(),
        notices: report.notices.iter().map(String::as_str).collect(),
        failed_items: report.failed_items(),
        refused_items: report.refused_items(),
        unreadable_items: report.unreadable_items(),
        conflict_items: report.conflict_items(),
    };
    serde_json::to_writer_pretty(&mut *out, &json)?;
    writeln!(out)?;
    Ok(())
}

/// The report as text.
pub fn report_text(report: &Report, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(out, "runs:")?;
    for run in &report.runs {
        writeln!(
            out,
            "  run {} {} → {}: {}; copied {} ({:.1} MB), flags updated {}, deleted {}, moved {}, folders created {}, renamed {}{}, failed {}{}{}",
            run.run,
            time(run.started),
            run.ended.map(time).unwrap_or_else(|| "-".into()),
            outcome(run),
            run.copied,
            run.copied_bytes as f64 / 1e6,
            run.flags_updated,
            run.deleted,
            run.moved,
            run.folders_created,
            run.folders_renamed,
            if run.folders_deleted > 0 {
                format!(", deleted {}", run.folders_deleted)
            } else {
                String::new()
            },
            run.failed,
            if run.throttled_ms > 0 {
                format!(", throttled {:.1} s", run.throttled_ms as f64 / 1e3)
            } else {
                String::new()
            },
            if run.paced_ms > 0 {
                format!(
                    ", held {:.1} s by the limits the stores declare",
                    run.paced_ms as f64 / 1e3
                )
            } else {
                String::new()
            }
        )?;
    }
    writeln!(out, "folders (all runs):")?;
    writeln!(
        out,
        "  {:<32} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10}",
        "folder", "copied", "flags", "deleted", "failed", "refused", "unreadable"
    )?;
    for (folder, f) in &report.folders {
        writeln!(
            out,
            "  {:<32} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10}",
            folder,
            f.copied,
            f.flags_updated,
            f.deleted,
            f.failed.values().sum::<u64>(),
            f.refused.values().sum::<u64>(),
            f.unreadable.values().sum::<u64>()
        )?;
        for (reason, count) in &f.failed {
            writeln!(out, "      failed {count} (tried again next run): {reason}")?;
        }
        for (reason, count) in &f.refused {
            writeln!(
                out,
                "      refused by the target {count} (tried again with --full or --verify-target): {reason}"
            )?;
        }
        for (reason, count) in &f.unreadable {
            writeln!(
                out,
                "      unreadable on the source {count} (tried again next run): {reason}"
            )?;
        }
        if f.updated > 0 {
            writeln!(out, "      updated in place {}", f.updated)?;
        }
        for (reason, count) in &f.conflicts {
            writeln!(
                out,
                "      in conflict {count} (not retried until resolved: delete or restore the target item): {reason}"
            )?;
        }
    }
    for (run, from, to) in &report.renames {
        writeln!(out, "renamed in run {run}: {from} → {to}")?;
    }
    for notice in &report.notices {
        writeln!(out, "notice from the {notice}")?;
    }
    for (folder, old, new) in &report.validity_changes {
        writeln!(
            out,
            "UIDVALIDITY of {folder} changed ({old:?} → {new:?}): items re-matched by content, none copied twice"
        )?;
    }
    writeln!(
        out,
        "total: {} source items not on the target: {} failed, {} refused by the target, {} unreadable on the source",
        report.items_off_target(),
        report.failed_items(),
        report.refused_items(),
        report.unreadable_items()
    )?;
    if report.conflict_items() > 0 {
        writeln!(
            out,
            "       and {} in conflict: changed on the target behind ferry's back, left as they are",
            report.conflict_items()
        )?;
    }
    Ok(())
}

pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// The report as a self-contained HTML page.
pub fn report_html(report: &Report, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>ferry report</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:right}}td:first-child,th:first-child{{text-align:left}}\
         .bad{{color:#a00}}</style></head><body>\n<h1>ferry migration report</h1>"
    )?;
    writeln!(
        out,
        "<h2>Runs</h2><table><tr><th>run</th><th>started</th><th>ended</th><th>outcome</th><th>copied</th><th>MB</th><th>flags</th><th>deleted</th><th>failed</th></tr>"
    )?;
    for run in &report.runs {
        writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            run.run,
            escape(&time(run.started)),
            escape(&run.ended.map(time).unwrap_or_else(|| "-".into())),
            escape(&outcome(run)),
            run.copied,
            run.copied_bytes as f64 / 1e6,
            run.flags_updated,
            run.deleted,
            run.failed
        )?;
    }
    writeln!(
        out,
        "</table>\n<h2>Folders</h2><table><tr><th>folder</th><th>copied</th><th>flags</th><th>deleted</th><th>failed</th><th>refused</th><th>unreadable</th></tr>"
    )?;
    for (folder, f) in &report.folders {
        writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(folder),
            f.copied,
            f.flags_updated,
            f.deleted,
            f.failed.values().sum::<u64>(),
            f.refused.values().sum::<u64>(),
            f.unreadable.values().sum::<u64>()
        )?;
        let lists = [
            ("failed", &f.failed),
            ("refused by the target", &f.refused),
            ("unreadable on the source", &f.unreadable),
        ];
        for (what, list) in lists {
            for (reason, count) in list {
                writeln!(
                    out,
                    "<tr class=\"bad\"><td colspan=\"7\">{what}: {count} × {}</td></tr>",
                    escape(reason)
                )?;
            }
        }
    }
    writeln!(out, "</table></body></html>")?;
    Ok(())
}

/// The audit trail's rows: each provisioning step, then each settled write.
pub fn audit_rows(audit: &Audit, since: Option<Millis>, folder: Option<&str>) -> Vec<AuditRow> {
    let mut rows = Vec::new();
    for entry in &audit.provisioning {
        if folder.is_some() || since.is_some_and(|since| entry.at < since) {
            continue;
        }
        let user = &entry.user;
        let (what, done) = match &entry.step {
            ferry_engine::ProvisionStep::CreateUser => (
                format!("create the user {user}"),
                format!("created the user {user}"),
            ),
            ferry_engine::ProvisionStep::AssignLicense { sku } => (
                format!("assign a licence of {sku} to {user}"),
                format!("assigned a licence of {sku} to {user}"),
            ),
        };
        let text = if entry.done {
            done
        } else {
            format!(
                "{what}: stopped inside the step (intent without outcome; every later run \
                 asks the tenant before a step)"
            )
        };
        rows.push(AuditRow {
            at: entry.at,
            step: None,
            what: "target mailbox".into(),
            result: text,
            status: if entry.done { "done" } else { "in_doubt" },
        });
    }
    for entry in audit.filtered(since, folder) {
        let what = match &entry.action {
            Action::CreateFolder { folder } => format!("create folder {folder}"),
            Action::RenameFolder { from, to } => format!("rename folder {from} → {to}"),
            Action::Append {
                source_folder,
                source_id,
                folder,
                content,
                size,
                ..
            } => format!(
                "copy {source_folder}/{source_id} → {folder} ({size} bytes, content {content})"
            ),
            Action::SetFlags { folder, id, flags } => format!("set flags {folder}/{id} {flags}"),
            Action::Delete {
                folder,
                id,
                content,
            } => format!("delete {folder}/{id} (content {content})"),
            Action::Move {
                source_folder,
                source_id,
                from,
                id,
                folder,
                content,
                ..
            } => format!(
                "move {from}/{id} → {folder} (its source moved to {source_folder}/{source_id}, content {content})"
            ),
            Action::DeleteFolder { folder } => {
                format!("delete folder {folder} (its source folder is gone)")
            }
            Action::CreateCollection { folder, spec } => {
                format!("create {} {folder}", spec.kind.name())
            }
            Action::SetCollection { folder, from, to } => {
                format!("set the {} of {folder}", from.differences(to).join(", "))
            }
            Action::Create {
                source_folder,
                source_id,
                folder,
                key,
                content,
                size,
                ..
            } => format!(
                "create {source_folder}/{source_id} → {folder} key {key} ({size} bytes, content {content})"
            ),
            Action::Update {
                source_folder,
                source_id,
                folder,
                id,
                content,
                expect,
                ..
            } => format!(
                "update {folder}/{id} from {source_folder}/{source_id} if at version {} (content {content})",
                expect.as_deref().unwrap_or("any")
            ),
            Action::DeleteIf {
                folder,
                id,
                content,
                expect,
                ..
            } => format!(
                "delete {folder}/{id} if at version {} (content {content})",
                expect.as_deref().unwrap_or("any")
            ),
        };
        let (result, status) = match &entry.outcome {
            AuditOutcome::Done(Some(id)) => (format!("done as {id}"), "done"),
            AuditOutcome::Done(None) => ("done".into(), "done"),
            AuditOutcome::Failed(FailureClass::NotApplied, _) => (
                "never landed (in doubt after an interruption); copied again".into(),
                "not_applied",
            ),
            AuditOutcome::Failed(FailureClass::Conflict, reason) => {
                (format!("conflict: {reason}"), "conflict")
            }
            AuditOutcome::Failed(_, reason) => (format!("failed: {reason}"), "failed"),
        };
        rows.push(AuditRow {
            at: entry.at,
            step: Some((entry.run, entry.op)),
            what,
            result,
            status,
        });
    }
    rows
}

/// One line of the audit trail.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub at: Millis,
    /// The run and operation of a write (none for a provisioning step).
    pub step: Option<(u64, u64)>,
    pub what: String,
    pub result: String,
    /// done, failed, conflict, not_applied, in_doubt.
    pub status: &'static str,
}

impl AuditRow {
    /// As `ferry audit` prints it.
    pub fn text(&self) -> String {
        match self.step {
            Some((run, op)) => format!(
                "{} run {run} op {op}: {}: {}",
                time(self.at),
                self.what,
                self.result
            ),
            None => format!("{} {}: {}", time(self.at), self.what, self.result),
        }
    }

    /// As one JSON object (a line of `--format json`), with `extra` fields first.
    pub fn json(&self, extra: &[(&str, &str)]) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        for (key, value) in extra {
            object.insert((*key).into(), serde_json::Value::from(*value));
        }
        object.insert("at".into(), time(self.at).into());
        if let Some((run, op)) = self.step {
            object.insert("run".into(), run.into());
            object.insert("op".into(), op.into());
        }
        object.insert("action".into(), self.what.clone().into());
        object.insert("status".into(), self.status.into());
        object.insert("outcome".into(), self.result.clone().into());
        serde_json::Value::Object(object)
    }
}

/// What a plan would do.
pub fn plan(delta: &Delta, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "plan: {} folders to rename, {} to create, {} messages to copy ({:.1} MB), {} flag updates, {} deletions, {} moves on the target; {} source messages are on the target already",
        delta.renames.len(),
        delta.create_folders.len(),
        delta.copies.len(),
        delta.copies.iter().map(|c| c.size).sum::<u64>() as f64 / 1e6,
        delta.flag_updates.len(),
        delta.deletions.len(),
        delta.moves.len(),
        delta.in_place
    )?;
    for (from, to) in &delta.renames {
        writeln!(out, "  rename {from} → {to}")?;
    }
    for folder in &delta.create_folders {
        writeln!(out, "  create {folder}")?;
    }
    let mut per_folder: std::collections::BTreeMap<&str, (u64, u64)> = Default::default();
    for copy in &delta.copies {
        let entry = per_folder.entry(&copy.folder).or_default();
        entry.0 += 1;
        entry.1 += copy.size;
    }
    for (folder, (count, bytes)) in per_folder {
        writeln!(out, "  copy {count} messages ({bytes} bytes) into {folder}")?;
    }
    for update in &delta.flag_updates {
        writeln!(
            out,
            "  flags {}/{}: {} → {}",
            update.folder, update.id, update.from, update.to
        )?;
    }
    for deletion in &delta.deletions {
        writeln!(out, "  delete {}/{}", deletion.folder, deletion.id)?;
    }
    for skip in &delta.skipped {
        writeln!(
            out,
            "  not copied {}/{}: {}",
            skip.folder, skip.id, skip.reason
        )?;
    }
    Ok(())
}

/// Deletions a plan holds back (the mass-deletion guard), with what they are.
pub fn held(summary: &ferry_engine::RunSummary, out: &mut dyn Write) -> anyhow::Result<()> {
    if let Some(held) = &summary.held {
        writeln!(
            out,
            "held back: {held} a run deletes them only with --confirm-deletions"
        )?;
    }
    Ok(())
}
