//! The account's collections: listed from its home sets (with their properties and sync
//! tokens) and made, each in the home of its kind.

use ferry_engine::item::{FolderKind, FolderSpec, Kind};
use ferry_engine::store::{StoreError, StoreResult};

use crate::client::{Condition, classify};
use crate::multistatus::{self, escape};
use crate::store::{
    Collection, DavStore, component_of, kind_of, lock, name_of, path_of, segment_of,
};

impl DavStore {
    /// The account's collections, listed again (each with its sync token, when the server
    /// gives one).
    pub(crate) async fn refresh(&self) -> StoreResult<Vec<(String, Collection)>> {
        let mut listed = Vec::new();
        for home in self.homes().await?.all() {
            for member in self
                .propfind(&home, "1", multistatus::PROPFIND_COLLECTIONS)
                .await?
            {
                let props = &member.props;
                let kind = if props.resource_type.calendar {
                    FolderKind::Calendar
                } else if props.resource_type.addressbook {
                    FolderKind::AddressBook
                } else {
                    continue;
                };
                let href = path_of(&member.href);
                let spec = FolderSpec {
                    kind,
                    display_name: props.display_name.clone(),
                    color: props.color.clone(),
                    components: props.components.iter().filter_map(|c| kind_of(c)).collect(),
                };
                let token = props.sync_token.clone();
                listed.push((name_of(&href), Collection { href, spec, token }));
            }
        }
        let mut map = lock(&self.collections);
        map.clear();
        for (name, collection) in &listed {
            map.insert(name.clone(), collection.clone());
        }
        Ok(listed)
    }

    pub(crate) async fn collection(&self, folder: &str) -> StoreResult<Collection> {
        if let Some(collection) = lock(&self.collections).get(folder) {
            return Ok(collection.clone());
        }
        self.refresh().await?;
        lock(&self.collections)
            .get(folder)
            .cloned()
            .ok_or_else(|| StoreError::NotFound(format!("collection {folder}")))
    }

    /// Makes collection `folder` of `spec` in the home of its kind (a task list or journal: a
    /// calendar of those components), unless it is there.
    pub(crate) async fn make_collection(&self, folder: &str, spec: &FolderSpec) -> StoreResult<()> {
        if self.collection(folder).await.is_ok() {
            return Ok(());
        }
        let homes = self.homes().await?;
        let home = match spec.kind {
            FolderKind::AddressBook => homes.address_books.clone(),
            _ => homes.calendars.clone(),
        };
        let href = format!("{home}{}/", segment_of(folder));
        let name = spec.display_name.as_deref().unwrap_or(folder);
        // A task list (To Do) or a journal is a calendar of those components here.
        let components: Vec<Kind> = match (spec.kind, spec.components.is_empty()) {
            (FolderKind::TaskList, true) => vec![Kind::Task],
            (FolderKind::Notes, true) => vec![Kind::Journal],
            _ => spec.components.clone(),
        };
        let calendar = match spec.kind {
            FolderKind::Calendar => true,
            FolderKind::TaskList | FolderKind::Notes => {
                !components.is_empty() && components.iter().all(|k| component_of(*k).is_some())
            }
            _ => false,
        };
        let (method, body) = match spec.kind {
            _ if calendar => {
                let mut props = format!("<d:displayname>{}</d:displayname>", escape(name));
                if let Some(color) = &spec.color {
                    props.push_str(&format!(
                        "<a:calendar-color>{}</a:calendar-color>",
                        escape(color)
                    ));
                }
                let components: Vec<&str> =
                    components.iter().filter_map(|k| component_of(*k)).collect();
                if !components.is_empty() {
                    props.push_str("<c:supported-calendar-component-set>");
                    for component in components {
                        props.push_str(&format!("<c:comp name=\"{component}\"/>"));
                    }
                    props.push_str("</c:supported-calendar-component-set>");
                }
                (
                    "MKCALENDAR",
                    format!(
                        r#"<?xml version="1.0" encoding="utf-8"?><c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:a="http://apple.com/ns/ical/"><d:set><d:prop>{props}</d:prop></d:set></c:mkcalendar>"#
                    ),
                )
            }
            FolderKind::AddressBook => (
                "MKCOL",
                format!(
                    r#"<?xml version="1.0" encoding="utf-8"?><d:mkcol xmlns:d="DAV:" xmlns:r="urn:ietf:params:xml:ns:carddav"><d:set><d:prop><d:resourcetype><d:collection/><r:addressbook/></d:resourcetype><d:displayname>{}</d:displayname></d:prop></d:set></d:mkcol>"#,
                    escape(name)
                ),
            ),
            other => {
                return Err(StoreError::Permanent(format!(
                    "{folder}: a CalDAV/CardDAV account holds no {}",
                    other.name()
                )));
            }
        };
        let answer = self
            .client
            .send(
                method,
                &href,
                &[],
                Some(("application/xml; charset=utf-8", body.into_bytes())),
                Condition::None,
            )
            .await?;
        self.refresh().await?;
        // Refused because it is there already (made by an earlier try whose answer was lost:
        // 405 or 409, or a 207 telling a 403 inside, by server): fine once it is listed.
        if ((200..300).contains(&answer.status) && answer.status != 207)
            || lock(&self.collections).contains_key(folder)
        {
            return Ok(());
        }
        Err(classify(method, &href, &answer))
    }
}
