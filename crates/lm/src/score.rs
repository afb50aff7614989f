//! Next-token loss of a text, per document and overall, optionally under an intervention.

use crate::error::Result;
use crate::hooks::Hooks;
use crate::model::{Batch, Logits, Transformer};
use crate::ops;
use crate::tokenizer::Tokenizer;
use rayon::prelude::*;

/// Split a text into documents at blank lines (a line that is empty after trimming ends a
/// document); each document is its lines joined by `\n`, trimmed. Empty documents are dropped.
pub fn split_documents(text: &str) -> Vec<String> {
    let mut docs = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            push_document(&mut docs, &mut current);
        } else {
            current.push(line);
        }
    }
    push_document(&mut docs, &mut current);
    docs
}

fn push_document(docs: &mut Vec<String>, lines: &mut Vec<&str>) {
    let doc = lines.join("\n");
    let doc = doc.trim();
    if !doc.is_empty() {
        docs.push(doc.to_string());
    }
    lines.clear();
}

/// The loss of one document.
#[derive(Clone, Debug, PartialEq)]
pub struct DocumentLoss {
    /// Total negative log-likelihood (nats) of its predicted tokens.
    pub nll: f64,
    /// Tokens predicted (each window's tokens after its first).
    pub predicted: usize,
}

impl DocumentLoss {
    pub fn mean(&self) -> f64 {
        self.nll / self.predicted.max(1) as f64
    }
}

/// Token windows of a document: at most `context` tokens each, in order, not overlapping.
fn windows(ids: &[u32], context: usize) -> Vec<Vec<u32>> {
    ids.chunks(context.max(1)).filter(|w| w.len() >= 2).map(<[u32]>::to_vec).collect()
}

/// Score documents, packing windows into batches of about `batch_tokens` tokens. Logits are
/// formed `rows_per_unembed` rows at a time so that a large vocabulary never needs
/// `[tokens, vocab]` at once. `progress` is told the documents finished so far.
pub fn score(
    model: &Transformer,
    tokenizer: &Tokenizer,
    documents: &[String],
    batch_tokens: usize,
    hooks: &mut Hooks,
    mut progress: impl FnMut(usize),
) -> Result<Vec<DocumentLoss>> {
    let context = model.config.max_positions;
    let mut results = vec![DocumentLoss { nll: 0.0, predicted: 0 }; documents.len()];
    // (document, window) pairs in order, batched greedily by token count.
    let mut pending: Vec<(usize, Vec<u32>)> = Vec::new();
    let mut pending_tokens = 0;
    let mut done = 0;
    for (d, doc) in documents.iter().enumerate() {
        for w in windows(&tokenizer.encode(doc)?, context) {
            pending_tokens += w.len();
            pending.push((d, w));
        }
        if pending_tokens >= batch_tokens || d + 1 == documents.len() {
            score_batch(model, &pending, hooks, &mut results)?;
            pending.clear();
            pending_tokens = 0;
            done = d + 1;
            progress(done);
        }
    }
    if done < documents.len() {
        progress(documents.len());
    }
    Ok(results)
}

fn score_batch(model: &Transformer, windows: &[(usize, Vec<u32>)], hooks: &mut Hooks, results: &mut [DocumentLoss]) -> Result<()> {
    if windows.is_empty() {
        return Ok(());
    }
    let seqs: Vec<Vec<u32>> = windows.iter().map(|w| w.1.clone()).collect();
    let batch = Batch::new(&seqs);
    let out = model.forward(&batch, hooks, Logits::None)?;
    hooks.take_cache();
    let docs: Vec<usize> = windows.iter().flat_map(|(doc, w)| std::iter::repeat_n(*doc, w.len() - 1)).collect();
    for (doc, l) in docs.into_iter().zip(next_token_nll(model, &batch, &out.hidden)) {
        results[doc].nll += l;
        results[doc].predicted += 1;
    }
    Ok(())
}

/// The negative log-likelihood of the next token at every position of `batch` that has one (all
/// but each sequence's last), in order, from the final hidden states `hidden` `[tokens,
/// d_model]`. Logits are formed 256 rows at a time, so that a large vocabulary never needs
/// `[tokens, vocab]` at once.
pub fn next_token_nll(model: &Transformer, batch: &Batch, hidden: &[f32]) -> Vec<f64> {
    let d = model.config.d_model;
    let rows: Vec<(usize, u32)> = (0..batch.n_sequences())
        .flat_map(|s| {
            let r = batch.range(s);
            (r.start..r.end.saturating_sub(1)).map(|i| (i, batch.tokens[i + 1])).collect::<Vec<_>>()
        })
        .collect();
    const ROWS_PER_UNEMBED: usize = 256;
    rows.par_chunks(ROWS_PER_UNEMBED)
        .flat_map_iter(|chunk| {
            let mut x = Vec::with_capacity(chunk.len() * d);
            for &(i, _) in chunk {
                x.extend_from_slice(&hidden[i * d..(i + 1) * d]);
            }
            let logits = model.unembed(&x);
            let vocab = model.config.vocab_size;
            chunk
                .iter()
                .zip(logits.chunks(vocab))
                .map(|(&(_, target), row)| ops::log_sum_exp(row) - row[target as usize] as f64)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_split_at_blank_lines() {
        let docs = split_documents("a\nb\n\n  \nc\n\n\n d \n");
        assert_eq!(docs, vec!["a\nb".to_string(), "c".to_string(), "d".to_string()]);
    }

    #[test]
    fn windows_cover_the_document_without_overlap() {
        let w = windows(&[1, 2, 3, 4, 5], 2);
        assert_eq!(w, vec![vec![1, 2], vec![3, 4]]); // the lone last token predicts nothing
    }
}
