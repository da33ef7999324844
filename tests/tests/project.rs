//! A migration project (`ferry.toml`) through the binary, issue 17's acceptance: twenty
//! mailboxes on a real Dovecot in two batches, mapped from a CSV: sixteen to another Dovecot,
//! four into a Microsoft 365 emulator whose users ferry creates and licenses, several at once. One mailbox's target password is
//! wrong: it fails with the server's reason and the others finish; once the password is fixed,
//! a rerun moves that one only. The source server never sees more connections at once than its
//! endpoint allows (counted by a proxy in front of it). Every check reads the servers with an
//! independent IMAP client, or the emulator's state.

use std::sync::atomic::Ordering;

use ferry_tests::dovecot::{Dovecot, count};
use ferry_tests::graph::Tenant;
use ferry_tests::project::run;
use ferry_tests::proxy::Proxy;
use ferry_tests::{Tree, ferry};

const USERS: [&str; 16] = [
    "ann", "bob", "cid", "dan", "eve", "fay", "ida", "jan", "kim", "lea", "max", "ned", "oda",
    "pia", "rob", "sam",
];
/// Mailboxes going into the tenant.
const CLOUD: [&str; 4] = ["gus", "hal", "tom", "uma"];

fn password(user: &str) -> String {
    format!("pw-{user}")
}

fn users() -> Vec<String> {
    USERS
        .iter()
        .chain(&CLOUD)
        .flat_map(|u| ["--user".to_string(), format!("{u}:{}", password(u))])
        .collect()
}

fn tree_of(server: &Dovecot, user: &str) -> Tree {
    server
        .client_as(user, &password(user))
        .tree()
        .into_iter()
        .filter(|(_, items)| !items.is_empty())
        .collect()
}

#[test]
fn a_project_of_two_batches_finishes_all_but_the_broken_mailbox_then_moves_only_it() {
    let dir = tempfile::tempdir().expect("dir");
    let options: Vec<String> = users();
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let source = Dovecot::start(&dir.path().join("source-server"), &options);
    let target = Dovecot::start(&dir.path().join("target-server"), &options);
    let proxy = Proxy::start(source.port());
    let tenant = Tenant::start(None, |_| {});
    let sku = tenant
        .emulator
        .with_world(|world| world.tenant.skus[0].sku_id.clone());

    // Each source mailbox: a sample of its own size.
    let home = dir.path().join("home");
    for (n, user) in USERS.iter().chain(&CLOUD).enumerate() {
        let sample = dir.path().join(format!("sample-{user}"));
        let made = ferry(&home)
            .args(["generate-sample", "--messages", &(10 + 2 * n).to_string()])
            .args(["--seed", &n.to_string(), "--out"])
            .arg(&sample)
            .output()
            .expect("generate-sample");
        assert!(made.status.success());
        let seeded = ferry(&home)
            .args(["migrate", "--from"])
            .arg(format!("maildir:{}", sample.display()))
            .arg("--to")
            .arg(format!(
                "imap://{user}@127.0.0.1:{}/?tls=none",
                source.port()
            ))
            .arg("--journal")
            .arg(dir.path().join(format!("seed-{user}")))
            .env("FERRY_TO_PASSWORD", password(user))
            .output()
            .expect("seeding");
        assert!(seeded.status.success(), "{seeded:?}");
    }

    let project = dir.path().join("acme");
    std::fs::create_dir_all(project.join("pw/old")).expect("dirs");
    std::fs::create_dir_all(project.join("pw/new")).expect("dirs");
    for user in USERS.iter().chain(&CLOUD) {
        std::fs::write(project.join("pw/old").join(user), password(user)).expect("pw");
        let given = if *user == "dan" {
            "wrong".to_string()
        } else {
            password(user)
        };
        std::fs::write(project.join("pw/new").join(user), given).expect("pw");
    }
    std::fs::write(
        project.join("ferry.toml"),
        format!(
            r#"[project]
jobs = 4
from = "old"
to = "new"

[endpoints.old]
uri = "imap://{{user}}@127.0.0.1:{}/?tls=none&connections=2"
password_file = "pw/old/{{user}}"
connections = 3

[endpoints.new]
uri = "imap://{{user}}@127.0.0.1:{}/?tls=none&connections=2"
password_file = "pw/new/{{user}}"

[endpoints.m365]
uri = "graph://contoso/{{user}}?client_id=app-1&endpoint={}"
password_file = "{}"

[batches.staff]

[batches.cloud]
to = "m365"
create_target_mailbox = "ENTERPRISEPACK"

[mapping]
csv = "mailboxes.csv"
"#,
            proxy.port,
            target.port(),
            tenant.emulator.url(),
            tenant.home.path().join("secret").display()
        ),
    )
    .expect("project");
    let mut csv = String::from("source,target,batch\n");
    for user in USERS {
        csv.push_str(&format!("{user},{user},staff\n"));
    }
    for user in CLOUD {
        csv.push_str(&format!("{user},{user}@contoso.test,cloud\n"));
    }
    std::fs::write(project.join("mailboxes.csv"), csv).expect("mapping");

    let (code, out) = run(&home, &project, &["map"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("20 mailboxes (cloud: 4, staff: 16)"), "{out}");
    // The tenant has none of the cloud batch's users yet: listed, each to be created.
    for user in CLOUD {
        assert!(
            out.contains(&format!(
                "to create: {user}@contoso.test on m365 (batch cloud"
            )),
            "{out}"
        );
    }

    let (code, out) = run(&home, &project, &["run"]);
    assert_eq!(code, Some(4), "one mailbox failed: {out}");
    let failed: Vec<&str> = out.lines().filter(|l| l.contains(": failed")).collect();
    assert_eq!(failed.len(), 1, "{out}");
    assert!(failed[0].starts_with("dan → dan: failed"), "{out}");
    assert!(
        failed[0].contains("login refused for dan: Authentication failed"),
        "the server's reason: {out}"
    );
    for user in USERS {
        let want = tree_of(&source, user);
        if user == "dan" {
            assert_eq!(count(&tree_of(&target, user)), 0);
        } else {
            assert_eq!(tree_of(&target, user), want, "{user}");
        }
    }
    // The tenant's users made and licensed once, their mail in.
    for user in CLOUD {
        let upn = format!("{user}@contoso.test");
        let (users, licences) = tenant.emulator.with_world(|world| {
            let found: Vec<_> = world
                .tenant
                .users
                .iter()
                .filter(|u| u.upn.eq_ignore_ascii_case(&upn))
                .map(|u| u.licenses.clone())
                .collect();
            (found.len(), found.into_iter().next().unwrap_or_default())
        });
        assert_eq!((users, licences), (1, vec![sku.clone()]), "{upn}");
        assert_eq!(
            tenant.mailbox_of(&upn).len(),
            count(&tree_of(&source, user)),
            "{upn}: every message once"
        );
    }
    let most = proxy.most_open.load(Ordering::SeqCst);
    assert!(
        (1..=3).contains(&most),
        "at most 3 connections to the source at once, saw {most}"
    );

    let (code, out) = run(&home, &project, &["status"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("19 done"), "{out}");
    assert!(out.contains("1 failed"), "{out}");

    // Fixed: a rerun moves dan's mail and nothing of the others.
    std::fs::write(project.join("pw/new/dan"), password("dan")).expect("pw");
    let (code, out) = run(&home, &project, &["run"]);
    assert_eq!(code, Some(0), "{out}");
    for user in USERS.iter().chain(&CLOUD) {
        let user = *user;
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{user} → {user}")))
            .unwrap_or_else(|| panic!("{user}: {out}"));
        let copied: usize = line
            .split(" — ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        if user == "dan" {
            assert_eq!(copied, count(&tree_of(&source, "dan")), "{line}");
        } else {
            assert_eq!(copied, 0, "only dan moves: {line}");
        }
        if !CLOUD.contains(&user) {
            assert_eq!(tree_of(&target, user), tree_of(&source, user), "{user}");
        }
    }
    let (_, out) = run(&home, &project, &["status"]);
    assert!(out.contains("20 done"), "{out}");
}
