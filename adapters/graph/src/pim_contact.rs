//! A vCard (3 or 4) as a Graph contact, and back as vCard 4: sans-I/O, parsed by calcard. The
//! fidelity table (`FIDELITY`, in the README too) says what goes through; every drop is named
//! per item. The photo travels apart (`photo/$value`), as Graph keeps it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use calcard::vcard::{
    VCard, VCardEntry, VCardParameterName, VCardParameterValue, VCardProperty, VCardValue,
};
use serde_json::{Value, json};

use crate::pim::escape;

/// How each vCard property fares in Microsoft 365 (checked by a test).
pub const FIDELITY: &[(&str, &str, &str)] = &[
    ("FN", "lossless", "displayName"),
    (
        "N",
        "lossless",
        "surname, givenName, middleName, title, generation",
    ),
    ("NICKNAME", "lossless", "nickName"),
    ("EMAIL", "mapped", "emailAddresses (the first three)"),
    ("TEL;TYPE=work", "lossless", "businessPhones"),
    ("TEL;TYPE=home, TEL without type", "mapped", "homePhones"),
    ("TEL;TYPE=cell", "mapped", "mobilePhone (the first)"),
    (
        "ADR;TYPE=home|work|other",
        "mapped",
        "homeAddress, businessAddress, otherAddress (one each; post office box and extended address joined to the street)",
    ),
    ("ORG", "mapped", "companyName, department"),
    ("TITLE", "lossless", "jobTitle"),
    ("NOTE", "lossless", "personalNotes"),
    ("BDAY", "mapped", "birthday (a date)"),
    ("URL", "mapped", "businessHomePage (the first)"),
    ("CATEGORIES", "lossless", "categories"),
    ("PHOTO", "lossless", "the contact's photo (bytes and type)"),
    ("UID", "kept", "an extended property (ferry's key)"),
    ("VERSION, PRODID, REV", "normalised", "written as vCard 4.0"),
    (
        "anything else (X-*, IMPP, GEO, more addresses or e-mails…)",
        "dropped",
        "named per item in the report",
    ),
];

/// What creating one contact takes.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactWrite {
    pub key: String,
    pub body: Value,
    /// The photo: its bytes and type.
    pub photo: Option<(Vec<u8>, String)>,
    pub dropped: Vec<String>,
}

fn parts(entry: &VCardEntry) -> Vec<String> {
    entry
        .values
        .iter()
        .map(|v| match v {
            VCardValue::Text(t) => t.clone(),
            VCardValue::Component(c) => c.join(","),
            VCardValue::Integer(i) => i.to_string(),
            _ => String::new(),
        })
        .collect()
}

fn first(entry: &VCardEntry) -> String {
    parts(entry).into_iter().next().unwrap_or_default()
}

fn types(entry: &VCardEntry) -> Vec<String> {
    entry
        .params
        .iter()
        .filter(|p| p.name == VCardParameterName::Type)
        .flat_map(|p| match &p.value {
            VCardParameterValue::Type(t) => vec![format!("{t:?}").to_ascii_lowercase()],
            VCardParameterValue::Text(t) => t
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

fn photo_of(entry: &VCardEntry) -> Option<(Vec<u8>, String)> {
    entry.values.iter().find_map(|v| match v {
        VCardValue::Binary(data) => Some((
            data.data.clone(),
            data.content_type
                .clone()
                .unwrap_or_else(|| "image/jpeg".into()),
        )),
        VCardValue::Text(t) => {
            let rest = t.strip_prefix("data:")?;
            let (kind, encoded) = rest.split_once(";base64,")?;
            Some((STANDARD.decode(encoded).ok()?, kind.to_string()))
        }
        _ => None,
    })
}

/// A vCard as a Graph contact.
pub fn to_graph(text: &str) -> Result<ContactWrite, String> {
    let card = VCard::parse(text).map_err(|_| "not a vCard".to_string())?;
    let mut body = serde_json::Map::new();
    let mut dropped = Vec::new();
    let mut key = None;
    let mut photo = None;
    let (mut emails, mut home, mut work) = (Vec::new(), Vec::new(), Vec::new());
    for entry in &card.entries {
        let name = entry.name.as_str().to_string();
        let kinds = types(entry);
        match &entry.name {
            VCardProperty::Uid => key = Some(first(entry)),
            VCardProperty::Fn => {
                body.insert("displayName".into(), json!(first(entry)));
            }
            VCardProperty::N => {
                let n = parts(entry);
                let at = |i: usize| n.get(i).cloned().unwrap_or_default();
                body.insert("surname".into(), json!(at(0)));
                body.insert("givenName".into(), json!(at(1)));
                body.insert("middleName".into(), json!(at(2)));
                body.insert("title".into(), json!(at(3)));
                body.insert("generation".into(), json!(at(4)));
            }
            VCardProperty::Nickname => {
                body.insert("nickName".into(), json!(first(entry)));
            }
            VCardProperty::Email if emails.len() < 3 => {
                emails.push(json!({"address": first(entry), "name": first(entry)}))
            }
            VCardProperty::Tel if kinds.iter().any(|t| t == "cell") => {
                if body.contains_key("mobilePhone") {
                    dropped.push("TEL (a second mobile number)".into());
                } else {
                    body.insert("mobilePhone".into(), json!(first(entry)));
                }
            }
            VCardProperty::Tel if kinds.iter().any(|t| t == "fax" || t == "pager") => {
                dropped.push(format!("TEL;TYPE={}", kinds.join(",")))
            }
            VCardProperty::Tel if kinds.iter().any(|t| t == "work") => {
                work.push(json!(first(entry)))
            }
            VCardProperty::Tel => home.push(json!(first(entry))),
            VCardProperty::Adr => {
                let a = parts(entry);
                let at = |i: usize| a.get(i).cloned().unwrap_or_default();
                let street: Vec<String> = [at(0), at(1), at(2)]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect();
                let field = if kinds.iter().any(|t| t == "work") {
                    "businessAddress"
                } else if kinds.iter().any(|t| t == "home") {
                    "homeAddress"
                } else {
                    "otherAddress"
                };
                if body.contains_key(field) {
                    dropped.push(format!("ADR (a second {field})"));
                } else {
                    body.insert(field.into(), json!({"street": street.join("\n"), "city": at(3), "state": at(4), "postalCode": at(5), "countryOrRegion": at(6)}));
                }
            }
            VCardProperty::Org => {
                let o = parts(entry);
                body.insert(
                    "companyName".into(),
                    json!(o.first().cloned().unwrap_or_default()),
                );
                if let Some(department) = o.get(1).filter(|d| !d.is_empty()) {
                    body.insert("department".into(), json!(department));
                }
            }
            VCardProperty::Title => {
                body.insert("jobTitle".into(), json!(first(entry)));
            }
            VCardProperty::Note => {
                body.insert("personalNotes".into(), json!(first(entry)));
            }
            VCardProperty::Bday => {
                let date = entry.values.iter().find_map(|v| match v {
                    VCardValue::PartialDateTime(d) => Some(format!(
                        "{:04}-{:02}-{:02}T00:00:00Z",
                        d.year?, d.month?, d.day?
                    )),
                    _ => None,
                });
                match date {
                    Some(date) => {
                        body.insert("birthday".into(), json!(date));
                    }
                    None => dropped.push("BDAY (without a year)".into()),
                }
            }
            VCardProperty::Url if !body.contains_key("businessHomePage") => {
                body.insert("businessHomePage".into(), json!(first(entry)));
            }
            VCardProperty::Categories => {
                let mut have: Vec<Value> = body
                    .get("categories")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                have.extend(
                    parts(entry)
                        .into_iter()
                        .flat_map(|p| p.split(',').map(|s| json!(s)).collect::<Vec<_>>()),
                );
                body.insert("categories".into(), Value::Array(have));
            }
            VCardProperty::Photo => match photo_of(entry) {
                Some(found) if photo.is_none() => photo = Some(found),
                _ => dropped.push("PHOTO (a link, or a second one)".into()),
            },
            VCardProperty::Version
            | VCardProperty::Prodid
            | VCardProperty::Rev
            | VCardProperty::Begin
            | VCardProperty::End => {}
            _ => dropped.push(name),
        }
    }
    body.insert("emailAddresses".into(), Value::Array(emails));
    body.insert("homePhones".into(), Value::Array(home));
    body.insert("businessPhones".into(), Value::Array(work));
    // Every field ferry maps, given: an update clears what the card no longer has.
    for name in [
        "displayName",
        "surname",
        "givenName",
        "middleName",
        "title",
        "generation",
        "nickName",
        "mobilePhone",
        "companyName",
        "department",
        "jobTitle",
        "personalNotes",
        "businessHomePage",
    ] {
        body.entry(name).or_insert_with(|| json!(""));
    }
    for name in ["homeAddress", "businessAddress", "otherAddress"] {
        body.entry(name).or_insert_with(|| json!({}));
    }
    body.entry("birthday").or_insert(Value::Null);
    body.entry("categories").or_insert_with(|| json!([]));
    dropped.sort();
    dropped.dedup();
    let key = key.ok_or("a vCard without UID")?;
    Ok(ContactWrite {
        key,
        body: Value::Object(body),
        photo,
        dropped,
    })
}

/// A Graph contact (and its photo) as a vCard 4.0.
pub fn from_graph(contact: &Value, key: &str, photo: Option<&(Vec<u8>, String)>) -> String {
    let text = |name: &str| contact[name].as_str().unwrap_or_default().to_string();
    let mut out =
        String::from("BEGIN:VCARD\r\nVERSION:4.0\r\nPRODID:-//ferry//Microsoft 365//EN\r\n");
    out.push_str(&format!("UID:{}\r\n", escape(key)));
    out.push_str(&format!("FN:{}\r\n", escape(&text("displayName"))));
    let n: Vec<String> = ["surname", "givenName", "middleName", "title", "generation"]
        .iter()
        .map(|f| escape(&text(f)))
        .collect();
    if n.iter().any(|p| !p.is_empty()) {
        out.push_str(&format!("N:{}\r\n", n.join(";")));
    }
    for (field, line) in [
        ("nickName", "NICKNAME"),
        ("jobTitle", "TITLE"),
        ("personalNotes", "NOTE"),
        ("businessHomePage", "URL"),
    ] {
        if !text(field).is_empty() {
            out.push_str(&format!("{line}:{}\r\n", escape(&text(field))));
        }
    }
    if !text("companyName").is_empty() || !text("department").is_empty() {
        let mut org = escape(&text("companyName"));
        if !text("department").is_empty() {
            org.push(';');
            org.push_str(&escape(&text("department")));
        }
        out.push_str(&format!("ORG:{org}\r\n"));
    }
    for email in contact["emailAddresses"].as_array().into_iter().flatten() {
        if let Some(address) = email["address"].as_str() {
            out.push_str(&format!("EMAIL:{}\r\n", escape(address)));
        }
    }
    for (field, kind) in [("businessPhones", "work"), ("homePhones", "home")] {
        for number in contact[field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            out.push_str(&format!("TEL;TYPE={kind}:{}\r\n", escape(number)));
        }
    }
    if !text("mobilePhone").is_empty() {
        out.push_str(&format!(
            "TEL;TYPE=cell:{}\r\n",
            escape(&text("mobilePhone"))
        ));
    }
    for (field, kind) in [
        ("homeAddress", "home"),
        ("businessAddress", "work"),
        ("otherAddress", "other"),
    ] {
        let address = &contact[field];
        let part = |name: &str| escape(address[name].as_str().unwrap_or_default());
        let parts = [
            part("street"),
            part("city"),
            part("state"),
            part("postalCode"),
            part("countryOrRegion"),
        ];
        if parts.iter().any(|p| !p.is_empty()) {
            out.push_str(&format!("ADR;TYPE={kind}:;;{}\r\n", parts.join(";")));
        }
    }
    if let Some(birthday) = contact["birthday"].as_str().and_then(|b| b.get(..10)) {
        out.push_str(&format!("BDAY:{}\r\n", birthday.replace('-', "")));
    }
    if let Some(categories) = contact["categories"].as_array().filter(|c| !c.is_empty()) {
        let list: Vec<String> = categories
            .iter()
            .filter_map(|c| c.as_str().map(escape))
            .collect();
        out.push_str(&format!("CATEGORIES:{}\r\n", list.join(",")));
    }
    if let Some((bytes, kind)) = photo {
        out.push_str(&format!(
            "PHOTO:data:{kind};base64,{}\r\n",
            STANDARD.encode(bytes)
        ));
    }
    out.push_str("END:VCARD\r\n");
    VCard::parse(&out).map(|c| c.to_string()).unwrap_or(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARD: &str = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c-1@example.com\r\nFN:Jörg Müller\r\n\
N:Müller;Jörg;;Dr.;\r\nEMAIL;TYPE=work:joerg@example.com\r\nEMAIL:jm@example.org\r\n\
TEL;TYPE=work:+49 30 1234\r\nTEL;TYPE=cell:+49 170 5555\r\nTEL;TYPE=home:+49 30 9876\r\n\
ADR;TYPE=home:;;Hauptstr. 1;Berlin;;10115;Germany\r\nADR;TYPE=work:;;Work Way 2;Hamburg;;20095;Germany\r\n\
ORG:Example AG;Research\r\nTITLE:Chemist\r\nNOTE:Likes tea\\, not coffee\r\nBDAY:19800214\r\n\
PHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQSkZJRgABAQAAAQABAAD/2w==\r\nX-CUSTOM:nowhere\r\nEND:VCARD\r\n";

    #[test]
    fn a_card_with_photo_addresses_and_numbers_maps_and_comes_back() {
        let write = to_graph(CARD).expect("converts");
        assert_eq!(write.key, "c-1@example.com");
        assert_eq!(write.body["displayName"], "Jörg Müller");
        assert_eq!(write.body["surname"], "Müller");
        assert_eq!(write.body["title"], "Dr.");
        assert_eq!(write.body["mobilePhone"], "+49 170 5555");
        assert_eq!(write.body["businessPhones"], json!(["+49 30 1234"]));
        assert_eq!(write.body["homeAddress"]["city"], "Berlin");
        assert_eq!(write.body["businessAddress"]["postalCode"], "20095");
        assert_eq!(write.body["personalNotes"], "Likes tea, not coffee");
        assert_eq!(write.body["birthday"], "1980-02-14T00:00:00Z");
        assert!(
            write
                .photo
                .as_ref()
                .is_some_and(|(bytes, _)| bytes.starts_with(&[0xff, 0xd8]))
        );
        assert_eq!(write.dropped, vec!["X-CUSTOM".to_string()]);
        let back = from_graph(&write.body, &write.key, write.photo.as_ref());
        let again = to_graph(&back).expect("converts again");
        assert_eq!(again.body, write.body);
        assert_eq!(again.photo, write.photo);
        assert!(again.dropped.is_empty(), "{:?}", again.dropped);
    }
}
