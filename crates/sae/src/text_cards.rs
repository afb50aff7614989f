//! Text concept cards: for a latent of a USAE over language models, the words that drive it most
//! in each model, each with the text around it, side by side. The report renders the
//! `text_cards` entry of run.json as tables (escaped, the word highlighted).

use crate::analysis::Universality;
use crate::concepts::{pre_activation, top_rows};
use crate::text_pairs::Context;
use crate::usae::Usae;
use faer::Mat;
use serde::Serialize;

/// Bytes of context shown on each side of a word (cut at a character boundary).
pub const CONTEXT_BYTES: usize = 60;

/// What the text cards show, for the run's notes.
pub const TEXT_CARD_NOTE: &str = "Text concept cards: for the most universal latents (most held-out words on which the latent fires in every model), the held-out words with the largest pre-activation of the latent in each model (before ReLU and TopK), with the text around them; the word is highlighted, '⏎' marks a line break.";

#[derive(Clone, Debug, Serialize)]
pub struct Example {
    pub left: String,
    pub word: String,
    pub right: String,
    pub pre_activation: f32,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelExamples {
    pub model: String,
    pub examples: Vec<Example>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TextCard {
    pub rank: usize,
    pub latent: usize,
    /// Held-out words on which the latent fires in every model.
    pub cofire: usize,
    pub firing_entropy: f64,
    pub models: Vec<ModelExamples>,
}

/// (context, word) of every paired row, in row order.
pub fn row_words(contexts: &[Context]) -> Vec<(usize, usize)> {
    contexts.iter().enumerate().flat_map(|(c, ctx)| (0..ctx.words.len()).map(move |w| (c, w))).collect()
}

/// The word of row `r` with up to [`CONTEXT_BYTES`] of text on each side.
pub fn example(contexts: &[Context], rows: &[(usize, usize)], r: usize, pre: f32) -> Example {
    let (c, w) = rows[r];
    let text = &contexts[c].text;
    let (s, e) = contexts[c].words[w];
    let mut lo = s.saturating_sub(CONTEXT_BYTES);
    while !text.is_char_boundary(lo) {
        lo += 1;
    }
    let mut hi = (e + CONTEXT_BYTES).min(text.len());
    while !text.is_char_boundary(hi) {
        hi -= 1;
    }
    let clean = |t: &str| t.replace("\r\n", "⏎").replace('\n', "⏎");
    let ellipsis = |cut: bool| if cut { "…" } else { "" };
    Example {
        left: format!("{}{}", ellipsis(lo > 0), clean(&text[lo..s])),
        word: clean(&text[s..e]),
        right: format!("{}{}", clean(&text[e..hi]), ellipsis(hi < text.len())),
        pre_activation: pre,
    }
}

/// Cards for `latents`: per model, the `top` rows of `data[model]` (standardised, paired with
/// `contexts`) with the largest pre-activation.
pub fn text_cards(usae: &Usae, u: &Universality, data: &[Mat<f32>], contexts: &[Context], latents: &[usize], top: usize) -> Vec<TextCard> {
    let rows = row_words(contexts);
    latents
        .iter()
        .enumerate()
        .map(|(rank, &l)| {
            let models = (0..usae.models.len())
                .map(|i| {
                    let pre = pre_activation(usae, i, &data[i], l);
                    let examples = top_rows(&pre, top).into_iter().map(|r| example(contexts, &rows, r, pre[r])).collect();
                    ModelExamples { model: usae.models[i].name.clone(), examples }
                })
                .collect();
            TextCard { rank: rank + 1, latent: l, cofire: u.cofire[l], firing_entropy: u.firing_entropy[l], models }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_example_shows_the_word_between_its_neighbours() {
        let text = format!("{}é start\nthe word end", "x".repeat(80));
        let s = text.find("word").unwrap();
        let ctx = Context { doc: 0, text: text.clone(), tokens: vec![], words: vec![(s, s + 4)], positions: vec![] };
        let ex = example(&[ctx], &[(0, 0)], 0, 1.5);
        assert_eq!(ex.word, "word");
        assert_eq!(ex.right, " end");
        assert!(ex.left.starts_with('…') && ex.left.ends_with("é start⏎the "), "{}", ex.left);
        // 60 bytes before the word, moved forward off the middle of 'é' if needed.
        assert!(ex.left.len() <= CONTEXT_BYTES + '…'.len_utf8() + 2);
    }
}
