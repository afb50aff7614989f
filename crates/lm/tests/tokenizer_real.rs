//! Token ids on a real model's tokenizer.json must equal Python transformers'.
//!
//! Uses all-MiniLM-L6-v2 from the models folder (env GLASSBOX_MODELS, default
//! ~/.cache/glassbox/models). Without it the tests print a note and pass, unless
//! GLASSBOX_REQUIRE_DATA=1 makes a missing model a failure.

mod common;

use common::bench_prompts;
use glassbox_lm::tokenizer::Tokenizer;
use std::path::PathBuf;

/// MiniLM's tokenizer.json, or None (after a note) when it is absent and not required.
fn minilm_tokenizer_json() -> Option<PathBuf> {
    common::real_model("all-MiniLM-L6-v2/tokenizer.json")
}

/// Produced by `transformers.AutoTokenizer.from_pretrained(".../all-MiniLM-L6-v2")(text)["input_ids"]`
/// (transformers 5.23.0, tokenizers 0.23.3) for each line of bench/lm_prompts.txt.
const MINILM_PROMPT_IDS: [&[u32]; 5] = [
    &[
        101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102,
    ],
    &[
        101, 1999, 3118, 1010, 4413, 2111, 3825, 1002, 1017, 1012, 2753, 2005, 1021, 9735, 1012,
        102,
    ],
    &[
        101, 2320, 2588, 1037, 2051, 1010, 2045, 2001, 1037, 2210, 2611, 2315, 7094, 2040, 3866,
        2000, 2377, 2648, 1012, 102,
    ],
    &[
        101, 15743, 7668, 1517, 1523, 9339, 1524, 3793, 1010, 2139, 3900, 24728, 999, 102,
    ],
    &[
        101, 13366, 2675, 1006, 1060, 1007, 1024, 2709, 1060, 1008, 1008, 1016, 102,
    ],
];

#[test]
fn minilm_prompt_ids_match_transformers() {
    let Some(path) = minilm_tokenizer_json() else {
        return;
    };
    let tok = Tokenizer::from_file(&path).expect("MiniLM tokenizer.json loads");
    let prompts = bench_prompts();
    assert_eq!(
        prompts.len(),
        MINILM_PROMPT_IDS.len(),
        "bench/lm_prompts.txt changed"
    );
    for (prompt, want) in prompts.iter().zip(MINILM_PROMPT_IDS) {
        assert_eq!(
            tok.encode(prompt).expect("encode"),
            want,
            "ids of {prompt:?}"
        );
    }
}

#[test]
fn minilm_special_tokens_and_no_padding() {
    let Some(path) = minilm_tokenizer_json() else {
        return;
    };
    let tok = Tokenizer::from_file(&path).expect("MiniLM tokenizer.json loads");
    // [CLS]=101 and [SEP]=102 wrap the text; the file's fixed padding to 128 is switched off.
    assert_eq!(tok.encode("hello").expect("encode"), vec![101, 7592, 102]);
    assert_eq!(tok.encode_plain("hello").expect("encode"), vec![7592]);
    assert_eq!((tok.bos_id(), tok.eos_id()), (Some(101), Some(102)));
    assert!(tok.adds_bos());
    assert_eq!(tok.special_ids(), &[0, 100, 101, 102, 103]);
    assert_eq!(tok.vocab_size(), 30522);
    assert_eq!(tok.token_str(7592).as_deref(), Some("hello"));
    assert_eq!(tok.decode(&[7592, 2088]).expect("decode"), "hello world");
    let long = "word ".repeat(600);
    assert_eq!(
        tok.encode(&long).expect("encode").len(),
        602,
        "no truncation at 512/128"
    );
}
