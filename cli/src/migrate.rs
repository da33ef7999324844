//! `ferry migrate` and `ferry plan`: open (or create) the pair's journal, replay it, open both
//! stores and run the engine.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ferry_engine::event::RunOutcome;
use ferry_engine::{
    Config, Event, Run, RunError, RunOptions, RunSummary, Side, State, StopSignal, Store,
    SystemClock, Watcher,
};
use ferry_journal::{CreateOptions, Journal};
use ferry_stores::Secret;

use crate::keys::{self, KeyArgs, Missing};

/// Where the two ends are and how to reach them.
#[derive(Debug, Clone, clap::Args)]
pub struct PairArgs {
    /// The source, e.g. `maildir:/var/mail/alice`.
    #[arg(long, value_name = "URI")]
    pub from: String,
    /// The target, e.g. `maildir:/srv/new/alice`.
    #[arg(long, value_name = "URI")]
    pub to: String,
    /// The journal directory (default: one per source/target pair under ./ferry-state).
    #[arg(long, value_name = "DIR")]
    pub journal: Option<PathBuf>,
    /// Read the source's password from this file (or set FERRY_FROM_PASSWORD).
    #[arg(long, value_name = "FILE")]
    pub from_password_file: Option<PathBuf>,
    /// Read the target's password from this file (or set FERRY_TO_PASSWORD).
    #[arg(long, value_name = "FILE")]
    pub to_password_file: Option<PathBuf>,
    /// Run this shell command at every login to the source; what it prints is the password
    /// or OAuth access token (so a helper that refreshes tokens keeps a long run logged in).
    #[arg(long, value_name = "COMMAND", conflicts_with = "from_password_file")]
    pub from_password_command: Option<String>,
    /// The same for the target.
    #[arg(long, value_name = "COMMAND", conflicts_with = "to_password_file")]
    pub to_password_command: Option<String>,
    /// Also trust the CA certificates (PEM) in this file, for servers with a private CA.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Accept any TLS certificate. Anyone on the path can then read the mail and passwords;
    /// ferry warns on every run.
    #[arg(long)]
    pub insecure: bool,
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub folders: crate::folders::FolderArgs,
    /// The source's secret as a project gives it (before any of the above).
    #[arg(skip)]
    pub from_secret: Option<Secret>,
    /// The target's.
    #[arg(skip)]
    pub to_secret: Option<Secret>,
}

impl PairArgs {
    /// A pair given by a program, not a command line: its two ends, its journal and its key,
    /// each end's secret as given.
    pub fn new(
        (from, from_secret): (String, Option<Secret>),
        (to, to_secret): (String, Option<Secret>),
        journal: PathBuf,
        key: KeyArgs,
    ) -> PairArgs {
        PairArgs {
            from,
            to,
            journal: Some(journal),
            from_password_file: None,
            to_password_file: None,
            from_password_command: None,
            to_password_command: None,
            ca_file: None,
            insecure: false,
            key,
            folders: crate::folders::FolderArgs::default(),
            from_secret,
            to_secret,
        }
    }

    /// The password of one end: its file or command, else its environment variable, else none.
    pub(crate) fn secret(&self, side: Side) -> Option<Secret> {
        let given = match side {
            Side::Source => &self.from_secret,
            Side::Target => &self.to_secret,
        };
        if given.is_some() {
            return given.clone();
        }
        let (file, command, variable) = match side {
            Side::Source => (
                &self.from_password_file,
                &self.from_password_command,
                "FERRY_FROM_PASSWORD",
            ),
            Side::Target => (
                &self.to_password_file,
                &self.to_password_command,
                "FERRY_TO_PASSWORD",
            ),
        };
        if let Some(file) = file {
            return Some(Secret::File(file.clone()));
        }
        if let Some(command) = command {
            return Some(Secret::Command(command.clone()));
        }
        std::env::var(variable)
            .ok()
            .map(|value| Secret::Value(std::sync::Arc::new(zeroize::Zeroizing::new(value))))
    }

    /// How to reach one end.
    fn access(&self, side: Side, read_only: bool) -> ferry_stores::Access {
        ferry_stores::Access {
            secret: self.secret(side),
            ca_file: self.ca_file.clone(),
            insecure: self.insecure,
            read_only,
            spool_dir: None,
            peer: Some(match side {
                Side::Source => self.to.clone(),
                Side::Target => self.from.clone(),
            }),
        }
    }
}

/// How a migration run works.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunArgs {
    /// Check every migrated item on the target and copy again what is missing or altered.
    #[arg(long)]
    pub verify_target: bool,
    /// Re-read every source item instead of trusting what the journal knows (still never
    /// duplicates what the journal knows is on the target).
    #[arg(long)]
    pub full: bool,
    /// Delete on the target the items ferry copied there that the source no longer has.
    /// Never touches anything ferry did not write.
    #[arg(long)]
    pub delete_removed: bool,
    /// Carry out deletions even when they are more than the mass-deletion guard allows (at
    /// least 20, and over 10% of the mailbox or over 50% of a folder): without it such a run
    /// does everything else, shows what it would delete, and exits 6.
    #[arg(long, requires = "delete_removed")]
    pub confirm_deletions: bool,
    /// Show what would be done; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Reads and writes in flight at once (default: 4 between Maildirs, 32 when a server is
    /// involved, where they are pipelined).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Microsoft 365 target: create the user when the tenant has none of that name and give
    /// it a licence of this SKU (part number such as ENTERPRISEPACK, or id) unless it has one;
    /// each step journaled. The new user's password is random and kept nowhere.
    #[arg(long, value_name = "SKU")]
    pub create_target_mailbox: Option<String>,
    /// The usage location (ISO 3166 country code, e.g. DE) of a user ferry creates: a real
    /// tenant licenses no user without one.
    #[arg(long, value_name = "CC", requires = "create_target_mailbox")]
    pub usage_location: Option<String>,
}

/// A store named by a URI. `end` says which end of the pair it is (for its password);
/// `read_only` opens it for reading only (the source, or the target of a dry run); `spool` is
/// where the run spools large messages.
pub fn open_store(
    uri: &str,
    end: Side,
    read_only: bool,
    spool: Option<&Path>,
    pair: &PairArgs,
    notices: &mut dyn Write,
) -> anyhow::Result<Box<dyn Store>> {
    let access = ferry_stores::Access {
        spool_dir: spool.map(Path::to_path_buf),
        ..pair.access(end, read_only)
    };
    let opened = ferry_stores::open(uri, &access).map_err(opening_error)?;
    for warning in &opened.warnings {
        writeln!(notices, "warning: {warning}")?;
    }
    Ok(opened.store)
}

/// A store that cannot be used is exit 4; a URI that names none is a usage error.
fn opening_error(error: ferry_stores::OpenError) -> anyhow::Error {
    match error {
        ferry_stores::OpenError::Unusable(message) => anyhow::Error::new(StoreUnusable(message)),
        ferry_stores::OpenError::Uri(message) => anyhow::Error::msg(message),
    }
}

/// A store that could not be opened or reached (exit code 4).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreUnusable(pub String);

/// The default journal directory of a pair: stable, and different for every pair.
pub fn default_journal(from: &str, to: &str) -> PathBuf {
    let pair = blake3::hash(format!("{from}\n{to}").as_bytes());
    PathBuf::from("ferry-state").join(format!("journal-{}", &pair.to_hex()[..16]))
}

/// Opens the pair's existing journal to be checked before a run writes to it: the store does
/// no background work, so a damaged journal is left as it was (see `Journal::open_to_check`).
pub fn open_to_check(
    dir: &Path,
    key: &KeyArgs,
    notices: &mut dyn Write,
) -> anyhow::Result<Journal<Event>> {
    open_existing(dir, key, notices, Journal::open_to_check)
}

/// Opens an existing journal with `open`, its key given or found (never created).
fn open_existing(
    dir: &Path,
    key: &KeyArgs,
    notices: &mut dyn Write,
    open: fn(&Path, &ferry_journal::KeySource) -> ferry_journal::Result<Journal<Event>>,
) -> anyhow::Result<Journal<Event>> {
    let key = keys::resolve(key, Missing::Refuse, notices)?;
    open(dir, &key).with_context(|| format!("opening the journal at {}", dir.display()))
}

/// Opens the pair's journal, creating it when missing (unless `create` is false).
pub fn open_journal(
    dir: &Path,
    key: &KeyArgs,
    create: bool,
    notices: &mut dyn Write,
) -> anyhow::Result<Journal<Event>> {
    // An empty directory (made by an admin for the journal) is a new journal.
    let exists = Journal::<Event>::exists(dir);
    let key = keys::resolve(
        key,
        if create && !exists {
            Missing::Create
        } else {
            Missing::Refuse
        },
        notices,
    )?;
    match Journal::<Event>::open(dir, &key) {
        Ok(journal) => Ok(journal),
        Err(ferry_journal::Error::NotFound { .. }) if create => {
            Journal::create(dir, &key, CreateOptions::default())
                .with_context(|| format!("creating the journal at {}", dir.display()))
        }
        Err(error) => {
            Err(error).with_context(|| format!("opening the journal at {}", dir.display()))
        }
    }
}

/// Opens an existing journal for reading only: nothing in its directory is written, and a
/// journal a running migration holds can be read (from a private copy).
pub fn open_read_only(
    dir: &Path,
    key: &KeyArgs,
    notices: &mut dyn Write,
) -> anyhow::Result<Journal<Event>> {
    open_existing(dir, key, notices, Journal::open_read_only)
}

/// Replays a journal into events (in memory: events are small, a few hundred bytes each).
pub fn replay(journal: &Journal<Event>) -> anyhow::Result<Vec<Event>> {
    let mut events = Vec::new();
    for entry in journal.replay(1) {
        let entry = entry
            .with_context(|| format!("replaying the journal at {}", journal.path().display()))?;
        events.extend(entry.event.flatten());
    }
    Ok(events)
}

/// A journal's report, folded record by record as they are replayed (never every event held
/// at once).
pub fn report_of(
    journal: &Journal<Event>,
) -> anyhow::Result<ferry_engine::projection::report::Report> {
    use ferry_engine::projection::Projection as _;
    let mut report = ferry_engine::projection::report::Report::default();
    for entry in journal.replay(1) {
        let entry = entry
            .with_context(|| format!("replaying the journal at {}", journal.path().display()))?;
        report.apply(&entry.event);
    }
    Ok(report)
}

/// Raises `stop` on SIGINT or SIGTERM: writes in flight finish and are journaled, nothing new
/// starts, waits between retries end. A second signal ends the process at once (exit 5): the
/// journal survives that as it survives kill -9, and the next run settles what was in doubt.
pub fn pause_on_signals(stop: StopSignal) {
    tokio::spawn(async move {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!(
            "stopping: in-flight writes finish and are journaled; run the same command again to \
             resume (a second Ctrl-C or SIGTERM ends ferry at once)"
        );
        stop.stop();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("ending now: the next run settles the writes left in doubt");
        std::process::exit(5);
    });
}

/// A migration's source and target URIs.
type Pair = (String, String);

/// Folds a journal into the planner's state: from its checkpoint when one opens and decodes,
/// then the records after it (all of them otherwise), streamed, never held in memory at once.
/// Returns the migration's pair (from its first run) and the state.
/// Also returns how many events it replayed after the checkpoint.
pub fn load_state(journal: &Journal<Event>) -> anyhow::Result<(Option<Pair>, State, u64)> {
    let context = || format!("replaying the journal at {}", journal.path().display());
    // Decoded as it is read and opened: the state is the only copy in memory.
    let (mut pair, mut state, from) = match journal
        .checkpoint_with(|reader| ferry_engine::checkpoint::decode_from(reader))
        .with_context(context)?
    {
        Some((seq, checkpoint)) => (checkpoint.pair, checkpoint.state, seq + 1),
        None => (None, State::default(), 1),
    };
    let mut replayed = 0;
    for entry in journal.replay(from) {
        for event in entry.with_context(context)?.event.flatten() {
            replayed += 1;
            if pair.is_none()
                && let Event::RunStarted { source, target, .. } = &event
            {
                pair = Some((source.clone(), target.clone()));
            }
            ferry_engine::projection::Projection::apply(&mut state, &event);
        }
    }
    Ok((pair, state, replayed))
}

/// The journal, counting the events a run appends to it.
struct Counted<'a> {
    journal: &'a Journal<Event>,
    events: std::sync::atomic::AtomicU64,
}

impl ferry_engine::EventLog for Counted<'_> {
    fn append(&self, events: &[Event]) -> Result<(), ferry_engine::LogError> {
        ferry_engine::EventLog::append(self.journal, events)?;
        self.events
            .fetch_add(events.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn content_key(&self) -> &ferry_journal::ContentKey {
        self.journal.content_key()
    }
}

/// Events the journal may hold after its checkpoint before a new one is written: replaying
/// that many (≈ 2 ms) costs less than writing a checkpoint (≈ 40 ms at 20,000 messages), so
/// runs that changed little (a no-op run records two events) do not rewrite it.
const CHECKPOINT_AFTER_EVENTS: u64 = 2_000;

/// What a migration shares with the others of a project run: the async runtime, the signal
/// that pauses them all, and what watches them. A lone `ferry migrate` has its own of each.
#[derive(Clone, Default)]
pub struct Shared {
    pub runtime: Option<tokio::runtime::Handle>,
    pub stop: Option<StopSignal>,
    pub watcher: Option<std::sync::Arc<dyn Watcher>>,
    /// The pacers of budgets the source and the target share with other mailboxes (a
    /// tenant's): this run's own pacers go under them.
    pub tenants: [Option<std::sync::Arc<ferry_engine::pacer::Pacer>>; 2],
    /// Told each step of making the target (intent, then outcome) after the mailbox's journal
    /// holds it: a project records them in its own journal too.
    pub provisioned: Option<std::sync::Arc<crate::provision::Told>>,
    /// Given the mailbox's report (its journal folded) once a run ended: a project keeps
    /// what is behind and why in its own journal.
    pub reported: Option<std::sync::Arc<Reported>>,
}

/// Hears a mailbox's report after its run.
pub type Reported = dyn Fn(&ferry_engine::projection::report::Report) + Send + Sync;

/// The run's pacers under the shared ones, when a side has one (`None`: the engine makes its
/// own from the stores' limits).
fn shared_pacers(
    shared: &Shared,
    source: &dyn Store,
    target: &dyn Store,
) -> Option<ferry_engine::Pacers> {
    use ferry_engine::pacer::Pacer;
    use std::sync::Arc;
    if shared.tenants.iter().all(Option::is_none) {
        return None;
    }
    let pacer = |store: &dyn Store, tenant: &Option<Arc<Pacer>>| {
        let limits = store.capabilities().limits;
        Arc::new(match tenant {
            Some(tenant) => Pacer::under(limits, tenant.clone()),
            None => Pacer::new(limits),
        })
    };
    Some(ferry_engine::Pacers {
        source: pacer(source, &shared.tenants[0]),
        target: pacer(target, &shared.tenants[1]),
    })
}

/// Runs one migration (or a dry run). Returns the summary and the journal's directory.
pub fn migrate(
    pair: &PairArgs,
    args: &RunArgs,
    notices: &mut dyn Write,
) -> anyhow::Result<(RunSummary, PathBuf)> {
    migrate_in(pair, args, notices, &Shared::default())
}

/// [`migrate`] within a project run.
pub fn migrate_in(
    pair: &PairArgs,
    args: &RunArgs,
    notices: &mut dyn Write,
    shared: &Shared,
) -> anyhow::Result<(RunSummary, PathBuf)> {
    crate::preflight::distinct_ends(&pair.from, &pair.to)?;
    let rules = pair.folders.rules()?;
    let dir = match &pair.journal {
        Some(dir) => dir.clone(),
        None => {
            // One journal per pair however its Maildir paths are spelled; a journal made
            // under an earlier spelling's key is still used.
            let (from, to) = crate::preflight::pair_key(&pair.from, &pair.to);
            let legacy = default_journal(&pair.from, &pair.to);
            if Journal::<Event>::exists(&legacy) {
                legacy
            } else {
                default_journal(&from, &to)
            }
        }
    };
    // Maildir's file work runs on the runtime's blocking threads: work the page cache makes CPU
    // work, so more threads than cores add contention and, each with an allocator arena of its
    // own, memory (512 threads at most, tokio's default, against one per core: 12 MB more at the
    // peak of a 100,000-message copy, and no faster).
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let own_runtime = match &shared.runtime {
        Some(_) => None,
        None => Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .max_blocking_threads(cores.max(2))
                .enable_all()
                .build()
                .context("starting the async runtime")?,
        ),
    };
    let runtime = match (&shared.runtime, &own_runtime) {
        (Some(handle), _) => handle.clone(),
        (None, Some(own)) => own.handle().clone(),
        (None, None) => unreachable!("a runtime is made when none is shared"),
    };
    // Large messages spool (encrypted, unnamed) next to the journal: a disk the admin chose,
    // not a /tmp that may be memory. A plan, which writes nothing there, spools in /tmp.
    let spool = (!args.dry_run).then_some(dir.as_path());
    let source = open_store(&pair.from, Side::Source, true, spool, pair, notices)?;
    let source = crate::folders::ruled(source, rules);
    let first_run = !Journal::<Event>::exists(&dir);
    // An existing journal is opened, checked whole and replayed before anything is created or
    // written: a damaged journal or one of another pair stops the run here.
    let existing = if first_run {
        None
    } else {
        // A plan writes nothing, not even the repairs a store makes when it opens: it reads a
        // private copy.
        let journal = if args.dry_run {
            open_read_only(&dir, &pair.key, notices)?
        } else {
            open_to_check(&dir, &pair.key, notices)?
        };
        let (history, state, replayed) =
            crate::preflight::verified(&journal, || load_state(&journal))?;
        // Checked whole: now it may be written (a plan's private copy is written to anyway).
        let journal = if args.dry_run {
            journal
        } else {
            journal
                .writable()
                .with_context(|| format!("opening the journal at {}", dir.display()))?
        };
        if let Some((source_uri, target_uri)) = &history {
            let given = (
                source.describe(),
                ferry_stores::describe(&pair.to, &pair.access(Side::Target, true))
                    .map_err(opening_error)?,
            );
            if (source_uri, target_uri) != (&given.0, &given.1) {
                return Err(anyhow::Error::new(RunError::OtherPair {
                    source_uri: source_uri.clone(),
                    target_uri: target_uri.clone(),
                    given_source: given.0,
                    given_target: given.1,
                }));
            }
        }
        Some((journal, history, state, replayed))
    };
    // The target mailbox created first when asked (a plan only says it would be).
    let mut user_missing = false;
    if let Some(sku) = &args.create_target_mailbox {
        let request = crate::provision::Request {
            sku,
            usage_location: args.usage_location.as_deref(),
        };
        if args.dry_run {
            user_missing = !runtime.block_on(crate::provision::user_exists(pair))?;
            if user_missing {
                writeln!(
                    notices,
                    "the target user does not exist yet: a run creates it and assigns it a licence \
                     of {sku}"
                )?;
            }
        } else if let Some((journal, ..)) = &existing {
            runtime.block_on(crate::provision::provision(
                pair,
                &request,
                (journal, shared.provisioned.as_deref()),
                notices,
            ))?;
        } else {
            // A first run: the journal is made now, to hold the steps.
            let journal = open_journal(&dir, &pair.key, true, notices)?;
            runtime.block_on(crate::provision::provision(
                pair,
                &request,
                (&journal, shared.provisioned.as_deref()),
                notices,
            ))?;
        }
    }
    let target_missing = user_missing
        || pair
            .to
            .strip_prefix("maildir:")
            .is_some_and(|path| !Path::new(path).exists());
    let target: Box<dyn Store> = if args.dry_run && target_missing {
        // A plan must not create the target; one that does not exist yet is planned as empty.
        writeln!(
            notices,
            "the target {} does not exist yet: planning against an empty target",
            pair.to
        )?;
        ferry_stores::empty("empty target")
    } else if first_run && target_missing {
        // Created below, once the source has answered.
        ferry_stores::empty("target to create")
    } else {
        open_store(&pair.to, Side::Target, args.dry_run, spool, pair, notices)?
    };
    if first_run {
        let server_target = (!target_missing).then_some(target.as_ref());
        runtime
            .block_on(crate::preflight::ends_answer(
                source.as_ref(),
                server_target,
                &shared.tenants,
            ))
            .map_err(|(side, error)| {
                anyhow::Error::new(StoreUnusable(format!(
                    "the {} failed: {error} (nothing was created)",
                    match side {
                        Side::Source => "source",
                        Side::Target => "target",
                    }
                )))
            })?;
    }
    let target = if first_run && target_missing && !args.dry_run {
        open_store(&pair.to, Side::Target, false, spool, pair, notices)?
    } else {
        target
    };
    // A dry run of a migration that never ran has no journal to read; it plans from nothing
    // with a throw-away hashing key (nothing it hashes is kept).
    let (journal, history, state, replayed) = match existing {
        Some((journal, history, state, replayed)) => (Some(journal), history, state, replayed),
        None if args.dry_run => (None, None, State::default(), 0),
        None => {
            let journal = open_journal(&dir, &pair.key, true, notices)?;
            let (history, state, replayed) = load_state(&journal)?;
            (Some(journal), history, state, replayed)
        }
    };
    let scratch =
        ferry_engine::MemoryLog::new(ferry_journal::ContentKey::from_secret([0; 32]), Vec::new());
    let counted = journal.as_ref().map(|journal| Counted {
        journal,
        events: std::sync::atomic::AtomicU64::new(0),
    });
    let log: &dyn ferry_engine::EventLog = match &counted {
        Some(counted) => counted,
        None => &scratch,
    };

    let progress = crate::progress::Progress::new(shared.watcher.is_none());
    let watcher: &dyn Watcher = match &shared.watcher {
        Some(watcher) => watcher.as_ref(),
        None => &progress,
    };
    let stop = shared.stop.clone().unwrap_or_default();
    let options = RunOptions {
        verify_target: args.verify_target,
        full: args.full,
        delete_removed: args.delete_removed,
        dry_run: args.dry_run,
    };
    let config = Config {
        jobs: args
            .jobs
            .unwrap_or(
                if ferry_stores::is_server(&pair.from) || ferry_stores::is_server(&pair.to) {
                    32
                } else {
                    4
                },
            )
            .clamp(1, 256),
        confirm_deletions: args.confirm_deletions,
        ..Config::default()
    };
    let outcome = runtime.block_on(async {
        if shared.stop.is_none() {
            pause_on_signals(stop.clone());
        }
        let mut run = Run::new(ferry_engine::RunContext {
            source: source.as_ref(),
            target: target.as_ref(),
            log,
            state,
            options,
            config,
            clock: &SystemClock,
            watcher,
            stop,
            pacers: shared_pacers(shared, source.as_ref(), target.as_ref()),
        });
        let summary = run
            .execute(history.as_ref().map(|(s, t)| (s.as_str(), t.as_str())))
            .await;
        (summary, run)
    });
    progress.finish();
    let (summary, run) = outcome;
    let summary = summary.map_err(|error| match error {
        RunError::Store { side, error } => anyhow::Error::new(StoreUnusable(format!(
            "the {} failed: {error}",
            match side {
                Side::Source => "source",
                Side::Target => "target",
            }
        ))),
        other => anyhow::Error::new(other),
    })?;
    let recorded = counted.as_ref().map_or(0, |counted| {
        counted.events.load(std::sync::atomic::Ordering::Relaxed)
    });
    let pair = history.or_else(|| Some((source.describe(), target.describe())));
    // What the run held besides its state (the stores' indexes, the runtime's threads) goes
    // before the checkpoint is encoded: the end of a large first run is its peak of memory.
    let state = run.into_state();
    drop((source, target, runtime, own_runtime));
    if let Some(journal) = journal
        .as_ref()
        .filter(|_| !args.dry_run && replayed + recorded >= CHECKPOINT_AFTER_EVENTS)
    {
        // The store's memtables go to its tables first, for the same reason (the records are
        // durable already: this also spares the next run, a no-op rerun above all, reading them
        // back from the store's write-ahead file; the checkpoint is a file beside the store).
        journal
            .flush_to_tables()
            .with_context(|| format!("flushing the journal at {}", dir.display()))?;
        // The next run starts from here instead of replaying every record. Encoded as it is
        // sealed and written: never held whole.
        journal
            .put_checkpoint_with(|out| ferry_engine::checkpoint::encode_to(pair, &state, out))
            .with_context(|| format!("checkpointing the journal at {}", dir.display()))?;
    }
    drop(state);
    if let (Some(reported), Some(journal)) =
        (&shared.reported, journal.as_ref().filter(|_| !args.dry_run))
    {
        match report_of(journal) {
            Ok(report) => reported(&report),
            Err(error) => writeln!(notices, "warning: the run's report: {error:#}")?,
        }
    }
    Ok((summary, dir))
}

/// The exit code of a finished run.
pub fn run_exit_code(summary: &RunSummary) -> u8 {
    match summary.outcome {
        RunOutcome::Completed => 0,
        RunOutcome::CompletedWithFailures => 1,
        RunOutcome::Paused => 5,
        RunOutcome::Aborted => 4,
        RunOutcome::DeletionsHeld => 6,
    }
}
