//! Mapping mailboxes by display name: the source people from a directory CSV (an IMAP
//! server's directory, `address,display name`), the targets listed from a Microsoft 365
//! emulator's tenant (`endpoint:NAME`, `GET /users`) or read from a CSV. `ferry map` names
//! the twins (a display name two targets have), the unmatched and the targets the tenant
//! lacks; a mailbox mapped by its name then moves into the user that has it.

use ferry_tests::ferry;
use ferry_tests::graph::Tenant;
use ferry_tests::project::run;

#[test]
fn mailboxes_are_mapped_by_display_name_from_a_tenant_or_a_directory() {
    let dir = tempfile::tempdir().expect("dir");
    let home = dir.path().join("home");
    let tenant = Tenant::start(None, |_| {});
    for (upn, name) in [
        ("ann.smith@contoso.test", "Ann Smith"),
        ("jo.lee@contoso.test", "Jo Lee"),
        ("joanna.lee@contoso.test", "JO  LEE"),
    ] {
        tenant.add_licensed_user(upn, name);
    }
    let sample = dir.path().join("src").join("ann@old.example");
    let made = ferry(&home)
        .args(["generate-sample", "--messages", "9", "--out"])
        .arg(&sample)
        .output()
        .expect("generate-sample");
    assert!(made.status.success(), "{made:?}");

    let project = dir.path().join("acme");
    std::fs::create_dir_all(&project).expect("project dir");
    let write_project = |file: &str, targets: &str| {
        std::fs::write(
            project.join(file),
            format!(
                r#"[project]
from = "old"
to = "m365"

[endpoints.old]
uri = "maildir:{}/src/{{user}}"

[endpoints.m365]
uri = "graph://contoso/{{user}}?client_id=app-1&endpoint={}"
password_file = "{}"

[mapping]
sources = "directory.csv"
rules = ["display_name"]
targets = "{targets}"
"#,
                dir.path().display(),
                tenant.emulator.url(),
                tenant.home.path().join("secret").display()
            ),
        )
        .expect("project file");
    };
    write_project("ferry.toml", "endpoint:m365");
    std::fs::write(
        project.join("directory.csv"),
        "address,display name\nann@old.example, ann  smith\njo@old.example,Jo Lee\n\
         zed@old.example,Zed Unknown\nbo@old.example\n",
    )
    .expect("directory");

    let (code, out) = run(&home, &project, &["map"]);
    assert_eq!(code, Some(1), "the mapping leaves some out: {out}");
    assert!(
        out.contains("ann@old.example") && out.contains("ann.smith@contoso.test"),
        "{out}"
    );
    assert!(out.contains("1 mailboxes (default: 1)"), "{out}");
    assert!(
        out.contains(
            "left out: jo@old.example: its display name \"Jo Lee\" is that of 2 targets: \
             jo.lee@contoso.test, joanna.lee@contoso.test"
        ),
        "{out}"
    );
    assert!(
        out.contains("left out: zed@old.example: no rule maps it"),
        "{out}"
    );
    assert!(
        out.contains("left out: bo@old.example: no rule maps it"),
        "{out}"
    );
    assert!(
        !out.contains("missing:"),
        "the mapped target is a user: {out}"
    );

    // The mailbox mapped by its name moves into the user that has it.
    let (code, out) = run(&home, &project, &["run"]);
    assert_eq!(code, Some(1), "mapping lines left out: {out}");
    assert!(
        out.contains("ann@old.example → ann.smith@contoso.test: done"),
        "{out}"
    );
    let landed = tenant.mailbox_of("ann.smith@contoso.test").len();
    assert_eq!(landed, 9, "every message in the user's mailbox");

    // The targets from a directory CSV instead; one the tenant does not have is missing.
    std::fs::write(
        project.join("targets.csv"),
        "address,display name\nann.smith@contoso.test,Ann Smith\nzed@contoso.test,Zed Unknown\n",
    )
    .expect("targets");
    write_project("from-csv.toml", "targets.csv");
    let (code, out) = run(&home, &project, &["map", "--project", "from-csv.toml"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("2 mailboxes (default: 2)"), "{out}");
    assert!(
        out.contains(
            "missing: zed@contoso.test is not a user of m365; create it, or set \
             create_target_mailbox in [batches.default]"
        ),
        "{out}"
    );
}
