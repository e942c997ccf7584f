//! Reading a text longer than the model's input in overlapping windows.
//!
//! The encoder sees at most `max_tokens` tokens (128 for `telos-minilm`,
//! two of them `[CLS]` and `[SEP]`). A text that fits is one window: the
//! same input as before windows existed, so short requests read exactly as
//! they always did. A longer text is cut into windows of `w = max_tokens -
//! 2` content tokens that start every `w / 2` tokens (the last one aligned
//! to the text's end), each wrapped in its own `[CLS]`/`[SEP]`. Every
//! token's outputs (NER logits, hidden state, per-token act logits) are
//! taken from the window in which it lies farthest from an edge. With a
//! stride of half a window that window always leaves the token at least
//! `w / 4` tokens (31 for `telos-minilm`) of context on each side, except
//! near the text's own start and end, where no context exists anyway: no
//! token is read at the cut edge of a window, where it would have lost
//! the words that decide its tag.
//!
//! The work is bounded by [`max_windows`]: at most that many windows per
//! prompt, derived from the prompt's character limit.

use super::runtime::{RawOutput, TokenOutputs};

/// Windows of at most `window` content tokens, starting every `window / 2`
/// tokens, covering `n` content tokens: their start offsets. One window
/// (start 0) when the text fits.
pub fn starts(n: usize, window: usize) -> Vec<usize> {
    let window = window.max(2);
    if n <= window {
        return vec![0];
    }
    let stride = window / 2;
    let mut out = Vec::new();
    let mut s = 0;
    while s + window < n {
        out.push(s);
        s += stride;
    }
    out.push(n - window);
    out
}

/// For each of `n` content tokens, the window (index into `starts`) that
/// reads it with the most context: the one in which its distance to the
/// nearer edge is largest (the earlier window on ties).
pub fn owners(n: usize, window: usize, starts: &[usize]) -> Vec<usize> {
    (0..n)
        .map(|p| {
            let mut best = (0usize, 0usize);
            let mut found = false;
            for (k, &s) in starts.iter().enumerate() {
                if p < s || p >= s + window {
                    continue;
                }
                let margin = (p - s).min(s + window - 1 - p);
                if !found || margin > best.1 {
                    best = (k, margin);
                    found = true;
                }
            }
            best.0
        })
        .collect()
}

/// Merges the outputs of the windows at `starts` (each `[CLS]` + its
/// content tokens + `[SEP]`) into the outputs of one text of `n` content
/// tokens, `[CLS]` and `[SEP]` included: every token's rows come from the
/// window that owns it ([`owners`]); `[CLS]` from the first window and
/// `[SEP]` from the last. With per-token outputs, the text's embedding is
/// the L2-normalised mean of the merged states and its act logits the mean
/// of the merged per-token act logits, as the model pools a whole input
/// (the act head is linear); without them, the means of the windows'
/// embeddings and act logits weighted by the tokens each owns. `None` when
/// the windows' outputs do not have the expected shape.
pub fn merge(starts: &[usize], window: usize, n: usize, outs: &[RawOutput]) -> Option<RawOutput> {
    if outs.len() != starts.len() || outs.is_empty() {
        return None;
    }
    let own = owners(n, window, starts);
    // (window, row) of every row of the merged text.
    let last = outs.len() - 1;
    let mut rows: Vec<(usize, usize)> = Vec::with_capacity(n + 2);
    rows.push((0, 0));
    rows.extend(own.iter().enumerate().map(|(p, &k)| (k, p - starts[k] + 1)));
    rows.push((last, outs[last].ner_logits.len().checked_sub(1)?));
    let ner_logits = rows
        .iter()
        .map(|&(k, r)| outs[k].ner_logits.get(r).cloned())
        .collect::<Option<Vec<_>>>()?;
    let tokens = match outs
        .iter()
        .map(|o| o.tokens.as_ref())
        .collect::<Option<Vec<_>>>()
    {
        Some(t) => Some(merge_tokens(&t, &rows)?),
        None => None,
    };
    let (embedding, act_logits) = match &tokens {
        Some(t) => {
            let mut emb = mean_rows(&t.states, t.dim)?;
            let norm = emb.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            emb.iter_mut().for_each(|v| *v /= norm);
            (emb, mean_rows(&t.act_logits, t.acts)?)
        }
        None => {
            let mut weight = vec![0f32; outs.len()];
            for &(k, _) in &rows {
                weight[k] += 1.0;
            }
            let mut emb = weighted(outs.iter().map(|o| &o.embedding), &weight)?;
            let norm = emb.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            emb.iter_mut().for_each(|v| *v /= norm);
            (emb, weighted(outs.iter().map(|o| &o.act_logits), &weight)?)
        }
    };
    Some(RawOutput {
        embedding,
        ner_logits,
        act_logits,
        tokens,
    })
}

fn merge_tokens(t: &[&TokenOutputs], rows: &[(usize, usize)]) -> Option<TokenOutputs> {
    let (dim, acts) = (t[0].dim, t[0].acts);
    if dim == 0 || t.iter().any(|w| w.dim != dim || w.acts != acts) {
        return None;
    }
    let mut states = Vec::with_capacity(rows.len() * dim);
    let mut act_logits = Vec::with_capacity(rows.len() * acts);
    for &(k, r) in rows {
        states.extend_from_slice(t[k].states.get(r * dim..(r + 1) * dim)?);
        act_logits.extend_from_slice(t[k].act_logits.get(r * acts..(r + 1) * acts)?);
    }
    Some(TokenOutputs {
        dim,
        states,
        acts,
        act_logits,
    })
}

/// The mean of rows of `width` values.
fn mean_rows(values: &[f32], width: usize) -> Option<Vec<f32>> {
    if width == 0 || values.is_empty() || !values.len().is_multiple_of(width) {
        return None;
    }
    let n = (values.len() / width) as f32;
    let mut out = vec![0f32; width];
    for row in values.chunks(width) {
        out.iter_mut().zip(row).for_each(|(a, v)| *a += v);
    }
    out.iter_mut().for_each(|a| *a /= n);
    Some(out)
}

/// The weighted mean of equally long vectors.
fn weighted<'a>(vectors: impl Iterator<Item = &'a Vec<f32>>, weight: &[f32]) -> Option<Vec<f32>> {
    let mut out: Option<Vec<f32>> = None;
    let total: f32 = weight.iter().sum();
    for (v, w) in vectors.zip(weight) {
        let acc = out.get_or_insert_with(|| vec![0f32; v.len()]);
        if acc.len() != v.len() {
            return None;
        }
        acc.iter_mut().zip(v).for_each(|(a, x)| *a += x * w / total);
    }
    out
}

/// Most windows one prompt may cost, derived from its character limit: a
/// WordPiece token covers at least one character, so a prompt of
/// `max_prompt_chars` characters has at most that many tokens, which
/// windows advancing by `stride` tokens cover in `max_prompt_chars /
/// stride` windows; each of up to as many segments again may add one
/// partial window. A prompt within the limit therefore never meets the
/// cap unless it is made of tokens of a single character; past it, the
/// rest of the text is read only up to each segment's first window.
pub fn max_windows(max_prompt_chars: usize, max_tokens: usize) -> usize {
    let stride = (max_tokens.saturating_sub(2) / 2).max(1);
    2 * max_prompt_chars.div_ceil(stride).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_that_fits_is_one_window() {
        assert_eq!(starts(0, 126), [0]);
        assert_eq!(starts(126, 126), [0]);
    }

    #[test]
    fn longer_texts_overlap_by_half_a_window_and_end_at_the_end() {
        assert_eq!(starts(127, 126), [0, 1]);
        assert_eq!(starts(300, 126), [0, 63, 126, 174]);
        // Every token lies in some window.
        for n in [127, 200, 1000, 4097] {
            let s = starts(n, 126);
            assert!((0..n).all(|p| s.iter().any(|&w| w <= p && p < w + 126)));
            assert_eq!(*s.last().unwrap() + 126, n);
        }
    }

    #[test]
    fn each_token_is_read_where_it_has_context_on_both_sides() {
        let (n, w) = (1000, 126);
        let s = starts(n, w);
        let own = owners(n, w, &s);
        for (p, &k) in own.iter().enumerate() {
            let start = s[k];
            assert!(start <= p && p < start + w);
            let before = p - start;
            let after = start + w - 1 - p;
            // At least a quarter window of context on each side, unless the
            // text itself ends sooner.
            assert!(before >= (w / 4).min(p), "token {p}: {before} before");
            assert!(after >= (w / 4).min(n - 1 - p), "token {p}: {after} after");
        }
        // Ownership is contiguous and in window order.
        assert!(own.windows(2).all(|x| x[0] <= x[1]));
        assert_eq!(own[0], 0);
        assert_eq!(own[n - 1], s.len() - 1);
    }

    /// A window whose every value encodes (window, row).
    fn fake(k: usize, rows: usize, with_tokens: bool) -> RawOutput {
        let v = |r: usize| (k * 1000 + r) as f32;
        RawOutput {
            embedding: vec![k as f32 + 1.0, 0.0],
            ner_logits: (0..rows).map(|r| vec![v(r)]).collect(),
            act_logits: vec![k as f32, 0.0, 0.0],
            tokens: with_tokens.then(|| TokenOutputs {
                dim: 2,
                states: (0..rows).flat_map(|r| [v(r), 1.0]).collect(),
                acts: 3,
                act_logits: (0..rows).flat_map(|r| [v(r), 0.0, 0.0]).collect(),
            }),
        }
    }

    #[test]
    fn merged_rows_come_from_the_owning_window() {
        let (n, w) = (300, 126);
        let s = starts(n, w);
        let outs: Vec<RawOutput> = (0..s.len()).map(|k| fake(k, w + 2, true)).collect();
        let m = merge(&s, w, n, &outs).unwrap();
        assert_eq!(m.ner_logits.len(), n + 2);
        let own = owners(n, w, &s);
        for (p, &k) in own.iter().enumerate() {
            let want = (k * 1000 + p - s[k] + 1) as f32;
            assert_eq!(m.ner_logits[p + 1], [want], "token {p}");
            let t = m.tokens.as_ref().unwrap();
            assert_eq!(t.states[(p + 1) * 2], want);
            assert_eq!(t.act_logits[(p + 1) * 3], want);
        }
        // [CLS] of the first window, [SEP] of the last.
        assert_eq!(m.ner_logits[0], [0.0]);
        assert_eq!(m.ner_logits[n + 1], [((s.len() - 1) * 1000 + w + 1) as f32]);
        // The embedding is unit length; the act logits the mean of the rows.
        let t = m.tokens.as_ref().unwrap();
        let norm: f32 = m.embedding.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        let mean0 = (0..n + 2).map(|r| t.act_logits[r * 3]).sum::<f32>() / (n + 2) as f32;
        assert!((m.act_logits[0] - mean0).abs() < 1e-2);
    }

    #[test]
    fn without_token_outputs_the_windows_are_weighted_by_what_they_own() {
        let s = starts(200, 126);
        assert_eq!(s, [0, 63, 74]);
        let outs = [
            fake(0, 128, false),
            fake(1, 128, false),
            fake(2, 128, false),
        ];
        let m = merge(&s, 126, 200, &outs).unwrap();
        assert!(m.tokens.is_none());
        // Window k has act logit k; window 0 also owns [CLS], the last [SEP].
        let own = owners(200, 126, &s);
        let mut count = [0usize; 3];
        own.iter().for_each(|&k| count[k] += 1);
        count[0] += 1;
        count[2] += 1;
        let want = (count[1] + 2 * count[2]) as f32 / 202.0;
        assert!((m.act_logits[0] - want).abs() < 1e-5);
        assert!(merge(&s, 126, 200, &outs[..1]).is_none());
    }

    #[test]
    fn the_window_cap_covers_a_prompt_at_the_limit() {
        // 16,000 characters read in windows advancing by 63 tokens.
        let cap = max_windows(16_000, 128);
        assert_eq!(cap, 2 * 254);
        assert!(starts(16_000, 126).len() <= cap);
    }
}
