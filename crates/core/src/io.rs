//! Safetensors reading and writing. Writes go to a temporary name and are renamed into place,
//! so an interrupted run never leaves a half-written file.

use crate::{Error, Result};
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Write `bytes` to `path` through a temporary file in the same folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// Suffix of a file written as one of a set (see [`commit_set`]).
pub const STAGED_SUFFIX: &str = ".next";

/// `dir/NAME.next`: where a file of a set is written before [`commit_set`] puts it in place.
pub fn staged(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{STAGED_SUFFIX}"))
}

/// Put a set of files in place: each was written whole to its [`staged`] name, and they are
/// renamed in the order given. The last one marks the set: while it is staged, all of them are,
/// so [`recover_set`] can finish a commit cut short instead of leaving files of two versions
/// side by side (a checkpoint's weights of one epoch with the optimiser state of the next).
pub fn commit_set(dir: &Path, names: &[&str]) -> Result<()> {
    for name in names {
        let (from, to) = (staged(dir, name), dir.join(name));
        std::fs::rename(&from, &to).map_err(|e| Error::io(&to, e))?;
    }
    Ok(())
}

/// Finish or undo what a writer of the set `names` (last: the mark, see [`commit_set`]) killed
/// mid-way left in `dir`: with the mark staged the commit is finished; without it the staged
/// files are an incomplete set and are deleted, as are the temporary files of writes cut short.
/// Returns the files deleted. The folder must have no other writer.
pub fn recover_set(dir: &Path, names: &[&str]) -> Result<Vec<PathBuf>> {
    let Some(mark) = names.last() else { return Ok(Vec::new()) };
    let mut removed = Vec::new();
    if staged(dir, mark).exists() {
        let present: Vec<&str> = names.iter().copied().filter(|n| staged(dir, n).exists()).collect();
        commit_set(dir, &present)?;
    } else {
        for name in names {
            let path = staged(dir, name);
            if path.exists() {
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                removed.push(path);
            }
        }
    }
    let ours = |base: &str, _pid: u32| names.contains(&base.strip_suffix(STAGED_SUFFIX).unwrap_or(base));
    removed.extend(remove_temporaries(dir, ours)?);
    Ok(removed)
}

/// Delete the temporary files that [`write_atomic`] leaves when it is killed mid-write,
/// `NAME.<pid>.tmp` in `dir`, for which `remove(NAME, pid)` is true. Returns their paths.
pub fn remove_temporaries(dir: &Path, remove: impl Fn(&str, u32) -> bool) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
        let Some((base, pid)) = name.strip_suffix(".tmp").and_then(|n| n.rsplit_once('.')) else { continue };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        if pid != std::process::id() && remove(base, pid) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            removed.push(path);
        }
    }
    removed.sort();
    Ok(removed)
}

/// Whether process `pid` has ended, so that its temporary files are abandoned: on Linux when
/// /proc has no entry for it (a process of another machine writing to a shared folder is not
/// seen); elsewhere never assumed.
pub fn process_ended(pid: u32) -> bool {
    cfg!(target_os = "linux") && Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{pid}")).exists()
}

/// Serialise a value as pretty JSON, atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::format(path, format!("cannot serialise JSON: {e}")))?;
    write_atomic(path, text.as_bytes())
}

pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::format(path, format!("invalid JSON: {e}")))
}

/// A named f32 tensor held on the host, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Write f32 tensors (data in the given order) with string metadata. The header is written
/// here rather than by `safetensors::serialize`, whose metadata order follows a HashMap: with
/// sorted keys the same tensors always give the same bytes, so checkpoints can be compared and
/// hashed.
pub fn write_f32(path: &Path, tensors: &[HostTensor], metadata: HashMap<String, String>) -> Result<()> {
    #[derive(serde::Serialize)]
    struct Entry<'a> {
        dtype: &'static str,
        shape: &'a [usize],
        data_offsets: [usize; 2],
    }
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        let sorted: std::collections::BTreeMap<_, _> = metadata.into_iter().collect();
        header.insert("__metadata__".into(), serde_json::json!(sorted));
    }
    let mut entries = std::collections::BTreeMap::new();
    let mut offset = 0;
    for t in tensors {
        if t.shape.iter().product::<usize>() != t.data.len() {
            return Err(Error::format(path, format!("tensor {}: shape {:?} does not hold {} values", t.name, t.shape, t.data.len())));
        }
        let end = offset + 4 * t.data.len();
        let entry = Entry { dtype: "F32", shape: &t.shape, data_offsets: [offset, end] };
        if entries.insert(t.name.clone(), serde_json::to_value(entry).expect("serialisable")).is_some() {
            return Err(Error::format(path, format!("tensor name {} appears twice", t.name)));
        }
        offset = end;
    }
    header.extend(entries);
    let mut json = serde_json::to_string(&header).expect("serialisable");
    // Pad so that the data starts 8-byte aligned, as the safetensors format recommends.
    while !(8 + json.len()).is_multiple_of(8) {
        json.push(' ');
    }
    let mut buf = Vec::with_capacity(8 + json.len() + offset);
    buf.extend_from_slice(&(json.len() as u64).to_le_bytes());
    buf.extend_from_slice(json.as_bytes());
    for t in tensors {
        for v in &t.data {
            buf.extend_from_slice(&v.to_le_bytes());
        }
    }
    write_atomic(path, &buf)
}

/// A safetensors file read into memory, with its header already validated.
pub struct SafetensorsFile {
    pub path: std::path::PathBuf,
    bytes: Vec<u8>,
}

impl SafetensorsFile {
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let file = SafetensorsFile { path: path.to_path_buf(), bytes };
        file.parse()?;
        Ok(file)
    }

    /// The parsed view; errors describe a corrupt, truncated or oversized header.
    pub fn parse(&self) -> Result<SafeTensors<'_>> {
        if self.bytes.len() < 8 {
            return Err(Error::format(&self.path, format!(
                "not a safetensors file: {} bytes, shorter than the 8-byte header length",
                self.bytes.len()
            )));
        }
        SafeTensors::deserialize(&self.bytes).map_err(|e| {
            let n = u64::from_le_bytes(self.bytes[..8].try_into().unwrap());
            let msg = match e {
                safetensors::SafeTensorError::HeaderTooLarge => {
                    format!("header claims {n} bytes, more than the 100 MB safetensors allows")
                }
                safetensors::SafeTensorError::InvalidHeaderLength => format!(
                    "header claims {n} bytes but the file has only {} after the length field",
                    self.bytes.len() - 8
                ),
                other => format!("corrupt safetensors header or data: {other}"),
            };
            Error::format(&self.path, msg)
        })
    }

    pub fn metadata(&self) -> Result<HashMap<String, String>> {
        let (_, meta) = SafeTensors::read_metadata(&self.bytes)
            .map_err(|e| Error::format(&self.path, format!("corrupt header: {e}")))?;
        Ok(meta.metadata().clone().unwrap_or_default())
    }

    /// All tensors as f32 (F32, F64, F16, BF16 and integer types are converted).
    pub fn tensor_f32(&self, name: &str) -> Result<HostTensor> {
        let st = self.parse()?;
        let view = st
            .tensor(name)
            .map_err(|_| Error::format(&self.path, format!("no tensor named '{name}'")))?;
        let data = to_f32(view.dtype(), view.data())
            .ok_or_else(|| Error::format(&self.path, format!("tensor '{name}' has unsupported dtype {:?}", view.dtype())))?;
        Ok(HostTensor { name: name.to_string(), shape: view.shape().to_vec(), data })
    }

    /// Names, dtypes and shapes in file order (sorted by offset).
    pub fn entries(&self) -> Result<Vec<(String, Dtype, Vec<usize>)>> {
        let st = self.parse()?;
        let mut v: Vec<_> = st
            .iter()
            .map(|(n, t)| (n.to_string(), t.dtype(), t.shape().to_vec(), t.data().as_ptr() as usize))
            .collect();
        v.sort_by_key(|e| e.3);
        Ok(v.into_iter().map(|(n, d, s, _)| (n, d, s)).collect())
    }
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match exp {
        0 if frac == 0 => sign,
        0 => {
            // subnormal: value = frac * 2^-24
            let v = frac as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
        0x1f => sign | 0x7f80_0000 | (frac << 13),
        _ => sign | ((exp + 112) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

/// Decode little-endian raw data of a dtype to f32; None for dtypes we do not read.
pub fn to_f32(dtype: Dtype, raw: &[u8]) -> Option<Vec<f32>> {
    macro_rules! conv {
        ($t:ty, $n:expr) => {
            raw.chunks_exact($n).map(|c| <$t>::from_le_bytes(c.try_into().unwrap()) as f32).collect()
        };
    }
    Some(match dtype {
        Dtype::F32 => conv!(f32, 4),
        Dtype::F64 => conv!(f64, 8),
        Dtype::I64 => conv!(i64, 8),
        Dtype::I32 => conv!(i32, 4),
        Dtype::I16 => conv!(i16, 2),
        Dtype::U16 => conv!(u16, 2),
        Dtype::U32 => conv!(u32, 4),
        Dtype::U8 => raw.iter().map(|&b| b as f32).collect(),
        Dtype::I8 => raw.iter().map(|&b| b as i8 as f32).collect(),
        Dtype::BOOL => raw.iter().map(|&b| (b != 0) as u8 as f32).collect(),
        Dtype::F16 => raw.chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect(),
        Dtype::BF16 => raw
            .chunks_exact(2)
            .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
            .collect(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_known_values() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
    }
}
