//! The account's collections: listed from its home sets (with their properties and sync
//! tokens) and made, each in the home of its kind.

use ferry_engine::item::{
    CollectionProp, CollectionProps, FolderKind, FolderSpec, Kind, same_value,
};
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
                let description = props.description.clone();
                listed.push((
                    name_of(&href),
                    Collection {
                        href,
                        spec,
                        description,
                        token,
                    },
                ));
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

    /// Changes the properties of collection `folder` that differ between `from` and `to`
    /// (one PROPPATCH), each only if the collection holds its `from` value; a property that
    /// holds its `to` value already is left (a change redone after a crash). Anything else
    /// changed on the target is a conflict: nothing is changed.
    pub(crate) async fn set_properties(
        &self,
        folder: &str,
        from: &CollectionProps,
        to: &CollectionProps,
    ) -> StoreResult<()> {
        let collection = self.collection(folder).await?;
        let now = self
            .propfind(&collection.href, "0", multistatus::PROPFIND_COLLECTIONS)
            .await?
            .into_iter()
            .next()
            .map(|member| member.props)
            .ok_or_else(|| StoreError::NotFound(format!("collection {folder}")))?;
        let now = CollectionProps {
            display_name: now.display_name,
            color: now.color,
            description: now.description,
        };
        let address_book = collection.spec.kind == FolderKind::AddressBook;
        let mut changes = Vec::new();
        for prop in from
            .changes(to, &now, folder)
            .map_err(StoreError::Conflict)?
        {
            let element = match prop {
                CollectionProp::DisplayName => "d:displayname",
                CollectionProp::Color if address_book => {
                    self.notice(format!(
                        "{folder}: an address book holds no colour here: not set"
                    ));
                    continue;
                }
                CollectionProp::Color => "a:calendar-color",
                CollectionProp::Description if address_book => "r:addressbook-description",
                CollectionProp::Description => "c:calendar-description",
            };
            changes.push((prop, element, to.get(prop)));
        }
        if changes.is_empty() {
            return Ok(());
        }
        self.wrote(&collection.href);
        let elements: Vec<(&str, Option<&str>)> = changes
            .iter()
            .map(|(_, element, value)| (*element, *value))
            .collect();
        let answer = self
            .client
            .send(
                "PROPPATCH",
                &collection.href,
                &[],
                Some((
                    "application/xml; charset=utf-8",
                    multistatus::proppatch(&elements).into_bytes(),
                )),
                Condition::None,
            )
            .await?;
        if !(200..300).contains(&answer.status) {
            return Err(classify("PROPPATCH", &collection.href, &answer));
        }
        // A 207 tells each property's outcome: what the collection holds now is asked.
        let kept = self
            .refresh()
            .await?
            .into_iter()
            .find(|(name, _)| name == folder)
            .map(|(_, collection)| collection);
        let kept = kept.map(|c| CollectionProps::of(&c.spec, c.description.as_deref()));
        let refused: Vec<&str> = changes
            .iter()
            .filter(|(prop, _, value)| {
                !same_value(kept.as_ref().and_then(|k| k.get(*prop)), *value)
            })
            .map(|(prop, _, _)| prop.name())
            .collect();
        // A server that keeps no such property (Xandikos 0.2.8 answers 409 to setting a
        // calendar's description) is a limit of the target, said once, not a failed write.
        if !refused.is_empty() {
            self.notice(format!(
                "{folder}: the target server did not keep its {} (PROPPATCH refused): not carried",
                refused.join(", ")
            ));
        }
        Ok(())
    }
}
