//! Snapshots of what the project commands print, reviewed like code: `ferry map` of a mapping
//! with lines it must leave out, `ferry plan` of the Maildir project it maps under folder rules
//! (a folder left out, one renamed, two merged into a third), then `ferry run`, `ferry status`
//! and the text `ferry report`. Times, durations and the scratch directory are redacted.

use std::path::Path;

use ferry_tests::ferry;
use ferry_tests::project::{maildir_project, sample_mailboxes};

fn output(home: &Path, project: &Path, args: &[&str]) -> String {
    let output = ferry(home)
        .current_dir(project)
        .args(args)
        .output()
        .expect("ferry");
    format!(
        "exit {:?}\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout)
    )
}

#[test]
fn map_plan_run_status_and_report_of_a_recorded_project() {
    let dir = tempfile::tempdir().expect("dir");
    let home = dir.path().join("home");
    sample_mailboxes(&home, dir.path(), &["ann", "bob", "cid"], 12);
    let project = maildir_project(
        dir.path(),
        "jobs = 1",
        "csv = \"mailboxes.csv\"\n\n[folders]\nexclude = [\"Trash\"]\n\
         rename = { \"Newsletters\" = \"Reading/Newsletters\" }\n\
         merge = { \"Archive\" = [\"Archive/2024\", \"Archive/2025\"] }",
    );
    std::fs::write(
        project.join("mailboxes.csv"),
        "source,target,batch\nann,ann,pilot\nbob,bob,pilot\ncid,cid\n\
         dan,shared\neve,shared\nfay,fay\nfay,fay2\nonly-one-column\n",
    )
    .expect("mapping");
    let map = output(&home, &project, &["map"]);
    let plan = output(&home, &project, &["plan"]);
    let run = output(&home, &project, &["run", "--batch", "pilot"]);
    let status = output(&home, &project, &["status"]);
    let report = output(&home, &project, &["report"]);
    let filters = vec![
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", "[time]"),
        (r"in \d+\.\d s", "in [seconds] s"),
        (r"\(\d+ items/s\)", "([rate] items/s)"),
        (r"/[^\s]*/acme/", "[project]/"),
    ];
    insta::with_settings!({
        snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"),
        prepend_module_to_snapshot => false,
        filters => filters,
    }, {
        insta::assert_snapshot!("project_map", map);
        insta::assert_snapshot!("project_run", run);
        insta::assert_snapshot!("project_status", status);
        insta::assert_snapshot!("project_plan", plan);
        insta::assert_snapshot!("project_report", report);
    });
}
