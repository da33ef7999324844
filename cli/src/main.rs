//! The `ferry` binary: thin commands over the library crates.
//!
//! Exit codes: 0 done; 1 a run completed but some items failed; 2 usage, configuration or I/O
//! problem; 3 the journal is damaged or the key does not open it.

mod demo;
mod keys;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ferry_journal::{CreateOptions, Journal, KeySource, Passphrase};

use keys::{KeyArgs, Missing};

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
    /// Self-check on an embedded sample, no server needed: writes a run of events to a journal
    /// under the state directory, reopens it, verifies the whole chain and replays it.
    Demo {
        /// Where the demo journal lives.
        #[arg(long, value_name = "DIR", default_value = "ferry-state")]
        state: PathBuf,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Journal maintenance.
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
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

fn run(cli: Cli) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr();
    match cli.command {
        Command::Demo { state, key } => demo::run(&state, &key, &mut stdout, &mut stderr),
        Command::Journal {
            command: JournalCommand::Verify { journal, key },
        } => {
            let key = keys::resolve(&key, Missing::Refuse, &mut stderr)?;
            let opened = Journal::<()>::open(&journal, &key)
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
            Ok(())
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
            Ok(())
        }
    }
}

/// Maps an error to the documented exit code.
fn exit_code(error: &anyhow::Error) -> u8 {
    use ferry_journal::Error as J;
    for cause in error.chain() {
        if let Some(journal) = cause.downcast_ref::<J>() {
            return match journal {
                J::WrongKey
                | J::KeyKindMismatch { .. }
                | J::Corrupt { .. }
                | J::Truncated { .. }
                | J::HeaderCorrupt { .. }
                | J::HeadCorrupt { .. }
                | J::Decode { .. }
                | J::UnsupportedFormat { .. }
                | J::NotAJournal { .. } => 3,
                _ => 2,
            };
        }
    }
    2
}
