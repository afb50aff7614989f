//! Mutations: byte-level (bit flips, interesting values, arithmetic on length fields, chunk
//! insertion, deletion and duplication, truncation, splicing, dictionary tokens), text-level for
//! CSV (number tokens, separators, lines) and structure-aware for JSON (numbers made huge,
//! negative or fractional, values of the wrong type, keys dropped, added or duplicated, arrays
//! emptied or grown, subtrees copied between documents).

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Number, Value};

/// Byte values at the edges of signed and unsigned ranges, plus small counts.
const U8S: [u8; 12] = [0, 1, 2, 7, 8, 0x10, 0x20, 0x40, 0x7f, 0x80, 0xfe, 0xff];
/// 16-bit edges, plus f16 1.0, infinity and NaN.
const U16S: [u16; 10] = [0, 1, 0x00ff, 0x0100, 0x7fff, 0x8000, 0xffff, 0x3c00, 0x7c00, 0x7e00];
/// 32-bit edges, small type ids and counts, f32 infinity and NaN, the IDX magic numbers.
const U32S: [u32; 22] = [
    0, 1, 2, 3, 4, 8, 9, 12, 14, 16, 30, 255, 256, 0x10000, 0x7fff_ffff, 0x8000_0000,
    0xffff_fffe, 0xffff_ffff, 0x7f80_0000, 0x7fc0_0000, 0x0000_0803, 0x0000_0801,
];
/// 64-bit edges and sizes near the limits of u32, u64 and the 100 MB safetensors header cap.
const U64S: [u64; 18] = [
    0,
    1,
    2,
    31,
    32,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0001,
    1 << 40,
    1 << 53,
    1 << 60,
    1 << 62,
    i64::MAX as u64,
    1 << 63,
    u64::MAX - 1,
    u64::MAX,
    100_000_000,
    100_000_001,
];

/// Numbers a JSON field may be given: edges of every integer width, huge and tiny floats.
const JSON_INTS: [i128; 20] = [
    0,
    1,
    -1,
    2,
    3,
    7,
    255,
    256,
    65_535,
    65_536,
    i32::MAX as i128,
    1 << 31,
    u32::MAX as i128,
    1 << 32,
    1 << 53,
    (1 << 53) + 1,
    i64::MAX as i128,
    1 << 63,
    u64::MAX as i128,
    i64::MIN as i128,
];
const JSON_FLOATS: [f64; 8] = [0.5, 1.5, -0.0, -1.5, 1e-310, 1e-5, 1e308, -1e308];
/// Tokens that are not valid JSON numbers but look like them.
const RAW_TOKENS: [&str; 9] = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "01", "1.", ".5", "0x10"];

/// Number-like tokens for CSV fields.
const TEXT_NUMBERS: [&str; 16] = [
    "0", "-1", "16", "17", "9", "10", "255", "4294967295", "4294967296", "18446744073709551616",
    "99999999999999999999999", "1.5", "+3", " 7 ", "", "\u{0661}",
];

/// Seed-derived material for one part: dictionary tokens (ASCII runs of binary seeds, keys and
/// strings of JSON seeds) used for insertion and replacement.
#[derive(Clone, Debug, Default)]
pub struct Dictionary {
    pub tokens: Vec<Vec<u8>>,
    pub keys: Vec<String>,
    pub strings: Vec<String>,
}

impl Dictionary {
    /// Collects tokens from `bytes` (a seed of the part).
    pub fn learn(&mut self, bytes: &[u8]) {
        if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
            self.learn_json(&v);
        }
        // Printable runs of 3 or more bytes: keys inside binary headers, field names.
        let mut start = None;
        for (i, &b) in bytes.iter().chain(std::iter::once(&0)).enumerate() {
            let printable = (0x21..0x7f).contains(&b) && b != b'"';
            match (printable, start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    if i - s >= 3 && i - s <= 64 && self.tokens.len() < 4096 {
                        self.tokens.push(bytes[s..i].to_vec());
                    }
                    start = None;
                }
                _ => {}
            }
        }
        self.tokens.sort();
        self.tokens.dedup();
        self.keys.sort();
        self.keys.dedup();
        self.strings.sort();
        self.strings.dedup();
    }

    fn learn_json(&mut self, v: &Value) {
        match v {
            Value::String(s) if s.len() <= 256 && self.strings.len() < 4096 => self.strings.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| self.learn_json(x)),
            Value::Object(m) => {
                for (k, x) in m {
                    if self.keys.len() < 4096 {
                        self.keys.push(k.clone());
                    }
                    self.learn_json(x);
                }
            }
            _ => {}
        }
    }
}

/// An offset into `len` bytes, biased to the start (headers, length fields) and to 4- and
/// 8-byte alignment; `len` must be positive.
fn offset(rng: &mut ChaCha8Rng, len: usize) -> usize {
    match rng.random_range(0..10) {
        0..=3 => rng.random_range(0..len.min(64)),
        4..=5 => {
            let align = if rng.random_bool(0.5) { 4 } else { 8 };
            (rng.random_range(0..len) / align) * align
        }
        _ => rng.random_range(0..len),
    }
}

fn put(bytes: &mut Vec<u8>, at: usize, value: &[u8]) {
    for (i, &b) in value.iter().enumerate() {
        if let Some(slot) = bytes.get_mut(at + i) {
            *slot = b;
        }
    }
}

fn random_bytes(rng: &mut ChaCha8Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.random()).collect()
}

/// One byte-level mutation of `bytes` in place. `other` is another input's same part, for
/// splicing; `max_len` bounds growth.
pub fn mutate_bytes(rng: &mut ChaCha8Rng, bytes: &mut Vec<u8>, other: &[u8], dict: &Dictionary, max_len: usize) {
    if bytes.is_empty() {
        let n = rng.random_range(1..64);
        *bytes = random_bytes(rng, n);
        return;
    }
    let len = bytes.len();
    match rng.random_range(0..17) {
        0 => {
            let at = offset(rng, len);
            bytes[at] ^= 1 << rng.random_range(0..8);
        }
        1 => {
            let at = offset(rng, len);
            bytes[at] = rng.random();
        }
        2 => {
            let at = offset(rng, len);
            bytes[at] = U8S[rng.random_range(0..U8S.len())];
        }
        3 => {
            let v = U16S[rng.random_range(0..U16S.len())];
            let at = offset(rng, len);
            put(bytes, at, &if rng.random_bool(0.5) { v.to_le_bytes() } else { v.to_be_bytes() });
        }
        4 | 5 => {
            let v = U32S[rng.random_range(0..U32S.len())];
            let at = offset(rng, len);
            put(bytes, at, &if rng.random_bool(0.5) { v.to_le_bytes() } else { v.to_be_bytes() });
        }
        6 | 7 => {
            let v = U64S[rng.random_range(0..U64S.len())];
            let at = offset(rng, len);
            put(bytes, at, &if rng.random_bool(0.7) { v.to_le_bytes() } else { v.to_be_bytes() });
        }
        8 => {
            // Arithmetic on a length field: +/- a small delta on a u32 or u64, either byte order.
            let at = offset(rng, len);
            let delta = rng.random_range(1..=35u64);
            let up = rng.random_bool(0.5);
            let wide = rng.random_bool(0.5);
            let le = rng.random_bool(0.6);
            let n = if wide { 8 } else { 4 };
            if at + n <= len {
                let mut raw = [0u8; 8];
                raw[..n].copy_from_slice(&bytes[at..at + n]);
                if !le {
                    raw[..n].reverse();
                }
                let v = u64::from_le_bytes(raw);
                let v = if up { v.wrapping_add(delta) } else { v.wrapping_sub(delta) };
                let mut out = v.to_le_bytes();
                if !le {
                    out[..n].reverse();
                }
                bytes[at..at + n].copy_from_slice(&out[..n]);
            }
        }
        9 => bytes.truncate(rng.random_range(0..len)),
        10 => {
            let at = rng.random_range(0..len);
            let n = rng.random_range(1..=(len - at).min(256));
            bytes.drain(at..at + n);
        }
        11 => {
            // Duplicate a chunk somewhere else.
            let from = rng.random_range(0..len);
            let n = rng.random_range(1..=(len - from).min(256));
            let chunk = bytes[from..from + n].to_vec();
            let at = rng.random_range(0..=len);
            bytes.splice(at..at, chunk);
        }
        12 => {
            let at = rng.random_range(0..=len);
            let n = rng.random_range(1..=32);
            let chunk = if rng.random_bool(0.5) { random_bytes(rng, n) } else { vec![U8S[rng.random_range(0..U8S.len())]; n] };
            bytes.splice(at..at, chunk);
        }
        13 if !other.is_empty() => {
            // Splice: a prefix of this input, a suffix of the other.
            let cut = rng.random_range(0..=len);
            let from = rng.random_range(0..other.len());
            bytes.truncate(cut);
            bytes.extend_from_slice(&other[from..]);
        }
        14 if !dict.tokens.is_empty() => {
            let token = &dict.tokens[rng.random_range(0..dict.tokens.len())];
            let at = rng.random_range(0..=len);
            if rng.random_bool(0.5) {
                bytes.splice(at..at, token.iter().copied());
            } else {
                put(bytes, at.min(len - 1), token);
            }
        }
        15 => {
            let n = rng.random_range(1..=64);
            let tail = random_bytes(rng, n);
            bytes.extend(tail);
        }
        _ => {
            // Overwrite a run with one byte (zeros or 0xff: lengths become 0 or huge).
            let at = offset(rng, len);
            let n = rng.random_range(1..=16).min(len - at);
            let b = if rng.random_bool(0.5) { 0 } else { 0xff };
            bytes[at..at + n].fill(b);
        }
    }
    bytes.truncate(max_len);
}

/// One text mutation for line- and comma-separated numbers, else a byte mutation.
pub fn mutate_text(rng: &mut ChaCha8Rng, bytes: &mut Vec<u8>, other: &[u8], dict: &Dictionary, max_len: usize) {
    let digit_runs: Vec<(usize, usize)> = {
        let mut runs = Vec::new();
        let mut start = None;
        for (i, &b) in bytes.iter().chain(std::iter::once(&b' ')).enumerate() {
            match (b.is_ascii_digit(), start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    runs.push((s, i));
                    start = None;
                }
                _ => {}
            }
        }
        runs
    };
    match rng.random_range(0..8) {
        0 | 1 if !digit_runs.is_empty() => {
            let (s, e) = digit_runs[rng.random_range(0..digit_runs.len())];
            let token = TEXT_NUMBERS[rng.random_range(0..TEXT_NUMBERS.len())];
            bytes.splice(s..e, token.bytes());
        }
        2 => {
            let at = rng.random_range(0..=bytes.len());
            let sep: &[u8] = [&b","[..], b"\n", b"\r\n", b",,", b" ", b"\t", b"\0"][rng.random_range(0..7)];
            bytes.splice(at..at, sep.iter().copied());
        }
        3 | 4 => {
            // Delete, duplicate or swap whole lines.
            let lines: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
            if lines.len() > 1 {
                let mut lines = lines;
                let i = rng.random_range(0..lines.len());
                match rng.random_range(0..3) {
                    0 => {
                        lines.remove(i);
                    }
                    1 => {
                        let l = lines[i].clone();
                        lines.insert(i, l);
                    }
                    _ => {
                        let j = rng.random_range(0..lines.len());
                        lines.swap(i, j);
                    }
                }
                *bytes = lines.join(&b'\n');
            }
        }
        5 if !digit_runs.is_empty() => {
            // Drop a field with its comma.
            let (s, e) = digit_runs[rng.random_range(0..digit_runs.len())];
            let e = if bytes.get(e) == Some(&b',') { e + 1 } else { e };
            bytes.drain(s..e);
        }
        _ => mutate_bytes(rng, bytes, other, dict, max_len),
    }
    bytes.truncate(max_len);
}

/// A mutation of a JSON document: structure-aware when it parses (one to three tree edits,
/// possibly a duplicated key on output, sometimes a byte mutation of the text afterwards), a
/// byte mutation otherwise. `other` is another input's same part, for copying subtrees.
pub fn mutate_json(rng: &mut ChaCha8Rng, bytes: &mut Vec<u8>, other: &[u8], dict: &Dictionary, max_len: usize) {
    let parsed = serde_json::from_slice::<Value>(bytes);
    let Ok(mut doc) = parsed else {
        mutate_bytes(rng, bytes, other, dict, max_len);
        return;
    };
    let donor = serde_json::from_slice::<Value>(other).ok();
    for _ in 0..rng.random_range(1..=3) {
        edit(rng, &mut doc, donor.as_ref(), dict);
    }
    let mut out = String::new();
    let dup = rng.random_bool(0.1);
    emit(rng, &doc, &mut out, dup);
    *bytes = out.into_bytes();
    if rng.random_bool(0.15) {
        mutate_bytes(rng, bytes, other, dict, max_len);
    }
    bytes.truncate(max_len);
}

/// Marks a string that [`emit`] writes without quotes (a token that is not valid JSON).
const RAW: &str = "\u{0}raw:";

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(m) => m.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// The `n`-th node in pre-order.
fn nth_node<'a>(v: &'a mut Value, n: &mut usize) -> Option<&'a mut Value> {
    if *n == 0 {
        return Some(v);
    }
    *n -= 1;
    match v {
        Value::Array(a) => a.iter_mut().find_map(|x| nth_node(x, n)),
        Value::Object(m) => m.values_mut().find_map(|x| nth_node(x, n)),
        _ => None,
    }
}

fn node_mut<'a>(rng: &mut ChaCha8Rng, doc: &'a mut Value) -> &'a mut Value {
    let total = count_nodes(doc);
    let mut n = rng.random_range(0..total);
    nth_node(doc, &mut n).expect("index below the node count")
}

fn random_node(rng: &mut ChaCha8Rng, doc: &Value) -> Value {
    let mut copy = doc.clone();
    node_mut(rng, &mut copy).clone()
}

fn number(rng: &mut ChaCha8Rng, near: Option<&Number>) -> Value {
    if let (Some(n), true) = (near, rng.random_bool(0.4)) {
        let base = n.as_f64().unwrap_or(0.0);
        let x = match rng.random_range(0..6) {
            0 => base + 1.0,
            1 => base - 1.0,
            2 => -base,
            3 => base * 2.0,
            4 => base * 1000.0,
            _ => base + 0.5,
        };
        if x.fract() == 0.0 && x.abs() < 9e18 {
            return Value::from(x as i64);
        }
        return Number::from_f64(x).map_or(Value::Null, Value::Number);
    }
    match rng.random_range(0..10) {
        0..=6 => {
            let v = JSON_INTS[rng.random_range(0..JSON_INTS.len())];
            if let Ok(u) = u64::try_from(v) {
                Value::from(u)
            } else {
                Value::from(v as i64)
            }
        }
        7 | 8 => Number::from_f64(JSON_FLOATS[rng.random_range(0..JSON_FLOATS.len())]).map_or(Value::Null, Value::Number),
        _ => Value::String(format!("{RAW}{}", RAW_TOKENS[rng.random_range(0..RAW_TOKENS.len())])),
    }
}

fn string(rng: &mut ChaCha8Rng, dict: &Dictionary) -> String {
    match rng.random_range(0..8) {
        0..=3 if !dict.strings.is_empty() => dict.strings[rng.random_range(0..dict.strings.len())].clone(),
        4 if !dict.keys.is_empty() => dict.keys[rng.random_range(0..dict.keys.len())].clone(),
        5 => "a".repeat(rng.random_range(0..2000)),
        6 => ["", " ", "\u{0}", "é", "\u{fffd}", "../x", "12", "-1", "\n", "🦀"][rng.random_range(0..10)].to_string(),
        _ => String::new(),
    }
}

fn scalar(rng: &mut ChaCha8Rng, dict: &Dictionary) -> Value {
    match rng.random_range(0..6) {
        0 | 1 => number(rng, None),
        2 | 3 => Value::String(string(rng, dict)),
        4 => Value::Bool(rng.random()),
        _ => Value::Null,
    }
}

fn any_value(rng: &mut ChaCha8Rng, dict: &Dictionary) -> Value {
    match rng.random_range(0..8) {
        0 => Value::Array(Vec::new()),
        1 => Value::Object(Map::new()),
        2 => Value::Array((0..rng.random_range(1..4)).map(|_| scalar(rng, dict)).collect()),
        _ => scalar(rng, dict),
    }
}

/// One edit somewhere in `doc`.
fn edit(rng: &mut ChaCha8Rng, doc: &mut Value, donor: Option<&Value>, dict: &Dictionary) {
    let copy_from = if rng.random_bool(0.1) {
        let source = donor.unwrap_or(doc);
        Some(random_node(rng, source))
    } else {
        None
    };
    let node = node_mut(rng, doc);
    if let Some(v) = copy_from {
        *node = v;
        return;
    }
    if rng.random_bool(0.15) {
        *node = any_value(rng, dict);
        return;
    }
    match node {
        Value::Number(n) => {
            let n = n.clone();
            *node = number(rng, Some(&n));
        }
        Value::String(_) => {
            *node = if rng.random_bool(0.7) { Value::String(string(rng, dict)) } else { number(rng, None) }
        }
        Value::Bool(b) => *b = !*b,
        Value::Null => *node = scalar(rng, dict),
        Value::Array(a) => match rng.random_range(0..7) {
            0 if !a.is_empty() => {
                a.remove(rng.random_range(0..a.len()));
            }
            1 if !a.is_empty() => {
                let i = rng.random_range(0..a.len());
                let x = a[i].clone();
                a.insert(i, x);
            }
            2 if !a.is_empty() => {
                let x = a[rng.random_range(0..a.len())].clone();
                let n = rng.random_range(1..64);
                a.extend(std::iter::repeat_n(x, n));
            }
            3 => a.clear(),
            4 => {
                let at = rng.random_range(0..=a.len());
                a.insert(at, scalar(rng, dict));
            }
            5 => a.reverse(),
            _ => {
                let inner = std::mem::take(a);
                a.push(Value::Array(inner));
            }
        },
        Value::Object(m) => match rng.random_range(0..5) {
            0 | 1 if !m.is_empty() => {
                let key = m.keys().nth(rng.random_range(0..m.len())).cloned().expect("key in range");
                m.remove(&key);
            }
            2 if !dict.keys.is_empty() => {
                let key = dict.keys[rng.random_range(0..dict.keys.len())].clone();
                m.insert(key, any_value(rng, dict));
            }
            3 if !m.is_empty() => {
                // Rename a key.
                let key = m.keys().nth(rng.random_range(0..m.len())).cloned().expect("key in range");
                let v = m.remove(&key).expect("present");
                m.insert(string(rng, dict), v);
            }
            _ => m.clear(),
        },
    }
}

/// Writes `v` as JSON; with `dup`, one object member is written twice (the parser sees a
/// duplicated key). Strings marked [`RAW`] are written bare.
fn emit(rng: &mut ChaCha8Rng, v: &Value, out: &mut String, mut dup: bool) {
    emit_inner(rng, v, out, &mut dup);
}

fn emit_inner(rng: &mut ChaCha8Rng, v: &Value, out: &mut String, dup: &mut bool) {
    match v {
        Value::String(s) if s.starts_with(RAW) => out.push_str(&s[RAW.len()..]),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                emit_inner(rng, x, out, dup);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            let twice = if *dup && !m.is_empty() && rng.random_bool(0.5) {
                *dup = false;
                Some(rng.random_range(0..m.len()))
            } else {
                None
            };
            let mut first = true;
            for (i, (k, x)) in m.iter().enumerate() {
                let copies = if twice == Some(i) { 2 } else { 1 };
                for _ in 0..copies {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    emit_inner(rng, x, out, dup);
                }
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// For a safetensors-like part (an 8-byte little-endian header length, a JSON header, data):
/// mutates the JSON header structurally and rewrites the length (or, sometimes, keeps the old
/// one). None when the part does not have that layout.
pub fn mutate_safetensors(rng: &mut ChaCha8Rng, bytes: &[u8], other: &[u8], dict: &Dictionary, max_len: usize) -> Option<Vec<u8>> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    let header = bytes.get(8..8usize.checked_add(n)?)?;
    let data = &bytes[8 + n..];
    let other_header = other
        .get(..8)
        .and_then(|l| {
            let m = u64::from_le_bytes(l.try_into().ok()?) as usize;
            other.get(8..8usize.checked_add(m)?)
        })
        .unwrap_or(&[]);
    let mut h = header.to_vec();
    mutate_json(rng, &mut h, other_header, dict, max_len);
    if rng.random_bool(0.3) {
        // Pad like the writers do, so the data stays 8-byte aligned.
        while (8 + h.len()) % 8 != 0 {
            h.push(b' ');
        }
    }
    let len = if rng.random_bool(0.9) { h.len() as u64 } else { n as u64 };
    let mut out = len.to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.truncate(max_len);
    Some(out)
}

/// Nodes of a JSON document below its root, or None if it does not parse.
pub fn json_nodes(bytes: &[u8]) -> Option<usize> {
    serde_json::from_slice::<Value>(bytes).ok().map(|v| count_nodes(&v) - 1)
}

/// The document with its `n`-th node below the root (pre-order) removed from its array or
/// object, written compactly; for minimising crashes.
pub fn json_without_node(bytes: &[u8], n: usize) -> Option<Vec<u8>> {
    fn remove(v: &mut Value, n: &mut usize) -> bool {
        match v {
            Value::Array(a) => {
                for j in 0..a.len() {
                    if *n == 0 {
                        a.remove(j);
                        return true;
                    }
                    *n -= 1;
                    if remove(&mut a[j], n) {
                        return true;
                    }
                }
                false
            }
            Value::Object(m) => {
                let keys: Vec<String> = m.keys().cloned().collect();
                for k in keys {
                    if *n == 0 {
                        m.remove(&k);
                        return true;
                    }
                    *n -= 1;
                    if remove(m.get_mut(&k).expect("key listed"), n) {
                        return true;
                    }
                }
                false
            }
            _ => false,
        }
    }
    let mut v = serde_json::from_slice::<Value>(bytes).ok()?;
    let mut n = n;
    remove(&mut v, &mut n).then(|| serde_json::to_vec(&v).expect("JSON"))
}
