//! GGUF reader (versions 2 and 3, little-endian; layout in ggml's docs/gguf.md) with
//! dequantisation to f32 for the types llama.cpp models commonly ship in.
//!
//! The dequantisers repeat the arithmetic of the Python `gguf` package (gguf-py
//! `gguf/quants.py`, itself following ggml's `ggml-quants.c`) operation for operation, in f32 and
//! in the same order, so the results are bit-identical to it: that is what lets a GGUF model be
//! checked against a reference dequantised in Python.
//!
//! Every parse error names the file and what was wrong; no input makes this module panic or
//! allocate more than the file's size would justify.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The four bytes every GGUF file starts with.
const MAGIC: [u8; 4] = *b"GGUF";
/// Data-section alignment when `general.alignment` is absent.
const DEFAULT_ALIGNMENT: u64 = 32;
/// Arrays of arrays are legal but never used in practice; the cap keeps recursion bounded.
const MAX_ARRAY_NESTING: usize = 8;
/// The types [`GgufFile::dequantize`] handles, as listed in its error message.
const SUPPORTED: &str = "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K";

/// One metadata value, as stored (GGUF value types 0 to 12).
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Vec<GgufValue>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl GgufValue {
    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// Any integer type that is non-negative, as u64 (counts and sizes are stored as u32 or u64
    /// depending on the converter).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::U8(v) => Some(v.into()),
            GgufValue::U16(v) => Some(v.into()),
            GgufValue::U32(v) => Some(v.into()),
            GgufValue::U64(v) => Some(v),
            GgufValue::I8(v) => u64::try_from(v).ok(),
            GgufValue::I16(v) => u64::try_from(v).ok(),
            GgufValue::I32(v) => u64::try_from(v).ok(),
            GgufValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any number (integer or float) as f64; 64-bit integers beyond 2^53 round.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            GgufValue::U8(v) => Some(v.into()),
            GgufValue::I8(v) => Some(v.into()),
            GgufValue::U16(v) => Some(v.into()),
            GgufValue::I16(v) => Some(v.into()),
            GgufValue::U32(v) => Some(v.into()),
            GgufValue::I32(v) => Some(v.into()),
            GgufValue::F32(v) => Some(v.into()),
            GgufValue::U64(v) => Some(v as f64),
            GgufValue::I64(v) => Some(v as f64),
            GgufValue::F64(v) => Some(v),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[GgufValue]> {
        match self {
            GgufValue::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The elements of an array of strings (e.g. `tokenizer.ggml.tokens`); None if this is not an
    /// array or any element is not a string.
    pub fn as_strings(&self) -> Option<Vec<&str>> {
        self.as_array()?.iter().map(GgufValue::as_str).collect()
    }

    /// The GGUF name of this value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            GgufValue::U8(_) => "u8",
            GgufValue::I8(_) => "i8",
            GgufValue::U16(_) => "u16",
            GgufValue::I16(_) => "i16",
            GgufValue::U32(_) => "u32",
            GgufValue::I32(_) => "i32",
            GgufValue::F32(_) => "f32",
            GgufValue::Bool(_) => "bool",
            GgufValue::String(_) => "string",
            GgufValue::Array(_) => "array",
            GgufValue::U64(_) => "u64",
            GgufValue::I64(_) => "i64",
            GgufValue::F64(_) => "f64",
        }
    }
}

/// A tensor's element type (ggml's `ggml_type`); ids without a variant are kept as `Other`.
#[allow(non_camel_case_types)] // ggml's own names, as users see them in llama.cpp
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    BF16,
    Other(u32),
}

impl GgmlType {
    /// The type with ggml id `id`.
    pub fn from_id(id: u32) -> Self {
        match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            6 => GgmlType::Q5_0,
            7 => GgmlType::Q5_1,
            8 => GgmlType::Q8_0,
            9 => GgmlType::Q8_1,
            10 => GgmlType::Q2_K,
            11 => GgmlType::Q3_K,
            12 => GgmlType::Q4_K,
            13 => GgmlType::Q5_K,
            14 => GgmlType::Q6_K,
            15 => GgmlType::Q8_K,
            30 => GgmlType::BF16,
            other => GgmlType::Other(other),
        }
    }

    /// ggml's id for this type.
    pub fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q5_0 => 6,
            GgmlType::Q5_1 => 7,
            GgmlType::Q8_0 => 8,
            GgmlType::Q8_1 => 9,
            GgmlType::Q2_K => 10,
            GgmlType::Q3_K => 11,
            GgmlType::Q4_K => 12,
            GgmlType::Q5_K => 13,
            GgmlType::Q6_K => 14,
            GgmlType::Q8_K => 15,
            GgmlType::BF16 => 30,
            GgmlType::Other(id) => id,
        }
    }

    /// The name llama.cpp uses ("Q4_K"), or "type id N" for ids without a variant.
    pub fn name(self) -> String {
        self.to_string()
    }

    /// Elements per block and bytes per block (ggml's `GGML_QUANT_SIZES`), or None for an id
    /// whose layout is unknown. Ids without a variant that ggml defines (I8, IQ*, ...) are
    /// included so files holding them still open and their tensors' extents are checked.
    pub fn block_layout(self) -> Option<(u64, u64)> {
        const QK_K: u64 = 256;
        let layout = match self.id() {
            0 => (1, 4),
            1 => (1, 2),
            2 => (32, 2 + 16),
            3 => (32, 2 + 2 + 16),
            6 => (32, 2 + 4 + 16),
            7 => (32, 2 + 2 + 4 + 16),
            8 => (32, 2 + 32),
            9 => (32, 4 + 4 + 32),
            10 => (QK_K, 2 + 2 + QK_K / 16 + QK_K / 4),
            11 => (QK_K, 2 + QK_K / 4 + QK_K / 8 + 12),
            12 => (QK_K, 2 + 2 + QK_K / 2 + 12),
            13 => (QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12),
            14 => (QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16),
            15 => (QK_K, 4 + QK_K + QK_K / 8),
            16 => (QK_K, 2 + QK_K / 4),                            // IQ2_XXS
            17 => (QK_K, 2 + QK_K / 4 + QK_K / 32),                // IQ2_XS
            18 => (QK_K, 2 + QK_K / 4 + QK_K / 8),                 // IQ3_XXS
            19 => (QK_K, 2 + QK_K / 8 + QK_K / 16),                // IQ1_S
            20 => (32, 2 + 16),                                    // IQ4_NL
            21 => (QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4), // IQ3_S
            22 => (QK_K, 2 + QK_K / 4 + QK_K / 16),                // IQ2_S
            23 => (QK_K, 2 + 2 + QK_K / 2 + QK_K / 64),            // IQ4_XS
            24 => (1, 1),                                          // I8
            25 => (1, 2),                                          // I16
            26 => (1, 4),                                          // I32
            27 => (1, 8),                                          // I64
            28 => (1, 8),                                          // F64
            29 => (QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32),        // IQ1_M
            30 => (1, 2),                                          // BF16
            34 => (QK_K, 2 + 4 * 13),                              // TQ1_0
            35 => (QK_K, 2 + 64),                                  // TQ2_0
            39 => (32, 1 + 16),                                    // MXFP4
            _ => return None,
        };
        Some(layout)
    }

    /// Elements per block (1 for plain float types), if known.
    pub fn block_size(self) -> Option<u64> {
        self.block_layout().map(|(elems, _)| elems)
    }

    /// Bytes per block, if known.
    pub fn block_bytes(self) -> Option<u64> {
        self.block_layout().map(|(_, bytes)| bytes)
    }

    /// Whether [`GgufFile::dequantize`] can decode this type.
    pub fn can_dequantize(self) -> bool {
        matches!(
            self,
            GgmlType::F32
                | GgmlType::F16
                | GgmlType::BF16
                | GgmlType::Q8_0
                | GgmlType::Q4_0
                | GgmlType::Q4_1
                | GgmlType::Q4_K
                | GgmlType::Q6_K
        )
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            GgmlType::F32 => "F32",
            GgmlType::F16 => "F16",
            GgmlType::Q4_0 => "Q4_0",
            GgmlType::Q4_1 => "Q4_1",
            GgmlType::Q5_0 => "Q5_0",
            GgmlType::Q5_1 => "Q5_1",
            GgmlType::Q8_0 => "Q8_0",
            GgmlType::Q8_1 => "Q8_1",
            GgmlType::Q2_K => "Q2_K",
            GgmlType::Q3_K => "Q3_K",
            GgmlType::Q4_K => "Q4_K",
            GgmlType::Q5_K => "Q5_K",
            GgmlType::Q6_K => "Q6_K",
            GgmlType::Q8_K => "Q8_K",
            GgmlType::BF16 => "BF16",
            GgmlType::Other(id) => return write!(f, "type id {id}"),
        };
        f.write_str(name)
    }
}

/// One tensor's header entry.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufTensorInfo {
    pub name: String,
    /// Dimensions as stored: fastest-varying first (ggml's ne[0], ne[1], ...).
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Byte offset of the data, relative to the start of the data section.
    pub offset: u64,
}

impl GgufTensorInfo {
    /// The shape in row-major (numpy/PyTorch) order, i.e. `dims` reversed: a matrix stored with
    /// dims [576, 49152] has shape [49152, 576], 49152 rows of 576 contiguous values.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| usize::try_from(d).unwrap_or(usize::MAX)).collect()
    }

    /// The number of elements (saturating; [`GgufFile::open`] rejects tensors where it overflows).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().fold(1u64, |n, &d| n.saturating_mul(d))
    }

    /// The size of the data in bytes, or None when the type's layout is unknown, the first
    /// dimension is not a whole number of blocks, or the size overflows.
    pub fn n_bytes(&self) -> Option<u64> {
        let (block, bytes) = self.ggml_type.block_layout()?;
        let first = self.dims.first().copied().unwrap_or(1);
        if first % block != 0 {
            return None;
        }
        let n = self.dims.iter().try_fold(1u64, |n, &d| n.checked_mul(d))?;
        (n / block).checked_mul(bytes)
    }
}

/// A parsed GGUF file held in memory: header, metadata and tensor data.
#[derive(Clone)]
pub struct GgufFile {
    /// Where the file was read from (named in every error).
    pub path: PathBuf,
    /// 2 or 3.
    pub version: u32,
    /// Key/value pairs in file order.
    pub metadata: Vec<(String, GgufValue)>,
    /// Tensor headers in file order.
    pub tensors: Vec<GgufTensorInfo>,
    /// The data-section alignment (`general.alignment`, default 32).
    pub alignment: u64,
    /// Absolute file offset of the data section.
    pub data_offset: u64,
    bytes: Vec<u8>,
    tensor_index: HashMap<String, usize>,
}

/// Leaves out the file's bytes, which can be hundreds of megabytes.
impl fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata_keys", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .field("alignment", &self.alignment)
            .field("data_offset", &self.data_offset)
            .field("file_bytes", &self.bytes.len())
            .finish()
    }
}

impl GgufFile {
    /// Reads and parses the file at `path`, checking that every tensor's data lies in the file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(path, bytes)
    }

    /// Parses a GGUF image already in memory; `path` is only used to name it in errors.
    pub fn from_bytes(path: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<Self> {
        let path = path.into();
        let header = Parser::new(&path, &bytes).parse()?;
        let mut tensor_index = HashMap::with_capacity(header.tensors.len());
        for (i, t) in header.tensors.iter().enumerate() {
            if tensor_index.insert(t.name.clone(), i).is_some() {
                return Err(Error::format(&path, format!("tensor name {} appears twice", t.name)));
            }
        }
        let file = GgufFile {
            path,
            version: header.version,
            metadata: header.metadata,
            tensors: header.tensors,
            alignment: header.alignment,
            data_offset: header.data_offset,
            bytes,
            tensor_index,
        };
        for t in &file.tensors {
            file.check_extent(t)?;
        }
        Ok(file)
    }

    /// The value of metadata key `key`.
    pub fn meta(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The header entry of tensor `name`.
    pub fn tensor_info(&self, name: &str) -> Option<&GgufTensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The stored bytes of tensor `name` (blocks as in the file).
    pub fn raw_bytes(&self, name: &str) -> Result<&[u8]> {
        let info = self.require(name)?;
        self.data_of(info)
    }

    /// Tensor `name` as f32 in row-major order for [`GgufTensorInfo::shape`] (reversed dims),
    /// bit-identical to gguf-py's `gguf.quants.dequantize`.
    pub fn dequantize(&self, name: &str) -> Result<Vec<f32>> {
        let info = self.require(name)?;
        if !info.ggml_type.can_dequantize() {
            return Err(Error::format(
                &self.path,
                format!(
                    "tensor {} has type {}, which glassbox cannot dequantise (supported: {SUPPORTED})",
                    info.name, info.ggml_type
                ),
            ));
        }
        let data = self.data_of(info)?;
        let n = usize::try_from(info.n_elements())
            .map_err(|_| Error::format(&self.path, format!("tensor {} is too large for this machine", info.name)))?;
        let mut out = vec![0f32; n];
        decode(info.ggml_type, data, &mut out);
        Ok(out)
    }

    fn require(&self, name: &str) -> Result<&GgufTensorInfo> {
        self.tensor_info(name).ok_or_else(|| Error::invalid(format!("{}: no tensor named {name}", self.path.display())))
    }

    /// The byte range of a tensor's data, or why it cannot be located.
    fn extent(&self, t: &GgufTensorInfo) -> Result<(usize, usize)> {
        let fail = |msg: String| Error::format(&self.path, msg);
        let (block, _) = t.ggml_type.block_layout().ok_or_else(|| {
            fail(format!("tensor {} has {}, whose block layout glassbox does not know", t.name, t.ggml_type))
        })?;
        let first = t.dims.first().copied().unwrap_or(1);
        if first % block != 0 {
            return Err(fail(format!(
                "tensor {} has first (fastest-varying) dimension {first}, not a multiple of the {} block size {block}",
                t.name, t.ggml_type
            )));
        }
        let n_bytes = t.n_bytes().ok_or_else(|| {
            fail(format!("tensor {} with dims {:?} has a size that overflows 64 bits", t.name, t.dims))
        })?;
        let file_len = self.bytes.len() as u64;
        let start = self.data_offset.checked_add(t.offset);
        match start.and_then(|s| s.checked_add(n_bytes).map(|e| (s, e))) {
            Some((s, e)) if e <= file_len => Ok((s as usize, e as usize)),
            _ => Err(fail(format!(
                "tensor {} needs {n_bytes} bytes at offset {} (data section {} + tensor offset {}) but the file has only {file_len}",
                t.name,
                self.data_offset as u128 + t.offset as u128,
                self.data_offset,
                t.offset
            ))),
        }
    }

    /// Rejects tensors whose layout is known but whose data does not fit; unknown layouts pass
    /// (their data cannot be read, but the rest of the file can).
    fn check_extent(&self, t: &GgufTensorInfo) -> Result<()> {
        if t.ggml_type.block_layout().is_none() {
            return Ok(());
        }
        self.extent(t).map(|_| ())
    }

    fn data_of(&self, t: &GgufTensorInfo) -> Result<&[u8]> {
        let (start, end) = self.extent(t)?;
        Ok(&self.bytes[start..end])
    }
}

/// Undoes the row permutation llama.cpp's converter applies to Llama q/k projection weights (and
/// biases, with `cols` = 1), giving the Hugging Face row order back:
/// `W_hf = W.reshape(heads, rows/heads/2, 2, cols).swapaxes(1, 2).reshape(rows, cols)`.
/// Use the key/value head count for k. `w` is row-major `rows` x `cols`.
///
/// # Panics
/// If `w.len() != rows * cols` or `rows` is not a multiple of `2 * heads` (callers derive these
/// from the model's configuration and check it first).
pub fn unpermute_qk(w: &[f32], rows: usize, cols: usize, heads: usize) -> Vec<f32> {
    assert_eq!(w.len(), rows * cols, "unpermute_qk: {} values for {rows} x {cols}", w.len());
    assert!(
        heads > 0 && rows.is_multiple_of(2 * heads),
        "unpermute_qk: {rows} rows do not split into {heads} heads of an even size"
    );
    let half = rows / heads / 2;
    let mut out = Vec::with_capacity(w.len());
    for h in 0..heads {
        for pair in 0..2 {
            for i in 0..half {
                let src = h * 2 * half + i * 2 + pair;
                out.extend_from_slice(&w[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// What the header parse yields before the tensor data is checked.
struct Header {
    version: u32,
    metadata: Vec<(String, GgufValue)>,
    tensors: Vec<GgufTensorInfo>,
    alignment: u64,
    data_offset: u64,
}

/// A bounds-checked little-endian reader that names the file and the item being read.
struct Parser<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    pos: usize,
    /// What is being read, for truncation errors ("metadata value of key 'general.name'").
    what: String,
}

impl<'a> Parser<'a> {
    fn new(path: &'a Path, bytes: &'a [u8]) -> Self {
        Parser { path, bytes, pos: 0, what: "the header".into() }
    }

    fn err(&self, msg: impl Into<String>) -> Error {
        Error::format(self.path, msg)
    }

    fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.err(format!(
                "truncated: {} needs {n} bytes at byte offset {} but the file has only {} bytes",
                self.what,
                self.pos,
                self.bytes.len()
            )));
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.bytes[start..self.pos])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N as u64)?);
        Ok(a)
    }

    fn u32(&mut self) -> Result<u32> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64> {
        self.array().map(u64::from_le_bytes)
    }

    /// Rejects a count whose items, at `min_bytes` each, could not fit in the rest of the file,
    /// so no allocation is sized by a corrupt count.
    fn check_count(&self, count: u64, min_bytes: u64, what: &str) -> Result<()> {
        let needed = count.checked_mul(min_bytes);
        if needed.is_none_or(|n| n > self.remaining()) {
            return Err(self.err(format!(
                "{what} count {count} cannot fit in the {} bytes left after byte offset {}",
                self.remaining(),
                self.pos
            )));
        }
        Ok(())
    }

    fn string(&mut self) -> Result<String> {
        let len = self.u64()?;
        let start = self.pos;
        let raw = self.take(len)?;
        String::from_utf8(raw.to_vec())
            .map_err(|e| self.err(format!("invalid UTF-8 in {} at byte offset {start}: {e}", self.what)))
    }

    fn parse(mut self) -> Result<Header> {
        let version = self.preamble()?;
        self.what = "the header".into();
        let n_tensors = self.u64()?;
        let n_kv = self.u64()?;
        // A key/value needs at least a length, a type and one byte; a tensor info a name
        // length, n_dims, a type and an offset.
        self.check_count(n_kv, 8 + 4 + 1, "metadata key/value")?;
        let metadata = self.metadata(n_kv)?;
        self.check_count(n_tensors, 8 + 4 + 4 + 8, "tensor")?;
        let tensors = self.tensor_infos(n_tensors)?;
        let alignment = alignment_of(&metadata).map_err(|msg| self.err(msg))?;
        let data_offset = (self.pos as u64).div_ceil(alignment) * alignment;
        Ok(Header { version, metadata, tensors, alignment, data_offset })
    }

    /// Magic and version; only 2 and 3 are read (v1 used 32-bit counts).
    fn preamble(&mut self) -> Result<u32> {
        if self.bytes.len() < 8 {
            return Err(self.err(format!(
                "file is {} bytes, too short for a GGUF header (magic and version need 8)",
                self.bytes.len()
            )));
        }
        let magic: [u8; 4] = self.array()?;
        if magic != MAGIC {
            return Err(self.err(format!(
                "not a GGUF file: the first 4 bytes are {} ({:?}), expected 47 47 55 46 (\"GGUF\")",
                magic.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" "),
                String::from_utf8_lossy(&magic)
            )));
        }
        let version = self.u32()?;
        match version {
            2 | 3 => Ok(version),
            1 => Err(self.err(
                "GGUF version 1 is not supported (it stores counts as 32-bit; re-convert the model with a current llama.cpp)",
            )),
            v if (2..=3).contains(&v.swap_bytes()) => Err(self.err(format!(
                "big-endian GGUF (version {} byte-swapped) is not supported",
                v.swap_bytes()
            ))),
            v => Err(self.err(format!("unsupported GGUF version {v} (glassbox reads versions 2 and 3)"))),
        }
    }

    fn metadata(&mut self, n_kv: u64) -> Result<Vec<(String, GgufValue)>> {
        let mut out: Vec<(String, GgufValue)> = Vec::with_capacity(n_kv as usize);
        let mut seen = std::collections::HashSet::new();
        for i in 0..n_kv {
            self.what = format!("metadata key #{i}");
            let key = self.string()?;
            self.what = format!("the value of metadata key {key:?}");
            let ty = self.u32()?;
            let value = self.value(ty, 0)?;
            if !seen.insert(key.clone()) {
                return Err(self.err(format!("metadata key {key:?} appears twice")));
            }
            out.push((key, value));
        }
        Ok(out)
    }

    fn value(&mut self, ty: u32, depth: usize) -> Result<GgufValue> {
        Ok(match ty {
            0 => GgufValue::U8(u8::from_le_bytes(self.array()?)),
            1 => GgufValue::I8(i8::from_le_bytes(self.array()?)),
            2 => GgufValue::U16(u16::from_le_bytes(self.array()?)),
            3 => GgufValue::I16(i16::from_le_bytes(self.array()?)),
            4 => GgufValue::U32(u32::from_le_bytes(self.array()?)),
            5 => GgufValue::I32(i32::from_le_bytes(self.array()?)),
            6 => GgufValue::F32(f32::from_le_bytes(self.array()?)),
            7 => match u8::from_le_bytes(self.array()?) {
                0 => GgufValue::Bool(false),
                1 => GgufValue::Bool(true),
                b => return Err(self.err(format!("{} is a bool stored as {b}, not 0 or 1", self.what))),
            },
            8 => GgufValue::String(self.string()?),
            9 => self.array_value(depth)?,
            10 => GgufValue::U64(u64::from_le_bytes(self.array()?)),
            11 => GgufValue::I64(i64::from_le_bytes(self.array()?)),
            12 => GgufValue::F64(f64::from_le_bytes(self.array()?)),
            t => {
                return Err(self.err(format!(
                    "{} has unknown value type {t} (byte offset {})",
                    self.what,
                    self.pos - 4
                )))
            }
        })
    }

    fn array_value(&mut self, depth: usize) -> Result<GgufValue> {
        if depth >= MAX_ARRAY_NESTING {
            return Err(self.err(format!("{} nests arrays more than {MAX_ARRAY_NESTING} deep", self.what)));
        }
        let elem_ty = self.u32()?;
        let count = self.u64()?;
        let min_bytes = match elem_ty {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            8 => 8,
            9 => 12,
            _ => 8,
        };
        self.check_count(count, min_bytes, &format!("array element ({})", self.what))?;
        let mut items = Vec::with_capacity(count as usize);
        for _ in 0..count {
            items.push(self.value(elem_ty, depth + 1)?);
        }
        Ok(GgufValue::Array(items))
    }

    fn tensor_infos(&mut self, n: u64) -> Result<Vec<GgufTensorInfo>> {
        let mut out = Vec::with_capacity(n as usize);
        for i in 0..n {
            self.what = format!("tensor info #{i}");
            let name = self.string()?;
            self.what = format!("tensor info #{i} ({name})");
            let n_dims = self.u32()?;
            self.check_count(n_dims.into(), 8, &format!("dimension ({})", self.what))?;
            let dims = (0..n_dims).map(|_| self.u64()).collect::<Result<Vec<_>>>()?;
            let ggml_type = GgmlType::from_id(self.u32()?);
            let offset = self.u64()?;
            out.push(GgufTensorInfo { name, dims, ggml_type, offset });
        }
        Ok(out)
    }
}

/// `general.alignment`, checked to be a non-zero power of two like gguf-py does.
fn alignment_of(metadata: &[(String, GgufValue)]) -> std::result::Result<u64, String> {
    let Some((_, v)) = metadata.iter().find(|(k, _)| k == "general.alignment") else {
        return Ok(DEFAULT_ALIGNMENT);
    };
    match v.as_u64() {
        Some(a) if a.is_power_of_two() => Ok(a),
        _ => Err(format!("general.alignment is {v:?}, not a power of two")),
    }
}

// ---------------------------------------------------------------------------------------------
// Dequantisation. Each block decoder follows gguf-py's numpy expression: f16 scales are widened
// to f32 first, products of two scales are formed before multiplying by the quant, and
// `d * q + m` / `d * q - m` are two roundings (never fused).

/// Decodes `data` (whole blocks of `ty`) into `out`; the caller has checked the sizes.
fn decode(ty: GgmlType, data: &[u8], out: &mut [f32]) {
    match ty {
        GgmlType::F32 => decode_blocks(data, out, 4, 1, |b, y| y[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        GgmlType::F16 => decode_blocks(data, out, 2, 1, |b, y| y[0] = f16(b, 0)),
        GgmlType::BF16 => decode_blocks(data, out, 2, 1, |b, y| y[0] = bf16(b)),
        GgmlType::Q8_0 => decode_blocks(data, out, 34, 32, block_q8_0),
        GgmlType::Q4_0 => decode_blocks(data, out, 18, 32, block_q4_0),
        GgmlType::Q4_1 => decode_blocks(data, out, 20, 32, block_q4_1),
        GgmlType::Q4_K => decode_blocks(data, out, 144, 256, block_q4_k),
        GgmlType::Q6_K => decode_blocks(data, out, 210, 256, block_q6_k),
        _ => {}
    }
}

fn decode_blocks(data: &[u8], out: &mut [f32], bytes: usize, elems: usize, f: impl Fn(&[u8], &mut [f32])) {
    for (b, y) in data.chunks_exact(bytes).zip(out.chunks_exact_mut(elems)) {
        f(b, y);
    }
}

/// The little-endian f16 at `b[at..at + 2]`, widened exactly.
fn f16(b: &[u8], at: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// bf16 is the top half of an f32 (gguf-py: `int16 -> int32 << 16`, viewed as f32).
fn bf16(b: &[u8]) -> f32 {
    f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16)
}

/// Q8_0: d f16, 32 x i8; y = q * d.
fn block_q8_0(b: &[u8], y: &mut [f32]) {
    let d = f16(b, 0);
    for (y, &q) in y.iter_mut().zip(&b[2..34]) {
        *y = f32::from(q as i8) * d;
    }
}

/// Q4_0: d f16, 16 bytes of nibbles (low nibbles are elements 0..16, high 16..32); y = d * (q - 8).
fn block_q4_0(b: &[u8], y: &mut [f32]) {
    let d = f16(b, 0);
    let (lo, hi) = y.split_at_mut(16);
    for (j, &q) in b[2..18].iter().enumerate() {
        lo[j] = d * f32::from((q & 15) as i8 - 8);
        hi[j] = d * f32::from((q >> 4) as i8 - 8);
    }
}

/// Q4_1: d f16, m f16, 16 bytes of nibbles; y = (d * q) + m.
fn block_q4_1(b: &[u8], y: &mut [f32]) {
    let d = f16(b, 0);
    let m = f16(b, 2);
    let (lo, hi) = y.split_at_mut(16);
    for (j, &q) in b[4..20].iter().enumerate() {
        lo[j] = d * f32::from(q & 15) + m;
        hi[j] = d * f32::from(q >> 4) + m;
    }
}

/// The 6-bit scale and min of sub-block `j` (0..8) of a Q4_K block (ggml's get_scale_min_k4).
fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        ((s[j + 4] & 15) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    }
}

/// Q4_K: d f16, dmin f16, 12 scale bytes, 128 nibble bytes. Each 64-element chunk c takes 32
/// bytes: low nibbles with sub-block 2c, high nibbles with 2c+1; y = (d * sc) * q - (dmin * m).
fn block_q4_k(b: &[u8], y: &mut [f32]) {
    let d = f16(b, 0);
    let dmin = f16(b, 2);
    let scales = &b[4..16];
    let qs = &b[16..144];
    for (c, (q, y)) in qs.chunks_exact(32).zip(y.chunks_exact_mut(64)).enumerate() {
        let (sc1, m1) = scale_min_k4(2 * c, scales);
        let (sc2, m2) = scale_min_k4(2 * c + 1, scales);
        let (d1, dm1) = (d * f32::from(sc1), dmin * f32::from(m1));
        let (d2, dm2) = (d * f32::from(sc2), dmin * f32::from(m2));
        let (lo, hi) = y.split_at_mut(32);
        for (l, &q) in q.iter().enumerate() {
            lo[l] = d1 * f32::from(q & 15) - dm1;
            hi[l] = d2 * f32::from(q >> 4) - dm2;
        }
    }
}

/// Q6_K: ql[128] (low 4 bits), qh[64] (high 2 bits), 16 i8 scales, d f16. Each half h of 128
/// elements uses ql[64h..64h+64] and qh[32h..32h+32]; element 128h + 32g + l has
/// low bits from ql[64h + 32(g&1) + l] (low nibble for g<2, high for g>=2), high bits
/// (qh[32h + l] >> 2g) & 3, and scale index (128h + 32g + l) / 16; y = (d * scale) * (q - 32).
fn block_q6_k(b: &[u8], y: &mut [f32]) {
    let (ql, qh, sc) = (&b[..128], &b[128..192], &b[192..208]);
    let d = f16(b, 208);
    for (h, y) in y.chunks_exact_mut(128).enumerate() {
        let (ql, qh) = (&ql[64 * h..64 * h + 64], &qh[32 * h..32 * h + 32]);
        for (g, y) in y.chunks_exact_mut(32).enumerate() {
            let low_src = &ql[32 * (g & 1)..32 * (g & 1) + 32];
            for (l, y) in y.iter_mut().enumerate() {
                let low = if g < 2 { low_src[l] & 15 } else { low_src[l] >> 4 };
                let high = (qh[l] >> (2 * g)) & 3;
                let q = (low | (high << 4)) as i8 - 32;
                let scale = d * f32::from(sc[(128 * h + 32 * g + l) / 16] as i8);
                *y = scale * f32::from(q);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::gguf_writer::GgufWriter as Writer;

    fn f16_bytes(x: f32) -> [u8; 2] {
        half::f16::from_f32(x).to_bits().to_le_bytes()
    }

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn parse(bytes: Vec<u8>) -> Result<GgufFile> {
        GgufFile::from_bytes("test.gguf", bytes)
    }

    fn err_text(bytes: Vec<u8>) -> String {
        match parse(bytes) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    /// One tensor of one block, decoded through a whole file.
    fn decode_one(ty: u32, dims: &[u64], block: Vec<u8>) -> Vec<f32> {
        let f = parse(Writer::new().tensor("t", dims, ty, block).build()).unwrap();
        f.dequantize("t").unwrap()
    }

    /// A deterministic byte stream for pseudo-random blocks.
    fn bytes_lcg(seed: u64, n: usize) -> Vec<u8> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (s >> 33) as u8
            })
            .collect()
    }

    fn sample_metadata(w: Writer) -> Writer {
        w.kv("general.architecture", GgufValue::String("llama".into()))
            .kv("general.alignment", GgufValue::U32(64))
            .kv("a.u8", GgufValue::U8(200))
            .kv("a.i8", GgufValue::I8(-5))
            .kv("a.u16", GgufValue::U16(60000))
            .kv("a.i16", GgufValue::I16(-30000))
            .kv("a.u32", GgufValue::U32(4_000_000_000))
            .kv("a.i32", GgufValue::I32(-7))
            .kv("a.f32", GgufValue::F32(1e-5))
            .kv("a.bool", GgufValue::Bool(true))
            .kv("a.u64", GgufValue::U64(1 << 40))
            .kv("a.i64", GgufValue::I64(-(1 << 40)))
            .kv("a.f64", GgufValue::F64(0.1))
            .kv(
                "tokenizer.ggml.tokens",
                GgufValue::Array(vec![GgufValue::String("<s>".into()), GgufValue::String("héllo".into())]),
            )
            .kv("tokenizer.ggml.token_type", GgufValue::Array(vec![GgufValue::I32(3), GgufValue::I32(1)]))
            .kv("a.nested", GgufValue::Array(vec![GgufValue::Array(vec![GgufValue::U8(1)]), GgufValue::Array(vec![])]))
    }

    #[test]
    fn metadata_and_shapes_round_trip_v3_and_v2() {
        for version in [3, 2] {
            let w = sample_metadata(Writer::new().version(version))
                .tensor("m", &[3, 2], 0, f32_bytes(&[1., 2., 3., 4., 5., 6.]))
                .tensor("v", &[5], 0, f32_bytes(&[7., 8., 9., 10., 11.]));
            let expected = w.kv.clone();
            let f = parse(w.build()).unwrap();
            assert_eq!(f.version, version);
            assert_eq!(f.metadata, expected);
            assert_eq!(f.alignment, 64);
            assert_eq!(f.data_offset % 64, 0);
            assert_eq!(f.meta("general.architecture").and_then(GgufValue::as_str), Some("llama"));
            assert_eq!(f.meta("a.i8").and_then(GgufValue::as_u64), None);
            assert_eq!(f.meta("a.u32").and_then(GgufValue::as_u64), Some(4_000_000_000));
            assert_eq!(f.meta("a.f32").and_then(GgufValue::as_f64), Some(f64::from(1e-5f32)));
            assert_eq!(f.meta("a.i16").and_then(GgufValue::as_f64), Some(-30000.0));
            assert_eq!(f.meta("tokenizer.ggml.tokens").and_then(GgufValue::as_strings), Some(vec!["<s>", "héllo"]));
            assert_eq!(f.meta("tokenizer.ggml.token_type").and_then(GgufValue::as_strings), None);
            assert_eq!(f.meta("missing"), None);

            let m = f.tensor_info("m").unwrap();
            assert_eq!((m.dims.clone(), m.shape(), m.n_elements(), m.n_bytes()), (vec![3, 2], vec![2, 3], 6, Some(24)));
            assert_eq!(f.tensor_info("v").unwrap().offset, 64, "second tensor starts at the next aligned offset");
            assert_eq!(f.dequantize("m").unwrap(), vec![1., 2., 3., 4., 5., 6.]);
            assert_eq!(f.dequantize("v").unwrap(), vec![7., 8., 9., 10., 11.]);
            assert_eq!(f.raw_bytes("v").unwrap(), f32_bytes(&[7., 8., 9., 10., 11.]).as_slice());
            assert!(f.dequantize("nope").unwrap_err().to_string().contains("no tensor named nope"));
        }
    }

    #[test]
    fn open_reads_a_file_and_names_it_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        std::fs::write(&path, Writer::new().tensor("x", &[2], 0, f32_bytes(&[1.5, -2.0])).build()).unwrap();
        let f = GgufFile::open(&path).unwrap();
        assert_eq!(f.path, path);
        assert_eq!(f.dequantize("x").unwrap(), vec![1.5, -2.0]);
        let missing = GgufFile::open(dir.path().join("absent.gguf")).unwrap_err().to_string();
        assert!(missing.contains("absent.gguf"), "{missing}");
    }

    #[test]
    fn type_names_and_layouts() {
        assert_eq!(GgmlType::from_id(13).name(), "Q5_K");
        assert_eq!(GgmlType::from_id(99).name(), "type id 99");
        assert_eq!(GgmlType::from_id(30), GgmlType::BF16);
        for id in [0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 30, 99] {
            assert_eq!(GgmlType::from_id(id).id(), id);
        }
        assert_eq!(GgmlType::Q4_K.block_layout(), Some((256, 144)));
        assert_eq!(GgmlType::Q6_K.block_layout(), Some((256, 210)));
        assert_eq!(GgmlType::Q4_1.block_bytes(), Some(20));
        assert_eq!(GgmlType::Other(99).block_size(), None);
    }

    #[test]
    fn f16_and_bf16() {
        let f16s: Vec<u8> = [0x3C00u16, 0xC000, 0x7C00, 0x0001].iter().flat_map(|x| x.to_le_bytes()).collect();
        let y = decode_one(1, &[4], f16s);
        assert_eq!(y[..3], [1.0, -2.0, f32::INFINITY]);
        assert_eq!(y[3], 2f32.powi(-24), "smallest subnormal f16 widens exactly");
        let bf16s: Vec<u8> = [0x3F80u16, 0xC040, 0x0000].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(decode_one(30, &[3], bf16s), vec![1.0, -3.0, 0.0]);
    }

    #[test]
    fn q8_0_block() {
        let mut b = f16_bytes(0.25).to_vec();
        b.extend((0..32).map(|i| i as u8)); // q = 0..31
        b[2] = (-128i8) as u8;
        b[33] = 127;
        let y = decode_one(8, &[32], b);
        assert_eq!((y[0], y[1], y[5], y[31]), (-32.0, 0.25, 1.25, 31.75));
    }

    #[test]
    fn q4_0_block() {
        let mut b = f16_bytes(0.5).to_vec();
        b.extend([0u8; 16]);
        b[2] = 0x1F; // low 15 -> y[0], high 1 -> y[16]
        b[17] = 0x80; // low 0 -> y[15], high 8 -> y[31]
        let y = decode_one(2, &[32], b);
        assert_eq!((y[0], y[16], y[15], y[31], y[1]), (3.5, -3.5, -4.0, 0.0, -4.0));
    }

    #[test]
    fn q4_1_block() {
        let mut b = f16_bytes(0.5).to_vec();
        b.extend(f16_bytes(-1.0));
        b.extend([0u8; 16]);
        b[4] = 0x1F;
        let y = decode_one(3, &[32], b);
        assert_eq!((y[0], y[16], y[1], y[17]), (6.5, -0.5, -1.0, -1.0));
    }

    /// d = 0.5, dmin = 0.25; scale bytes chosen so sub-blocks 4 and 5 take their high bits from
    /// bytes 0..4 (sc4 = 2 | 1 << 4 = 18, m4 = 7 | 2 << 4 = 39).
    #[test]
    fn q4_k_block_with_high_scale_bits() {
        let mut scales = [0u8; 12];
        scales[0] = 0b01_000011; // sc0 = 3; top bits feed sc4
        scales[4] = 0b10_000101; // m0 = 5; top bits feed m4
        scales[8] = 0x72; // sc4 low 2, m4 low 7
        scales[9] = 0x21; // sc5 = 1, m5 = 2
        assert_eq!(
            (0..8).map(|j| scale_min_k4(j, &scales)).collect::<Vec<_>>(),
            vec![(3, 5), (0, 0), (0, 0), (0, 0), (18, 39), (1, 2), (0, 0), (0, 0)]
        );
        let mut b = f16_bytes(0.5).to_vec();
        b.extend(f16_bytes(0.25));
        b.extend(scales);
        let mut qs = [0u8; 128];
        qs[0] = 0x7A; // y[0]: low 10 with (3, 5); y[32]: high 7 with (0, 0)
        qs[64] = 0x3F; // y[128]: low 15 with (18, 39); y[160]: high 3 with (1, 2)
        b.extend(qs);
        let y = decode_one(12, &[256], b);
        assert_eq!(y.len(), 256);
        assert_eq!(y[0], 0.5 * 3.0 * 10.0 - 0.25 * 5.0); // 13.75
        assert_eq!(y[1], -1.25);
        assert_eq!(y[32], 0.0);
        assert_eq!(y[128], 0.5 * 18.0 * 15.0 - 0.25 * 39.0); // 125.25
        assert_eq!(y[129], -9.75);
        assert_eq!(y[160], 0.5 * 1.0 * 3.0 - 0.25 * 2.0); // 1.0
        assert_eq!(y[255], 0.0);
    }

    /// Element e = 128h + 32g + l: low bits from ql, high bits from qh >> 2g, scale e / 16.
    #[test]
    fn q6_k_block() {
        let mut ql = [0u8; 128];
        let mut qh = [0u8; 64];
        let mut sc = [0i8; 16];
        sc[0] = -3;
        sc[2] = 5;
        sc[4] = 1;
        sc[6] = -1;
        sc[8] = 7;
        sc[15] = 2;
        ql[0] = 0x9C; // e0 low 12, e64 low 9
        qh[0] = 0b11_10_01_00; // e0 high 0, e32 high 1, e64 high 2, e96 high 3
        ql[32] = 0x5F; // e32 low 15, e96 low 5
        ql[64] = 0x03; // e128 low 3
        qh[32] = 0x03; // e128 high 3
        ql[127] = 0xF0; // e255 low 15
        qh[63] = 0x40; // e255 high 1
        let mut b = ql.to_vec();
        b.extend(qh);
        b.extend(sc.iter().map(|&s| s as u8));
        b.extend(f16_bytes(2.0));
        let y = decode_one(14, &[256], b);
        assert_eq!(y[0], (2.0 * -3.0) * (12.0 - 32.0)); // 120
        assert_eq!(y[1], (2.0 * -3.0) * -32.0); // 192
        assert_eq!(y[32], (2.0 * 5.0) * (31.0 - 32.0)); // -10
        assert_eq!(y[64], (2.0 * 1.0) * (41.0 - 32.0)); // 18
        assert_eq!(y[96], -2.0 * (53.0 - 32.0)); // scale -1: -42
        assert_eq!(y[128], (2.0 * 7.0) * (51.0 - 32.0)); // 266
        assert_eq!(y[255], (2.0 * 2.0) * (31.0 - 32.0)); // -4
        assert_eq!(y[16], 0.0);
    }

    /// ggml's dequantize_row_q4_K / q6_K loops, transcribed literally, agree bit for bit with the
    /// numpy-shaped decoders on pseudo-random blocks (scales avoid NaN/inf f16 patterns).
    #[test]
    fn k_quants_match_ggml_loops() {
        for seed in 0..20 {
            let mut b = bytes_lcg(seed, 144);
            b[..2].copy_from_slice(&f16_bytes(0.013 * (seed as f32 + 1.0)));
            b[2..4].copy_from_slice(&f16_bytes(0.0071 * (seed as f32 + 1.0)));
            let mut got = vec![0f32; 256];
            block_q4_k(&b, &mut got);
            let (d, min, scales, mut q) = (f16(&b, 0), f16(&b, 2), &b[4..16], &b[16..]);
            let mut want = Vec::new();
            let mut is = 0;
            for _ in 0..4 {
                let (sc, m) = scale_min_k4(is, scales);
                let (d1, m1) = (d * sc as f32, min * m as f32);
                let (sc, m) = scale_min_k4(is + 1, scales);
                let (d2, m2) = (d * sc as f32, min * m as f32);
                want.extend((0..32).map(|l| d1 * (q[l] & 0xF) as f32 - m1));
                want.extend((0..32).map(|l| d2 * (q[l] >> 4) as f32 - m2));
                q = &q[32..];
                is += 2;
            }
            assert_eq!(
                got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );

            let mut b = bytes_lcg(seed + 100, 210);
            b[208..].copy_from_slice(&f16_bytes(0.0037 * (seed as f32 + 1.0)));
            block_q6_k(&b, &mut got);
            let d = f16(&b, 208);
            let mut want = vec![0f32; 256];
            for n in 0..2 {
                let (ql, qh, sc) = (&b[64 * n..], &b[128 + 32 * n..], &b[192 + 8 * n..]);
                let y = &mut want[128 * n..];
                for l in 0..32 {
                    let is = l / 16;
                    let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i8 - 32;
                    let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
                    let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
                    let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
                    y[l] = d * sc[is] as i8 as f32 * q1 as f32;
                    y[l + 32] = d * sc[is + 2] as i8 as f32 * q2 as f32;
                    y[l + 64] = d * sc[is + 4] as i8 as f32 * q3 as f32;
                    y[l + 96] = d * sc[is + 6] as i8 as f32 * q4 as f32;
                }
            }
            assert_eq!(
                got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn quantised_rows_are_row_major_in_reversed_dims() {
        // Two Q8_0 rows of 32: dims [32, 2] -> shape [2, 32], row r scaled by r + 1.
        let mut data = Vec::new();
        for r in 0..2 {
            data.extend(f16_bytes(r as f32 + 1.0));
            data.extend((0..32).map(|i| i as u8));
        }
        let f = parse(Writer::new().tensor("w", &[32, 2], 8, data).build()).unwrap();
        assert_eq!(f.tensor_info("w").unwrap().shape(), vec![2, 32]);
        let y = f.dequantize("w").unwrap();
        assert_eq!((y[31], y[32], y[63]), (31.0, 0.0, 62.0));
    }

    /// llama.cpp's converter: w.reshape(n_head, 2, rows/n_head/2, cols).swapaxes(1, 2).
    fn permute(w: &[f32], rows: usize, cols: usize, heads: usize) -> Vec<f32> {
        let half = rows / heads / 2;
        let mut out = Vec::new();
        for h in 0..heads {
            for i in 0..half {
                for pair in 0..2 {
                    let src = h * 2 * half + pair * half + i;
                    out.extend_from_slice(&w[src * cols..(src + 1) * cols]);
                }
            }
        }
        out
    }

    #[test]
    fn unpermute_qk_hand_example_and_inverse() {
        // One head, 4 rows: HF rows [h0 h1 h2 h3] are stored as [h0 h2 h1 h3].
        assert_eq!(unpermute_qk(&[0., 2., 1., 3.], 4, 1, 1), vec![0., 1., 2., 3.]);
        // Two heads of 4 rows, 2 columns: each head is interleaved on its own.
        let stored = [0., 0.5, 2., 2.5, 1., 1.5, 3., 3.5, 4., 4.5, 6., 6.5, 5., 5.5, 7., 7.5];
        let hf: Vec<f32> = (0..8).flat_map(|r| [r as f32, r as f32 + 0.5]).collect();
        assert_eq!(unpermute_qk(&stored, 8, 2, 2), hf);
        assert_eq!(permute(&hf, 8, 2, 2), stored);
        // Inverse of the converter's permutation for q (9 heads) and k (3 heads) sized blocks.
        for (rows, cols, heads) in [(576, 3, 9), (192, 5, 3), (64, 1, 4)] {
            let w: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            assert_eq!(unpermute_qk(&permute(&w, rows, cols, heads), rows, cols, heads), w);
        }
    }

    #[test]
    fn wrong_magic() {
        let mut b = Writer::new().build();
        b[..4].copy_from_slice(b"\x7fELF");
        let e = err_text(b);
        assert!(e.contains("test.gguf") && e.contains("not a GGUF file") && e.contains("7f 45 4c 46"), "{e}");
        let e = err_text(b"GGU".to_vec());
        assert!(e.contains("3 bytes, too short"), "{e}");
    }

    #[test]
    fn versions_1_and_4_are_rejected() {
        let mut b = Writer::new().build();
        b[4..8].copy_from_slice(&1u32.to_le_bytes());
        assert!(err_text(b.clone()).contains("GGUF version 1 is not supported"));
        b[4..8].copy_from_slice(&4u32.to_le_bytes());
        assert!(err_text(b.clone()).contains("unsupported GGUF version 4"));
        b[4..8].copy_from_slice(&3u32.to_be_bytes());
        assert!(err_text(b).contains("big-endian"));
    }

    #[test]
    fn truncated_metadata_names_key_and_offset() {
        let b = sample_metadata(Writer::new()).build();
        // Cut inside the tokens array: its key is named.
        let at = b.windows(5).position(|w| w == b"h\xc3\xa9ll").unwrap();
        let e = err_text(b[..at].to_vec());
        assert!(
            e.contains("truncated")
                && e.contains("\"tokenizer.ggml.tokens\"")
                && e.contains(&format!("needs 6 bytes at byte offset {at}")),
            "{e}"
        );
        // Every prefix fails cleanly, never panics.
        for n in 0..b.len() {
            assert!(parse(b[..n].to_vec()).is_err(), "prefix of {n} bytes parsed");
        }
    }

    #[test]
    fn truncated_tensor_data_names_tensor_and_sizes() {
        let b = Writer::new().tensor("blk.0.w", &[4, 2], 0, f32_bytes(&[0.0; 8])).build();
        let cut = b.len() - 4;
        let e = err_text(b[..cut].to_vec());
        assert!(e.contains(&format!("tensor blk.0.w needs 32 bytes at offset {}", cut + 4 - 32)), "{e}");
        assert!(e.contains(&format!("the file has only {cut}")), "{e}");
    }

    #[test]
    fn unsupported_type_names_type_and_tensor() {
        let f = parse(Writer::new().tensor("blk.0.attn_q.weight", &[256], 13, vec![0; 176]).build()).unwrap();
        assert_eq!(f.raw_bytes("blk.0.attn_q.weight").unwrap().len(), 176);
        let e = f.dequantize("blk.0.attn_q.weight").unwrap_err().to_string();
        assert_eq!(
            e,
            "test.gguf: tensor blk.0.attn_q.weight has type Q5_K, which glassbox cannot dequantise \
             (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K)"
        );
        // An id ggml does not define: the file opens, the tensor cannot be read.
        let f = parse(Writer::new().tensor("odd", &[4], 77, vec![0; 4]).build()).unwrap();
        assert!(f.dequantize("odd").unwrap_err().to_string().contains("type id 77"));
        assert!(f.raw_bytes("odd").unwrap_err().to_string().contains("block layout"));
    }

    #[test]
    fn dims_not_divisible_by_block_size() {
        let e = err_text(Writer::new().tensor("w", &[48, 2], 2, vec![0; 72]).build());
        assert!(e.contains("tensor w") && e.contains("48") && e.contains("Q4_0 block size 32"), "{e}");
    }

    #[test]
    fn invalid_utf8_and_absurd_counts() {
        let mut b = Writer::new().kv("k", GgufValue::String("abc".into())).build();
        let at = b.len() - 3;
        b[at] = 0xFF;
        let e = err_text(b);
        assert!(e.contains("invalid UTF-8") && e.contains("\"k\""), "{e}");

        let mut b = Writer::new().build();
        b[16..24].copy_from_slice(&u64::MAX.to_le_bytes()); // kv count
        assert!(err_text(b).contains("metadata key/value count 18446744073709551615"));
        let mut b = Writer::new().build();
        b[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes()); // tensor count
        assert!(err_text(b).contains("tensor count"));
        let mut b = Writer::new().kv("arr", GgufValue::Array(vec![GgufValue::U8(1)])).build();
        let at = b.len() - 9;
        b[at..at + 8].copy_from_slice(&(u64::MAX / 2).to_le_bytes()); // array length
        let e = err_text(b);
        assert!(e.contains("array element") && e.contains("\"arr\""), "{e}");
        let mut b = Writer::new().kv("s", GgufValue::String("x".into())).build();
        let at = b.len() - 9;
        b[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes()); // string length
        assert!(err_text(b).contains("truncated"));
    }

    #[test]
    fn bad_alignment_and_duplicates() {
        let e = err_text(Writer::new().kv("general.alignment", GgufValue::U32(48)).build());
        assert!(e.contains("general.alignment") && e.contains("power of two"), "{e}");
        let e = err_text(Writer::new().kv("k", GgufValue::U8(1)).kv("k", GgufValue::U8(2)).build());
        assert!(e.contains("\"k\" appears twice"), "{e}");
        let e = err_text(Writer::new().tensor("t", &[1], 0, vec![0; 4]).tensor("t", &[1], 0, vec![0; 4]).build());
        assert!(e.contains("tensor name t appears twice"), "{e}");
    }

    /// Corrupting any single byte of a valid file gives an error or a file, never a panic.
    #[test]
    fn corrupt_bytes_never_panic() {
        let base = sample_metadata(Writer::new())
            .tensor("q", &[32, 2], 3, bytes_lcg(1, 40))
            .tensor("k", &[256], 12, bytes_lcg(2, 144))
            .build();
        let noise = bytes_lcg(7, base.len());
        for i in 0..base.len() {
            let mut b = base.clone();
            b[i] ^= noise[i] | 1;
            if let Ok(f) = parse(b) {
                for t in &f.tensors {
                    let _ = f.dequantize(&t.name);
                }
            }
        }
    }
}
