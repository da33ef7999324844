//! The store's URI, `imap://user@host:port/?tls=...&auth=...&connections=...&timeout=...` or
//! `imaps://...`: parsed into an [`Endpoint`] and a pool size, and [`redact`]ed (a password
//! never shown) in every message that names it. No I/O but the TLS set-up's (`crate::tls`).

use std::time::Duration;

use crate::ImapOptions;
use crate::session::{AuthMethod, Endpoint, Security};
use crate::tls::tls_config;

/// The URI with any password in it replaced by `****`, for messages. A string that does not
/// parse as a URI loses whatever stands between `scheme://user:` and `@`.
pub fn redact(uri: &str) -> String {
    if let Ok(mut url) = url::Url::parse(uri) {
        if url.password().is_some() && url.set_password(Some("****")).is_ok() {
            return url.to_string();
        }
        if url.password().is_none() {
            return uri.to_owned();
        }
    }
    let Some(start) = uri.find("://").map(|at| at + 3) else {
        return uri.to_owned();
    };
    let authority_end = uri[start..]
        .find(['/', '?', '#'])
        .map_or(uri.len(), |at| start + at);
    let Some(at) = uri[start..authority_end].rfind('@').map(|at| start + at) else {
        return uri.to_owned();
    };
    match uri[start..at].find(':').map(|colon| start + colon) {
        Some(colon) => format!("{}:****{}", &uri[..colon], &uri[at..]),
        None => uri.to_owned(),
    }
}

/// Parses `imap://user@host:port/?tls=none&auth=xoauth2&connections=4&timeout=60` or
/// `imaps://...` into an endpoint.
pub fn endpoint(uri: &str, options: &ImapOptions) -> Result<Endpoint, String> {
    let url = url::Url::parse(uri);
    // Every message below names the URI: never with a password someone put in it.
    let uri = &redact(uri);
    let url = url.map_err(|error| format!("{uri}: not a URI: {error}"))?;
    let mut security = match url.scheme() {
        "imaps" => Security::Implicit,
        "imap" => Security::StartTls,
        other => return Err(format!("{uri}: {other}: is not imap: or imaps:")),
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("{uri}: give a host, e.g. imaps://alice@mail.example.com"))?
        .to_owned();
    let user = percent_encoding::percent_decode_str(url.username())
        .decode_utf8()
        .map_err(|_| format!("{uri}: the user name is not UTF-8"))?
        .into_owned();
    if user.is_empty() {
        return Err(format!("{uri}: give a user, e.g. imaps://alice@{host}"));
    }
    if url.password().is_some() {
        return Err(format!(
            "{uri}: never put a password in the URI; use --from-password-file / \
             --to-password-file or FERRY_FROM_PASSWORD / FERRY_TO_PASSWORD"
        ));
    }
    let mut auth = AuthMethod::Password;
    let mut timeout = Duration::from_secs(60);
    let mut compress = None;
    let mut utf8 = true;
    for (key, value) in url.query_pairs() {
        match (key.as_ref(), value.as_ref()) {
            ("tls", "none") if security == Security::StartTls => security = Security::None,
            ("tls", "starttls") if security == Security::StartTls => {}
            ("tls", other) => {
                return Err(format!(
                    "{uri}: tls={other} is not understood; imap:// uses STARTTLS, \
                     ?tls=none allows plaintext, imaps:// is TLS from the start"
                ));
            }
            ("auth", method) => {
                auth = match method.to_ascii_lowercase().as_str() {
                    "login" => AuthMethod::Login,
                    "plain" => AuthMethod::Plain,
                    "xoauth2" => AuthMethod::XOAuth2,
                    "oauthbearer" => AuthMethod::OAuthBearer,
                    other => {
                        return Err(format!(
                            "{uri}: auth={other} is not one of login, plain, xoauth2, oauthbearer"
                        ));
                    }
                }
            }
            ("timeout", secs) => {
                let secs: u64 =
                    secs.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        format!("{uri}: timeout={secs} is not a number of seconds")
                    })?;
                timeout = Duration::from_secs(secs);
            }
            ("connections", _) => {}
            ("compress", "yes") => compress = Some(true),
            ("compress", "no") => compress = Some(false),
            ("compress", other) => {
                return Err(format!(
                    "{uri}: compress={other} is not understood; compress=yes asks for \
                     COMPRESS=DEFLATE whenever the server offers it, compress=no never (by \
                     default: unless the server is on this machine or a private network)"
                ));
            }
            ("utf8", "yes") => utf8 = true,
            ("utf8", "no") => utf8 = false,
            ("utf8", other) => {
                return Err(format!(
                    "{uri}: utf8={other} is not understood; by default (utf8=yes) UTF8=ACCEPT \
                     is enabled when the server offers it, utf8=no never"
                ));
            }
            (other, _) => return Err(format!("{uri}: unknown option {other}")),
        }
    }
    let port = url.port().unwrap_or(match security {
        Security::Implicit => 993,
        _ => 143,
    });
    let mut endpoint = Endpoint {
        host,
        port,
        security,
        user,
        secret: options.secret.clone(),
        auth,
        tls: tls_config(options)?,
        timeout,
        compress: false,
        utf8,
    };
    endpoint.compress = compress.unwrap_or_else(|| !endpoint.is_nearby());
    Ok(endpoint)
}

/// The number of connections `?connections=` asks for: 4 when it does not say, at least 1,
/// at most 32.
pub fn connections(uri: &str) -> usize {
    url::Url::parse(uri)
        .ok()
        .and_then(|url| {
            url.query_pairs()
                .find(|(k, _)| k == "connections")
                .and_then(|(_, v)| v.parse::<usize>().ok())
        })
        .unwrap_or(4)
        .clamp(1, 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_uri_is_refused_without_being_shown() {
        for uri in [
            "imap://alice:s3cr3t-word@mail.example.com",
            "imaps://alice:s3cr3t-word@mail.example.com:993/?tls=none",
            "imap://alice:s3cr3t-word@",
        ] {
            let options = ImapOptions {
                secret: None,
                ca_file: None,
                insecure: false,
                read_only: true,
                spool_dir: None,
            };
            let error = endpoint(uri, &options).expect_err("a password in the URI is refused");
            assert!(!error.contains("s3cr3t-word"), "{error}");
        }
        assert_eq!(
            redact("imap://bob:pw@host/?x=1"),
            "imap://bob:****@host/?x=1"
        );
        assert_eq!(redact("imap://bob@host"), "imap://bob@host");
        assert_eq!(redact("imap://bob:p w@ho st"), "imap://bob:****@ho st");
    }

    fn options() -> ImapOptions {
        ImapOptions {
            secret: None,
            ca_file: None,
            insecure: true,
            read_only: true,
            spool_dir: None,
        }
    }

    #[test]
    fn a_uri_names_the_host_user_port_security_and_options() {
        let parsed = endpoint(
            "imap://bob%40example.org@127.0.0.1:1143/?tls=none&auth=plain&timeout=5&utf8=no",
            &options(),
        )
        .expect("a valid URI");
        assert_eq!(parsed.host, "127.0.0.1");
        assert_eq!(parsed.port, 1143);
        assert_eq!(parsed.user, "bob@example.org");
        assert!(parsed.security == Security::None);
        assert!(matches!(parsed.auth, AuthMethod::Plain));
        assert_eq!(parsed.timeout, Duration::from_secs(5));
        assert!(!parsed.utf8);
        // On this machine: not compressed unless asked.
        assert!(!parsed.compress);

        let parsed = endpoint("imaps://alice@mail.example.com", &options()).expect("a valid URI");
        assert!(parsed.security == Security::Implicit);
        assert_eq!(parsed.port, 993);
        assert!(matches!(parsed.auth, AuthMethod::Password));
        assert_eq!(parsed.timeout, Duration::from_secs(60));
        assert!(parsed.compress);
        let parsed = endpoint("imap://alice@mail.example.com", &options()).expect("a valid URI");
        assert!(parsed.security == Security::StartTls);
        assert_eq!(parsed.port, 143);
    }

    #[test]
    fn a_uri_with_what_ferry_does_not_understand_is_refused() {
        for uri in [
            "pop3://alice@mail.example.com",
            "imaps://alice@mail.example.com/?tls=none",
            "imap://alice@mail.example.com/?tls=maybe",
            "imap://alice@mail.example.com/?auth=kerberos",
            "imap://alice@mail.example.com/?timeout=0",
            "imap://alice@mail.example.com/?compress=sometimes",
            "imap://alice@mail.example.com/?colour=blue",
            "imap://mail.example.com",
            "not a uri",
        ] {
            assert!(endpoint(uri, &options()).is_err(), "{uri}");
        }
    }

    #[test]
    fn the_pool_is_four_connections_unless_the_uri_says_and_from_one_to_32() {
        let at = "imaps://alice@mail.example.com";
        assert_eq!(connections(at), 4);
        assert_eq!(connections(&format!("{at}/?connections=8")), 8);
        assert_eq!(connections(&format!("{at}/?connections=0")), 1);
        assert_eq!(connections(&format!("{at}/?connections=500")), 32);
        assert_eq!(connections(&format!("{at}/?connections=many")), 4);
    }
}
