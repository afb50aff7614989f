//! A language model opened by glassbox: tokenizer, forward pass with hooks and interventions,
//! greedy or sampled generation. The Python layer (glassbox/model.py) shapes the results as
//! TransformerLens does; here every activation is `[tokens, ...]`, prompts one after another.

use crate::arrays::{f32_out, F32In};
use crate::errors::IntoPyResult;
use glassbox_lm::generate::{generate, Sampling};
use glassbox_lm::hooks::{hook_names, HookFn};
use glassbox_lm::{Batch, HookTensor, Hooks, Intervention, LoadedModel, Logits};
use numpy::PyArrayDyn;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::sync::{Arc, Mutex};

/// A transformer opened from a Hugging Face folder or cache id, a GGUF file or a glassbox
/// language-model checkpoint.
#[pyclass(frozen, module = "glassbox._glassbox")]
pub struct LanguageModel {
    inner: LoadedModel,
}

#[pymethods]
impl LanguageModel {
    /// Open `source`: a model folder, a `.gguf` file or an `ORG/NAME` id in the local Hugging
    /// Face cache. Nothing is downloaded.
    #[staticmethod]
    fn load(py: Python<'_>, source: &str) -> PyResult<Self> {
        let inner = py.detach(|| glassbox_lm::load(source)).py()?;
        Ok(LanguageModel { inner })
    }

    /// The architecture as a dict (TransformerLens's `cfg` names where they exist).
    #[getter]
    fn cfg<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = &self.inner.model.config;
        let d = PyDict::new(py);
        d.set_item("family", c.family.name())?;
        d.set_item("architecture", &c.architecture)?;
        d.set_item("n_layers", c.n_layers)?;
        d.set_item("d_model", c.d_model)?;
        d.set_item("n_heads", c.n_heads)?;
        d.set_item("n_key_value_heads", c.n_kv_heads)?;
        d.set_item("d_head", c.d_head)?;
        d.set_item("d_mlp", c.d_mlp)?;
        d.set_item("d_vocab", c.vocab_size)?;
        d.set_item("n_ctx", c.max_positions)?;
        d.set_item("normalization_type", format!("{:?}", c.norm))?;
        d.set_item("eps", c.norm_eps)?;
        d.set_item("act_fn", format!("{:?}", c.activation))?;
        d.set_item("rotary_base", c.rope_theta)?;
        d.set_item("gated_mlp", c.gated_mlp)?;
        d.set_item("causal", c.causal())?;
        d.set_item("has_unembed", c.has_unembed())?;
        d.set_item("n_params", self.inner.model.n_params())?;
        d.set_item("source", self.inner.source.path().display().to_string())?;
        Ok(d)
    }

    /// Every hook name this model has, in the order of the forward pass.
    fn hook_names(&self) -> Vec<String> {
        hook_names(&self.inner.model.config)
    }

    /// Token ids of `text` as the model's own tokenizer gives them (special tokens included
    /// as the model's library adds them).
    fn encode(&self, text: &str) -> PyResult<Vec<u32>> {
        self.inner.tokenizer.encode(text).py()
    }

    fn decode(&self, ids: Vec<u32>) -> PyResult<String> {
        self.inner.tokenizer.decode(&ids).py()
    }

    /// The text of each token id (None for ids outside the vocabulary).
    fn token_strings(&self, ids: Vec<u32>) -> Vec<Option<String>> {
        ids.iter().map(|&i| self.inner.tokenizer.token_str(i)).collect()
    }

    #[getter]
    fn bos_token_id(&self) -> Option<u32> {
        self.inner.tokenizer.bos_id()
    }

    #[getter]
    fn eos_token_id(&self) -> Option<u32> {
        self.inner.tokenizer.eos_id()
    }

    /// Run `sequences` (lists of token ids). `names`: hooks to return; `logits`: "all", "last"
    /// or "none"; `interventions`: (hook, kind, value) with kind "zero", "mean", "replace",
    /// "add" or "call". Returns (logits `[rows, vocab]` or None, {hook: `[tokens, ...]`}).
    #[pyo3(signature = (sequences, names, logits, interventions))]
    fn forward<'py>(
        &self,
        py: Python<'py>,
        sequences: Vec<Vec<u32>>,
        names: Vec<String>,
        logits: &str,
        interventions: &Bound<'py, PyList>,
    ) -> PyResult<(Option<Bound<'py, PyArrayDyn<f32>>>, Bound<'py, PyDict>)> {
        let config = &self.inner.model.config;
        let which = match logits {
            "all" => Logits::All,
            "last" => Logits::Last,
            "none" => Logits::None,
            other => return Err(PyValueError::new_err(format!("logits must be 'all', 'last' or 'none', not '{other}'"))),
        };
        check_tokens(&sequences, config.vocab_size)?;
        let mut hooks = Hooks::capture(config, &names).py()?;
        let failure: Arc<Mutex<Option<PyErr>>> = Arc::default();
        for item in interventions.iter() {
            let (name, kind, value): (String, String, Bound<'py, PyAny>) = item.extract()?;
            let what = intervention(&kind, &value, &name, &failure)?;
            hooks.intervene(config, &name, what).py()?;
        }
        let batch = Batch::new(&sequences);
        let model = &self.inner.model;
        // Without logits only the blocks the hooks read are run (TransformerLens's stop_at_layer).
        let out = py
            .detach(|| match which {
                Logits::None => model.run_hooks(&batch, &mut hooks).map(|()| Default::default()),
                _ => model.forward(&batch, &mut hooks, which),
            })
            .py();
        if let Some(e) = failure.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return Err(e);
        }
        let out = out?;
        let cache = PyDict::new(py);
        for (name, t) in hooks.take_cache() {
            cache.set_item(name, f32_out(py, t.data, &t.shape)?)?;
        }
        let logits = match out.logits {
            Some(l) => {
                let rows = l.len() / config.vocab_size.max(1);
                Some(f32_out(py, l, &[rows, config.vocab_size])?)
            }
            None => None,
        };
        Ok((logits, cache))
    }

    /// Continue `prompt` by up to `max_new_tokens` (greedy when `temperature` is 0), stopping
    /// after `stop` if given; returns the new token ids.
    #[pyo3(signature = (prompt, max_new_tokens, temperature=0.0, top_p=1.0, seed=0, stop=None))]
    fn generate(&self, py: Python<'_>, prompt: Vec<u32>, max_new_tokens: usize, temperature: f32, top_p: f32, seed: u64, stop: Option<u32>) -> PyResult<Vec<u32>> {
        check_tokens(std::slice::from_ref(&prompt), self.inner.model.config.vocab_size)?;
        let sampling = Sampling { temperature, top_p, seed };
        let model = &self.inner.model;
        py.detach(|| generate(model, &prompt, max_new_tokens, sampling, stop, &mut Hooks::new(), |_| {})).py()
    }

    /// Mean-pooled, L2-normalised sentence embeddings (sentence-transformers' recipe) of
    /// `sequences`, `[sequences, d_model]`.
    fn sentence_embeddings<'py>(&self, py: Python<'py>, sequences: Vec<Vec<u32>>) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        check_tokens(&sequences, self.inner.model.config.vocab_size)?;
        let model = &self.inner.model;
        let rows = py.detach(|| model.sentence_embeddings(&Batch::new(&sequences))).py()?;
        let d = self.inner.model.config.d_model;
        let n = rows.len();
        f32_out(py, rows.into_iter().flatten().collect(), &[n, d])
    }

    fn __repr__(&self) -> String {
        let c = &self.inner.model.config;
        format!(
            "LanguageModel({}, {} layers, d_model {}, {} parameters, from {})",
            c.architecture,
            c.n_layers,
            c.d_model,
            self.inner.model.n_params(),
            self.inner.source.path().display()
        )
    }
}

impl LanguageModel {
    pub fn loaded(&self) -> &LoadedModel {
        &self.inner
    }
}

fn check_tokens(sequences: &[Vec<u32>], vocab: usize) -> PyResult<()> {
    if sequences.is_empty() || sequences.iter().any(Vec::is_empty) {
        return Err(PyValueError::new_err("every prompt needs at least one token"));
    }
    if let Some(&bad) = sequences.iter().flatten().find(|&&t| t as usize >= vocab) {
        return Err(PyValueError::new_err(format!("token id {bad} is outside the vocabulary of {vocab}")));
    }
    Ok(())
}

/// One intervention from its Python description.
fn intervention(kind: &str, value: &Bound<'_, PyAny>, hook: &str, failure: &Arc<Mutex<Option<PyErr>>>) -> PyResult<Intervention> {
    let vector = |what: &str| -> PyResult<Vec<f32>> { Ok(F32In::new(value, &format!("{what} for hook {hook}"))?.slice().to_vec()) };
    Ok(match kind {
        "zero" => Intervention::Zero,
        "mean" if value.is_none() => Intervention::Mean(None),
        "mean" => Intervention::Mean(Some(vector("the mean")?)),
        "add" => Intervention::Add(vector("the steering vector")?),
        "replace" => {
            let x = F32In::new(value, &format!("the replacement for hook {hook}"))?;
            Intervention::Replace(HookTensor { shape: x.shape().to_vec(), data: x.slice().to_vec() })
        }
        "call" => Intervention::Edit(python_edit(value.clone().unbind(), failure.clone())),
        other => return Err(PyValueError::new_err(format!("unknown intervention '{other}'; use zero, mean, replace, add or call"))),
    })
}

/// A Python function `f(activation, hook_name)` as a hook edit: it may change the array in
/// place or return a new one of the same shape. Its first error is kept and raised after the
/// forward pass, and later calls are skipped.
fn python_edit(f: Py<PyAny>, failure: Arc<Mutex<Option<PyErr>>>) -> HookFn {
    Arc::new(move |name: &str, data: &mut [f32], shape: &[usize]| {
        Python::attach(|py| {
            let mut failed = failure.lock().unwrap_or_else(|e| e.into_inner());
            if failed.is_some() {
                return;
            }
            let result = (|| -> PyResult<()> {
                let array = f32_out(py, data.to_vec(), shape)?;
                let returned = f.call1(py, (array.clone(), name))?;
                let source = if returned.is_none(py) { array.into_any() } else { returned.into_bound(py) };
                let values = F32In::new(&source, &format!("the array returned for hook {name}"))?;
                if values.shape() != shape {
                    return Err(PyValueError::new_err(format!("the hook function for {name} returned shape {:?}; the activation has {shape:?}", values.shape())));
                }
                data.copy_from_slice(values.slice());
                Ok(())
            })();
            if let Err(e) = result {
                *failed = Some(e);
            }
        })
    })
}
