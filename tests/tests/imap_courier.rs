//! IMAP against a real Courier-IMAP 5.0 on loopback: the Debian server that offers
//! UTF8=ACCEPT (RFC 6855), which Dovecot 2.3 does not. Courier also lacks LITERAL+,
//! MULTIAPPEND, CONDSTORE, QRESYNC, MOVE and LIST-STATUS and keeps folders under `INBOX.`, so
//! the same runs go through those fallbacks. Results are read with the independent test
//! client, and what ferry sent Courier through a recording proxy.

use std::path::Path;

use ferry_tests::courier::Courier;
use ferry_tests::dovecot::{Client, Dovecot, USER};
use ferry_tests::imap::{copied, migrate, ok};
use ferry_tests::proxy::Proxy;

/// `ferry migrate` from `from` to `to` with the journal `home/journal`, which must succeed;
/// its standard output.
fn run(home: &Path, from: &str, to: &str, journal: &str) -> String {
    ok(&migrate(home, from, to, &home.join(journal), &[]))
}

/// Each of `folders`' messages as (bytes, flags), sorted.
fn contents(client: &mut Client, folders: &[&str]) -> Vec<Vec<(Vec<u8>, Vec<String>)>> {
    folders
        .iter()
        .map(|folder| {
            let mut messages: Vec<(Vec<u8>, Vec<String>)> = client
                .messages(folder)
                .into_iter()
                .map(|(_, mut flags, bytes)| {
                    flags.sort();
                    (bytes, flags)
                })
                .collect();
            messages.sort();
            messages
        })
        .collect()
}

// The same three folders as Dovecot (delimiter "/") and Courier (under "INBOX.", delimiter
// ".") name them in modified UTF-7: "Entwürfe" and "Entwürfe/Ünterordner".
const ON_DOVECOT: [&str; 3] = ["INBOX", "Entw&APw-rfe", "Entw&APw-rfe/&ANw-nterordner"];
const ON_COURIER: [&str; 3] = [
    "INBOX",
    "INBOX.Entw&APw-rfe",
    "INBOX.Entw&APw-rfe.&ANw-nterordner",
];

// Goal: with a server offering UTF8=ACCEPT, ferry enables it and sends folder names in UTF-8
// and messages as `UTF8 (~{n})`; the folders and every byte and flag arrive, either way (Dovecot
// → Courier, Courier → Dovecot), a rerun copies nothing, and with `?utf8=no` the modified
// UTF-7 fallback gives the same mailbox.
// Method: a Dovecot source with non-ASCII folders and messages whose headers hold raw UTF-8
// (an internationalised address and subject); Courier behind a recording proxy; independent
// listings of every folder on both servers; then Courier as the source into a new Dovecot.
#[test]
fn utf8_accept_carries_names_and_messages_as_they_are_both_ways() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path();
    let _ = std::process::Command::new("chmod")
        .arg("755")
        .arg(home)
        .status();
    let source = Dovecot::start(&home.join("source"), &[]);
    let mut user = source.client();
    user.ok(&format!("CREATE \"{}\"", ON_DOVECOT[1]));
    user.ok(&format!("CREATE \"{}\"", ON_DOVECOT[2]));
    let eai = "From: Jörg Müller <jörg@bücher.example>\r\nTo: ferry@example.com\r\n\
               Subject: Grüße aus Köln\r\nMessage-ID: <grüße@bücher.example>\r\n\r\nHallo!\r\n";
    user.append(ON_DOVECOT[0], "\\Seen", eai.as_bytes());
    user.append(
        ON_DOVECOT[1],
        "\\Flagged $Label1",
        b"From: a@example.com\r\nSubject: plain\r\n\r\nASCII only\r\n",
    );
    let sub = "From: Zoë <zoe@example.com>\r\nSubject: Überweisung — Entwurf\r\n\r\nText.\r\n";
    user.append(ON_DOVECOT[2], "\\Draft", sub.as_bytes());
    let expected = contents(&mut user, &ON_DOVECOT);
    assert_eq!(expected.iter().map(Vec::len).sum::<usize>(), 3);

    let courier = Courier::start(&home.join("courier"));
    let proxy = Proxy::start(courier.port());
    let through = format!("imap://{USER}@127.0.0.1:{}/?tls=none", proxy.port);
    let first = run(home, &source.uri(), &through, "j1");
    assert_eq!(copied(&first), 3, "{first}");
    assert_eq!(contents(&mut courier.client(), &ON_COURIER), expected);
    // What went to Courier: UTF8=ACCEPT enabled, names in UTF-8 (never in modified UTF-7),
    // messages with UTF-8 headers as literal8 in a UTF8 data item.
    assert!(proxy.client_sent(b"UTF8=ACCEPT"));
    assert!(proxy.client_sent("\"INBOX.Entwürfe.Ünterordner\"".as_bytes()));
    assert!(!proxy.client_sent(b"&APw-"));
    assert!(proxy.client_sent(b"UTF8 (~{"));
    let again = run(home, &source.uri(), &through, "j1");
    assert_eq!(copied(&again), 0, "{again}");
    assert_eq!(contents(&mut courier.client(), &ON_COURIER), expected);

    // Courier as the source: it lists names in UTF-8, and they land as Dovecot names them.
    let back = Dovecot::start(&home.join("back"), &[]);
    let returned = run(home, &courier.uri(), &back.uri(), "j2");
    assert_eq!(copied(&returned), 3, "{returned}");
    assert_eq!(contents(&mut back.client(), &ON_DOVECOT), expected);

    // Not enabled when the URI says utf8=no: modified UTF-7 and plain literals, same mailbox.
    let plain = Courier::start(&home.join("plain"));
    let proxy = Proxy::start(plain.port());
    let through = format!("imap://{USER}@127.0.0.1:{}/?tls=none&utf8=no", proxy.port);
    run(home, &source.uri(), &through, "j3");
    assert_eq!(contents(&mut plain.client(), &ON_COURIER), expected);
    assert!(!proxy.client_sent(b"UTF8=ACCEPT") && !proxy.client_sent(b"UTF8 (~{"));
    assert!(proxy.client_sent(b"INBOX.Entw&APw-rfe"));
}
