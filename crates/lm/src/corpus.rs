//! Text for training language models: a byte-pair tokenizer trained on documents (as
//! [`crate::score::split_documents`] cuts them), a train/validation split by document, and
//! contexts packed from the documents' tokens.

use crate::tokenizer::Tokenizer;
use crate::error::{Error, Result};
use glassbox_core::train::lm::Contexts;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use tokenizers::models::bpe::{BpeTrainer, BPE};
use tokenizers::normalizers::utils::Lowercase;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper, TokenizerImpl};

/// The token that ends every document.
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// A byte-level BPE tokenizer of `vocab_size` tokens (the end-of-text token first) trained on
/// `docs`, optionally lowercasing everything first. Byte-level, so any text encodes and decodes
/// back exactly (up to the lowercasing).
pub fn train_tokenizer(docs: &[&str], vocab_size: usize, lowercase: bool) -> Result<tokenizers::Tokenizer> {
    let alphabet = ByteLevel::alphabet().len();
    if vocab_size <= alphabet {
        return Err(Error::invalid(format!("a byte-level vocabulary needs more than {alphabet} tokens, got {vocab_size}")));
    }
    let mut inner: TokenizerImpl<BPE, NormalizerWrapper, PreTokenizerWrapper, PostProcessorWrapper, DecoderWrapper> = TokenizerImpl::new(BPE::default());
    if lowercase {
        inner.with_normalizer(Some(NormalizerWrapper::Lowercase(Lowercase))).map_err(|e| Error::invalid(format!("cannot set the lowercase normaliser: {e}")))?;
    }
    let byte_level = ByteLevel::default().add_prefix_space(false);
    inner.with_pre_tokenizer(Some(PreTokenizerWrapper::ByteLevel(byte_level)));
    inner.with_decoder(Some(DecoderWrapper::ByteLevel(byte_level)));
    let mut trainer = BpeTrainer::builder()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(vec![AddedToken::from(END_OF_TEXT, true)])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    inner.train(&mut trainer, docs.iter()).map_err(|e| Error::invalid(format!("training the tokenizer failed: {e}")))?;
    Ok(tokenizers::Tokenizer::from(inner))
}

/// Writes `tokenizer` as `tokenizer.json` in `dir` and reads it back as glassbox's tokenizer.
pub fn save_tokenizer(tokenizer: &tokenizers::Tokenizer, dir: &Path) -> Result<Tokenizer> {
    let path = dir.join("tokenizer.json");
    let json = tokenizer.to_string(true).map_err(|e| Error::invalid(format!("cannot serialise the tokenizer: {e}")))?;
    glassbox_core::io::write_atomic(&path, json.as_bytes())?;
    Tokenizer::from_file(&path)
}

/// Document indices for training and validation: a seeded shuffle, the first
/// round(val_fraction · n) (at least one) for validation.
pub fn split_documents(n: usize, val_fraction: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(0.0..1.0).contains(&val_fraction) || n < 2 {
        return Err(Error::invalid(format!("cannot hold out {val_fraction} of {n} documents for validation")));
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let n_val = ((val_fraction * n as f64).round() as usize).clamp(1, n - 1);
    let val = order[..n_val].to_vec();
    let mut train = order[n_val..].to_vec();
    train.sort_unstable();
    let mut val = val;
    val.sort_unstable();
    Ok((train, val))
}

/// The documents' tokens, each followed by the end-of-text token, concatenated in order and cut
/// into contexts of n_ctx + 1 tokens (the remainder that does not fill one is dropped).
pub fn pack(tokenizer: &Tokenizer, docs: &[&str], n_ctx: usize) -> Result<Contexts> {
    let eos = tokenizer.eos_id().ok_or_else(|| Error::invalid(format!("the tokenizer has no end-of-text token ({END_OF_TEXT})")))?;
    let mut tokens = Vec::new();
    for doc in docs {
        tokens.extend(tokenizer.encode(doc)?);
        tokens.push(eos);
    }
    tokens.truncate(tokens.len() / (n_ctx + 1) * (n_ctx + 1));
    Ok(Contexts { n_ctx, tokens })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "Once upon a time there was a little cat.\nThe cat liked milk.\n\n\n  The dog barked at the cat. The cat ran away.  \n\nThe end of the story: the cat and the dog became friends.\n";

    #[test]
    fn a_trained_tokenizer_round_trips_lowercased_text_and_packs_documents() {
        let docs = crate::score::split_documents(TEXT);
        assert_eq!(docs.len(), 3);
        let docs: Vec<&str> = docs.iter().map(String::as_str).collect();
        let dir = tempfile::tempdir().unwrap();
        let tokenizer = save_tokenizer(&train_tokenizer(&docs, 300, true).unwrap(), dir.path()).unwrap();
        assert_eq!(tokenizer.eos_id(), Some(0));
        let ids = tokenizer.encode(docs[1]).unwrap();
        assert!(ids.len() < docs[1].len(), "merges shorten the text: {} tokens", ids.len());
        assert_eq!(tokenizer.decode(&ids).unwrap(), docs[1].to_lowercase());
        let packed = pack(&tokenizer, &docs, 8).unwrap();
        let total: usize = docs.iter().map(|d| tokenizer.encode(d).unwrap().len() + 1).sum();
        assert_eq!(packed.len(), total / 9);
        assert_eq!(packed.tokens[..ids.len().min(9)], tokenizer.encode(docs[0]).unwrap()[..ids.len().min(9)]);
    }

    #[test]
    fn documents_split_once_by_seed() {
        let (train, val) = split_documents(20, 0.1, 3).unwrap();
        assert_eq!((train.len(), val.len()), (18, 2));
        assert!(val.iter().all(|v| !train.contains(v)));
        assert_eq!(split_documents(20, 0.1, 3).unwrap(), (train, val));
        assert!(split_documents(1, 0.1, 3).is_err());
    }
}
