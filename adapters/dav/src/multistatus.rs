//! WebDAV's answers and questions as data, without a socket: the request bodies ferry sends
//! (PROPFIND, the sync-collection REPORT of RFC 6578, the calendar-multiget and
//! addressbook-multiget REPORTs of RFC 4791 and RFC 6352) and the `207 Multi-Status` answers
//! they get (RFC 4918 §13), parsed with roxmltree by namespace and local name, never by
//! prefix (servers choose their own prefixes).
//!
//! Only what ferry reads is kept: a member's href, its status (a `404` member of a
//! sync-collection answer is one removed), and of its `200` properties the resource type,
//! display name, colour, description, supported components, ETag, sync token, the principal
//! and home-set hrefs, and the calendar or address data of a multiget.

use roxmltree::{Document, Node};

/// `DAV:`.
pub const DAV: &str = "DAV:";
/// CalDAV (RFC 4791).
pub const CALDAV: &str = "urn:ietf:params:xml:ns:caldav";
/// CardDAV (RFC 6352).
pub const CARDDAV: &str = "urn:ietf:params:xml:ns:carddav";
/// Apple's calendar properties (`calendar-color`).
pub const APPLE: &str = "http://apple.com/ns/ical/";

/// What a resource is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceType {
    pub collection: bool,
    pub calendar: bool,
    pub addressbook: bool,
}

/// The properties of one member that ferry reads (those answered `200`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Props {
    pub resource_type: ResourceType,
    pub display_name: Option<String>,
    /// `#RRGGBB` or `#RRGGBBAA`, as the server gives it.
    pub color: Option<String>,
    pub description: Option<String>,
    /// Component names (`VEVENT`, `VTODO`, `VJOURNAL`) a calendar accepts.
    pub components: Vec<String>,
    pub etag: Option<String>,
    pub sync_token: Option<String>,
    pub current_user_principal: Option<String>,
    pub calendar_home_set: Option<String>,
    pub addressbook_home_set: Option<String>,
    /// A multiget's `calendar-data` or `address-data`.
    pub data: Option<String>,
}

/// One `response` of a multistatus.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Member {
    pub href: String,
    /// The status of the member itself (`HTTP/1.1 404 Not Found` for a member a sync report
    /// says is gone), as a code; `None` when only its properties carry statuses.
    pub status: Option<u16>,
    pub props: Props,
}

/// A parsed `207 Multi-Status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MultiStatus {
    pub members: Vec<Member>,
    /// The sync token a sync-collection report ends with.
    pub sync_token: Option<String>,
}

/// Why an answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the server's XML answer cannot be read: {0}")]
pub struct Unreadable(pub String);

fn is(node: &Node<'_, '_>, namespace: &str, name: &str) -> bool {
    node.is_element()
        && node.tag_name().namespace() == Some(namespace)
        && node.tag_name().name() == name
}

fn child<'a, 'i>(node: &Node<'a, 'i>, namespace: &str, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| is(c, namespace, name))
}

fn text(node: &Node<'_, '_>) -> String {
    node.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect::<String>()
        .trim()
        .to_string()
}

/// The code of an `HTTP/1.1 200 OK` status line.
fn status_code(line: &str) -> Option<u16> {
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The href inside a property such as `current-user-principal`.
fn href_in(node: &Node<'_, '_>) -> Option<String> {
    child(node, DAV, "href")
        .map(|h| text(&h))
        .filter(|h| !h.is_empty())
}

fn read_props(prop: &Node<'_, '_>, props: &mut Props) {
    for p in prop.children().filter(Node::is_element) {
        let (ns, name) = (p.tag_name().namespace().unwrap_or(""), p.tag_name().name());
        match (ns, name) {
            (DAV, "resourcetype") => {
                props.resource_type = ResourceType {
                    collection: child(&p, DAV, "collection").is_some(),
                    calendar: child(&p, CALDAV, "calendar").is_some(),
                    addressbook: child(&p, CARDDAV, "addressbook").is_some(),
                }
            }
            (DAV, "displayname") => props.display_name = Some(text(&p)).filter(|t| !t.is_empty()),
            (DAV, "getetag") => props.etag = Some(text(&p)).filter(|t| !t.is_empty()),
            (DAV, "sync-token") => props.sync_token = Some(text(&p)).filter(|t| !t.is_empty()),
            (DAV, "current-user-principal") => props.current_user_principal = href_in(&p),
            (CALDAV, "calendar-home-set") => props.calendar_home_set = href_in(&p),
            (CARDDAV, "addressbook-home-set") => props.addressbook_home_set = href_in(&p),
            (APPLE, "calendar-color") => props.color = Some(text(&p)).filter(|t| !t.is_empty()),
            (CALDAV, "calendar-description") | (CARDDAV, "addressbook-description") => {
                props.description = Some(text(&p)).filter(|t| !t.is_empty())
            }
            (CALDAV, "supported-calendar-component-set") => {
                props.components = p
                    .children()
                    .filter(|c| is(c, CALDAV, "comp"))
                    .filter_map(|c| c.attribute("name").map(str::to_ascii_uppercase))
                    .collect()
            }
            (CALDAV, "calendar-data") | (CARDDAV, "address-data") => {
                props.data = p.text().map(str::to_string)
            }
            _ => {}
        }
    }
}

/// Parses a `207 Multi-Status` body.
pub fn parse(body: &str) -> Result<MultiStatus, Unreadable> {
    let document = Document::parse(body).map_err(|e| Unreadable(e.to_string()))?;
    let root = document.root_element();
    if !is(&root, DAV, "multistatus") {
        return Err(Unreadable(format!(
            "<{}> where a multistatus was expected",
            root.tag_name().name()
        )));
    }
    let mut out = MultiStatus::default();
    for node in root.children().filter(Node::is_element) {
        if is(&node, DAV, "sync-token") {
            out.sync_token = Some(text(&node)).filter(|t| !t.is_empty());
            continue;
        }
        if !is(&node, DAV, "response") {
            continue;
        }
        let Some(href) = child(&node, DAV, "href").map(|h| text(&h)) else {
            continue;
        };
        let mut member = Member {
            href,
            status: child(&node, DAV, "status").and_then(|s| status_code(&text(&s))),
            props: Props::default(),
        };
        for propstat in node.children().filter(|c| is(c, DAV, "propstat")) {
            let ok = child(&propstat, DAV, "status")
                .and_then(|s| status_code(&text(&s)))
                .is_some_and(|code| (200..300).contains(&code));
            if let (true, Some(prop)) = (ok, child(&propstat, DAV, "prop")) {
                read_props(&prop, &mut member.props);
            }
        }
        out.members.push(member);
    }
    Ok(out)
}

/// Whether an error body names the `valid-sync-token` precondition (RFC 6578 §3.2): the
/// server no longer knows the token, and the collection is to be listed in full.
pub fn invalid_sync_token(body: &str) -> bool {
    Document::parse(body).is_ok_and(|document| {
        document
            .descendants()
            .any(|n| is(&n, DAV, "valid-sync-token"))
    })
}

/// Escapes text for an XML element.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A PROPPATCH that sets (`Some`) or removes (`None`) each property, named with the prefixes
/// of [`PROPFIND_COLLECTIONS`] (`d:displayname`, `a:calendar-color`, `c:calendar-description`,
/// `r:addressbook-description`).
pub fn proppatch(changes: &[(&str, Option<&str>)]) -> String {
    let mut body = String::from(
        r#"<?xml version="1.0" encoding="utf-8"?><d:propertyupdate xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:r="urn:ietf:params:xml:ns:carddav" xmlns:a="http://apple.com/ns/ical/">"#,
    );
    for (name, value) in changes {
        match value {
            Some(value) => body.push_str(&format!(
                "<d:set><d:prop><{name}>{}</{name}></d:prop></d:set>",
                escape(value)
            )),
            None => body.push_str(&format!("<d:remove><d:prop><{name}/></d:prop></d:remove>")),
        }
    }
    body.push_str("</d:propertyupdate>");
    body
}

/// PROPFIND for the principal and its home sets.
pub const PROPFIND_PRINCIPAL: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:r="urn:ietf:params:xml:ns:carddav">
  <d:prop><d:current-user-principal/><c:calendar-home-set/><r:addressbook-home-set/></d:prop>
</d:propfind>"#;

/// PROPFIND (depth 1 on a home set) for the collections and what ferry carries of them.
pub const PROPFIND_COLLECTIONS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:r="urn:ietf:params:xml:ns:carddav" xmlns:a="http://apple.com/ns/ical/">
  <d:prop><d:resourcetype/><d:displayname/><a:calendar-color/><c:calendar-description/><r:addressbook-description/><c:supported-calendar-component-set/><d:sync-token/></d:prop>
</d:propfind>"#;

/// PROPFIND (depth 1 on a collection) for its members' ETags: the listing of a server without
/// sync-collection.
pub const PROPFIND_ETAGS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/><d:getetag/></d:prop></d:propfind>"#;

/// A sync-collection REPORT from `token` (the initial one when empty).
pub fn sync_collection(token: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<d:sync-collection xmlns:d="DAV:">
  <d:sync-token>{}</d:sync-token>
  <d:sync-level>1</d:sync-level>
  <d:prop><d:getetag/></d:prop>
</d:sync-collection>"#,
        escape(token)
    )
}

/// A calendar-multiget (`calendar`) or addressbook-multiget REPORT for `hrefs`.
pub fn multiget(calendar: bool, hrefs: &[&str]) -> String {
    let (root, ns, data) = if calendar {
        ("calendar-multiget", CALDAV, "calendar-data")
    } else {
        ("addressbook-multiget", CARDDAV, "address-data")
    };
    let hrefs: String = hrefs
        .iter()
        .map(|h| format!("<d:href>{}</d:href>", escape(h)))
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<x:{root} xmlns:d="DAV:" xmlns:x="{ns}"><d:prop><d:getetag/><x:{data}/></d:prop>{hrefs}</x:{root}>"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proppatch_sets_and_removes_with_text_escaped() {
        let body = proppatch(&[
            ("d:displayname", Some("R&D <team>")),
            ("c:calendar-description", None),
        ]);
        let document = Document::parse(&body).expect("well-formed XML");
        let root = document.root_element();
        assert_eq!(root.tag_name().name(), "propertyupdate");
        let set = root.children().find(|n| n.has_tag_name((DAV, "set")));
        let name = set
            .and_then(|n| {
                n.descendants()
                    .find(|n| n.has_tag_name((DAV, "displayname")))
            })
            .and_then(|n| n.text());
        assert_eq!(name, Some("R&D <team>"));
        let removed = root
            .children()
            .find(|n| n.has_tag_name((DAV, "remove")))
            .map(|n| {
                n.descendants()
                    .any(|n| n.has_tag_name((CALDAV, "calendar-description")))
            });
        assert_eq!(removed, Some(true));
    }

    #[test]
    fn a_sync_report_gives_changed_and_removed_members_and_the_new_token() {
        // RFC 6578 §3.8's example, prefixes changed as a server may.
        let body = r#"<?xml version="1.0" encoding="utf-8" ?>
<x:multistatus xmlns:x="DAV:">
  <x:response>
    <x:href>/home/cyrusdaboo/calendars/default/test.ics</x:href>
    <x:propstat><x:prop><x:getetag>"00001-abcd1"</x:getetag></x:prop>
      <x:status>HTTP/1.1 200 OK</x:status></x:propstat>
  </x:response>
  <x:response>
    <x:href>/home/cyrusdaboo/calendars/default/old.ics</x:href>
    <x:status>HTTP/1.1 404 Not Found</x:status>
  </x:response>
  <x:sync-token>http://example.com/ns/sync/1234</x:sync-token>
</x:multistatus>"#;
        let parsed = parse(body).expect("parse");
        assert_eq!(
            parsed.sync_token.as_deref(),
            Some("http://example.com/ns/sync/1234")
        );
        assert_eq!(parsed.members.len(), 2);
        assert_eq!(
            parsed.members[0].props.etag.as_deref(),
            Some("\"00001-abcd1\"")
        );
        assert_eq!(parsed.members[0].status, None);
        assert_eq!(parsed.members[1].status, Some(404));
    }

    #[test]
    fn collections_give_their_kind_name_colour_and_components() {
        let body = r#"<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:A="http://apple.com/ns/ical/" xmlns:R="urn:ietf:params:xml:ns:carddav">
<response><href>/alice/work/</href><propstat><prop>
  <resourcetype><collection/><C:calendar/></resourcetype>
  <displayname>Work &amp; more</displayname><A:calendar-color>#FF8800</A:calendar-color>
  <C:supported-calendar-component-set><C:comp name="VEVENT"/><C:comp name="vtodo"/></C:supported-calendar-component-set>
</prop><status>HTTP/1.1 200 OK</status></propstat>
<propstat><prop><R:addressbook-description/></prop><status>HTTP/1.1 404 Not Found</status></propstat></response>
<response><href>/alice/contacts/</href><propstat><prop>
  <resourcetype><collection/><R:addressbook/></resourcetype><R:addressbook-description>People</R:addressbook-description>
</prop><status>HTTP/1.1 200 OK</status></propstat></response>
</multistatus>"#;
        let parsed = parse(body).expect("parse");
        let work = &parsed.members[0].props;
        assert!(work.resource_type.calendar && work.resource_type.collection);
        assert_eq!(work.display_name.as_deref(), Some("Work & more"));
        assert_eq!(work.color.as_deref(), Some("#FF8800"));
        assert_eq!(work.components, vec!["VEVENT", "VTODO"]);
        let contacts = &parsed.members[1].props;
        assert!(contacts.resource_type.addressbook);
        assert_eq!(contacts.description.as_deref(), Some("People"));
    }

    #[test]
    fn a_multiget_gives_each_items_data_and_a_lost_token_is_recognised() {
        let body = r#"<D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
<D:response><D:href>/cal/a.ics</D:href><D:propstat><D:prop><D:getetag>"1"</D:getetag>
<C:calendar-data>BEGIN:VCALENDAR&#13;
END:VCALENDAR&#13;
</C:calendar-data></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>
</D:multistatus>"#;
        let parsed = parse(body).expect("parse");
        assert_eq!(
            parsed.members[0].props.data.as_deref(),
            Some("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
        );
        assert!(invalid_sync_token(
            r#"<D:error xmlns:D="DAV:"><D:valid-sync-token/></D:error>"#
        ));
        assert!(!invalid_sync_token("<D:error xmlns:D=\"DAV:\"/>"));
        assert!(parse("<html>").is_err());
        let asked = multiget(true, &["/cal/a&b.ics"]);
        assert!(
            asked.contains("<d:href>/cal/a&amp;b.ics</d:href>") && asked.contains("calendar-data")
        );
        assert!(sync_collection("").contains("<d:sync-token></d:sync-token>"));
    }
}
