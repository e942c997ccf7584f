//! Argument checks: does a value the agent passed contradict the request?
//! A value is compared with (a) what the intent's quad for the same tool
//! fixed for that parameter, or else (b), for side-effecting tools and
//! exactly-shaped values (email, URL, IBAN/account, amount, phone), with the
//! entities of that shape the request named. A request that named no such
//! value constrains nothing.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::Entry;
use crate::catalog::parameter_labels;
use crate::intent::{EntityLabel, Intent};
use crate::text::find_shaped;
use crate::workflow::provenance::{Source, TRACED, ValueSources};

/// A value that contradicts the intent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArgumentMismatch {
    /// The argument's name.
    pub argument: String,
    /// The kind of value compared.
    pub kind: EntityLabel,
    /// What the request allows.
    pub expected: Vec<String>,
    /// What the agent passed.
    pub observed: String,
    /// Index of the intent evaluation compared with, when one fixed it.
    pub quad: Option<usize>,
}

const CHECKED: &[EntityLabel] = &[
    EntityLabel::Email,
    EntityLabel::Url,
    EntityLabel::Account,
    EntityLabel::Money,
    EntityLabel::Phone,
    EntityLabel::Person,
    EntityLabel::Location,
    EntityLabel::File,
];

const SHAPED: &[EntityLabel] = &[
    EntityLabel::Email,
    EntityLabel::Url,
    EntityLabel::Account,
    EntityLabel::Money,
    EntityLabel::Phone,
];

/// The shape of a whole value, when a validator matches all of it.
fn whole_shape(value: &str) -> Option<EntityLabel> {
    let v = value.trim();
    find_shaped(v)
        .into_iter()
        .find(|s| s.start == 0 && s.end == v.len())
        .map(|s| s.label)
}

fn money(s: &str) -> Option<(f64, Option<String>)> {
    let lower = s.to_lowercase();
    let digits: String = lower
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let amount: f64 = digits.parse().ok()?;
    let currency = [
        ("$", "usd"),
        ("usd", "usd"),
        ("dollar", "usd"),
        ("buck", "usd"),
        ("€", "eur"),
        ("eur", "eur"),
        ("£", "gbp"),
        ("gbp", "gbp"),
        ("pound", "gbp"),
        ("¥", "jpy"),
        ("yen", "jpy"),
        ("chf", "chf"),
        ("franc", "chf"),
    ]
    .iter()
    .find(|(k, _)| lower.contains(k))
    .map(|(_, c)| c.to_string());
    Some((amount, currency))
}

fn normalize_url(s: &str) -> String {
    let l = s.trim().to_lowercase();
    let l = l
        .strip_prefix("https://")
        .or_else(|| l.strip_prefix("http://"))
        .unwrap_or(&l)
        .to_string();
    l.strip_prefix("www.")
        .unwrap_or(&l)
        .trim_end_matches('/')
        .to_string()
}

/// Whether an observed value agrees with an expected one of `kind`.
pub fn agrees(kind: EntityLabel, expected: &str, observed: &str) -> bool {
    let (e, o) = (expected.trim(), observed.trim());
    match kind {
        EntityLabel::Email => e.eq_ignore_ascii_case(o),
        EntityLabel::Url => normalize_url(e) == normalize_url(o),
        EntityLabel::Account => {
            let c = |s: &str| {
                s.chars()
                    .filter(|c| !c.is_whitespace())
                    .collect::<String>()
                    .to_uppercase()
            };
            c(e) == c(o) || c(o).ends_with(&c(e)) || c(e).ends_with(&c(o))
        }
        EntityLabel::Money => match (money(e), money(o)) {
            (Some((a, ca)), Some((b, cb))) => {
                (a - b).abs() < 0.005 && (ca.is_none() || cb.is_none() || ca == cb)
            }
            // A value that is not a number cannot be compared.
            _ => true,
        },
        EntityLabel::Phone => {
            let d = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
            let (de, d_o) = (d(e), d(o));
            !de.is_empty() && !d_o.is_empty() && (de.ends_with(&d_o) || d_o.ends_with(&de))
        }
        EntityLabel::Person => {
            let (el, ol) = (e.to_lowercase(), o.to_lowercase());
            el.contains(&ol)
                || ol.contains(&el)
                || el
                    .split_whitespace()
                    .filter(|t| t.len() >= 3)
                    .any(|t| ol.split(['@', '.', ' ', '_', '-']).any(|p| p == t))
        }
        EntityLabel::Location
        | EntityLabel::File
        | EntityLabel::Action
        | EntityLabel::Org
        | EntityLabel::Datetime
        | EntityLabel::Quantity
        | EntityLabel::Product
        | EntityLabel::Channel
        | EntityLabel::Resource => {
            let (el, ol) = (e.to_lowercase(), o.to_lowercase());
            el.contains(&ol) || ol.contains(&el)
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Number(n) => vec![n.to_string()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        Value::Null | Value::Bool(_) | Value::Object(_) => vec![],
    }
}

/// Every argument of a call to `entry` that contradicts `intent`.
pub fn check_arguments(
    intent: &Intent,
    entry: &Entry,
    arguments: &serde_json::Map<String, Value>,
) -> Vec<ArgumentMismatch> {
    let mut out = Vec::new();
    for (param, value) in arguments {
        for observed in strings(value) {
            let shape = whole_shape(&observed);
            let declared = parameter_labels(param, entry.parameter(param));
            let kind = shape
                .or_else(|| declared.first().copied())
                .filter(|k| CHECKED.contains(k));
            let Some(kind) = kind else { continue };
            // (a) A quad of this tool fixed this parameter.
            let fixed: Vec<(usize, String)> = intent
                .evaluations
                .iter()
                .enumerate()
                .filter(|(_, e)| e.action.name == entry.name)
                .filter_map(|(i, e)| {
                    let v = e.resource.properties.as_ref()?.get(param)?;
                    Some((i, v.as_str()?.to_string()))
                })
                .collect();
            if !fixed.is_empty() {
                if !fixed.iter().any(|(_, e)| agrees(kind, e, &observed)) {
                    out.push(ArgumentMismatch {
                        argument: param.clone(),
                        kind,
                        expected: fixed.iter().map(|(_, e)| e.clone()).collect(),
                        observed,
                        quad: fixed.first().map(|(i, _)| *i),
                    });
                }
                continue;
            }
            // (b) An exactly-shaped value against the request's entities.
            if entry.read_only || shape != Some(kind) || !SHAPED.contains(&kind) {
                continue;
            }
            let named: Vec<&str> = intent
                .entities
                .iter()
                .filter(|e| e.label == kind)
                .map(|e| e.text.as_str())
                .collect();
            if !named.is_empty() && !named.iter().any(|e| agrees(kind, e, &observed)) {
                out.push(ArgumentMismatch {
                    argument: param.clone(),
                    kind,
                    expected: named.iter().map(|s| s.to_string()).collect(),
                    observed,
                    quad: None,
                });
            }
        }
    }
    out
}

/// Why a value taken from an earlier result is legitimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Legitimate {
    /// The catalog marks the source tool's output as trusted.
    TrustedOutput,
    /// The user asked for the read that returned it (the intent grants the
    /// source tool, in the side effect's clause or an earlier one).
    RequestedRead,
}

/// A side effect's argument found in an earlier step's result.
#[derive(Debug, Clone)]
pub struct Traced<'a> {
    /// The argument's name.
    pub argument: String,
    /// The kind of value.
    pub kind: EntityLabel,
    /// What the agent passed.
    pub observed: String,
    /// The step and place it came from.
    pub source: &'a Source,
    /// Why taking it is fine; `None`: only untrusted content the user did
    /// not point to held it.
    pub legitimate: Option<Legitimate>,
}

/// Traces the exactly-shaped arguments (email, URL, account, amount,
/// phone) of a call to a side-effecting `entry` that the request did not
/// state itself to the earlier results that held them. Values the request
/// stated, and values no earlier result held, are not traced (the
/// argument check judges them).
pub fn trace_arguments<'a>(
    intent: &Intent,
    entry: &Entry,
    arguments: &serde_json::Map<String, Value>,
    sources: &'a ValueSources,
) -> Vec<Traced<'a>> {
    let mut out = Vec::new();
    if entry.read_only || sources.is_empty() {
        return out;
    }
    // The clause of the request the side effect belongs to, when granted.
    let clause = intent
        .tools
        .iter()
        .filter(|g| g.name == entry.name)
        .map(|g| g.clause)
        .max();
    let requested = |tool: &str| {
        intent
            .tools
            .iter()
            .any(|g| g.name == tool && clause.is_none_or(|c| g.clause <= c))
    };
    for (param, value) in arguments {
        for observed in strings(value) {
            let Some(kind) = whole_shape(&observed).filter(|k| TRACED.contains(k)) else {
                continue;
            };
            let stated = intent
                .entities
                .iter()
                .any(|e| e.label == kind && agrees(kind, &e.text, &observed))
                || intent.evaluations.iter().any(|e| {
                    e.action.name == entry.name
                        && e.resource
                            .properties
                            .as_ref()
                            .and_then(|p| p.get(param))
                            .and_then(Value::as_str)
                            .is_some_and(|v| agrees(kind, v, &observed))
                });
            if stated {
                continue;
            }
            let mut found: Option<Traced<'a>> = None;
            for source in sources.matching(kind, &observed, |a, b| exact(kind, a, b)) {
                let legitimate = if source.trusted {
                    Some(Legitimate::TrustedOutput)
                } else if requested(&source.tool) {
                    Some(Legitimate::RequestedRead)
                } else {
                    None
                };
                let better = found.as_ref().is_none_or(|f| f.legitimate.is_none());
                if better {
                    found = Some(Traced {
                        argument: param.clone(),
                        kind,
                        observed: observed.clone(),
                        source,
                        legitimate,
                    });
                }
                if legitimate.is_some() {
                    break;
                }
            }
            out.extend(found);
        }
    }
    out
}

/// Whether two values of `kind` are the same value. Stricter than
/// [`agrees`] (which accepts an account's suffix or a phone's local part
/// as the request's shorthand): a value traced to a source must be that
/// value.
fn exact(kind: EntityLabel, a: &str, b: &str) -> bool {
    let strict = matches!(kind, EntityLabel::Account | EntityLabel::Phone);
    if !strict {
        return agrees(kind, a, b);
    }
    let c = |s: &str| {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_uppercase()
    };
    c(a) == c(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_agree_by_kind() {
        assert!(agrees(
            EntityLabel::Email,
            "Bob@Example.com",
            "bob@example.com"
        ));
        assert!(!agrees(
            EntityLabel::Email,
            "bob@example.com",
            "eve@evil.io"
        ));
        assert!(agrees(EntityLabel::Money, "$120", "120.00"));
        assert!(agrees(EntityLabel::Money, "$1,200", "1200 USD"));
        assert!(!agrees(EntityLabel::Money, "$120", "5000"));
        assert!(!agrees(EntityLabel::Money, "€120", "120 USD"));
        assert!(agrees(
            EntityLabel::Url,
            "https://www.example.com/a/",
            "http://example.com/a"
        ));
        assert!(agrees(
            EntityLabel::Account,
            "DE89 3704 0044 0532 0130 00",
            "DE89370400440532013000"
        ));
        assert!(!agrees(
            EntityLabel::Account,
            "DE89 3704 0044 0532 0130 00",
            "GB82WEST12345698765432"
        ));
        assert!(agrees(
            EntityLabel::Phone,
            "+1 415 555 0100",
            "(415) 555-0100"
        ));
        assert!(agrees(EntityLabel::Person, "Bob", "bob@example.com"));
        assert!(!agrees(EntityLabel::Person, "Bob", "mallory@evil.io"));
        assert!(agrees(EntityLabel::Location, "Paris", "Paris, France"));
    }
}
