//! One test per crash the fuzz targets found, with the minimised input inline: each parser
//! must now return an error naming the file and the problem, without panicking and without
//! allocating by a size the file only claims.

mod common;

use common::*;
use glassbox_fuzz::{measure, GuardAlloc};
use glassbox_lm::tokenizer::{GgufTokenizerMeta, Tokenizer};
use std::path::Path;

#[global_allocator]
static ALLOC: GuardAlloc = GuardAlloc;

/// Peak bytes a rejected small input may allocate.
const SMALL: usize = 16 << 20;

/// Runs `f`, which must return an error (not panic, not allocate more than [`SMALL`]); returns
/// the error's text.
fn rejected<T, E: std::fmt::Display>(f: impl FnOnce() -> Result<T, E>) -> String {
    let (result, peak) = measure(f);
    assert!(peak <= SMALL, "allocated {peak} bytes at peak");
    match result {
        Ok(Ok(_)) => panic!("the input was accepted"),
        Ok(Err(e)) => e.to_string(),
        Err(panic) => panic!("{panic}"),
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// tokenizer.json cut short inside the decoder's value: the tokenizers crate's decoder
/// deserialiser panics ("Helper") on any JSON error there.
#[test]
fn tokenizer_json_cut_inside_decoder() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tokenizer.json", br#"{"added_tokens":[{"content":"","id":0,"lstrip":false,"normalized":false,"rstrip":false,"single_word":false,"special":true}],"decoder":"#);
    let e = rejected(|| Tokenizer::from_file(&dir.path().join("tokenizer.json")));
    assert!(e.contains("tokenizer.json") && e.contains("invalid JSON"), "{e}");
}

/// A byte that is not UTF-8 inside a string of the decoder: the same panic.
#[test]
fn tokenizer_json_invalid_utf8_in_decoder() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tokenizer.json", b"{\"decoder\":{\"type\":\"\x81\"},\"model\":{\"vocab\":{}}}");
    let e = rejected(|| Tokenizer::from_file(&dir.path().join("tokenizer.json")));
    assert!(e.contains("tokenizer.json") && e.contains("invalid JSON"), "{e}");
}

/// A template post-processor naming a special token it does not define: the tokenizers crate
/// accepts it and panics ("no entry found for key") on the first encoding.
#[test]
fn tokenizer_json_template_with_undefined_special_token() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "tokenizer.json",
        b"{\"model\":{\"unk_token\":\"\",\"vocab\":{}},\"post_processor\":{\"pair\":[],\"single\":[{\"SpecialToken\":{\"id\":\"\xc4\xa0\",\"type_id\":0}}],\"special_tokens\":{}}}",
    );
    write(dir.path(), "tokenizer_config.json", b"{}");
    let e = rejected(|| Tokenizer::from_file(&dir.path().join("tokenizer.json")));
    assert!(e.contains("tokenizer.json") && e.contains("not a valid tokenizer.json"), "{e}");
}

/// A BPE merge whose result is missing from the vocabulary and longer than every token in it:
/// the tokenizers crate's BPE builder panics (a slice out of range) instead of reporting the
/// missing token.
#[test]
fn tokenizer_json_bpe_merge_longer_than_every_token() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tokenizer.json", b"{\"model\":{\"merges\":[\"\xc4\xa0 w\"],\"vocab\":{\"w\":1,\"\xc4\xa0\":3}}}");
    let e = rejected(|| Tokenizer::from_file(&dir.path().join("tokenizer.json")));
    assert!(e.contains("tokenizer.json") && e.contains("not a valid tokenizer.json"), "{e}");
}

/// A pre-tokenizer of thirty byte-level stages in sequence, each doubling the text: the first
/// encoding asked the tokenizers crate for gigabytes.
#[test]
fn tokenizer_json_thirty_byte_level_pre_tokenizers() {
    let dir = tempfile::tempdir().unwrap();
    let stage = r#"{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}"#;
    let stages = vec![stage; 30].join(",");
    let json = format!(r#"{{"model":{{"type":"BPE","vocab":{{"a":0}},"merges":[]}},"pre_tokenizer":{{"type":"Sequence","pretokenizers":[{stages}]}}}}"#);
    write(dir.path(), "tokenizer.json", json.as_bytes());
    let e = rejected(|| Tokenizer::from_file(&dir.path().join("tokenizer.json")));
    assert!(e.contains("tokenizer.json") && e.contains("1073741824-fold"), "{e}");
}

/// Padding to a fixed length of 2^53 tokens: the trial encoding at load padded to it before
/// padding was switched off.
#[test]
fn tokenizer_json_pads_to_2_to_the_53_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let json = r#"{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"padding":{"strategy":{"Fixed":9007199254740992},"direction":"Right","pad_to_multiple_of":null,"pad_id":0,"pad_type_id":0,"pad_token":"a"}}"#;
    write(dir.path(), "tokenizer.json", json.as_bytes());
    let (result, peak) = measure(|| Tokenizer::from_file(&dir.path().join("tokenizer.json")).map(|t| t.encode("a a").map(|ids| ids.len())));
    assert!(peak <= SMALL, "allocated {peak} bytes at peak");
    // Padding is switched off: the file loads and encodes as if it had none.
    assert!(matches!(result, Ok(Ok(Ok(_)))), "{:?}", result.map(|r| r.map(|e| e.map_err(|e| e.to_string())).map_err(|e| e.to_string())));
}

/// Two added tokens, a space stripped on its right and a newline stripped on its left: the
/// tokenizers crate panics ("AddedVocabulary bad split") when it encodes text holding both.
#[test]
fn tokenizer_json_added_tokens_that_break_the_split() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "tokenizer.json",
        b"{\"added_tokens\":[{\"content\":\" \",\"id\":0,\"lstrip\":false,\"normalized\":true,\"rstrip\":true,\"single_word\":false,\"special\":false},{\"content\":\"\\n\",\"id\":0,\"lstrip\":true,\"normalized\":true,\"rstrip\":false,\"single_word\":false,\"special\":true}],\"model\":{\"unk_token\":\"\",\"vocab\":{}}}",
    );
    let tok = Tokenizer::from_file(&dir.path().join("tokenizer.json")).expect("it loads");
    let e = rejected(|| tok.encode("  \n\t"));
    assert!(e.contains("cannot tokenize text") && e.contains("bad split"), "{e}");
}

/// The same merge in a GGUF vocabulary (built by glassbox itself from the metadata).
#[test]
fn gguf_tokenizer_merge_result_not_in_vocabulary() {
    let meta = GgufTokenizerMeta {
        model: "gpt2".into(),
        pre: Some("gpt2".into()),
        tokens: vec!["Ġ".into(), "w".into()],
        merges: vec!["Ġ w".into()],
        ..Default::default()
    };
    let e = rejected(|| Tokenizer::from_gguf(&meta));
    assert!(e.contains("merge 0") && e.contains("Ġw"), "{e}");
}

/// cfg.json of a USAE claiming a model width of 2^53: loading built the USAE (m × d random
/// values per model) before comparing with the weights file.
#[test]
fn usae_cfg_claims_a_huge_model_width() {
    use glassbox_sae::usae::{Usae, UsaeConfig};
    let dir = tempfile::tempdir().unwrap();
    let u = Usae::new(UsaeConfig::new(6, 2, 10), &[("a", 4), ("b", 3)], 0).unwrap();
    glassbox_sae::store::save_usae(&u, dir.path()).unwrap();
    write(
        dir.path(),
        "cfg.json",
        br#"{"config":{"aux_coef":0.1,"batch_norm":true,"clip":1.0,"k":2,"loss":"l1","lr":0.0003,"m":6,"tick":"per-model","tied_init":false,"total_ticks":10,"universal":false,"update_all_decoders":false,"warmup_ticks":0,"weight_decay":0.00001},"kind":"usae","models":[{"d":9007199254740992,"mean":0.0,"name":"b","std":1.0},{"d":4,"mean":0,"name":"a","std":1.0}],"steps":0}"#,
    );
    let e = rejected(|| glassbox_sae::store::load_usae(dir.path()));
    assert!(e.contains("usae.safetensors") && e.contains("b.W_enc") && e.contains("9007199254740992"), "{e}");
}

/// A Hugging Face config.json claiming 2^32 - 1 layers: the weight loader reserved room for
/// that many blocks before reading the first.
#[test]
fn hf_config_claims_4294967295_layers() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "config.json",
        br#"{"architectures":["LlamaForCausalLM"],"head_dim":4,"hidden_act":"linear","hidden_size":8,"intermediate_size":8,"max_position_embeddings":4,"model_type":"llama","num_attention_heads":2,"num_hidden_layers":4294967295,"num_key_value_heads":2,"vocab_size":9}"#,
    );
    write(dir.path(), "tokenizer.json", &to_bytes(&tokenizer_wordlevel()));
    glassbox_core::io::write_f32(&dir.path().join("model.safetensors"), &[], Default::default()).unwrap();
    let e = match measure(|| glassbox_lm::loader::load_hf_folder(dir.path()).map(|_| ())) {
        (Ok(r), peak) => {
            assert!(peak <= SMALL, "allocated {peak} bytes at peak");
            r.expect_err("no weights").to_string()
        }
        (Err(panic), _) => panic!("{panic}"),
    };
    assert!(e.contains("model.safetensors") && e.contains("model.layers.0"), "{e}");
}

/// A language-model checkpoint saved by glassbox, its model.json with `edit` applied to the
/// text.
fn edited_lm_checkpoint(dir: &Path, edit: impl Fn(String) -> String) {
    use glassbox_core::checkpoint::{self, ModelCard};
    use glassbox_core::model::{Architecture, MlpKind, Model, TransformerConfig};
    let arch = Architecture::Transformer(TransformerConfig::bilinear_lm(1, 8, 2, 16, 11, 6, MlpKind::Bilinear));
    let model = Model::init(arch.clone(), 0, &glassbox_core::tensor::infer_device()).unwrap();
    checkpoint::save(dir, &model, &ModelCard::new(arch, 0)).unwrap();
    let card = std::fs::read_to_string(dir.join(checkpoint::CARD_FILE)).unwrap();
    let edited = edit(card.clone());
    assert_ne!(edited, card, "the edit changed nothing in {card}");
    write(dir, checkpoint::CARD_FILE, edited.as_bytes());
}

/// A transformer checkpoint whose model.json claims 2^32 layers: loading listed the parameters
/// of every claimed layer (a vector of billions of entries) before reading the weights.
#[test]
fn checkpoint_claims_4294967296_layers() {
    let dir = tempfile::tempdir().unwrap();
    edited_lm_checkpoint(dir.path(), |card| card.replace("\"n_layers\": 1,", "\"n_layers\": 4294967296,"));
    let device = glassbox_core::tensor::infer_device();
    let e = rejected(|| glassbox_core::checkpoint::load(dir.path(), &device));
    assert!(e.contains("model.json") && e.contains("4294967296 layers") && e.contains("model.safetensors"), "{e}");
}

/// A language model's model.json claiming an MLP width of 2^53: loading its Hugging Face layout
/// laid out zeros of the claimed sizes to learn the expected shapes.
#[test]
fn checkpoint_claims_an_mlp_width_of_2_to_the_53() {
    let dir = tempfile::tempdir().unwrap();
    edited_lm_checkpoint(dir.path(), |card| card.replace("\"d_mlp\": 16,", "\"d_mlp\": 9007199254740992,"));
    let device = glassbox_core::tensor::infer_device();
    let e = rejected(|| glassbox_core::checkpoint::load(dir.path(), &device));
    assert!(e.contains("model.safetensors") && e.contains("needs") && e.contains("the weights hold"), "{e}");
}

/// A language model's model.json whose output vocabulary (1) differs from its input one (11):
/// it was still read as a Hugging Face causal LM, whose layout has one size for both, and the
/// unembedding's conversion indexed past its values.
#[test]
fn checkpoint_lm_with_another_output_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    edited_lm_checkpoint(dir.path(), |card| card.replace("\"d_vocab_out\": 11,", "\"d_vocab_out\": 1,"));
    let device = glassbox_core::tensor::infer_device();
    let e = rejected(|| glassbox_core::checkpoint::load(dir.path(), &device));
    assert!(e.contains("model.safetensors") && e.contains("missing tensor(s) embed.W_E"), "{e}");
}

/// zoo.json claiming 2^32 models: loading sized its split bookkeeping by that count (4 GiB)
/// before comparing it with labels.json.
#[test]
fn zoo_claims_4294967296_models() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "zoo.json",
        br#"{"count":4294967296,"family":"mlp","generation":{"hidden":2,"preset":"fuzz","seed":1},"measured":[],"shard_size":2,"splits":{"test":[1],"train":[],"val":[0]},"target":"class","tensors":[["layers.0.weight",[2,2]]]}"#,
    );
    write(dir.path(), "labels.json", b"[0, 1]");
    let e = rejected(|| glassbox_zoo::store::load(dir.path()));
    assert!(e.contains("labels.json") && e.contains("2 labels for a zoo of 4294967296 models"), "{e}");
}
