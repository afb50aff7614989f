//! Character-level text corpora (Tiny Shakespeare, TinyStories).

use super::{Dataset, Targets};
use crate::{Error, Result};
use std::path::Path;

/// A text as a sequence of character tokens over its own vocabulary.
pub struct CharCorpus {
    /// Sorted distinct characters; a token is an index into it.
    pub vocab: Vec<char>,
    pub tokens: Vec<u32>,
}

impl CharCorpus {
    /// Read a UTF-8 text file; an empty or non-UTF-8 file is an error naming the file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let text = String::from_utf8(bytes).map_err(|e| Error::format(path, format!("not UTF-8 at byte {}", e.utf8_error().valid_up_to())))?;
        if text.is_empty() {
            return Err(Error::format(path, "empty text file"));
        }
        Ok(Self::from_text(&text))
    }

    /// The vocabulary is the sorted distinct characters, so it does not depend on text order.
    pub fn from_text(text: &str) -> Self {
        let mut vocab: Vec<char> = text.chars().collect();
        vocab.sort_unstable();
        vocab.dedup();
        // Every char of `text` is in `vocab`, so its insertion point is its index.
        let tokens = text.chars().map(|c| vocab.partition_point(|&v| v < c) as u32).collect();
        CharCorpus { vocab, tokens }
    }

    /// Tokens of `s`; a character outside the vocabulary is an error (prompts are user input).
    pub fn encode(&self, s: &str) -> Result<Vec<u32>> {
        s.chars()
            .map(|c| self.vocab.binary_search(&c).map(|i| i as u32).map_err(|_| Error::invalid(format!("character {c:?} is not in the vocabulary"))))
            .collect()
    }

    /// Text of `t`; a token outside the vocabulary (e.g. from a model with a larger output
    /// layer) shows as U+FFFD rather than panicking.
    pub fn decode(&self, t: &[u32]) -> String {
        t.iter().map(|&i| self.vocab.get(i as usize).copied().unwrap_or(char::REPLACEMENT_CHARACTER)).collect()
    }

    /// Next-character samples: inputs are the one-hot codes of `context` characters
    /// concatenated, the label is the character that follows. Windows start every `stride`
    /// characters (0 counts as 1); at most `max_samples` are taken, from the start of the text.
    pub fn next_char_dataset(&self, context: usize, stride: usize, max_samples: usize) -> Dataset {
        let v = self.vocab.len();
        let (mut inputs, mut labels) = (Vec::new(), Vec::new());
        let mut start = 0;
        while start + context < self.tokens.len() && labels.len() < max_samples {
            let mut x = vec![0f32; context * v];
            for (j, &t) in self.tokens[start..start + context].iter().enumerate() {
                x[j * v + t as usize] = 1.0;
            }
            inputs.extend(x);
            labels.push(self.tokens[start + context]);
            start += stride.max(1);
        }
        Dataset { name: "text".into(), inputs, input_dim: context * v, image_shape: None, targets: Targets::Classes { labels, n_classes: v } }
    }
}
