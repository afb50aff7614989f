//! The forward pass of every family, with hooks.
//!
//! All prompts of a batch are packed into one `[tokens, d_model]` matrix: the linear maps and
//! norms see no padding, and only attention looks at prompt boundaries. Attention runs in blocks
//! of queries through GEMMs and never holds the `[heads, queries, keys]` pattern unless a score
//! or pattern hook is asked for.

use crate::config::{Family, ModelConfig, NormKind};
use crate::error::{Error, Result};
use crate::hooks::Hooks;
use crate::ops::{self, Rotary, RotaryTable, Strided};
use crate::weights::{Block, Weights};
use rayon::prelude::*;

/// Queries per attention block: the scores block `[QUERY_BLOCK, keys]` stays in cache.
const QUERY_BLOCK: usize = 256;

/// Prompts packed end to end.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    pub tokens: Vec<u32>,
    /// Start of each prompt in `tokens`, and the total at the end (`prompts + 1` entries).
    pub offsets: Vec<usize>,
}

impl Batch {
    pub fn new(sequences: &[Vec<u32>]) -> Self {
        let mut batch = Batch { tokens: Vec::new(), offsets: vec![0] };
        for s in sequences {
            batch.tokens.extend_from_slice(s);
            batch.offsets.push(batch.tokens.len());
        }
        batch
    }

    pub fn n_tokens(&self) -> usize {
        self.tokens.len()
    }

    pub fn n_sequences(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub fn range(&self, s: usize) -> std::ops::Range<usize> {
        self.offsets[s]..self.offsets[s + 1]
    }

    pub fn max_len(&self) -> usize {
        (0..self.n_sequences()).map(|s| self.range(s).len()).max().unwrap_or(0)
    }
}

/// Which positions get logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logits {
    None,
    /// The last position of each prompt (generation, classification).
    Last,
    /// Every position (scoring).
    All,
}

#[derive(Clone, Debug, Default)]
pub struct Output {
    /// The final residual stream after the final norm (BERT: the last block's output), `[tokens, d]`.
    pub hidden: Vec<f32>,
    /// `[rows, vocab]`, rows as asked by [`Logits`].
    pub logits: Option<Vec<f32>>,
}

/// Keys and values of the tokens seen so far, per block (single-sequence generation).
#[derive(Clone, Debug, Default)]
pub struct KvCache {
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    len: usize,
}

impl KvCache {
    pub fn new(config: &ModelConfig) -> Self {
        KvCache { keys: vec![Vec::new(); config.n_layers], values: vec![Vec::new(); config.n_layers], len: 0 }
    }

    /// Tokens already processed.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

pub struct Transformer {
    pub config: ModelConfig,
    pub weights: Weights,
    rotary: Option<Rotary>,
}

/// Apply a hook if it is wanted; the names are built only then.
macro_rules! hook {
    ($hooks:expr, $data:expr, $shape:expr, $($name:tt)+) => {
        if !$hooks.is_empty() {
            let name = format!($($name)+);
            if $hooks.wants(&name) {
                $hooks.visit(&name, $data, $shape)?;
            }
        }
    };
}

impl Transformer {
    pub fn new(config: ModelConfig, weights: Weights) -> Self {
        let rotary = config.rope_theta.map(|theta| Rotary::new(config.d_head, theta));
        Transformer { config, weights, rotary }
    }

    pub fn n_params(&self) -> usize {
        self.weights.n_params()
    }

    /// Run the prompts of `batch`, applying and recording `hooks`.
    pub fn forward(&self, batch: &Batch, hooks: &mut Hooks, logits: Logits) -> Result<Output> {
        self.run(batch, hooks, logits, None, self.config.n_layers)
    }

    /// Run one prompt's new tokens after those already in `cache`, and add them to it.
    pub fn forward_cached(&self, tokens: &[u32], cache: &mut KvCache, hooks: &mut Hooks, logits: Logits) -> Result<Output> {
        self.run(&Batch::new(&[tokens.to_vec()]), hooks, logits, Some(cache), self.config.n_layers)
    }

    /// Run the prompts only as deep as `hooks` need, for their cache and nothing else: storing
    /// block 15's residual stream of a 30-block model runs 16 blocks.
    pub fn run_hooks(&self, batch: &Batch, hooks: &mut Hooks) -> Result<()> {
        self.run(batch, hooks, Logits::None, None, self.blocks_needed(hooks)).map(|_| ())
    }

    /// Blocks a forward pass must run to reach every requested hook: through the deepest
    /// `blocks.{i}.*` hook, none for embedding hooks, all for `ln_final.*` and `logits`.
    fn blocks_needed(&self, hooks: &Hooks) -> usize {
        let all = self.config.n_layers;
        let needed = |name: &str| match crate::hooks::block_of(name) {
            Some(i) => (i + 1).min(all),
            None if name.starts_with("hook_") || name.starts_with("embed.") => 0,
            None => all,
        };
        hooks.requested().map(needed).max().unwrap_or(0)
    }

    fn check_input(&self, batch: &Batch, past: usize) -> Result<()> {
        let c = &self.config;
        if let Some(&bad) = batch.tokens.iter().find(|&&t| t as usize >= c.vocab_size) {
            return Err(Error::invalid(format!("token id {bad} is outside the vocabulary of {}", c.vocab_size)));
        }
        for s in 0..batch.n_sequences() {
            let n = batch.range(s).len() + past;
            if n > c.max_positions {
                return Err(Error::invalid(format!(
                    "prompt {} has {n} tokens, more than the model's context of {} tokens",
                    s + 1,
                    c.max_positions
                )));
            }
        }
        Ok(())
    }

    /// The forward pass through the first `blocks` blocks; the final norm and logits only after
    /// all of them.
    fn run(&self, batch: &Batch, hooks: &mut Hooks, logits: Logits, mut cache: Option<&mut KvCache>, blocks: usize) -> Result<Output> {
        let past = cache.as_ref().map_or(0, |c| c.len);
        self.check_input(batch, past)?;
        let (c, w) = (&self.config, &self.weights);
        let (t, d) = (batch.n_tokens(), c.d_model);
        let positions: Vec<usize> =
            (0..batch.n_sequences()).flat_map(|s| (0..batch.range(s).len()).map(move |p| p + past)).collect();
        let bert = c.family == Family::Bert;
        let prefix = if bert { "embed." } else { "" };

        let mut x = gather_rows(&w.token_embed, d, batch.tokens.iter().map(|&id| id as usize));
        hook!(hooks, &mut x, &[t, d], "{prefix}hook_embed");
        if let Some(table) = &w.pos_embed {
            let mut pe = gather_rows(table, d, positions.iter().copied());
            hook!(hooks, &mut pe, &[t, d], "{prefix}hook_pos_embed");
            add_into(&mut x, &pe);
        }
        if let Some(table) = &w.type_embed {
            // Every token has type 0 (single-segment input).
            let mut te = gather_rows(table, d, std::iter::repeat_n(0, t));
            hook!(hooks, &mut te, &[t, d], "embed.hook_token_type_embed");
            add_into(&mut x, &te);
        }
        if let Some(p) = &w.embed_norm {
            x = self.norm_hooked(&x, p, "embed.ln", hooks)?;
            hook!(hooks, &mut x, &[t, d], "hook_full_embed");
        }
        let rotary = self.rotary.as_ref().map(|r| r.table(&positions));
        for (i, block) in w.blocks.iter().enumerate().take(blocks) {
            let layer_cache = cache.as_deref_mut().map(|kv| (&mut kv.keys[i], &mut kv.values[i]));
            x = self.block(i, block, x, batch, rotary.as_ref(), hooks, layer_cache)?;
        }
        if blocks < w.blocks.len() {
            return Ok(Output { hidden: x, logits: None });
        }
        if let Some(kv) = cache {
            kv.len += t;
        }
        if let Some(p) = &w.final_norm {
            x = self.norm_hooked(&x, p, "ln_final", hooks)?;
        }
        let logits = self.logits(&x, batch, hooks, logits)?;
        Ok(Output { hidden: x, logits })
    }

    fn logits(&self, x: &[f32], batch: &Batch, hooks: &mut Hooks, want: Logits) -> Result<Option<Vec<f32>>> {
        let hooked = hooks.wants("logits");
        if (want == Logits::None && !hooked) || !self.config.has_unembed() {
            return Ok(None);
        }
        let d = self.config.d_model;
        if want == Logits::Last && !hooked {
            let last = (0..batch.n_sequences()).filter(|&s| !batch.range(s).is_empty()).map(|s| batch.offsets[s + 1] - 1);
            let rows = gather_rows(x, d, last);
            return Ok(Some(self.unembed(&rows)));
        }
        let mut all = self.unembed(x);
        let vocab = self.config.vocab_size;
        hooks.visit("logits", &mut all, &[batch.n_tokens(), vocab])?;
        if want == Logits::Last {
            let last = (0..batch.n_sequences()).filter(|&s| !batch.range(s).is_empty()).map(|s| batch.offsets[s + 1] - 1);
            return Ok(Some(gather_rows(&all, vocab, last)));
        }
        Ok(Some(all))
    }

    /// Logits of rows of the final residual stream.
    pub fn unembed(&self, x: &[f32]) -> Vec<f32> {
        let (d, vocab) = (self.config.d_model, self.config.vocab_size);
        match &self.weights.unembed {
            Some(lin) => lin.forward(x, x.len() / d),
            None => {
                let (xs, ws) = (Strided::rows(x, d), Strided::transposed(&self.weights.token_embed, d));
                ops::matmul_new(xs, ws, x.len() / d, vocab, d, true)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn block(
        &self,
        i: usize,
        b: &Block,
        mut x: Vec<f32>,
        batch: &Batch,
        rotary: Option<&RotaryTable>,
        hooks: &mut Hooks,
        cache: Option<(&mut Vec<f32>, &mut Vec<f32>)>,
    ) -> Result<Vec<f32>> {
        let c = &self.config;
        let (t, d, dh) = (batch.n_tokens(), c.d_model, c.d_head);
        let (h, kv) = (c.n_heads, c.n_kv_heads);
        let post_ln = c.family == Family::Bert;
        hook!(hooks, &mut x, &[t, d], "blocks.{i}.hook_resid_pre");

        // Attention.
        let attn_in = if post_ln {
            None
        } else {
            Some(self.norm_hooked(&x, &b.ln1, &format!("blocks.{i}.ln1"), hooks)?)
        };
        let input = attn_in.as_deref().unwrap_or(&x);
        let (qw, kvw) = (h * dh, kv * dh);
        let mut q = b.qkv.forward_part(input, t, 0..qw);
        let mut k = b.qkv.forward_part(input, t, qw..qw + kvw);
        let mut v = b.qkv.forward_part(input, t, qw + kvw..qw + 2 * kvw);
        drop(attn_in);
        hook!(hooks, &mut q, &[t, h, dh], "blocks.{i}.attn.hook_q");
        hook!(hooks, &mut k, &[t, kv, dh], "blocks.{i}.attn.hook_k");
        hook!(hooks, &mut v, &[t, kv, dh], "blocks.{i}.attn.hook_v");
        if let Some(rot) = rotary {
            rotate(rot, &mut q, h, dh);
            rotate(rot, &mut k, kv, dh);
            hook!(hooks, &mut q, &[t, h, dh], "blocks.{i}.attn.hook_rot_q");
            hook!(hooks, &mut k, &[t, kv, dh], "blocks.{i}.attn.hook_rot_k");
        }
        let (keys, values, past) = match cache {
            Some((ck, cv)) => {
                let past = ck.len() / (kv * dh);
                ck.extend_from_slice(&k);
                cv.extend_from_slice(&v);
                (&ck[..], &cv[..], past)
            }
            None => (&k[..], &v[..], 0),
        };
        let shape = AttentionShape { h, kv, dh, causal: c.causal(), past };
        let scores_hook = format!("blocks.{i}.attn.hook_attn_scores");
        let pattern_hook = format!("blocks.{i}.attn.hook_pattern");
        let mut z = if hooks.wants(&scores_hook) || hooks.wants(&pattern_hook) {
            attention_materialised(&q, keys, values, batch, shape, hooks, &scores_hook, &pattern_hook)?
        } else {
            attention(&q, keys, values, batch, shape)
        };
        drop(q);
        hook!(hooks, &mut z, &[t, h, dh], "blocks.{i}.attn.hook_z");
        let mut attn_out = b.attn_out.forward(&z, t);
        drop(z);
        hook!(hooks, &mut attn_out, &[t, d], "blocks.{i}.hook_attn_out");
        add_into(&mut x, &attn_out);
        drop(attn_out);
        let mut resid_mid = x;
        hook!(hooks, &mut resid_mid, &[t, d], "blocks.{i}.hook_resid_mid");

        // MLP. Pre-LN: ln2 normalises its input. Post-LN (BERT): ln1 normalises the attention
        // sum, which is both the MLP input and the residual the MLP adds to.
        let (mut base, mlp_in) = if post_ln {
            let normed = self.norm_hooked(&resid_mid, &b.ln1, &format!("blocks.{i}.ln1"), hooks)?;
            (normed.clone(), normed)
        } else {
            let normed = self.norm_hooked(&resid_mid, &b.ln2, &format!("blocks.{i}.ln2"), hooks)?;
            (resid_mid, normed)
        };
        let mut post = self.mlp_hidden(i, b, &mlp_in, t, hooks)?;
        drop(mlp_in);
        hook!(hooks, &mut post, &[t, c.d_mlp], "blocks.{i}.mlp.hook_post");
        let mut mlp_out = b.mlp_out.forward(&post, t);
        drop(post);
        hook!(hooks, &mut mlp_out, &[t, d], "blocks.{i}.hook_mlp_out");
        add_into(&mut base, &mlp_out);
        let mut resid_post = base;
        hook!(hooks, &mut resid_post, &[t, d], "blocks.{i}.hook_resid_post");
        if post_ln {
            let mut normed = self.norm_hooked(&resid_post, &b.ln2, &format!("blocks.{i}.ln2"), hooks)?;
            hook!(hooks, &mut normed, &[t, d], "blocks.{i}.hook_normalized_resid_post");
            return Ok(normed);
        }
        Ok(resid_post)
    }

    /// A LayerNorm or RMSNorm with its `hook_scale` and `hook_normalized`. As in TransformerLens,
    /// LayerNorm's `hook_normalized` is its output (weight and bias applied) while RMSNorm's is
    /// taken before the weight.
    fn norm_hooked(&self, x: &[f32], p: &crate::ops::Norm, name: &str, hooks: &mut Hooks) -> Result<Vec<f32>> {
        let d = self.config.d_model;
        let t = x.len() / d;
        let layer_norm = self.config.norm == NormKind::LayerNorm;
        let (mut scale, mut normed) = ops::normalize(x, d, layer_norm, self.config.norm_eps);
        hook!(hooks, &mut scale, &[t, 1], "{name}.hook_scale");
        if layer_norm {
            ops::affine(&mut normed, p);
            hook!(hooks, &mut normed, &[t, d], "{name}.hook_normalized");
        } else {
            hook!(hooks, &mut normed, &[t, d], "{name}.hook_normalized");
            ops::affine(&mut normed, p);
        }
        Ok(normed)
    }

    /// The MLP's hidden activation (`hook_post`), recording `hook_pre` (and the gated MLP's
    /// `hook_pre_linear`) on the way.
    fn mlp_hidden(&self, i: usize, b: &Block, x: &[f32], t: usize, hooks: &mut Hooks) -> Result<Vec<f32>> {
        let (m, act) = (self.config.d_mlp, self.config.activation);
        if !self.config.gated_mlp {
            let mut pre = b.mlp_in.forward(x, t);
            hook!(hooks, &mut pre, &[t, m], "blocks.{i}.mlp.hook_pre");
            ops::activate_all(act, &mut pre);
            return Ok(pre);
        }
        // The stacked map's first d_mlp outputs are the gate, the rest the up projection.
        let mut gate = b.mlp_in.forward_part(x, t, 0..m);
        let mut up = b.mlp_in.forward_part(x, t, m..2 * m);
        hook!(hooks, &mut gate, &[t, m], "blocks.{i}.mlp.hook_pre");
        hook!(hooks, &mut up, &[t, m], "blocks.{i}.mlp.hook_pre_linear");
        ops::activate_all(act, &mut gate);
        gate.par_chunks_mut(4096).zip(up.par_chunks(4096)).for_each(|(g, u)| {
            g.iter_mut().zip(u).for_each(|(g, &u)| *g *= u);
        });
        Ok(gate)
    }

    /// The sentence-transformers embedding of each prompt: the mean of the last hidden state over
    /// the prompt's tokens, L2-normalised.
    pub fn sentence_embeddings(&self, batch: &Batch) -> Result<Vec<Vec<f32>>> {
        let out = self.forward(batch, &mut Hooks::new(), Logits::None)?;
        let d = self.config.d_model;
        Ok((0..batch.n_sequences())
            .map(|s| {
                let r = batch.range(s);
                let n = r.len().max(1) as f64;
                let mut mean = vec![0f64; d];
                for row in out.hidden[r.start * d..r.end * d].chunks(d) {
                    mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
                }
                let mean: Vec<f64> = mean.into_iter().map(|m| m / n).collect();
                let norm = mean.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
                mean.iter().map(|v| (v / norm) as f32).collect()
            })
            .collect())
    }
}

fn gather_rows(table: &[f32], d: usize, rows: impl Iterator<Item = usize>) -> Vec<f32> {
    let mut out = Vec::new();
    for r in rows {
        out.extend_from_slice(&table[r * d..(r + 1) * d]);
    }
    out
}

fn add_into(x: &mut [f32], y: &[f32]) {
    x.par_chunks_mut(4096).zip(y.par_chunks(4096)).for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(a, b)| *a += b));
}

fn rotate(rot: &RotaryTable, x: &mut [f32], heads: usize, dh: usize) {
    x.par_chunks_mut(heads * dh).enumerate().for_each(|(row, token)| {
        token.chunks_mut(dh).for_each(|head| rot.apply(head, row));
    });
}

#[derive(Clone, Copy, Debug)]
struct AttentionShape {
    h: usize,
    kv: usize,
    dh: usize,
    causal: bool,
    /// Cached tokens before this batch's (generation; single prompt).
    past: usize,
}

impl AttentionShape {
    /// Keys of prompt `s`: the rows of `keys` it attends over.
    fn key_range(&self, batch: &Batch, s: usize) -> std::ops::Range<usize> {
        if self.past > 0 {
            0..self.past + batch.range(s).len()
        } else {
            batch.range(s)
        }
    }
}

/// z for every query, computed per (prompt, head) in query blocks: scores through one GEMM on
/// the head's strided columns of q and k, their unnormalised softmax, the weighted values through
/// another GEMM written straight into z, then each row divided by its softmax total. The pattern
/// is never held whole.
fn attention(q: &[f32], keys: &[f32], values: &[f32], batch: &Batch, a: AttentionShape) -> Vec<f32> {
    let (h, kv, dh) = (a.h, a.kv, a.dh);
    let (q_width, kv_width) = (h * dh, kv * dh);
    let t = batch.n_tokens();
    let scale = 1.0 / (dh as f32).sqrt();
    let group = h / kv;
    let mut z: Vec<f32> = Vec::with_capacity(t * q_width);
    let out = HeadColumns(z.as_mut_ptr());
    let tasks: Vec<(usize, usize)> = (0..batch.n_sequences()).flat_map(|s| (0..h).map(move |hh| (s, hh))).collect();
    tasks.par_iter().for_each(|&(s, hh)| {
        let (qr, kr) = (batch.range(s), a.key_range(batch, s));
        let n_q = qr.len();
        let q_head = &q[qr.start * q_width + hh * dh..];
        let kv_at = kr.start * kv_width + (hh / group) * dh;
        let (k_head, v_head) = (&keys[kv_at..], &values[kv_at..]);
        let mut scores = vec![0f32; QUERY_BLOCK.min(n_q) * kr.len()];
        let mut totals = [0f32; QUERY_BLOCK];
        for start in (0..n_q).step_by(QUERY_BLOCK) {
            let rows = QUERY_BLOCK.min(n_q - start);
            // Keys visible to the block's last query.
            let n_k = if a.causal { a.past + start + rows } else { kr.len() };
            let sc = &mut scores[..rows * n_k];
            let (qs, ks) = (Strided::rows(&q_head[start * q_width..], q_width), Strided::transposed(k_head, kv_width));
            ops::matmul(sc, n_k, qs, ks, rows, n_k, dh, false);
            for (r, row) in sc.chunks_mut(n_k).enumerate() {
                let visible = if a.causal { a.past + start + r + 1 } else { n_k };
                totals[r] = ops::exp_shifted(row, scale, visible);
            }
            let block = out.at((qr.start + start) * q_width + hh * dh);
            // SAFETY: the view is rows `qr.start + start ..+ rows` and columns `hh·dh ..+ dh` of
            // z, inside its `t × q_width` capacity; no other task writes there (one task per
            // prompt and head), and nothing reads z until every task is done.
            unsafe {
                ops::matmul_to_ptr(block, q_width, Strided::rows(sc, n_k), Strided::rows(v_head, kv_width), rows, dh, n_k, false);
                for (r, &total) in totals[..rows].iter().enumerate() {
                    let inv = 1.0 / total;
                    std::slice::from_raw_parts_mut(block.add(r * q_width), dh).iter_mut().for_each(|v| *v *= inv);
                }
            }
        }
    });
    // SAFETY: every element was written above: each token belongs to exactly one prompt, and
    // every (prompt, head) pair was a task covering all the prompt's rows in the head's columns.
    unsafe { z.set_len(t * q_width) };
    z
}

/// The attention output as the per-head tasks write it, each into its own rows and columns.
#[derive(Clone, Copy)]
struct HeadColumns(*mut f32);

// SAFETY: the tasks that share it write disjoint elements (see `attention`).
unsafe impl Send for HeadColumns {}
unsafe impl Sync for HeadColumns {}

impl HeadColumns {
    fn at(&self, offset: usize) -> *mut f32 {
        // wrapping_add: computing the address is safe; writing through it is the caller's burden.
        self.0.wrapping_add(offset)
    }
}

/// Attention with the scores and pattern formed whole, `[query tokens, heads, max keys]`, so that
/// their hooks can read or edit them.
#[allow(clippy::too_many_arguments)]
fn attention_materialised(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    batch: &Batch,
    a: AttentionShape,
    hooks: &mut Hooks,
    scores_hook: &str,
    pattern_hook: &str,
) -> Result<Vec<f32>> {
    let (h, kv, dh) = (a.h, a.kv, a.dh);
    let t = batch.n_tokens();
    let max_k = (0..batch.n_sequences()).map(|s| a.key_range(batch, s).len()).max().unwrap_or(0);
    let scale = 1.0 / (dh as f32).sqrt();
    let group = h / kv;
    let mut scores = vec![0f32; t * h * max_k];
    let mut tmp = Vec::new();
    for s in 0..batch.n_sequences() {
        let (qr, kr) = (batch.range(s), a.key_range(batch, s));
        for hh in 0..h {
            tmp.resize(qr.len() * kr.len(), 0.0);
            let (q0, k0) = (qr.start * h * dh + hh * dh, kr.start * kv * dh + (hh / group) * dh);
            let (qs, ks) = (Strided::rows(&q[q0..], h * dh), Strided::transposed(&keys[k0..], kv * dh));
            ops::matmul(&mut tmp, kr.len(), qs, ks, qr.len(), kr.len(), dh, false);
            for (r, row) in tmp.chunks(kr.len()).enumerate() {
                let visible = if a.causal { a.past + r + 1 } else { kr.len() };
                let out = &mut scores[((qr.start + r) * h + hh) * max_k..][..kr.len()];
                for (j, (o, &v)) in out.iter_mut().zip(row).enumerate() {
                    *o = if j < visible { v * scale } else { f32::NEG_INFINITY };
                }
            }
        }
    }
    let shape = [t, h, max_k];
    if hooks.wants(scores_hook) {
        hooks.visit(scores_hook, &mut scores, &shape)?;
    }
    let mut pattern = scores;
    for s in 0..batch.n_sequences() {
        let n_k = a.key_range(batch, s).len();
        for r in batch.range(s) {
            for hh in 0..h {
                ops::softmax(&mut pattern[(r * h + hh) * max_k..][..n_k]);
            }
        }
    }
    if hooks.wants(pattern_hook) {
        hooks.visit(pattern_hook, &mut pattern, &shape)?;
    }
    let mut z = vec![0f32; t * h * dh];
    for s in 0..batch.n_sequences() {
        let (qr, kr) = (batch.range(s), a.key_range(batch, s));
        for hh in 0..h {
            let k0 = kr.start * kv * dh + (hh / group) * dh;
            for r in qr.clone() {
                let p = &pattern[(r * h + hh) * max_k..][..kr.len()];
                let out = &mut z[(r * h + hh) * dh..][..dh];
                for (j, &pj) in p.iter().enumerate() {
                    if pj != 0.0 {
                        let vrow = &values[k0 + j * kv * dh..][..dh];
                        out.iter_mut().zip(vrow).for_each(|(o, &v)| *o += pj * v);
                    }
                }
            }
        }
    }
    Ok(z)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, seed: u32) -> Vec<f32> {
        (0..n as u32).map(|i| ((i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) % 2001) as f32 / 1000.0 - 1.0).collect()
    }

    /// The blockwise kernel against the materialised one (scores and softmax written out whole,
    /// then summed per query), which shares no code with it but the score GEMM: grouped heads,
    /// prompts longer than a query block, causal or not, and cached keys before the batch.
    #[test]
    fn blockwise_attention_equals_the_materialised_pattern() {
        let (h, kv, dh) = (4, 2, 8);
        for (lens, causal, past) in [(vec![QUERY_BLOCK + 45, 3, 1], true, 0), (vec![QUERY_BLOCK + 7, 20], false, 0), (vec![5], true, 11)] {
            let batch = Batch::new(&lens.iter().map(|&n| vec![0; n]).collect::<Vec<_>>());
            let t = batch.n_tokens();
            let q = noise(t * h * dh, 1);
            let keys = noise((past + t) * kv * dh, 2);
            let values = noise((past + t) * kv * dh, 3);
            let shape = AttentionShape { h, kv, dh, causal, past };
            let fast = attention(&q, &keys, &values, &batch, shape);
            let full = attention_materialised(&q, &keys, &values, &batch, shape, &mut Hooks::new(), "s", "p").unwrap();
            let worst = fast.iter().zip(&full).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(worst < 1e-6, "lens {lens:?}, causal {causal}, past {past}: max |diff| {worst}");
        }
    }

    #[test]
    fn run_hooks_stops_after_the_deepest_requested_block() {
        let m = crate::load(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny-gpt2")).unwrap();
        let (t, c) = (&m.model, &m.model.config);
        let needed = |names: &[&str]| t.blocks_needed(&Hooks::capture(c, names).unwrap());
        assert!(c.n_layers >= 2);
        assert_eq!(needed(&["hook_embed", "hook_pos_embed"]), 0);
        assert_eq!(needed(&["blocks.0.attn.hook_z"]), 1);
        assert_eq!(needed(&["hook_embed", "blocks.1.hook_resid_pre", "blocks.0.hook_mlp_out"]), 2);
        assert_eq!(needed(&["ln_final.hook_scale"]), c.n_layers);
        assert_eq!(needed(&["blocks.0.hook_resid_pre", "logits"]), c.n_layers);
        let batch = Batch::new(&[vec![1, 2, 3, 4], vec![5, 6]]);
        let names = ["blocks.0.hook_resid_post", "hook_embed"];
        let mut part = Hooks::capture(c, names).unwrap();
        t.run_hooks(&batch, &mut part).unwrap();
        let mut full = Hooks::capture(c, names).unwrap();
        t.forward(&batch, &mut full, Logits::All).unwrap();
        assert_eq!(part.cache.len(), 2);
        for name in names {
            assert_eq!(part.cache[name].data, full.cache[name].data, "{name}");
        }
    }
}
