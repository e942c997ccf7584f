//! Span boundaries the annotation guide fixes (`fixtures/ANNOTATION.md`)
//! and the model does not always draw: spans end on a word of their own
//! ("the 22nd", not "the 22nd in"; "Stripe", not "Stripe webhooks"); a
//! range of dates is two dates, a word that is a date by itself is one
//! ("today", "Monday's sync"), and generic time words are none; a name
//! followed by the noun of its kind ("Invoices folder", "api-gateway
//! service") is one span of that kind; and an identifier takes the noun
//! of its record ("trip ZP3N6D"). The order they run in is the table of
//! [`super::passes`].

use super::lexicon::{
    CLOCK_WORDS, DEICTIC_DATES, GENERIC_TIME_WORDS, ID_MARKERS, KIND_NOUNS, ORG_SUFFIXES,
    PARTICLES, PARTS_OF_DAY, RANGE_JOINS, RECORD_NOUNS, TRAILING_WORDS, WEEKDAYS, stops_a_name,
};
use crate::intent::EntityLabel;
use crate::text::Span;

/// Labels whose span can take a kind noun after it: names of things. A
/// person, a date or an amount followed by "file" is not a file's name.
fn names_a_thing(label: EntityLabel) -> bool {
    matches!(
        label,
        EntityLabel::File
            | EntityLabel::Channel
            | EntityLabel::Resource
            | EntityLabel::Product
            | EntityLabel::Org
    )
}

/// Drops trailing function words from every span but an ACTION (whose
/// particle belongs to it: "set up"), and trailing lowercase words from a
/// capitalised person or organisation name; drops an ACTION that is a lone
/// particle.
pub fn trim_edges(text: &str, spans: Vec<Span>) -> Vec<Span> {
    spans
        .into_iter()
        .filter_map(|mut s| {
            let inner = &text[s.start..s.end];
            if s.label == EntityLabel::Action {
                return (!PARTICLES.contains(&inner.to_lowercase().as_str())).then_some(s);
            }
            // A capitalised name does not end in a lowercase word: "Hyun-woo
            // edit", "Stripe webhooks" are "Hyun-woo" and "Stripe".
            let name = matches!(s.label, EntityLabel::Person | EntityLabel::Org)
                && inner.starts_with(char::is_uppercase);
            let mut end = s.end;
            while let Some((head, last)) = text[s.start..end].rsplit_once(' ') {
                let lowercase = last.chars().all(|c| !c.is_alphabetic() || c.is_lowercase());
                if !(TRAILING_WORDS.contains(&last.to_lowercase().as_str()) || name && lowercase) {
                    break;
                }
                end = s.start + head.trim_end().len();
            }
            s.end = end;
            (s.end > s.start).then_some(s)
        })
        .collect()
}

/// Drops a DATETIME span made only of generic time words ("what time",
/// "the time of day"): the guide labels no noun that names no specific
/// instance.
pub fn drop_generic_times(text: &str, spans: Vec<Span>) -> Vec<Span> {
    spans
        .into_iter()
        .filter(|s| {
            s.label != EntityLabel::Datetime
                || !text[s.start..s.end]
                    .split_whitespace()
                    .all(|w| GENERIC_TIME_WORDS.contains(&w.to_lowercase().as_str()))
        })
        .collect()
}

/// Adds a DATETIME span over a word that is a date by itself ("today",
/// "tomorrow morning") when no span holds it, and relabels a span of that
/// word alone.
pub fn deictic_dates(text: &str, mut spans: Vec<Span>) -> Vec<Span> {
    let words = crate::text::words(text);
    for (k, &(ws, we)) in words.iter().enumerate() {
        if !DEICTIC_DATES.contains(&text[ws..we].to_lowercase().as_str()) {
            continue;
        }
        // A span of the word alone under another label ("tmrw" as a
        // place) is the date.
        if let Some(s) = spans.iter_mut().find(|s| s.start == ws && s.end == we) {
            s.label = EntityLabel::Datetime;
            continue;
        }
        if spans.iter().any(|s| s.start < we && ws < s.end) {
            continue;
        }
        let end = words
            .get(k + 1)
            .filter(|&&(ns, ne)| {
                &text[we..ns] == " "
                    && PARTS_OF_DAY.contains(&text[ns..ne].to_lowercase().as_str())
                    && !spans.iter().any(|s| s.start < ne && ns < s.end)
            })
            .map_or(we, |&(_, ne)| ne);
        spans.push(Span {
            label: EntityLabel::Datetime,
            start: ws,
            end,
            score: 0.5,
        });
    }
    spans.sort_by_key(|s| s.start);
    spans
}

/// Splits a span that opens with a day in the possessive into the day, a
/// DATETIME, and what the day qualifies, with the span's label: "Monday's
/// weekly sync" is `Monday` and `weekly sync`; a DATETIME span keeps only
/// the day ("tomorrow's flight" is `tomorrow`).
pub fn possessive_days(text: &str, spans: Vec<Span>) -> Vec<Span> {
    let mut out = Vec::with_capacity(spans.len());
    for span in spans {
        let inner = &text[span.start..span.end];
        let split = ["'s ", "’s "].iter().find_map(|poss| {
            let at = inner.find(poss)?;
            let day = inner[..at].to_lowercase();
            (WEEKDAYS.contains(&day.as_str()) || DEICTIC_DATES.contains(&day.as_str()))
                .then_some((at, at + poss.len()))
        });
        let Some((day_end, rest_start)) = split else {
            out.push(span);
            continue;
        };
        out.push(Span {
            label: EntityLabel::Datetime,
            end: span.start + day_end,
            ..span.clone()
        });
        if span.label != EntityLabel::Datetime {
            out.push(Span {
                start: span.start + rest_start,
                ..span
            });
        }
    }
    out
}

/// A year right before a file's name is part of the name: "2024" +
/// "pricing sheet" is the FILE `2024 pricing sheet`.
pub fn years_in_file_names(text: &str, mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by_key(|s| s.start);
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for span in spans {
        if let Some(prev) = out.last_mut()
            && span.label == EntityLabel::File
            && prev.label == EntityLabel::Datetime
            && &text[prev.end..span.start] == " "
            && text[prev.start..prev.end].len() == 4
            && text[prev.start..prev.end]
                .bytes()
                .all(|b| b.is_ascii_digit())
        {
            prev.label = EntityLabel::File;
            prev.end = span.end;
            continue;
        }
        out.push(span);
    }
    out
}

/// A PERSON span of several words whose last word is an organisation's
/// suffix is an ORG.
pub fn organisations(text: &str, spans: Vec<Span>) -> Vec<Span> {
    spans
        .into_iter()
        .map(|mut s| {
            let inner = &text[s.start..s.end];
            if s.label == EntityLabel::Person
                && let Some((_, last)) = inner.rsplit_once(' ')
                && ORG_SUFFIXES.contains(&last.to_lowercase().as_str())
            {
                s.label = EntityLabel::Org;
            }
            s
        })
        .collect()
}

/// Splits each date span that holds a range at its joining word:
/// "May 14 to May 16" is `May 14` and `May 16`. A leading "the" of the
/// second end is dropped, as everywhere.
pub fn split_date_ranges(text: &str, spans: Vec<Span>) -> Vec<Span> {
    let mut out = Vec::with_capacity(spans.len());
    for span in spans {
        let inner = &text[span.start..span.end];
        let split = (span.label == EntityLabel::Datetime)
            .then(|| {
                RANGE_JOINS
                    .iter()
                    .find_map(|j| inner.find(j).map(|at| (at, at + j.len())))
            })
            .flatten()
            .filter(|&(at, _)| !CLOCK_WORDS.contains(&inner[..at].to_lowercase().as_str()));
        let Some((left_end, right_start)) = split else {
            out.push(span);
            continue;
        };
        let right = &inner[right_start..];
        let right = right.strip_prefix("the ").unwrap_or(right);
        if right.is_empty() || left_end == 0 {
            out.push(span);
            continue;
        }
        out.push(Span {
            end: span.start + left_end,
            ..span.clone()
        });
        out.push(Span {
            start: span.end - right.len(),
            ..span
        });
    }
    out
}

/// Splits each person span that lists several people at its commas and
/// "and": "Esteban, Zoltan" is `Esteban` and `Zoltan`.
pub fn split_person_lists(text: &str, spans: Vec<Span>) -> Vec<Span> {
    let mut out = Vec::with_capacity(spans.len());
    for span in spans {
        if span.label != EntityLabel::Person {
            out.push(span);
            continue;
        }
        let mut start = span.start;
        let inner = &text[span.start..span.end];
        let mut cuts: Vec<(usize, usize)> = [", and ", ", ", " and ", " & "]
            .iter()
            .flat_map(|sep| {
                inner
                    .match_indices(sep)
                    .map(move |(at, m)| (span.start + at, span.start + at + m.len()))
            })
            .collect();
        cuts.sort_unstable();
        for (cut_start, cut_end) in cuts {
            if cut_start < start {
                continue; // inside a longer separator already cut
            }
            if cut_start > start {
                out.push(Span {
                    start,
                    end: cut_start,
                    ..span.clone()
                });
            }
            start = cut_end;
        }
        if span.end > start {
            out.push(Span { start, ..span });
        }
    }
    out
}

/// Whether a word looks like part of a name: a capital, a digit or a hyphen.
fn name_like(word: &str) -> bool {
    word.chars()
        .any(|c| c.is_uppercase() || c.is_ascii_digit() || c == '-')
}

/// Names the model left out before a kind noun: "the Legal folder" and
/// "the api-gateway service" become spans of the noun's kind, as does
/// "backup folder" when the model tagged "folder" alone. The name is read
/// backwards over at most three words, up to a determiner, a preposition,
/// punctuation or another span; a name the model did not tag at all needs
/// a capital, a digit or a hyphen.
pub fn name_before_kind_nouns(text: &str, mut spans: Vec<Span>) -> Vec<Span> {
    let words = crate::text::words(text);
    for (k, &(ws, we)) in words.iter().enumerate() {
        let Some(&(_, kind)) = KIND_NOUNS
            .iter()
            .find(|(noun, _)| noun.eq_ignore_ascii_case(&text[ws..we]))
        else {
            continue;
        };
        let tagged = spans.iter().position(|s| s.start == ws && s.end == we);
        if tagged.is_none() && spans.iter().any(|s| s.start < we && ws < s.end) {
            continue;
        }
        let mut first = k;
        while first > 0 && k - first < 3 {
            let (ps, pe) = words[first - 1];
            let gap = &text[pe..words[first].0];
            let word = &text[ps..pe];
            if gap != " "
                || stops_a_name(&word.to_lowercase())
                || spans.iter().any(|s| s.start < pe && ps < s.end)
            {
                break;
            }
            first -= 1;
        }
        if first == k {
            continue;
        }
        let name = &words[first..k];
        if tagged.is_none() && !name.iter().any(|&(s, e)| name_like(&text[s..e])) {
            continue;
        }
        let span = Span {
            label: kind,
            start: words[first].0,
            end: we,
            score: tagged.map_or(0.5, |i| spans[i].score),
        };
        match tagged {
            Some(i) => spans[i] = span,
            None => spans.push(span),
        }
    }
    spans.sort_by_key(|s| s.start);
    spans
}

/// Extends a span over the kind noun right after it and gives it that
/// kind: "Tax 2024" + "folder" is the FILE `Tax 2024 folder`. Only when one
/// space separates them and no other span holds the noun.
pub fn absorb_kind_nouns(text: &str, mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by_key(|s| s.start);
    for i in 0..spans.len() {
        if !names_a_thing(spans[i].label) {
            continue;
        }
        let end = spans[i].end;
        let Some(rest) = text[end..].strip_prefix(' ') else {
            continue;
        };
        let word_len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '-'))
            .unwrap_or(rest.len());
        let word = rest[..word_len].to_lowercase();
        let Some(&(_, kind)) = KIND_NOUNS.iter().find(|(noun, _)| *noun == word) else {
            continue;
        };
        let noun_end = end + 1 + word_len;
        if spans.get(i + 1).is_some_and(|next| next.start < noun_end) {
            continue;
        }
        spans[i].end = noun_end;
        spans[i].label = kind;
    }
    spans
}

/// Whether a span's text is an identifier: a digit, or capitals only.
fn identifier_like(s: &str) -> bool {
    s.chars().any(|c| c.is_ascii_digit())
        || (s.len() > 1 && s.chars().all(|c| c.is_ascii_uppercase() || c == '-'))
}

/// RESOURCE identifiers, after the validators' spans are merged in, take
/// the record noun right before them ("trip ZP3N6D") and drop a leading
/// reference marker ("ref CR-771204" is `CR-771204`).
pub fn record_nouns<T>(text: &str, mut spans: Vec<(Span, T)>) -> Vec<(Span, T)> {
    let words = crate::text::words(text);
    for i in 0..spans.len() {
        if spans[i].0.label != EntityLabel::Resource {
            continue;
        }
        let (start, end) = (spans[i].0.start, spans[i].0.end);
        let inner = &text[start..end];
        if let Some((first, rest)) = inner.split_once(' ')
            && ID_MARKERS.contains(&first.to_lowercase().as_str())
            && !rest.trim().is_empty()
        {
            spans[i].0.start = end - rest.len();
            continue;
        }
        if !identifier_like(inner) {
            continue;
        }
        let Some(&(ps, pe)) = words.iter().rev().find(|&&(_, e)| e <= start) else {
            continue;
        };
        let taken = spans.iter().any(|(s, _)| s.start < pe && ps < s.end);
        if !taken
            && &text[pe..start] == " "
            && RECORD_NOUNS.contains(&text[ps..pe].to_lowercase().as_str())
        {
            spans[i].0.start = ps;
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extraction::decode::{span_over as span, span_texts as texts};

    #[test]
    fn a_date_range_is_two_dates() {
        let text = "move my flight from the 3rd to the 5th";
        let out = split_date_ranges(
            text,
            vec![span(text, "3rd to the 5th", EntityLabel::Datetime)],
        );
        assert_eq!(
            texts(text, &out),
            [
                (EntityLabel::Datetime, "3rd".into()),
                (EntityLabel::Datetime, "5th".into())
            ]
        );
        let text = "block May 14 until May 16";
        let out = split_date_ranges(
            text,
            vec![span(text, "May 14 until May 16", EntityLabel::Datetime)],
        );
        assert_eq!(out.len(), 2);
        assert_eq!(&text[out[1].start..out[1].end], "May 16");
    }

    #[test]
    fn clock_times_and_other_labels_stay_whole() {
        let text = "wake me at quarter to five";
        let one = vec![span(text, "quarter to five", EntityLabel::Datetime)];
        assert_eq!(split_date_ranges(text, one.clone()), one);
        let text = "send it to Ana to review";
        let one = vec![span(text, "Ana to review", EntityLabel::Resource)];
        assert_eq!(split_date_ranges(text, one.clone()), one);
    }

    #[test]
    fn a_kind_noun_joins_the_name_before_it() {
        let text = "move the PDFs to the Tax 2024 folder, then post in the design channel";
        let out = absorb_kind_nouns(
            text,
            vec![
                span(text, "Tax 2024", EntityLabel::Resource),
                span(text, "design", EntityLabel::Org),
            ],
        );
        assert_eq!(
            texts(text, &out),
            [
                (EntityLabel::File, "Tax 2024 folder".into()),
                (EntityLabel::Channel, "design channel".into())
            ]
        );
    }

    #[test]
    fn kind_nouns_leave_people_dates_and_taken_words_alone() {
        let text = "give Ana file access on Monday group call";
        let spans = vec![
            span(text, "Ana", EntityLabel::Person),
            span(text, "Monday", EntityLabel::Datetime),
        ];
        assert_eq!(absorb_kind_nouns(text, spans.clone()), spans);
        let text = "share Roadmap folder.pdf";
        let spans = vec![
            span(text, "Roadmap", EntityLabel::File),
            span(text, "folder.pdf", EntityLabel::File),
        ];
        assert_eq!(absorb_kind_nouns(text, spans.clone()), spans);
        // "filed" is not "file".
        let text = "the Acme report filed yesterday";
        let spans = vec![span(text, "Acme report", EntityLabel::File)];
        assert_eq!(absorb_kind_nouns(text, spans.clone()), spans);
    }

    #[test]
    fn an_identifier_takes_its_record_noun_and_drops_its_marker() {
        let text = "change trip ZP3N6D, ref CR-771204, for order Kyoto";
        let spans = vec![
            (span(text, "ZP3N6D", EntityLabel::Resource), ()),
            (span(text, "ref CR-771204", EntityLabel::Resource), ()),
            (span(text, "Kyoto", EntityLabel::Resource), ()),
        ];
        let out: Vec<Span> = record_nouns(text, spans)
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(
            texts(text, &out),
            vec![
                (EntityLabel::Resource, "trip ZP3N6D".into()),
                (EntityLabel::Resource, "CR-771204".into()),
                (EntityLabel::Resource, "Kyoto".into())
            ]
        );
    }

    #[test]
    fn edges_lose_run_on_words_and_lone_particles() {
        let text = "block 6-9pm on the 22nd in my calendar, ask the Oakridge Capital folks, Kofi webhooks, warm it up";
        let spans = vec![
            span(text, "22nd in", EntityLabel::Datetime),
            span(text, "Oakridge Capital folks", EntityLabel::Org),
            span(text, "Kofi webhooks", EntityLabel::Person),
            span(text, "warm", EntityLabel::Action),
            span(text, "up", EntityLabel::Action),
        ];
        assert_eq!(
            texts(text, &trim_edges(text, spans)),
            vec![
                (EntityLabel::Datetime, "22nd".into()),
                (EntityLabel::Org, "Oakridge Capital".into()),
                (EntityLabel::Person, "Kofi".into()),
                (EntityLabel::Action, "warm".into())
            ]
        );
    }

    #[test]
    fn a_name_with_an_organisation_suffix_is_an_organisation() {
        let text = "pay Holloway Lettings and Ana Silva";
        let spans = vec![
            span(text, "Holloway Lettings", EntityLabel::Person),
            span(text, "Ana Silva", EntityLabel::Person),
        ];
        assert_eq!(
            texts(text, &organisations(text, spans)),
            vec![
                (EntityLabel::Org, "Holloway Lettings".into()),
                (EntityLabel::Person, "Ana Silva".into())
            ]
        );
    }

    #[test]
    fn generic_time_words_are_no_date() {
        let text = "move it to the same time of day next week";
        let spans = vec![
            span(text, "time of day", EntityLabel::Datetime),
            span(text, "next week", EntityLabel::Datetime),
        ];
        assert_eq!(
            texts(text, &drop_generic_times(text, spans)),
            vec![(EntityLabel::Datetime, "next week".into())]
        );
    }

    #[test]
    fn a_word_that_is_a_date_is_a_date() {
        let text = "post it tomorrow morning, not today at 5";
        let spans = vec![span(text, "today at 5", EntityLabel::Datetime)];
        assert_eq!(
            texts(text, &deictic_dates(text, spans)),
            vec![
                (EntityLabel::Datetime, "tomorrow morning".into()),
                (EntityLabel::Datetime, "today at 5".into())
            ]
        );
    }

    #[test]
    fn a_year_before_a_file_name_belongs_to_it() {
        let text = "copy the 2024 pricing sheet, due 2025 Friday";
        let spans = vec![
            span(text, "2024", EntityLabel::Datetime),
            span(text, "pricing sheet", EntityLabel::File),
            span(text, "2025", EntityLabel::Datetime),
        ];
        assert_eq!(
            texts(text, &years_in_file_names(text, spans)),
            vec![
                (EntityLabel::File, "2024 pricing sheet".into()),
                (EntityLabel::Datetime, "2025".into())
            ]
        );
    }

    #[test]
    fn a_day_in_the_possessive_is_a_date_of_its_own() {
        let text = "cancel Monday's weekly sync and tomorrow's flight, not tmrw";
        let spans = vec![
            span(text, "Monday's weekly sync", EntityLabel::Resource),
            span(text, "tomorrow's flight", EntityLabel::Datetime),
            span(text, "tmrw", EntityLabel::Location),
        ];
        assert_eq!(
            texts(text, &deictic_dates(text, possessive_days(text, spans))),
            vec![
                (EntityLabel::Datetime, "Monday".into()),
                (EntityLabel::Resource, "weekly sync".into()),
                (EntityLabel::Datetime, "tomorrow".into()),
                (EntityLabel::Datetime, "tmrw".into())
            ]
        );
        let text = "move tmrw's standup";
        let spans = vec![span(text, "tmrw's standup", EntityLabel::Resource)];
        assert_eq!(
            texts(text, &possessive_days(text, spans)),
            vec![
                (EntityLabel::Datetime, "tmrw".into()),
                (EntityLabel::Resource, "standup".into())
            ]
        );
    }
}
