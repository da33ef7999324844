//! Running `ferry migrate` between IMAP servers in tests, and reading its summary.

use std::path::Path;
use std::process::Output;

use crate::dovecot::PASSWORD;
use crate::ferry;

/// `ferry migrate --from FROM --to TO --journal J` with both passwords in the environment.
pub fn migrate(home: &Path, from: &str, to: &str, journal: &Path, extra: &[&str]) -> Output {
    ferry(home)
        .arg("migrate")
        .args(["--from", from, "--to", to])
        .arg("--journal")
        .arg(journal)
        .args(extra)
        .env("FERRY_FROM_PASSWORD", PASSWORD)
        .env("FERRY_TO_PASSWORD", PASSWORD)
        .output()
        .expect("running ferry")
}

/// The standard output of a run that must have succeeded.
pub fn ok(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "ferry failed ({:?}):\n{stdout}\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// "Copied N messages" from a run's summary line.
pub fn copied(stdout: &str) -> usize {
    stdout
        .split("Copied ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no 'Copied N' in:\n{stdout}"))
}
