//! Text continuation with a key/value cache: greedy, or sampled with temperature and top-p.

use crate::error::{Error, Result};
use crate::hooks::Hooks;
use crate::model::{KvCache, Logits, Transformer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    /// 0 means greedy (the most likely token, the first on ties, as `argmax`).
    pub temperature: f32,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p`.
    pub top_p: f32,
    pub seed: u64,
}

impl Sampling {
    pub const GREEDY: Sampling = Sampling { temperature: 0.0, top_p: 1.0, seed: 0 };
}

/// Continue `prompt` by up to `max_new` tokens, stopping after `stop` if given. `hooks` apply at
/// every step (steering a generation); `on_token` sees each new token as it is chosen.
pub fn generate(
    model: &Transformer,
    prompt: &[u32],
    max_new: usize,
    sampling: Sampling,
    stop: Option<u32>,
    hooks: &mut Hooks,
    mut on_token: impl FnMut(u32),
) -> Result<Vec<u32>> {
    if prompt.is_empty() {
        return Err(Error::invalid("the prompt has no tokens"));
    }
    if !(sampling.temperature >= 0.0 && sampling.top_p > 0.0 && sampling.top_p <= 1.0) {
        return Err(Error::invalid(format!(
            "temperature must be >= 0 and top-p in (0, 1] (got {} and {})",
            sampling.temperature, sampling.top_p
        )));
    }
    let room = model.config.max_positions.saturating_sub(prompt.len());
    let max_new = max_new.min(room);
    let mut rng = ChaCha8Rng::seed_from_u64(sampling.seed);
    let mut cache = KvCache::new(&model.config);
    let mut out = Vec::with_capacity(max_new);
    let mut input = prompt.to_vec();
    while out.len() < max_new {
        let step = model.forward_cached(&input, &mut cache, hooks, Logits::Last)?;
        hooks.take_cache();
        let logits = step.logits.ok_or_else(|| Error::invalid("this model has no unembedding to generate with"))?;
        let next = choose(&logits, sampling, &mut rng);
        out.push(next);
        on_token(next);
        if Some(next) == stop {
            break;
        }
        input = vec![next];
    }
    Ok(out)
}

fn choose(logits: &[f32], s: Sampling, rng: &mut ChaCha8Rng) -> u32 {
    if s.temperature == 0.0 {
        let mut best = 0;
        for (i, &v) in logits.iter().enumerate() {
            if v > logits[best] {
                best = i;
            }
        }
        return best as u32;
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let mut probs: Vec<(usize, f64)> =
        logits.iter().enumerate().map(|(i, &v)| (i, ((v as f64 - max) / s.temperature as f64).exp())).collect();
    let total: f64 = probs.iter().map(|p| p.1).sum();
    probs.iter_mut().for_each(|p| p.1 /= total);
    probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut kept = 0.0;
    let mut n = 0;
    while n < probs.len() && (n == 0 || kept < s.top_p as f64) {
        kept += probs[n].1;
        n += 1;
    }
    let mut u = rng.random::<f64>() * kept;
    for &(i, p) in &probs[..n] {
        if u < p {
            return i as u32;
        }
        u -= p;
    }
    probs[n - 1].0 as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_first_maximum_and_top_p_keeps_the_head() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert_eq!(choose(&[0.0, 2.0, 2.0, 1.0], Sampling::GREEDY, &mut rng), 1);
        // One token holds almost all the mass: top-p 0.5 keeps only it.
        let s = Sampling { temperature: 1.0, top_p: 0.5, seed: 0 };
        for _ in 0..20 {
            assert_eq!(choose(&[0.0, 10.0, 0.0], s, &mut rng), 1);
        }
        // With top-p 1 and equal logits every token is drawn sometimes.
        let s = Sampling { temperature: 1.0, top_p: 1.0, seed: 0 };
        let mut seen = [false; 3];
        for _ in 0..200 {
            seen[choose(&[0.0, 0.0, 0.0], s, &mut rng) as usize] = true;
        }
        assert_eq!(seen, [true; 3]);
    }
}
