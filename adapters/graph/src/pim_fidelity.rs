//! The fidelity tables of calendars, contacts and tasks into and out of Microsoft 365, as the
//! README shows them: made from the converters' own tables, so that the README says what the
//! code does (a test holds them equal).

use crate::{pim_contact, pim_event, pim_task};

/// The three tables in Markdown.
pub fn markdown() -> String {
    let mut out = String::new();
    for (title, rows) in [
        (
            "event (iCalendar VEVENT) ↔ Graph event",
            pim_event::FIDELITY,
        ),
        (
            "contact (vCard 3 or 4) ↔ Graph contact",
            pim_contact::FIDELITY,
        ),
        ("task (iCalendar VTODO) ↔ To Do task", pim_task::FIDELITY),
    ] {
        out.push_str(&format!("| {title} | fate | as |\n|---|---|---|\n"));
        for (property, fate, how) in rows {
            out.push_str(&format!("| {property} | {fate} | {how} |\n"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_readme_shows_the_tables_the_converters_keep() {
        let readme = include_str!("../../../README.md");
        let block = readme
            .split("<!-- fidelity:begin -->\n")
            .nth(1)
            .and_then(|rest| rest.split("<!-- fidelity:end -->").next())
            .expect("the README's fidelity block");
        assert_eq!(
            block,
            super::markdown(),
            "README.md's fidelity tables differ from the converters' (write them from pim_fidelity::markdown)"
        );
    }
}
