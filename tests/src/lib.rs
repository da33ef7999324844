//! Helpers for the workspace-level integration tests in `tests/tests/`: they drive the real
//! `ferry` binary as an operator would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub mod courier;
pub mod dav;
pub mod dovecot;
pub mod graph;
pub mod imap;
pub mod pim_seed;
pub mod project;
pub mod proxy;
pub mod scratch;
pub mod seeds;

/// The path of the `ferry` binary of this build, built on first use.
///
/// Integration tests of this crate cannot name another package's binary through
/// `CARGO_BIN_EXE_*`, so the binary is built with the same cargo and profile that built the test
/// (a no-op when it is fresh) and found beside the test executable's directory.
pub fn ferry_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            // A binary built beforehand (a developer editing while the suite runs).
            if let Some(binary) = std::env::var_os("FERRY_TEST_BINARY") {
                return PathBuf::from(binary);
            }
            let test_exe = std::env::current_exe().expect("test executable path");
            // target/<profile>/deps/<test> → target/<profile>
            let profile_dir = test_exe
                .parent()
                .and_then(|deps| deps.parent())
                .expect("test executable lives in target/<profile>/deps")
                .to_path_buf();
            let profile = profile_dir
                .file_name()
                .and_then(|name| name.to_str())
                .expect("profile directory name")
                .to_owned();
            let target_dir = profile_dir
                .parent()
                .expect("target directory")
                .to_path_buf();
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut build = Command::new(cargo);
            build
                .args(["build", "--quiet", "-p", "ferry-cli", "--bin", "ferry"])
                .arg("--target-dir")
                .arg(&target_dir);
            match profile.as_str() {
                "debug" => {}
                "release" => {
                    build.arg("--release");
                }
                other => {
                    build.args(["--profile", other]);
                }
            }
            let status = build
                .status()
                .expect("running cargo build for the ferry binary");
            assert!(status.success(), "building the ferry binary failed");
            let binary = profile_dir.join("ferry");
            assert!(binary.is_file(), "no ferry binary at {}", binary.display());
            binary
        })
        .clone()
}

/// `ferry COMMAND --from maildir:SOURCE --to maildir:TARGET --journal JOURNAL`, ready for more
/// arguments.
pub fn maildir_pair(
    config_home: &Path,
    command: &str,
    source: &Path,
    target: &Path,
    journal: &Path,
) -> Command {
    let mut built = ferry(config_home);
    built
        .arg(command)
        .arg("--from")
        .arg(format!("maildir:{}", source.display()))
        .arg("--to")
        .arg(format!("maildir:{}", target.display()))
        .arg("--journal")
        .arg(journal);
    built
}

/// A `Command` for the ferry binary with a clean environment: no passphrase variable and a
/// private config directory, so the operator's own key file is never touched.
pub fn ferry(config_home: &std::path::Path) -> Command {
    let mut command = Command::new(ferry_binary());
    command
        .env_remove("FERRY_PASSPHRASE")
        .env("XDG_CONFIG_HOME", config_home)
        .env("HOME", config_home);
    command
}

/// `ferry report --journal JOURNAL` as text.
pub fn report_text(config_home: &Path, journal: &Path) -> String {
    let report = ferry(config_home)
        .args(["report", "--journal"])
        .arg(journal)
        .output()
        .expect("ferry report");
    String::from_utf8_lossy(&report.stdout).into_owned()
}

/// Folder (decoded name) → sorted list of (content hash, sorted flag names).
pub type Tree = BTreeMap<String, Vec<(String, Vec<String>)>>;

fn keywords(dir: &Path) -> BTreeMap<char, String> {
    let mut names = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(dir.join("dovecot-keywords")) {
        for line in text.lines() {
            if let Some((index, name)) = line.split_once(' ')
                && let Ok(index) = index.parse::<u8>()
                && index < 26
            {
                names.insert(char::from(b'a' + index), name.to_owned());
            }
        }
    }
    names
}

fn walk_folder(dir: &Path) -> Vec<(String, Vec<String>)> {
    let letters = keywords(dir);
    let mut items = Vec::new();
    for sub in ["cur", "new"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries {
            let entry = entry.expect("directory entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            let bytes = std::fs::read(entry.path()).expect("read message");
            let hash = blake3::hash(&bytes).to_hex().to_string();
            let mut flags: Vec<String> = match name.split_once(":2,") {
                Some((_, info)) => info
                    .chars()
                    .filter_map(|c| match c {
                        'a'..='z' => letters.get(&c).cloned(),
                        'D' | 'F' | 'P' | 'R' | 'S' | 'T' => Some(c.to_string()),
                        _ => None,
                    })
                    .collect(),
                None => Vec::new(),
            };
            flags.sort();
            items.push((hash, flags));
        }
    }
    items.sort();
    items
}

/// The random source of a kill test: seeded from `FERRY_KILL_SEED` when set, else at random,
/// and the seed printed so that a failure can be replayed.
pub fn kill_rng() -> fastrand::Rng {
    let seed = std::env::var("FERRY_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("FERRY_KILL_SEED={seed}");
    fastrand::Rng::with_seed(seed)
}

/// Every message file of a Maildir++ tree (its INBOX and every `.Folder`), `cur` and `new`.
pub fn maildir_files(root: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![root.to_path_buf()];
    for entry in std::fs::read_dir(root).expect("maildir root") {
        let path = entry.expect("directory entry").path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            dirs.push(path);
        }
    }
    let mut files = Vec::new();
    for dir in dirs {
        for sub in ["cur", "new"] {
            let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
                continue;
            };
            files.extend(entries.map(|entry| entry.expect("directory entry").path()));
        }
    }
    files
}

/// An independent walk of a Maildir++ tree: every message's plain blake3 hash and flag names
/// per decoded folder, read from the files themselves (never from ferry's journal).
pub fn maildir_tree(root: &Path) -> Tree {
    let mut tree = Tree::new();
    tree.insert("INBOX".into(), walk_folder(root));
    for entry in std::fs::read_dir(root).expect("maildir root") {
        let entry = entry.expect("directory entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(folder) = name.strip_prefix('.')
            && entry.path().join("cur").is_dir()
        {
            let decoded = ferry_names::mutf7::decode(folder)
                .unwrap_or_else(|| folder.to_owned())
                .replace('.', "/");
            tree.insert(decoded, walk_folder(&entry.path()));
        }
    }
    tree
}

/// How `target` differs from `source`: (messages missing, extra copies, messages whose flags
/// differ), counted per folder and content.
pub fn differences(source: &Tree, target: &Tree) -> (usize, usize, usize) {
    let (mut missing, mut duplicates, mut flag_differences) = (0, 0, 0);
    let empty = Vec::new();
    for (folder, items) in source {
        let there = target.get(folder).unwrap_or(&empty);
        let mut source_counts: BTreeMap<&str, Vec<&Vec<String>>> = BTreeMap::new();
        for (hash, flags) in items {
            source_counts.entry(hash).or_default().push(flags);
        }
        let mut target_counts: BTreeMap<&str, Vec<&Vec<String>>> = BTreeMap::new();
        for (hash, flags) in there {
            target_counts.entry(hash).or_default().push(flags);
        }
        for (hash, flags) in &source_counts {
            let on_target = target_counts.get(hash).cloned().unwrap_or_default();
            missing += flags.len().saturating_sub(on_target.len());
            duplicates += on_target.len().saturating_sub(flags.len());
            if on_target.len() == flags.len() && on_target != *flags {
                flag_differences += 1;
            }
        }
        for (hash, flags) in &target_counts {
            if !source_counts.contains_key(hash) {
                duplicates += flags.len();
            }
        }
    }
    for (folder, items) in target {
        if !source.contains_key(folder) {
            duplicates += items.len();
        }
    }
    (missing, duplicates, flag_differences)
}

/// How a series of kills went.
#[derive(Debug, Clone, Copy)]
pub struct Kills {
    /// Kills that left fewer than all messages landed: they interrupted the copy itself.
    pub mid_copy: usize,
    /// Runs that finished before their kill.
    pub finished_first: usize,
}

/// SIGKILLs `child` unless it has finished; says whether it killed it.
pub fn kill_unless_finished(child: &mut std::process::Child) -> bool {
    if child.try_wait().expect("poll child").is_some() {
        return false;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap child");
    true
}

/// SIGKILLs the run `start` launches `early.0` times within its first `early.1` milliseconds
/// (uniformly: process start, journal creation, key derivation, the first listings), then as
/// [`kill_repeatedly`] does.
#[allow(clippy::too_many_arguments)]
pub fn kill_from_the_start(
    rng: &mut fastrand::Rng,
    (early, early_ms): (usize, u64),
    kills: usize,
    by_progress: usize,
    step_max: usize,
    total: usize,
    landed: impl Fn() -> usize,
    mut start: impl FnMut() -> std::process::Child,
) -> Kills {
    let mut outcome = Kills {
        mid_copy: 0,
        finished_first: 0,
    };
    for _ in 0..early {
        let mut child = start();
        std::thread::sleep(std::time::Duration::from_millis(rng.u64(0..early_ms)));
        if !kill_unless_finished(&mut child) {
            outcome.finished_first += 1;
        }
    }
    let later = kill_repeatedly(rng, kills, by_progress, step_max, total, landed, start);
    Kills {
        mid_copy: outcome.mid_copy + later.mid_copy,
        finished_first: outcome.finished_first + later.finished_first,
    }
}

/// SIGKILLs the run `start` launches, `kills` times: the first `by_progress` of them once
/// 1..=`step_max` more messages have `landed` (or 20 s passed), so they fall inside the copy
/// however fast the machine is; the others after 5–400 ms (start-up, listing, planning). A kill
/// counts as inside the copy when fewer than `total` messages had landed.
pub fn kill_repeatedly(
    rng: &mut fastrand::Rng,
    kills: usize,
    by_progress: usize,
    step_max: usize,
    total: usize,
    landed: impl Fn() -> usize,
    mut start: impl FnMut() -> std::process::Child,
) -> Kills {
    let mut outcome = Kills {
        mid_copy: 0,
        finished_first: 0,
    };
    for kill in 0..kills {
        let before = landed();
        let mut child = start();
        if kill < by_progress {
            let goal = before + rng.usize(1..=step_max);
            let started = std::time::Instant::now();
            while landed() < goal
                && started.elapsed() < std::time::Duration::from_secs(20)
                && child.try_wait().expect("poll child").is_none()
            {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        } else {
            std::thread::sleep(std::time::Duration::from_millis(rng.u64(5..400)));
        }
        if !kill_unless_finished(&mut child) {
            outcome.finished_first += 1;
            continue;
        }
        if landed() < total {
            outcome.mid_copy += 1;
        }
    }
    outcome
}
