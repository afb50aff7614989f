//! Activations of one hook computed as training needs them, without writing a store: contexts
//! run through the model a few at a time, their rows go into a bounded buffer, and batches are
//! drawn from it uniformly (SAELens's streaming activation store).

use crate::error::{Error, Result};
use crate::store::{draw_row, Context};
use crate::{Batch, Hooks, Transformer};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Iterator over shuffled batches of one hook's rows, computed by the model on `contexts`.
pub struct ModelStream<'a> {
    model: &'a Transformer,
    hooks: Hooks,
    hook: String,
    d: usize,
    contexts: &'a [Context],
    /// Context reading order (shuffled) and how many of it have been run.
    order: Vec<usize>,
    read: usize,
    batch_contexts: usize,
    batch_rows: usize,
    capacity_rows: usize,
    buffer: Vec<f32>,
    rng: ChaCha8Rng,
    excluded: Vec<u32>,
    skip_first: usize,
    done: bool,
}

impl<'a> ModelStream<'a> {
    /// Batches of `batch_rows` rows of `hook`, drawn from a buffer of at most `buffer_rows`
    /// rows (plus one model batch) that is refilled `batch_contexts` contexts at a time, the
    /// contexts taken in an order shuffled by `seed`.
    pub fn new(model: &'a Transformer, hook: &str, contexts: &'a [Context], batch_rows: usize, buffer_rows: usize, batch_contexts: usize, seed: u64) -> Result<Self> {
        if batch_rows == 0 || batch_contexts == 0 {
            return Err(Error::invalid(format!("a model stream needs batch_rows ≥ 1 and batch_contexts ≥ 1 (got {batch_rows} and {batch_contexts})")));
        }
        let hooks = Hooks::capture(&model.config, [hook])?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut order: Vec<usize> = (0..contexts.len()).collect();
        order.shuffle(&mut rng);
        Ok(ModelStream {
            model,
            hooks,
            hook: hook.to_string(),
            d: 0,
            contexts,
            order,
            read: 0,
            batch_contexts,
            batch_rows,
            capacity_rows: buffer_rows.max(batch_rows),
            buffer: Vec::new(),
            rng,
            excluded: Vec::new(),
            skip_first: 0,
            done: false,
        })
    }

    /// Skip the rows of these tokens (special tokens).
    pub fn excluding_tokens(mut self, ids: &[u32]) -> Self {
        self.excluded = ids.to_vec();
        self
    }

    /// Skip the first `n` positions of every context.
    pub fn skipping_first_positions(mut self, n: usize) -> Self {
        self.skip_first = n;
        self
    }

    /// Start after the first `n` contexts of the reading order (to continue an interrupted run).
    pub fn starting_after(mut self, n: usize) -> Self {
        self.read = n.min(self.order.len());
        self
    }

    /// Contexts of the reading order run so far (their rows drawn or still buffered).
    pub fn contexts_read(&self) -> usize {
        self.read
    }

    /// Runs the next contexts until the buffer holds `capacity_rows` rows or none are left.
    fn refill(&mut self) -> Result<()> {
        while self.read < self.order.len() && (self.d == 0 || self.buffer.len() / self.d < self.capacity_rows) {
            let group: Vec<&Context> = self.order[self.read..(self.read + self.batch_contexts).min(self.order.len())].iter().map(|&i| &self.contexts[i]).collect();
            let seqs: Vec<Vec<u32>> = group.iter().map(|c| c.tokens.clone()).collect();
            self.model.run_hooks(&Batch::new(&seqs), &mut self.hooks)?;
            let cache = self.hooks.take_cache();
            let t = &cache[&self.hook];
            self.d = t.row_len();
            let mut rows = t.data.chunks(self.d);
            for c in &group {
                for (pos, (&token, row)) in c.tokens.iter().zip(rows.by_ref()).enumerate() {
                    if pos >= self.skip_first && !self.excluded.contains(&token) {
                        self.buffer.extend_from_slice(row);
                    }
                }
            }
            self.read += group.len();
        }
        Ok(())
    }
}

impl Iterator for ModelStream<'_> {
    type Item = Result<Vec<f32>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut batch = Vec::new();
        while self.d == 0 || batch.len() < self.batch_rows * self.d {
            // Refill only when the buffer is down to half, so that most draws come from a
            // full buffer and the model runs in runs of several batches.
            if self.d == 0 || self.buffer.len() / self.d <= self.capacity_rows / 2 {
                if let Err(e) = self.refill() {
                    self.done = true;
                    return Some(Err(e));
                }
            }
            if self.buffer.is_empty() {
                break;
            }
            draw_row(&mut self.buffer, self.d, &mut self.rng, &mut batch);
        }
        if batch.is_empty() {
            self.done = true;
            return None;
        }
        Some(Ok(batch))
    }
}
