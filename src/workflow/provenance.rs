//! Where a value came from. A step report may carry the tool's result
//! (`outcome.result`); telos keeps the typed values found in it (emails,
//! URLs, IBANs and account numbers, amounts, phone numbers) with their
//! place in the result and a digest of the result, never the result
//! itself. [`ValueSources`] collects them across a workflow's steps so
//! that a later side effect's arguments can be traced to the step, the
//! tool and the offsets they were taken from.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;

use super::{Observed, Workflow, WorkflowError};
use crate::intent::EntityLabel;
use crate::text::find_shaped_of;

/// Most bytes of a result's strings scanned for values; values past it
/// are not traced and the outcome says `values_truncated`. (The request
/// body limit, `--max-body-bytes`, bounds the result itself.)
pub const MAX_SCANNED_BYTES: usize = 256 * 1024;
/// Most typed values kept per step (the first ones in document order).
pub const MAX_VALUES_PER_STEP: usize = 256;
/// Longest value kept, in bytes (longer shaped values are not traced).
const MAX_VALUE_BYTES: usize = 512;
/// Most values a workflow's live state keeps (the newest): bounds memory
/// for long workflows. A value older than this many others is no longer
/// traced.
pub const MAX_SOURCES: usize = 16 * 1024;

/// The kinds of value traced: those whose exact text decides where money,
/// mail or a post goes.
pub const TRACED: &[EntityLabel] = &[
    EntityLabel::Email,
    EntityLabel::Url,
    EntityLabel::Account,
    EntityLabel::Money,
    EntityLabel::Phone,
];

/// A typed value found in a tool's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundValue {
    /// Its kind.
    pub label: EntityLabel,
    /// The value as it appears.
    pub value: String,
    /// JSON Pointer (RFC 6901) of the string it was found in (`""` when
    /// the result is one string).
    pub path: String,
    /// Byte offsets of the value in that string.
    pub start: usize,
    /// End (exclusive).
    pub end: usize,
}

/// What was kept of a result: its typed values, its digest (sha256 of
/// its compact JSON) and whether the values stop early.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultDigest {
    /// Typed values, in document order.
    pub values: Vec<FoundValue>,
    /// sha256 hex.
    pub digest: String,
    /// More than [`MAX_VALUES_PER_STEP`] values, or more than
    /// [`MAX_SCANNED_BYTES`] of text: later values were not kept.
    pub truncated: bool,
}

/// The typed values of a result and its digest.
pub fn digest_result(result: &Value) -> Result<ResultDigest, WorkflowError> {
    let bytes = serde_json::to_vec(result).map_err(|e| WorkflowError::Field {
        field: "outcome.result",
        reason: e.to_string(),
    })?;
    let mut scan = Scan {
        values: Vec::new(),
        budget: MAX_SCANNED_BYTES,
        truncated: false,
    };
    scan.walk(result, &mut String::new());
    Ok(ResultDigest {
        values: scan.values,
        digest: hex::encode(Sha256::digest(&bytes)),
        truncated: scan.truncated,
    })
}

struct Scan {
    values: Vec<FoundValue>,
    budget: usize,
    truncated: bool,
}

impl Scan {
    fn walk(&mut self, v: &Value, path: &mut String) {
        if self.truncated {
            return;
        }
        match v {
            Value::String(s) => self.text(s, path),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&i.to_string());
                    self.walk(item, path);
                    path.truncate(len);
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&k.replace('~', "~0").replace('/', "~1"));
                    self.walk(item, path);
                    path.truncate(len);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    fn text(&mut self, s: &str, path: &str) {
        let mut end = s.len().min(self.budget);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        if end < s.len() {
            self.truncated = true;
        }
        self.budget -= end;
        for span in find_shaped_of(&s[..end], TRACED) {
            let text = &s[span.start..span.end];
            if !TRACED.contains(&span.label) || text.len() > MAX_VALUE_BYTES {
                continue;
            }
            if self.values.len() >= MAX_VALUES_PER_STEP {
                self.truncated = true;
                return;
            }
            self.values.push(FoundValue {
                label: span.label,
                value: text.to_string(),
                path: path.to_string(),
                start: span.start,
                end: span.end,
            });
        }
    }
}

/// Checks typed values a PEP reported without the result: at most
/// [`MAX_VALUES_PER_STEP`], each a traced kind whose whole text has that
/// shape.
pub fn check_reported_values(values: &[FoundValue]) -> Result<(), WorkflowError> {
    if values.len() > MAX_VALUES_PER_STEP {
        return Err(WorkflowError::Field {
            field: "outcome.values",
            reason: format!("more than the cap of {MAX_VALUES_PER_STEP} values"),
        });
    }
    for (i, v) in values.iter().enumerate() {
        let whole = find_shaped_of(&v.value, TRACED)
            .into_iter()
            .any(|s| s.label == v.label && s.start == 0 && s.end == v.value.len());
        if !TRACED.contains(&v.label) || v.value.len() > MAX_VALUE_BYTES || !whole {
            return Err(WorkflowError::Field {
                field: "outcome.values",
                reason: format!(
                    "value {i} is not a whole {} of at most {MAX_VALUE_BYTES} bytes",
                    v.label.as_str()
                ),
            });
        }
    }
    Ok(())
}

/// A value and the step it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// The step whose result held it.
    pub seq: u64,
    /// That step's tool or skill.
    pub tool: String,
    /// Whether the catalog marks the tool's output as trusted.
    pub trusted: bool,
    /// The value and its place.
    pub value: FoundValue,
}

/// Every traced value the workflow's steps have returned so far, oldest
/// first.
#[derive(Debug, Clone, Default)]
pub struct ValueSources {
    items: VecDeque<Source>,
}

impl ValueSources {
    /// Records the values of step `seq`'s result.
    pub fn record(&mut self, workflow: &Workflow, seq: u64, step: &Observed) {
        let Some(outcome) = &step.outcome else {
            return;
        };
        let trusted = workflow
            .catalog
            .entries
            .iter()
            .find(|e| e.name == step.name)
            .is_some_and(|e| e.trusted_output);
        for v in &outcome.values {
            if self.items.len() >= MAX_SOURCES {
                self.items.pop_front();
            }
            self.items.push_back(Source {
                seq,
                tool: step.name.clone(),
                trusted,
                value: v.clone(),
            });
        }
    }

    /// The sources of `label` whose value `same` holds for with `observed`.
    pub fn matching(
        &self,
        label: EntityLabel,
        observed: &str,
        same: impl Fn(&str, &str) -> bool,
    ) -> Vec<&Source> {
        self.items
            .iter()
            .filter(|s| s.value.label == label && same(&s.value.value, observed))
            .collect()
    }

    /// Number of values recorded.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no value was recorded.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_found_with_their_place_and_the_result_is_digested() {
        let result = json!({"content": [{"type": "text",
            "text": "Invoice 42: pay EUR 120 to DE89 3704 0044 0532 0130 00, questions to billing@acme.example"}]});
        let ResultDigest {
            values,
            digest,
            truncated,
        } = digest_result(&result).unwrap();
        assert!(!truncated);
        let iban = values
            .iter()
            .find(|v| v.label == EntityLabel::Account)
            .unwrap();
        assert_eq!(iban.value, "DE89 3704 0044 0532 0130 00");
        assert_eq!(iban.path, "/content/0/text");
        let text = result["content"][0]["text"].as_str().unwrap();
        assert_eq!(&text[iban.start..iban.end], iban.value);
        assert!(
            values
                .iter()
                .any(|v| v.label == EntityLabel::Email && v.value == "billing@acme.example")
        );
        assert_eq!(digest.len(), 64);
        assert_ne!(digest, digest_result(&json!("other")).unwrap().digest);
    }

    #[test]
    fn text_past_the_scan_budget_is_not_traced_and_says_so() {
        let mut text = "x".repeat(MAX_SCANNED_BYTES - 100);
        text.push_str(" early@example.org ");
        text.push_str(&"y".repeat(200));
        text.push_str(" late@example.org");
        let d = digest_result(&json!([text, "later@example.org"])).unwrap();
        let found: Vec<&str> = d.values.iter().map(|v| v.value.as_str()).collect();
        assert_eq!(found, vec!["early@example.org"]);
        assert!(d.truncated);
    }

    #[test]
    fn bad_reported_values_are_refused() {
        let good = FoundValue {
            label: EntityLabel::Email,
            value: "eve@evil.example".into(),
            path: String::new(),
            start: 0,
            end: 16,
        };
        assert!(check_reported_values(std::slice::from_ref(&good)).is_ok());
        let bad = FoundValue {
            value: "not an address".into(),
            ..good.clone()
        };
        assert!(check_reported_values(&[bad]).is_err());
        let many = vec![good; MAX_VALUES_PER_STEP + 1];
        assert!(check_reported_values(&many).is_err());
    }

    #[test]
    fn values_per_step_are_capped() {
        let text = (0..MAX_VALUES_PER_STEP + 10)
            .map(|i| format!("u{i}@example.org"))
            .collect::<Vec<_>>()
            .join(", ");
        let d = digest_result(&Value::String(text)).unwrap();
        assert_eq!(d.values.len(), MAX_VALUES_PER_STEP);
        assert!(d.truncated);
    }
}
