//! A project's Microsoft 365 mailboxes created by ferry, with `ferry run` killed (SIGKILL) at
//! random moments while three users are being created and licensed at once, and the reply to
//! one creation lost: in the end each user exists once, holds its licence once, and has every
//! message once (read from the emulator's own state); the project journal tells each
//! mailbox's steps (`ferry status`).

use std::time::Duration;

use ferry_tests::ferry;
use ferry_tests::graph::Tenant;
use ferry_tests::project::{run, sample_mailboxes};

const USERS: [&str; 3] = ["kim", "lou", "max"];
const MESSAGES: usize = 20;

#[test]
fn users_made_by_a_killed_project_run_exist_once_licensed_once() {
    let dir = tempfile::tempdir().expect("dir");
    let home = dir.path().join("home");
    let tenant = Tenant::start(None, |config| {
        // Slow enough that kills land between and inside the steps.
        config.limits.latency = Duration::from_millis(120);
    });
    let sku = tenant
        .emulator
        .with_world(|world| world.tenant.skus[0].sku_id.clone());
    sample_mailboxes(&home, dir.path(), &USERS, MESSAGES);
    let project = dir.path().join("acme");
    std::fs::create_dir_all(&project).expect("project dir");
    std::fs::write(
        project.join("ferry.toml"),
        format!(
            r#"[project]
from = "old"
to = "m365"
jobs = 3

[endpoints.old]
uri = "maildir:{}/src/{{user}}"

[endpoints.m365]
uri = "graph://contoso/{{user}}@contoso.test?client_id=app-1&endpoint={}"
password_file = "{}"

[batches.cloud]
create_target_mailbox = "ENTERPRISEPACK"

[mapping]
sources = "users.txt"
rules = ["same"]
batch = "cloud"
"#,
            dir.path().display(),
            tenant.emulator.url(),
            tenant.home.path().join("secret").display()
        ),
    )
    .expect("project file");
    std::fs::write(project.join("users.txt"), USERS.join("\n")).expect("users");

    tenant
        .emulator
        .with_world(|world| world.faults.lose_create_replies = 1);
    let mut rng = ferry_tests::kill_rng();
    let mut states = Vec::new();
    for _ in 0..6 {
        let mut child = ferry(&home)
            .current_dir(&project)
            .arg("run")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn ferry");
        std::thread::sleep(Duration::from_millis(rng.u64(150..1800)));
        let _ = child.kill();
        let _ = child.wait();
        states.push(
            USERS
                .iter()
                .map(|u| tenant.provisioned(&format!("{u}@contoso.test")))
                .collect::<Vec<_>>(),
        );
    }
    eprintln!("after each kill (users, licences): {states:?}");

    let (code, out) = run(&home, &project, &["run"]);
    assert_eq!(code, Some(0), "{out}");
    for user in USERS {
        let upn = format!("{user}@contoso.test");
        assert_eq!(
            tenant.provisioned(&upn),
            (1, vec![sku.clone()]),
            "{upn}: one user, licensed once"
        );
        assert_eq!(
            tenant.mailbox_of(&upn).len(),
            MESSAGES,
            "{upn}: every message once"
        );
    }

    // The project journal tells the steps; none is left as cut off once the mailbox ran.
    let (code, status) = run(&home, &project, &["status"]);
    assert_eq!(code, Some(0), "{status}");
    assert!(status.contains("3 done"), "{status}");
    assert!(!status.contains("stopped inside the step"), "{status}");
    assert!(
        status
            .lines()
            .any(|l| l.contains(&format!("licence {sku}"))),
        "{status}"
    );

    // Run again: nothing more is created or assigned.
    let (code, out) = run(&home, &project, &["run"]);
    assert_eq!(code, Some(0), "{out}");
    for user in USERS {
        let upn = format!("{user}@contoso.test");
        assert_eq!(tenant.provisioned(&upn), (1, vec![sku.clone()]));
    }
}
