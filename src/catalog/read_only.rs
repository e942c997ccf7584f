//! Classifies an entry as read-only when its catalog gives no
//! `readOnlyHint`. The rule looks at the leading verb of the name and of
//! the description; anything it cannot recognise as a read is treated as
//! side-effecting, the safe direction for authorization.

use super::text::identifier_words;

/// Verbs that only read or compute.
const READ_VERBS: &[&str] = &[
    "get",
    "list",
    "search",
    "find",
    "read",
    "fetch",
    "show",
    "view",
    "lookup",
    "look",
    "query",
    "describe",
    "check",
    "count",
    "retrieve",
    "browse",
    "preview",
    "inspect",
    "track",
    "status",
    "estimate",
    "calculate",
    "compare",
    "summarize",
    "summarise",
    "explain",
    "recommend",
    "suggest",
    "validate",
    "verify",
    "monitor",
    "tail",
    "diff",
    "is",
    "has",
    "can",
    "lookup",
    "forecast",
];

/// Words in a name or description that mean a side effect even after a
/// read verb (`get_or_create_user`, "Finds and deletes …").
const WRITE_WORDS: &[&str] = &[
    "create",
    "creates",
    "delete",
    "deletes",
    "remove",
    "removes",
    "update",
    "updates",
    "send",
    "sends",
    "post",
    "posts",
    "write",
    "writes",
    "set",
    "sets",
    "modify",
    "modifies",
    "cancel",
    "cancels",
    "pay",
    "pays",
    "transfer",
    "transfers",
    "book",
    "books",
    "purchase",
    "order",
    "share",
    "shares",
    "move",
    "moves",
    "upload",
    "uploads",
    "invite",
    "invites",
];

/// `true` when the entry's name and description read as read-only.
pub fn classify_read_only(name: &str, description: &str) -> bool {
    let name_words = identifier_words(name);
    let name_words: Vec<&str> = name_words.split(' ').collect();
    let desc_words: Vec<String> = description
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(12)
        .map(str::to_lowercase)
        .collect();
    // A write word anywhere in the name, or leading the description.
    if name_words.iter().any(|w| WRITE_WORDS.contains(w))
        || desc_words
            .first()
            .is_some_and(|w| WRITE_WORDS.contains(&w.as_str()))
    {
        return false;
    }
    let is_read = |w: &str| {
        let stem = w.strip_suffix("es").filter(|s| READ_VERBS.contains(s));
        let stem = stem.or_else(|| w.strip_suffix('s').filter(|s| READ_VERBS.contains(s)));
        READ_VERBS.contains(&w) || stem.is_some()
    };
    // The verb leads the name, or follows a namespace (`calendar.list_events`).
    let name_reads = name_words.iter().take(3).any(|w| is_read(w));
    let desc_reads = desc_words.first().is_some_and(|w| is_read(w))
        || desc_words
            .first()
            .is_some_and(|w| w == "returns" || w == "return");
    name_reads || desc_reads
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_read_only() {
        assert!(classify_read_only("list_events", "Lists events."));
        assert!(classify_read_only("calendar.getEvent", ""));
        assert!(classify_read_only(
            "account_balance",
            "Returns the balance of an account."
        ));
        assert!(classify_read_only("search_files", "Search the drive."));
        assert!(classify_read_only(
            "list_contacts",
            "Lists the address book."
        ));
    }

    #[test]
    fn writes_are_side_effecting() {
        assert!(!classify_read_only("send_email", "Sends an email."));
        assert!(!classify_read_only("get_or_create_user", "Finds a user."));
        assert!(!classify_read_only("lock_door", "Locks a door."));
        assert!(!classify_read_only(
            "thermostat",
            "Sets the target temperature."
        ));
        assert!(!classify_read_only("run", ""));
    }
}

#[cfg(test)]
mod fixture_tests {
    use super::*;

    /// On every annotated fixture catalog, the classifier agrees with the
    /// catalog's own `readOnlyHint`, so catalogs without hints are judged the
    /// same way.
    #[test]
    fn agrees_with_the_hints_of_the_fixture_catalogs() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/intents");
        let (mut total, mut wrong) = (0, Vec::new());
        for d in std::fs::read_dir(dir).unwrap() {
            let path = d.unwrap().path().join("catalog.json");
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            for t in v["tools"].as_array().unwrap() {
                let Some(hint) = t["annotations"]["readOnlyHint"].as_bool() else {
                    continue;
                };
                total += 1;
                let name = t["name"].as_str().unwrap();
                if classify_read_only(name, t["description"].as_str().unwrap_or("")) != hint {
                    wrong.push(name.to_string());
                }
            }
        }
        assert!(total > 100);
        assert!(
            wrong.len() * 20 <= total,
            "{} of {total} disagree: {wrong:?}",
            wrong.len()
        );
    }
}
