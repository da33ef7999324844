//! `ferry plan` over a project: for each selected mailbox, where its folders go under the
//! project's folder rules (left out, renamed, merged) and what its next run would do. Reads
//! the sources, the targets and the journals; writes nothing anywhere.

use std::io::Write;

use anyhow::Context as _;
use ferry_engine::Side;
use ferry_engine::projection::delta::Delta;

use super::config::Project;
use super::mapping::Mapping;
use super::run::{Job, Select, job};
use crate::migrate::{RunArgs, Shared};

/// What the rules do to one mailbox's folders: (source folder, what happens to it), for the
/// folders a rule touches, and how many go as they are.
fn routes(
    job: &Job,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<(Vec<(String, String)>, usize)> {
    let rules = job.pair.folders.rules()?;
    let source = crate::migrate::open_store(
        &job.pair.from,
        Side::Source,
        true,
        None,
        &job.pair,
        &mut std::io::sink(),
    )?;
    let folders = runtime
        .block_on(source.list_folders())
        .with_context(|| format!("listing the folders of {}", source.describe()))?;
    let (into, excluded) = rules.group(folders.iter().map(|f| f.path.as_str()), |path| path);
    let mut touched = Vec::new();
    let mut same = 0;
    for (to, froms) in &into {
        match froms.as_slice() {
            [from] if from == to => same += 1,
            [from] => touched.push(((*from).to_string(), format!("-> {to}"))),
            _ => touched.push((froms.join(" + "), format!("-> {to} (merged)"))),
        }
    }
    for (path, pattern) in excluded {
        touched.push((path.to_string(), format!("left out (exclude {pattern})")));
    }
    touched.sort();
    Ok((touched, same))
}

/// One line for what a run would do.
fn todo(delta: &Delta) -> String {
    format!(
        "{} messages to copy ({:.1} MB), {} folders to create, {} to rename, {} flag updates, \
         {} deletions; {} on the target already",
        delta.copies.len(),
        delta.copies.iter().map(|c| c.size).sum::<u64>() as f64 / 1e6,
        delta.create_folders.len() + delta.collections.len(),
        delta.renames.len(),
        delta.flag_updates.len(),
        delta.deletions.len() + delta.keyed_deletions.len(),
        delta.in_place
    )
}

/// `ferry plan` for the selected mailboxes. Exit 0 when each was planned, 1 when one could
/// not be (its reason printed).
pub fn plan(project: &Project, select: &Select, out: &mut dyn Write) -> anyhow::Result<u8> {
    let mapping = Mapping::load(project)?;
    for problem in &mapping.problems {
        writeln!(out, "left out: {problem}")?;
    }
    let rules = &project.file.folders;
    let mut said = Vec::new();
    if !rules.exclude.is_empty() {
        said.push(format!("exclude {}", rules.exclude.join(", ")));
    }
    for (from, to) in &rules.rename {
        said.push(format!("rename {from} -> {to}"));
    }
    for (into, froms) in &rules.merge {
        said.push(format!("merge {} -> {into}", froms.join(", ")));
    }
    if said.is_empty() {
        writeln!(
            out,
            "folder rules: none (every folder goes under its own path)"
        )?;
    } else {
        writeln!(out, "folder rules: {}", said.join("; "))?;
    }
    let chosen = mapping.select(select.batch.as_deref(), select.mailbox.as_deref());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let shared = Shared {
        runtime: Some(runtime.handle().clone()),
        stop: None,
        // A plan's runs say nothing while they plan: the plan prints what they found.
        watcher: Some(std::sync::Arc::new(ferry_engine::Quiet)),
        tenants: [None, None],
        provisioned: None,
        reported: None,
    };
    let (mut planned, mut failed, mut copies, mut bytes) = (0, 0, 0, 0_u64);
    for mailbox in &chosen {
        writeln!(out, "\n{} (batch {})", mailbox.name(), mailbox.batch)?;
        let planned_one = (|| -> anyhow::Result<Delta> {
            let job = job(project, mailbox, select)?;
            let (touched, same) = routes(&job, &runtime)?;
            for (from, what) in &touched {
                writeln!(out, "  {from} {what}")?;
            }
            writeln!(out, "  {same} folders go under their own path")?;
            let run = RunArgs {
                dry_run: true,
                ..job.run.clone()
            };
            let (summary, _) =
                crate::migrate::migrate_in(&job.pair, &run, &mut std::io::sink(), &shared)?;
            Ok(summary.delta)
        })();
        match planned_one {
            Ok(delta) => {
                planned += 1;
                copies += delta.copies.len();
                bytes += delta.copies.iter().map(|c| c.size).sum::<u64>();
                writeln!(out, "  plan: {}", todo(&delta))?;
            }
            Err(error) => {
                failed += 1;
                writeln!(out, "  cannot plan: {error:#}")?;
            }
        }
    }
    writeln!(
        out,
        "\n{planned} mailboxes planned: {copies} messages to copy ({:.1} MB); {failed} could \
         not be planned",
        bytes as f64 / 1e6
    )?;
    Ok(if failed == 0 { 0 } else { 1 })
}
