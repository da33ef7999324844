//! OData query options as Graph takes them on messages and folders
//! (https://learn.microsoft.com/en-us/graph/query-parameters): `$select`, `$top`, `$skip`,
//! `$filter` (the comparisons and the extended-property lambda that mail clients use),
//! `$expand=singleValueExtendedProperties($filter=id eq '…')`, and the paging and delta
//! tokens. What it does not understand is refused with 400, as the service does, never ignored.

use chrono::{DateTime, Utc};

use crate::world::Message;

/// The query options of one request.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub select: Option<Vec<String>>,
    pub top: Option<usize>,
    pub skip: usize,
    pub filter: Vec<Clause>,
    /// Extended properties to expand, by id.
    pub expand: Option<Vec<String>>,
    /// `$expand=linkedResources` (To Do tasks).
    pub expand_linked: bool,
    pub skiptoken: Option<String>,
    pub deltatoken: Option<String>,
    /// Every option as given, for links that carry them on.
    pub raw: Vec<(String, String)>,
}

/// One comparison of a `$filter`, all of which must hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Clause {
    /// `singleValueExtendedProperties/any(ep: ep/id eq 'ID' and ep/value eq 'VALUE')`
    Property { id: String, value: String },
    /// `PROPERTY OP LITERAL`
    Compare {
        property: String,
        op: Op,
        value: Literal,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Ge,
    Gt,
    Le,
    Lt,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Text(String),
    Bool(bool),
    Date(DateTime<Utc>),
}

/// Why a query was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl Query {
    /// Parses a URL's query string.
    pub fn parse(query: &str) -> Result<Query, Invalid> {
        let mut out = Query::default();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let (name, value) = (name.into_owned(), value.into_owned());
            match name.to_ascii_lowercase().trim_start_matches('$') {
                "select" => {
                    out.select = Some(value.split(',').map(|s| s.trim().to_string()).collect());
                }
                "top" => {
                    out.top = Some(
                        value
                            .parse()
                            .map_err(|_| Invalid(format!("Invalid $top value '{value}'")))?,
                    )
                }
                "skip" => {
                    out.skip = value
                        .parse()
                        .map_err(|_| Invalid(format!("Invalid $skip value '{value}'")))?
                }
                "filter" => out.filter = parse_filter(&value)?,
                "expand" if value.eq_ignore_ascii_case("linkedResources") => {
                    out.expand_linked = true
                }
                "expand" => out.expand = Some(parse_expand(&value)?),
                "skiptoken" => out.skiptoken = Some(value.clone()),
                "deltatoken" => out.deltatoken = Some(value.clone()),
                "count"
                | "orderby"
                | "includehiddenfolders"
                | "disposaltype"
                | "startdatetime"
                | "enddatetime" => {}
                other => {
                    return Err(Invalid(format!(
                        "Query option '{other}' is not supported here"
                    )));
                }
            }
            out.raw.push((name, value));
        }
        Ok(out)
    }

    /// Whether a message passes the `$filter`.
    pub fn matches(&self, message: &Message) -> bool {
        self.filter.iter().all(|clause| clause.holds(message))
    }
}

impl Clause {
    fn holds(&self, message: &Message) -> bool {
        match self {
            Clause::Property { id, value } => message.property(id) == Some(value.as_str()),
            Clause::Compare {
                property,
                op,
                value,
            } => {
                let ordering = match (property.as_str(), value) {
                    ("isRead", Literal::Bool(b)) => message.is_read.cmp(b),
                    ("isDraft", Literal::Bool(b)) => message.is_draft.cmp(b),
                    ("receivedDateTime", Literal::Date(d)) => message.received.cmp(d),
                    ("lastModifiedDateTime", Literal::Date(d)) => message.modified.cmp(d),
                    ("subject", Literal::Text(t)) => message.subject.as_str().cmp(t.as_str()),
                    ("internetMessageId", Literal::Text(t)) => {
                        message.internet_message_id.as_str().cmp(t.as_str())
                    }
                    ("flag/flagStatus", Literal::Text(t)) => {
                        message.flag_status.as_str().cmp(t.as_str())
                    }
                    _ => return false,
                };
                use std::cmp::Ordering::*;
                match op {
                    Op::Eq => ordering == Equal,
                    Op::Ne => ordering != Equal,
                    Op::Ge => ordering != Less,
                    Op::Gt => ordering == Greater,
                    Op::Le => ordering != Greater,
                    Op::Lt => ordering == Less,
                }
            }
        }
    }
}

const PROPERTIES: &[&str] = &[
    "isRead",
    "isDraft",
    "receivedDateTime",
    "lastModifiedDateTime",
    "subject",
    "internetMessageId",
    "flag/flagStatus",
];

/// Splits `text` at ` and ` outside quotes and parentheses.
fn split_and(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let (mut depth, mut quoted, mut start, mut parts) = (0i32, false, 0, Vec::new());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => quoted = !quoted,
            b'(' if !quoted => depth += 1,
            b')' if !quoted => depth -= 1,
            b' ' if !quoted
                && depth == 0
                && text[i..].to_ascii_lowercase().starts_with(" and ") =>
            {
                parts.push(text[start..i].trim());
                i += 5;
                start = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(text[start..].trim());
    parts
}

/// A quoted OData string (`'it''s'`).
fn quoted(text: &str) -> Option<String> {
    let inner = text.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("''", "'"))
}

fn parse_filter(text: &str) -> Result<Vec<Clause>, Invalid> {
    let invalid = || Invalid(format!("Invalid filter clause: {text}"));
    let mut clauses = Vec::new();
    for part in split_and(text) {
        let lower = part.to_ascii_lowercase();
        if lower.starts_with("singlevalueextendedproperties/any(") {
            let body = part
                .split_once(':')
                .map(|(_, rest)| rest)
                .and_then(|rest| rest.trim().strip_suffix(')'))
                .ok_or_else(invalid)?;
            let (mut id, mut value) = (None, None);
            for condition in split_and(body) {
                let (left, right) = condition.split_once(" eq ").ok_or_else(invalid)?;
                let literal = quoted(right).ok_or_else(invalid)?;
                if left.trim().ends_with("/id") {
                    id = Some(literal);
                } else if left.trim().ends_with("/value") {
                    value = Some(literal);
                } else {
                    return Err(invalid());
                }
            }
            clauses.push(Clause::Property {
                id: id.ok_or_else(invalid)?,
                value: value.ok_or_else(invalid)?,
            });
            continue;
        }
        let mut words = part.splitn(3, ' ');
        let (property, op, value) = (
            words.next().ok_or_else(invalid)?,
            words.next().ok_or_else(invalid)?,
            words.next().ok_or_else(invalid)?,
        );
        let property = PROPERTIES
            .iter()
            .find(|known| known.eq_ignore_ascii_case(property))
            .ok_or_else(|| Invalid(format!("Could not find a property named '{property}'")))?;
        let op = match op {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "ge" => Op::Ge,
            "gt" => Op::Gt,
            "le" => Op::Le,
            "lt" => Op::Lt,
            _ => return Err(invalid()),
        };
        let value = if let Some(text) = quoted(value) {
            Literal::Text(text)
        } else if value == "true" || value == "false" {
            Literal::Bool(value == "true")
        } else {
            Literal::Date(
                DateTime::parse_from_rfc3339(value)
                    .map_err(|_| invalid())?
                    .with_timezone(&Utc),
            )
        };
        clauses.push(Clause::Compare {
            property: (*property).to_string(),
            op,
            value,
        });
    }
    Ok(clauses)
}

/// `singleValueExtendedProperties($filter=id eq 'A' or id eq 'B')`: the ids.
fn parse_expand(text: &str) -> Result<Vec<String>, Invalid> {
    let invalid = || Invalid(format!("Invalid $expand: {text}"));
    let inner = text
        .strip_prefix("singleValueExtendedProperties(")
        .and_then(|rest| rest.strip_suffix(')'))
        .ok_or_else(invalid)?;
    let filter = inner.strip_prefix("$filter=").ok_or_else(invalid)?;
    filter
        .split(" or ")
        .map(|condition| {
            condition
                .trim()
                .strip_prefix("id eq ")
                .and_then(quoted)
                .ok_or_else(invalid)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_lambda_and_comparisons_parse() {
        let query = Query::parse(
            "$filter=singleValueExtendedProperties%2FAny(ep%3A%20ep%2Fid%20eq%20'String%20%7B66f5a359-4659-4830-9070-00047ec6ac6e%7D%20Name%20ferryKey'%20and%20ep%2Fvalue%20eq%20'ab''c')%20and%20isRead%20eq%20false&$top=5&$select=id,subject",
        )
        .expect("parses");
        assert_eq!(
            query.filter[0],
            Clause::Property {
                id: "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name ferryKey".into(),
                value: "ab'c".into()
            }
        );
        assert_eq!(
            query.filter[1],
            Clause::Compare {
                property: "isRead".into(),
                op: Op::Eq,
                value: Literal::Bool(false)
            }
        );
        assert_eq!(query.top, Some(5));
        assert_eq!(query.select.as_deref().map(|s| s.len()), Some(2));
    }

    #[test]
    fn expansions_and_refusals() {
        let query = Query::parse(
            "$expand=singleValueExtendedProperties($filter=id eq 'Integer 0x0E08' or id eq 'Integer 0x0E07')",
        )
        .expect("parses");
        assert_eq!(
            query.expand,
            Some(vec!["Integer 0x0E08".into(), "Integer 0x0E07".into()])
        );
        assert!(Query::parse("$filter=bogus eq 1").is_err());
        assert!(Query::parse("$frobnicate=1").is_err());
        assert!(Query::parse("$top=x").is_err());
    }
}
