//! Feature dashboards for an SAE at a language model's hook, as SAEDashboard (the basis of
//! Neuronpedia) lays them out: per latent its top activating contexts, samples from ten
//! equal-width intervals of (0, max], the firing density with a histogram of the non-zero
//! activations, and the tokens its decoder direction promotes and suppresses through the
//! unembedding.
//!
//! The text is streamed twice with bounded memory: the first pass counts how often every latent
//! fires, finds its maximum and keeps a top-N heap of contexts (one entry per context, at its
//! first maximum); the second pass, now knowing each chosen latent's maximum, fills the
//! equal-width histogram and interval counts and keeps a fixed-size sample per interval, and reads
//! the token windows of the top contexts. Interval samples are the events with the smallest
//! pseudo-random keys (a hash of the seed, latent, context and position), so they are a uniform
//! sample that does not depend on the batching. Nothing grows with the length of the text.
//!
//! Special tokens (BOS, EOS, ...) and the first `skip_first` positions of every context are left
//! out, as `lm_eval` does: they count as neither firing nor not firing, and show an activation of
//! 0 in the windows.

use crate::saelens::{Architecture, Sae};
use crate::{Error, Result};
use glassbox_lm::config::NormKind;
use glassbox_lm::{Batch, Hooks, LoadedModel};
use serde::Serialize;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

/// What to collect per latent.
#[derive(Clone, Debug)]
pub struct DashboardOptions {
    /// Top activating contexts kept.
    pub top: usize,
    /// Equal-width intervals of (0, max].
    pub intervals: usize,
    /// Samples kept per interval.
    pub per_interval: usize,
    /// Tokens shown before and after the token a window is about.
    pub before: usize,
    pub after: usize,
    /// Bins of the histograms of non-zero activations and of logit effects.
    pub hist_bins: usize,
    /// Tokens in each logit table (top and bottom).
    pub logits: usize,
    /// Positions left out at the start of every context.
    pub skip_first: usize,
    /// Contexts per forward pass.
    pub batch_contexts: usize,
    /// Seed of the interval sampling.
    pub seed: u64,
}

impl Default for DashboardOptions {
    /// SAEDashboard's layout: 20 top contexts, 10 intervals of 5, 50-bin histograms, 10 logits.
    fn default() -> Self {
        DashboardOptions { top: 20, intervals: 10, per_interval: 5, before: 10, after: 5, hist_bins: 50, logits: 10, skip_first: 1, batch_contexts: 4, seed: 0 }
    }
}

/// Which latents get a dashboard.
#[derive(Clone, Debug, PartialEq)]
pub enum LatentChoice {
    /// These latents, in this order.
    Given(Vec<usize>),
    /// The n latents that fire most often.
    MostFrequent(usize),
    /// n latents: half the most frequent, the rest spread evenly over the firing-frequency ranking
    /// of the other latents that fire at all, so that rare latents are seen too.
    Mix(usize),
}

/// A window of tokens around the one it is about, with the latent's activation on every token.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Window {
    /// Index of the context in the input, and the position of the token in it.
    pub context: usize,
    pub position: usize,
    /// The latent's activation on that token.
    pub value: f32,
    /// Index of that token in `tokens`.
    pub qualifying: usize,
    pub tokens: Vec<u32>,
    pub values: Vec<f32>,
}

/// Counts of values in `counts.len()` equal-width bins over [low, high].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Histogram {
    pub low: f32,
    pub high: f32,
    pub counts: Vec<u64>,
}

/// One of the equal-width intervals (low, high] of (0, max].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Interval {
    pub low: f32,
    pub high: f32,
    /// Activations in the interval, and their share of all non-zero activations.
    pub count: u64,
    pub fraction: f64,
    pub samples: Vec<Window>,
}

/// The logit effects of a latent's decoder direction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogitEffects {
    /// The `logits` most promoted tokens (largest first) and most suppressed (smallest first).
    pub top: Vec<(u32, f32)>,
    pub bottom: Vec<(u32, f32)>,
    /// Over the whole vocabulary.
    pub histogram: Histogram,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatentDashboard {
    pub latent: usize,
    /// Largest activation (0 if it never fired).
    pub max: f32,
    /// Tokens on which it fired, and their share of all evaluated tokens.
    pub fired: u64,
    pub frac_nonzero: f64,
    /// Top contexts, best first (each context once, at its first maximum).
    pub top: Vec<Window>,
    pub intervals: Vec<Interval>,
    /// Non-zero activations, `hist_bins` equal bins over (0, max].
    pub activations: Histogram,
    pub logits: Option<LogitEffects>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Dashboards {
    pub hook: String,
    pub d_sae: usize,
    /// Contexts read, tokens per context and tokens evaluated (special and skipped ones left out).
    pub contexts: usize,
    pub context_len: usize,
    pub tokens: u64,
    /// Latents that never fired on the evaluated tokens.
    pub dead: usize,
    pub latents: Vec<LatentDashboard>,
}

/// Which pass `collect` is in, for progress reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    First,
    Second,
}

/// Collect dashboards for `sae` at `hook` of `model` over `contexts` (token ids, each run as one
/// sequence); `progress` is told the pass and the contexts done in it.
pub fn collect(
    model: &LoadedModel,
    sae: &Sae,
    hook: &str,
    contexts: &[Vec<u32>],
    choice: &LatentChoice,
    opts: &DashboardOptions,
    mut progress: impl FnMut(Pass, usize),
) -> Result<Dashboards> {
    if contexts.is_empty() {
        return Err(Error::invalid("no contexts to read"));
    }
    let m = sae.d_sae;
    if m == 0 {
        return Err(Error::invalid("the SAE has no latents"));
    }
    if let LatentChoice::Given(latents) = choice {
        if let Some(bad) = latents.iter().find(|&&l| l >= m) {
            return Err(Error::invalid(format!("latent {bad} does not exist: the SAE has {m} latents (0..={})", m - 1)));
        }
    }
    let special: Vec<u32> = model.tokenizer.special_ids().to_vec();
    let keep_of = |c: &[u32]| -> Vec<bool> { c.iter().enumerate().map(|(p, t)| p >= opts.skip_first && !special.contains(t)).collect() };
    let tracked = match choice {
        LatentChoice::Given(l) => Some(l.clone()),
        _ => None,
    };
    let mut first = FirstPass::new(m, opts.top, tracked.as_deref());
    let mut done = 0;
    for (g, group) in contexts.chunks(opts.batch_contexts.max(1)).enumerate() {
        let acts = encode_group(model, sae, hook, group)?;
        let mut row = 0;
        for (j, c) in group.iter().enumerate() {
            first.add_context(g * opts.batch_contexts.max(1) + j, &acts[row * m..(row + c.len()) * m], &keep_of(c));
            row += c.len();
        }
        done += group.len();
        progress(Pass::First, done);
    }
    let latents = first.choose(choice);
    let mut second = SecondPass::new(&first, &latents, opts);
    done = 0;
    for (g, group) in contexts.chunks(opts.batch_contexts.max(1)).enumerate() {
        let acts = encode_group(model, sae, hook, group)?;
        let mut row = 0;
        for (j, c) in group.iter().enumerate() {
            second.add_context(g * opts.batch_contexts.max(1) + j, c, &acts[row * m..(row + c.len()) * m], &keep_of(c));
            row += c.len();
        }
        done += group.len();
        progress(Pass::Second, done);
    }
    // W_dec · W_U only means "what the latent does to the logits" for a direction the latent adds
    // to the residual stream; elsewhere (MLP neurons, attention heads, normalised inputs) it would
    // need the weights in between, so no logit effects are given there.
    let config = &model.model.config;
    let logits = (config.has_unembed() && sae.d_in == config.d_model && writes_residual(hook)).then(|| logit_effects(model, sae, &latents, opts.logits, opts.hist_bins));
    let mut out = second.finish(&first);
    if let Some(effects) = logits {
        for (d, e) in out.iter_mut().zip(effects) {
            d.logits = Some(e);
        }
    }
    Ok(Dashboards {
        hook: hook.to_string(),
        d_sae: m,
        contexts: contexts.len(),
        context_len: contexts.iter().map(Vec::len).max().unwrap_or(0),
        tokens: first.tokens,
        dead: first.fired.iter().filter(|&&f| f == 0).count(),
        latents: out,
    })
}

/// The SAE's latents `[tokens, d_sae]` for a group of contexts, run only as deep as the hook.
fn encode_group(model: &LoadedModel, sae: &Sae, hook: &str, group: &[Vec<u32>]) -> Result<Vec<f32>> {
    let lm = |e: glassbox_lm::error::Error| Error::invalid(e.to_string());
    let batch = Batch::new(group);
    let mut hooks = Hooks::capture(&model.model.config, [hook]).map_err(lm)?;
    model.model.run_hooks(&batch, &mut hooks).map_err(lm)?;
    let x = hooks.take_cache().remove(hook).ok_or_else(|| Error::invalid(format!("hook {hook} gave no activations to read")))?;
    if x.row_len() != sae.d_in {
        return Err(Error::invalid(format!("the SAE reads {} values per token but hook {hook} has {} (shape {:?})", sae.d_in, x.row_len(), &x.shape[1..])));
    }
    Ok(sae.encode(&x.data, batch.n_tokens()))
}

/// Hooks whose activation is the residual stream or a direct write to it (TransformerLens names).
fn writes_residual(hook: &str) -> bool {
    ["hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out", "hook_embed", "hook_pos_embed"].iter().any(|h| hook == *h || hook.ends_with(&format!(".{h}")))
}

/// A top-context candidate; greater is better: a larger value, then an earlier context.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Candidate {
    value: f32,
    context: usize,
    position: usize,
}

impl Eq for Candidate {}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.value.total_cmp(&other.value).then(other.context.cmp(&self.context))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The first pass: firing counts and maxima of every latent, top-N contexts of the tracked ones
/// (all latents unless given).
pub struct FirstPass {
    m: usize,
    top: usize,
    pub tokens: u64,
    pub fired: Vec<u64>,
    pub max: Vec<f32>,
    /// Per latent, the worst kept candidate on top; `None` for latents not tracked.
    heaps: Vec<Option<BinaryHeap<Reverse<Candidate>>>>,
    context_max: Vec<(f32, usize)>,
    touched: Vec<usize>,
}

impl FirstPass {
    pub fn new(m: usize, top: usize, tracked: Option<&[usize]>) -> Self {
        let mut heaps: Vec<Option<BinaryHeap<Reverse<Candidate>>>> = vec![None; m];
        match tracked {
            Some(l) => l.iter().for_each(|&j| heaps[j] = Some(BinaryHeap::new())),
            None => heaps.iter_mut().for_each(|h| *h = Some(BinaryHeap::new())),
        }
        FirstPass { m, top, tokens: 0, fired: vec![0; m], max: vec![0.0; m], heaps, context_max: vec![(0.0, 0); m], touched: Vec::new() }
    }

    /// One context: its latents `[len, m]` and which positions count.
    pub fn add_context(&mut self, context: usize, acts: &[f32], keep: &[bool]) {
        for (p, row) in acts.chunks(self.m).enumerate().filter(|&(p, _)| keep[p]) {
            self.tokens += 1;
            for (j, &a) in row.iter().enumerate().filter(|&(_, &a)| a > 0.0) {
                self.fired[j] += 1;
                self.max[j] = self.max[j].max(a);
                let best = &mut self.context_max[j];
                if best.0 == 0.0 {
                    self.touched.push(j);
                }
                if a > best.0 {
                    *best = (a, p);
                }
            }
        }
        for j in self.touched.drain(..) {
            let (value, position) = std::mem::replace(&mut self.context_max[j], (0.0, 0));
            if let Some(heap) = &mut self.heaps[j] {
                push_bounded(heap, Candidate { value, context, position }, self.top);
            }
        }
    }

    /// The latents `choice` names, resolved with the firing counts.
    pub fn choose(&self, choice: &LatentChoice) -> Vec<usize> {
        let mut ranked: Vec<usize> = (0..self.m).filter(|&j| self.fired[j] > 0).collect();
        ranked.sort_by(|&a, &b| self.fired[b].cmp(&self.fired[a]).then(a.cmp(&b)));
        match choice {
            LatentChoice::Given(l) => l.clone(),
            LatentChoice::MostFrequent(n) => ranked.into_iter().take(*n).collect(),
            LatentChoice::Mix(n) => {
                let n = (*n).min(ranked.len());
                let head = n.div_ceil(2);
                let (rest, spread) = (&ranked[head..], n - head);
                let mut out = ranked[..head].to_vec();
                out.extend((0..spread).map(|i| rest[(2 * i + 1) * rest.len() / (2 * spread)]));
                out
            }
        }
    }

    /// Top candidates of latent `j`, best first.
    fn top_of(&self, j: usize) -> Vec<Candidate> {
        let mut c: Vec<Candidate> = self.heaps[j].as_ref().map(|h| h.iter().map(|r| r.0).collect()).unwrap_or_default();
        c.sort_by(|a, b| b.cmp(a));
        c
    }
}

fn push_bounded(heap: &mut BinaryHeap<Reverse<Candidate>>, c: Candidate, cap: usize) {
    if heap.len() < cap {
        heap.push(Reverse(c));
    } else if heap.peek().is_some_and(|w| c > w.0) {
        heap.pop();
        heap.push(Reverse(c));
    }
}

/// The interval (of `n` equal-width intervals (lo, hi] of (0, max]) that holds `a > 0`, judged
/// against the f32 edges `max · i / n` that the dashboards report.
pub fn interval_of(a: f32, max: f32, n: usize) -> usize {
    let edge = |i: usize| max * i as f32 / n as f32;
    let mut i = ((a as f64 / max as f64 * n as f64).ceil() as usize).clamp(1, n) - 1;
    if i > 0 && a <= edge(i) {
        i -= 1;
    } else if i + 1 < n && a > edge(i + 1) {
        i += 1;
    }
    i
}

/// A pseudo-random key in [0, 2⁶⁴) for an event (splitmix64 of its coordinates).
pub fn sample_key(seed: u64, latent: usize, context: usize, position: usize) -> u64 {
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    mix(mix(mix(mix(seed) ^ latent as u64) ^ context as u64) ^ position as u64)
}

struct LatentState {
    latent: usize,
    max: f32,
    hist: Vec<u64>,
    interval_counts: Vec<u64>,
    /// Per interval, (key, window) with the smallest keys, sorted by key.
    samples: Vec<Vec<(u64, Window)>>,
    top: Vec<Candidate>,
    top_windows: Vec<Option<Window>>,
}

/// The second pass over the chosen latents.
pub struct SecondPass {
    opts: DashboardOptions,
    states: Vec<LatentState>,
    /// Context → (state, top index) whose windows it holds.
    wanted: HashMap<usize, Vec<(usize, usize)>>,
    m: usize,
}

impl SecondPass {
    pub fn new(first: &FirstPass, latents: &[usize], opts: &DashboardOptions) -> Self {
        let mut wanted: HashMap<usize, Vec<(usize, usize)>> = HashMap::new();
        let states = latents
            .iter()
            .enumerate()
            .map(|(s, &j)| {
                let top = first.top_of(j);
                for (t, c) in top.iter().enumerate() {
                    wanted.entry(c.context).or_default().push((s, t));
                }
                LatentState {
                    latent: j,
                    max: first.max[j],
                    hist: vec![0; opts.hist_bins.max(1)],
                    interval_counts: vec![0; opts.intervals.max(1)],
                    samples: vec![Vec::new(); opts.intervals.max(1)],
                    top_windows: vec![None; top.len()],
                    top,
                }
            })
            .collect();
        SecondPass { opts: opts.clone(), states, wanted, m: first.m }
    }

    pub fn add_context(&mut self, context: usize, tokens: &[u32], acts: &[f32], keep: &[bool]) {
        let (m, o) = (self.m, &self.opts);
        let window = |j: usize, p: usize| {
            let (start, end) = (p.saturating_sub(o.before), p.saturating_add(o.after).saturating_add(1).min(tokens.len()));
            Window {
                context,
                position: p,
                value: acts[p * m + j],
                qualifying: p - start,
                tokens: tokens[start..end].to_vec(),
                values: (start..end).map(|q| if keep[q] { acts[q * m + j] } else { 0.0 }).collect(),
            }
        };
        for &(s, t) in self.wanted.get(&context).into_iter().flatten() {
            let st = &mut self.states[s];
            st.top_windows[t] = Some(window(st.latent, st.top[t].position));
        }
        for st in &mut self.states {
            let j = st.latent;
            for p in (0..tokens.len()).filter(|&p| keep[p]) {
                let a = acts[p * m + j];
                if a <= 0.0 {
                    continue;
                }
                let bins = st.hist.len();
                st.hist[interval_of(a, st.max, bins)] += 1;
                let i = interval_of(a, st.max, st.interval_counts.len());
                st.interval_counts[i] += 1;
                let key = sample_key(o.seed, j, context, p);
                let kept = &mut st.samples[i];
                if kept.len() < o.per_interval || kept.last().is_some_and(|l| key < l.0) {
                    let at = kept.partition_point(|e| e.0 < key);
                    kept.insert(at, (key, window(j, p)));
                    kept.truncate(o.per_interval);
                }
            }
        }
    }

    /// The dashboards, without logit effects.
    pub fn finish(self, first: &FirstPass) -> Vec<LatentDashboard> {
        let tokens = first.tokens.max(1) as f64;
        self.states
            .into_iter()
            .map(|st| {
                let fired = first.fired[st.latent];
                let n = st.interval_counts.len() as f32;
                let intervals = st
                    .interval_counts
                    .iter()
                    .zip(st.samples)
                    .enumerate()
                    .map(|(i, (&count, samples))| Interval {
                        low: st.max * i as f32 / n,
                        high: st.max * (i + 1) as f32 / n,
                        count,
                        fraction: count as f64 / fired.max(1) as f64,
                        samples: samples.into_iter().map(|(_, w)| w).collect(),
                    })
                    .collect();
                LatentDashboard {
                    latent: st.latent,
                    max: st.max,
                    fired,
                    frac_nonzero: fired as f64 / tokens,
                    top: st.top_windows.into_iter().flatten().collect(),
                    intervals,
                    activations: Histogram { low: 0.0, high: st.max, counts: st.hist },
                    logits: None,
                }
            })
            .collect()
    }
}

/// The tokens a latent's decoder direction promotes and suppresses: W_dec[f] · W_U, as
/// SAEDashboard computes it on TransformerLens's folded model. The final norm's weight is applied
/// (fold_ln folds it into W_U) and, for LayerNorm, its centring, which is linear; its division by
/// the token's scale and its bias are not: the scale depends on the whole residual stream, not on
/// the direction, and divides every logit alike, so it changes no ranking; the bias does not move
/// with the latent. An unembedding bias is left out for the same reason. The effects are then
/// centred over the vocabulary, as TransformerLens's default `center_unembed` centres W_U (softmax
/// ignores a shift shared by every token), so the values match SAEDashboard's. For TopK SAEs that
/// rescale by the decoder norm, the direction is the decoder row over its norm: what one unit of
/// activation adds to the residual stream.
fn logit_effects(model: &LoadedModel, sae: &Sae, latents: &[usize], n: usize, bins: usize) -> Vec<LogitEffects> {
    let (config, weights) = (&model.model.config, &model.model.weights);
    let d = sae.d_in;
    let unit = matches!(sae.architecture, Architecture::TopK { rescale_acts_by_decoder_norm: true, .. });
    let norms = sae.decoder_norms();
    let mut rows: Vec<f32> = Vec::with_capacity((latents.len() + 1) * d);
    for &j in latents {
        let mut v: Vec<f32> = sae.w_dec[j * d..(j + 1) * d].to_vec();
        if unit && norms[j] > 0.0 {
            v.iter_mut().for_each(|x| *x /= norms[j]);
        }
        if let Some(norm) = &weights.final_norm {
            if config.norm == NormKind::LayerNorm {
                let mean = v.iter().map(|&x| x as f64).sum::<f64>() / d as f64;
                v.iter_mut().for_each(|x| *x -= mean as f32);
            }
            v.iter_mut().zip(&norm.weight).for_each(|(x, g)| *x *= g);
        }
        rows.extend(v);
    }
    rows.extend(std::iter::repeat_n(0.0, d));
    let logits = model.model.unembed(&rows);
    let vocab = logits.len() / (latents.len() + 1);
    let bias = &logits[latents.len() * vocab..];
    logits
        .chunks(vocab)
        .take(latents.len())
        .map(|row| {
            let mut effect: Vec<f32> = row.iter().zip(bias).map(|(l, b)| l - b).collect();
            let mean = effect.iter().map(|&e| e as f64).sum::<f64>() / vocab as f64;
            effect.iter_mut().for_each(|e| *e -= mean as f32);
            let mut order: Vec<u32> = (0..vocab as u32).collect();
            order.sort_by(|&a, &b| effect[b as usize].total_cmp(&effect[a as usize]).then(a.cmp(&b)));
            let top = order.iter().take(n).map(|&t| (t, effect[t as usize])).collect();
            let bottom = order.iter().rev().take(n).map(|&t| (t, effect[t as usize])).collect();
            LogitEffects { top, bottom, histogram: histogram(&effect, bins) }
        })
        .collect()
}

/// `bins` equal bins over [min, max] of `values`.
fn histogram(values: &[f32], bins: usize) -> Histogram {
    let bins = bins.max(1);
    let (low, high) = values.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    let mut counts = vec![0u64; bins];
    let width = (high - low) as f64;
    for &v in values {
        let i = if width > 0.0 { (((v - low) as f64 / width) * bins as f64) as usize } else { 0 };
        counts[i.min(bins - 1)] += 1;
    }
    Histogram { low, high, counts }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_equal_width_and_closed_above() {
        // (0, 0.1], (0.1, 0.2], ..., (0.9, 1].
        assert_eq!(interval_of(0.05, 1.0, 10), 0);
        assert_eq!(interval_of(0.1, 1.0, 10), 0);
        assert_eq!(interval_of(0.25, 1.0, 10), 2);
        assert_eq!(interval_of(0.5, 1.0, 10), 4);
        assert_eq!(interval_of(1.0, 1.0, 10), 9);
        assert_eq!(interval_of(3.0, 4.0, 2), 1);
        assert_eq!(interval_of(1e-9, 4.0, 2), 0);
    }

    #[test]
    fn the_mix_takes_the_most_frequent_half_and_spreads_the_rest() {
        let mut first = FirstPass::new(8, 2, None);
        // Latent j fires on 7 − j of 7 tokens; latent 7 never fires.
        let mut acts = vec![0f32; 7 * 8];
        for p in 0..7 {
            for j in 0..(7 - p) {
                acts[p * 8 + j] = 1.0;
            }
        }
        first.add_context(0, &acts, &[true; 7]);
        assert_eq!(first.fired, vec![7, 6, 5, 4, 3, 2, 1, 0]);
        assert_eq!(first.choose(&LatentChoice::MostFrequent(3)), vec![0, 1, 2]);
        // Head 0, 1; then the remaining ranking 2..=6 spread over 2 picks: positions 1 and 3.
        assert_eq!(first.choose(&LatentChoice::Mix(4)), vec![0, 1, 3, 5]);
        assert_eq!(first.choose(&LatentChoice::Mix(20)).len(), 7);
    }

    #[test]
    fn histograms_cover_min_to_max() {
        let h = histogram(&[-1.0, 0.0, 0.5, 1.0], 4);
        assert_eq!((h.low, h.high, h.counts), (-1.0, 1.0, vec![1, 0, 1, 2]));
    }
}
