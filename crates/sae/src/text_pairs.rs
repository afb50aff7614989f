//! Word-paired activations of several language models reading the same text, the input a
//! Universal SAE across language models needs: row r of every model's matrix is the same word.
//!
//! Models tokenize differently (WordPiece with [CLS]/[SEP], byte-level BPE with leading-space
//! tokens, ...), so tokens cannot be paired; whitespace-separated words can. Each model's row for
//! a word is its activation at the word's LAST token (found through the tokenizer's byte offsets):
//! the first position where a causal model has read the whole word. Documents (blank-line
//! separated) are cut at word boundaries into contexts that fit every model's context length, so
//! every model reads exactly the same words in the same contexts. Dropped: words that do not fit
//! (after re-tokenizing a context), words some tokenizer gives no token, and the first word of
//! each context when a model's tokenizer adds no BOS (its first position is an attention sink with
//! a huge norm, unlike anything after it).

use crate::{Error, Result};
use faer::Mat;
use glassbox_lm::tokenizer::Tokenizer;
use glassbox_lm::{Batch, Hooks, LoadedModel};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// One context: the same text for every model, its tokens per model and its kept words.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Context {
    /// Index of the document the text was cut from.
    pub doc: usize,
    pub text: String,
    /// Token ids per model (special tokens included).
    pub tokens: Vec<Vec<u32>>,
    /// Byte spans of the kept words in `text`.
    pub words: Vec<(usize, usize)>,
    /// Per model, per kept word: the position of its last token in `tokens[model]`.
    pub positions: Vec<Vec<usize>>,
}

/// Byte spans of the whitespace-separated words of `text`.
pub fn word_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, ch) in text.char_indices() {
        match (ch.is_whitespace(), start) {
            (true, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, text.len()));
    }
    spans
}

/// Per word, the (first, last) index of the tokens whose byte span overlaps it, or None when no
/// token does. Spans come from [`Tokenizer::encode_with_offsets`]; empty spans (special tokens)
/// and whitespace-only tokens overlap no word.
pub fn word_token_ranges(words: &[(usize, usize)], offsets: &[(usize, usize)]) -> Vec<Option<(usize, usize)>> {
    let mut ranges: Vec<Option<(usize, usize)>> = vec![None; words.len()];
    for (t, &(start, end)) in offsets.iter().enumerate() {
        if end <= start {
            continue;
        }
        // Words are sorted and disjoint: the candidates start before the token ends.
        let mut w = words.partition_point(|&(ws, _)| ws < end);
        while w > 0 && words[w - 1].1 > start {
            w -= 1;
            let r = ranges[w].get_or_insert((t, t));
            r.0 = r.0.min(t);
            r.1 = r.1.max(t);
        }
    }
    ranges
}

/// Cut `documents` into contexts of at most `context` tokens in every tokenizer, at word
/// boundaries, and find each word's last token in each. See the module notes for what is dropped.
pub fn plan_contexts(tokenizers: &[&Tokenizer], documents: &[String], context: usize) -> Result<Vec<Context>> {
    if tokenizers.is_empty() || context < 3 {
        return Err(Error::invalid(format!("word pairing needs at least one tokenizer and a context of at least 3 tokens (got {context})")));
    }
    // Template tokens ([CLS] and [SEP], or BOS) every context carries.
    let specials: Vec<usize> = tokenizers.iter().map(|t| t.encode("").map(|ids| ids.len())).collect::<glassbox_lm::error::Result<_>>().map_err(lm_err)?;
    let sink = tokenizers.iter().any(|t| !t.adds_bos());
    let mut contexts = Vec::new();
    for (d, doc) in documents.iter().enumerate() {
        let words = word_spans(doc);
        if words.is_empty() {
            continue;
        }
        let ranges: Vec<Vec<Option<(usize, usize)>>> = tokenizers
            .iter()
            .map(|t| t.encode_with_offsets(doc).map(|(_, off)| word_token_ranges(&words, &off)))
            .collect::<glassbox_lm::error::Result<_>>()
            .map_err(lm_err)?;
        // Tokens of words first..=last in model i, as counted in the whole document.
        let fits = |first: usize, last: usize| {
            (0..tokenizers.len()).all(|i| {
                let lo = (first..=last).find_map(|w| ranges[i][w].map(|r| r.0));
                let hi = (first..=last).rev().find_map(|w| ranges[i][w].map(|r| r.1));
                match (lo, hi) {
                    (Some(lo), Some(hi)) => hi - lo + 1 + specials[i] <= context,
                    _ => true,
                }
            })
        };
        let mut first = 0;
        while first < words.len() {
            if !fits(first, first) {
                first += 1;
                continue;
            }
            let mut last = first;
            while last + 1 < words.len() && fits(first, last + 1) {
                last += 1;
            }
            // Tokens of the cut-out text can differ at its edges: shrink until it fits.
            loop {
                if let Some(ctx) = context_of(tokenizers, d, doc, &words[first..=last], context, sink)? {
                    if !ctx.words.is_empty() {
                        contexts.push(ctx);
                    }
                    break;
                }
                if last == first {
                    break;
                }
                last -= 1;
            }
            first = last + 1;
        }
    }
    Ok(contexts)
}

/// The context holding `words` of `doc`, or None when some tokenizer makes it longer than
/// `context` tokens.
fn context_of(tokenizers: &[&Tokenizer], doc_index: usize, doc: &str, words: &[(usize, usize)], context: usize, sink: bool) -> Result<Option<Context>> {
    let base = words[0].0;
    let text = doc[base..words[words.len() - 1].1].to_string();
    let local: Vec<(usize, usize)> = words.iter().map(|&(s, e)| (s - base, e - base)).collect();
    let mut tokens = Vec::new();
    let mut ranges = Vec::new();
    for t in tokenizers {
        let (ids, offsets) = t.encode_with_offsets(&text).map_err(lm_err)?;
        if ids.len() > context {
            return Ok(None);
        }
        ranges.push(word_token_ranges(&local, &offsets));
        tokens.push(ids);
    }
    let keep: Vec<usize> = (0..local.len()).filter(|&w| !(sink && w == 0) && ranges.iter().all(|r| r[w].is_some())).collect();
    let positions = ranges.iter().map(|r| keep.iter().map(|&w| r[w].expect("kept words have tokens").1).collect()).collect();
    Ok(Some(Context { doc: doc_index, text, tokens, words: keep.iter().map(|&w| local[w]).collect(), positions }))
}

fn lm_err(e: glassbox_lm::error::Error) -> Error {
    Error::invalid(e.to_string())
}

/// Documents of `documents`, picked in a seeded random order until they hold at least
/// `max_words` words (all of them when None), returned in their original order: a slice of a
/// long corpus that still samples all of it.
pub fn pick_documents(documents: &[String], max_words: Option<usize>, seed: u64) -> Vec<usize> {
    let Some(max) = max_words else { return (0..documents.len()).collect() };
    let mut order: Vec<usize> = (0..documents.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut total = 0;
    let mut picked = Vec::new();
    for d in order {
        if total >= max {
            break;
        }
        total += documents[d].split_whitespace().count();
        picked.push(d);
    }
    picked.sort_unstable();
    picked
}

/// Keep whole contexts until they hold `max_words` kept words.
pub fn truncate_words(contexts: &mut Vec<Context>, max_words: usize) {
    let mut total = 0;
    let keep = contexts.iter().take_while(|c| {
        let before = total;
        total += c.words.len();
        before < max_words
    });
    let n = keep.count();
    contexts.truncate(n);
}

/// Each model's activation at `hook` at the last token of every kept word, words in context
/// order: one matrix (words × width) per model, rows paired. `progress` gets the tokens done.
pub fn extract(models: &[(&LoadedModel, &str)], contexts: &[Context], batch_contexts: usize, mut progress: impl FnMut(usize)) -> Result<Vec<Mat<f32>>> {
    let n_words: usize = contexts.iter().map(|c| c.words.len()).sum();
    let mut out = Vec::new();
    for (i, &(model, hook)) in models.iter().enumerate() {
        let mut hooks = Hooks::capture(&model.model.config, [hook]).map_err(lm_err)?;
        let mut rows: Vec<f32> = Vec::new();
        let mut width = 0;
        for group in contexts.chunks(batch_contexts.max(1)) {
            let seqs: Vec<Vec<u32>> = group.iter().map(|c| c.tokens[i].clone()).collect();
            let batch = Batch::new(&seqs);
            model.model.run_hooks(&batch, &mut hooks).map_err(lm_err)?;
            let cache = hooks.take_cache();
            let t = cache.get(hook).ok_or_else(|| Error::invalid(format!("the model produced no activation at '{hook}'")))?;
            width = t.row_len();
            for (j, c) in group.iter().enumerate() {
                for &p in &c.positions[i] {
                    let row = batch.offsets[j] + p;
                    rows.extend_from_slice(&t.data[row * width..][..width]);
                }
            }
            progress(batch.n_tokens());
        }
        out.push(Mat::from_fn(n_words, width, |r, c| rows[r * width + c]));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_the_whitespace_separated_runs() {
        assert_eq!(word_spans("  a bc\n\td  "), vec![(2, 3), (4, 6), (8, 9)]);
        assert_eq!(word_spans("é x"), vec![(0, 2), (3, 4)]);
        assert!(word_spans(" \n").is_empty());
    }

    #[test]
    fn each_word_gets_the_tokens_that_overlap_it() {
        // "ab cd": tokens [CLS](0,0) "ab"(0,2) " c"(2,4) "d"(4,5) " "(5,6) [SEP](0,0).
        let words = [(0, 2), (3, 5)];
        let offsets = [(0, 0), (0, 2), (2, 4), (4, 5), (5, 6), (0, 0)];
        assert_eq!(word_token_ranges(&words, &offsets), vec![Some((1, 1)), Some((2, 3))]);
        // A word no token covers gets None.
        assert_eq!(word_token_ranges(&[(0, 1), (2, 3)], &[(0, 1)]), vec![Some((0, 0)), None]);
    }

    #[test]
    fn truncation_keeps_whole_contexts_up_to_the_word_budget() {
        let ctx = |n: usize| Context { doc: 0, text: String::new(), tokens: vec![], words: vec![(0, 1); n], positions: vec![] };
        let mut cs = vec![ctx(3), ctx(3), ctx(3)];
        truncate_words(&mut cs, 4);
        assert_eq!(cs.len(), 2);
    }
}
