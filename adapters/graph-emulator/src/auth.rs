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

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::json;

use crate::api::{Request, Response};
use crate::world::new_id;

/// The tokens the tenant issued.
#[derive(Debug, Default)]
pub struct Tokens {
    /// Token → its expiry and, for a delegated token, its user.
    issued: HashMap<String, (Instant, Option<String>)>,
    /// Users' passwords (user principal name in lower case), for delegated tokens.
    passwords: HashMap<String, String>,
}

/// The app registration the tenant knows: a client secret, a certificate, or both.
#[derive(Debug, Clone)]
pub struct App {
    pub tenant: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub certificate: Option<Registered>,
    pub lifetime: Duration,
}

/// A certificate uploaded to the app registration: what its assertions are checked against.
#[derive(Clone)]
pub struct Registered {
    /// base64url SHA-1 of the DER certificate, as `x5t` names it (with RS256)...
    pub x5t: String,
    /// ...and its SHA-256, as `x5t#S256` does (with PS256).
    pub x5t_s256: String,
    key: DecodingKey,
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Registered(x5t {})", self.x5t)
    }
}

impl Registered {
    /// The certificate (PEM) with an RSA public key.
    pub fn from_pem(pem: &str) -> Result<Registered, String> {
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .map_err(|e| format!("not a PEM certificate: {e}"))?;
        let certificate = block
            .parse_x509()
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let public = &certificate.tbs_certificate.subject_pki;
        // rsaEncryption: the bit string is PKCS#1 RSAPublicKey.
        if public.algorithm.algorithm.to_id_string() != "1.2.840.113549.1.1.1" {
            return Err("the certificate's key is not RSA".into());
        }
        let key = DecodingKey::from_rsa_der(&public.subject_public_key.data);
        let digest = |algorithm| ring::digest::digest(algorithm, &block.contents);
        Ok(Registered {
            x5t: URL_SAFE_NO_PAD.encode(digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY)),
            x5t_s256: URL_SAFE_NO_PAD.encode(digest(&ring::digest::SHA256)),
            key,
        })
    }
}

/// What a client assertion claims
/// (https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials#claims-payload).
#[derive(Debug, serde::Deserialize)]
struct Claims {
    aud: String,
    iss: String,
    sub: String,
    #[allow(dead_code)]
    jti: String,
    exp: i64,
    nbf: Option<i64>,
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
    /// `audience` is the token endpoint's URL, which a client assertion must name.
    pub fn token(
        &mut self,
        app: &App,
        tenant: &str,
        audience: &str,
        request: &Request,
        now: Instant,
    ) -> Response {
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
        let grant = form.get("grant_type").map(String::as_str);
        if grant == Some("password") {
            return self.delegated(app, &form, now);
        }
        if grant != Some("client_credentials") {
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
        if let Some(refused) = proof(app, &form, audience) {
            return refused;
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
        self.issue(app, now, None)
    }

    /// Sets a user's password, for the delegated grant.
    pub fn set_password(&mut self, upn: &str, password: &str) {
        self.passwords
            .insert(upn.to_ascii_lowercase(), password.to_string());
    }

    /// The resource owner password credentials grant: a token on behalf of a user
    /// (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth-ropc), how the
    /// tests get a delegated token for what takes no application permission (To Do).
    fn delegated(&mut self, app: &App, form: &HashMap<String, String>, now: Instant) -> Response {
        if form.get("client_id") != Some(&app.client_id) {
            return oauth_error(
                400,
                "unauthorized_client",
                700016,
                "Application was not found in the directory.",
            );
        }
        let user = form.get("username").map(|u| u.to_ascii_lowercase());
        let known = user
            .as_ref()
            .and_then(|u| self.passwords.get(u))
            .is_some_and(|p| Some(p) == form.get("password"));
        if !known {
            return oauth_error(
                400,
                "invalid_grant",
                50126,
                "Error validating credentials due to invalid username or password.",
            );
        }
        self.issue(app, now, user)
    }

    fn issue(&mut self, app: &App, now: Instant, user: Option<String>) -> Response {
        self.issued.retain(|_, (expiry, _)| *expiry > now);
        let token = new_id("eyJ0eXAiOiJKV1Qi.");
        self.issued
            .insert(token.clone(), (now + app.lifetime, user));
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

    /// Checks a Graph request's bearer token: its user (`None` for an app-only token) when
    /// valid, else the 401 to answer.
    pub fn check(&self, request: &Request, now: Instant) -> Result<Option<String>, Response> {
        let presented = request
            .header("authorization")
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim);
        let message = match presented {
            None | Some("") => "Access token is empty.",
            Some(token) => match self.issued.get(token) {
                None => "Invalid JWT token. The token is malformed.",
                Some((expiry, _)) if *expiry <= now => {
                    "Lifetime validation failed, the token is expired."
                }
                Some((_, user)) => return Ok(user.clone()),
            },
        };
        Err(
            Response::error(401, "InvalidAuthenticationToken", message).with_header(
                "www-authenticate",
                "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
            ),
        )
    }
}

/// Whether the form proves the app's identity: `None` if so, else the refusal. A secret is
/// compared; an assertion is checked as the platform documents
/// (https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials): signed
/// RS256 by the key of the certificate its `x5t` names, `iss` and `sub` the client id, `aud`
/// the token endpoint, within `nbf`..`exp`.
fn proof(app: &App, form: &HashMap<String, String>, audience: &str) -> Option<Response> {
    if let Some(kind) = form.get("client_assertion_type") {
        if kind != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
            return Some(oauth_error(
                400,
                "invalid_request",
                50027,
                "Invalid client_assertion_type.",
            ));
        }
        let Some(assertion) = form.get("client_assertion") else {
            return Some(oauth_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_assertion'.",
            ));
        };
        return assertion_refused(app, assertion, audience);
    }
    match (&app.client_secret, form.get("client_secret")) {
        (Some(expected), Some(given)) if given == expected => None,
        (_, None) => Some(oauth_error(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )),
        _ => Some(oauth_error(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
        )),
    }
}

fn assertion_refused(app: &App, assertion: &str, audience: &str) -> Option<Response> {
    let invalid =
        |code: u32, description: &str| Some(oauth_error(401, "invalid_client", code, description));
    // azure-identity pads its base64url segments and thumbprints with `=`; the platform takes
    // them (its own SDK), so they are read without it.
    let unpadded: Vec<&str> = assertion
        .split('.')
        .map(|s| s.trim_end_matches('='))
        .collect();
    let assertion = unpadded.join(".");
    let assertion = assertion.as_str();
    let same = |given: Option<&String>, known: &str| {
        given.is_some_and(|given| given.trim_end_matches('=') == known)
    };
    let Ok(header) = jsonwebtoken::decode_header(assertion) else {
        return invalid(50012, "Client assertion failed to parse.");
    };
    // The page's two forms: PS256 naming the certificate by `x5t#S256`, or the older RS256
    // by `x5t`; a mix of the two is refused (entra-docs PR #1301).
    let named = |registered: &&Registered| match header.alg {
        Algorithm::PS256 => same(header.x5t_s256.as_ref(), &registered.x5t_s256),
        Algorithm::RS256 => header.x5t_s256.is_none() && same(header.x5t.as_ref(), &registered.x5t),
        _ => false,
    };
    let Some(registered) = app.certificate.as_ref().filter(named) else {
        return invalid(
            700027,
            "Client assertion failed signature validation. Reason - The key was not found.",
        );
    };
    let mut validation = Validation::new(header.alg);
    // Times are checked below, with the platform's own words.
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    validation.validate_aud = false;
    let claims = match jsonwebtoken::decode::<Claims>(assertion, &registered.key, &validation) {
        Ok(data) => data.claims,
        Err(_) => return invalid(700027, "Client assertion contains an invalid signature."),
    };
    if claims.iss != app.client_id || claims.sub != app.client_id {
        return invalid(
            50048,
            "Subject mismatches Issuer claim in the client assertion.",
        );
    }
    if claims.aud != audience {
        return invalid(
            50027,
            &format!(
                "JWT token is invalid or malformed: the audience '{}' is not this token endpoint.",
                claims.aud
            ),
        );
    }
    let now = chrono::Utc::now().timestamp();
    // Five minutes of clock skew are allowed.
    if claims.exp + 300 < now || claims.nbf.is_some_and(|nbf| nbf - 300 > now) {
        return invalid(
            700024,
            "Client assertion is not within its valid time range.",
        );
    }
    None
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
            client_secret: Some("s3cret".into()),
            certificate: None,
            lifetime: Duration::from_secs(2),
        };
        let mut tokens = Tokens::default();
        let now = Instant::now();
        let bad = tokens.token(&app, "contoso", "https://x/contoso/oauth2/v2.0/token", &form("grant_type=client_credentials&client_id=app&client_secret=nope&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"), now);
        assert_eq!(bad.status, 401);
        assert!(String::from_utf8_lossy(&bad.body).contains("AADSTS7000215"));
        let good = tokens.token(&app, "contoso", "https://x/contoso/oauth2/v2.0/token", &form("grant_type=client_credentials&client_id=app&client_secret=s3cret&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"), now);
        assert_eq!(good.status, 200);
        let body: serde_json::Value = serde_json::from_slice(&good.body).expect("json");
        let token = body["access_token"].as_str().expect("token");
        let request = Request {
            headers: vec![("authorization".into(), format!("Bearer {token}"))],
            ..Request::default()
        };
        assert_eq!(tokens.check(&request, now).ok(), Some(None));
        let expired = tokens
            .check(&request, now + Duration::from_secs(3))
            .expect_err("expired");
        assert_eq!(expired.status, 401);
        assert!(tokens.check(&Request::default(), now).is_err());
    }
}
