//! Pure decoding of model outputs: softmax, BIO tags to entity spans (with
//! spans widened to whole words), and speech-act probabilities.

use crate::intent::EntityLabel;

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

/// An entity span in byte offsets of the decoded text.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// Entity label.
    pub label: EntityLabel,
    /// Start byte.
    pub start: usize,
    /// End byte (exclusive).
    pub end: usize,
    /// Mean tag probability over the span's tokens.
    pub score: f32,
}

fn is_word_byte(text: &str, at: usize) -> bool {
    text[at..]
        .chars()
        .next()
        .is_some_and(|c| c.is_alphanumeric() || c == '\'' || c == '@')
}

fn prev_is_word_byte(text: &str, at: usize) -> bool {
    text[..at]
        .chars()
        .next_back()
        .is_some_and(|c| c.is_alphanumeric())
}

/// Decodes per-token BIO logits into entity spans. `offsets` are the byte
/// ranges of the tokens (`None` for special tokens); a span that starts or
/// ends inside a word is widened to the whole word.
pub fn decode_entities(
    text: &str,
    offsets: &[Option<(usize, usize)>],
    logits: &[Vec<f32>],
    tags: &[Tag],
) -> Vec<Span> {
    struct Open {
        label: EntityLabel,
        start: usize,
        end: usize,
        scores: Vec<f32>,
    }
    let mut spans = Vec::new();
    let mut open: Option<Open> = None;
    let close = |open: &mut Option<Open>, spans: &mut Vec<Span>| {
        if let Some(o) = open.take() {
            let score = o.scores.iter().sum::<f32>() / o.scores.len() as f32;
            spans.push(Span {
                label: o.label,
                start: o.start,
                end: o.end,
                score,
            });
        }
    };
    for (offset, row) in offsets.iter().zip(logits) {
        let Some((start, end)) = *offset else {
            close(&mut open, &mut spans);
            continue;
        };
        let probs = softmax(row);
        let (best, p) = argmax(&probs);
        let tag = tags.get(best).copied().unwrap_or(Tag::O);
        // A sub-word token continues the word it belongs to.
        let inside_word = open.as_ref().is_some_and(|o| o.end == start)
            && start > 0
            && prev_is_word_byte(text, start)
            && is_word_byte(text, start);
        match (tag, open.as_mut()) {
            (_, Some(o)) if inside_word => {
                o.end = end;
                o.scores.push(p);
            }
            (Tag::I(l), Some(o)) if o.label == l => {
                o.end = end;
                o.scores.push(p);
            }
            (Tag::O, _) => close(&mut open, &mut spans),
            (Tag::B(l) | Tag::I(l), _) => {
                close(&mut open, &mut spans);
                open = Some(Open {
                    label: l,
                    start,
                    end,
                    scores: vec![p],
                });
            }
        }
    }
    close(&mut open, &mut spans);
    for s in &mut spans {
        while s.start > 0 && prev_is_word_byte(text, s.start) && is_word_byte(text, s.start) {
            s.start -= text[..s.start]
                .chars()
                .next_back()
                .map_or(1, char::len_utf8);
        }
        while s.end < text.len() && prev_is_word_byte(text, s.end) && is_word_byte(text, s.end) {
            s.end += text[s.end..].chars().next().map_or(1, char::len_utf8);
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags() -> Vec<Tag> {
        ["O", "B-ACTION", "I-ACTION", "B-LOCATION", "I-LOCATION"]
            .iter()
            .map(|t| Tag::parse(t).unwrap())
            .collect()
    }

    fn onehot(i: usize) -> Vec<f32> {
        let mut v = vec![0.0; 5];
        v[i] = 10.0;
        v
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
    fn widens_spans_to_whole_words() {
        // "Parisian" tokenised as "par" "##isian" with only the first tagged.
        let text = "to Parisian";
        let offsets = vec![Some((0, 2)), Some((3, 6)), Some((6, 11))];
        let logits = vec![onehot(0), onehot(3), onehot(0)];
        let spans = decode_entities(text, &offsets, &logits, &tags());
        assert_eq!(&text[spans[0].start..spans[0].end], "Parisian");
        // A span whose first tag lands mid-word is widened backwards.
        let logits = vec![onehot(0), onehot(0), onehot(3)];
        let spans = decode_entities(text, &offsets, &logits, &tags());
        assert_eq!(&text[spans[0].start..spans[0].end], "Parisian");
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
}
