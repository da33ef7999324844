//! Snapshots of what the project commands print, reviewed like code: `ferry map` of a mapping
//! with lines it must leave out, then `ferry run` and `ferry status` of the Maildir project it
//! maps. Times, durations and the scratch directory are redacted.

use std::path::Path;

use ferry_tests::ferry;

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
fn map_run_and_status_of_a_recorded_project() {
    let dir = tempfile::tempdir().expect("dir");
    let home = dir.path().join("home");
    for (n, user) in ["ann", "bob", "cid"].iter().enumerate() {
        let made = ferry(&home)
            .args(["generate-sample", "--messages", "12", "--seed"])
            .arg(n.to_string())
            .arg("--out")
            .arg(dir.path().join("src").join(user))
            .output()
            .expect("generate-sample");
        assert!(made.status.success());
    }
    let project = dir.path().join("acme");
    std::fs::create_dir_all(&project).expect("dir");
    std::fs::write(
        project.join("ferry.toml"),
        format!(
            "[project]\njobs = 1\nfrom = \"old\"\nto = \"new\"\n\n\
             [endpoints.old]\nuri = \"maildir:{0}/src/{{user}}\"\n\n\
             [endpoints.new]\nuri = \"maildir:{0}/dst/{{user}}\"\n\n\
             [mapping]\ncsv = \"mailboxes.csv\"\n",
            dir.path().display()
        ),
    )
    .expect("project");
    std::fs::write(
        project.join("mailboxes.csv"),
        "source,target,batch\nann,ann,pilot\nbob,bob,pilot\ncid,cid\n\
         dan,shared\neve,shared\nfay,fay\nfay,fay2\nonly-one-column\n",
    )
    .expect("mapping");
    let map = output(&home, &project, &["map"]);
    let run = output(&home, &project, &["run", "--batch", "pilot"]);
    let status = output(&home, &project, &["status"]);
    let filters = vec![
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", "[time]"),
        (r"in \d+\.\d s", "in [seconds] s"),
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
    });
}
