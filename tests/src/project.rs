//! Maildir projects for the project tests: sample mailboxes under `DIR/src/NAME`, an empty
//! `DIR/dst`, and a `ferry.toml` between them in `DIR/acme`.

use std::path::{Path, PathBuf};

use crate::ferry;

/// The seeded sample of `messages` messages under `dir/src/NAME` for each name (its seed is
/// its index), and an empty `dir/dst`.
pub fn sample_mailboxes(home: &Path, dir: &Path, names: &[&str], messages: usize) {
    for (n, name) in names.iter().enumerate() {
        let made = ferry(home)
            .args([
                "generate-sample",
                "--messages",
                &messages.to_string(),
                "--seed",
            ])
            .arg(n.to_string())
            .arg("--out")
            .arg(dir.join("src").join(name))
            .output()
            .expect("generate-sample");
        assert!(made.status.success(), "{made:?}");
    }
    std::fs::create_dir_all(dir.join("dst")).expect("dst");
}

/// `dir/acme/ferry.toml` from endpoint `old` (`dir/src/{user}`) to `new` (`dir/dst/{user}`),
/// with `settings` added to `[project]` and `mapping` as the `[mapping]` section's lines; the
/// project's directory.
pub fn maildir_project(dir: &Path, settings: &str, mapping: &str) -> PathBuf {
    let project = dir.join("acme");
    std::fs::create_dir_all(&project).expect("project dir");
    std::fs::write(
        project.join("ferry.toml"),
        format!(
            "[project]\nfrom = \"old\"\nto = \"new\"\n{settings}\n\n\
             [endpoints.old]\nuri = \"maildir:{0}/src/{{user}}\"\n\n\
             [endpoints.new]\nuri = \"maildir:{0}/dst/{{user}}\"\n\n\
             [mapping]\n{mapping}\n",
            dir.display()
        ),
    )
    .expect("ferry.toml");
    project
}

/// `ferry ARGS` in the project directory: its exit code, and its stdout then its stderr.
pub fn run(home: &Path, project: &Path, args: &[&str]) -> (Option<i32>, String) {
    let output = ferry(home)
        .current_dir(project)
        .args(args)
        .output()
        .expect("ferry runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}
