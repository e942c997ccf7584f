//! Clause-level helpers of the pipeline: where a segment splits at a
//! second requested action, what a pronoun refers to, whether a clause's
//! actions are negated, what a delegation hands control to, and the
//! conversion of spans to the intent's entities.

use super::Origin;
use super::lexicon::{CONNECTORS, DATA_NOUNS, DELEGATION_VERBS, NEGATORS, PRONOUNS};
use crate::intent::{Entity, EntityLabel, EntitySource, ToolGrant, ToolRole};
use crate::text::Span;

/// The object a pronoun clause refers to: when `[start, end)` holds a
/// pronoun and no object span of its own, the last object span (resource,
/// product, file, channel) of its segment that ends before it (bytes).
pub(super) fn antecedent_object(
    prompt: &str,
    spans: &[(Span, Origin)],
    seg_start: usize,
    start: usize,
    end: usize,
) -> Option<(usize, usize)> {
    use EntityLabel::*;
    let objects = || {
        spans
            .iter()
            .map(|(s, _)| s)
            .filter(|s| matches!(s.label, Resource | Product | File | Channel))
    };
    let has_pronoun = prompt
        .get(start..end)?
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| PRONOUNS.iter().any(|p| w.eq_ignore_ascii_case(p)));
    if !has_pronoun || objects().any(|s| s.start >= start && s.end <= end) {
        return None;
    }
    objects()
        .rfind(|s| s.start >= seg_start && s.end <= start)
        .map(|s| (s.start, s.end))
}

/// Where a segment with several ACTION spans splits: for each ACTION after
/// the first that follows a connector, `(end of the previous clause, start
/// of the next)` in prompt byte offsets.
pub(super) fn action_cuts(prompt: &str, seg_start: usize, spans: &[Span]) -> Vec<(usize, usize)> {
    let actions: Vec<&Span> = spans
        .iter()
        .filter(|s| s.label == EntityLabel::Action)
        .collect();
    let mut cuts = Vec::new();
    let mut floor = seg_start;
    for pair in actions.windows(2) {
        let (prev, next) = (pair[0], pair[1]);
        let between = prompt[prev.end..next.start].trim_end();
        let lower = between.to_lowercase();
        let Some(conn) = CONNECTORS
            .iter()
            .filter(|c| {
                // A word connector must stand alone ("and", not "brand");
                // a punctuation connector needs no boundary ("door, turn").
                let punctuation = !c.starts_with(|ch: char| ch.is_alphanumeric());
                lower.ends_with(*c)
                    && (punctuation
                        || lower[..lower.len() - c.len()]
                            .chars()
                            .next_back()
                            .is_none_or(|ch| !ch.is_alphanumeric()))
            })
            .max_by_key(|c| c.len())
        else {
            continue;
        };
        let conn_start = prev.end + between.len() - conn.len();
        let prev_end = prev.end
            + prompt[prev.end..conn_start]
                .trim_end_matches([' ', ','])
                .len();
        if prev_end > floor {
            cuts.push((prev_end, next.start));
            floor = next.start;
        }
    }
    cuts
}

/// Whether every ACTION of a clause (`actions`, its ACTION entities) is
/// negated: the word before it is a negator (or, when no verb was tagged, a
/// negator is anywhere in the clause). Such a clause asks for nothing to be
/// done.
pub(super) fn negated(text: &str, clause_start: usize, actions: &[&Entity]) -> bool {
    let is_negator = |w: &str| {
        NEGATORS.contains(&w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'' && c != '’'))
    };
    if actions.is_empty() {
        // No verb was tagged: a negator anywhere ("just looking, don't book
        // anything") still says nothing is to be done.
        return text.to_lowercase().split_whitespace().any(is_negator);
    }
    actions.iter().all(|a| {
        let before = text[..byte_offset(text, a.start - clause_start)].to_lowercase();
        before
            .split_whitespace()
            .next_back()
            .is_some_and(is_negator)
    })
}

pub(super) fn char_offset(text: &str, byte: usize) -> usize {
    text[..byte].chars().count()
}

/// The byte index of char offset `chars` in `text` (its length past the end):
/// the inverse of `char_offset`.
pub(super) fn byte_offset(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(b, _)| b)
}

pub(super) fn to_entities(prompt: &str, merged: Vec<(Span, Origin)>) -> Vec<Entity> {
    merged
        .into_iter()
        .filter(|(s, _)| s.start < s.end && s.end <= prompt.len())
        .map(|(s, origin)| Entity {
            label: s.label,
            text: prompt[s.start..s.end].to_string(),
            start: char_offset(prompt, s.start),
            end: char_offset(prompt, s.end),
            score: s.score,
            source: match origin {
                Origin::Model => EntitySource::Model,
                Origin::Validator => EntitySource::Validator,
                Origin::Both => EntitySource::Both,
            },
        })
        .collect()
}

/// Names the data a delegating clause hands control to: from the first
/// data noun ("email", "checklist", "page", …) to the end of the clause,
/// else the clause without its verb.
pub(super) fn delegation_source(text: &str, actions: &[&Entity], clause_start: usize) -> String {
    let lower = text.to_lowercase();
    let mut best: Option<usize> = None;
    let mut pos = 0;
    for word in lower.split(|c: char| !c.is_alphanumeric()) {
        if DATA_NOUNS.contains(&word) && !word.is_empty() {
            best = Some(pos);
            break;
        }
        pos += word.len() + 1;
    }
    let verb_end = actions
        .first()
        .map_or(0, |e| byte_offset(text, e.end - clause_start));
    let from = best.unwrap_or(verb_end).min(text.len());
    let mut source = text
        .get(from..)
        .unwrap_or(text)
        .trim()
        .trim_end_matches(['.', '!', '?', ',']);
    // "the email from Ana asks" names the email, not the asking.
    for verb in DELEGATION_VERBS {
        if let Some(rest) = source.strip_suffix(verb)
            && rest.ends_with(' ')
        {
            source = rest.trim_end();
            break;
        }
    }
    if source.is_empty() {
        text.trim().to_string()
    } else {
        source.to_string()
    }
}

/// One grant per tool, keeping the strongest role and the best score.
pub(super) fn merge_grants(grants: Vec<ToolGrant>) -> Vec<ToolGrant> {
    let rank = |r: ToolRole| match r {
        ToolRole::Requested => 0,
        ToolRole::Read => 1,
        ToolRole::Supporting => 2,
    };
    let mut out: Vec<ToolGrant> = Vec::new();
    for g in grants {
        match out.iter_mut().find(|o| o.name == g.name) {
            Some(o) => {
                if rank(g.role) < rank(o.role) || (g.role == o.role && g.score > o.score) {
                    *o = g;
                }
            }
            None => out.push(g),
        }
    }
    out
}
