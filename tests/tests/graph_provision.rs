//! `--create-target-mailbox` against the Graph emulator: the target user created and licensed
//! before the run, with the real binary killed at random moments inside and between the steps
//! and the reply to the user's creation lost; in the end one user, licensed once, and every
//! message once, read from the emulator's own state.

use std::time::Duration;

use ferry_sample::{SampleSpec, generate};
use ferry_tests::graph::Tenant;

const CAROL: &str = "carol@contoso.test";

fn uri_of(tenant: &Tenant, upn: &str) -> String {
    format!(
        "graph://contoso/{upn}?client_id=app-1&endpoint={}",
        tenant.emulator.url()
    )
}

#[test]
fn a_missing_target_user_is_created_and_licensed_once_across_kills_and_a_lost_reply() {
    let tenant = Tenant::start(None, |config| {
        // Slow enough that kills land between and inside the steps.
        config.limits.latency = Duration::from_millis(120);
    });
    let sku = tenant
        .emulator
        .with_world(|world| world.tenant.skus[0].sku_id.clone());
    let source = tenant.home.path().join("source");
    let summary = generate(
        &source,
        &SampleSpec {
            messages: 40,
            seed: 17,
        },
    )
    .expect("sample");
    let from = format!("maildir:{}", source.display());
    let to = uri_of(&tenant, CAROL);
    let args = ["--create-target-mailbox", "ENTERPRISEPACK"];

    // A plan creates nothing.
    let plan = tenant
        .command(&from, &to, "journal", &args)
        .arg("--dry-run")
        .output()
        .expect("ferry");
    assert!(
        String::from_utf8_lossy(&plan.stderr).contains("does not exist yet"),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    assert_eq!(tenant.provisioned(CAROL).0, 0, "a plan created the user");

    // The reply to the user's creation is lost once it is made; then the runs are killed.
    tenant
        .emulator
        .with_world(|world| world.faults.lose_create_replies = 1);
    let mut rng = ferry_tests::kill_rng();
    let mut states = Vec::new();
    for _ in 0..8 {
        let mut child = tenant
            .command(&from, &to, "journal", &args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn ferry");
        std::thread::sleep(Duration::from_millis(rng.u64(100..1500)));
        let _ = child.kill();
        let _ = child.wait();
        states.push(tenant.provisioned(CAROL));
    }
    eprintln!("after each kill (users, licences): {states:?}");
    let out = tenant.migrate(&from, &to, "journal", &args);
    let (users, licences) = tenant.provisioned(CAROL);
    assert_eq!(users, 1, "one user");
    assert_eq!(licences, vec![sku.clone()], "licensed once");
    let landed = tenant.mailbox_of(CAROL).len();
    assert_eq!(landed, summary.messages, "every message once");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("completed"), "{stdout}");

    // The journal tells the steps, intent and outcome.
    let audit = ferry_tests::ferry(tenant.home.path())
        .arg("audit")
        .arg("--journal")
        .arg(tenant.home.path().join("journal"))
        .output()
        .expect("audit");
    let audit = String::from_utf8_lossy(&audit.stdout);
    // (A step whose run was killed inside it has its intent and no outcome: the run after
    // asked the tenant and found it done.)
    assert!(
        (audit.contains(&format!("created the user {CAROL}"))
            || audit.contains(&format!("create the user {CAROL}: stopped inside the step")))
            && audit.contains(&format!("licence of {sku} to {CAROL}")),
        "{audit}"
    );

    // Run again: nothing more is created or assigned.
    tenant.migrate(&from, &to, "journal", &args);
    assert_eq!(tenant.provisioned(CAROL), (1, vec![sku]));
}

#[test]
fn no_free_licence_is_a_clear_error_and_nothing_is_copied() {
    let tenant = Tenant::start(None, |_| {});
    // Alice holds the only unit.
    tenant
        .emulator
        .with_world(|world| world.tenant.skus[0].enabled = 1);
    let source = tenant.home.path().join("source");
    generate(
        &source,
        &SampleSpec {
            messages: 5,
            seed: 18,
        },
    )
    .expect("sample");
    let from = format!("maildir:{}", source.display());
    let output = tenant
        .command(
            &from,
            &uri_of(&tenant, CAROL),
            "journal",
            &["--create-target-mailbox", "enterprisepack"],
        )
        .output()
        .expect("ferry");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("no free licence of ENTERPRISEPACK"),
        "{stderr}"
    );
    // Nothing was created: no user without a licence is left behind.
    assert_eq!(tenant.provisioned(CAROL), (0, Vec::new()));

    // An unknown SKU is named with the ones the tenant has.
    let output = tenant
        .command(
            &from,
            &uri_of(&tenant, "dave@contoso.test"),
            "journal2",
            &["--create-target-mailbox", "SPE_E5"],
        )
        .output()
        .expect("ferry");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no licence SKU SPE_E5") && stderr.contains("ENTERPRISEPACK"),
        "{stderr}"
    );
    assert_eq!(tenant.provisioned("dave@contoso.test").0, 0);
}
