//! Splits a request into clauses before the model sees it: lines, list
//! items ("1. … 2. …", "- …" at the start of a line: a dash inside a line
//! is part of a name, as in "Client Assets - Pemberton"), sentences,
//! semicolons, sequencing connectives
//! ("…, then …", "… and then …", "after that", "also,") and conditionals
//! ("If so, …", "If the meeting moved, …"). Clauses joined by a bare "and"
//! are split later, where the model finds two requested actions.

use regex::Regex;
use std::sync::LazyLock;

use super::lexicon::ABBREVIATIONS;

static BREAK: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"(?xi)
        (?P<nl>\n+)
      | (?P<semi>;\s*)
      | (?P<list>(?:(?m:^)|\s)(?:\(?\d{1,2}[.)]|•|[a-h]\))\s+ | (?m:^)[\ \t]*[-*]\s+)
      | (?P<sent>[.!?]+\s+)
      | (?P<conn>,?\s+and\s+then\s+ | ,\s*then\s+ | ,?\s+after\s+that,?\s+ | ,\s+afterwards,?\s+
          | ,?\s+once\s+(?:that'?s|that\s+is|it'?s)\s+done,?\s+ | ,?\s+and\s+also\s+ | ,\s+also,?\s+ | ,?\s+then,\s+ )
      | (?P<cond>,?\s+(?:if\s+so|if\s+yes|if\s+not|if\s+it\s+is|if\s+they\s+are),?\s+)
    ",
    )
    .ok()
});

static LEADING: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:(?:and|then|also|plus|after\s+that|afterwards|next|finally|lastly|first(?:ly)?|second(?:ly)?|so)\b[,:]?\s*)+",
    )
    .ok()
});

/// Byte ranges of the clauses of `text`, in order, trimmed, each holding at
/// least one letter or digit.
pub fn segment(text: &str) -> Vec<(usize, usize)> {
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    if let Some(re) = BREAK.as_ref() {
        for caps in re.captures_iter(text) {
            let Some(m) = caps.get(0) else { continue };
            if caps.name("sent").is_some() {
                let before = &text[..m.start()];
                let word = before
                    .rsplit(|c: char| c.is_whitespace())
                    .next()
                    .unwrap_or("")
                    .to_lowercase();
                let digit_before = before
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_ascii_digit());
                let digit_after = text[m.end()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit());
                if ABBREVIATIONS.contains(&word.trim_start_matches('('))
                    || (digit_before
                        && digit_after
                        && m.as_str().starts_with('.')
                        && m.as_str().len() == 1)
                {
                    continue;
                }
                // Keep the sentence's own punctuation inside it.
                let punct = m.as_str().trim_end().len();
                cuts.push((m.start() + punct, m.end()));
            } else if let Some(c) = caps.name("cond") {
                // The conditional marker opens the next clause.
                let lead = c.as_str().len() - c.as_str().trim_start_matches([',', ' ']).len();
                cuts.push((m.start(), m.start() + lead));
            } else {
                cuts.push((m.start(), m.end()));
            }
        }
    }
    let mut out = Vec::new();
    let mut start = 0;
    for (cut_start, cut_end) in cuts
        .into_iter()
        .chain(std::iter::once((text.len(), text.len())))
    {
        if cut_start < start {
            continue;
        }
        push_trimmed(text, start, cut_start, &mut out);
        start = cut_end;
    }
    out
}

fn push_trimmed(text: &str, start: usize, end: usize, out: &mut Vec<(usize, usize)>) {
    let piece = &text[start..end];
    let lead_ws = piece.len() - piece.trim_start().len();
    let mut s = start + lead_ws;
    if let Some(re) = LEADING.as_ref()
        && let Some(m) = re.find(&text[s..end])
    {
        s += m.end();
    }
    let trimmed_end = s + text[s..end].trim_end_matches([' ', '\t', '\r', ',']).len();
    if text[s..trimmed_end].chars().any(char::is_alphanumeric) {
        out.push((s, trimmed_end));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(text: &str) -> Vec<&str> {
        segment(text)
            .into_iter()
            .map(|(s, e)| &text[s..e])
            .collect()
    }

    #[test]
    fn splits_sentences_but_not_abbreviations_or_decimals() {
        assert_eq!(
            pieces("Email Dr. Patel the notes. Then pay $3.50 to Ana!"),
            vec!["Email Dr. Patel the notes.", "pay $3.50 to Ana!"]
        );
    }

    #[test]
    fn splits_numbered_lists_and_lines() {
        assert_eq!(
            pieces("Please do these: 1. book the room 2) invite Sam\n- send the agenda"),
            vec![
                "Please do these:",
                "book the room",
                "invite Sam",
                "send the agenda"
            ]
        );
    }

    #[test]
    fn a_dash_inside_a_line_is_not_a_list_item() {
        assert_eq!(
            pieces("create a folder called Client Assets - Pemberton inside Projects"),
            vec!["create a folder called Client Assets - Pemberton inside Projects"]
        );
        assert_eq!(
            pieces(
                "  * rename Q3 - draft
 * share it"
            ),
            vec!["rename Q3 - draft", "share it"]
        );
    }

    #[test]
    fn splits_sequencing_connectives() {
        assert_eq!(
            pieces("find the invoice, then pay it and then let Tom know"),
            vec!["find the invoice", "pay it", "let Tom know"]
        );
        assert_eq!(
            pieces("check my balance; if so, move $50 to savings"),
            vec!["check my balance", "if so, move $50 to savings"]
        );
    }

    #[test]
    fn keeps_a_bare_and_for_the_model() {
        assert_eq!(
            pieces("Book a flight to Paris and email the receipt to bob@example.com"),
            vec!["Book a flight to Paris and email the receipt to bob@example.com"]
        );
    }

    #[test]
    fn never_yields_empty_clauses() {
        assert!(pieces("  ... ;; \n\n").is_empty());
        assert_eq!(pieces("hi"), vec!["hi"]);
    }
}
