//! Which data set a model was trained on, recorded in `model.json` so that `eval` and `acts`
//! can rebuild exactly the same data (including generated sets and their splits).

use crate::data::glyphs::GlyphWorld;
use crate::data::modadd::ModularAddition;
use crate::data::{self, Split};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum DataSpec {
    Mnist,
    FashionMnist,
    /// scikit-learn digits, split 80/20 with this seed.
    Digits { seed: u64 },
    Modadd(ModularAddition),
    Glyphs(GlyphWorld),
}

impl DataSpec {
    /// Build from a data-set name and the options that generated sets take.
    pub fn from_name(name: &str, seed: u64, modadd: Option<ModularAddition>, glyphs: Option<GlyphWorld>) -> Result<Self> {
        Ok(match name {
            "mnist" => DataSpec::Mnist,
            "fashion-mnist" => DataSpec::FashionMnist,
            "digits" => DataSpec::Digits { seed },
            "modadd" => DataSpec::Modadd(modadd.unwrap_or(ModularAddition { seed, ..Default::default() })),
            "glyphs" => DataSpec::Glyphs(glyphs.unwrap_or(GlyphWorld { seed, ..Default::default() })),
            _ => {
                return Err(Error::invalid(format!(
                    "unknown data set '{name}'; choose one of {}",
                    data::DATASET_NAMES.join(", ")
                )))
            }
        })
    }

    /// Load or generate; `dir` is the --data folder for the on-disk sets.
    pub fn load(&self, dir: Option<&Path>) -> Result<Split> {
        match self {
            DataSpec::Mnist => data::load_named("mnist", dir, 0),
            DataSpec::FashionMnist => data::load_named("fashion-mnist", dir, 0),
            DataSpec::Digits { seed } => data::load_named("digits", dir, *seed),
            DataSpec::Modadd(m) => m.generate(),
            DataSpec::Glyphs(g) => Ok(g.generate()),
        }
    }
}
