//! A scratch area and helpers for the misuse tests (tests/tests/misuse.rs and
//! journal_misuse.rs): sample mailboxes, tree snapshots, journal commands.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::{differences, ferry, maildir_tree};
use ferry_sample::{SampleSpec, generate};

/// A scratch area: `config` is the config directory (key file), `work` is where the stores and
/// the journal live, so that what a command leaves beside them can be seen.
#[derive(Debug)]
pub struct Scratch {
    _home: tempfile::TempDir,
    /// The config directory (key file).
    pub config: PathBuf,
    /// Where the stores and the journal live.
    pub work: PathBuf,
}

pub fn scratch() -> Scratch {
    let home = tempfile::tempdir().expect("temp dir");
    let config = home.path().join("config");
    let work = home.path().join("work");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::create_dir_all(&work).expect("work dir");
    Scratch {
        _home: home,
        config,
        work,
    }
}

pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub fn sample(dir: &Path, messages: usize, seed: u64) {
    let summary = generate(dir, &SampleSpec { messages, seed }).expect("generate the sample");
    assert_eq!(summary.messages, messages);
}

/// Writes a new message into the source's INBOX `new/`.
pub fn deliver(source: &Path, n: u32) {
    std::fs::write(
        source.join("new").join(format!("19000000{n:02}.misuse{n}.host")),
        format!(
            "From: a@example.org\r\nSubject: delivered {n}\r\nMessage-ID: <delivered{n}@x>\r\n\r\nbody {n}\r\n"
        ),
    )
    .expect("deliver a message");
}

/// Every entry under `root`, by relative path: a file's blake3, "directory", or a link's target.
pub fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let entry = entry.expect("directory entry");
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .expect("under the root")
                .to_string_lossy()
                .into_owned();
            let kind = entry.file_type().expect("file type");
            if kind.is_symlink() {
                let to = std::fs::read_link(&path).expect("read link");
                out.insert(relative, format!("link to {}", to.display()));
            } else if kind.is_dir() {
                out.insert(relative, "directory".into());
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read file");
                out.insert(relative, blake3::hash(&bytes).to_hex().to_string());
            }
        }
    }
    out
}

/// What differs between two snapshots, one line per path.
pub fn changes(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, was) in before {
        match after.get(path) {
            None => out.push(format!("{path}: removed")),
            Some(now) if now != was => out.push(format!("{path}: changed")),
            Some(_) => {}
        }
    }
    for path in after.keys() {
        if !before.contains_key(path) {
            out.push(format!("{path}: added"));
        }
    }
    out
}

/// The names in a directory, sorted (none when it does not exist).
pub fn entries(dir: &Path) -> Vec<String> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = read
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("make the copy's directory");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("directory entry");
        let destination = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &destination);
        } else {
            std::fs::copy(entry.path(), &destination).expect("copy a file");
        }
    }
}

/// Messages delivered into the target tree so far (files in every folder's cur/).
pub fn landed(target: &Path) -> usize {
    let Ok(read) = std::fs::read_dir(target) else {
        return 0;
    };
    let mut dirs = vec![target.join("cur")];
    dirs.extend(read.filter_map(Result::ok).map(|e| e.path().join("cur")));
    dirs.iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .map(Iterator::count)
        .sum()
}

/// (missing, duplicates) of the target against the source, by an independent walk.
pub fn missing_and_duplicates(source: &Path, target: &Path) -> (usize, usize) {
    let (missing, duplicates, _) = differences(&maildir_tree(source), &maildir_tree(target));
    (missing, duplicates)
}

pub fn run_ok(command: &mut Command) -> Output {
    let output = command.output().expect("run ferry");
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    output
}

/// `ferry ARGS... --journal JOURNAL`.
pub fn on_journal(config: &Path, args: &[&str], journal: &Path) -> Output {
    ferry(config)
        .args(args)
        .arg("--journal")
        .arg(journal)
        .output()
        .expect("run ferry on the journal")
}

/// The four commands that only read a journal.
pub const READERS: [&[&str]; 4] = [&["journal", "verify"], &["status"], &["report"], &["audit"]];

/// Staging directories (`NAME.creating-…`) in `dir`.
pub fn staging_dirs(dir: &Path) -> Vec<String> {
    entries(dir)
        .into_iter()
        .filter(|name| name.contains(".creating-"))
        .collect()
}
