//! Character-level text corpora (Tiny Shakespeare, TinyStories).

use super::{Dataset, Targets};
use crate::{Error, Result};
use std::path::Path;

pub struct CharCorpus {
    /// Sorted distinct characters; a token is an index into it.
    pub vocab: Vec<char>,
    pub tokens: Vec<u32>,
}

impl CharCorpus {
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let text = String::from_utf8(bytes).map_err(|e| Error::format(path, format!("not UTF-8 at byte {}", e.utf8_error().valid_up_to())))?;
        if text.is_empty() {
            return Err(Error::format(path, "empty text file"));
        }
        Ok(Self::from_text(&text))
    }

    pub fn from_text(text: &str) -> Self {
        let mut vocab: Vec<char> = text.chars().collect();
        vocab.sort_unstable();
        vocab.dedup();
        let tokens = text.chars().map(|c| vocab.binary_search(&c).unwrap() as u32).collect();
        CharCorpus { vocab, tokens }
    }

    pub fn encode(&self, s: &str) -> Result<Vec<u32>> {
        s.chars()
            .map(|c| self.vocab.binary_search(&c).map(|i| i as u32).map_err(|_| Error::invalid(format!("character {c:?} is not in the vocabulary"))))
            .collect()
    }

    pub fn decode(&self, t: &[u32]) -> String {
        t.iter().map(|&i| self.vocab[i as usize]).collect()
    }

    /// Next-character samples: inputs are the one-hot codes of `context` characters
    /// concatenated, the label is the character that follows.
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
