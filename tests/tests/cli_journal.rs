//! The `ferry` binary's journal commands, run as an operator would: key file creation and
//! reuse, verification, tampering and a wrong passphrase mapped to exit code 3.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ferry_journal::{Journal, KeyFileSecret, KeySource};
use ferry_tests::ferry;

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `ferry journal verify --journal JOURNAL`.
fn verify_command(home: &Path, journal: &Path) -> Command {
    let mut command = ferry(home);
    command
        .args(["journal", "verify", "--journal"])
        .arg(journal);
    command
}

fn journal_dir(state: &Path) -> PathBuf {
    let journal = state.join("journal");
    assert!(
        journal.is_dir(),
        "the demo made no journal at {}",
        journal.display()
    );
    journal
}

#[test]
fn demo_creates_a_private_key_file_once_and_verify_accepts_the_journal() {
    let home = tempfile::tempdir().expect("temp dir");
    let state = home.path().join("state");
    let key_file = home.path().join("ferry").join("journal.key");

    let first = ferry(home.path())
        .args(["demo", "--state"])
        .arg(&state)
        .output()
        .expect("run ferry demo");
    let (stdout, stderr) = text(&first);
    assert!(first.status.success(), "demo failed: {stdout}\n{stderr}");
    assert!(stderr.contains("created the journal key file"), "{stderr}");
    assert!(stderr.contains(&key_file.display().to_string()), "{stderr}");
    let mode = std::fs::metadata(&key_file)
        .expect("key file exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "key file mode {mode:o}");
    let key = std::fs::read(&key_file).expect("read key file");

    let second = ferry(home.path())
        .args(["demo", "--state"])
        .arg(&state)
        .output()
        .expect("run ferry demo again");
    let (stdout, stderr) = text(&second);
    assert!(
        second.status.success(),
        "second demo failed: {stdout}\n{stderr}"
    );
    assert!(!stderr.contains("created the journal key file"), "{stderr}");
    assert_eq!(std::fs::read(&key_file).expect("read key file"), key);

    let journal = journal_dir(&state);
    let verify = verify_command(home.path(), &journal)
        .output()
        .expect("run ferry journal verify");
    let (stdout, stderr) = text(&verify);
    assert_eq!(verify.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("chain intact"), "{stdout}");

    // Flip one bit of record 7 on disk: verify names it and exits 3.
    {
        let secret = KeyFileSecret::from_bytes(&key).expect("key file contents");
        let opened = Journal::<()>::open(&journal, &KeySource::KeyFile(secret)).expect("open");
        let tamper = opened.tamper();
        let mut value = tamper.get(7).expect("record 7");
        let last = value.len() - 1;
        value[last] ^= 0x10;
        tamper.put(7, &value);
        tamper.persist();
    }
    let verify = verify_command(home.path(), &journal)
        .output()
        .expect("run ferry journal verify");
    let (stdout, stderr) = text(&verify);
    assert_eq!(verify.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stderr.contains("record 7"), "{stderr}");
}

#[test]
fn a_wrong_passphrase_is_its_own_error_and_is_never_printed() {
    let home = tempfile::tempdir().expect("temp dir");
    let state = home.path().join("state");
    let right = "correct horse battery staple, for this test only";
    let wrong = "incorrect donkey battery staple, for this test only";

    let demo = ferry(home.path())
        .env("FERRY_PASSPHRASE", right)
        .args(["demo", "--state"])
        .arg(&state)
        .output()
        .expect("run ferry demo");
    let (stdout, stderr) = text(&demo);
    assert!(demo.status.success(), "{stdout}\n{stderr}");
    assert!(!home.path().join("ferry").join("journal.key").exists());

    let journal = journal_dir(&state);
    let passphrase_file = home.path().join("wrong-passphrase");
    std::fs::write(&passphrase_file, wrong).expect("write passphrase file");
    let verify = verify_command(home.path(), &journal)
        .arg("--passphrase-file")
        .arg(&passphrase_file)
        .output()
        .expect("run ferry journal verify");
    let (stdout, stderr) = text(&verify);
    assert_eq!(verify.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stderr.contains("wrong"), "{stderr}");
    assert!(
        !stderr.contains("corrupt"),
        "wrong key reported as corruption: {stderr}"
    );
    for secret in [right, wrong] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }

    let verify = verify_command(home.path(), &journal)
        .env("FERRY_PASSPHRASE", right)
        .output()
        .expect("run ferry journal verify");
    assert_eq!(verify.status.code(), Some(0), "{:?}", text(&verify));
}
