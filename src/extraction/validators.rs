//! Model spans and shaped values together: kebab-case names relabelled
//! as resources, and the shape validators' spans ([`crate::text::find_shaped`])
//! merged with the model's: where both find the same thing the validator's
//! boundaries win.

use crate::intent::EntityLabel;
use crate::text::Span;

/// A lower-case, hyphen-joined name of two or more parts (`auth-service`,
/// `db-replica-3`, `web-frontend`): how services, hosts, repositories and
/// branches are written. Channels carry a `#`, files an extension, people
/// and companies capitals, so none of them has this shape.
fn kebab_identifier(s: &str) -> bool {
    let mut parts = 0;
    for part in s.split('-') {
        if part.is_empty()
            || !part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            return false;
        }
        parts += 1;
    }
    parts >= 2 && s.starts_with(|c: char| c.is_ascii_lowercase())
}

/// Model spans that are one kebab-case identifier but were given a label
/// that such a name never has (a person, company, file, channel, URL or
/// account) become resources. Places (`us-east-1` is a region) and
/// products keep their label.
pub fn relabel_identifiers(text: &str, spans: Vec<Span>) -> Vec<Span> {
    spans
        .into_iter()
        .map(|mut s| {
            let never = matches!(
                s.label,
                EntityLabel::Person
                    | EntityLabel::Org
                    | EntityLabel::File
                    | EntityLabel::Channel
                    | EntityLabel::Url
                    | EntityLabel::Account
            );
            if never && text.get(s.start..s.end).is_some_and(kebab_identifier) {
                s.label = EntityLabel::Resource;
            }
            s
        })
        .collect()
}

/// Whether a span came from the model, a validator, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Model only.
    Model,
    /// Validator only.
    Validator,
    /// Both, validator boundaries kept.
    Both,
}

/// Whether a validator's record ID is a model number inside a product name
/// the model found ("Sony WH-1000XM5 headphones"): the product span stays.
fn model_number(v: &Span, model: &[Span]) -> bool {
    v.label == EntityLabel::Resource
        && model.iter().any(|m| {
            m.label == EntityLabel::Product
                && m.start <= v.start
                && v.end <= m.end
                && m.end - m.start > v.end - v.start
        })
}

/// Merges model spans with validator spans. A validator span replaces every
/// model span it overlaps, except a record ID inside a product name; it
/// counts as `Both` when one of them had its label.
pub fn merge(model: Vec<Span>, shaped: Vec<Span>) -> Vec<(Span, Origin)> {
    let shaped: Vec<Span> = shaped
        .into_iter()
        .filter(|v| !model_number(v, &model))
        .collect();
    let mut out: Vec<(Span, Origin)> = Vec::new();
    for v in &shaped {
        let agrees = model
            .iter()
            .any(|m| m.label == v.label && m.start < v.end && v.start < m.end);
        out.push((
            v.clone(),
            if agrees {
                Origin::Both
            } else {
                Origin::Validator
            },
        ));
    }
    for m in model {
        if !shaped.iter().any(|v| m.start < v.end && v.start < m.end) {
            out.push((m, Origin::Model));
        }
    }
    out.sort_by_key(|(s, _)| s.start);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::find_shaped;

    /// A model span over the first occurrence of `needle` in `text`.
    fn model_span(text: &str, label: EntityLabel, needle: &str) -> Span {
        crate::extraction::decode::span_over(text, needle, label)
    }

    #[test]
    fn kebab_case_names_are_resources_whatever_the_model_called_them() {
        let text = "restart auth-service, ping Ana-Maria, open q3-report.pdf, move db-replica-3 to us-east-1";
        let span = |label, needle| model_span(text, label, needle);
        let out = relabel_identifiers(
            text,
            vec![
                span(EntityLabel::Org, "auth-service"),
                span(EntityLabel::Person, "Ana-Maria"),
                span(EntityLabel::File, "q3-report.pdf"),
                span(EntityLabel::File, "db-replica-3"),
                span(EntityLabel::Location, "us-east-1"),
            ],
        );
        let labels: Vec<EntityLabel> = out.iter().map(|s| s.label).collect();
        assert_eq!(
            labels,
            vec![
                EntityLabel::Resource,
                EntityLabel::Person,
                EntityLabel::File,
                EntityLabel::Resource,
                EntityLabel::Location,
            ]
        );
        assert!(!kebab_identifier("auth"));
        assert!(!kebab_identifier("-auth"));
        assert!(!kebab_identifier("auth--service"));
        assert!(!kebab_identifier("3-4"));
    }

    #[test]
    fn model_numbers_stay_inside_their_product() {
        let text = "return the Sony WH-1000XM5 headphones and close PROJ-451";
        let model = vec![
            model_span(text, EntityLabel::Product, "Sony WH-1000XM5 headphones"),
            model_span(text, EntityLabel::Org, "PROJ-451"),
        ];
        let merged = merge(model, find_shaped(text));
        let got: Vec<(EntityLabel, &str, Origin)> = merged
            .iter()
            .map(|(s, o)| (s.label, &text[s.start..s.end], *o))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    EntityLabel::Product,
                    "Sony WH-1000XM5 headphones",
                    Origin::Model
                ),
                (EntityLabel::Resource, "PROJ-451", Origin::Validator),
            ]
        );
    }

    #[test]
    fn validator_spans_win_over_model_spans() {
        let model = vec![
            Span {
                label: EntityLabel::Person,
                start: 0,
                end: 3,
                score: 0.9,
            },
            Span {
                label: EntityLabel::Email,
                start: 5,
                end: 10,
                score: 0.8,
            },
        ];
        let shaped = vec![Span {
            label: EntityLabel::Email,
            start: 5,
            end: 16,
            score: 1.0,
        }];
        let merged = merge(model, shaped);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[1].1, Origin::Both);
        assert_eq!(merged[1].0.end, 16);
    }
}
