//! Tokenization with the model's `tokenizer.json`: no padding (the batcher
//! pads each batch to its own longest input), truncation at the model's
//! maximum, and byte offsets of every real token.

use std::path::Path;
use tokenizers::{Tokenizer, TruncationParams};

use super::ExtractionError;

/// A tokenized text ready for the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokenized {
    /// Token ids including the special tokens.
    pub ids: Vec<i64>,
    /// Byte range of each token in the text; `None` for special tokens.
    pub offsets: Vec<Option<(usize, usize)>>,
}

/// The model's tokenizer, configured for unpadded, truncated input.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
}

impl TextTokenizer {
    /// Loads `tokenizer.json` and truncates inputs to `max_tokens`.
    pub fn from_file(path: &Path, max_tokens: usize) -> Result<Self, ExtractionError> {
        let mut inner = Tokenizer::from_file(path).map_err(|e| ExtractionError::Load {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..TruncationParams::default()
            }))
            .map_err(|e| ExtractionError::Load {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self { inner })
    }

    /// Tokenizes one text.
    pub fn tokenize(&self, text: &str) -> Result<Tokenized, ExtractionError> {
        let enc = self
            .inner
            .encode(text, true)
            .map_err(|e| ExtractionError::Tokenize(e.to_string()))?;
        let ids = enc.get_ids().iter().map(|&i| i64::from(i)).collect();
        let offsets = enc
            .get_offsets()
            .iter()
            .zip(enc.get_special_tokens_mask())
            .map(|(&(s, e), &special)| (special == 0).then_some((s, e)))
            .collect();
        Ok(Tokenized { ids, offsets })
    }
}
