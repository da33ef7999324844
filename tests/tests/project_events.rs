//! `ferry run --json` and `ferry cutover --json`: every line on stdout is one JSON object with
//! its event and time; each mailbox starts and ends once, a failing mailbox ends with its
//! reason, the totals agree with what landed, and the cutover's verdict names what is not
//! whole. Read as a log collector would: line by line, with serde_json.

use std::path::Path;

use ferry_tests::ferry;
use ferry_tests::project::{maildir_project, sample_mailboxes};
use serde_json::Value;

fn events(home: &Path, project: &Path, args: &[&str]) -> (Option<i32>, Vec<Value>) {
    let output = ferry(home)
        .current_dir(project)
        .args(args)
        .output()
        .expect("ferry");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let events = stdout
        .lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("not one JSON object per line ({error}): {line}"));
            assert!(
                event["event"].is_string() && event["at"].is_string(),
                "{line}"
            );
            event
        })
        .collect();
    (output.status.code(), events)
}

fn of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

#[test]
fn a_project_run_tells_its_events_as_json_lines() {
    let dir = tempfile::tempdir().expect("dir");
    let home = dir.path().join("home");
    sample_mailboxes(&home, dir.path(), &["ann", "bob"], 15);
    let project = maildir_project(dir.path(), "jobs = 2", "csv = \"mailboxes.csv\"");
    // gus has no source Maildir: it fails, alone.
    std::fs::write(
        project.join("mailboxes.csv"),
        "ann,ann,one\nbob,bob,one\ngus,gus,one\nonly-one-column\n",
    )
    .expect("mapping");

    let (code, run) = events(&home, &project, &["run", "--json"]);
    assert_eq!(code, Some(4), "a failed mailbox: {run:?}");
    assert_eq!(of(&run, "run_started").len(), 1);
    assert_eq!(of(&run, "run_started")[0]["mailboxes"], 3);
    assert_eq!(of(&run, "left_out").len(), 1);
    assert_eq!(of(&run, "mailbox_started").len(), 3);
    let ended = of(&run, "mailbox_ended");
    assert_eq!(ended.len(), 3);
    let gus = ended
        .iter()
        .find(|e| e["source"] == "gus")
        .expect("gus ended");
    assert_eq!(gus["outcome"], "failed");
    assert!(
        gus["reason"]
            .as_str()
            .is_some_and(|r| r.contains("does not exist")),
        "{gus}"
    );
    let copied: u64 = ended
        .iter()
        .map(|e| e["copied"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(copied, 30, "{ended:?}");
    let landed = ["ann", "bob"]
        .iter()
        .map(|user| ferry_tests::maildir_tree(&dir.path().join("dst").join(user)))
        .map(|tree| tree.values().map(Vec::len).sum::<usize>())
        .sum::<usize>();
    assert_eq!(landed, 30);
    let run_ended = of(&run, "run_ended");
    assert_eq!(run_ended.len(), 1);
    assert_eq!(run_ended[0]["exit_code"], 4);
    assert_eq!(run_ended[0]["outcomes"]["done"], 2);
    assert_eq!(run_ended[0]["outcomes"]["failed"], 1);
    assert_eq!(
        run.last().map(|e| &e["event"]),
        Some(&Value::from("run_ended"))
    );

    let (code, cutover) = events(&home, &project, &["cutover", "--json", "--batch", "one"]);
    assert_eq!(code, Some(1), "{cutover:?}");
    let verdict = of(&cutover, "cutover");
    assert_eq!(verdict.len(), 1);
    assert_eq!(verdict[0]["verdict"], "NO-GO");
    let not_ready = verdict[0]["not_ready"].as_array().expect("a list");
    assert_eq!(not_ready.len(), 1, "{not_ready:?}");
    assert!(not_ready[0].as_str().is_some_and(|l| l.starts_with("gus")));

    // Once gus leaves the mapping, the batch is whole: GO.
    std::fs::write(project.join("mailboxes.csv"), "ann,ann,one\nbob,bob,one\n").expect("mapping");
    let (code, cutover) = events(&home, &project, &["cutover", "--json"]);
    assert_eq!(code, Some(0), "{cutover:?}");
    assert_eq!(of(&cutover, "cutover")[0]["verdict"], "GO");
}
