//! Tokenization with the model's `tokenizer.json`: no padding (the batcher
//! pads each batch to its own longest input), no truncation (a text longer
//! than the model's input is read in windows, see [`super::window`]), and
//! byte offsets of every real token.

use std::path::Path;
use tokenizers::Tokenizer;

use super::ExtractionError;

/// A tokenized text ready for the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokenized {
    /// Token ids including the special tokens.
    pub ids: Vec<i64>,
    /// Byte range of each token in the text; `None` for special tokens.
    pub offsets: Vec<Option<(usize, usize)>>,
}

/// The model's tokenizer, configured for unpadded, untruncated input.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    max_tokens: usize,
}

impl TextTokenizer {
    /// Loads `tokenizer.json` for a model that reads `max_tokens` tokens
    /// at a time (special tokens included).
    pub fn from_file(path: &Path, max_tokens: usize) -> Result<Self, ExtractionError> {
        let mut inner = Tokenizer::from_file(path).map_err(|e| ExtractionError::Load {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| ExtractionError::Load {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self { inner, max_tokens })
    }

    /// Tokens the model reads at a time, special tokens included.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Tokenizes one whole text (longer than [`Self::max_tokens`] when the
    /// text is).
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
