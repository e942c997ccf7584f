//! Pure decoding of model outputs: softmax, BIO tags to entity spans (with
//! spans widened to whole words), and speech-act probabilities.

use super::lexicon::{DETERMINERS, TIME_PREPOSITIONS};
use crate::intent::EntityLabel;
use crate::text::{Span, words};

/// One BIO tag of the NER head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// Outside any entity.
    O,
    /// First token of an entity.
    B(EntityLabel),
    /// Continuation of an entity.
    I(EntityLabel),
}

impl Tag {
    /// Parses `O`, `B-LABEL` or `I-LABEL`.
    pub fn parse(s: &str) -> Option<Tag> {
        if s == "O" {
            return Some(Tag::O);
        }
        let (prefix, label) = s.split_once('-')?;
        let label = EntityLabel::parse(label)?;
        match prefix {
            "B" => Some(Tag::B(label)),
            "I" => Some(Tag::I(label)),
            _ => None,
        }
    }
}

/// Numerically stable softmax.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// Index and value of the largest element.
pub fn argmax(values: &[f32]) -> (usize, f32) {
    values
        .iter()
        .copied()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, v)| {
            if v > best.1 { (i, v) } else { best }
        })
}

/// A span over the first occurrence of `needle` in `text` (tests).
#[cfg(test)]
pub(crate) fn span_over(text: &str, needle: &str, label: EntityLabel) -> Span {
    let start = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in {text:?}"));
    Span {
        label,
        start,
        end: start + needle.len(),
        score: 0.9,
    }
}

/// Each span's label and text (tests).
#[cfg(test)]
pub(crate) fn span_texts(text: &str, spans: &[Span]) -> Vec<(EntityLabel, String)> {
    spans
        .iter()
        .map(|s| (s.label, text[s.start..s.end].to_string()))
        .collect()
}

/// Decodes per-token BIO logits into entity spans, word by word: a word
/// takes the tag of its first token (so `checkout-api` or `v2.14.0` stay
/// whole), `B-X`/`I-X` words extend a span of `X`, and two spans of the same
/// label separated only by a space are one (`Saoirse` `Mulcahy`). An inside
/// tag continues the open entity whatever its label (`Halvorsen` `Marine`
/// is one name even when the model hesitates between ORG and LOCATION on
/// its second word); the span then takes the label with the most
/// probability over its words. ACTION spans never merge with others.
/// `offsets` are the byte ranges of the tokens (`None` for special tokens).
pub fn decode_entities(
    text: &str,
    offsets: &[Option<(usize, usize)>],
    logits: &[Vec<f32>],
    tags: &[Tag],
) -> Vec<Span> {
    let tokens: Vec<((usize, usize), &Vec<f32>)> = offsets
        .iter()
        .zip(logits)
        .filter_map(|(o, l)| o.map(|o| (o, l)))
        .collect();
    let mut spans: Vec<Open> = Vec::new();
    let mut open = false;
    let mut next_token = 0usize;
    for (ws, we) in words(text) {
        while next_token < tokens.len() && tokens[next_token].0.1 <= ws {
            next_token += 1;
        }
        let Some(&(_, row)) = tokens.get(next_token).filter(|((ts, _), _)| *ts < we) else {
            // Truncated away, or punctuation only.
            open = false;
            continue;
        };
        let probs = softmax(row);
        let (best, p) = argmax(&probs);
        let (tag, p) = action_rescue(tags, &probs, best, p);
        let word = WordMass::of(tags, &probs);
        // Across labels or from a hesitant `O`, only to the next word:
        // punctuation in between ("Logistics: fleet") ends the entity.
        let continues =
            open && spans.last().is_some_and(|s| {
                s.label() != EntityLabel::Action && text[s.end..ws].chars().all(char::is_whitespace)
            }) && match tag {
                Tag::I(label) => label != EntityLabel::Action,
                Tag::O => word.inside >= CONTINUE_FLOOR,
                Tag::B(_) => false,
            };
        if continues && let Some(s) = spans.last_mut() {
            s.extend(we, p.max(word.inside), &word);
            continue;
        }
        match tag {
            Tag::O => open = false,
            Tag::B(label) | Tag::I(label) => {
                let adjacent = spans.last().is_some_and(|s| {
                    s.label() == label && text[s.end..ws].chars().all(|c| c == ' ')
                });
                match spans.last_mut().filter(|s| s.label() == label) {
                    Some(s) if open || adjacent => s.extend(we, p, &word),
                    _ => spans.push(Open::new(label, ws, we, p, &word)),
                }
                open = true;
            }
        }
    }
    spans
        .into_iter()
        .map(|s| without_determiner(text, s.finish()))
        .collect()
}

/// `span` without a leading determiner word (or, for a date, a leading
/// preposition, then a determiner), when a word remains.
fn without_determiner(text: &str, mut span: Span) -> Span {
    if span.label == EntityLabel::Action {
        return span;
    }
    let strip = |span: &mut Span, words: &dyn Fn(&str, &str) -> bool| {
        let inner = &text[span.start..span.end];
        if let Some((first, rest)) = inner.split_once(' ')
            && words(&first.to_lowercase(), rest)
        {
            let rest = rest.trim_start();
            if !rest.is_empty() {
                span.start = span.end - rest.len();
            }
        }
    };
    if span.label == EntityLabel::Datetime {
        strip(&mut span, &|first, rest| {
            TIME_PREPOSITIONS.contains(&first)
                || (first == "in"
                    && (rest.starts_with(|c: char| c.is_uppercase()) || rest.starts_with("the ")))
        });
    }
    strip(&mut span, &|first, _| DETERMINERS.contains(&first));
    span
}

/// Inside-tag probability (of any non-ACTION label) from which a word the
/// argmax calls `O` still continues the open entity. Of 0.2, 0.35 and
/// off, 0.2 gave the best entity F1 on the training domains of
/// `fixtures/intents` with the shipped model (0.820 against 0.809 off).
const CONTINUE_FLOOR: f32 = 0.2;

/// What one word's tag distribution says about entity labels.
struct WordMass {
    /// `B-X` + `I-X` per label, in [`EntityLabel::ALL`] order.
    label: [f32; EntityLabel::ALL.len()],
    /// Sum of the `I-X` tags of the non-ACTION labels.
    inside: f32,
}

impl WordMass {
    fn of(tags: &[Tag], probs: &[f32]) -> Self {
        let mut label = [0.0; EntityLabel::ALL.len()];
        let mut inside = 0.0;
        for (tag, &p) in tags.iter().zip(probs) {
            let (Tag::B(l) | Tag::I(l)) = *tag else {
                continue;
            };
            if let Some(k) = EntityLabel::ALL.iter().position(|x| *x == l) {
                label[k] += p;
            }
            if matches!(tag, Tag::I(l) if *l != EntityLabel::Action) {
                inside += p;
            }
        }
        Self { label, inside }
    }
}

/// A span being decoded.
struct Open {
    /// The label its first word was read as.
    first: EntityLabel,
    start: usize,
    end: usize,
    scores: Vec<f32>,
    mass: [f32; EntityLabel::ALL.len()],
}

impl Open {
    fn new(label: EntityLabel, start: usize, end: usize, p: f32, word: &WordMass) -> Self {
        Self {
            first: label,
            start,
            end,
            scores: vec![p],
            mass: word.label,
        }
    }

    fn extend(&mut self, end: usize, p: f32, word: &WordMass) {
        self.end = end;
        self.scores.push(p);
        for (m, w) in self.mass.iter_mut().zip(word.label) {
            *m += w;
        }
    }

    /// ACTION spans keep their label; an entity takes the non-ACTION label
    /// with the most probability over its words.
    fn label(&self) -> EntityLabel {
        if self.first == EntityLabel::Action {
            return EntityLabel::Action;
        }
        EntityLabel::ALL
            .iter()
            .zip(self.mass)
            .filter(|(l, _)| **l != EntityLabel::Action)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(self.first, |(l, _)| *l)
    }

    fn finish(self) -> Span {
        Span {
            label: self.label(),
            start: self.start,
            end: self.end,
            score: self.scores.iter().sum::<f32>() / self.scores.len() as f32,
        }
    }
}

/// Probability of the ACTION tags (B and I together) from which a word the
/// argmax calls `O` is read as an action. Verbs that are also nouns
/// ("email the receipt", "text Tom", "book a table") sit near the O/ACTION
/// boundary; an action missed there merges two requested actions into one
/// clause, which costs a whole tool, while a spurious ACTION word costs at
/// most one entity. On `fixtures/intents` any floor from 0.25 to 0.45
/// leaves tool scores unchanged and entity F1 within 0.002 of argmax.
const ACTION_FLOOR: f32 = 0.35;

/// The tag a word takes: its argmax, unless that is `O` while the ACTION
/// tags together reach [`ACTION_FLOOR`].
fn action_rescue(tags: &[Tag], probs: &[f32], best: usize, p: f32) -> (Tag, f32) {
    let tag = tags.get(best).copied().unwrap_or(Tag::O);
    if tag != Tag::O {
        return (tag, p);
    }
    let action = |want: fn(Tag) -> bool| {
        tags.iter()
            .zip(probs)
            .filter(|(t, _)| want(**t))
            .map(|(_, p)| *p)
            .sum::<f32>()
    };
    let b = action(|t| t == Tag::B(EntityLabel::Action));
    let i = action(|t| t == Tag::I(EntityLabel::Action));
    if b + i >= ACTION_FLOOR {
        let t = if b >= i {
            Tag::B(EntityLabel::Action)
        } else {
            Tag::I(EntityLabel::Action)
        };
        (t, b + i)
    } else {
        (tag, p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_tags(names: &[&str]) -> Vec<Tag> {
        names.iter().map(|t| Tag::parse(t).unwrap()).collect()
    }

    fn tags() -> Vec<Tag> {
        parse_tags(&["O", "B-ACTION", "I-ACTION", "B-LOCATION", "I-LOCATION"])
    }

    /// Logits that put tag `i` of `n` far ahead.
    fn onehot_of(n: usize, i: usize) -> Vec<f32> {
        let mut v = vec![0.0; n];
        v[i] = 10.0;
        v
    }

    fn onehot(i: usize) -> Vec<f32> {
        onehot_of(5, i)
    }

    /// Over [`tags`]: `O` wins (0.6), yet I-LOCATION has 0.3.
    fn hesitant() -> Vec<f32> {
        vec![0.6f32.ln(), -20.0, -20.0, 0.1f32.ln(), 0.3f32.ln()]
    }

    #[test]
    fn parses_tags() {
        assert_eq!(Tag::parse("B-MONEY"), Some(Tag::B(EntityLabel::Money)));
        assert_eq!(Tag::parse("X-MONEY"), None);
        assert_eq!(Tag::parse("B-NOPE"), None);
    }

    #[test]
    fn softmax_sums_to_one() {
        let p = softmax(&[1.0, 2.0, 3.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(argmax(&p).0, 2);
    }

    #[test]
    fn decodes_bio_spans() {
        let text = "fly to New York";
        let offsets = vec![
            None,
            Some((0, 3)),
            Some((4, 6)),
            Some((7, 10)),
            Some((11, 15)),
            None,
        ];
        let logits = vec![
            onehot(0),
            onehot(1),
            onehot(0),
            onehot(3),
            onehot(4),
            onehot(0),
        ];
        let spans = decode_entities(text, &offsets, &logits, &tags());
        assert_eq!(spans.len(), 2);
        assert_eq!(&text[spans[0].start..spans[0].end], "fly");
        assert_eq!(spans[1].label, EntityLabel::Location);
        assert_eq!(&text[spans[1].start..spans[1].end], "New York");
        assert!(spans[1].score > 0.99);
    }

    #[test]
    fn a_word_takes_the_tag_of_its_first_token() {
        // "checkout-api" tokenised as "checkout" "-" "api", tagged differently.
        let text = "deploy checkout-api now";
        let offsets = vec![
            Some((0, 6)),
            Some((7, 15)),
            Some((15, 16)),
            Some((16, 19)),
            Some((20, 23)),
        ];
        let logits = vec![onehot(1), onehot(3), onehot(0), onehot(1), onehot(0)];
        let spans = decode_entities(text, &offsets, &logits, &tags());
        assert_eq!(spans.len(), 2);
        assert_eq!(&text[spans[1].start..spans[1].end], "checkout-api");
    }

    #[test]
    fn same_label_words_next_to_each_other_are_one_span() {
        // Two B-LOCATION words in a row, then punctuation.
        let text = "to San Mateo, then";
        let offsets = vec![
            Some((0, 2)),
            Some((3, 6)),
            Some((7, 12)),
            Some((12, 13)),
            Some((14, 18)),
        ];
        let logits = vec![onehot(0), onehot(3), onehot(3), onehot(0), onehot(0)];
        let spans = decode_entities(text, &offsets, &logits, &tags());
        assert_eq!(spans.len(), 1);
        assert_eq!(&text[spans[0].start..spans[0].end], "San Mateo");
    }

    #[test]
    fn a_new_label_closes_the_open_span() {
        let text = "go Rome";
        let offsets = vec![Some((0, 2)), Some((3, 7))];
        let logits = vec![onehot(1), onehot(4)];
        let spans = decode_entities(text, &offsets, &logits, &tags());
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[1].label, EntityLabel::Location);
    }

    #[test]
    fn an_inside_tag_of_another_label_continues_the_entity() {
        // ACTION's inside tag never continues an entity of another label.
        let text = "visit Port Marine";
        let offsets = vec![Some((0, 5)), Some((6, 10)), Some((11, 17))];
        let logits = vec![onehot(1), onehot(3), onehot(2)];
        let spans = decode_entities(text, &offsets, &logits, &tags());
        assert_eq!(spans.len(), 3, "I-ACTION starts an ACTION span: {spans:?}");
        // A hesitant O whose inside-entity probability reaches the floor
        // continues the open entity.
        let logits = vec![onehot(1), onehot(3), hesitant()];
        let spans = decode_entities(text, &offsets, &logits, &tags());
        assert_eq!(spans.len(), 2);
        assert_eq!(&text[spans[1].start..spans[1].end], "Port Marine");
    }

    #[test]
    fn a_span_takes_the_label_with_the_most_probability() {
        let tags = parse_tags(&["O", "B-ORG", "I-ORG", "B-LOCATION", "I-LOCATION"]);
        let text = "Halvorsen Marine Group";
        let offsets = vec![Some((0, 9)), Some((10, 16)), Some((17, 22))];
        let p = |v: [f32; 5]| v.iter().map(|x| x.max(1e-6).ln()).collect::<Vec<f32>>();
        let logits = vec![
            p([0.0, 0.9, 0.0, 0.1, 0.0]),
            p([0.0, 0.0, 0.3, 0.0, 0.7]),
            p([0.0, 0.0, 0.8, 0.0, 0.2]),
        ];
        let spans = decode_entities(text, &offsets, &logits, &tags);
        assert_eq!(spans.len(), 1, "{spans:?}");
        assert_eq!(spans[0].label, EntityLabel::Org);
        assert_eq!(&text[spans[0].start..spans[0].end], text);
    }

    #[test]
    fn spans_drop_a_leading_determiner() {
        let text = "on the 22nd";
        let offsets = vec![Some((0, 2)), Some((3, 6)), Some((7, 11))];
        let logits = vec![onehot(0), onehot(3), onehot(4)];
        let spans = decode_entities(text, &offsets, &logits, &tags());
        assert_eq!(&text[spans[0].start..spans[0].end], "22nd");
        // A determiner alone stays.
        let logits = vec![onehot(0), onehot(3), onehot(0)];
        let spans = decode_entities(text, &offsets, &logits, &tags());
        assert_eq!(&text[spans[0].start..spans[0].end], "the");
    }

    #[test]
    fn dates_drop_a_leading_preposition_but_keep_in_before_a_count() {
        let tags = parse_tags(&["O", "B-DATETIME", "I-DATETIME"]);
        for (text, want) in [
            ("by next Thursday", "next Thursday"),
            ("in September", "September"),
            ("on the 22nd", "22nd"),
            ("in two weeks", "in two weeks"),
        ] {
            let ws = words(text);
            let offsets: Vec<_> = ws.iter().map(|w| Some(*w)).collect();
            let logits: Vec<Vec<f32>> = (0..ws.len())
                .map(|i| onehot_of(3, if i == 0 { 1 } else { 2 }))
                .collect();
            let spans = decode_entities(text, &offsets, &logits, &tags);
            assert_eq!(&text[spans[0].start..spans[0].end], want);
        }
    }

    #[test]
    fn punctuation_ends_an_entity_a_hesitant_word_would_continue() {
        let text = "Quarrystone Logistics: fleet";
        let offsets = vec![
            Some((0, 11)),
            Some((12, 22)),
            Some((22, 23)),
            Some((24, 28)),
        ];
        let logits = vec![onehot(3), onehot(4), onehot(0), hesitant()];
        let spans = decode_entities(text, &offsets, &logits, &tags());
        assert_eq!(spans.len(), 1);
        assert_eq!(&text[spans[0].start..spans[0].end], "Quarrystone Logistics");
    }

    #[test]
    fn a_near_miss_action_is_read_as_an_action() {
        let text = "and email";
        let offsets = vec![None, Some((0, 3)), Some((4, 9)), None];
        // "email": O 0.55, B-ACTION 0.45 -> ACTION; "and": O clearly.
        let logits = vec![
            vec![0.0; 5],
            onehot(0),
            vec![0.55f32.ln(), 0.45f32.ln(), -20.0, -20.0, -20.0],
            vec![0.0; 5],
        ];
        let spans = decode_entities(text, &offsets, &logits, &tags());
        assert_eq!(spans.len(), 1);
        assert_eq!(
            (spans[0].label, &text[spans[0].start..spans[0].end]),
            (EntityLabel::Action, "email")
        );
        // Below the floor the word stays outside.
        let logits = vec![
            vec![0.0; 5],
            onehot(0),
            vec![0.8f32.ln(), 0.2f32.ln(), -20.0, -20.0, -20.0],
            vec![0.0; 5],
        ];
        assert!(decode_entities(text, &offsets, &logits, &tags()).is_empty());
    }
}
