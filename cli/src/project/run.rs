//! `ferry run`: the mailboxes of a project (a batch, or one mailbox) migrated at once in one
//! process, each with its own journal, under one key; at most `jobs` at a time, and no more
//! connections to a server than its endpoint allows, over all of them. One mailbox that fails
//! (a wrong password, a server refusing it) is recorded with its reason and never stops the
//! others. SIGINT/SIGTERM pauses them all: the next `ferry run` resumes each.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use ferry_engine::event::RunOutcome;
use ferry_engine::{Clock as _, StopSignal, SystemClock};
use futures::StreamExt as _;
use serde_json::json;
use tokio::sync::Semaphore;

use super::board::{Board, emit};
use super::config::{Endpoint, Project};
use super::ledger::{self, Outcome, Pair, ProjectEvent, Totals};
use super::mapping::{Mailbox, Mapping};
use crate::keys::{KeyArgs, Missing};
use crate::migrate::{PairArgs, RunArgs, Shared};

/// What `ferry run` takes.
#[derive(Debug, Clone, Default)]
pub struct Select {
    pub batch: Option<String>,
    pub mailbox: Option<String>,
    pub jobs: Option<usize>,
    pub run: RunArgs,
    /// Events as JSON lines on stdout instead of text ([`super::board::emit`]).
    pub json: bool,
}

/// The project's key file: given in the project, else `STATE/project.key`.
pub fn key_args(project: &Project) -> KeyArgs {
    let path = match &project.file.project.key_file {
        Some(path) => project.path(path),
        None => project.state().join("project.key"),
    };
    KeyArgs {
        passphrase_file: None,
        key_file: Some(path),
    }
}

/// `uri` asking for at most `most` connections (an IMAP URI only).
fn capped(uri: String, most: usize) -> String {
    if !uri.starts_with("imap") || ferry_stores::connections(&uri) <= most {
        return uri;
    }
    let (head, query) = uri.split_once('?').unwrap_or((uri.as_str(), ""));
    let head = if head.matches('/').count() > 2 {
        head.to_string()
    } else {
        format!("{head}/")
    };
    let added = format!("connections={most}");
    let mut params: Vec<&str> = query
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("connections="))
        .collect();
    params.push(&added);
    format!("{head}?{}", params.join("&"))
}

/// Each limited endpoint's connections: what is free, and how many there are.
type Limits = BTreeMap<String, (Arc<Semaphore>, u32)>;

/// Each Microsoft 365 endpoint's pacer, shared by its mailboxes.
type Tenants = BTreeMap<String, Arc<ferry_engine::pacer::Pacer>>;

/// One mailbox ready to run.
pub(super) struct Job {
    mailbox: Mailbox,
    pub(super) pair: PairArgs,
    pub(super) run: RunArgs,
    /// (endpoint name, connections) for each end with a limit.
    holds: Vec<(String, u32)>,
    /// The endpoints of its source and target whose budget mailboxes share (Microsoft 365).
    shares: [Option<String>; 2],
}

pub(super) fn job(project: &Project, mailbox: &Mailbox, select: &Select) -> anyhow::Result<Job> {
    let (from, to) = project.ends(&mailbox.batch)?;
    let shared = |endpoint: &Endpoint| {
        endpoint
            .uri
            .starts_with("graph:")
            .then(|| project.endpoint_name(endpoint).to_string())
    };
    let shares = [shared(from), shared(to)];
    let batch = project.batch(&mailbox.batch);
    let mut holds = Vec::new();
    let mut uri = |endpoint: &Endpoint, user: &str| {
        let uri = endpoint.uri_for(user);
        match endpoint.connections {
            Some(limit) => {
                let uri = capped(uri, limit);
                let name = project.endpoint_name(endpoint).to_string();
                holds.push((
                    name,
                    u32::try_from(ferry_stores::connections(&uri)).unwrap_or(u32::MAX),
                ));
                uri
            }
            None => uri,
        }
    };
    let from_uri = uri(from, &mailbox.source);
    let to_uri = uri(to, &mailbox.target);
    // Both ends on one endpoint hold its connections once, for both.
    holds.sort();
    holds.dedup_by(|later, first| {
        let same = later.0 == first.0;
        if same {
            first.1 += later.1;
        }
        same
    });
    let mut pair = PairArgs::new(
        (from_uri, from.secret_for(project, &mailbox.source)),
        (to_uri, to.secret_for(project, &mailbox.target)),
        journal_dir(project, mailbox),
        key_args(project),
    );
    pair.folders = project.file.folders.args();
    let mut run = select.run.clone();
    run.delete_removed |= batch.delete_removed;
    if run.create_target_mailbox.is_none() {
        run.create_target_mailbox = batch.create_target_mailbox.clone();
        run.usage_location = batch.usage_location.clone();
    }
    Ok(Job {
        mailbox: mailbox.clone(),
        pair,
        run,
        holds,
        shares,
    })
}

/// What one run of the project did.
#[derive(Debug, Clone)]
pub struct Ran {
    pub number: u32,
    pub results: Vec<(Pair, Outcome, Totals)>,
    /// Mapping lines left out (named when the run began).
    pub left_out: usize,
}

impl Ran {
    fn paused(&self) -> bool {
        self.results
            .iter()
            .any(|(_, outcome, _)| *outcome == Outcome::Paused)
    }

    /// 0 all done, 1 items left behind (or mapping lines left out), 4 a mailbox failed,
    /// 5 paused.
    pub fn exit_code(&self) -> u8 {
        let outcomes = || self.results.iter().map(|(_, outcome, _)| outcome);
        if self.paused() {
            5
        } else if outcomes().any(|o| matches!(o, Outcome::Failed(_))) {
            4
        } else if outcomes().all(|o| *o == Outcome::Done) && self.left_out == 0 {
            0
        } else {
            1
        }
    }
}

/// The async runtime of a project run, and the signal that pauses it (SIGINT/SIGTERM).
fn runtime(parallel: usize) -> anyhow::Result<(tokio::runtime::Runtime, StopSignal)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(parallel + 4)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let stop = StopSignal::new();
    runtime.block_on(async { crate::migrate::pause_on_signals(stop.clone()) });
    Ok((runtime, stop))
}

fn parallel(project: &Project, select: &Select) -> usize {
    select
        .jobs
        .unwrap_or(project.file.project.jobs)
        .clamp(1, 256)
}

/// `ferry run`: the selected mailboxes once, or with `every` again and again until a signal.
/// Returns the exit code.
pub fn run(
    project: &Project,
    select: &Select,
    every: Option<std::time::Duration>,
    out: &mut dyn Write,
) -> anyhow::Result<u8> {
    let (runtime, stop) = runtime(parallel(project, select))?;
    loop {
        let ran = execute(project, select, &runtime, &stop, out)?;
        let Some(every) = every else {
            return Ok(ran.exit_code());
        };
        if stop.is_stopped() {
            return Ok(5);
        }
        if select.json {
            emit("waiting", json!({ "next_run_in_seconds": every.as_secs() }));
        } else {
            writeln!(
                out,
                "next run in {} (Ctrl-C or SIGTERM ends the loop)",
                humantime::format_duration(every)
            )?;
        }
        out.flush()?;
        let until = Instant::now() + every;
        while Instant::now() < until {
            if stop.is_stopped() {
                return Ok(5);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// `ferry cutover`: the final delta pass of the selected mailboxes, every item read back on
/// the target, then go or no-go for the MX change. Exit 0 on go, 1 on no-go (5 paused).
pub fn cutover(project: &Project, select: &Select, out: &mut dyn Write) -> anyhow::Result<u8> {
    let mut select = select.clone();
    select.run.verify_target = true;
    let (runtime, stop) = runtime(parallel(project, &select))?;
    let ran = execute(project, &select, &runtime, &stop, out)?;
    if ran.paused() {
        if select.json {
            emit("cutover", json!({ "verdict": "paused" }));
        } else {
            writeln!(out, "cutover check paused: run `ferry cutover` again")?;
        }
        return Ok(5);
    }
    let not_ready: Vec<String> = ran
        .results
        .iter()
        .filter(|(_, outcome, totals)| *outcome != Outcome::Done || totals.behind > 0)
        .map(|(pair, outcome, totals)| {
            format!(
                "  {}: {}{}, {} items behind, {} conflicts",
                pair.name(),
                outcome.word(),
                match outcome {
                    Outcome::Failed(why) => format!(" ({why})"),
                    _ => String::new(),
                },
                totals.behind,
                totals.conflicts
            )
        })
        .collect();
    if select.json {
        emit(
            "cutover",
            json!({
                "verdict": if not_ready.is_empty() { "GO" } else { "NO-GO" },
                "batch": select.batch,
                "mailboxes": ran.results.len(),
                "not_ready": not_ready.iter().map(|line| line.trim()).collect::<Vec<_>>(),
                "left_out": ran.left_out,
            }),
        );
        return Ok(if not_ready.is_empty() { 0 } else { 1 });
    }
    let scope = select
        .batch
        .as_ref()
        .map_or_else(|| "the project".to_string(), |b| format!("batch {b}"));
    if not_ready.is_empty() {
        writeln!(
            out,
            "GO: every mailbox of {scope} ({}) is whole on its target, read back item by item. \
             Switch MX now; after the switch, run `ferry run{}` once more for mail that \
             arrived in between.",
            ran.results.len(),
            select
                .batch
                .as_ref()
                .map(|b| format!(" --batch {b}"))
                .unwrap_or_default()
        )?;
        if ran.left_out > 0 {
            writeln!(
                out,
                "note: {} mapping lines are left out of the project (see `ferry map`)",
                ran.left_out
            )?;
        }
        Ok(0)
    } else {
        writeln!(
            out,
            "NO-GO: {} of {} mailboxes of {scope} are not whole on their target:",
            not_ready.len(),
            ran.results.len()
        )?;
        for line in &not_ready {
            writeln!(out, "{line}")?;
        }
        writeln!(
            out,
            "`ferry report` of a mailbox's journal says why, item by item."
        )?;
        Ok(1)
    }
}

/// Runs the selected mailboxes once and prints a line for each.
fn execute(
    project: &Project,
    select: &Select,
    runtime: &tokio::runtime::Runtime,
    stop: &StopSignal,
    out: &mut dyn Write,
) -> anyhow::Result<Ran> {
    let mapping = Mapping::load(project)?;
    for problem in &mapping.problems {
        if select.json {
            emit("left_out", json!({ "problem": problem.to_string() }));
        } else {
            writeln!(out, "left out: {problem}")?;
        }
    }
    let chosen = mapping.select(select.batch.as_deref(), select.mailbox.as_deref());
    if chosen.is_empty() {
        anyhow::bail!(
            "no mailbox of the mapping matches{}{} (`ferry map` lists them)",
            select
                .batch
                .as_ref()
                .map(|b| format!(" batch {b}"))
                .unwrap_or_default(),
            select
                .mailbox
                .as_ref()
                .map(|m| format!(" mailbox {m}"))
                .unwrap_or_default()
        );
    }
    let jobs: Vec<Job> = chosen
        .iter()
        .map(|mailbox| job(project, mailbox, select))
        .collect::<anyhow::Result<_>>()?;
    let state = project.state();
    std::fs::create_dir_all(&state).with_context(|| format!("creating {}", state.display()))?;
    // A notice about the key (made now) is for the operator: with --json, on stderr.
    let key = if select.json {
        crate::keys::resolve(&key_args(project), Missing::Create, &mut std::io::stderr())?
    } else {
        crate::keys::resolve(&key_args(project), Missing::Create, out)?
    };
    let journal = ledger::open(&state.join("project"), &key)?;
    let (_, runs) = ledger::fold(&ledger::events(&journal)?);
    let run_number = runs + 1;
    journal.append(&ProjectEvent::RunStarted {
        run: run_number,
        at: SystemClock.now_ms(),
        batch: select.batch.clone(),
        mailboxes: chosen.iter().map(Pair::from).collect(),
    })?;
    if select.json {
        emit(
            "run_started",
            json!({ "run": run_number, "batch": select.batch, "mailboxes": chosen.len() }),
        );
    }

    // A Microsoft 365 endpoint's budget over its mailboxes (the app's concurrency, learned
    // from throttling where not declared): one pacer each, every mailbox's pacers under it.
    let tenants: Tenants = project
        .file
        .endpoints
        .iter()
        .filter(|(_, e)| e.uri.starts_with("graph:"))
        .map(|(name, e)| {
            let limits = ferry_engine::pacer::Limits {
                in_flight: e.in_flight,
                ..Default::default()
            };
            (
                name.clone(),
                Arc::new(ferry_engine::pacer::Pacer::new(limits)),
            )
        })
        .collect();
    let limits: Limits = project
        .file
        .endpoints
        .iter()
        .filter_map(|(name, e)| {
            let most = e.connections?;
            Some((
                name.clone(),
                (
                    Arc::new(Semaphore::new(most)),
                    u32::try_from(most).unwrap_or(u32::MAX),
                ),
            ))
        })
        .collect();
    let parallel = parallel(project, select);
    let board = Arc::new(Board::new(jobs.len(), select.json));
    let started = Instant::now();
    let results: Vec<(Pair, Outcome, Totals)> = runtime.block_on(async {
        let ticking = board.clone().tick();
        let results = futures::stream::iter(jobs)
            .map(|job| {
                let (limits, tenants, board, journal) = (&limits, &tenants, &board, &journal);
                async move { one(job, (limits, tenants), stop, board, journal).await }
            })
            .buffer_unordered(parallel)
            .collect::<Vec<_>>()
            .await;
        ticking.abort();
        results
    });
    board.finish();
    let ran = Ran {
        number: run_number,
        results,
        left_out: mapping.problems.len(),
    };
    journal.append(&ProjectEvent::RunEnded {
        run: run_number,
        at: SystemClock.now_ms(),
        paused: ran.paused(),
    })?;
    let mut counted: BTreeMap<&str, usize> = BTreeMap::new();
    for (pair, outcome, totals) in &ran.results {
        *counted.entry(outcome.word()).or_default() += 1;
        if select.json {
            continue;
        }
        writeln!(
            out,
            "{}: {}{} — {} copied, {} updated, {} deleted, {} behind",
            pair.name(),
            outcome.word(),
            match outcome {
                Outcome::Failed(why) => format!(" ({why})"),
                _ => String::new(),
            },
            totals.copied,
            totals.updated,
            totals.deleted,
            totals.behind
        )?;
    }
    if select.json {
        emit(
            "run_ended",
            json!({
                "run": ran.number,
                "mailboxes": ran.results.len(),
                "seconds": started.elapsed().as_secs_f64(),
                "outcomes": counted,
                "exit_code": ran.exit_code(),
            }),
        );
        return Ok(ran);
    }
    writeln!(
        out,
        "run {}: {} mailboxes in {:.1} s: {}",
        ran.number,
        ran.results.len(),
        started.elapsed().as_secs_f64(),
        counted
            .iter()
            .map(|(word, n)| format!("{n} {word}"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    Ok(ran)
}

/// One mailbox: its endpoints' connections held, migrated on a thread of its own, recorded.
async fn one(
    job: Job,
    (limits, tenants): (&Limits, &Tenants),
    stop: &StopSignal,
    board: &Arc<Board>,
    journal: &ferry_journal::Journal<ProjectEvent>,
) -> (Pair, Outcome, Totals) {
    let pair = Pair::from(&job.mailbox);
    let name = job.mailbox.name();
    let mut permits = Vec::new();
    // In endpoint name order: two mailboxes never wait on each other's half.
    for (endpoint, count) in &job.holds {
        if let Some((limit, most)) = limits.get(endpoint) {
            let count = (*count).clamp(1, *most);
            if let Ok(permit) = limit.clone().acquire_many_owned(count).await {
                permits.push(permit);
            }
        }
    }
    if stop.is_stopped() {
        return (pair, Outcome::Paused, Totals::default());
    }
    let recorded = |event: ProjectEvent| record(journal, &event);
    recorded(ProjectEvent::MailboxStarted {
        pair: pair.clone(),
        at: SystemClock.now_ms(),
    });
    let watcher = board.watch(&name);
    let shared = Shared {
        runtime: Some(tokio::runtime::Handle::current()),
        stop: Some(stop.clone()),
        watcher: Some(watcher),
        tenants: job
            .shares
            .clone()
            .map(|name| name.and_then(|name| tenants.get(&name).cloned())),
        provisioned: Some(provisioned_into(journal.clone(), pair.clone())),
        reported: Some(reported_into(journal.clone(), pair.clone())),
    };
    let started = Instant::now();
    let (pair_args, run_args) = (job.pair, job.run);
    let result = tokio::task::spawn_blocking(move || {
        let mut notices: Vec<u8> = Vec::new();
        let result = crate::migrate::migrate_in(&pair_args, &run_args, &mut notices, &shared);
        (result, notices)
    })
    .await;
    drop(permits);
    board.done(&name);
    let (outcome, totals) = match result {
        Ok((Ok((summary, _)), _)) => {
            let totals = Totals {
                copied: summary.counts.copied,
                copied_bytes: summary.counts.copied_bytes,
                updated: summary.counts.updated,
                deleted: summary.counts.deleted,
                failed: summary.failed as u64,
                conflicts: summary.counts.conflicts,
                behind: summary.failed as u64
                    + summary.delta.skipped.len() as u64
                    + summary.counts.conflicts,
            };
            let outcome = match summary.outcome {
                RunOutcome::Completed => Outcome::Done,
                RunOutcome::CompletedWithFailures | RunOutcome::Aborted => {
                    Outcome::DoneWithFailures
                }
                RunOutcome::Paused => Outcome::Paused,
                RunOutcome::DeletionsHeld => Outcome::DeletionsHeld,
            };
            (outcome, totals)
        }
        Ok((Err(error), _)) => (Outcome::Failed(format!("{error:#}")), Totals::default()),
        Err(panicked) => (
            Outcome::Failed(format!("the mailbox's run ended abnormally: {panicked}")),
            Totals::default(),
        ),
    };
    if board.json() {
        emit(
            "mailbox_ended",
            json!({
                "mailbox": name,
                "source": pair.source,
                "target": pair.target,
                "batch": pair.batch,
                "outcome": outcome.word(),
                "reason": match &outcome {
                    Outcome::Failed(why) => Some(why.as_str()),
                    _ => None,
                },
                "copied": totals.copied,
                "copied_bytes": totals.copied_bytes,
                "updated": totals.updated,
                "deleted": totals.deleted,
                "failed": totals.failed,
                "conflicts": totals.conflicts,
                "behind": totals.behind,
                "seconds": started.elapsed().as_secs_f64(),
            }),
        );
    }
    recorded(ProjectEvent::MailboxEnded {
        pair: pair.clone(),
        at: SystemClock.now_ms(),
        outcome: outcome.clone(),
        totals: totals.clone(),
        seconds: started.elapsed().as_secs(),
    });
    (pair, outcome, totals)
}

/// Records a mailbox's provisioning steps in the project journal as they are made.
fn provisioned_into(
    journal: ferry_journal::Journal<ProjectEvent>,
    pair: Pair,
) -> Arc<crate::provision::Told> {
    Arc::new(move |step, user, done| {
        let event = ProjectEvent::Provisioning {
            pair: pair.clone(),
            step: step.clone(),
            user: user.to_string(),
            done,
            at: SystemClock.now_ms(),
        };
        record(&journal, &event);
    })
}

/// Records what a mailbox's report tells after its run in the project journal.
fn reported_into(
    journal: ferry_journal::Journal<ProjectEvent>,
    pair: Pair,
) -> Arc<crate::migrate::Reported> {
    Arc::new(move |report| {
        let event = ProjectEvent::MailboxDetail {
            pair: pair.clone(),
            detail: ledger::Detail::of(report),
        };
        record(&journal, &event);
    })
}

/// Appends a record of a mailbox to the project journal; a refusal is said and the mailbox's
/// run goes on (its own journal holds what happened).
fn record(journal: &ferry_journal::Journal<ProjectEvent>, event: &ProjectEvent) {
    if let Err(error) = journal.append(event) {
        eprintln!("the project journal refused a record: {error}");
    }
}

/// Where a mailbox's journal is.
pub fn journal_dir(project: &Project, mailbox: &Mailbox) -> PathBuf {
    project.state().join("mailboxes").join(mailbox.dir_name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_imap_pool_is_capped_to_the_endpoints_limit() {
        assert_eq!(ferry_stores::connections("imap://a@h:1143"), 4);
        assert_eq!(
            capped("imap://a@h:1143".into(), 2),
            "imap://a@h:1143/?connections=2"
        );
        assert_eq!(
            capped("imap://a@h:1143/?tls=none&connections=8".into(), 3),
            "imap://a@h:1143/?tls=none&connections=3"
        );
        assert_eq!(
            capped("imap://a@h/?tls=none".into(), 8),
            "imap://a@h/?tls=none"
        );
        assert_eq!(ferry_stores::connections("graph://t/u?client_id=x"), 1);
    }
}
