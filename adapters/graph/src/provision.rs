//! Creating the target mailbox: the user when the tenant has none of that name, then a licence
//! of the SKU the operator names (a user without an Exchange licence has no mailbox). Each call
//! here is one request; the caller journals each step as intent and outcome and asks the
//! tenant before each write, so a run stopped between or inside the steps ends, once run
//! again, with one user holding the licence once.
//!
//! - `POST /users` (https://learn.microsoft.com/en-us/graph/api/user-post-users): a second
//!   user of the same userPrincipalName is refused with 400, so a retried create cannot make
//!   two users; ferry still looks the user up first.
//! - `POST /users/{id}/assignLicense`
//!   (https://learn.microsoft.com/en-us/graph/api/user-assignlicense): assigning a licence
//!   the user holds changes nothing; ferry looks at `assignedLicenses` first anyway.
//! - `GET /subscribedSkus` (https://learn.microsoft.com/en-us/graph/api/subscribedsku-list):
//!   the SKU by its part number (`ENTERPRISEPACK`) or id, and its free units
//!   (`prepaidUnits.enabled` − `consumedUnits`).

use ferry_engine::{StoreError, StoreResult};
use ferry_secret::Secret;
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Client, Payload, classify};
use crate::uri::GraphUri;

/// A SKU of the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sku {
    pub id: String,
    pub part_number: String,
    /// Units bought and not assigned.
    pub free: i64,
}

/// The target user as the tenant has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The SKU ids assigned to it.
    pub licenses: Vec<String>,
}

/// The user of a `graph:` URI, for provisioning.
#[derive(Debug)]
pub struct Provisioner {
    client: Client,
    upn: String,
}

impl Provisioner {
    pub fn open(uri: &str, secret: Option<Secret>) -> StoreResult<Provisioner> {
        let uri = GraphUri::parse(uri)?;
        let upn = uri.user.clone();
        if !upn.contains('@') {
            return Err(StoreError::Unusable(format!(
                "{upn}: a user is created by its user principal name (name@domain), not an id"
            )));
        }
        Ok(Provisioner {
            client: Client::new(uri, secret)?,
            upn,
        })
    }

    /// The user principal name of the target.
    pub fn upn(&self) -> &str {
        &self.upn
    }

    /// The user and its licences; `None` when the tenant has no such user.
    pub async fn lookup(&self) -> StoreResult<Option<User>> {
        let path = format!(
            "{}?$select=id,userPrincipalName,assignedLicenses",
            self.client.uri().user_path()
        );
        let answer = self
            .client
            .send_raw(Method::GET, &path, Payload::None, &[])
            .await?;
        if answer.status == 404 {
            return Ok(None);
        }
        let user = crate::client::check(answer)?.json()?;
        Ok(Some(User {
            licenses: user["assignedLicenses"]
                .as_array()
                .map(|licenses| {
                    licenses
                        .iter()
                        .filter_map(|l| l["skuId"].as_str().map(str::to_ascii_lowercase))
                        .collect()
                })
                .unwrap_or_default(),
        }))
    }

    /// The tenant's SKU named `name` (part number, any case, or id).
    pub async fn sku(&self, name: &str) -> StoreResult<Sku> {
        let answer = self
            .client
            .send(Method::GET, "/subscribedSkus", Payload::None, &[])
            .await?
            .json()?;
        let skus: Vec<Sku> = answer["value"]
            .as_array()
            .map(|skus| skus.iter().filter_map(sku_of).collect())
            .unwrap_or_default();
        skus.iter()
            .find(|sku| {
                sku.part_number.eq_ignore_ascii_case(name) || sku.id.eq_ignore_ascii_case(name)
            })
            .cloned()
            .ok_or_else(|| {
                let known: Vec<&str> = skus.iter().map(|s| s.part_number.as_str()).collect();
                StoreError::Unusable(format!(
                    "the tenant has no licence SKU {name}; it has: {}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ))
            })
    }

    /// Creates the user, enabled, with a random password it must change at its first sign-in
    /// (ferry keeps it nowhere: the admin resets it or the tenant signs in through SSO).
    /// A user of that name made meanwhile counts as made.
    pub async fn create_user(
        &self,
        display_name: &str,
        usage_location: Option<&str>,
    ) -> StoreResult<()> {
        let nickname: String = self
            .upn
            .split('@')
            .next()
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .collect();
        let mut body = json!({
            "accountEnabled": true,
            "displayName": display_name,
            "mailNickname": nickname,
            "userPrincipalName": self.upn,
            "passwordProfile": {
                "forceChangePasswordNextSignIn": true,
                "password": random_password()?,
            },
        });
        if let Some(location) = usage_location {
            // Required before a licence can be assigned in a real tenant.
            body["usageLocation"] = Value::String(location.to_string());
        }
        let answer = self
            .client
            .send_raw(Method::POST, "/users", Payload::Json(body), &[])
            .await?;
        match answer.status {
            200..=299 => Ok(()),
            400 if String::from_utf8_lossy(&answer.body).contains("already exists") => Ok(()),
            status => Err(classify(status, &answer.body)),
        }
    }

    /// Whether the user's mailbox can be reached (Exchange makes it some time after the
    /// licence; until then Graph answers 404).
    pub async fn mailbox_ready(&self) -> StoreResult<bool> {
        let path = format!(
            "{}/mailFolders/inbox?$select=id",
            self.client.uri().user_path()
        );
        let answer = self
            .client
            .send_raw(Method::GET, &path, Payload::None, &[])
            .await?;
        match answer.status {
            200..=299 => Ok(true),
            404 => Ok(false),
            status => Err(classify(status, &answer.body)),
        }
    }

    /// Assigns a licence of the SKU `sku_id` to the user.
    pub async fn assign(&self, sku_id: &str) -> StoreResult<()> {
        let path = format!("{}/assignLicense", self.client.uri().user_path());
        let body =
            json!({"addLicenses": [{"skuId": sku_id, "disabledPlans": []}], "removeLicenses": []});
        self.client
            .send(Method::POST, &path, Payload::Json(body), &[])
            .await?;
        Ok(())
    }
}

/// A user of a tenant's directory, for mapping mailboxes by display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    /// Its user principal name (what a `graph:` URI names it by).
    pub upn: String,
    /// Its display name.
    pub display_name: String,
}

/// Every user of the tenant of `uri` (whose user part is not used), with its display name:
/// `GET /users` (https://learn.microsoft.com/en-us/graph/api/user-list), 999 a page, the
/// rest behind `@odata.nextLink`. Needs the User.Read.All permission.
pub async fn directory(uri: &str, secret: Option<Secret>) -> StoreResult<Vec<DirectoryUser>> {
    let client = Client::new(GraphUri::parse(uri)?, secret)?;
    let users = crate::folders::all_pages(
        &client,
        "/users?$select=userPrincipalName,displayName&$top=999",
    )
    .await?;
    Ok(users
        .iter()
        .filter_map(|user| {
            Some(DirectoryUser {
                upn: user["userPrincipalName"].as_str()?.to_string(),
                display_name: user["displayName"].as_str().unwrap_or("").to_string(),
            })
        })
        .collect())
}

fn sku_of(sku: &Value) -> Option<Sku> {
    let enabled = sku["prepaidUnits"]["enabled"].as_i64().unwrap_or(0);
    let consumed = sku["consumedUnits"].as_i64().unwrap_or(0);
    Some(Sku {
        id: sku["skuId"].as_str()?.to_ascii_lowercase(),
        part_number: sku["skuPartNumber"].as_str().unwrap_or("").to_string(),
        free: enabled - consumed,
    })
}

/// 24 characters from the OS's random source, with the four character classes Entra ID's
/// password policy asks for.
fn random_password() -> StoreResult<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Unusable(format!("no random source for a password: {e}")))?;
    let mut password: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    password.push_str("aZ7!");
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sku_is_read_with_its_free_units() {
        let sku = sku_of(&json!({"skuId": "6FD2C87F-B296-42F0-B197-1E91E994B900",
            "skuPartNumber": "ENTERPRISEPACK", "consumedUnits": 3,
            "prepaidUnits": {"enabled": 25, "suspended": 0, "warning": 0}}))
        .expect("sku");
        assert_eq!(sku.id, "6fd2c87f-b296-42f0-b197-1e91e994b900");
        assert_eq!(sku.free, 22);
    }

    #[test]
    fn passwords_differ_and_have_every_class() {
        let (a, b) = (random_password().expect("a"), random_password().expect("b"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
        assert!(a.chars().any(|c| c.is_ascii_uppercase()));
        assert!(a.chars().any(|c| c.is_ascii_lowercase()));
        assert!(a.chars().any(|c| c.is_ascii_digit()));
        assert!(a.chars().any(|c| !c.is_ascii_alphanumeric()));
    }
}
