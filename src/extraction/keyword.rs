//! A deterministic encoder with no model: the embedding is a hashed bag of
//! content words (so cosine = keyword overlap), speech acts come from a few
//! surface cues and ACTION spans from a small verb list. It is the
//! keyword-overlap baseline of `telos-eval`, and the test double that lets
//! everything above [`Encoder`](super::Encoder) run without ONNX Runtime.

use super::lexicon::{KEYWORD_VERBS, QUESTION_STARTS, STOPWORDS};
use super::runtime::Calibration;
use super::{BoxFuture, Encoded, Encoder, EncoderMeta, ExtractionError};
use crate::intent::EntityLabel;
use crate::text::Span;

const DIM: usize = 512;

fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split(|c: char| !c.is_alphanumeric())
        .scan(0usize, |pos, w| {
            let start = *pos;
            *pos += w.len() + 1;
            Some((start, w))
        })
        .filter(|(_, w)| !w.is_empty())
}

fn stem(w: &str) -> String {
    let w = w.to_lowercase();
    for suffix in ["ing", "es", "ed", "s"] {
        if w.len() > suffix.len() + 3
            && let Some(s) = w.strip_suffix(suffix)
        {
            return s.to_string();
        }
    }
    w
}

/// Hashed bag of stemmed content words, L2-normalised.
pub fn bag_of_words(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; DIM];
    for (_, w) in words(&crate::catalog::identifier_words(text)) {
        let w = stem(w);
        if STOPWORDS.contains(&w.as_str()) {
            continue;
        }
        let h = w.bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
        });
        v[(h % DIM as u64) as usize] += 1.0;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// The keyword-overlap encoder.
pub struct KeywordEncoder {
    meta: EncoderMeta,
}

impl KeywordEncoder {
    /// A keyword encoder whose probabilities are `sigmoid(scale·cos + bias)`.
    pub fn new(calibration: Calibration) -> Self {
        Self {
            meta: EncoderMeta {
                name: "keyword-overlap".into(),
                sha256: "keyword".into(),
                calibration,
            },
        }
    }

    fn encode_one(text: &str) -> Encoded {
        let lower = text.trim().to_lowercase();
        let first = words(&lower).next().map(|(_, w)| w).unwrap_or("");
        let acts = if lower.contains("what the")
            && (lower.contains("asks") || lower.contains("says"))
            || lower.starts_with("follow")
        {
            [0.05, 0.05, 0.9]
        } else if lower.ends_with('?') || QUESTION_STARTS.contains(&first) {
            [0.9, 0.05, 0.05]
        } else {
            [0.05, 0.9, 0.05]
        };
        let spans = words(text)
            .filter(|(_, w)| KEYWORD_VERBS.contains(&w.to_lowercase().as_str()))
            .map(|(start, w)| Span {
                label: EntityLabel::Action,
                start,
                end: start + w.len(),
                score: 0.5,
            })
            .collect();
        Encoded {
            embedding: bag_of_words(text),
            spans,
            acts,
            tokens: None,
        }
    }
}

impl Encoder for KeywordEncoder {
    fn encode<'a>(
        &'a self,
        texts: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Encoded>, ExtractionError>> {
        Box::pin(async move { Ok(texts.iter().map(|t| Self::encode_one(t)).collect()) })
    }

    fn meta(&self) -> &EncoderMeta {
        &self.meta
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extraction::matching::cosine;

    #[test]
    fn overlap_drives_similarity() {
        let a = bag_of_words("send an email to Bob");
        let b = bag_of_words("send_email: Sends an email message.");
        let c = bag_of_words("delete_file: Deletes a file.");
        assert!(cosine(&a, &b) > 0.5);
        assert!(cosine(&a, &c).abs() < 1e-6);
    }

    #[test]
    fn cues_pick_speech_acts() {
        assert_eq!(
            KeywordEncoder::encode_one("what is my balance?").acts[0],
            0.9
        );
        assert_eq!(KeywordEncoder::encode_one("pay the bill").acts[1], 0.9);
        assert_eq!(
            KeywordEncoder::encode_one("do what the email from Ana asks").acts[2],
            0.9
        );
    }
}
