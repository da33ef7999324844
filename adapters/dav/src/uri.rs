//! `dav://USER@HOST[:PORT]/PATH` (http) and `davs://USER@HOST[:PORT]/PATH` (https): a
//! CalDAV/CardDAV account. `PATH` is where its collections are (a home set, e.g. Radicale's
//! `/alice/`); without one, the server is asked (RFC 6764: `/.well-known/caldav` and
//! `/.well-known/carddav`, then the principal's home sets). Basic authentication as USER with
//! the side's password, or `?auth=bearer` to send the password as a bearer token;
//! `?connections=N` requests in flight at once (default 4: Radicale serialises its writes and
//! slows down under many at once). A password
//! in the URI is refused: it comes from a file, a variable or a command.

use std::net::IpAddr;

use ferry_engine::store::StoreError;
use url::Url;

/// How the password is presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Basic,
    Bearer,
}

/// A parsed `dav:` or `davs:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DavUri {
    /// `http://HOST:PORT` or `https://HOST:PORT`.
    pub root: String,
    pub user: String,
    /// Where the collections are, `/`-terminated; `None`: discovered.
    pub home: Option<String>,
    pub auth: Auth,
    /// Plain http to a host that is not this machine.
    pub plaintext_off_host: bool,
    /// Requests in flight at once.
    pub connections: usize,
}

impl DavUri {
    pub fn parse(uri: &str) -> Result<DavUri, StoreError> {
        let bad = |why: &str| {
            StoreError::Permanent(format!(
                "{}: {why} (dav://USER@HOST[:PORT]/PATH or davs://…)",
                uri.split('@').next_back().unwrap_or(uri)
            ))
        };
        let url = Url::parse(uri).map_err(|e| bad(&e.to_string()))?;
        let scheme = match url.scheme() {
            "dav" => "http",
            "davs" => "https",
            _ => return Err(bad("not a dav: or davs: URI")),
        };
        if url.password().is_some() {
            return Err(bad(
                "no password in the URI: give it by file, variable or command",
            ));
        }
        let user = percent_encoding::percent_decode_str(url.username())
            .decode_utf8_lossy()
            .into_owned();
        if user.is_empty() {
            return Err(bad("give the user: dav://USER@HOST/…"));
        }
        let host = url.host_str().ok_or_else(|| bad("no host"))?;
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        let mut auth = Auth::Basic;
        let mut connections = 4;
        for (name, value) in url.query_pairs() {
            match (name.as_ref(), value.as_ref()) {
                ("auth", "basic") => auth = Auth::Basic,
                ("auth", "bearer") => auth = Auth::Bearer,
                ("connections", n) => {
                    connections = n
                        .parse()
                        .ok()
                        .filter(|n| (1..=64).contains(n))
                        .ok_or_else(|| bad("connections is from 1 to 64"))?
                }
                (other, _) => return Err(bad(&format!("unknown option {other}"))),
            }
        }
        let path = url.path();
        let home = (path != "/" && !path.is_empty()).then(|| {
            if path.ends_with('/') {
                path.to_string()
            } else {
                format!("{path}/")
            }
        });
        let loopback = host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        Ok(DavUri {
            root: format!("{scheme}://{host}{port}"),
            user,
            home,
            auth,
            plaintext_off_host: scheme == "http" && !loopback,
            connections,
        })
    }

    /// The URI as the journal and reports show it.
    pub fn describe(&self) -> String {
        let scheme = if self.root.starts_with("https") {
            "davs"
        } else {
            "dav"
        };
        let host = self.root.split_once("://").map_or("", |(_, h)| h);
        format!(
            "{scheme}://{}@{host}{}",
            self.user,
            self.home.as_deref().unwrap_or("/")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse_and_refuse_what_they_should() {
        let uri = DavUri::parse("dav://alice@127.0.0.1:5232/alice").expect("parses");
        assert_eq!(uri.root, "http://127.0.0.1:5232");
        assert_eq!(uri.home.as_deref(), Some("/alice/"));
        assert!(!uri.plaintext_off_host);
        assert_eq!(uri.describe(), "dav://alice@127.0.0.1:5232/alice/");
        let far = DavUri::parse("dav://bob@dav.example.com/").expect("parses");
        assert!(far.plaintext_off_host && far.home.is_none());
        let tls =
            DavUri::parse("davs://bob%40example.com@dav.example.com/?auth=bearer").expect("parses");
        assert_eq!(
            (tls.user.as_str(), tls.auth),
            ("bob@example.com", Auth::Bearer)
        );
        let refused = DavUri::parse("dav://alice:hunter2@host/").expect_err("a password");
        assert!(!refused.to_string().contains("hunter2"));
        assert!(DavUri::parse("dav://host/").is_err());
        assert!(DavUri::parse("imap://a@host/").is_err());
        assert_eq!(uri.connections, 4);
        let wide = DavUri::parse("dav://a@host/?connections=16").expect("parses");
        assert_eq!(wide.connections, 16);
        assert!(DavUri::parse("dav://a@host/?connections=0").is_err());
    }
}
