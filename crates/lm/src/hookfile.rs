//! The file `glassbox lm run` writes: one F32 tensor per hook, named by the hook, with the
//! prompts' positions concatenated along the first axis, plus `tokens` and `offsets`.
//! Attention scores and patterns are `[query tokens, heads, max key length]`, zero-padded to the
//! longest prompt of the whole file.

use crate::error::{Error, Result};
use crate::hooks::{is_attention_map, HookTensor};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Hook tensors gathered batch by batch.
#[derive(Debug, Default)]
pub struct HookFile {
    hooks: BTreeMap<String, Vec<HookTensor>>,
    tokens: Vec<i64>,
    offsets: Vec<i64>,
}

impl HookFile {
    pub fn new() -> Self {
        HookFile { offsets: vec![0], ..Default::default() }
    }

    /// Add one batch: its prompts' token sequences and the hooks captured for them.
    pub fn push(&mut self, sequences: &[Vec<u32>], cache: BTreeMap<String, HookTensor>) {
        for s in sequences {
            self.tokens.extend(s.iter().map(|&t| t as i64));
            self.offsets.push(self.tokens.len() as i64);
        }
        for (name, t) in cache {
            self.hooks.entry(name).or_default().push(t);
        }
    }

    /// One tensor per hook, batches concatenated (attention maps padded to the longest prompt).
    fn concatenated(&self) -> BTreeMap<String, HookTensor> {
        let max_len = self.offsets.windows(2).map(|w| (w[1] - w[0]) as usize).max().unwrap_or(0);
        self.hooks
            .iter()
            .map(|(name, parts)| {
                let mut shape = parts[0].shape.clone();
                shape[0] = parts.iter().map(|p| p.shape[0]).sum();
                let mut data = Vec::new();
                if is_attention_map(name) {
                    shape[2] = max_len;
                    for p in parts {
                        for row in p.data.chunks(p.shape[2].max(1)) {
                            data.extend_from_slice(row);
                            data.extend(std::iter::repeat_n(0f32, max_len - row.len()));
                        }
                    }
                } else {
                    parts.iter().for_each(|p| data.extend_from_slice(&p.data));
                }
                (name.clone(), HookTensor { shape, data })
            })
            .collect()
    }

    /// Write the file atomically.
    pub fn write(&self, path: &Path, metadata: HashMap<String, String>) -> Result<()> {
        let hooks = self.concatenated();
        let bytes_of_f32 = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let bytes_of_i64 = |v: &[i64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let mut buffers: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = hooks
            .iter()
            .map(|(name, t)| (name.clone(), Dtype::F32, t.shape.clone(), bytes_of_f32(&t.data)))
            .collect();
        buffers.push(("tokens".into(), Dtype::I64, vec![self.tokens.len()], bytes_of_i64(&self.tokens)));
        buffers.push(("offsets".into(), Dtype::I64, vec![self.offsets.len()], bytes_of_i64(&self.offsets)));
        let views = buffers
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                TensorView::new(*dtype, shape.clone(), bytes)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| Error::format(path, format!("tensor {name}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let bytes = safetensors::serialize(views, Some(metadata))
            .map_err(|e| Error::format(path, format!("cannot serialise: {e}")))?;
        glassbox_core::io::write_atomic(path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attention_maps_are_padded_to_the_longest_prompt_of_the_file() {
        let mut f = HookFile::new();
        let pat = |q: usize, k: usize| HookTensor { shape: vec![q, 1, k], data: vec![1.0; q * k] };
        f.push(&[vec![5, 6]], BTreeMap::from([("blocks.0.attn.hook_pattern".to_string(), pat(2, 2))]));
        f.push(&[vec![7, 8, 9]], BTreeMap::from([("blocks.0.attn.hook_pattern".to_string(), pat(3, 3))]));
        let all = f.concatenated();
        let t = &all["blocks.0.attn.hook_pattern"];
        assert_eq!(t.shape, vec![5, 1, 3]);
        assert_eq!(&t.data[..6], &[1.0, 1.0, 0.0, 1.0, 1.0, 0.0]);
        assert_eq!(f.offsets, vec![0, 2, 5]);
    }
}
