//! Base text handling, shared by extraction and the drift rules: the
//! project's word splitter ([`words`]), the plain span type ([`Span`]) and
//! exactly-shaped values ([`find_shaped`]: emails, URLs, IBANs, phone
//! numbers, ISO 8601 dates, amounts, cloud regions, versions, record IDs).
//!
//! It depends on nothing but [`crate::intent`] (for entity labels).

mod shapes;
mod words;

pub use shapes::{ID_MARKERS, RECORD_NOUNS, find_shaped, find_shaped_of, iban_valid};
pub use words::words;

use crate::intent::EntityLabel;

/// A labelled span in byte offsets of a text.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// Entity label.
    pub label: EntityLabel,
    /// Start byte.
    pub start: usize,
    /// End byte (exclusive).
    pub end: usize,
    /// Confidence: the mean tag probability over a model span's tokens, 1
    /// for a shape match.
    pub score: f32,
}
