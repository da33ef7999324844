//! The calendars, contact folders and To Do lists of a mailbox (`pim.rs` says how their items
//! are carried): listed, each kind apart (a kind the app may not read is a notice, not an
//! error), given paths that do not clash with mail folders or each other, and made.

use ferry_engine::item::{CollectionProp, CollectionProps, FolderKind, FolderSpec, Kind};
use ferry_engine::store::{FolderInfo, StoreError, StoreResult};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::Payload;
use crate::folders::segment;
use crate::pim::{COLOR, DESCRIPTION, PATH, Pim, PimFolder};
use crate::store::{GraphStore, lock, property};

impl GraphStore {
    /// The calendars, contact folders and (with a user's token) To Do lists, listed again.
    pub(crate) async fn refresh_pim(&self) -> StoreResult<Vec<PimFolder>> {
        let user = self.user();
        let expand = format!(
            "$expand=singleValueExtendedProperties($filter=id eq '{PATH}' or id eq '{COLOR}' \
             or id eq '{DESCRIPTION}')"
        );
        // An extended property written empty is one removed.
        let own = |folder: &Value, id: &str| {
            property(folder, id)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let mut out = Vec::new();
        let named = |folder: &Value, name: &str| {
            property(folder, PATH)
                .map(str::to_string)
                .unwrap_or_else(|| segment(name))
        };
        let calendars = self
            .permitted("calendars", &format!("{user}/calendars?{expand}"))
            .await?;
        for calendar in calendars {
            let (Some(id), Some(name)) = (calendar["id"].as_str(), calendar["name"].as_str())
            else {
                continue;
            };
            out.push(PimFolder {
                pim: Pim::Event,
                id: Some(id.to_string()),
                path: named(&calendar, name),
                spec: FolderSpec {
                    kind: FolderKind::Calendar,
                    display_name: Some(name.to_string()),
                    // The colour chosen in Outlook, else the one ferry kept.
                    color: calendar["hexColor"]
                        .as_str()
                        .filter(|c| !c.is_empty())
                        .map(str::to_string)
                        .or_else(|| own(&calendar, COLOR)),
                    components: vec![Kind::Event],
                },
                description: own(&calendar, DESCRIPTION),
            });
        }
        out.push(PimFolder {
            pim: Pim::Contact,
            id: None,
            path: "Contacts".into(),
            spec: FolderSpec {
                kind: FolderKind::AddressBook,
                display_name: Some("Contacts".into()),
                ..FolderSpec::default()
            },
            description: None,
        });
        let contact_folders = self
            .permitted(
                "contact folders",
                &format!("{user}/contactFolders?{expand}"),
            )
            .await?;
        if self.pim_refused("contact folders") {
            out.retain(|f| f.pim != Pim::Contact);
        }
        for folder in contact_folders {
            let (Some(id), Some(name)) = (folder["id"].as_str(), folder["displayName"].as_str())
            else {
                continue;
            };
            out.push(PimFolder {
                pim: Pim::Contact,
                id: Some(id.to_string()),
                path: named(&folder, name),
                spec: FolderSpec {
                    kind: FolderKind::AddressBook,
                    display_name: Some(name.to_string()),
                    ..FolderSpec::default()
                },
                description: own(&folder, DESCRIPTION),
            });
        }
        if self.client.uri().user_token {
            let lists = self
                .permitted("To Do lists", &format!("{user}/todo/lists"))
                .await?;
            for list in lists {
                let (Some(id), Some(name)) = (list["id"].as_str(), list["displayName"].as_str())
                else {
                    continue;
                };
                out.push(PimFolder {
                    pim: Pim::Task,
                    id: Some(id.to_string()),
                    path: segment(name),
                    spec: FolderSpec {
                        kind: FolderKind::TaskList,
                        display_name: Some(name.to_string()),
                        color: None,
                        components: vec![Kind::Task],
                    },
                    description: None,
                });
            }
        } else {
            self.notice(
                "To Do tasks were not read nor written: Microsoft documents no application \
                 permission for them; give a user's token (graph://…?auth=user) to carry them"
                    .into(),
            );
        }
        // A path is one folder: a mail folder's name wins, and of two folders of other kinds
        // with one name the second is told apart by its kind.
        let mut taken: std::collections::HashSet<String> =
            lock(&self.folders).keys().cloned().collect();
        for folder in &mut out {
            if taken.contains(&folder.path) {
                folder.path = format!("{} ({})", folder.path, folder.spec.kind.name());
            }
            taken.insert(folder.path.clone());
        }
        let mut map = lock(&self.pim);
        map.clear();
        for folder in &out {
            map.insert(folder.path.clone(), folder.clone());
        }
        Ok(out)
    }

    /// Every page of a listing of folders of one kind; none, said once in the report, when
    /// the app may not read them (a registration for mail only is answered 403): mail still
    /// migrates.
    async fn permitted(&self, what: &str, url: &str) -> StoreResult<Vec<Value>> {
        match crate::folders::all_pages(&self.client, url).await {
            Ok(found) => Ok(found),
            Err(StoreError::Unusable(said)) if said.contains("HTTP 403") => {
                lock(&self.pim_refusals).insert(what.to_string());
                self.notice(format!(
                    "{what} were not read nor written: the app may not ({said})"
                ));
                Ok(Vec::new())
            }
            Err(error) => Err(error),
        }
    }

    /// Whether the app was refused folders of this kind.
    fn pim_refused(&self, what: &str) -> bool {
        lock(&self.pim_refusals).contains(what)
    }

    /// The folder at `path`, when it is a calendar, a contact folder or a To Do list.
    pub(crate) async fn pim_folder(&self, path: &str) -> StoreResult<Option<PimFolder>> {
        if self.full_fidelity || !self.calendars {
            return Ok(None);
        }
        if lock(&self.pim).is_empty() {
            self.refresh_pim().await?;
        }
        Ok(lock(&self.pim).get(path).cloned())
    }

    pub(crate) async fn pim_needed(&self, path: &str) -> StoreResult<PimFolder> {
        if let Some(folder) = self.pim_folder(path).await? {
            return Ok(folder);
        }
        self.refresh_pim().await?;
        lock(&self.pim)
            .get(path)
            .cloned()
            .ok_or_else(|| StoreError::NotFound(format!("folder {path}")))
    }

    /// The folders as the engine sees them.
    pub(crate) async fn pim_infos(&self) -> StoreResult<Vec<FolderInfo>> {
        Ok(self
            .refresh_pim()
            .await?
            .into_iter()
            .map(|folder| FolderInfo {
                path: folder.path,
                special_use: None,
                validity: None,
                unreadable: None,
                spec: folder.spec,
                description: folder.description,
            })
            .collect())
    }

    /// Makes a calendar, a contact folder or a To Do list for `spec` at `path`.
    pub(crate) async fn create_pim_folder(&self, path: &str, spec: &FolderSpec) -> StoreResult<()> {
        if self.pim_folder(path).await?.is_some() {
            return Ok(());
        }
        let user = self.user();
        let display = spec
            .display_name
            .clone()
            .unwrap_or_else(|| path.to_string());
        let path_property = json!([{"id": PATH, "value": path}]);
        let (url, body) = match spec.kind {
            FolderKind::Calendar if spec.accepts(Kind::Event) => {
                let mut properties = vec![json!({"id": PATH, "value": path})];
                if let Some(color) = &spec.color {
                    properties.push(json!({"id": COLOR, "value": color}));
                    self.notice(
                        "a calendar's colour is kept beside it: Outlook shows its own (Graph's \
                         hexColor is read-only)"
                            .into(),
                    );
                }
                (
                    format!("{user}/calendars"),
                    json!({"name": display, "singleValueExtendedProperties": properties}),
                )
            }
            FolderKind::AddressBook => (
                format!("{user}/contactFolders"),
                json!({"displayName": display, "singleValueExtendedProperties": path_property}),
            ),
            FolderKind::TaskList | FolderKind::Calendar if spec.accepts(Kind::Task) => {
                if !self.client.uri().user_token {
                    return Err(StoreError::Permanent(format!(
                        "{path}: To Do lists take a user's token (graph://…?auth=user): \
                         Microsoft documents no application permission for them"
                    )));
                }
                if spec.display_name.as_deref().is_some_and(|d| d != path) || spec.color.is_some() {
                    self.notice(format!(
                        "{path}: a To Do list is named by its path (it cannot hold ferry's path \
                         beside another name): its display name and colour are not carried"
                    ));
                }
                (format!("{user}/todo/lists"), json!({"displayName": path}))
            }
            _ => {
                return Err(StoreError::Permanent(format!(
                    "{path}: Microsoft 365 holds no {} here",
                    spec.kind.name()
                )));
            }
        };
        match self
            .client
            .send(Method::POST, &url, Payload::Json(body), &[])
            .await
        {
            Ok(_) => {}
            Err(StoreError::Permanent(said)) if said.contains("HTTP 409") => {}
            Err(error) => return Err(error),
        }
        self.refresh_pim().await?;
        if lock(&self.pim).contains_key(path) {
            Ok(())
        } else {
            Err(StoreError::Permanent(format!(
                "{path}: a folder named {display} is there already, made by someone else"
            )))
        }
    }

    /// Changes the display name, colour and description of calendar, contact folder or To
    /// Do list `path` from `from` to `to` (see `Store::set_collection`): a display name by the
    /// folder's own property, a colour and a description in extended properties; what the
    /// folder cannot hold is said once.
    pub(crate) async fn set_pim_folder(
        &self,
        path: &str,
        from: &CollectionProps,
        to: &CollectionProps,
    ) -> StoreResult<()> {
        self.refresh_pim().await?;
        let folder = self.pim_needed(path).await?;
        let now = CollectionProps::of(&folder.spec, folder.description.as_deref());
        let (url, name_field) = match (&folder.pim, &folder.id) {
            (Pim::Event, Some(id)) => (format!("{}/calendars/{id}", self.user()), "name"),
            (Pim::Contact, Some(id)) => (
                format!("{}/contactFolders/{id}", self.user()),
                "displayName",
            ),
            _ => (String::new(), ""),
        };
        let mut body = json!({});
        let mut properties = Vec::new();
        for prop in from.changes(to, &now, path).map_err(StoreError::Conflict)? {
            let value = to.get(prop).unwrap_or_default();
            match prop {
                _ if url.is_empty() => {
                    self.notice(format!(
                        "{path}: Microsoft 365 holds no {} for this folder: not changed",
                        prop.name()
                    ));
                }
                CollectionProp::DisplayName => body[name_field] = json!(value),
                CollectionProp::Color if folder.pim == Pim::Event => {
                    properties.push(json!({"id": COLOR, "value": value}));
                }
                CollectionProp::Color => self.notice(format!(
                    "{path}: a contact folder holds no colour in Microsoft 365: not set"
                )),
                CollectionProp::Description => {
                    properties.push(json!({"id": DESCRIPTION, "value": value}));
                }
            }
        }
        if !properties.is_empty() {
            body["singleValueExtendedProperties"] = Value::Array(properties);
        }
        if body.as_object().is_some_and(|b| b.is_empty()) {
            return Ok(());
        }
        self.client
            .send(Method::PATCH, &url, Payload::Json(body), &[])
            .await?;
        self.refresh_pim().await?;
        Ok(())
    }
}
