//! Which verbs of a segment are requested actions. The model's ACTION
//! spans, less participles ("the expiring link") and the verbs of a
//! message the request carries ("DM Rasmus: can you review my PR?"), plus
//! verbs coordinated with a tagged action that the model missed ("assign
//! it to Kofi, and put it in the sprint"). The clauses of a segment are
//! cut at these actions.

use regex::Regex;
use std::sync::LazyLock;

use super::lexicon::{BASE_FORMS, NOT_ACTIONS};
use crate::intent::EntityLabel;
use crate::text::Span;

/// The content a request carries, as a byte range: after a colon that
/// follows a requested action and its target ("DM Rasmus: can you review
/// my PR?", "Comment on INFRA-590: …"), up to the end of `text[from..to]`
/// or, when the content is quoted, to its closing quote ("File a bug in
/// BILL: 'Invoice PDF shows wrong VAT', and pull it into the sprint").
/// What it holds is the message to deliver, not more requests. A colon
/// inside quotes, in a time ("10:30") or with no target before it ("Good
/// night routine: lock …") starts none. The range starts at the colon.
/// The action is one of the model's `spans`; the target may also be one of
/// the validators' `shaped` values ("Email bob@example.com: …"). Neither
/// list need be sorted or limited to the range.
pub fn payload(
    text: &str,
    (from, to): (usize, usize),
    spans: &[Span],
    shaped: &[Span],
) -> Option<(usize, usize)> {
    let segment = &text[from..to];
    let mut quoted = false;
    let mut prev = ' ';
    for (i, c) in segment.char_indices() {
        match c {
            '"' | '“' | '”' => quoted = !quoted,
            '\'' | '‘' if prev.is_whitespace() => quoted = true,
            '\'' | '’' if quoted && closes(&segment[i + c.len_utf8()..]) => quoted = false,
            ':' if !quoted && segment[i + 1..].starts_with(char::is_whitespace) => {
                let at = from + i;
                let action = spans
                    .iter()
                    .filter(|s| s.label == EntityLabel::Action && from <= s.start && s.end <= at)
                    .min_by_key(|s| s.start)?;
                let target = spans.iter().chain(shaped).any(|s| {
                    s.label != EntityLabel::Action && action.end <= s.start && s.end <= at
                });
                let content = segment[i + 1..].trim_start();
                let content_at = to - content.len();
                let end = quote_end(content).map_or(to, |e| content_at + e);
                return target.then_some((at, end));
            }
            _ => {}
        }
        prev = c;
    }
    None
}

/// Whether a single quote before `rest` closes a quotation (it is not an
/// apostrophe inside a word).
fn closes(rest: &str) -> bool {
    !rest.starts_with(char::is_alphanumeric)
}

/// The byte end of the quotation `text` opens with, if it opens with one.
fn quote_end(text: &str) -> Option<usize> {
    let open = text.chars().next()?;
    let is_close = |c: char| match open {
        '"' => c == '"',
        '“' => c == '”' || c == '"',
        '\'' | '‘' => c == '\'' || c == '’',
        _ => false,
    };
    if !matches!(open, '"' | '“' | '\'' | '‘') {
        return None;
    }
    let body = &text[open.len_utf8()..];
    body.char_indices()
        .find(|&(i, c)| is_close(c) && closes(&body[i + c.len_utf8()..]))
        .map(|(i, c)| open.len_utf8() + i + c.len_utf8())
}

/// Whether an ACTION span is a participle or gerund ("the expiring link",
/// "cards I found cancelled", "rotating the keys") rather than the
/// imperative of a request. A gerund after "mind" ("would you mind
/// sharing …") is the politely requested action itself.
fn participle(text: &str, span: &Span) -> bool {
    let word = text[span.start..span.end].to_lowercase();
    if word.contains(' ') || BASE_FORMS.contains(&word.as_str()) || word.len() < 5 {
        return false;
    }
    let after_mind = text[..span.start]
        .split_whitespace()
        .next_back()
        .is_some_and(|w| w.eq_ignore_ascii_case("mind"));
    (word.ends_with("ing") && !after_mind) || word.ends_with("ed")
}

/// The requested actions of `text[from..to]`: the model's ACTION spans
/// without participles, plus verbs coordinated with one of them, none
/// inside the `payload` (a message's verbs are not requests). Other spans
/// are kept as they are.
pub fn requested_actions(
    text: &str,
    range: (usize, usize),
    payload: Option<(usize, usize)>,
    spans: Vec<Span>,
) -> Vec<Span> {
    let keep = |s: &Span| {
        s.label != EntityLabel::Action
            || !(participle(text, s)
                || payload.is_some_and(|(ps, pe)| ps <= s.start && s.end <= pe))
    };
    let spans = spans.into_iter().filter(keep).collect();
    coordinated_actions(text, range, spans)
        .into_iter()
        .filter(keep)
        .collect()
}

/// A word after "and" or a comma, followed by an object pronoun: "… and
/// put it …", ", send them …". Pronouns that can also be determiners
/// ("this", "that") are left out: "after that", "starting this month".
static COORDINATED_VERB: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?i)(?:\band|,)\s+([a-z]+)\s+(?:it|them|him|her|me|us)\b").ok());

/// Adds an ACTION span over each verb coordinated with an earlier ACTION of
/// the same text that the model did not tag: in "assign it to Kofi, and
/// put it in the current sprint", "put" is the second requested action.
/// Only `text[from..to]` is read; spans are in byte offsets of `text` and
/// stay sorted.
pub fn coordinated_actions(
    text: &str,
    (from, to): (usize, usize),
    mut spans: Vec<Span>,
) -> Vec<Span> {
    let Some(re) = COORDINATED_VERB.as_ref() else {
        return spans;
    };
    for caps in re.captures_iter(&text[from..to]) {
        let Some(verb) = caps.get(1) else { continue };
        let (start, end) = (from + verb.start(), from + verb.end());
        let word = verb.as_str().to_lowercase();
        let follows_action = spans
            .iter()
            .any(|s| s.label == EntityLabel::Action && s.end <= start);
        let taken = spans.iter().any(|s| s.start < end && start < s.end);
        if !follows_action || taken || word.ends_with("ing") || NOT_ACTIONS.contains(&word.as_str())
        {
            continue;
        }
        let at = spans.partition_point(|s| s.start < start);
        spans.insert(
            at,
            Span {
                label: EntityLabel::Action,
                start,
                end,
                score: 0.5,
            },
        );
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extraction::decode::{span_over as span, span_texts as texts};

    #[test]
    fn a_verb_coordinated_with_an_action_is_an_action() {
        let text = "assign it to Kofi Boateng, and put it in the current sprint";
        let spans = vec![span(text, "assign", EntityLabel::Action)];
        let out = coordinated_actions(text, (0, text.len()), spans);
        assert_eq!(
            texts(text, &out),
            vec![
                (EntityLabel::Action, "assign".into()),
                (EntityLabel::Action, "put".into())
            ]
        );
    }

    #[test]
    fn linking_words_taken_words_and_untagged_texts_add_nothing() {
        let text = "check the lock and if it is open, lock it";
        let spans = vec![span(text, "check", EntityLabel::Action)];
        // "if" links; "lock it" follows a comma and is added.
        let out = coordinated_actions(text, (0, text.len()), spans.clone());
        assert_eq!(out.len(), 2);
        assert_eq!(&text[out[1].start..out[1].end], "lock");
        let text = "move the file and share it";
        let spans = vec![
            span(text, "move", EntityLabel::Action),
            span(text, "share", EntityLabel::Action),
        ];
        assert_eq!(
            coordinated_actions(text, (0, text.len()), spans.clone()),
            spans
        );
        // Without an earlier action nothing is read as one.
        assert!(coordinated_actions("the list and send it", (0, 20), vec![]).is_empty());
        let text = "book the room, starting it at 9";
        let spans = vec![span(text, "book", EntityLabel::Action)];
        assert_eq!(
            coordinated_actions(text, (0, text.len()), spans.clone()),
            spans
        );
    }

    #[test]
    fn participles_are_not_requested_actions() {
        let text = "archive the newsletters cluttering my inbox, would you mind sharing it";
        let spans = vec![
            span(text, "archive", EntityLabel::Action),
            span(text, "cluttering", EntityLabel::Action),
            span(text, "sharing", EntityLabel::Action),
        ];
        let out = requested_actions(text, (0, text.len()), None, spans);
        assert_eq!(
            texts(text, &out),
            vec![
                (EntityLabel::Action, "archive".into()),
                (EntityLabel::Action, "sharing".into())
            ]
        );
        let text = "shred the expired drafts";
        let spans = vec![
            span(text, "shred", EntityLabel::Action),
            span(text, "expired", EntityLabel::Action),
        ];
        assert_eq!(
            texts(text, &requested_actions(text, (0, text.len()), None, spans)).len(),
            1
        );
    }

    #[test]
    fn a_colon_after_an_action_and_its_target_starts_the_payload() {
        let text = "DM Rasmus: can you review my PR before lunch?";
        let spans = vec![
            span(text, "DM", EntityLabel::Action),
            span(text, "Rasmus", EntityLabel::Person),
            span(text, "review", EntityLabel::Action),
        ];
        let range = (0, text.len());
        let p = payload(text, range, &spans, &[]);
        assert_eq!(p, Some((9, text.len())));
        assert_eq!(
            texts(text, &requested_actions(text, range, p, spans)),
            vec![
                (EntityLabel::Action, "DM".into()),
                (EntityLabel::Person, "Rasmus".into())
            ]
        );
    }

    #[test]
    fn a_shaped_value_is_a_target_too() {
        let text = "Email bob@example.com: please send the deck";
        let spans = vec![
            span(text, "Email", EntityLabel::Action),
            span(text, "send", EntityLabel::Action),
        ];
        let shaped = vec![span(text, "bob@example.com", EntityLabel::Email)];
        let range = (0, text.len());
        assert_eq!(payload(text, range, &spans, &[]), None);
        assert_eq!(
            payload(text, range, &spans, &shaped),
            Some((21, text.len()))
        );
    }

    #[test]
    fn a_quoted_payload_ends_at_its_closing_quote() {
        let text =
            "File a bug in BILL: 'Fix the VAT rate on Tom's invoices', and pull it into the sprint";
        let spans = vec![
            span(text, "File", EntityLabel::Action),
            span(text, "BILL", EntityLabel::Resource),
            span(text, "Fix", EntityLabel::Action),
        ];
        let range = (0, text.len());
        let (start, end) = payload(text, range, &spans, &[]).unwrap();
        assert_eq!(&text[start..end], ": 'Fix the VAT rate on Tom's invoices'");
        let actions: Vec<String> = texts(
            text,
            &requested_actions(text, range, Some((start, end)), spans),
        )
        .into_iter()
        .filter(|(l, _)| *l == EntityLabel::Action)
        .map(|(_, t)| t)
        .collect();
        assert_eq!(actions, vec!["File", "pull"]);
    }

    #[test]
    fn colons_without_a_target_in_quotes_or_in_times_start_nothing() {
        let text = "Good night routine: lock the front door";
        let spans = vec![span(text, "lock", EntityLabel::Action)];
        assert_eq!(payload(text, (0, text.len()), &spans, &[]), None);
        let text = "Set the topic of #ops to 'On call: Nadia'";
        let spans = vec![
            span(text, "Set", EntityLabel::Action),
            span(text, "#ops", EntityLabel::Channel),
        ];
        assert_eq!(payload(text, (0, text.len()), &spans, &[]), None);
        let text = "Move standup to 10:30 with Ana";
        let spans = vec![
            span(text, "Move", EntityLabel::Action),
            span(text, "standup", EntityLabel::Resource),
        ];
        assert_eq!(payload(text, (0, text.len()), &spans, &[]), None);
    }
}
