//! Real CalDAV/CardDAV servers for the tests: Radicale (Debian's package, installed by
//! scripts/test) on a loopback port with its own storage directory, any user accepted (`auth
//! type = none`, each user owning `/USER/`), and Xandikos (`--defaults`: one principal,
//! `/user/`, with its calendar home `/user/calendars/` and address book home
//! `/user/contacts/`, no authentication), each stopped when dropped; and a small HTTP/1.1
//! client of the tests' own, so that what a server holds is read without ferry.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One Radicale server.
#[derive(Debug)]
pub struct Radicale {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Radicale {
    /// Starts one, ready to answer.
    pub fn start() -> Radicale {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            format!(
                "[server]\nhosts = 127.0.0.1:{port}\n[storage]\nfilesystem_folder = {}\n\
                 [auth]\ntype = none\n[logging]\nlevel = warning\n",
                dir.path().join("collections").display()
            ),
        )
        .expect("config");
        let radicale = ["/usr/bin/radicale", "/usr/local/bin/radicale"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .expect("radicale is missing: scripts/test installs it (apt-get install radicale)");
        let child = Command::new(radicale)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start radicale");
        let server = Radicale { port, dir, child };
        listening(port, "radicale");
        server
    }

    /// `dav://USER@127.0.0.1:PORT/USER/`.
    pub fn uri(&self, user: &str) -> String {
        format!("dav://{user}@127.0.0.1:{}/{user}/", self.port)
    }

    /// A request as `user` (any password): status, ETag, body.
    pub fn request(
        &self,
        user: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, Option<String>, String) {
        request(self.port, user, method, path, headers, body)
    }

    /// Makes calendar `/USER/NAME/` with a display name, a colour and its components.
    pub fn mkcalendar(&self, user: &str, name: &str, display: &str, components: &[&str]) {
        let comps: String = components
            .iter()
            .map(|c| format!("<C:comp name=\"{c}\"/>"))
            .collect();
        let body = format!(
            r#"<?xml version="1.0" encoding="utf-8"?><C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:A="http://apple.com/ns/ical/"><D:set><D:prop><D:displayname>{display}</D:displayname><A:calendar-color>#3366FF</A:calendar-color><C:supported-calendar-component-set>{comps}</C:supported-calendar-component-set></D:prop></D:set></C:mkcalendar>"#
        );
        let (status, _, said) =
            self.request(user, "MKCALENDAR", &format!("/{user}/{name}/"), &[], &body);
        assert_eq!(status, 201, "{said}");
    }

    /// Makes address book `/USER/NAME/` with a display name.
    pub fn mkaddressbook(&self, user: &str, name: &str, display: &str) {
        let book = format!(
            r#"<?xml version="1.0"?><D:mkcol xmlns:D="DAV:" xmlns:R="urn:ietf:params:xml:ns:carddav"><D:set><D:prop><D:resourcetype><D:collection/><R:addressbook/></D:resourcetype><D:displayname>{display}</D:displayname></D:prop></D:set></D:mkcol>"#
        );
        let (status, _, said) =
            self.request(user, "MKCOL", &format!("/{user}/{name}/"), &[], &book);
        assert_eq!(status, 201, "{said}");
    }

    /// Sets properties of collection `/USER/NAME/` as a client would: `(element, value)` with
    /// the prefixes `D:` (DAV), `C:` (CalDAV), `R:` (CardDAV) and `A:` (Apple).
    pub fn proppatch(&self, user: &str, name: &str, props: &[(&str, &str)]) {
        let set: String = props
            .iter()
            .map(|(element, value)| format!("<{element}>{value}</{element}>"))
            .collect();
        let body = format!(
            r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:R="urn:ietf:params:xml:ns:carddav" xmlns:A="http://apple.com/ns/ical/"><D:set><D:prop>{set}</D:prop></D:set></D:propertyupdate>"#
        );
        let path = format!("/{user}/{name}/");
        let (status, _, said) = self.request(
            user,
            "PROPPATCH",
            &path,
            &[("Content-Type", "application/xml")],
            &body,
        );
        assert_eq!(status, 207, "PROPPATCH {path}: {said}");
    }

    /// The display name, colour and description of collection `/USER/NAME/`, as read with
    /// a PROPFIND of the tests' own.
    pub fn collection_props(&self, user: &str, name: &str) -> [Option<String>; 3] {
        let body = r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:R="urn:ietf:params:xml:ns:carddav" xmlns:A="http://apple.com/ns/ical/"><D:prop><D:displayname/><A:calendar-color/><C:calendar-description/><R:addressbook-description/></D:prop></D:propfind>"#;
        let path = format!("/{user}/{name}/");
        let (status, _, said) = self.request(
            user,
            "PROPFIND",
            &path,
            &[("Depth", "0"), ("Content-Type", "application/xml")],
            body,
        );
        assert_eq!(status, 207, "PROPFIND {path}: {said}");
        let document = roxmltree::Document::parse(&said).expect("a multistatus");
        let found = |namespace: &str, local: &str| {
            document
                .descendants()
                .find(|n| n.has_tag_name((namespace, local)))
                .and_then(|n| n.text())
                .map(str::to_string)
                .filter(|t| !t.is_empty())
        };
        [
            found("DAV:", "displayname"),
            found("http://apple.com/ns/ical/", "calendar-color"),
            found("urn:ietf:params:xml:ns:caldav", "calendar-description")
                .or_else(|| found("urn:ietf:params:xml:ns:carddav", "addressbook-description")),
        ]
    }

    /// Stores `text` at `path` (created or replaced): its new ETag.
    pub fn put(&self, user: &str, path: &str, text: &str) -> String {
        let content_type = if text.starts_with("BEGIN:VCARD") {
            "text/vcard"
        } else {
            "text/calendar"
        };
        let (status, etag, said) =
            self.request(user, "PUT", path, &[("Content-Type", content_type)], text);
        assert!(
            status == 201 || status == 204,
            "PUT {path}: {status} {said}"
        );
        etag.unwrap_or_default()
    }
}

/// The hrefs of a collection's items (`.ics`, `.vcf`), as a PROPFIND lists them; none when
/// the collection is not there.
pub fn item_paths(port: u16, user: &str, collection: &str) -> Vec<String> {
    let body = r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></D:propfind>"#;
    let (status, _, listing) = request(
        port,
        user,
        "PROPFIND",
        collection,
        &[("Depth", "1"), ("Content-Type", "application/xml")],
        body,
    );
    if status == 404 {
        return Vec::new();
    }
    assert_eq!(status, 207, "{listing}");
    let mut paths: Vec<String> = Vec::new();
    for piece in listing.split("href>").skip(1) {
        if let Some(href) = piece.split('<').next()
            && (href.ends_with(".ics") || href.ends_with(".vcf"))
        {
            let path = href
                .split_once("://")
                .map_or(href.to_string(), |(_, rest)| {
                    rest.find('/')
                        .map_or(String::new(), |i| rest[i..].to_string())
                });
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
    }
    paths
}

/// One Xandikos server.
#[derive(Debug)]
pub struct Xandikos {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Xandikos {
    /// Starts one with its default collections, ready to answer.
    pub fn start() -> Xandikos {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let xandikos = ["/usr/bin/xandikos", "/usr/local/bin/xandikos"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .expect("xandikos is missing: scripts/test installs it (apt-get install xandikos)");
        let child = Command::new(xandikos)
            .arg("-d")
            .arg(dir.path().join("data"))
            .args(["-l", "127.0.0.1", "-p", &port.to_string(), "--defaults"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start xandikos");
        let server = Xandikos { port, dir, child };
        listening(port, "xandikos");
        server
    }

    /// `dav://user@127.0.0.1:PORT/`: its collections found from the principal.
    pub fn uri(&self) -> String {
        format!("dav://user@127.0.0.1:{}/", self.port)
    }

    /// A request: status, ETag, body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, Option<String>, String) {
        request(self.port, "user", method, path, headers, body)
    }
}

impl Drop for Xandikos {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Radicale {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (at most 20 s) until a server just started answers on `port`.
fn listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One HTTP/1.1 request to 127.0.0.1:`port` (Basic auth as `user`, connection closed after).
pub fn request(
    port: u16,
    user: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Option<String>, String) {
    use base64::Engine as _;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:x"));
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic {auth}\r\n\
         Connection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write");
    stream.write_all(body.as_bytes()).expect("write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read");
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(answer.len());
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let rest = answer.get(split + 4..).unwrap_or_default();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let etag = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("etag")
            .then(|| value.trim().to_string())
    });
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    (status, etag, String::from_utf8_lossy(&body).into_owned())
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok());
        let tail = &rest[end + 2..];
        let Some(size) = size.filter(|&n| n > 0 && tail.len() >= n) else {
            break;
        };
        out.extend_from_slice(&tail[..size]);
        rest = tail[size..].strip_prefix(b"\r\n").unwrap_or(&tail[size..]);
    }
    out
}

/// `ferry migrate` between two DAV accounts, the journal in `home` and a password file
/// beside it (these servers take any password).
pub fn migrate_command(home: &std::path::Path, from: &str, to: &str) -> Command {
    let secret = home.join("secret");
    std::fs::write(&secret, "x\n").expect("secret");
    let mut command = crate::ferry(home);
    command
        .args(["migrate", "--from", from, "--to", to, "--journal"])
        .arg(home.join("journal"))
        .arg("--from-password-file")
        .arg(&secret)
        .arg("--to-password-file")
        .arg(&secret);
    command
}

/// [`migrate_command`] with `extra` options, run to its end: exit code and output.
pub fn migrate(
    home: &std::path::Path,
    from: &str,
    to: &str,
    extra: &[&str],
) -> (Option<i32>, String) {
    let output = migrate_command(home, from, to)
        .args(extra)
        .output()
        .expect("run ferry");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}
