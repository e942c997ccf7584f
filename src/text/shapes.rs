//! Shape validators for exactly-shaped values: emails, URLs, IBANs (with
//! the ISO 13616 mod-97 check), phone numbers, ISO 8601 dates, amounts
//! with a currency, cloud regions, release versions and record IDs.

use regex::Regex;
use std::sync::LazyLock;

use super::Span;
use crate::intent::EntityLabel;

struct Pattern {
    label: EntityLabel,
    regex: Regex,
    check: fn(&str) -> bool,
}

fn always(_: &str) -> bool {
    true
}

fn enough_digits(s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    (9..=15).contains(&digits)
}

/// An identifier of a record: `#1234`, or an upper-case code with a digit
/// (`PROJ-451`, `INV-2024-017`, `D-20931`, `2JD8XN`).
fn id_shaped(s: &str) -> bool {
    if let Some(rest) = s.strip_prefix('#') {
        return rest.starts_with(|c: char| c.is_ascii_digit());
    }
    s.len() >= 4
        && s.chars().any(|c| c.is_ascii_digit())
        && s.chars().any(|c| c.is_ascii_uppercase())
        && !s.chars().any(|c| c.is_lowercase())
}

/// `v` and two or more numbers, or exactly three numbers: a version. Two
/// bare numbers are a decimal, four an IP address; three with a
/// four-digit part are a date (`14.03.2025`) or a phone number
/// (`415.555.0100`).
fn version_shaped(s: &str) -> bool {
    let core = s.split('-').next().unwrap_or(s);
    match core.strip_prefix('v') {
        Some(rest) => rest.split('.').count() >= 2,
        None => {
            let parts: Vec<&str> = core.split('.').collect();
            parts.len() == 3 && parts.iter().all(|p| p.len() < 4)
        }
    }
}

/// Units and counted things after a number (`8 replicas`, `3 nights`,
/// `10 GB`); durations are dates, not quantities.
fn counted(s: &str) -> bool {
    const UNITS: &[&str] = &[
        "gb", "mb", "tb", "kb", "gib", "mib", "kg", "g", "lb", "lbs", "km", "mi", "m", "cm", "mm",
        "l", "ml", "oz", "x", "pcs", "px",
    ];
    const NOT_COUNTS: &[&str] = &[
        "seconds", "minutes", "hours", "days", "weeks", "months", "years", "mins", "secs", "hrs",
        "dollars", "euros", "pounds", "bucks", "francs", "rupees", "am", "pm", "percent",
    ];
    let unit = s
        .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == ',')
        .trim()
        .to_lowercase();
    UNITS.contains(&unit.as_str())
        || (unit.len() >= 4 && unit.ends_with('s') && !NOT_COUNTS.contains(&unit.as_str()))
}

/// Nouns that name the kind of record an identifier belongs to; the guide
/// keeps them in the span ("order #A1234", "ticket PROJ-451", "trip
/// ZP3N6D"). The validators extend a shaped ID over them here, and
/// `boundaries::record_nouns` extends the model's identifiers after the
/// merge.
pub const RECORD_NOUNS: &[&str] = &[
    "order",
    "ticket",
    "invoice",
    "deal",
    "booking",
    "reservation",
    "confirmation",
    "trip",
    "flight",
    "issue",
    "case",
    "claim",
    "incident",
    "run",
    "build",
    "pr",
    "item",
    "task",
    "bug",
    "story",
    "epic",
    "release",
    "version",
    "job",
    "request",
    "transaction",
    "payment",
    "subscription",
    "policy",
    "shipment",
    "tracking",
    "return",
    "refund",
    "quote",
    "contract",
    "opportunity",
    "lead",
];

/// Words that only announce an identifier ("ref CR-771204"). A validator
/// span takes them in, so the model does not read them as a word of their
/// own; `boundaries::record_nouns` drops them from the final span.
pub const ID_MARKERS: &[&str] = &["ref", "ref.", "ref:", "reference", "reference:"];

/// ISO 13616 IBAN check: move the first four characters to the end, map
/// letters to 10..35 and take the number mod 97; valid IBANs give 1.
pub fn iban_valid(s: &str) -> bool {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) || !compact.is_ascii() {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut rem: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    let p = |label, re: &str, check| {
        Regex::new(re).ok().map(|regex| Pattern {
            label,
            regex,
            check,
        })
    };
    [
        p(
            EntityLabel::Email,
            r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
            always,
        ),
        p(
            EntityLabel::Url,
            r#"(?:https?://|www\.)[^\s<>"'()]+[^\s<>"'().,;:!?]"#,
            always,
        ),
        p(
            EntityLabel::Account,
            r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
            iban_valid,
        ),
        p(
            EntityLabel::Datetime,
            r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:?\d{2})?)?\b",
            always,
        ),
        p(
            EntityLabel::Money,
            r"(?i)(?:[$€£¥₹]\s?\d(?:[\d,]*\d)?(?:\.\d+)?(?:\s?(?:k|m|bn|million|billion)\b)?|\b(?:usd|eur|gbp|chf|jpy|cad|aud|inr)\s?\d(?:[\d,]*\d)?(?:\.\d+)?|\b\d(?:[\d,]*\d)?(?:\.\d+)?\s?(?:usd|eur|gbp|chf|jpy|cad|aud|inr|dollars?|euros?|pounds?|bucks|yen|francs?|rupees?)\b)",
            always,
        ),
        // Cloud regions as providers name them: `us-east-1`, `eu-central-1`,
        // `ap-southeast-2` (AWS style), `europe-west4`, `us-central1`
        // (Google style) and `eastus2`, `westeurope`, `uksouth` (Azure
        // style: a direction and a geography run together, lowercase).
        // Places, as the annotation guide says.
        p(
            EntityLabel::Location,
            r"\b(?:(?:us|eu|ap|sa|ca|me|af|il|mx|cn)(?:-gov)?-(?:north|south|east|west|central|northeast|southeast|northwest|southwest)-\d|(?:us|europe|asia|australia|northamerica|southamerica|me|africa)-(?:north|south|east|west|central|northeast|southeast|northwest|southwest)\d)\b",
            always,
        ),
        p(
            EntityLabel::Location,
            r"\b(?:(?:east|west|north|south|central|northcentral|southcentral|westcentral|southeast)(?:us|europe|asia|india)\d?|(?:uk|france|germany|germanywest|japan|australia|australiasoutheast|canada|brazil|korea|sweden|norway|switzerland|uae|southafrica|qatar|poland|italy|israel|mexico|spain|newzealand)(?:north|south|east|west|central|southeast)\d?)\b",
            always,
        ),
        // Release versions: `v2.14.0`, `1.4.2`, `v3.1`, `2.0.0-rc.1`.
        p(
            EntityLabel::Resource,
            r"\bv?\d+(?:\.\d+)+(?:-[0-9A-Za-z.]+)?\b",
            version_shaped,
        ),
        p(
            EntityLabel::Resource,
            r"#\d[\d-]*\b|\b[A-Za-z0-9]+(?:[-_/.][A-Za-z0-9]+)*\b",
            id_shaped,
        ),
        p(
            EntityLabel::Phone,
            r"(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)\s?|\b\d{2,4}[\s.-])\d{3,4}[\s.-]?\d{3,4}\b",
            enough_digits,
        ),
        // Percentages and temperatures: measures whose unit is a sign.
        p(
            EntityLabel::Quantity,
            r"\b\d+(?:[.,]\d+)?(?:\s?%|\s?°[CF]?|\s?percent\b)",
            always,
        ),
        p(
            EntityLabel::Quantity,
            r"\b\d+(?:[.,]\d+)?\s?[A-Za-z]+\b",
            counted,
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
});

/// Every shape match in `text`, in byte offsets, earlier patterns first
/// (an email's domain is not also a URL, an IBAN is not a phone number).
pub fn find_shaped(text: &str) -> Vec<Span> {
    shaped(text, |_| true)
}

/// The shape matches of `labels` only, by the same patterns in the same
/// order (long tool results: the identifier and count patterns, which
/// match most words, are skipped).
pub fn find_shaped_of(text: &str, labels: &[EntityLabel]) -> Vec<Span> {
    shaped(text, |l| labels.contains(&l))
}

fn shaped(text: &str, wanted: impl Fn(EntityLabel) -> bool) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    for p in PATTERNS.iter().filter(|p| wanted(p.label)) {
        for m in p.regex.find_iter(text) {
            if !(p.check)(m.as_str()) {
                continue;
            }
            if out.iter().any(|s| s.start < m.end() && m.start() < s.end) {
                continue;
            }
            out.push(Span {
                label: p.label,
                start: m.start(),
                end: m.end(),
                score: 1.0,
            });
        }
    }
    for s in &mut out {
        if s.label != EntityLabel::Resource {
            continue;
        }
        let before = text[..s.start].trim_end_matches(' ');
        if before.len() + 1 != s.start {
            continue;
        }
        // The byte after the last non-alphanumeric character, which may be
        // several bytes long ("€ID 123").
        let word_start = before
            .char_indices()
            .rfind(|(_, c)| !c.is_alphanumeric())
            .map_or(0, |(i, c)| i + c.len_utf8());
        let noun = before[word_start..].to_lowercase();
        if RECORD_NOUNS.contains(&noun.as_str()) || ID_MARKERS.contains(&noun.as_str()) {
            s.start = word_start;
        }
    }
    out.sort_by_key(|s| s.start);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(EntityLabel, &str)> {
        find_shaped(text)
            .into_iter()
            .map(|s| (s.label, &text[s.start..s.end]))
            .collect()
    }

    #[test]
    fn finds_emails_urls_and_dates() {
        assert_eq!(
            found("mail bob.smith@example.co.uk the link https://x.io/a?b=1. on 2025-03-14"),
            vec![
                (EntityLabel::Email, "bob.smith@example.co.uk"),
                (EntityLabel::Url, "https://x.io/a?b=1"),
                (EntityLabel::Datetime, "2025-03-14"),
            ]
        );
    }

    #[test]
    fn checks_ibans() {
        assert!(iban_valid("DE89 3704 0044 0532 0130 00"));
        assert!(iban_valid("GB82WEST12345698765432"));
        assert!(!iban_valid("DE89 3704 0044 0532 0130 01"));
        assert_eq!(
            found("to DE89 3704 0044 0532 0130 00 now"),
            vec![(EntityLabel::Account, "DE89 3704 0044 0532 0130 00")]
        );
        assert!(
            found("to DE89 3704 0044 0532 0130 01")
                .iter()
                .all(|(l, _)| *l != EntityLabel::Account)
        );
    }

    #[test]
    fn finds_money_and_phones() {
        assert_eq!(
            found("send $1,250.50 and 300 EUR, call +1 415 555 0100"),
            vec![
                (EntityLabel::Money, "$1,250.50"),
                (EntityLabel::Money, "300 EUR"),
                (EntityLabel::Phone, "+1 415 555 0100"),
            ]
        );
        assert_eq!(
            found("ring (212) 555-0199"),
            vec![(EntityLabel::Phone, "(212) 555-0199")]
        );
        assert_eq!(
            found("order 12345 of 3 items"),
            vec![(EntityLabel::Quantity, "3 items")]
        );
        assert_eq!(
            found("scale to 8 replicas in 2 weeks"),
            vec![(EntityLabel::Quantity, "8 replicas")]
        );
        assert_eq!(
            found("a $84,000, then"),
            vec![(EntityLabel::Money, "$84,000")]
        );
        assert_eq!(
            found("dim to 30% and set 21°C, or 19.5 °F, 15 percent off"),
            vec![
                (EntityLabel::Quantity, "30%"),
                (EntityLabel::Quantity, "21°C"),
                (EntityLabel::Quantity, "19.5 °F"),
                (EntityLabel::Quantity, "15 percent"),
            ]
        );
    }

    #[test]
    fn finds_record_identifiers_with_their_kind() {
        assert_eq!(
            found("close PROJ-451 and refund order #302-556677 for deal D-20931"),
            vec![
                (EntityLabel::Resource, "PROJ-451"),
                (EntityLabel::Resource, "order #302-556677"),
                (EntityLabel::Resource, "deal D-20931"),
            ]
        );
        assert_eq!(
            found("booking 2JD8XN"),
            vec![(EntityLabel::Resource, "booking 2JD8XN")]
        );
        assert!(found("in Q3 at the UN with COVID").is_empty());
        assert_eq!(
            found("us-west-2"),
            vec![(EntityLabel::Location, "us-west-2")]
        );
        // Found by fuzzing: a multi-byte character right before the kind noun.
        assert_eq!(
            found("€order 2JD8XN"),
            vec![(EntityLabel::Resource, "order 2JD8XN")]
        );
    }

    #[test]
    fn finds_cloud_regions_and_release_versions() {
        assert_eq!(
            found(
                "ship v2.14.0 to eu-central-1 and release 1.4.2 in europe-west4, then us-central1"
            ),
            vec![
                (EntityLabel::Resource, "v2.14.0"),
                (EntityLabel::Location, "eu-central-1"),
                (EntityLabel::Resource, "release 1.4.2"),
                (EntityLabel::Location, "europe-west4"),
                (EntityLabel::Location, "us-central1"),
            ]
        );
        assert_eq!(
            found("tag 2.0.0-rc.1"),
            vec![(EntityLabel::Resource, "2.0.0-rc.1")]
        );
        assert_eq!(
            found("fail over from eastus2 to westeurope, keep uksouth"),
            vec![
                (EntityLabel::Location, "eastus2"),
                (EntityLabel::Location, "westeurope"),
                (EntityLabel::Location, "uksouth"),
            ]
        );
        // Capitalised or spaced, these are words the model reads, not IDs.
        assert!(found("head East US way, then west europe").is_empty());
        // Not versions: a decimal, an IP address, a date; not a region: a street.
        assert!(found("rate 2.5 from 10.0.0.12 on us-route-9 by 14.03.2025").is_empty());
        assert_eq!(
            found("call 415.555.0100"),
            vec![(EntityLabel::Phone, "415.555.0100")]
        );
    }
}
