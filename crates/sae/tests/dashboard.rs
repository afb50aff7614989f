//! Feature dashboards on the tiny GPT-2 fixture, checked against a brute-force computation over
//! every token's activation: top contexts and their windows, interval counts and samples,
//! density and histogram, logit effects, and the Neuronpedia export.

use glassbox_lm::{Batch, Hooks, LoadedModel};
use glassbox_sae::dashboard::{collect, interval_of, sample_key, DashboardOptions, LatentChoice};
use glassbox_sae::dashboard_export::neuronpedia_feature;
use glassbox_sae::saelens::{Architecture, Sae};
use serde_json::Map;
use std::path::Path;

const HOOK: &str = "blocks.0.hook_resid_post";

fn tiny_gpt2() -> LoadedModel {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lm/tests/fixtures/tiny-gpt2");
    glassbox_lm::load(dir.to_str().unwrap()).unwrap()
}

/// d_sae = 2·d: latents relu(x_i − 0.3) and relu(−x_i − 0.3) (sparser than plain ReLU).
fn sae(d: usize) -> Sae {
    let m = 2 * d;
    let mut w_enc = vec![0f32; d * m];
    let mut w_dec = vec![0f32; m * d];
    for i in 0..d {
        w_enc[i * m + i] = 1.0;
        w_enc[i * m + d + i] = -1.0;
        w_dec[i * d + i] = 1.0;
        w_dec[(d + i) * d + i] = -1.0;
        // A second component makes the direction not a plain basis vector.
        w_dec[i * d + (i + 1) % d] = 0.5;
    }
    Sae { architecture: Architecture::Standard, d_in: d, d_sae: m, w_enc, b_enc: vec![-0.3; m], w_dec, b_dec: vec![0.0; d], apply_b_dec_to_input: false, metadata: Map::new() }
}

/// 9 contexts of 24 tokens; token 0 (the fixture's BOS/EOS) appears in one, and must be left out.
fn contexts() -> Vec<Vec<u32>> {
    let mut c: Vec<Vec<u32>> = (0..9).map(|c| (0..24).map(|i| ((c * 53 + i * 17 + i * i * 3) % 500 + 5) as u32).collect()).collect();
    c[4][7] = 0;
    c
}

/// Every token's latents, one context per forward pass (a different batching from `collect`'s).
fn brute_acts(m: &LoadedModel, sae: &Sae, ctxs: &[Vec<u32>]) -> Vec<Vec<f32>> {
    ctxs.iter()
        .map(|c| {
            let mut hooks = Hooks::capture(&m.model.config, [HOOK]).unwrap();
            m.model.forward(&Batch::new(std::slice::from_ref(c)), &mut hooks, glassbox_lm::Logits::None).unwrap();
            let x = hooks.take_cache().remove(HOOK).unwrap();
            sae.encode(&x.data, c.len())
        })
        .collect()
}

fn keep(c: &[u32], p: usize, skip_first: usize) -> bool {
    p >= skip_first && c[p] != 0
}

fn opts() -> DashboardOptions {
    DashboardOptions { top: 4, per_interval: 3, before: 3, after: 2, hist_bins: 7, batch_contexts: 2, skip_first: 1, seed: 9, ..DashboardOptions::default() }
}

#[test]
fn dashboards_match_a_brute_force_computation() {
    let model = tiny_gpt2();
    let d = model.model.config.d_model;
    let sae = sae(d);
    let ctxs = contexts();
    let o = opts();
    let acts = brute_acts(&model, &sae, &ctxs);
    let m = sae.d_sae;
    let latents = vec![5, d + 9, 17, 40];
    let dash = collect(&model, &sae, HOOK, &ctxs, &LatentChoice::Given(latents.clone()), &o, |_, _| {}).unwrap();
    let kept_tokens: usize = ctxs.iter().map(|c| (0..c.len()).filter(|&p| keep(c, p, 1)).count()).sum();
    assert_eq!(kept_tokens, 9 * 23 - 1);
    assert_eq!(dash.tokens as usize, kept_tokens);
    assert_eq!(dash.latents.iter().map(|l| l.latent).collect::<Vec<_>>(), latents);
    let close = |a: f32, b: f32| (a - b).abs() <= 1e-4 * (1.0 + b.abs());
    for l in &dash.latents {
        let j = l.latent;
        let events: Vec<(usize, usize, f32)> = ctxs
            .iter()
            .enumerate()
            .flat_map(|(c, ctx)| (0..ctx.len()).filter(|&p| keep(ctx, p, 1)).map(move |p| (c, p)))
            .map(|(c, p)| (c, p, acts[c][p * m + j]))
            .filter(|e| e.2 > 0.0)
            .collect();
        assert!(events.len() > 10, "latent {j} fires on {} tokens: pick a livelier one", events.len());
        // Density.
        assert_eq!(l.fired as usize, events.len());
        assert!((l.frac_nonzero - events.len() as f64 / kept_tokens as f64).abs() < 1e-12);
        let max = events.iter().map(|e| e.2).fold(0.0, f32::max);
        assert!(close(l.max, max), "latent {j}: max {} vs {max}", l.max);
        assert_eq!(l.activations.counts.iter().sum::<u64>() as usize, events.len());
        // Top contexts: each context's first maximum, by value then context.
        let mut per_ctx: Vec<(usize, usize, f32)> = (0..ctxs.len())
            .filter_map(|c| events.iter().filter(|e| e.0 == c).fold(None, |best: Option<(usize, usize, f32)>, e| if best.is_none_or(|b| e.2 > b.2) { Some(*e) } else { best }))
            .collect();
        per_ctx.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
        per_ctx.truncate(o.top);
        assert_eq!(l.top.len(), per_ctx.len());
        for (w, &(c, p, v)) in l.top.iter().zip(&per_ctx) {
            assert_eq!((w.context, w.position), (c, p), "latent {j}");
            assert!(close(w.value, v));
            let start = p.saturating_sub(o.before);
            let end = (p + o.after + 1).min(ctxs[c].len());
            assert_eq!(w.tokens, ctxs[c][start..end]);
            assert_eq!(w.qualifying, p - start);
            for (q, &wv) in (start..end).zip(&w.values) {
                let want = if keep(&ctxs[c], q, 1) { acts[c][q * m + j] } else { 0.0 };
                assert!(close(wv, want), "latent {j} context {c} position {q}: {wv} vs {want}");
            }
        }
        // Intervals: equal widths of (0, max], counts by definition, samples the smallest keys.
        assert_eq!(l.intervals.len(), 10);
        for (i, iv) in l.intervals.iter().enumerate() {
            assert!(close(iv.low, max * i as f32 / 10.0) && close(iv.high, max * (i + 1) as f32 / 10.0));
            let mut inside: Vec<&(usize, usize, f32)> = events.iter().filter(|e| e.2 > iv.low && e.2 <= iv.high).collect();
            assert_eq!(iv.count as usize, inside.len(), "latent {j} interval {i}");
            assert!((iv.fraction - inside.len() as f64 / events.len() as f64).abs() < 1e-12);
            inside.sort_by_key(|e| sample_key(o.seed, j, e.0, e.1));
            let want: Vec<(usize, usize)> = inside.iter().take(o.per_interval).map(|e| (e.0, e.1)).collect();
            assert_eq!(iv.samples.iter().map(|w| (w.context, w.position)).collect::<Vec<_>>(), want, "latent {j} interval {i}");
        }
        // The top context is in the last interval.
        assert_eq!(interval_of(l.top[0].value, l.max, 10), 9);
    }
}

#[test]
fn all_latent_choices_agree_and_logit_effects_follow_the_decoder() {
    let model = tiny_gpt2();
    let d = model.model.config.d_model;
    let sae = sae(d);
    let ctxs = contexts();
    let o = opts();
    let mix = collect(&model, &sae, HOOK, &ctxs, &LatentChoice::Mix(6), &o, |_, _| {}).unwrap();
    assert_eq!(mix.latents.len(), 6);
    let firing: Vec<u64> = mix.latents.iter().map(|l| l.fired).collect();
    assert!(firing[0] >= firing[1] && firing[1] >= firing[2] && firing[2] >= firing[3], "{firing:?}");
    // Tracking only the given latents gives the same dashboards as tracking all of them.
    let given: Vec<usize> = mix.latents.iter().map(|l| l.latent).collect();
    let again = collect(&model, &sae, HOOK, &ctxs, &LatentChoice::Given(given), &o, |_, _| {}).unwrap();
    assert_eq!(again.latents, mix.latents);
    let top = collect(&model, &sae, HOOK, &ctxs, &LatentChoice::MostFrequent(3), &o, |_, _| {}).unwrap();
    assert_eq!(top.latents[..], mix.latents[..3]);

    // Logit effects by hand: (v − mean v) ⊙ γ_final · W_E[t] (GPT-2 ties W_U to the embedding),
    // less its mean over the vocabulary.
    let w = &model.model.weights;
    let gamma = &w.final_norm.as_ref().unwrap().weight;
    for l in &mix.latents {
        let v = &sae.w_dec[l.latent * d..(l.latent + 1) * d];
        let mean = v.iter().sum::<f32>() / d as f32;
        let u: Vec<f32> = v.iter().zip(gamma).map(|(x, g)| (x - mean) * g).collect();
        let raw: Vec<f32> = w.token_embed.chunks(d).map(|e| e.iter().zip(&u).map(|(a, b)| a * b).sum()).collect();
        let vocab_mean = raw.iter().sum::<f32>() / raw.len() as f32;
        let effect: Vec<f32> = raw.iter().map(|r| r - vocab_mean).collect();
        let lg = l.logits.as_ref().unwrap();
        let best = (0..effect.len()).max_by(|&a, &b| effect[a].total_cmp(&effect[b])).unwrap();
        let worst = (0..effect.len()).min_by(|&a, &b| effect[a].total_cmp(&effect[b])).unwrap();
        assert_eq!(lg.top[0].0 as usize, best);
        assert_eq!(lg.bottom[0].0 as usize, worst);
        // Every listed value (the vocabulary means here are 5e-4 to 5e-3, so the centring is checked).
        assert!(lg.top.iter().chain(&lg.bottom).all(|&(t, v)| (v - effect[t as usize]).abs() < 1e-4), "latent {}", l.latent);
        assert_eq!(lg.top.len(), 10);
        assert!(lg.top.windows(2).all(|p| p[0].1 >= p[1].1) && lg.bottom.windows(2).all(|p| p[0].1 <= p[1].1));
        assert_eq!(lg.histogram.counts.iter().sum::<u64>(), 512);
    }

    // The Neuronpedia record of a latent: top activations first (bin_min −1), then intervals.
    let l = &mix.latents[0];
    let np = neuronpedia_feature(
        l,
        &mix,
        &model.tokenizer,
        &glassbox_sae::dashboard_export::NeuronpediaSource { model_id: "tiny".into(), layer: 0, sae_set: "s".into(), dataset: "d".into() },
    );
    let acts = np["activations"].as_array().unwrap();
    assert_eq!(acts.len(), l.top.len() + l.intervals.iter().map(|i| i.samples.len()).sum::<usize>());
    assert_eq!(acts[0]["bin_min"], -1.0);
    assert_eq!(acts[0]["tokens"].as_array().unwrap().len(), acts[0]["values"].as_array().unwrap().len());
    assert_eq!(acts[0]["qualifying_token_index"], l.top[0].qualifying);
    assert_eq!(np["feature_index"], l.latent);
    assert_eq!(np["pos_str"].as_array().unwrap().len(), 10);
    assert_eq!(np["freq_hist_data_bar_values"].as_array().unwrap().len(), np["freq_hist_data_bar_heights"].as_array().unwrap().len());
    assert_eq!(np["n_prompts_total"], 9);
}

#[test]
fn a_latent_outside_the_sae_is_refused() {
    let model = tiny_gpt2();
    let sae = sae(model.model.config.d_model);
    let err = collect(&model, &sae, HOOK, &contexts(), &LatentChoice::Given(vec![3, 128]), &opts(), |_, _| {}).unwrap_err().to_string();
    assert!(err.contains("latent 128") && err.contains("128 latents"), "{err}");
}

#[test]
fn logit_effects_are_given_only_for_directions_in_the_residual_stream() {
    let model = tiny_gpt2();
    let c = &model.model.config;
    // An SAE on the MLP's hidden units: its decoder rows are not residual directions (and have
    // another width), so W_dec · W_U is meaningless there.
    let mlp = "blocks.0.mlp.hook_post";
    let wide = collect(&model, &sae(c.d_mlp), mlp, &contexts(), &LatentChoice::Given(vec![1]), &opts(), |_, _| {}).unwrap();
    assert!(wide.latents[0].logits.is_none());
    // The normalised input of attention is as wide as the residual stream but is not written to it.
    let ln = "blocks.0.ln1.hook_normalized";
    let normed = collect(&model, &sae(c.d_model), ln, &contexts(), &LatentChoice::Given(vec![1]), &opts(), |_, _| {}).unwrap();
    assert!(normed.latents[0].logits.is_none());
    let resid = collect(&model, &sae(c.d_model), HOOK, &contexts(), &LatentChoice::Given(vec![1]), &opts(), |_, _| {}).unwrap();
    assert!(resid.latents[0].logits.is_some());
}
