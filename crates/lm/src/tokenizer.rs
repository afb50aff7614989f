//! Tokenization for the language models glassbox loads, through the Hugging Face `tokenizers` crate.
//!
//! Token ids must equal what Python's `transformers` gives for the same model with its default
//! special tokens (`tokenizer(text)["input_ids"]`): BERT wraps text in `[CLS] … [SEP]`, GPT-2 adds
//! nothing, a GGUF model adds BOS when its metadata says so. A model fed other ids than it was
//! trained on still runs but answers worse, silently — so this module mirrors the reference builds
//! exactly rather than approximating them.
//!
//! Two sources: a `tokenizer.json` (Hugging Face folders) and the tokenizer metadata of a GGUF file,
//! which the caller reads into a [`GgufTokenizerMeta`] (this module does no GGUF parsing).

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use serde_json::{json, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Merges, Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior};

use crate::error::{Error, Result};

/// llama.cpp's token types (`tokenizer.ggml.token_type`) that matter here.
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// Names tried for BOS / EOS when neither a config nor the post-processor says which they are.
const BOS_NAMES: &[&str] = &["<|endoftext|>", "<s>", "[CLS]"];
const EOS_NAMES: &[&str] = &["<|endoftext|>", "</s>", "[SEP]"];

/// A model's tokenizer with its default special-token handling.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    bos: Option<u32>,
    eos: Option<u32>,
    /// Ids of every special token (BOS/EOS/CLS/SEP/PAD/control tokens), sorted.
    special: Vec<u32>,
    /// Whether `encode` prepends BOS.
    adds_bos: bool,
}

/// The tokenizer part of a GGUF file's metadata, as llama.cpp names it (`tokenizer.ggml.*`).
#[derive(Debug, Clone, Default)]
pub struct GgufTokenizerMeta {
    /// `tokenizer.ggml.model`, e.g. "gpt2" (byte-level BPE) or "llama" (SentencePiece).
    pub model: String,
    /// `tokenizer.ggml.pre`: which pre-tokenizer split the merges were learned with.
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`: the vocabulary, index = id.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.merges`: "a b" strings, best first.
    pub merges: Vec<String>,
    /// `tokenizer.ggml.token_type`: one per token (1 normal, 3 control, 4 user-defined, …) or empty.
    pub token_types: Vec<i32>,
    /// `tokenizer.ggml.bos_token_id`.
    pub bos: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos: Option<u32>,
    /// `tokenizer.ggml.unknown_token_id`.
    pub unk: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`.
    pub add_bos: Option<bool>,
    /// `tokenizer.ggml.add_eos_token`.
    pub add_eos: Option<bool>,
}

/// How a byte-level GGUF vocabulary splits text before BPE, by `tokenizer.ggml.pre`.
enum ByteLevelSplit {
    /// GPT-2's own regex inside `ByteLevel`.
    Gpt2,
    /// Every digit on its own, then GPT-2's regex (SmolLM / StarCoder style).
    DigitsThenGpt2,
    /// A model-specific regex, then `ByteLevel` without its own regex.
    Regex(&'static str),
}

/// Llama-3 style split (transformers `_LLAMA3_SPLIT`, llama.cpp `LLAMA3`).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2 split (transformers `qwen2.PRETOKENIZE_REGEX`).
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen3.5 split (transformers `qwen3_5.PRETOKENIZE_REGEX`).
const QWEN35_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Mistral Tekken split (transformers `_TEKKEN_SPLIT`).
const TEKKEN_SPLIT: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// GPT-4o split (transformers `_GPT4O_SPLIT`).
const GPT4O_SPLIT: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The `tokenizer.ggml.pre` values understood for byte-level vocabularies, for error messages.
const SUPPORTED_PRE: &str = "default, gpt-2, gpt2, smollm, llama3, llama-v3, llama-bpe, falcon3, falcon-h1, \
     pixtral, midm-2.0, lfm2, jina-v5-nano, dbrx, smaug-bpe, tekken, qwen2, deepseek-r1-qwen, kormo, \
     f2llmv2, megrez, qwen35, gpt-4o, llama4, kanana2, talkie, minimax-m2";

impl Tokenizer {
    /// Loads a `tokenizer.json`, with padding and truncation switched off so ids are never padded
    /// to a fixed length (MiniLM's file pads to 128) nor silently cut (the context limit is
    /// checked by the model, with a clear error). BOS/EOS come from `tokenizer_config.json` beside
    /// the file when present, else from what the post-processor adds, else from common names.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        // The tokenizers crate panics on some malformed files instead of returning an error:
        // on any JSON error inside the decoder's value, on a BPE merge whose result is missing
        // from the vocabulary and longer than every token in it, and (at the first encoding) on
        // a template naming a special token it does not define. The JSON is checked here first,
        // and the rest runs under `guarded`, once at load for the template.
        let json = serde_json::from_slice::<Value>(&bytes)
            .map_err(|e| Error::format(path, format!("not a valid tokenizer.json: invalid JSON: {e}")))?;
        let invalid = |msg: String| Error::format(path, format!("not a valid tokenizer.json: {msg}"));
        let growth = text_growth(&json["normalizer"]) * text_growth(&json["pre_tokenizer"]);
        if growth > MAX_TEXT_GROWTH {
            return Err(invalid(format!(
                "its normalizer and pre-tokenizer could grow a text up to {growth:.0}-fold before it is split into tokens (at most {MAX_TEXT_GROWTH} is accepted)"
            )));
        }
        let mut inner = guarded(|| tokenizers::Tokenizer::from_bytes(&bytes))
            .map_err(&invalid)?
            .map_err(|e| invalid(e.to_string()))?;
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| Error::format(path, format!("cannot switch off truncation: {e}")))?;
        // An encoding error here is reported when text is encoded; only a panic matters now.
        let _ = guarded(|| inner.encode_fast("", true)).map_err(&invalid)?;
        let (config_bos, config_eos) = match path.parent() {
            Some(dir) => config_bos_eos(&dir.join("tokenizer_config.json"), &inner)?,
            None => (None, None),
        };
        let (prefix, suffix) = template_specials(&inner);
        let bos = config_bos
            .or_else(|| prefix.first().copied())
            .or_else(|| first_known(&inner, BOS_NAMES));
        let eos = config_eos
            .or_else(|| suffix.last().copied())
            .or_else(|| first_known(&inner, EOS_NAMES));
        Ok(Self::assemble(inner, bos, eos, &[]))
    }

    /// Builds the tokenizer a GGUF file describes, as transformers' GGUF converter does
    /// (`integrations/gguf/gguf_tokenizer_mapping.py`): vocabulary, merges, control and
    /// user-defined tokens, BOS/EOS template. Only byte-level BPE ("gpt2") is supported. One
    /// deliberate difference: for "smollm" digits are split one by one before GPT-2's split, as
    /// the model's own tokenizer.json and llama.cpp do; transformers 5.23 falls back to plain
    /// GPT-2 splitting there, which differs only on runs of whitespace before a digit.
    pub fn from_gguf(meta: &GgufTokenizerMeta) -> Result<Self> {
        check_gguf_meta(meta)?;
        match meta.model.as_str() {
            "gpt2" => Self::from_gguf_byte_level(meta),
            other => Err(Error::invalid(format!(
                "unsupported GGUF tokenizer: tokenizer.ggml.model = {other:?} (supported: \"gpt2\")"
            ))),
        }
    }

    /// Byte-level BPE from a GGUF vocabulary and merges.
    fn from_gguf_byte_level(meta: &GgufTokenizerMeta) -> Result<Self> {
        let split = byte_level_split(meta.pre.as_deref())?;
        let alphabet: HashSet<char> = byte_alphabet().into_iter().collect();
        let vocab = byte_level_vocab(&meta.tokens, &alphabet);
        let merges = parse_merges(&meta.merges)?;
        let has_token: HashSet<String> = vocab.keys().cloned().collect();
        // The BPE builder panics on a merge whose result is missing and longer than any token.
        if let Some((i, (a, b))) = merges
            .iter()
            .enumerate()
            .find(|(_, (a, b))| !has_token.contains(a) || !has_token.contains(b) || !has_token.contains(&format!("{a}{b}")))
        {
            return Err(Error::invalid(format!(
                "GGUF tokenizer: merge {i} ({a:?} + {b:?} = {:?}) names a token that is not in tokenizer.ggml.tokens",
                format!("{a}{b}")
            )));
        }
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| Error::invalid(format!("GGUF tokenizer: cannot build BPE: {e}")))?;
        let mut inner = tokenizers::Tokenizer::new(bpe);
        inner.with_pre_tokenizer(Some(byte_level_pre_tokenizer(split)?));
        inner.with_decoder(Some(ByteLevelDecoder::default()));
        add_gguf_added_tokens(&mut inner, meta, &alphabet, &has_token)?;
        let add_bos = meta.add_bos.unwrap_or(false);
        let add_eos = meta.add_eos.unwrap_or(false);
        if let Some(processor) = bos_eos_processor(meta, add_bos, add_eos)? {
            inner.with_post_processor(Some(processor));
        }
        let extra: Vec<u32> = meta.unk.into_iter().collect();
        Ok(Self::assemble(inner, meta.bos, meta.eos, &extra))
    }

    /// Collects special ids and whether BOS is prepended, once the backend is complete.
    fn assemble(
        inner: tokenizers::Tokenizer,
        bos: Option<u32>,
        eos: Option<u32>,
        extra: &[u32],
    ) -> Self {
        let (prefix, suffix) = template_specials(&inner);
        let adds_bos = bos.is_some() && prefix.first().copied() == bos;
        let mut special: BTreeSet<u32> = inner
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, token)| token.special)
            .map(|(id, _)| id)
            .collect();
        special.extend(
            bos.iter()
                .chain(eos.iter())
                .chain(extra)
                .chain(&prefix)
                .chain(&suffix),
        );
        Self {
            inner,
            bos,
            eos,
            special: special.into_iter().collect(),
            adds_bos,
        }
    }

    /// Token ids of `text` with the model's default special tokens (what `tokenizer(text)` gives).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.encode_with(text, true)
    }

    /// Token ids of `text` alone, without BOS/CLS/SEP/EOS.
    pub fn encode_plain(&self, text: &str) -> Result<Vec<u32>> {
        self.encode_with(text, false)
    }

    /// [`Self::encode`] with each token's byte span `[start, end)` in `text`; special tokens the
    /// template adds (BOS/CLS/SEP) have the empty span (0, 0). A byte-level token's span may
    /// include its leading space.
    pub fn encode_with_offsets(&self, text: &str) -> Result<(Vec<u32>, Vec<(usize, usize)>)> {
        let encoding = tokenized(guarded(|| self.inner.encode(text, true)))?;
        Ok((encoding.get_ids().to_vec(), encoding.get_offsets().to_vec()))
    }

    fn encode_with(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let encoding = tokenized(guarded(|| self.inner.encode_fast(text, add_special_tokens)))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Text of `ids`, special tokens included so nothing the model produced is hidden.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let size = self.vocab_size();
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= size) {
            return Err(Error::invalid(format!(
                "cannot decode token id {bad}: vocabulary has {size} tokens"
            )));
        }
        guarded(|| self.inner.decode(ids, false))
            .map_err(|e| Error::invalid(format!("cannot decode token ids: {e}")))?
            .map_err(|e| Error::invalid(format!("cannot decode token ids: {e}")))
    }

    /// The vocabulary string of `id` (e.g. "Ġthe" in a byte-level vocabulary), if it exists.
    pub fn token_str(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Number of token ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The beginning-of-sequence token ([CLS] for BERT-style models), if known.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    /// The end-of-sequence token ([SEP] for BERT-style models), if known.
    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    /// Ids of special tokens (BOS/CLS/SEP/EOS/PAD/control tokens), sorted, for excluding them
    /// from per-token statistics.
    pub fn special_ids(&self) -> &[u32] {
        &self.special
    }

    /// Whether `encode` prepends BOS, so callers know position 0 is not text.
    pub fn adds_bos(&self) -> bool {
        self.adds_bos
    }
}

/// Short form: the backend's own dump is the whole vocabulary.
impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("adds_bos", &self.adds_bos)
            .finish_non_exhaustive()
    }
}

/// Reads a text file, naming the file and the byte offset of the first invalid byte if it is
/// not UTF-8, so a user can find the bad spot in a large prompt file.
pub fn read_utf8_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            let byte = e.as_bytes().get(offset).copied().unwrap_or(0);
            let what = if e.utf8_error().error_len().is_some() {
                "invalid byte"
            } else {
                "truncated sequence starting with byte"
            };
            Err(Error::format(
                path,
                format!("not UTF-8 text: {what} 0x{byte:02x} at byte offset {offset}"),
            ))
        }
    }
}

/// BOS/EOS named by `tokenizer_config.json`, if that file exists and names tokens in the vocabulary.
fn config_bos_eos(
    config: &Path,
    inner: &tokenizers::Tokenizer,
) -> Result<(Option<u32>, Option<u32>)> {
    let bytes = match std::fs::read(config) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((None, None)),
        Err(e) => return Err(Error::io(config, e)),
    };
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::format(config, format!("invalid JSON: {e}")))?;
    let id_of = |key: &str| special_token_content(&value[key]).and_then(|t| inner.token_to_id(t));
    Ok((id_of("bos_token"), id_of("eos_token")))
}

/// A special token in a config: a plain string or an object `{"content": ...}`.
fn special_token_content(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s),
        Value::Object(map) => map.get("content").and_then(Value::as_str),
        _ => None,
    }
}

/// The special ids the post-processor puts before and after a one-word text.
fn template_specials(inner: &tokenizers::Tokenizer) -> (Vec<u32>, Vec<u32>) {
    let Ok(Ok(encoding)) = guarded(|| inner.encode_fast("a", true)) else {
        return (Vec::new(), Vec::new());
    };
    let pairs: Vec<(u32, u32)> = encoding
        .get_ids()
        .iter()
        .copied()
        .zip(encoding.get_special_tokens_mask().iter().copied())
        .collect();
    let prefix: Vec<u32> = pairs
        .iter()
        .take_while(|(_, s)| *s == 1)
        .map(|(id, _)| *id)
        .collect();
    let rest = &pairs[prefix.len()..];
    let mut suffix: Vec<u32> = rest
        .iter()
        .rev()
        .take_while(|(_, s)| *s == 1)
        .map(|(id, _)| *id)
        .collect();
    suffix.reverse();
    (prefix, suffix)
}

/// The most a tokenizer.json's normalizer and pre-tokenizer together may grow a text by (bytes
/// out per byte in, as bounded by [`text_growth`]); real tokenizers stay below a few hundred.
const MAX_TEXT_GROWTH: f64 = 4096.0;

/// An upper bound on how many bytes a normalizer or pre-tokenizer (as serialised in
/// tokenizer.json) makes of one byte of text: stages in sequence multiply, so a file can ask
/// for exponential growth (thirty byte-level stages, each doubling the text), which the
/// tokenizers crate would try to allocate.
fn text_growth(stage: &Value) -> f64 {
    let bytes = |key: &str| stage[key].as_str().map_or(1.0, |s| s.len().max(1) as f64);
    match stage["type"].as_str() {
        Some("Sequence") => ["normalizers", "pretokenizers"]
            .iter()
            .filter_map(|key| stage[*key].as_array())
            .flatten()
            .map(text_growth)
            .product(),
        // A byte becomes a character of up to two bytes.
        Some("ByteLevel") => 2.0,
        // Spaces become the replacement, and one may be put in front.
        Some("Metaspace") => 1.0 + bytes("replacement"),
        Some("Replace") => bytes("content"),
        Some("Prepend") => 1.0 + bytes("prepend"),
        // Compatibility decompositions: up to 18 characters from one of three bytes.
        Some("NFKC" | "NFKD" | "Precompiled") => 11.0,
        Some("NFC" | "NFD") => 3.0,
        // Spaces around CJK characters; case changes that lengthen a character.
        Some("BertNormalizer" | "Lowercase") => 2.0,
        _ => 1.0,
    }
}

/// An encoding, or why there is none: the tokenizers crate's error, or its panic (some
/// combinations of added tokens a file may define make it panic on some texts).
fn tokenized(result: std::result::Result<tokenizers::Result<tokenizers::Encoding>, String>) -> Result<tokenizers::Encoding> {
    result
        .map_err(|e| Error::invalid(format!("cannot tokenize text: {e}")))?
        .map_err(|e| Error::invalid(format!("cannot tokenize text: {e}")))
}

/// Runs a call into the tokenizers crate on a configuration read from a file, with a panic
/// turned into an error message.
fn guarded<T>(call: impl FnOnce() -> T) -> std::result::Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).map_err(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        format!("the tokenizers library fails on it ({msg})")
    })
}

/// The id of the first of `names` that is in the vocabulary.
fn first_known(inner: &tokenizers::Tokenizer, names: &[&str]) -> Option<u32> {
    names.iter().find_map(|name| inner.token_to_id(name))
}

/// Rejects metadata whose arrays or ids disagree, before they turn into odd tokenization.
fn check_gguf_meta(meta: &GgufTokenizerMeta) -> Result<()> {
    let n = meta.tokens.len();
    if n == 0 {
        return Err(Error::invalid(
            "GGUF tokenizer: tokenizer.ggml.tokens is empty",
        ));
    }
    if !meta.token_types.is_empty() && meta.token_types.len() != n {
        return Err(Error::invalid(format!(
            "GGUF tokenizer: {} token types for {n} tokens",
            meta.token_types.len()
        )));
    }
    for (name, id) in [("bos", meta.bos), ("eos", meta.eos), ("unknown", meta.unk)] {
        if let Some(id) = id.filter(|&id| id as usize >= n) {
            return Err(Error::invalid(format!(
                "GGUF tokenizer: {name} token id {id} is outside the vocabulary of {n} tokens"
            )));
        }
    }
    Ok(())
}

/// The split for `tokenizer.ggml.pre`, or an error naming a value we cannot honour: a wrong split
/// would give ids the model never saw in training.
fn byte_level_split(pre: Option<&str>) -> Result<ByteLevelSplit> {
    let split = match pre.unwrap_or("default") {
        "default" | "gpt-2" | "gpt2" => ByteLevelSplit::Gpt2,
        "smollm" => ByteLevelSplit::DigitsThenGpt2,
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" | "dbrx" | "smaug-bpe" => ByteLevelSplit::Regex(LLAMA3_SPLIT),
        "tekken" => ByteLevelSplit::Regex(TEKKEN_SPLIT),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "megrez" => {
            ByteLevelSplit::Regex(QWEN2_SPLIT)
        }
        "qwen35" => ByteLevelSplit::Regex(QWEN35_SPLIT),
        "gpt-4o" | "llama4" | "kanana2" | "talkie" | "minimax-m2" => {
            ByteLevelSplit::Regex(GPT4O_SPLIT)
        }
        other => {
            return Err(Error::invalid(format!(
            "unsupported GGUF tokenizer: tokenizer.ggml.pre = {other:?} for tokenizer.ggml.model \
                 \"gpt2\" (supported: {SUPPORTED_PRE})"
        )))
        }
    };
    Ok(split)
}

/// The pre-tokenizer for a byte-level vocabulary; `ByteLevel` never adds a prefix space here.
fn byte_level_pre_tokenizer(split: ByteLevelSplit) -> Result<PreTokenizerWrapper> {
    let wrapper = match split {
        ByteLevelSplit::Gpt2 => ByteLevel::new(false, true, true).into(),
        ByteLevelSplit::DigitsThenGpt2 => Sequence::new(vec![
            Digits::new(true).into(),
            ByteLevel::new(false, true, true).into(),
        ])
        .into(),
        ByteLevelSplit::Regex(regex) => {
            let split = Split::new(
                SplitPattern::Regex(regex.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| Error::invalid(format!("GGUF tokenizer: bad split regex: {e}")))?;
            Sequence::new(vec![
                split.into(),
                ByteLevel::new(false, true, false).into(),
            ])
            .into()
        }
    };
    Ok(wrapper)
}

/// GPT-2's printable spelling of the 256 byte values, indexed by byte.
fn byte_alphabet() -> Vec<char> {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut shifted = 0u32;
    (0u32..256)
        .map(|b| {
            if printable(b) {
                char::from_u32(b)
            } else {
                shifted += 1;
                char::from_u32(255 + shifted)
            }
        })
        .map(|c| c.unwrap_or('\u{fffd}'))
        .collect()
}

/// Token -> id, respelling tokens that use characters outside the byte alphabet (raw text that
/// some converters store) into it, as transformers' `byte_level_tokenizer` does. A repeated
/// token keeps its last id, as a Python dict would.
fn byte_level_vocab(tokens: &[String], alphabet: &HashSet<char>) -> Vocab {
    let spelling = byte_alphabet();
    let mut vocab = Vocab::default();
    for (id, token) in (0u32..).zip(tokens) {
        let key = if token.chars().all(|c| alphabet.contains(&c)) {
            token.clone()
        } else {
            token.bytes().map(|b| spelling[b as usize]).collect()
        };
        vocab.insert(key, id);
    }
    vocab
}

/// "a b" merge strings into pairs.
fn parse_merges(merges: &[String]) -> Result<Merges> {
    merges
        .iter()
        .enumerate()
        .map(|(i, merge)| {
            let mut parts = merge.split(' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(a), Some(b), None) if !a.is_empty() && !b.is_empty() => Ok((a.to_string(), b.to_string())),
                _ => Err(Error::invalid(format!(
                    "GGUF tokenizer: merge {i} is {merge:?}, expected two tokens separated by one space"
                ))),
            }
        })
        .collect()
}

/// Control tokens (type 3) become special tokens and user-defined ones (type 4) plain added
/// tokens, so both are matched whole in text instead of being cut by BPE. A control token
/// spelled outside the byte alphabet is a llama.cpp mislabel and is skipped, as transformers does.
fn add_gguf_added_tokens(
    inner: &mut tokenizers::Tokenizer,
    meta: &GgufTokenizerMeta,
    alphabet: &HashSet<char>,
    has_token: &HashSet<String>,
) -> Result<()> {
    let typed = || meta.tokens.iter().zip(meta.token_types.iter().copied());
    let control: Vec<AddedToken> = typed()
        .filter(|(t, ty)| *ty == TOKEN_TYPE_CONTROL && t.chars().all(|c| alphabet.contains(&c)))
        .map(|(t, _)| AddedToken::from(t.clone(), true).normalized(false))
        .collect();
    let user: Vec<AddedToken> = typed()
        .filter(|(t, ty)| *ty == TOKEN_TYPE_USER_DEFINED && has_token.contains(*t))
        .map(|(t, _)| AddedToken::from(t.clone(), false).normalized(false))
        .collect();
    inner
        .add_special_tokens(control)
        .map_err(|e| Error::invalid(format!("GGUF tokenizer: cannot add control tokens: {e}")))?;
    inner.add_tokens(user).map_err(|e| {
        Error::invalid(format!(
            "GGUF tokenizer: cannot add user-defined tokens: {e}"
        ))
    })?;
    Ok(())
}

/// The post-processor adding BOS and/or EOS as the metadata asks (transformers'
/// `update_post_processor`), or `None` when neither is added.
fn bos_eos_processor(
    meta: &GgufTokenizerMeta,
    add_bos: bool,
    add_eos: bool,
) -> Result<Option<PostProcessorWrapper>> {
    if !add_bos && !add_eos {
        return Ok(None);
    }
    let token = |id: Option<u32>, name: &str| -> Result<(String, u32)> {
        let id = id.ok_or_else(|| {
            Error::invalid(format!(
                "GGUF tokenizer: add_{name}_token is set but there is no {name}_token_id"
            ))
        })?;
        let text = meta.tokens.get(id as usize).cloned().ok_or_else(|| {
            Error::invalid(format!(
                "GGUF tokenizer: {name} token id {id} is outside the vocabulary"
            ))
        })?;
        Ok((text, id))
    };
    let piece =
        |text: &str, type_id: u32| json!({"SpecialToken": {"id": text, "type_id": type_id}});
    let seq = |id: &str, type_id: u32| json!({"Sequence": {"id": id, "type_id": type_id}});
    let mut single = Vec::new();
    let mut pair = Vec::new();
    let mut specials = serde_json::Map::new();
    let bos = if add_bos {
        Some(token(meta.bos, "bos")?)
    } else {
        None
    };
    let eos = if add_eos {
        Some(token(meta.eos, "eos")?)
    } else {
        None
    };
    for (type_id, seq_id, out) in [(0, "A", &mut single), (1, "B", &mut pair)] {
        if let Some((text, _)) = &bos {
            out.push(piece(text, type_id));
        }
        out.push(seq(seq_id, type_id));
        if let Some((text, _)) = &eos {
            out.push(piece(text, type_id));
        }
    }
    let pair: Vec<Value> = single.iter().cloned().chain(pair).collect();
    for (text, id) in bos.iter().chain(eos.iter()) {
        specials.insert(
            text.clone(),
            json!({"id": text, "ids": [id], "tokens": [text]}),
        );
    }
    let value = json!({"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": specials});
    serde_json::from_value(value).map(Some).map_err(|e| {
        Error::invalid(format!(
            "GGUF tokenizer: cannot build BOS/EOS template: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A BERT-like WordLevel tokenizer.json with fixed-length padding, as MiniLM ships.
    fn bert_like_json() -> String {
        let added = |id: u32, content: &str| {
            json!({"id": id, "content": content, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        };
        json!({
            "version": "1.0",
            "truncation": {"direction": "Right", "max_length": 6, "strategy": "LongestFirst", "stride": 0},
            "padding": {"strategy": {"Fixed": 8}, "direction": "Right", "pad_to_multiple_of": null,
                        "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
            "added_tokens": [added(0, "[PAD]"), added(1, "[UNK]"), added(2, "[CLS]"), added(3, "[SEP]")],
            "normalizer": null,
            "pre_tokenizer": {"type": "Whitespace"},
            "post_processor": {
                "type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                           {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {
                    "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                    "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}
                }
            },
            "decoder": null,
            "model": {"type": "WordLevel", "unk_token": "[UNK]",
                      "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "hello": 4, "world": 5}}
        })
        .to_string()
    }

    fn write(dir: &Path, name: &str, contents: &[u8]) -> std::path::PathBuf {
        let path = dir.join(name);
        let mut file = std::fs::File::create(&path).expect("create test file");
        file.write_all(contents).expect("write test file");
        path
    }

    #[test]
    fn bert_like_adds_cls_sep_without_padding_or_truncation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "tokenizer.json", bert_like_json().as_bytes());
        let tok = Tokenizer::from_file(&path).expect("load");
        assert_eq!(tok.encode("hello world").expect("encode"), vec![2, 4, 5, 3]);
        assert_eq!(tok.encode_plain("hello world").expect("encode"), vec![4, 5]);
        let long = "hello world hello world hello world hello world hello world";
        assert_eq!(
            tok.encode(long).expect("encode").len(),
            12,
            "no truncation, no padding"
        );
        assert_eq!((tok.bos_id(), tok.eos_id()), (Some(2), Some(3)));
        assert!(tok.adds_bos());
        assert_eq!(tok.special_ids(), &[0, 1, 2, 3]);
        assert_eq!(tok.token_str(4).as_deref(), Some("hello"));
        assert_eq!(tok.vocab_size(), 6);
    }

    #[test]
    fn tokenizer_config_names_bos_eos() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "tokenizer.json", bert_like_json().as_bytes());
        let config = json!({"bos_token": {"content": "[SEP]"}, "eos_token": "[CLS]"}).to_string();
        write(dir.path(), "tokenizer_config.json", config.as_bytes());
        let tok = Tokenizer::from_file(&path).expect("load");
        assert_eq!((tok.bos_id(), tok.eos_id()), (Some(3), Some(2)));
        assert!(
            !tok.adds_bos(),
            "encode prepends [CLS], not the configured BOS"
        );
    }

    #[test]
    fn missing_and_corrupt_files_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("absent-tokenizer.json");
        let err = Tokenizer::from_file(&missing)
            .expect_err("missing file fails")
            .to_string();
        assert!(err.contains("absent-tokenizer.json"), "{err}");
        let corrupt = write(dir.path(), "broken.json", b"{\"model\": ");
        let err = Tokenizer::from_file(&corrupt)
            .expect_err("corrupt file fails")
            .to_string();
        assert!(
            err.contains("broken.json") && err.contains("not a valid tokenizer.json"),
            "{err}"
        );
        let unknown = write(
            dir.path(),
            "odd.json",
            br#"{"model": {"type": "Nonesuch"}}"#,
        );
        let err = Tokenizer::from_file(&unknown)
            .expect_err("unknown model fails")
            .to_string();
        assert!(err.contains("odd.json"), "{err}");
    }

    #[test]
    fn non_utf8_offset_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "prompts.txt", b"fine line\nbad \xff here");
        let err = read_utf8_text(&path).expect_err("not UTF-8").to_string();
        assert!(
            err.contains("prompts.txt") && err.contains("0xff at byte offset 14"),
            "{err}"
        );
        let ok = write(dir.path(), "ok.txt", "naïve".as_bytes());
        assert_eq!(read_utf8_text(&ok).expect("UTF-8"), "naïve");
    }

    /// A byte-level GGUF vocabulary: the 256 byte symbols, a few merges, and a control token.
    fn gguf_meta(pre: &str) -> GgufTokenizerMeta {
        let mut tokens: Vec<String> = vec!["<|endoftext|>".to_string()];
        tokens.extend(byte_alphabet().into_iter().map(String::from));
        let merges = ["Ġ Ġ", "1 2", "Ġ 1", "h i"];
        tokens.extend(merges.iter().map(|m| m.replace(' ', "")));
        let mut token_types = vec![1; tokens.len()];
        token_types[0] = TOKEN_TYPE_CONTROL;
        GgufTokenizerMeta {
            model: "gpt2".into(),
            pre: Some(pre.into()),
            tokens,
            merges: merges.iter().map(|m| m.to_string()).collect(),
            token_types,
            bos: Some(0),
            eos: Some(0),
            unk: None,
            add_bos: Some(false),
            add_eos: None,
        }
    }

    fn id_of(meta: &GgufTokenizerMeta, token: &str) -> u32 {
        meta.tokens
            .iter()
            .position(|t| t == token)
            .expect("token in test vocab") as u32
    }

    #[test]
    fn gguf_smollm_splits_digits_one_by_one() {
        let meta = gguf_meta("smollm");
        let tok = Tokenizer::from_gguf(&meta).expect("build");
        let ids = |ts: &[&str]| ts.iter().map(|t| id_of(&meta, t)).collect::<Vec<_>>();
        // "12" never merges, and the two spaces before a digit stay together.
        assert_eq!(
            tok.encode("hi  12").expect("encode"),
            ids(&["hi", "ĠĠ", "1", "2"])
        );
        let gpt2 = Tokenizer::from_gguf(&gguf_meta("gpt-2")).expect("build");
        assert_eq!(
            gpt2.encode("hi  12").expect("encode"),
            ids(&["hi", "Ġ", "Ġ", "12"])
        );
        assert_eq!(
            tok.decode(&tok.encode("hi  12").expect("encode"))
                .expect("decode"),
            "hi  12"
        );
    }

    #[test]
    fn gguf_control_tokens_and_bos() {
        let mut meta = gguf_meta("smollm");
        let tok = Tokenizer::from_gguf(&meta).expect("build");
        let hi = id_of(&meta, "hi");
        assert_eq!(tok.encode("<|endoftext|>hi").expect("encode"), vec![0, hi]);
        assert!(!tok.adds_bos());
        assert_eq!(tok.special_ids(), &[0]);
        meta.add_bos = Some(true);
        let tok = Tokenizer::from_gguf(&meta).expect("build");
        assert!(tok.adds_bos());
        assert_eq!(tok.encode("hi").expect("encode"), vec![0, hi]);
        assert_eq!(tok.encode_plain("hi").expect("encode"), vec![hi]);
    }

    #[test]
    fn gguf_unsupported_model_and_pre_are_named() {
        let mut meta = gguf_meta("smollm");
        meta.model = "rwkv".into();
        let err = Tokenizer::from_gguf(&meta)
            .expect_err("unsupported model")
            .to_string();
        assert!(
            err.contains("tokenizer.ggml.model") && err.contains("rwkv"),
            "{err}"
        );
        let err = Tokenizer::from_gguf(&gguf_meta("starcoder-x"))
            .expect_err("unsupported pre")
            .to_string();
        assert!(
            err.contains("tokenizer.ggml.pre") && err.contains("starcoder-x"),
            "{err}"
        );
    }

    #[test]
    fn decode_rejects_out_of_range_ids() {
        let tok = Tokenizer::from_gguf(&gguf_meta("gpt-2")).expect("build");
        let err = tok.decode(&[1, 100_000]).expect_err("bad id").to_string();
        assert!(err.contains("100000"), "{err}");
    }
}
