//! An app that proves itself with a certificate instead of a secret: the real binary signs a
//! client assertion with the key from the secret file (a PEM with the certificate and its key)
//! and migrates into the emulated tenant, whose app registration knows only the certificate;
//! a key the tenant does not know is refused in the platform's words and nothing of the key
//! is shown; and Microsoft's own azure-identity (`CertificateCredential`) signs in to the same
//! emulator, so the emulator checks assertions as the platform does, not as ferry writes them.

use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_sample::{SampleSpec, generate};
use ferry_tests::graph::{Tenant, UPN, sdk_python, self_signed};

/// The key and the certificate in one PEM, as the secret file holds them.
fn combined(dir: &Path, (cert, key): &(PathBuf, PathBuf), name: &str) -> PathBuf {
    let path = dir.join(name);
    let text =
        std::fs::read_to_string(key).expect("key") + &std::fs::read_to_string(cert).expect("cert");
    std::fs::write(&path, text).expect("pem");
    path
}

#[test]
fn a_certificate_signs_the_apps_assertions_and_an_unknown_one_is_refused() {
    let keys = tempfile::tempdir().expect("temp dir");
    let app = self_signed(keys.path(), "ferry-app", "rsa:2048", None);
    let stranger = self_signed(keys.path(), "stranger", "rsa:2048", None);
    let registered = std::fs::read_to_string(&app.0).expect("cert");
    let tenant = Tenant::start(None, |config| {
        // The app registration knows this certificate and no secret.
        config.client_secret = String::new();
        config.client_certificate = Some(registered);
    });
    let source = tenant.home.path().join("source");
    let summary = generate(
        &source,
        &SampleSpec {
            messages: 30,
            seed: 16,
        },
    )
    .expect("sample");
    let from = format!("maildir:{}", source.display());
    let pem = combined(keys.path(), &app, "app.pem");

    let run = |pem: &Path, journal: &str| {
        tenant
            .command_with(pem, &from, &tenant.uri(), journal, &[])
            .output()
            .expect("run ferry")
    };

    let done = run(&pem, "in");
    assert_eq!(
        done.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(
        tenant.mailbox().len(),
        summary.messages,
        "every message, once"
    );

    // A secret as the credential: the tenant has none, and says so.
    let refused = run(&tenant.home.path().join("secret"), "secret");
    assert_ne!(refused.status.code(), Some(0));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("AADSTS7000215"), "{said}");

    // A certificate the tenant does not know: refused in the platform's words, no key shown.
    let unknown = combined(keys.path(), &stranger, "stranger.pem");
    let refused = run(&unknown, "stranger");
    assert_ne!(refused.status.code(), Some(0));
    let said = String::from_utf8_lossy(&refused.stderr).to_string()
        + &String::from_utf8_lossy(&refused.stdout);
    assert!(said.contains("AADSTS700027"), "{said}");
    let key_text = std::fs::read_to_string(&stranger.1).expect("key");
    let key_line = key_text.lines().nth(1).expect("a line of the key");
    assert!(
        !said.contains(key_line) && !said.contains("PRIVATE KEY"),
        "{said}"
    );
    assert_eq!(
        tenant.mailbox().len(),
        summary.messages,
        "nothing more written"
    );
}

#[test]
fn microsofts_azure_identity_signs_in_with_a_certificate() {
    let python = sdk_python();
    let keys = tempfile::tempdir().expect("temp dir");
    let tls = self_signed(
        keys.path(),
        "127.0.0.1",
        "ec -pkeyopt ec_paramgen_curve:prime256v1",
        Some("subjectAltName=IP:127.0.0.1"),
    );
    let app = self_signed(keys.path(), "sdk-app", "rsa:2048", None);
    let registered = std::fs::read_to_string(&app.0).expect("cert");
    let tenant = Tenant::start(Some(tls.clone()), |config| {
        config.client_secret = String::new();
        config.client_certificate = Some(registered);
    });
    let pem = combined(keys.path(), &app, "sdk-app.pem");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("graph_sdk/cert_check.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(tenant.emulator.url())
        .args(["contoso", "app-1"])
        .arg(&pem)
        .arg(&tls.0)
        .arg(UPN)
        .output()
        .expect("run the SDK script");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(seen["token"], true, "{seen}");
    assert!(seen["folders"].as_u64() >= Some(5), "{seen}");
}
