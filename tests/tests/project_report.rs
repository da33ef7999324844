//! The report of a project: its JSON validated against the published schema
//! (`docs/schema/project-report.v1.json`) and its totals checked against the mailboxes
//! migrated; the project's audit trail as JSON lines; its HTML page rendered by headless Chromium (from Debian's packages, installed by
//! `scripts/test`): no console error, the totals read from the DOM, a screenshot kept in
//! `target/test-artefacts/`.

use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_tests::project::{maildir_project, sample_mailboxes};
use ferry_tests::{ferry, maildir_tree};

const USERS: [(&str, &str); 3] = [("ann", "pilot"), ("bob", "pilot"), ("cid", "rest")];

fn setup(dir: &Path, home: &Path) -> PathBuf {
    let names: Vec<&str> = USERS.iter().map(|(user, _)| *user).collect();
    sample_mailboxes(home, dir, &names, 25);
    let project = maildir_project(dir, "", "csv = \"mailboxes.csv\"");
    let mut csv = String::new();
    for (user, batch) in USERS {
        csv.push_str(&format!("{user},{user},{batch}\n"));
    }
    csv.push_str("dan,dan,rest\n");
    std::fs::write(project.join("mailboxes.csv"), csv).expect("mapping");
    project
}

fn stdout(home: &Path, project: &Path, args: &[&str]) -> String {
    let output = ferry(home)
        .current_dir(project)
        .args(args)
        .output()
        .expect("ferry");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn chromium() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("chromium is missing: scripts/test installs it (apt-get install chromium)")
}

fn headless(page: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs")
}

#[test]
fn the_project_report_follows_its_schema_and_renders_in_chromium_with_its_totals() {
    let dir = tempfile::tempdir().expect("dir");
    let home = dir.path().join("home");
    let project = setup(dir.path(), &home);
    let total: u64 = USERS
        .iter()
        .map(|(user, _)| {
            maildir_tree(&dir.path().join("src").join(user))
                .values()
                .map(|items| items.len() as u64)
                .sum::<u64>()
        })
        .sum();
    // cid holds a message whose file name is not UTF-8: it cannot be read, and stays behind.
    let bad = std::ffi::OsStr::from_bytes(b"1700000000.bad\xff.host:2,S");
    std::fs::write(
        dir.path().join("src/cid/cur").join(bad),
        b"Subject: x\r\n\r\nx\r\n",
    )
    .expect("a message with a bad name");
    stdout(&home, &project, &["run", "--batch", "pilot"]);
    // dan has no source: a failed mailbox with its reason.
    stdout(&home, &project, &["run"]);

    let json = stdout(&home, &project, &["report", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let schema_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schema/project-report.v1.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&schema_path).expect("schema"))
            .expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(&report)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{json}");
    // And the schema refuses what it must.
    let mut broken = report.clone();
    broken["mailboxes"][0]["state"] = serde_json::json!("finished");
    assert!(!validator.is_valid(&broken), "an unknown state is refused");

    let totals = &report["totals"];
    assert_eq!(totals["mailboxes"], 4);
    assert_eq!(totals["done"], 2);
    assert_eq!(totals["done_with_failures"], 1);
    assert_eq!(totals["failed"], 1);
    assert_eq!(totals["behind"], 1);
    assert_eq!(totals["copied"], total, "{json}");
    let cid = report["mailboxes"]
        .as_array()
        .and_then(|all| all.iter().find(|m| m["source"] == "cid"))
        .expect("cid");
    let why = cid["behind_reasons"].as_array().expect("reasons");
    assert_eq!(why.len(), 1, "{cid}");
    assert_eq!(why[0]["kind"], "unreadable", "{cid}");
    assert_eq!(why[0]["items"], 1, "{cid}");
    assert!(
        why[0]["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{cid}"
    );
    assert_eq!(cid["verified"], false);
    let text = stdout(&home, &project, &["report"]);
    assert!(text.contains("    1 unreadable: "), "{text}");
    // A batch's report, and a mailbox's: their own totals, still of the schema.
    for (scope, mailboxes, done) in [(["--batch", "pilot"], 2, 2), (["--mailbox", "cid"], 1, 0)] {
        let args = [&["report", "--format", "json"][..], &scope[..]].concat();
        let scoped: serde_json::Value =
            serde_json::from_str(&stdout(&home, &project, &args)).expect("JSON");
        assert!(validator.is_valid(&scoped), "{scoped}");
        assert_eq!(scoped["totals"]["mailboxes"], mailboxes, "{scope:?}");
        assert_eq!(scoped["totals"]["done"], done, "{scope:?}");
    }
    let dan = report["mailboxes"]
        .as_array()
        .and_then(|all| all.iter().find(|m| m["source"] == "dan"))
        .expect("dan");
    assert_eq!(dan["state"], "failed");
    assert!(
        dan["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{dan}"
    );
    let pilot = report["batches"]
        .as_array()
        .and_then(|all| all.iter().find(|b| b["name"] == "pilot"))
        .expect("pilot");
    assert_eq!(pilot["done"], 2);
    assert_eq!(report["runs"].as_array().map(Vec::len), Some(2));

    // The audit trail of the whole project, one JSON object per line (for a SIEM).
    let audit = stdout(&home, &project, &["audit", "--format", "json"]);
    let rows: Vec<serde_json::Value> = audit
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let copies = rows
        .iter()
        .filter(|r| r["action"].as_str().is_some_and(|a| a.starts_with("copy ")))
        .count() as u64;
    assert_eq!(copies, total, "every message copied once, each a line");
    assert!(
        rows.iter().all(|r| r["source"].is_string()
            && r["batch"].is_string()
            && r["at"].is_string()
            && r["run"].is_u64()
            && r["status"] == "done"),
        "{audit}"
    );
    let only_ann = stdout(&home, &project, &["audit", "--mailbox", "ann"]);
    assert!(!only_ann.is_empty());
    assert!(
        only_ann.lines().all(|l| l.starts_with("ann → ann: ")),
        "{only_ann}"
    );

    // The page, rendered.
    let html = stdout(&home, &project, &["report", "--format", "html"]);
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).expect("page");
    let dumped = headless(&page, &["--dump-dom"]);
    assert!(dumped.status.success(), "{dumped:?}");
    let dom = String::from_utf8_lossy(&dumped.stdout);
    let console = String::from_utf8_lossy(&dumped.stderr);
    let errors: Vec<&str> = console
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    // The totals row, by its id, as Chromium serialises its DOM.
    let row = dom
        .split("<tr id=\"totals\">")
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .expect("the totals row is in the DOM");
    let cell = |class: &str| -> String {
        row.split(&format!("class=\"{class}\">"))
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(cell("mailboxes"), "4", "{row}");
    assert_eq!(cell("done"), "2", "{row}");
    assert_eq!(cell("failed"), "1", "{row}");
    assert_eq!(cell("copied"), total.to_string(), "{row}");
    assert!(dom.contains("<svg id=\"throughput\""), "the chart");
    assert!(dom.contains("1 unreadable: "), "why cid is behind");

    let artefacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artefacts");
    std::fs::create_dir_all(&artefacts).expect("artefacts");
    let shot = artefacts.join("project-report.png");
    let _ = std::fs::remove_file(&shot);
    let taken = headless(
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,900",
            "--hide-scrollbars",
        ],
    );
    assert!(taken.status.success(), "{taken:?}");
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
}
