//! The Microsoft identity platform's client credentials flow, as the emulated tenant answers
//! it: https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow
//! (`POST /{tenant}/oauth2/v2.0/token` with `client_id`, `client_secret`,
//! `grant_type=client_credentials`, `scope=https://graph.microsoft.com/.default`; errors
//! `{"error", "error_description", "error_codes"}`), and the OpenID configuration document
//! some clients read first. Tokens are opaque here and expire after the configured lifetime;
//! Graph answers a missing, unknown or expired one with 401 `InvalidAuthenticationToken`
//! (https://learn.microsoft.com/en-us/graph/errors).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::api::{Request, Response};
use crate::world::new_id;

/// The tokens the tenant issued.
#[derive(Debug, Default)]
pub struct Tokens {
    issued: HashMap<String, Instant>,
}

/// The app registration the tenant knows.
#[derive(Debug, Clone)]
pub struct App {
    pub tenant: String,
    pub client_id: String,
    pub client_secret: String,
    pub lifetime: Duration,
}

fn oauth_error(status: u16, error: &str, code: u32, description: &str) -> Response {
    Response::json(
        status,
        &json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description}"),
            "error_codes": [code],
            "timestamp": crate::render::date(&chrono::Utc::now()),
        }),
    )
}

impl Tokens {
    /// `POST /{tenant}/oauth2/v2.0/token`.
    pub fn token(&mut self, app: &App, tenant: &str, request: &Request, now: Instant) -> Response {
        if !tenant.eq_ignore_ascii_case(&app.tenant) {
            return oauth_error(
                400,
                "invalid_request",
                90002,
                &format!("Tenant '{tenant}' not found."),
            );
        }
        let form: HashMap<String, String> = form_urlencoded::parse(&request.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
            return oauth_error(
                400,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type.",
            );
        }
        if form.get("client_id") != Some(&app.client_id) {
            return oauth_error(
                400,
                "unauthorized_client",
                700016,
                "Application was not found in the directory.",
            );
        }
        if form.get("client_secret") != Some(&app.client_secret) {
            return oauth_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
            );
        }
        if !form
            .get("scope")
            .is_some_and(|scope| scope.split(' ').any(|s| s.ends_with("/.default")))
        {
            return oauth_error(
                400,
                "invalid_scope",
                1002012,
                "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
            );
        }
        self.issued.retain(|_, expiry| *expiry > now);
        let token = new_id("eyJ0eXAiOiJKV1Qi.");
        self.issued.insert(token.clone(), now + app.lifetime);
        let seconds = app.lifetime.as_secs();
        Response::json(
            200,
            &json!({
                "token_type": "Bearer",
                "expires_in": seconds,
                "ext_expires_in": seconds,
                "access_token": token,
            }),
        )
    }

    /// Checks a Graph request's bearer token: `None` when valid, else the 401 to answer.
    pub fn check(&self, request: &Request, now: Instant) -> Option<Response> {
        let presented = request
            .header("authorization")
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim);
        let message = match presented {
            None | Some("") => "Access token is empty.",
            Some(token) => match self.issued.get(token) {
                None => "Invalid JWT token. The token is malformed.",
                Some(expiry) if *expiry <= now => {
                    "Lifetime validation failed, the token is expired."
                }
                Some(_) => return None,
            },
        };
        Some(
            Response::error(401, "InvalidAuthenticationToken", message).with_header(
                "www-authenticate",
                "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
            ),
        )
    }
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`
/// (https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc).
pub fn openid_configuration(root: &str, tenant: &str) -> Response {
    Response::json(
        200,
        &json!({
            "token_endpoint": format!("{root}/{tenant}/oauth2/v2.0/token"),
            "authorization_endpoint": format!("{root}/{tenant}/oauth2/v2.0/authorize"),
            "issuer": format!("{root}/{tenant}/v2.0"),
            "jwks_uri": format!("{root}/{tenant}/discovery/v2.0/keys"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "tenant_region_scope": "EU",
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &str) -> Request {
        Request {
            method: "POST".into(),
            body: bytes::Bytes::from(body.to_string()),
            ..Request::default()
        }
    }

    #[test]
    fn a_token_is_issued_checked_and_expires() {
        let app = App {
            tenant: "contoso".into(),
            client_id: "app".into(),
            client_secret: "s3cret".into(),
            lifetime: Duration::from_secs(2),
        };
        let mut tokens = Tokens::default();
        let now = Instant::now();
        let bad = tokens.token(&app, "contoso", &form("grant_type=client_credentials&client_id=app&client_secret=nope&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"), now);
        assert_eq!(bad.status, 401);
        assert!(String::from_utf8_lossy(&bad.body).contains("AADSTS7000215"));
        let good = tokens.token(&app, "contoso", &form("grant_type=client_credentials&client_id=app&client_secret=s3cret&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"), now);
        assert_eq!(good.status, 200);
        let body: serde_json::Value = serde_json::from_slice(&good.body).expect("json");
        let token = body["access_token"].as_str().expect("token");
        let request = Request {
            headers: vec![("authorization".into(), format!("Bearer {token}"))],
            ..Request::default()
        };
        assert!(tokens.check(&request, now).is_none());
        let expired = tokens
            .check(&request, now + Duration::from_secs(3))
            .expect("expired");
        assert_eq!(expired.status, 401);
        assert!(tokens.check(&Request::default(), now).is_some());
    }
}
