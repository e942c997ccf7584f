//! What a catalog entry's names say about the values it takes: the entity
//! labels that can fill each input-schema parameter, and the resource type
//! of a tool. Parameters are read from three tables, in order: an
//! identifier suffix, the schema `format`, then the words of the name.

use serde_json::Value;

use super::identifier_words;
use crate::intent::EntityLabel::{self, *};

/// A row of a table: any of these words (or formats) → these labels, the
/// first preferred.
type Row = (&'static [&'static str], &'static [EntityLabel]);

/// Last words of an identifier parameter (`file_id`, `booking_reference`,
/// `order_number`), which a request can only fix with an identifier-shaped
/// value.
const ID_SUFFIXES: &[&str] = &[
    "id",
    "ids",
    "uuid",
    "key",
    "ref",
    "reference",
    "number",
    "no",
];

/// Words that make an identifier-suffixed name a shaped value instead
/// (`email_id`, `phone_number`).
const SHAPED_VALUE_WORDS: &[&str] = &["email", "phone", "url", "iban"];

/// JSON Schema `format` values and the label they fix.
const FORMAT_ROWS: &[Row] = &[
    (&["email", "idn-email"], &[Email]),
    (&["uri", "url", "iri", "uri-reference"], &[Url]),
    (&["date", "date-time", "time"], &[Datetime]),
];

/// Words of a parameter's name and the labels they call for; the first row
/// holding a word of the name wins.
const NAME_ROWS: &[Row] = &[
    (&["email", "emails"], &[Email]),
    (&["phone", "mobile", "sms"], &[Phone]),
    (&["url", "link", "uri", "website", "webhook"], &[Url]),
    (
        &["iban", "account", "card", "source", "beneficiary"],
        &[Account, Person],
    ),
    (
        &[
            "amount", "price", "total", "budget", "cost", "sum", "payment", "fee",
        ],
        &[Money, Quantity],
    ),
    (
        &[
            "date",
            "time",
            "when",
            "start",
            "end",
            "deadline",
            "due",
            "until",
            "at",
            "departure",
            "return",
            "checkin",
            "checkout",
            "schedule",
            "day",
        ],
        &[Datetime],
    ),
    (
        &[
            "to",
            "recipient",
            "recipients",
            "attendees",
            "attendee",
            "invitees",
            "assignee",
            "user",
            "member",
            "payee",
            "cc",
            "bcc",
            "contact",
            "owner",
            "person",
            "name",
            "with",
        ],
        &[Email, Person, Phone, Account],
    ),
    (
        &[
            "destination",
            "origin",
            "city",
            "location",
            "address",
            "from",
            "place",
            "region",
            "airport",
            "venue",
            "country",
        ],
        &[Location],
    ),
    (
        &[
            "file",
            "path",
            "document",
            "doc",
            "folder",
            "filename",
            "attachment",
        ],
        &[File],
    ),
    (&["channel", "group", "thread", "room", "list"], &[Channel]),
    (
        &[
            "quantity",
            "count",
            "nights",
            "replicas",
            "guests",
            "passengers",
            "qty",
            "number",
        ],
        &[Quantity],
    ),
    (&["product", "item", "sku", "items"], &[Product]),
    (
        &[
            "company",
            "organization",
            "organisation",
            "org",
            "vendor",
            "merchant",
        ],
        &[Org],
    ),
    (
        &[
            "id",
            "ticket",
            "order",
            "invoice",
            "issue",
            "booking",
            "reference",
            "ref",
            "service",
            "repo",
            "event",
        ],
        &[Resource],
    ),
];

/// Entity labels that can fill a parameter, from its name, `format`, type
/// and description; the first label is preferred.
pub fn parameter_labels(name: &str, schema: Option<&Value>) -> Vec<EntityLabel> {
    let words = identifier_words(name);
    let has = |w: &[&str]| words.split(' ').any(|x| w.contains(&x));
    let last = words.rsplit(' ').next().unwrap_or("");
    if ID_SUFFIXES.contains(&last) && !has(SHAPED_VALUE_WORDS) {
        return vec![Resource];
    }
    // An array parameter is described by its items.
    let schema = schema.map(|s| {
        s.get("items")
            .filter(|_| s.get("type").and_then(Value::as_str) == Some("array"))
            .unwrap_or(s)
    });
    let format = schema
        .and_then(|s| s.get("format"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if let Some((_, labels)) = FORMAT_ROWS.iter().find(|(f, _)| f.contains(&format)) {
        return labels.to_vec();
    }
    NAME_ROWS
        .iter()
        .find(|(w, _)| has(w))
        .map_or_else(Vec::new, |(_, labels)| labels.to_vec())
}

/// The resource type of a tool: the last word of its name when the name
/// has a verb and an object (`send_email` → `email`), else `tool`.
pub fn resource_type(name: &str) -> String {
    let words = identifier_words(name);
    let parts: Vec<&str> = words.split(' ').collect();
    match parts.as_slice() {
        [_, .., last] => (*last).to_string(),
        _ => "tool".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parameter_labels_follow_formats_and_names() {
        assert_eq!(
            parameter_labels("to", Some(&json!({"format": "email"}))),
            vec![Email]
        );
        assert_eq!(parameter_labels("departureDate", None), vec![Datetime]);
        assert_eq!(parameter_labels("file_id", None), vec![Resource]);
        let list = json!({"type": "array", "items": {"type": "string", "format": "email"}});
        assert_eq!(parameter_labels("recipients", Some(&list)), vec![Email]);
        assert_eq!(parameter_labels("destination_city", None), vec![Location]);
        assert!(parameter_labels("verbose", None).is_empty());
    }

    #[test]
    fn the_first_matching_row_wins() {
        // "email_id" is an email, not an identifier; "start_date" matches
        // the date row only; "payment_account" meets the account row first.
        assert_eq!(parameter_labels("email_id", None), vec![Email]);
        assert_eq!(
            parameter_labels("payment_account", None),
            vec![Account, Person]
        );
        assert_eq!(
            parameter_labels("order_number", Some(&json!({"format": "email"}))),
            vec![Resource]
        );
        assert_eq!(parameter_labels("guest_count", None), vec![Quantity]);
    }

    #[test]
    fn resource_types_are_the_object_of_the_name() {
        assert_eq!(resource_type("send_email"), "email");
        assert_eq!(resource_type("calendar.createEvent"), "event");
        assert_eq!(resource_type("search"), "tool");
    }
}
