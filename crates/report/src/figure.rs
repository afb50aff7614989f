//! What a figure shows: its kind (for the report's "How to read this"), a caption, what its
//! colours mean and labels for the cells of an image grid. A figure file in a run's `figures/`
//! may have a note beside it, `NAME.png.json` for `NAME.png` ([`FigureNote::write_beside`]);
//! figures without one get the caption the report knows for glassbox's own file names.

use crate::grid::Colormap;
use crate::ReportError;
use serde::{Deserialize, Deserializer, Serialize};
use std::path::{Path, PathBuf};

/// The kinds of figure the report explains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FigureKind {
    LineChart,
    ScatterChart,
    BarChart,
    Heatmap,
    /// Grey-scale images (inputs, probes).
    ImageGrid,
    /// Eigenvectors over the input pixels, RdBu per image.
    Eigenvectors,
    /// Other signed images (masks), RdBu per image.
    SignedImages,
    /// 2-D Fourier power spectra.
    FourierSpectra,
    InteractionGraph,
    Dendrogram,
    /// Images that drive an SAE latent, one row per model.
    ConceptCards,
    /// Words that drive a shared latent, one column per model.
    TextCards,
    FeatureDashboards,
}

impl FigureKind {
    /// The order of the kinds in a "How to read this" list.
    pub(crate) const ALL: [FigureKind; 13] = [
        FigureKind::LineChart,
        FigureKind::ScatterChart,
        FigureKind::BarChart,
        FigureKind::Heatmap,
        FigureKind::ImageGrid,
        FigureKind::Eigenvectors,
        FigureKind::SignedImages,
        FigureKind::FourierSpectra,
        FigureKind::InteractionGraph,
        FigureKind::Dendrogram,
        FigureKind::ConceptCards,
        FigureKind::TextCards,
        FigureKind::FeatureDashboards,
    ];

    pub(crate) fn title(self) -> &'static str {
        match self {
            FigureKind::LineChart => "Line charts",
            FigureKind::ScatterChart => "Scatter charts",
            FigureKind::BarChart => "Bar charts",
            FigureKind::Heatmap => "Heat maps",
            FigureKind::ImageGrid => "Image grids",
            FigureKind::Eigenvectors => "Eigenvector images",
            FigureKind::SignedImages => "Signed images",
            FigureKind::FourierSpectra => "Fourier images",
            FigureKind::InteractionGraph => "Interaction graphs",
            FigureKind::Dendrogram => "Dendrograms",
            FigureKind::ConceptCards => "Concept cards",
            FigureKind::TextCards => "Text concept cards",
            FigureKind::FeatureDashboards => "SAE feature dashboards",
        }
    }

    /// How to read a figure of this kind, in a few plain sentences.
    pub(crate) fn howto(self) -> &'static str {
        match self {
            FigureKind::LineChart => "One line per series, named in the legend; hover a point to read its value. Training curves have the epoch (or step) across, losses on one chart and accuracies on another, so a test curve that stops improving while the training curve keeps going is easy to spot; other curves have across what their caption says (features kept, rank, k).",
            FigureKind::ScatterChart => "One dot per item (a latent, a probe); hover a dot to read its coordinates. Look for clusters and for the dots far from the rest.",
            FigureKind::BarChart => "One bar per method or bin, its value printed above it; compare the heights against the chance level where the caption gives one.",
            FigureKind::Heatmap => "One cell per pair of row and column, its value printed in it and shown on hover. Colours run from red (negative) through white (zero) to blue (positive), symmetric about zero, so the strongest entries stand out.",
            FigureKind::ImageGrid => "Small images side by side, grey levels from black (lowest) to white (highest); a label on an image names it or gives the model's answer.",
            FigureKind::Eigenvectors => "Each image is one eigenvector of a class's interaction matrix, drawn over the input pixels: blue positive, red negative, white zero, each image scaled to its own largest |value|. An eigenvector's sign is arbitrary (a stroke in red means the same as in blue); its pattern is what matters. An input that overlaps an eigenvector with a positive eigenvalue λ pushes the class up by λ (v·x)², one with a negative λ pushes it down.",
            FigureKind::SignedImages => "Signed pixel patterns: blue positive, red negative, white zero, each image scaled to its own largest |value|.",
            FigureKind::FourierSpectra => "The 2-D Fourier power of one feature over all input pairs (a, b) of modular addition: frequency (0, 0) at the centre, the frequency in a downwards and in b across, on a log scale so that weak power shows too. Dots on the vertical and horizontal axes at ±w are a feature cos(w a) + cos(w b); dots on the diagonal at (w, w) and (−w, −w) are cos(w (a + b)); four dots at (±w, ±w) are a product cos(w a) cos(w b). A Fourier purity near 1 means nearly all the power sits at one frequency w.",
            FigureKind::InteractionGraph => "Columns are node layers, input on the left and logits on the right; dots are the first features of each layer in basis order and lines the strongest interactions between neighbouring layers. Thicker, darker lines interact more strongly (scaled per layer pair), so a sparse graph means a simpler circuit.",
            FigureKind::Dendrogram => "The leaves along the bottom are the models, with a colour bar for their group; two clusters join in a bracket at the height of their distance. Clean trees show as a few tall joins above many short ones, and one colour per branch means the clustering found the trees.",
            FigureKind::ConceptCards => "One row per model: first the input optimised to drive the latent, then the test inputs that drive it most. Similar rows across models mean the latent is a concept they share.",
            FigureKind::TextCards => "One column per model, each with the words that drive the shared latent most, highlighted in their surrounding text and followed by the activation.",
            FigureKind::FeatureDashboards => "Find a latent by its index or by text in its top contexts, or step through them with prev and next. Each card shows how often the latent fires (density histogram), the tokens it promotes and suppresses (logit effects) and the contexts where it fires most, each token's background darker the stronger the activation; hover a token to read its value.",
        }
    }
}

/// What the colours of an image figure mean: its colour map and the values at its ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColourScale {
    pub colormap: Colormap,
    /// What the low end of the map stands for, e.g. "−max |value| of the image".
    pub low: String,
    /// What the middle stands for, if it has a meaning (e.g. "0").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
    pub high: String,
}

/// Labels for an image grid written with this crate's grid functions: `cells` in reading
/// order on the lower right of each image, `row_labels` to the left of each row and
/// `col_labels` above each column (any may be empty).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GridLabels {
    pub cols: usize,
    pub rows: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cells: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub row_labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub col_labels: Vec<String>,
}

/// A figure file's note: what it shows and how to read it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FigureNote {
    /// Unknown kinds (from a newer writer) read as none.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_kind")]
    pub kind: Option<FigureKind>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub caption: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colours: Option<ColourScale>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<GridLabels>,
}

fn lenient_kind<'de, D: Deserializer<'de>>(d: D) -> Result<Option<FigureKind>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(v.and_then(|v| serde_json::from_value(v).ok()))
}

impl FigureNote {
    /// Where the note of `figure` lives: the figure's path with `.json` appended.
    pub fn path_for(figure: &Path) -> PathBuf {
        let mut s = figure.as_os_str().to_owned();
        s.push(".json");
        PathBuf::from(s)
    }

    /// Writes the note beside `figure` (a temporary name, then a rename).
    pub fn write_beside(&self, figure: &Path) -> Result<(), ReportError> {
        let path = Self::path_for(figure);
        let text = serde_json::to_string_pretty(self).map_err(|e| ReportError::Figure(format!("figure note: {e}")))?;
        crate::html::write_atomic(&path, text.as_bytes())
    }

    /// The note beside `figure`, if there is one.
    pub(crate) fn read_beside(figure: &Path) -> Result<Option<FigureNote>, ReportError> {
        let path = Self::path_for(figure);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(None);
        };
        serde_json::from_str(&text).map(Some).map_err(|e| ReportError::Format { path, msg: format!("not a figure note: {e}") })
    }
}

/// The kind and caption of the figure files glassbox writes, from the file name alone.
pub(crate) fn known_figure(file: &str) -> (Option<FigureKind>, Option<String>) {
    let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
    let svg = file.ends_with(".svg");
    // "{l}-spectrum-{layer}" and "{l}-ablation-{layer}" (LIB), "fourier-{basis}-{l}-{layer}".
    let numbered = stem.split_once('-').filter(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())).map(|(_, rest)| rest);
    if let Some(rest) = numbered {
        if let Some(layer) = rest.strip_prefix("spectrum-") {
            return (Some(FigureKind::LineChart), Some(format!("Layer {}: LIB's Λ and PCA's variance per feature, each divided by its largest, on a log scale. A steep fall means few directions carry the layer.", layer)));
        }
        if let Some(layer) = rest.strip_prefix("ablation-") {
            return (Some(FigureKind::LineChart), Some(format!("Layer {}: test accuracy when only the first k features of each basis are kept (the others mean-ablated). The basis that reaches the full accuracy with fewer features describes the layer more compactly.", layer)));
        }
    }
    if let Some(rest) = stem.strip_prefix("fourier-") {
        let mut parts = rest.splitn(3, '-');
        let (basis, _, layer) = (parts.next().unwrap_or(""), parts.next(), parts.next().unwrap_or(""));
        return (Some(FigureKind::FourierSpectra), Some(format!("2-D Fourier power of the leading {} features at layer {layer}.", basis_name(basis))));
    }
    if let Some(basis) = stem.strip_prefix("graph-") {
        return (Some(FigureKind::InteractionGraph), Some(format!("The {} interaction graph: the first features of every node layer and the strongest edges between neighbouring layers.", basis_name(basis))));
    }
    if let Some(rest) = stem.strip_prefix("concept-") {
        let latent = rest.split("-latent-").nth(1).unwrap_or("?");
        return (Some(FigureKind::ConceptCards), Some(format!("Concept card of latent {latent}: one row per model, first its coordinated maximised input, then the test inputs with the largest pre-activation; each image scaled to its own range.")));
    }
    if let Some(metric) = stem.strip_prefix("methods-") {
        return (Some(FigureKind::BarChart), Some(format!("The methods compared (chart {metric}).")));
    }
    let known = match stem {
        "01-eigenvectors" => Some((FigureKind::Eigenvectors, "Eigenvectors of each class's interaction matrix over the input pixels, one row per class: the largest positive eigenvalues first, then the most negative.")),
        "02-spectra" => Some((FigureKind::LineChart, "The eigenvalues of each class's interaction matrix by |λ|: a few large ones mean the class reads its input through a few patterns.")),
        "03-truncation" => Some((FigureKind::LineChart, "Accuracy on the test samples scored (the axis says how many) when every class keeps only its top-k eigenvectors, against the full model: how low-rank the layer's function is.")),
        "04-adversarial-masks" => Some((FigureKind::SignedImages, "Adversarial masks from the weights: the pixel pattern that excites only one top eigenvector of a class; added to an image it pushes the prediction towards that class.")),
        "05-directions" => Some((FigureKind::Eigenvectors, "Eigenvectors of Q(u) for the extra output directions u, one row per direction: the largest positive eigenvalues first, then the most negative.")),
        "01-correlation-by-k" => Some((FigureKind::LineChart, "How well the top-k eigenvector terms predict each SAE feature's activation, against k: a high correlation at small k means the feature's computation is low-rank.")),
        "02-correlation-k2" => Some((FigureKind::BarChart, "The spread of the output features' correlations at k = 2.")),
        "03-low-rank-loss" => Some((FigureKind::LineChart, "Next-token loss added when the MLP is replaced by its top-k eigenvectors per output direction, against k.")),
        "r2-matrix" => Some((FigureKind::Heatmap, "Cross-reconstruction R² (per dimension): the row's model encodes, the column's decodes. The diagonal is each model's own reconstruction; high off-diagonal cells mean the models share the concepts.")),
        "firing-entropy" => Some((FigureKind::LineChart, "How many alive latents have each firing entropy: 1 means the latent fires equally often in every model, 0 in one model only.")),
        "cofire-energy" => Some((FigureKind::ScatterChart, "One dot per latent: how often it fires in all models at once against its energy (both log10).")),
        "probes" if svg => Some((FigureKind::ScatterChart, "Where the learned probes sit in the plane the INRs were fitted on ([−1, 1]²).")),
        "probes" => Some((FigureKind::ImageGrid, "The learned probe images.")),
        "dendrogram" => Some((FigureKind::Dendrogram, "Ward dendrogram of the models' layer weights, the leaves coloured by their recovered tree.")),
        "cross-tree" => Some((FigureKind::Heatmap, "Test accuracy − 0.5 (chance) of the expert of the row's tree on the models of the column's tree: only the diagonal should be above chance.")),
        "experts-vs-mixed" => Some((FigureKind::BarChart, "One ProbeX expert per tree against one ProbeX trained on all trees together.")),
        _ => None,
    };
    match known {
        Some((kind, caption)) => (Some(kind), Some(caption.to_string())),
        None => (None, None),
    }
}

fn basis_name(b: &str) -> String {
    match b {
        "lib" => "LIB".into(),
        "pca" => "PCA".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_round_trip_and_tolerate_unknown_kinds() {
        let dir = tempfile::tempdir().unwrap();
        let fig = dir.path().join("f.png");
        let note = FigureNote {
            kind: Some(FigureKind::FourierSpectra),
            caption: "c".into(),
            colours: Some(ColourScale { colormap: Colormap::Magma, low: "1e-3".into(), mid: None, high: "peak".into() }),
            grid: Some(GridLabels { cols: 2, rows: 1, cells: vec!["a".into(), "b".into()], ..Default::default() }),
        };
        note.write_beside(&fig).unwrap();
        assert!(dir.path().join("f.png.json").is_file());
        assert_eq!(FigureNote::read_beside(&fig).unwrap(), Some(note));
        std::fs::write(dir.path().join("g.svg.json"), r#"{"kind": "hologram", "caption": "x", "extra": 1}"#).unwrap();
        let g = FigureNote::read_beside(&dir.path().join("g.svg")).unwrap().unwrap();
        assert_eq!((g.kind, g.caption.as_str()), (None, "x"));
        std::fs::write(dir.path().join("h.svg.json"), "{").unwrap();
        assert!(FigureNote::read_beside(&dir.path().join("h.svg")).unwrap_err().to_string().contains("h.svg.json"));
        assert_eq!(FigureNote::read_beside(&dir.path().join("none.png")).unwrap(), None);
    }

    #[test]
    fn glassbox_figure_names_are_recognised() {
        assert_eq!(known_figure("1-spectrum-embed.svg").0, Some(FigureKind::LineChart));
        assert!(known_figure("2-ablation-layers.0.post.svg").1.unwrap().contains("layers.0.post"));
        let (kind, caption) = known_figure("fourier-lib-1-blocks.0.hook_resid_pre.png");
        assert_eq!(kind, Some(FigureKind::FourierSpectra));
        assert!(caption.unwrap().contains("LIB features at layer blocks.0.hook_resid_pre"));
        assert_eq!(known_figure("graph-pca.svg").0, Some(FigureKind::InteractionGraph));
        assert_eq!(known_figure("01-eigenvectors.png").0, Some(FigureKind::Eigenvectors));
        assert_eq!(known_figure("dendrogram.svg").0, Some(FigureKind::Dendrogram));
        assert_eq!(known_figure("probes.svg").0, Some(FigureKind::ScatterChart));
        assert_eq!(known_figure("probes.png").0, Some(FigureKind::ImageGrid));
        assert!(known_figure("concept-02-latent-218.png").1.unwrap().contains("latent 218"));
        assert_eq!(known_figure("z.svg"), (None, None));
    }
}
