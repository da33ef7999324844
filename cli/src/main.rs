//! The `ferry` binary: thin commands over the library crates.
//!
//! Exit codes: 0 done; 1 a run completed but some items failed (see `ferry report`); 2 usage,
//! configuration or I/O problem; 3 the journal is damaged or the key does not open it; 4 the
//! source or the target is unreachable or unusable; 5 the run was paused (SIGINT/SIGTERM) and
//! resumes when the same command runs again; 6 the run did everything but its deletions, held
//! back by the mass-deletion guard until `--confirm-deletions`.

mod demo;
mod folders;
mod help;
mod keys;
mod migrate;
mod preflight;
mod progress;
mod project;
mod provision;
mod render;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ferry_journal::{CreateOptions, Journal, KeySource, Passphrase};

use keys::{KeyArgs, Missing};
use migrate::{PairArgs, RunArgs};

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    about = "Mailbox migration with an encrypted, replayable journal"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Copies what is new or changed from the source to the target (the first run copies
    /// everything); run it again until the cutover.
    #[command(after_long_help = help::MIGRATE)]
    Migrate {
        #[command(flatten)]
        pair: PairArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Shows what the next migrate run would do; writes nothing, not even to the journal.
    /// Without --from, for each mailbox of the project (./ferry.toml or --project): where its
    /// folders go under the project's folder rules, and what its next run would do.
    #[command(after_long_help = help::MIGRATE)]
    Plan {
        #[command(flatten)]
        pair: PairArgs,
        #[command(flatten)]
        run: RunArgs,
        /// Without --from and --to: the project file (default: ./ferry.toml).
        #[arg(long, value_name = "FILE", conflicts_with = "from")]
        project: Option<PathBuf>,
        /// Without --from and --to: only this batch of the project.
        #[arg(long, value_name = "NAME", conflicts_with = "from")]
        batch: Option<String>,
        /// Without --from and --to: only this mailbox of the project (source or target).
        #[arg(long, value_name = "ADDRESS", conflicts_with = "from")]
        mailbox: Option<String>,
    },
    /// `ferry plan` without --from and --to: each mailbox of the project.
    #[command(hide = true)]
    ProjectPlan {
        #[command(flatten)]
        run: RunArgs,
        /// The project file (default: ./ferry.toml).
        #[arg(long, value_name = "FILE")]
        project: Option<PathBuf>,
        /// Only this batch.
        #[arg(long, value_name = "NAME")]
        batch: Option<String>,
        /// Only this mailbox (its source or target address).
        #[arg(long, value_name = "ADDRESS")]
        mailbox: Option<String>,
    },
    /// The journal's last run and what is left in doubt; without --journal, each mailbox of
    /// the project (./ferry.toml or --project).
    Status {
        /// The journal directory of one migration.
        #[arg(long, value_name = "DIR")]
        journal: Option<PathBuf>,
        /// The project file (default: ./ferry.toml).
        #[arg(long, value_name = "FILE", conflicts_with = "journal")]
        project: Option<PathBuf>,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Writes a commented project file (ferry.toml) to start a migration project from.
    Init {
        /// Where to write it.
        #[arg(default_value = "ferry.toml")]
        path: PathBuf,
    },
    /// Shows which source mailbox goes to which target, in which batch and by which route,
    /// and what the mapping leaves out (ambiguous, shared or unmapped) before anything moves.
    Map {
        /// The project file (default: ./ferry.toml).
        #[arg(long, value_name = "FILE")]
        project: Option<PathBuf>,
    },
    /// Migrates the project's mailboxes (a batch, or one), several at once, each with its own
    /// journal; run it again for each delta until the cutover.
    Run {
        #[command(flatten)]
        selection: Selection,
        /// Check every migrated item on the target and copy again what is missing or altered.
        #[arg(long)]
        verify_target: bool,
        /// Re-read every source item instead of trusting what the journals know.
        #[arg(long)]
        full: bool,
        /// Delete on the targets what ferry copied there and the sources no longer have.
        #[arg(long)]
        delete_removed: bool,
        /// Carry out deletions the mass-deletion guard holds back.
        #[arg(long, requires = "delete_removed")]
        confirm_deletions: bool,
        /// Run again this long after each run ends (e.g. 2h), keeping the mailboxes in delta
        /// sync until the cutover; Ctrl-C or SIGTERM ends the loop.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        every: Option<std::time::Duration>,
    },
    /// The final delta pass before the MX change: the mailboxes (a batch, or all) migrated
    /// once more with every item read back on the target, then GO (exit 0) or NO-GO (exit 1)
    /// with each mailbox that is not whole and why.
    Cutover {
        #[command(flatten)]
        selection: Selection,
    },
    /// Per run and per folder: what was copied, and every source item not on the target (failed,
    /// refused by the target, unreadable on the source) with the reason.
    Report {
        /// The journal directory of one migration; without it, the project's report (per
        /// project, batch and mailbox, and each run's throughput).
        #[arg(long, value_name = "DIR")]
        journal: Option<PathBuf>,
        /// The project file (default: ./ferry.toml).
        #[arg(long, value_name = "FILE", conflicts_with = "journal")]
        project: Option<PathBuf>,
        /// Only this batch of the project (its totals, mailboxes and runs).
        #[arg(long, value_name = "NAME", conflicts_with = "journal")]
        batch: Option<String>,
        /// Only this mailbox of the project (its source or target address).
        #[arg(long, value_name = "ADDRESS", conflicts_with = "journal")]
        mailbox: Option<String>,
        #[command(flatten)]
        key: KeyArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: ReportFormat,
    },
    /// Every write ferry made, when and from where to where, from the journal alone.
    Audit {
        /// The journal directory of one migration; without it, every mailbox of the project.
        #[arg(long, value_name = "DIR")]
        journal: Option<PathBuf>,
        /// The project file (default: ./ferry.toml).
        #[arg(long, value_name = "FILE", conflicts_with = "journal")]
        project: Option<PathBuf>,
        /// Only this mailbox of the project (its source or target address).
        #[arg(long, value_name = "ADDRESS", conflicts_with = "journal")]
        mailbox: Option<String>,
        #[command(flatten)]
        key: KeyArgs,
        /// Only writes at or after this time (RFC 3339, e.g. 2026-11-25T10:00:00Z).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only writes into this target folder.
        #[arg(long, value_name = "FOLDER")]
        folder: Option<String>,
        /// `json`: one JSON object per line (for a SIEM).
        #[arg(long, value_enum, default_value = "text")]
        format: AuditFormat,
    },
    /// Migrates a generated sample mailbox (Maildir) to a target Maildir under the state
    /// directory, prints the report, and runs again to show that nothing is copied twice.
    Demo {
        /// Where the sample, the target and the journal live.
        #[arg(long, value_name = "DIR", default_value = "ferry-state")]
        state: PathBuf,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Writes the seeded sample mailbox (a Maildir++ tree) to a directory, for trials and
    /// benchmarks.
    #[command(hide = true)]
    GenerateSample {
        /// Where to write it (must not exist).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// How many messages.
        #[arg(long, default_value_t = 400)]
        messages: usize,
        /// The seed.
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },
    /// Prints the shell completion script for SHELL (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Prints ferry's manual page (roff), e.g. `ferry man > /usr/local/share/man/man1/ferry.1`.
    Man,
    /// Journal maintenance.
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
}

/// Which mailboxes of a project a command takes.
#[derive(Debug, Clone, clap::Args)]
struct Selection {
    /// The project file (default: ./ferry.toml).
    #[arg(long, value_name = "FILE")]
    project: Option<PathBuf>,
    /// Only this batch.
    #[arg(long, value_name = "NAME")]
    batch: Option<String>,
    /// Only this mailbox (its source or target address).
    #[arg(long, value_name = "ADDRESS")]
    mailbox: Option<String>,
    /// Mailboxes migrated at once (default: the project's jobs).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Events as JSON on stdout, one object per line (mailbox started, progress, throttled,
    /// item failed, mailbox ended, run ended, cutover verdict), instead of text.
    #[arg(long)]
    json: bool,
}

impl Selection {
    /// The project, and what to run of it with `run`.
    fn load(
        self,
        run: RunArgs,
    ) -> anyhow::Result<(project::config::Project, project::run::Select)> {
        let project = project::load(self.project.as_deref())?;
        Ok((
            project,
            project::run::Select {
                batch: self.batch,
                mailbox: self.mailbox,
                jobs: self.jobs,
                run,
                json: self.json,
            },
        ))
    }
}

/// A journal to read.
#[derive(Debug, Clone, clap::Args)]
struct JournalArgs {
    /// The journal directory.
    #[arg(long, value_name = "DIR")]
    journal: PathBuf,
    #[command(flatten)]
    key: KeyArgs,
}

/// Audit formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AuditFormat {
    Text,
    Json,
}

/// Report formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ReportFormat {
    Text,
    Json,
    Html,
}

#[derive(Debug, Subcommand)]
enum JournalCommand {
    /// Checks every record's authenticity, position and chain; names the first bad one.
    Verify {
        /// The journal directory.
        #[arg(long, value_name = "DIR")]
        journal: PathBuf,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Sets a damaged journal aside (renamed, kept for inspection) so that the next migrate
    /// starts a new one. The new journal adopts what the target already holds: every target
    /// folder is listed and matched by content, so nothing is copied twice. Items ferry found
    /// on the target are never deleted, so `--delete-removed` leaves alone what the old
    /// journal had written.
    SetAside {
        /// The journal directory.
        #[arg(long, value_name = "DIR")]
        journal: PathBuf,
    },
    /// Protects the journal with a new passphrase or with the key file. Records are not
    /// rewritten; only the wrapped key in the header changes.
    Rekey {
        /// The journal directory.
        #[arg(long, value_name = "DIR")]
        journal: PathBuf,
        #[command(flatten)]
        key: KeyArgs,
        /// The new passphrase, read from this file.
        #[arg(long, value_name = "FILE", required_unless_present = "to_key_file")]
        new_passphrase_file: Option<PathBuf>,
        /// Protect the journal with the key file (created if missing) instead of a passphrase.
        #[arg(long, conflicts_with = "new_passphrase_file")]
        to_key_file: Option<PathBuf>,
    },
}

/// The command line.
fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// `ferry plan` plans one pair (--from, --to) or, without them, the project: the second is
/// the hidden `project-plan`. (clap cannot make a flattened group optional as a whole: its
/// required arguments stay required, clap-rs/clap#5092.)
fn project_plan(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let names_a_pair = args.iter().any(|arg| {
        let arg = arg.to_string_lossy();
        ["--from", "--to"]
            .iter()
            .any(|flag| arg == *flag || arg.starts_with(&format!("{flag}=")))
    });
    let asks_help = args.iter().any(|arg| arg == "--help" || arg == "-h");
    if args.get(1).is_some_and(|sub| sub == "plan") && !names_a_pair && !asks_help {
        args[1] = "project-plan".into();
    }
    args
}

fn main() -> ExitCode {
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(
        &command().get_matches_from(project_plan(std::env::args_os().collect())),
    ) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        // `ferry audit | head`: the reader is gone; what it did not want is not an error.
        Err(error) if closed_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "error: {error}");
            for cause in error.chain().skip(1) {
                let _ = writeln!(stderr, "  caused by: {cause}");
            }
            ExitCode::from(exit_code(&error))
        }
    }
}

/// Reads a journal's events without writing anything to it (it may be in use by a run).
fn open_existing(args: &JournalArgs) -> anyhow::Result<Vec<ferry_engine::Event>> {
    let journal = migrate::open_read_only(&args.journal, &args.key, &mut std::io::stderr())?;
    migrate::replay(&journal)
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    // Not locked for the whole command: a project run's mailboxes write JSON events to stdout
    // from their own threads, a line at a time.
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    match cli.command {
        Command::Migrate { pair, run } => {
            let (summary, dir) = migrate::migrate(&pair, &run, &mut stderr)?;
            if run.dry_run {
                render::plan(&summary.delta, &mut stdout)?;
                render::held(&summary, &mut stdout)?;
                return Ok(0);
            }
            writeln!(stdout, "{}", render::run_line(&summary))?;
            if summary.resolved_done + summary.resolved_not_applied > 0 {
                writeln!(
                    stdout,
                    "resumed: {} interrupted writes had landed, {} had not and were redone",
                    summary.resolved_done, summary.resolved_not_applied
                )?;
            }
            writeln!(stdout, "journal: {}", dir.display())?;
            Ok(migrate::run_exit_code(&summary))
        }
        Command::ProjectPlan {
            run,
            project,
            batch,
            mailbox,
        } => {
            let project = project::load(project.as_deref())?;
            let select = project::run::Select {
                batch,
                mailbox,
                jobs: None,
                run,
                json: false,
            };
            project::plan::plan(&project, &select, &mut stdout)
        }
        Command::Plan { pair, mut run, .. } => {
            run.dry_run = true;
            let (summary, _) = migrate::migrate(&pair, &run, &mut stderr)?;
            render::plan(&summary.delta, &mut stdout)?;
            render::held(&summary, &mut stdout)?;
            Ok(0)
        }
        Command::Status {
            journal: None,
            project,
            ..
        } => {
            let project = project::load(project.as_deref())?;
            project::status(&project, &mut stdout)
        }
        Command::Completions { shell } => {
            let mut command = command();
            clap_complete::generate(shell, &mut command, "ferry", &mut stdout);
            Ok(0)
        }
        Command::Man => {
            let command = command();
            clap_mangen::Man::new(command)
                .render(&mut stdout)
                .context("writing the manual page")?;
            Ok(0)
        }
        Command::Init { path } => {
            project::init(&path, &mut stdout)?;
            Ok(0)
        }
        Command::Map { project } => {
            let project = project::load(project.as_deref())?;
            project::map(&project, &mut stdout)
        }
        Command::Run {
            selection,
            verify_target,
            full,
            delete_removed,
            confirm_deletions,
            every,
        } => {
            let (project, select) = selection.load(RunArgs {
                verify_target,
                full,
                delete_removed,
                confirm_deletions,
                ..RunArgs::default()
            })?;
            project::run::run(&project, &select, every, &mut stdout)
        }
        Command::Cutover { selection } => {
            let (project, select) = selection.load(RunArgs::default())?;
            project::run::cutover(&project, &select, &mut stdout)
        }
        Command::Status {
            journal: Some(journal),
            key,
            ..
        } => {
            let journal = JournalArgs { journal, key };
            let running = Journal::<()>::in_use(&journal.journal);
            let events = open_existing(&journal)?;
            let report: ferry_engine::projection::report::Report =
                ferry_engine::projection::fold(&events);
            let state = ferry_engine::State::replay(&events);
            match report.runs.last() {
                Some(last) => {
                    writeln!(stdout, "migration {} → {}", last.source, last.target)?;
                    writeln!(
                        stdout,
                        "{} runs; last: run {} started {}, {}",
                        report.runs.len(),
                        last.run,
                        render::time(last.started),
                        if running && last.outcome.is_none() {
                            format!(
                                "in progress since {} (a ferry process holds the journal; what \
                                 follows is as of its last durable record)",
                                render::time(last.started)
                            )
                        } else {
                            render::outcome(last)
                        }
                    )?;
                }
                None if running => writeln!(
                    stdout,
                    "a migration run is in progress on this journal (its first run: nothing recorded yet)"
                )?,
                None => writeln!(stdout, "no run yet")?,
            }
            let items: usize = state.target.folders.values().map(|f| f.items.len()).sum();
            writeln!(
                stdout,
                "target: {} folders, {items} items known; {} writes in doubt",
                state.target.folders.len(),
                state.target.pending.len(),
            )?;
            writeln!(
                stdout,
                "source items not on the target: {} ({} failed, tried again next run; {} refused by the target, tried again with --full or --verify-target; {} unreadable on the source)",
                report.items_off_target(),
                report.failed_items(),
                report.refused_items(),
                report.unreadable_items()
            )?;
            if report.conflict_items() > 0 {
                writeln!(
                    stdout,
                    "items in conflict: {} (changed on the target behind ferry's back and left as they are; not retried until resolved: see ferry report)",
                    report.conflict_items()
                )?;
            }
            Ok(0)
        }
        Command::Report {
            journal: None,
            project,
            batch,
            mailbox,
            format,
            ..
        } => {
            let project = project::load(project.as_deref())?;
            let format = match format {
                ReportFormat::Text => project::ReportFormat::Text,
                ReportFormat::Json => project::ReportFormat::Json,
                ReportFormat::Html => project::ReportFormat::Html,
            };
            project::report(
                &project,
                (batch.as_deref(), mailbox.as_deref()),
                format,
                &mut stdout,
            )?;
            Ok(0)
        }
        Command::Report {
            journal: Some(journal),
            key,
            format,
            ..
        } => {
            let journal = JournalArgs { journal, key };
            let events = open_existing(&journal)?;
            let report: ferry_engine::projection::report::Report =
                ferry_engine::projection::fold(&events);
            match format {
                ReportFormat::Text => render::report_text(&report, &mut stdout)?,
                ReportFormat::Json => render::report_json(&report, &mut stdout)?,
                ReportFormat::Html => render::report_html(&report, &mut stdout)?,
            }
            Ok(0)
        }
        Command::Audit {
            journal,
            project,
            mailbox,
            key,
            since,
            folder,
            format,
        } => {
            let since = since
                .map(|text| {
                    humantime::parse_rfc3339_weak(&text)
                        .with_context(|| {
                            format!("--since {text}: use RFC 3339, e.g. 2026-11-25T10:00:00Z")
                        })
                        .map(|time| {
                            time.duration_since(std::time::UNIX_EPOCH)
                                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                                .unwrap_or(0)
                        })
                })
                .transpose()?;
            let json = format == AuditFormat::Json;
            let lines = match journal {
                Some(journal) => {
                    let events = open_existing(&JournalArgs { journal, key })?;
                    let audit: ferry_engine::projection::audit::Audit =
                        ferry_engine::projection::fold(&events);
                    let rows = render::audit_rows(&audit, since, folder.as_deref());
                    for row in &rows {
                        if json {
                            writeln!(stdout, "{}", row.json(&[]))?;
                        } else {
                            writeln!(stdout, "{}", row.text())?;
                        }
                    }
                    rows.len()
                }
                None => {
                    let project = project::load(project.as_deref())?;
                    project::audit(
                        &project,
                        mailbox.as_deref(),
                        since,
                        folder.as_deref(),
                        json,
                        &mut stdout,
                    )?
                }
            };
            if lines == 0 {
                writeln!(stderr, "no write matches")?;
            }
            Ok(0)
        }
        Command::GenerateSample {
            out,
            messages,
            seed,
        } => {
            if out.exists() {
                anyhow::bail!("{} exists; give a new directory", out.display());
            }
            let summary =
                ferry_sample::generate(&out, &ferry_sample::SampleSpec { messages, seed })
                    .with_context(|| format!("writing the sample to {}", out.display()))?;
            writeln!(
                stdout,
                "{} messages, {} bytes, {} folders at {}",
                summary.messages,
                summary.bytes,
                summary.folders.len(),
                out.display()
            )?;
            Ok(0)
        }
        Command::Demo { state, key } => {
            demo::run(&state, &key, &mut stdout, &mut stderr)?;
            Ok(0)
        }
        Command::Journal {
            command: JournalCommand::Verify { journal, key },
        } => {
            let key = keys::resolve(&key, Missing::Refuse, &mut stderr)?;
            // A check writes nothing: it reads a private copy (opening a store repairs it).
            let opened = Journal::<()>::open_read_only(&journal, &key)
                .with_context(|| format!("opening the journal at {}", journal.display()))?;
            let report = opened
                .verify()
                .with_context(|| format!("verifying the journal at {}", journal.display()))?;
            writeln!(
                stdout,
                "journal {}: {} records, every one authentic and in place, chain intact, head matches ({} bytes sealed)",
                journal.display(),
                report.records,
                report.stored_bytes
            )?;
            Ok(0)
        }
        Command::Journal {
            command: JournalCommand::SetAside { journal },
        } => {
            let aside = set_aside(&journal)?;
            writeln!(
                stdout,
                "journal {} set aside as {}; the next migrate of this pair starts a new journal \
                 and adopts what the target already holds (nothing is copied twice)",
                journal.display(),
                aside.display()
            )?;
            Ok(0)
        }
        Command::Journal {
            command:
                JournalCommand::Rekey {
                    journal,
                    key,
                    new_passphrase_file,
                    to_key_file,
                },
        } => {
            let old = keys::resolve(&key, Missing::Refuse, &mut stderr)?;
            let opened = Journal::<()>::open(&journal, &old)
                .with_context(|| format!("opening the journal at {}", journal.display()))?;
            let new = match (new_passphrase_file, to_key_file) {
                (Some(path), _) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    KeySource::Passphrase(Passphrase::new(text)?)
                }
                (None, Some(path)) => keys::resolve(
                    &KeyArgs {
                        passphrase_file: None,
                        key_file: Some(path),
                    },
                    Missing::Create,
                    &mut stderr,
                )?,
                (None, None) => anyhow::bail!("give --new-passphrase-file or --to-key-file"),
            };
            opened
                .change_key(&new, CreateOptions::default())
                .context("rewrapping the journal key")?;
            writeln!(
                stdout,
                "journal {}: key changed; no record was rewritten",
                journal.display()
            )?;
            Ok(0)
        }
    }
}

/// Renames a journal directory to `DIR.set-aside-<time>`, refusing while a run holds it.
fn set_aside(journal: &std::path::Path) -> anyhow::Result<PathBuf> {
    if !Journal::<()>::exists(journal) {
        anyhow::bail!("no journal at {}", journal.display());
    }
    if Journal::<()>::in_use(journal) {
        anyhow::bail!(
            "the journal at {} is in use by a running ferry; stop that run first",
            journal.display()
        );
    }
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "");
    let mut name = journal.as_os_str().to_owned();
    name.push(format!(".set-aside-{stamp}"));
    let aside = PathBuf::from(name);
    std::fs::rename(journal, &aside)
        .with_context(|| format!("renaming {} to {}", journal.display(), aside.display()))?;
    Ok(aside)
}

/// Whether the error is a write to a pipe whose reader has closed it.
fn closed_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Maps an error to the documented exit code.
fn exit_code(error: &anyhow::Error) -> u8 {
    use ferry_journal::Error as J;
    let journal_code = |journal: &J| match journal {
        damage if damage.is_damage() => 3,
        J::WrongKey
        | J::KeyKindMismatch { .. }
        | J::Decode { .. }
        | J::UnsupportedFormat { .. } => 3,
        // A full disk, refused access, a poisoned store: a local I/O problem.
        _ => 2,
    };
    for cause in error.chain() {
        if cause.downcast_ref::<migrate::StoreUnusable>().is_some() {
            return 4;
        }
        if let Some(ferry_engine::RunError::Log(log)) =
            cause.downcast_ref::<ferry_engine::RunError>()
        {
            return match log {
                ferry_engine::LogError::Journal(journal) => journal_code(journal),
                _ => 3,
            };
        }
        if let Some(journal) = cause.downcast_ref::<J>() {
            return journal_code(journal);
        }
    }
    2
}
