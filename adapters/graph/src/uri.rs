//! `graph://TENANT/USER?client_id=ID[&endpoint=URL][&authority=URL][&upload_budget=B/S][&auth=user]`: a
//! mailbox of a Microsoft 365 tenant, reached as an app registration (client credentials). By
//! default the endpoint is `https://graph.microsoft.com` and the authority
//! `https://login.microsoftonline.com`; `endpoint` alone points both somewhere else (an
//! emulator serves both). Plain `http` only to a loopback address. `upload_budget` replaces
//! the documented 150 MB per 5 minutes the store paces its uploads against (bytes/seconds;
//! for an emulator with a budget scaled down in time). `auth=user`: the secret is not the
//! app's but a user's access token (delegated; read again from its file, variable or command
//! when it is refused), which To Do needs: Microsoft documents no application permission for
//! its tasks (https://learn.microsoft.com/en-us/graph/api/todotasklist-post-tasks). A secret in
//! the URI is refused: it comes from a file, a variable or a command.

use ferry_engine::store::StoreError;
use url::Url;

const GRAPH: &str = "https://graph.microsoft.com";
const LOGIN: &str = "https://login.microsoftonline.com";

/// A parsed `graph:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphUri {
    pub tenant: String,
    pub user: String,
    pub client_id: String,
    /// Graph's root, without `/v1.0`.
    pub endpoint: String,
    /// The token authority's root.
    pub authority: String,
    /// The upload budget to pace against instead of the documented one: (bytes, seconds).
    pub upload_budget: Option<(u64, u64)>,
    /// The secret is a user's access token, not the app's credential.
    pub user_token: bool,
}

impl GraphUri {
    pub fn parse(uri: &str) -> Result<GraphUri, StoreError> {
        let bad = |why: &str| {
            StoreError::Permanent(format!(
                "{}: {why} (graph://TENANT/USER?client_id=APP_ID[&endpoint=URL])",
                redact(uri)
            ))
        };
        let url = Url::parse(uri).map_err(|e| bad(&e.to_string()))?;
        if url.scheme() != "graph" {
            return Err(bad("not a graph: URI"));
        }
        if url.password().is_some() || !url.username().is_empty() {
            return Err(bad(
                "no credentials in the URI: give the client secret by file, variable or command",
            ));
        }
        let tenant = url
            .host_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| bad("no tenant"))?;
        let user = percent_encoding::percent_decode_str(url.path().trim_start_matches('/'))
            .decode_utf8_lossy()
            .into_owned();
        if user.is_empty() || user.contains('/') {
            return Err(bad("give one user (UPN or id) after the tenant"));
        }
        let (mut client_id, mut endpoint, mut authority) = (None, None, None);
        let mut upload_budget = None;
        let mut user_token = false;
        for (name, value) in url.query_pairs() {
            match name.as_ref() {
                "client_id" => client_id = Some(value.into_owned()),
                "endpoint" => endpoint = Some(checked_root(&value).map_err(|why| bad(&why))?),
                "authority" => authority = Some(checked_root(&value).map_err(|why| bad(&why))?),
                "upload_budget" => {
                    let budget = value
                        .split_once('/')
                        .and_then(|(b, s)| Some((b.parse::<u64>().ok()?, s.parse::<u64>().ok()?)))
                        .filter(|(b, s)| *b > 0 && *s > 0);
                    upload_budget = Some(budget.ok_or_else(|| {
                        bad("upload_budget is BYTES/SECONDS, e.g. 157286400/300")
                    })?);
                }
                "auth" => match value.as_ref() {
                    "user" => user_token = true,
                    "app" => user_token = false,
                    _ => return Err(bad("auth is app (the default) or user")),
                },
                "client_secret" | "secret" | "password" => {
                    return Err(bad(
                        "no secret in the URI: give it by file, variable or command",
                    ));
                }
                other => return Err(bad(&format!("unknown option {other}"))),
            }
        }
        let client_id = match client_id {
            Some(id) => id,
            None if user_token => String::new(),
            None => return Err(bad("client_id= is needed")),
        };
        let endpoint = endpoint.unwrap_or_else(|| GRAPH.to_string());
        let authority = authority.unwrap_or_else(|| {
            if endpoint == GRAPH {
                LOGIN.to_string()
            } else {
                endpoint.clone()
            }
        });
        Ok(GraphUri {
            tenant: tenant.to_string(),
            user,
            client_id,
            endpoint,
            authority,
            upload_budget,
            user_token,
        })
    }

    /// The URI as the journal and reports show it.
    pub fn describe(&self) -> String {
        format!("graph://{}/{}", self.tenant, self.user)
    }

    /// The resource the token is for.
    pub fn resource(&self) -> &'static str {
        GRAPH
    }

    /// `/users/{user}`, encoded.
    pub fn user_path(&self) -> String {
        format!(
            "/users/{}",
            percent_encoding::utf8_percent_encode(&self.user, percent_encoding::NON_ALPHANUMERIC)
        )
    }
}

/// A root URL: https anywhere, http only to loopback; no path beyond `/`.
fn checked_root(value: &str) -> Result<String, String> {
    let url = Url::parse(value).map_err(|e| format!("{value}: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err(format!("{value}: plain http only to a loopback address")),
        other => return Err(format!("{value}: {other} is not http(s)")),
    }
    Ok(value.trim_end_matches('/').to_string())
}

/// The URI without its query and without anything before an `@` in its authority.
fn redact(uri: &str) -> String {
    let base = uri.split_once('?').map_or(uri, |(base, _)| base);
    match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            format!("{scheme}://{host}/{path}")
        }
        None => base.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse_and_refuse_what_they_should() {
        let uri =
            GraphUri::parse("graph://contoso.onmicrosoft.com/alice@contoso.com?client_id=abc")
                .expect("parses");
        assert_eq!(uri.endpoint, GRAPH);
        assert_eq!(uri.authority, LOGIN);
        assert_eq!(uri.user_path(), "/users/alice%40contoso%2Ecom");
        let local = GraphUri::parse("graph://t/u?client_id=a&endpoint=http://127.0.0.1:9000/")
            .expect("loopback http");
        assert_eq!(local.authority, "http://127.0.0.1:9000");
        assert!(GraphUri::parse("graph://t/u?client_id=a&endpoint=http://example.com").is_err());
        assert!(GraphUri::parse("graph://t/u").is_err());
        let scaled =
            GraphUri::parse("graph://t/u?client_id=a&upload_budget=15728640/30").expect("a budget");
        assert_eq!(scaled.upload_budget, Some((15_728_640, 30)));
        assert!(GraphUri::parse("graph://t/u?client_id=a&upload_budget=15728640").is_err());
        assert!(GraphUri::parse("graph://t/u?client_id=a&upload_budget=0/30").is_err());
        assert!(GraphUri::parse("graph://t/u?client_id=a&client_secret=x").is_err());
        let refused = GraphUri::parse("graph://app:hunter2@t/u?client_id=a").expect_err("secret");
        assert!(!refused.to_string().contains("hunter2"));
    }
}
