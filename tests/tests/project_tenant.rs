//! A Microsoft 365 tenant's budget shared by the mailboxes of a project run: six mailboxes at
//! once into one emulated tenant whose app may have 4 requests in flight over all of them
//! (Microsoft's throttling limits list Outlook's concurrency per app ID, "regardless of whether
//! the requests all access the same mailbox, or access different mailboxes"). Declared in the
//! project (`in_flight = 4`), the tenant never throttles; not declared, the run learns it from
//! the 429s it gets, every mailbox slowing down together, and still moves everything.

use std::path::Path;

use ferry_tests::graph::Tenant;
use ferry_tests::project::{run, sample_mailboxes};

const USERS: [&str; 6] = ["u1", "u2", "u3", "u4", "u5", "u6"];
const MESSAGES: usize = 12;

fn project(dir: &Path, tenant: &Tenant, name: &str, in_flight: &str) -> std::path::PathBuf {
    let project = dir.join(name);
    std::fs::create_dir_all(&project).expect("project dir");
    std::fs::write(
        project.join("ferry.toml"),
        format!(
            r#"[project]
from = "old"
to = "m365"
jobs = 6

[endpoints.old]
uri = "maildir:{}/src/{{user}}"

[endpoints.m365]
uri = "graph://contoso/{{user}}@{name}.test?client_id=app-1&endpoint={}"
password_file = "{}"
{in_flight}

[mapping]
sources = "users.txt"
rules = ["same"]
"#,
            dir.display(),
            tenant.emulator.url(),
            tenant.home.path().join("secret").display()
        ),
    )
    .expect("project file");
    std::fs::write(project.join("users.txt"), USERS.join("\n")).expect("users");
    project
}

#[test]
fn the_mailboxes_of_one_tenant_share_its_apps_concurrency() {
    let dir = tempfile::tempdir().expect("dir");
    let home = dir.path().join("home");
    let tenant = Tenant::start(None, |config| {
        config.limits.app_concurrency = Some(4);
        config.limits.latency = std::time::Duration::from_millis(15);
        config.limits.retry_after = std::time::Duration::from_secs(1);
    });
    for domain in ["declared", "learned"] {
        for user in USERS {
            tenant.add_licensed_user(&format!("{user}@{domain}.test"), user);
        }
    }
    sample_mailboxes(&home, dir.path(), &USERS, MESSAGES);
    let landed = |domain: &str| -> usize {
        USERS
            .iter()
            .map(|user| tenant.mailbox_of(&format!("{user}@{domain}.test")).len())
            .sum()
    };

    // Declared: every mailbox's calls pass the tenant's pacer, 4 in flight over all six.
    let declared = project(dir.path(), &tenant, "declared", "in_flight = 4");
    tenant.emulator.reset_counters();
    let (code, out) = run(&home, &declared, &["run"]);
    assert_eq!(code, Some(0), "{out}");
    let app = tenant.emulator.app_counters();
    eprintln!("declared: {app:?}");
    assert_eq!(
        app.throttled, 0,
        "the app's concurrency is never exceeded: {app:?}"
    );
    assert!(app.max_in_flight <= 4, "{app:?}");
    assert!(app.requests > 0);
    let copied = landed("declared");
    assert!(
        copied >= USERS.len() * (MESSAGES - 2),
        "{copied} messages landed"
    );

    // Learned: the first 429s teach the tenant's pacer, and everything still lands.
    let learned = project(dir.path(), &tenant, "learned", "");
    tenant.emulator.reset_counters();
    let (code, out) = run(&home, &learned, &["run"]);
    assert_eq!(code, Some(0), "{out}");
    let app = tenant.emulator.app_counters();
    eprintln!("learned: {app:?}");
    assert_eq!(
        landed("learned"),
        copied,
        "the same mail as the declared run"
    );
    assert!(
        app.throttled * 3 < app.requests,
        "throttling is learned, not hammered: {app:?}"
    );
}
