//! The app's credential for the token request: a client secret, or a certificate whose private
//! key signs a client assertion
//! (https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials): a JWT
//! signed PS256, its header naming the certificate by `x5t#S256` (base64url SHA-256 of the DER
//! certificate), as the page asks today (RS256 with the SHA-1 `x5t` is its older form, which
//! the platform still takes; a mix of the two is refused, entra-docs PR #1301), its claims `aud` (the token endpoint), `iss` and `sub` (the
//! client id), `jti`, `nbf`, `iat` and `exp`. It is sent as `client_assertion` with
//! `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`
//! (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow#second-case-access-token-request-with-a-certificate).
//!
//! Which one is given is told by what the secret holds: a PEM with a private key and a
//! certificate is a certificate credential, anything else a client secret.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferry_engine::store::StoreError;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use zeroize::Zeroizing;

/// The assertion type the identity platform expects with a certificate.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid: the platform takes up to ten minutes (the page above).
const ASSERTION_SECONDS: i64 = 600;

/// The form fields that prove the app's identity.
pub enum Credential {
    /// `client_secret=…`.
    Secret(Zeroizing<String>),
    /// `client_assertion_type=…&client_assertion=…`, signed by a certificate's key.
    Certificate(Certificate),
}

/// A certificate credential: the private key and the certificate it belongs to.
#[allow(missing_debug_implementations)] // holds a private key: shown through `Credential`
pub struct Certificate {
    key: EncodingKey,
    sha256: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Secret(_) => f.write_str("Credential::Secret(<hidden>)"),
            Credential::Certificate(c) => {
                write!(f, "Credential::Certificate(x5t#S256 {})", c.sha256)
            }
        }
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: i64,
    iat: i64,
    exp: i64,
}

impl Credential {
    /// What `text` holds: a certificate with its key (PEM) or a client secret.
    pub fn parse(text: Zeroizing<String>) -> Result<Credential, StoreError> {
        if !text.contains("-----BEGIN ") {
            return Ok(Credential::Secret(text));
        }
        let bad = |why: &str| {
            StoreError::Unusable(format!(
                "the app's credential is PEM but {why}: give the certificate and its private key \
                 (PKCS#8 or PKCS#1 RSA) in one PEM, or a client secret"
            ))
        };
        let blocks = pem::parse_many(text.as_bytes()).map_err(|_| bad("cannot be read"))?;
        let certificate = blocks
            .iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .ok_or_else(|| bad("holds no CERTIFICATE"))?;
        let key_block = blocks
            .iter()
            .find(|b| b.tag() == "PRIVATE KEY" || b.tag() == "RSA PRIVATE KEY")
            .ok_or_else(|| bad("holds no RSA private key"))?;
        let key_pem = Zeroizing::new(pem::encode(key_block));
        let key = EncodingKey::from_rsa_pem(key_pem.as_bytes())
            .map_err(|_| bad("its private key is not an RSA key"))?;
        let der = certificate.contents();
        let sha256 = ring::digest::digest(&ring::digest::SHA256, der);
        Ok(Credential::Certificate(Certificate {
            key,
            sha256: URL_SAFE_NO_PAD.encode(sha256.as_ref()),
        }))
    }

    /// The form fields for a token request to `token_url` by `client_id`, at `now` (seconds
    /// since the epoch).
    pub fn fields(
        &self,
        client_id: &str,
        token_url: &str,
        now: i64,
    ) -> Result<Vec<(&'static str, Zeroizing<String>)>, StoreError> {
        match self {
            Credential::Secret(secret) => Ok(vec![("client_secret", secret.clone())]),
            Credential::Certificate(certificate) => {
                let assertion = certificate.assertion(client_id, token_url, now)?;
                Ok(vec![
                    (
                        "client_assertion_type",
                        Zeroizing::new(ASSERTION_TYPE.into()),
                    ),
                    ("client_assertion", assertion),
                ])
            }
        }
    }
}

impl Certificate {
    fn assertion(
        &self,
        client_id: &str,
        token_url: &str,
        now: i64,
    ) -> Result<Zeroizing<String>, StoreError> {
        let mut header = Header::new(Algorithm::PS256);
        header.x5t_s256 = Some(self.sha256.clone());
        let mut jti = [0u8; 16];
        getrandom::fill(&mut jti)
            .map_err(|e| StoreError::Unusable(format!("no randomness for the assertion: {e}")))?;
        let claims = Claims {
            aud: token_url,
            iss: client_id,
            sub: client_id,
            jti: URL_SAFE_NO_PAD.encode(jti),
            nbf: now,
            iat: now,
            exp: now + ASSERTION_SECONDS,
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map(Zeroizing::new)
            .map_err(|e| StoreError::Unusable(format!("signing the client assertion: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_without_pem_is_a_client_secret() {
        let credential = Credential::parse(Zeroizing::new("s3cret~value".into())).expect("parse");
        let fields = credential.fields("app", "https://x/t", 0).expect("fields");
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].0, "client_secret");
        assert_eq!(fields[0].1.as_str(), "s3cret~value");
    }

    #[test]
    fn pem_without_a_key_is_refused_in_words_that_show_nothing_of_it() {
        let text = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let error = match Credential::parse(Zeroizing::new(text.into())) {
            Err(error) => error.to_string(),
            Ok(_) => panic!("a certificate alone is no credential"),
        };
        assert!(
            error.contains("private key") || error.contains("cannot be read"),
            "{error}"
        );
        assert!(!error.contains("MIIB"));
    }
}
