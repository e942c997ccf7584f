//! The canonical text of a catalog entry, exactly as the training code
//! builds it (`models/INTERFACE.md`, `models/train/common.py::entry_text`).

use super::Entry;

/// Splits an identifier into lowercase words: on `_ - . /`, whitespace and
/// lower→upper camelCase boundaries (`sendDirectMessage` → `send direct
/// message`).
pub fn identifier_words(name: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut prev_lower_or_digit = false;
    for c in name.chars() {
        if matches!(c, '_' | '-' | '.' | '/') || c.is_whitespace() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev_lower_or_digit = false;
            continue;
        }
        if c.is_uppercase() && prev_lower_or_digit && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        prev_lower_or_digit = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words.join(" ")
}

/// `{name as words}: {description}[ Parameters: {p1}, {p2}, ...]`.
pub fn entry_text(entry: &Entry) -> String {
    let description = entry
        .description
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let mut text = format!("{}: {}", identifier_words(&entry.name), description);
    let params = entry.parameter_names();
    if !params.is_empty() {
        text.push_str(" Parameters: ");
        let words: Vec<String> = params.iter().map(|p| identifier_words(p)).collect();
        text.push_str(&words.join(", "));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{EntryKind, ReadOnlySource};
    use serde_json::json;

    #[test]
    fn splits_identifiers() {
        assert_eq!(identifier_words("sendDirectMessage"), "send direct message");
        assert_eq!(
            identifier_words("calendar.create_event"),
            "calendar create event"
        );
        assert_eq!(identifier_words("get-HTTPStatus"), "get httpstatus");
        assert_eq!(identifier_words("v2_listFiles"), "v2 list files");
    }

    #[test]
    fn builds_entry_text_with_sorted_parameters() {
        let e = Entry {
            name: "send_email".into(),
            title: None,
            description: "  Sends an\n email. ".into(),
            input_schema: json!({"type": "object", "properties": {"to": {}, "body": {}, "ccList": {}}}),
            kind: EntryKind::Tool,
            read_only: false,
            read_only_source: ReadOnlySource::Hint,
            destructive: None,
            trusted_output: false,
            allowed_tools: vec![],
        };
        assert_eq!(
            entry_text(&e),
            "send email: Sends an email. Parameters: body, cc list, to"
        );
    }
}
