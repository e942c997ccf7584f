//! The project's word splitter: whitespace-separated words with wrapping
//! punctuation and a possessive `'s` trimmed. Model decoding, the span
//! passes and clause verbs all read words through it.

/// Characters trimmed from the ends of a word: punctuation that ends a
/// sentence or wraps a phrase, never part of an entity.
const LEADING: &[char] = &['"', '\'', '(', '[', '{', '“', '‘', '«', '¿', '¡'];
const TRAILING: &[char] = &[
    '.', ',', ';', ':', '!', '?', '"', '\'', ')', ']', '}', '”', '’', '»', '…',
];

/// The words of `text` (whitespace-separated, wrapping punctuation and a
/// possessive `'s` trimmed), as byte ranges.
pub fn words(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    let push = |s: usize, e: usize, out: &mut Vec<(usize, usize)>| {
        let w = &text[s..e];
        let lead = w.len() - w.trim_start_matches(LEADING).len();
        let mut core = &w[lead..];
        loop {
            let before = core.len();
            core = core.trim_end_matches(TRAILING);
            for poss in ["'s", "’s"] {
                if core.len() > poss.len() + 1 && core.ends_with(poss) {
                    core = &core[..core.len() - poss.len()];
                }
            }
            if core.len() == before {
                break;
            }
        }
        if !core.is_empty() {
            out.push((s + lead, s + lead + core.len()));
        }
    };
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                push(s, i, &mut out);
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        push(s, text.len(), &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_drop_wrapping_punctuation_and_possessives() {
        let text = "(Linnea Berg's) \"v2.14.0\", $84,000.";
        let got: Vec<&str> = words(text).into_iter().map(|(s, e)| &text[s..e]).collect();
        assert_eq!(got, vec!["Linnea", "Berg", "v2.14.0", "$84,000"]);
    }
}
