//! The forward pass of every family, with hooks.
//!
//! All prompts of a batch are packed into one `[tokens, d_model]` matrix: the linear maps and
//! norms see no padding, and only attention looks at prompt boundaries. Attention runs in blocks
//! of queries through GEMMs and never holds the `[heads, queries, keys]` pattern unless a score
//! or pattern hook is asked for.

use crate::config::{Family, ModelConfig, NormKind};
use crate::error::{Error, Result};
use crate::hooks::Hooks;
use crate::ops::{self, Rotary, RotaryTable};
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
        self.run(batch, hooks, logits, None)
    }

    /// Run one prompt's new tokens after those already in `cache`, and add them to it.
    pub fn forward_cached(&self, tokens: &[u32], cache: &mut KvCache, hooks: &mut Hooks, logits: Logits) -> Result<Output> {
        self.run(&Batch::new(&[tokens.to_vec()]), hooks, logits, Some(cache))
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

    fn run(&self, batch: &Batch, hooks: &mut Hooks, logits: Logits, mut cache: Option<&mut KvCache>) -> Result<Output> {
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
        for (i, block) in w.blocks.iter().enumerate() {
            let layer_cache = cache.as_deref_mut().map(|kv| (&mut kv.keys[i], &mut kv.values[i]));
            x = self.block(i, block, x, batch, rotary.as_ref(), hooks, layer_cache)?;
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
                let rows = x.len() / d;
                let mut y = vec![0f32; rows * vocab];
                let (xs, ws) = (ops::Strided::rows(x, d), ops::Strided::transposed(&self.weights.token_embed, d));
                ops::matmul(&mut y, vocab, xs, ws, rows, vocab, d, true);
                y
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

/// z for every query, computed per (prompt, head) in query blocks: scores through one GEMM,
/// softmax, then the weighted values through another. The pattern is never held whole.
fn attention(q: &[f32], keys: &[f32], values: &[f32], batch: &Batch, a: AttentionShape) -> Vec<f32> {
    let (h, kv, dh) = (a.h, a.kv, a.dh);
    let scale = 1.0 / (dh as f32).sqrt();
    let group = h / kv;
    let tasks: Vec<(usize, usize)> = (0..batch.n_sequences()).flat_map(|s| (0..h).map(move |hh| (s, hh))).collect();
    let outputs: Vec<Vec<f32>> = tasks
        .par_iter()
        .map(|&(s, hh)| {
            let qr = batch.range(s);
            let kr = a.key_range(batch, s);
            let g = hh / group;
            let n_q = qr.len();
            // This head's queries, keys and values, packed so that both products run on dense
            // matrices.
            let gather = |m: &[f32], rows: std::ops::Range<usize>, stride: usize, col: usize| -> Vec<f32> {
                rows.flat_map(|r| m[r * stride + col..r * stride + col + dh].iter().copied()).collect()
            };
            let qh = gather(q, qr.clone(), h * dh, hh * dh);
            let kh = gather(keys, kr.clone(), kv * dh, g * dh);
            let vh = gather(values, kr.clone(), kv * dh, g * dh);
            let mut z = vec![0f32; n_q * dh];
            let mut scores = vec![0f32; QUERY_BLOCK * kr.len()];
            for start in (0..n_q).step_by(QUERY_BLOCK) {
                let rows = QUERY_BLOCK.min(n_q - start);
                // Keys visible to the block's last query.
                let n_k = if a.causal { a.past + start + rows } else { kr.len() };
                let sc = &mut scores[..rows * n_k];
                ops::gemm_abt(sc, &qh[start * dh..], &kh, rows, n_k, dh, dh, dh);
                for (r, row) in sc.chunks_mut(n_k).enumerate() {
                    let visible = if a.causal { a.past + start + r + 1 } else { n_k };
                    ops::softmax_scaled(row, scale, visible);
                }
                ops::gemm_ab(&mut z[start * dh..], sc, &vh, rows, dh, n_k, dh, dh);
            }
            z
        })
        .collect();
    scatter_heads(&outputs, &tasks, batch, h, dh)
}

/// Place each (prompt, head) task's `[queries, d_head]` block into `[tokens, heads·d_head]`.
fn scatter_heads(outputs: &[Vec<f32>], tasks: &[(usize, usize)], batch: &Batch, h: usize, dh: usize) -> Vec<f32> {
    let mut z = vec![0f32; batch.n_tokens() * h * dh];
    for (out, &(s, hh)) in outputs.iter().zip(tasks) {
        for (r, row) in out.chunks(dh).enumerate() {
            let at = (batch.offsets[s] + r) * h * dh + hh * dh;
            z[at..at + dh].copy_from_slice(row);
        }
    }
    z
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
            ops::gemm_abt(&mut tmp, &q[q0..], &keys[k0..], qr.len(), kr.len(), dh, h * dh, kv * dh);
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
