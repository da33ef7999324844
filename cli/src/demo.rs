//! `ferry demo`: the main job on an embedded default, no server needed. It generates the sample
//! mailbox (a seeded generator: a few hundred realistic messages with attachments, encoded
//! non-ASCII headers, nested and non-ASCII folders, flags, a message without Message-ID, two
//! identical copies of one message) as a Maildir, migrates it to a target Maildir under the state
//! directory, prints the report, and runs again to show that a second run copies nothing.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use ferry_engine::projection::fold;
use ferry_engine::projection::report::Report;
use ferry_sample::{SampleSpec, generate};

use crate::keys::KeyArgs;
use crate::migrate::{self, PairArgs, RunArgs};
use crate::render;

/// Messages in the sample mailbox.
const SAMPLE_MESSAGES: usize = 400;
/// The sample's seed: the same mailbox on every machine.
const SAMPLE_SEED: u64 = 2026;

pub fn run(
    state: &Path,
    key: &KeyArgs,
    out: &mut dyn Write,
    notices: &mut dyn Write,
) -> anyhow::Result<()> {
    let sample = state.join("sample");
    if !sample.exists() {
        let summary = generate(
            &sample,
            &SampleSpec {
                messages: SAMPLE_MESSAGES,
                seed: SAMPLE_SEED,
            },
        )
        .with_context(|| format!("generating the sample mailbox at {}", sample.display()))?;
        writeln!(
            out,
            "generated the sample mailbox: {} messages, {:.1} MB, {} folders at {}",
            summary.messages,
            summary.bytes as f64 / 1e6,
            summary.folders.len(),
            sample.display()
        )?;
    }
    let pair = PairArgs::new(
        (format!("maildir:{}", sample.display()), None),
        (format!("maildir:{}", state.join("target").display()), None),
        state.join("journal"),
        key.clone(),
    );
    let args = RunArgs::default();

    for pass in 1..=2 {
        let started = Instant::now();
        let (summary, dir) = migrate::migrate(&pair, &args, notices)?;
        let seconds = started.elapsed().as_secs_f64();
        let copied = summary.counts.copied;
        writeln!(
            out,
            "\n{} ({}, {:.2} s)",
            render::run_line(&summary),
            if pass == 1 {
                "this demo's first pass"
            } else {
                "second pass"
            },
            seconds,
        )?;
        if pass == 1 {
            let journal = migrate::open_journal(&dir, key, false, notices)?;
            let events = migrate::replay(&journal)?;
            let report: Report = fold(&events);
            render::report_text(&report, out)?;
        } else {
            writeln!(
                out,
                "the second pass copied {copied} messages: ferry moves only what changed.\n\
                 journal: {} — try `ferry report --journal {}` or `ferry audit --journal {}`",
                dir.display(),
                dir.display(),
                dir.display()
            )?;
        }
    }
    Ok(())
}
