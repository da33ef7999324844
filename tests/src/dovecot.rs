//! Real Dovecot servers on loopback for the IMAP tests, and a small blocking IMAP client that
//! shares no code with ferry's adapter, so what it lists is an independent view of a mailbox.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::Tree;

/// The user and password every test instance has.
pub const USER: &str = "ferry";
/// Its password.
pub const PASSWORD: &str = "secret";

/// A Dovecot instance started by `scripts/dovecot-instance`, stopped (by its pid) on drop.
#[derive(Debug)]
pub struct Dovecot {
    dir: PathBuf,
    port: u16,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/dovecot-instance")
}

/// Two free loopback ports in a row (`--tls` uses PORT and PORT+1).
fn free_port() -> u16 {
    for _ in 0..100 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = listener.local_addr().expect("local address").port();
        drop(listener);
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two free ports in a row on 127.0.0.1");
}

impl Dovecot {
    /// Starts an instance in `dir` (which must not exist yet) with `options` of
    /// `dovecot-instance start`.
    pub fn start(dir: &Path, options: &[&str]) -> Dovecot {
        if let Some(parent) = dir.parent() {
            // The dovecot user must be able to reach the mail directory.
            let _ = Command::new("chmod").arg("755").arg(parent).status();
        }
        Dovecot {
            dir: dir.to_path_buf(),
            port: start_instance(&script(), dir, options),
        }
    }

    /// Its IMAP port (STARTTLS when started with `--tls`; implicit TLS on `port() + 1`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The plaintext URI of the test user.
    pub fn uri(&self) -> String {
        format!("imap://{USER}@127.0.0.1:{}/?tls=none", self.port)
    }

    /// Bytes the server read and wrote in the sessions ended so far, from its log.
    pub fn wire(&self) -> (u64, u64) {
        let output = Command::new(script())
            .arg("wire")
            .arg(&self.dir)
            .output()
            .expect("running dovecot-instance wire");
        let text = String::from_utf8_lossy(&output.stdout);
        let mut figures = (0, 0);
        for word in text.split_whitespace() {
            if let Some(n) = word.strip_prefix("in=") {
                figures.0 = n.parse().unwrap_or(0);
            }
            if let Some(n) = word.strip_prefix("out=") {
                figures.1 = n.parse().unwrap_or(0);
            }
        }
        figures
    }

    /// A logged-in client session.
    pub fn client(&self) -> Client {
        Client::connect(self.port)
    }

    /// A session of another user of the instance (`--user NAME:PASSWORD`).
    pub fn client_as(&self, user: &str, password: &str) -> Client {
        Client::connect_as(self.port, user, password)
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        stop_instance(&script(), &self.dir);
    }
}

/// `SCRIPT start DIR PORT OPTIONS...` of an instance script (`scripts/dovecot-instance`,
/// `scripts/courier-instance`) on a free port, which must succeed; the port.
pub(crate) fn start_instance(script: &Path, dir: &Path, options: &[&str]) -> u16 {
    let port = free_port();
    let output = Command::new(script)
        .arg("start")
        .arg(dir)
        .arg(port.to_string())
        .args(options)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{} start failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    port
}

/// `SCRIPT stop DIR`, whatever its outcome (an instance may be gone already).
pub(crate) fn stop_instance(script: &Path, dir: &Path) {
    let _ = Command::new(script).arg("stop").arg(dir).status();
}

/// A blocking IMAP client for tests: one command at a time, untagged responses kept raw.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    tag: u32,
}

/// One untagged response: its text with each literal replaced by `{}` and the literals.
#[derive(Debug, Clone)]
pub struct Untagged {
    pub text: String,
    pub literals: Vec<Vec<u8>>,
}

impl Client {
    /// Connects and logs in as the test user.
    pub fn connect(port: u16) -> Client {
        Client::connect_as(port, USER, PASSWORD)
    }

    /// A session logged in as `user`.
    pub fn connect_as(port: u16, user: &str, password: &str) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the server");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("read timeout");
        let writer = stream.try_clone().expect("clone stream");
        let mut client = Client {
            reader: BufReader::new(stream),
            writer,
            tag: 0,
        };
        let mut greeting = String::new();
        client.reader.read_line(&mut greeting).expect("greeting");
        assert!(greeting.starts_with("* OK"), "greeting: {greeting}");
        client.ok(&format!("LOGIN {user} {password}"));
        client
    }

    /// Runs a command; returns its untagged responses and whether it ended with OK.
    pub fn run(&mut self, command: &str, literal: Option<&[u8]>) -> (Vec<Untagged>, String) {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        match literal {
            Some(data) => {
                write!(self.writer, "{tag} {command} {{{}}}\r\n", data.len()).expect("write");
                let mut line = String::new();
                self.reader.read_line(&mut line).expect("continuation");
                assert!(line.starts_with('+'), "{command}: no continuation: {line}");
                self.writer.write_all(data).expect("write literal");
                self.writer.write_all(b"\r\n").expect("write");
            }
            None => write!(self.writer, "{tag} {command}\r\n").expect("write"),
        }
        let mut untagged = Vec::new();
        loop {
            let (text, literals) = self.read_response();
            if let Some(rest) = text.strip_prefix(&format!("{tag} ")) {
                return (untagged, rest.to_owned());
            }
            if let Some(rest) = text.strip_prefix("* ") {
                untagged.push(Untagged {
                    text: rest.to_owned(),
                    literals,
                });
            }
        }
    }

    /// Runs a command that must succeed.
    pub fn ok(&mut self, command: &str) -> Vec<Untagged> {
        let (untagged, status) = self.run(command, None);
        assert!(status.starts_with("OK"), "{command}: {status}");
        untagged
    }

    fn read_response(&mut self) -> (String, Vec<Vec<u8>>) {
        let mut text = String::new();
        let mut literals = Vec::new();
        loop {
            let mut line = Vec::new();
            self.reader.read_until(b'\n', &mut line).expect("read line");
            assert!(!line.is_empty(), "the server closed the connection");
            let line = String::from_utf8_lossy(&line).trim_end().to_owned();
            if let Some(open) = line.rfind('{')
                && line.ends_with('}')
                && let Ok(n) = line[open + 1..line.len() - 1].trim_end_matches('+').parse()
            {
                text.push_str(&line[..open]);
                text.push_str("{}");
                let mut data = vec![0u8; n];
                self.reader.read_exact(&mut data).expect("literal");
                literals.push(data);
                continue;
            }
            text.push_str(&line);
            return (text, literals);
        }
    }

    /// Appends a message with flags (IMAP syntax, e.g. `\Seen $Label1`).
    pub fn append(&mut self, folder: &str, flags: &str, message: &[u8]) {
        let (_, status) = self.run(&format!("APPEND \"{folder}\" ({flags})"), Some(message));
        assert!(status.starts_with("OK"), "APPEND {folder}: {status}");
    }

    /// Every selectable folder's name as the server writes it.
    pub fn folders(&mut self) -> Vec<String> {
        let mut names = Vec::new();
        for response in self.ok("LIST \"\" \"*\"") {
            if !response.text.starts_with("LIST ") || response.text.contains("\\Noselect") {
                continue;
            }
            let name = match response.literals.first() {
                Some(literal) => String::from_utf8_lossy(literal).into_owned(),
                None => {
                    // LIST (attributes) "delimiter" name
                    let after = response.text.split_once(") ").map_or("", |(_, r)| r);
                    let raw = match after.strip_prefix("NIL ") {
                        Some(rest) => rest,
                        None => after.get(4..).unwrap_or(""),
                    };
                    raw.trim_matches('"')
                        .replace("\\\"", "\"")
                        .replace("\\\\", "\\")
                }
            };
            names.push(name);
        }
        names.sort();
        names
    }

    /// The folder's UIDVALIDITY.
    pub fn uid_validity(&mut self, folder: &str) -> u32 {
        let responses = self.ok(&format!("STATUS \"{folder}\" (UIDVALIDITY)"));
        responses
            .iter()
            .find_map(|r| {
                let at = r.text.find("UIDVALIDITY ")?;
                r.text[at + 12..]
                    .trim_end_matches(')')
                    .split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            })
            .expect("UIDVALIDITY in STATUS")
    }

    /// (UID, flags, bytes) of every message of a folder.
    pub fn messages(&mut self, folder: &str) -> Vec<(u32, Vec<String>, Vec<u8>)> {
        let selected = self.ok(&format!("EXAMINE \"{folder}\""));
        let exists = selected
            .iter()
            .find_map(|r| r.text.strip_suffix(" EXISTS")?.parse::<u32>().ok())
            .unwrap_or(0);
        if exists == 0 {
            return Vec::new();
        }
        let mut out = Vec::new();
        for response in self.ok("UID FETCH 1:* (UID FLAGS BODY.PEEK[])") {
            if !response.text.contains("FETCH (") {
                continue;
            }
            let uid = response
                .text
                .split("UID ")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse().ok())
                .expect("UID in FETCH");
            let flags = response
                .text
                .split("FLAGS (")
                .nth(1)
                .and_then(|rest| rest.split(')').next())
                .unwrap_or("")
                .split_whitespace()
                .filter(|f| *f != "\\Recent")
                .map(str::to_owned)
                .collect();
            let body = response.literals.into_iter().next().expect("a body");
            out.push((uid, flags, body));
        }
        out
    }

    /// The whole account: folder (decoded) → sorted (blake3 of the bytes, flags in Maildir
    /// letters and keyword names), comparable with [`crate::maildir_tree`].
    pub fn tree(&mut self) -> Tree {
        let mut tree = Tree::new();
        for folder in self.folders() {
            let mut items: Vec<(String, Vec<String>)> = self
                .messages(&folder)
                .into_iter()
                .map(|(_, flags, body)| {
                    let mut flags: Vec<String> = flags
                        .into_iter()
                        .map(|f| match f.as_str() {
                            "\\Seen" => "S".to_owned(),
                            "\\Answered" => "R".to_owned(),
                            "\\Flagged" => "F".to_owned(),
                            "\\Draft" => "D".to_owned(),
                            "\\Deleted" => "T".to_owned(),
                            _ => f,
                        })
                        .collect();
                    flags.sort();
                    (blake3::hash(&body).to_hex().to_string(), flags)
                })
                .collect();
            items.sort();
            let decoded = ferry_names::mutf7::decode(&folder).unwrap_or(folder);
            tree.insert(decoded, items);
        }
        tree
    }
}

/// Messages in a tree, duplicates included.
pub fn count(tree: &Tree) -> usize {
    tree.values().map(Vec::len).sum()
}
