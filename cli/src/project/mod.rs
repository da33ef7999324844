//! A migration project (`ferry.toml`): many mailboxes, mapped from source to target, run in
//! batches, each with its journal, and a project journal for what belongs to none of them.
//! `config.rs` (the file), `mapping.rs` (who goes where), `run.rs` (`ferry run`), `board.rs`
//! (the live display), `ledger.rs` (the project journal).

pub mod board;
pub mod config;
pub mod directory;
pub mod ledger;
pub mod mapping;
pub mod plan;
pub mod report;
pub mod run;

use std::io::Write;
use std::path::Path;

use anyhow::{Context as _, bail};
use ferry_engine::Clock as _;
use ferry_journal::Journal;

use config::Project;
use mapping::Mapping;

/// What `ferry init` writes: the commented example of the repository.
pub const EXAMPLE: &str = include_str!("../../../examples/ferry.toml");

/// `ferry init`: a commented project file, never over an existing one.
pub fn init(path: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    if path.exists() {
        bail!("{} exists: not written over", path.display());
    }
    std::fs::write(path, EXAMPLE).with_context(|| format!("writing {}", path.display()))?;
    writeln!(
        out,
        "wrote {}: name your endpoints and the mapping, then `ferry map`",
        path.display()
    )?;
    Ok(())
}

/// `ferry map`: every pair with its batch and endpoints, then what is left out and why.
/// Exit code 1 when something is left out.
pub fn map(project: &Project, out: &mut dyn Write) -> anyhow::Result<u8> {
    let mapping = Mapping::load(project)?;
    writeln!(
        out,
        "{:<8}  {:<34}  {:<34}  route",
        "batch", "source", "target"
    )?;
    for mailbox in &mapping.mailboxes {
        let route = match project.ends(&mailbox.batch) {
            Ok((from, to)) => format!(
                "{} → {}",
                project.endpoint_name(from),
                project.endpoint_name(to)
            ),
            Err(error) => format!("unroutable: {error}"),
        };
        writeln!(
            out,
            "{:<8}  {:<34}  {:<34}  {route}",
            mailbox.batch, mailbox.source, mailbox.target
        )?;
    }
    let mut batches: std::collections::BTreeMap<&str, usize> = Default::default();
    for mailbox in &mapping.mailboxes {
        *batches.entry(&mailbox.batch).or_default() += 1;
    }
    writeln!(
        out,
        "{} mailboxes ({})",
        mapping.mailboxes.len(),
        batches
            .iter()
            .map(|(b, n)| format!("{b}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    for problem in &mapping.problems {
        writeln!(out, "left out: {problem}")?;
    }
    let missing = missing_targets(project, &mapping, out)?;
    let unroutable = mapping
        .mailboxes
        .iter()
        .any(|m| project.ends(&m.batch).is_err());
    Ok(u8::from(
        !mapping.problems.is_empty() || unroutable || missing > 0,
    ))
}

/// Targets on a Microsoft 365 endpoint that its tenant has no user for (one listing of its
/// users per endpoint): each named, as one its batch creates or as missing. Returns how many
/// are missing.
fn missing_targets(
    project: &Project,
    mapping: &Mapping,
    out: &mut dyn Write,
) -> anyhow::Result<usize> {
    let mut users: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    let mut missing = 0;
    for mailbox in &mapping.mailboxes {
        let Ok((_, to)) = project.ends(&mailbox.batch) else {
            continue;
        };
        if !to.uri.starts_with("graph:") {
            continue;
        }
        let name = project.endpoint_name(to).to_string();
        if !users.contains_key(&name) {
            let listed = directory::listed(project, &name)?;
            users.insert(
                name.clone(),
                listed
                    .into_iter()
                    .map(|p| p.address.to_lowercase())
                    .collect(),
            );
        }
        if users[&name].contains(&mailbox.target.to_lowercase()) {
            continue;
        }
        if project
            .batch(&mailbox.batch)
            .create_target_mailbox
            .is_some()
        {
            writeln!(
                out,
                "to create: {} on {name} (batch {} creates its target mailbox)",
                mailbox.target, mailbox.batch
            )?;
        } else {
            missing += 1;
            writeln!(
                out,
                "missing: {} is not a user of {name}; create it, or set create_target_mailbox \
                 in [batches.{}]",
                mailbox.target, mailbox.batch
            )?;
        }
    }
    Ok(missing)
}

/// The project journal's events (none before the first run), and whether a process holds it.
fn history(project: &Project) -> anyhow::Result<(Vec<ledger::ProjectEvent>, bool)> {
    let dir = project.state().join("project");
    if !Journal::<ledger::ProjectEvent>::exists(&dir) {
        return Ok((Vec::new(), false));
    }
    let key = crate::keys::resolve(
        &run::key_args(project),
        crate::keys::Missing::Refuse,
        &mut std::io::sink(),
    )?;
    let running = Journal::<()>::in_use(&dir);
    let journal: Journal<ledger::ProjectEvent> = Journal::open(&dir, &key)
        .with_context(|| format!("opening the project journal at {}", dir.display()))?;
    Ok((ledger::events(&journal)?, running))
}

/// How a project report is written.
#[derive(Debug, Clone, Copy)]
pub enum ReportFormat {
    Text,
    Json,
    Html,
}

/// `ferry report` of a project.
pub fn report(
    project: &Project,
    (batch, mailbox): (Option<&str>, Option<&str>),
    format: ReportFormat,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut mapping = Mapping::load(project)?;
    if batch.is_some() || mailbox.is_some() {
        mapping.mailboxes = mapping.select(batch, mailbox);
        if mapping.mailboxes.is_empty() {
            anyhow::bail!("no mailbox of the mapping matches (`ferry map` lists them)");
        }
    }
    let (events, running) = history(project)?;
    let mut built = report::build(
        &mapping,
        &events,
        running,
        ferry_engine::SystemClock.now_ms(),
    );
    if let Some(batch) = batch {
        // The runs of that batch, and those of the whole project (which ran it too).
        built
            .runs
            .retain(|run| run.batch.as_deref().is_none_or(|b| b == batch));
    }
    match format {
        ReportFormat::Text => report::text(&built, out),
        ReportFormat::Json => report::json(&built, out),
        ReportFormat::Html => report::html(&built, out),
    }
}

/// `ferry audit` over a project: each mailbox's writes (and provisioning steps), the mailbox
/// named on each line; `json`: one JSON object per line. How many lines.
pub fn audit(
    project: &Project,
    mailbox: Option<&str>,
    since: Option<ledger::Millis>,
    folder: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<usize> {
    let mapping = Mapping::load(project)?;
    let key = run::key_args(project);
    let mut lines = 0;
    for chosen in mapping.select(None, mailbox) {
        let dir = run::journal_dir(project, &chosen);
        if !Journal::<ferry_engine::Event>::exists(&dir) {
            continue;
        }
        let journal = crate::migrate::open_read_only(&dir, &key, &mut std::io::sink())?;
        let events = crate::migrate::replay(&journal)?;
        let trail: ferry_engine::projection::audit::Audit = ferry_engine::projection::fold(&events);
        for row in crate::render::audit_rows(&trail, since, folder) {
            if json {
                let fields = [
                    ("source", chosen.source.as_str()),
                    ("target", chosen.target.as_str()),
                    ("batch", chosen.batch.as_str()),
                ];
                writeln!(out, "{}", row.json(&fields))?;
            } else {
                writeln!(out, "{}: {}", chosen.name(), row.text())?;
            }
            lines += 1;
        }
    }
    Ok(lines)
}

/// `ferry status` of a project: each mailbox of the mapping as the project journal knows it.
pub fn status(project: &Project, out: &mut dyn Write) -> anyhow::Result<u8> {
    let mapping = Mapping::load(project)?;
    let (events, running) = history(project)?;
    let (known, runs) = ledger::fold(&events);
    writeln!(
        out,
        "{} mailboxes; project runs: {runs}{}",
        mapping.mailboxes.len(),
        if running {
            " (a ferry process is running the project)"
        } else {
            ""
        }
    )?;
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for mailbox in &mapping.mailboxes {
        let pair = ledger::Pair::from(mailbox);
        let entry = known.get(&pair);
        let (word, detail) = match entry {
            None => ("never run".to_string(), String::new()),
            Some(entry) if entry.running && running => ("running".to_string(), String::new()),
            Some(entry) => match &entry.last {
                None => (
                    "cut off".to_string(),
                    " (the process ended mid-run)".to_string(),
                ),
                Some((_, outcome, totals)) => {
                    let mut detail = match outcome {
                        ledger::Outcome::Failed(why) => format!(" ({why})"),
                        _ => String::new(),
                    };
                    if totals.conflicts > 0 {
                        detail.push_str(&format!(", {} conflicts", totals.conflicts));
                    }
                    if totals.behind > 0 {
                        detail.push_str(&format!(", {} items behind", totals.behind));
                    }
                    if let Some(at) = entry.last_complete {
                        detail.push_str(&format!(", last delta {}", crate::render::time(at)));
                    }
                    (outcome.word().to_string(), detail)
                }
            },
        };
        *counts.entry(word.clone()).or_default() += 1;
        let made = entry
            .map(|e| provisioned(&e.provisioned))
            .unwrap_or_default();
        writeln!(
            out,
            "{:<8}  {}: {word}{detail}{made}",
            mailbox.batch,
            mailbox.name()
        )?;
    }
    writeln!(
        out,
        "{}",
        counts
            .iter()
            .map(|(w, n)| format!("{n} {w}"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    Ok(0)
}

/// What was made of a mailbox's target, in words (nothing when nothing was).
fn provisioned(steps: &[(ferry_engine::ProvisionStep, bool)]) -> String {
    let said: Vec<String> = steps
        .iter()
        .map(|(step, done)| {
            let what = match step {
                ferry_engine::ProvisionStep::CreateUser => "user created".to_string(),
                ferry_engine::ProvisionStep::AssignLicense { sku } => format!("licence {sku}"),
            };
            if *done {
                what
            } else {
                format!("{what} (stopped inside the step; the next run asks the tenant)")
            }
        })
        .collect();
    if said.is_empty() {
        String::new()
    } else {
        format!("; target: {}", said.join(", "))
    }
}

/// The project file: `--project`, else `./ferry.toml`.
pub fn load(given: Option<&Path>) -> anyhow::Result<Project> {
    Project::load(given.unwrap_or(Path::new(config::FILE)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_is_a_valid_project() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(config::FILE);
        std::fs::write(&path, EXAMPLE).expect("write");
        let project = Project::load(&path).expect("the example loads");
        assert_eq!(project.file.endpoints.len(), 2);
        let (from, to) = project.ends("pilot").expect("routed");
        assert!(from.uri.contains("mail.old.example") && to.uri.contains("mail.new.example"));
    }
}
