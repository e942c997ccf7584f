//! A clause pooled inside the text it was written in. A request such as
//! "cancel the deploy workflow and trigger it again" is one model input;
//! its second clause reads best with the first in view ("it" is the
//! workflow). When the graph exposes per-token outputs, a clause's
//! embedding is the mean of the hidden states of its tokens, L2-normalised,
//! and its speech act the mean of the per-token act logits: the same
//! pooling the model was trained with, so a split request costs one forward
//! pass instead of two.

use super::decode::softmax;

/// Per-token outputs of one text, with each token's byte range.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenPool {
    /// Byte range of each token in the text; `None` for special tokens.
    offsets: Vec<Option<(usize, usize)>>,
    /// Hidden state width.
    dim: usize,
    /// `dim` values per token.
    states: Vec<f32>,
    /// Speech-act logits per token, already in `SpeechAct::ALL` order.
    acts: Vec<[f32; 3]>,
}

impl TokenPool {
    /// Builds a pool; `None` when the outputs do not cover every token.
    pub fn new(
        offsets: Vec<Option<(usize, usize)>>,
        dim: usize,
        states: Vec<f32>,
        acts: Vec<[f32; 3]>,
    ) -> Option<Self> {
        (dim > 0 && states.len() == offsets.len() * dim && acts.len() == offsets.len()).then_some(
            Self {
                offsets,
                dim,
                states,
                acts,
            },
        )
    }

    /// The L2-normalised embedding and the speech-act probabilities of the
    /// real tokens that lie inside any of the `[start, end)` ranges (bytes
    /// of the text); `None` when no token does.
    pub fn ranges(&self, ranges: &[(usize, usize)]) -> Option<(Vec<f32>, [f32; 3])> {
        let mut sum = vec![0f32; self.dim];
        let mut act = [0f32; 3];
        let mut n = 0usize;
        for (i, off) in self.offsets.iter().enumerate() {
            let Some((s, e)) = *off else { continue };
            if e <= s || !ranges.iter().any(|&(start, end)| start <= s && e <= end) {
                continue;
            }
            for (acc, v) in sum
                .iter_mut()
                .zip(&self.states[i * self.dim..(i + 1) * self.dim])
            {
                *acc += v;
            }
            for (acc, v) in act.iter_mut().zip(self.acts[i]) {
                *acc += v;
            }
            n += 1;
        }
        if n == 0 {
            return None;
        }
        let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        sum.iter_mut().for_each(|v| *v /= norm);
        let probs = softmax(&act.map(|a| a / n as f32));
        Some((sum, [probs[0], probs[1], probs[2]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> TokenPool {
        // [CLS] "ab" "cd" "ef" [SEP] over "ab cd ef"
        let offsets = vec![None, Some((0, 2)), Some((3, 5)), Some((6, 8)), None];
        let states = vec![
            9.0, 9.0, //
            1.0, 0.0, //
            0.0, 1.0, //
            3.0, 4.0, //
            9.0, 9.0,
        ];
        let acts = vec![
            [9.0, 0.0, 0.0],
            [0.0, 2.0, 0.0],
            [0.0, 0.0, 0.0],
            [4.0, 0.0, 0.0],
            [9.0, 0.0, 0.0],
        ];
        TokenPool::new(offsets, 2, states, acts).unwrap()
    }

    #[test]
    fn a_clause_pools_only_its_own_real_tokens() {
        let (emb, acts) = pool().ranges(&[(0, 5)]).unwrap();
        let s = std::f32::consts::FRAC_1_SQRT_2;
        assert!((emb[0] - s).abs() < 1e-6 && (emb[1] - s).abs() < 1e-6);
        // mean logits [0, 1, 0]
        let want = softmax(&[0.0, 1.0, 0.0]);
        for (a, w) in acts.iter().zip(want) {
            assert!((a - w).abs() < 1e-6);
        }
    }

    #[test]
    fn the_embedding_is_unit_length_and_acts_sum_to_one() {
        let (emb, acts) = pool().ranges(&[(6, 8)]).unwrap();
        assert!((emb[0] - 0.6).abs() < 1e-6 && (emb[1] - 0.8).abs() < 1e-6);
        assert!((acts.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(acts[0] > acts[1]);
    }

    #[test]
    fn several_ranges_pool_their_tokens_together() {
        // "ab" and "ef": states (1, 0) + (3, 4) = (4, 4)
        let (emb, _) = pool().ranges(&[(0, 2), (6, 8)]).unwrap();
        let s = std::f32::consts::FRAC_1_SQRT_2;
        assert!((emb[0] - s).abs() < 1e-6 && (emb[1] - s).abs() < 1e-6);
        assert_eq!(pool().ranges(&[]), None);
    }

    #[test]
    fn a_range_without_a_whole_token_pools_nothing() {
        assert_eq!(pool().ranges(&[(1, 4)]), None);
        assert_eq!(pool().ranges(&[(8, 8)]), None);
    }

    #[test]
    fn outputs_that_do_not_cover_every_token_are_refused() {
        assert!(
            TokenPool::new(vec![None, Some((0, 1))], 2, vec![0.0; 2], vec![[0.0; 3]; 2]).is_none()
        );
        assert!(TokenPool::new(vec![None], 0, vec![], vec![[0.0; 3]]).is_none());
    }
}
