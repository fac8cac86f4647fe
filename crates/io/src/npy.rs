//! The `.npy` format (NumPy's `np.save`): reading any real dtype in C or Fortran order, and streaming
//! writes.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::path::Path;

use crate::{IoError, Tensor};

const MAGIC: &[u8] = b"\x93NUMPY";

/// An element type convmat writes to `.npy`.
pub trait NpyElement: Copy {
    /// NumPy's `descr` (little-endian).
    const DESCR: &'static str;
    /// Appends the little-endian bytes.
    fn put(self, out: &mut Vec<u8>);
    /// The little-endian bytes of a slice: borrowed on little-endian platforms, no copy.
    fn le_bytes(data: &[Self]) -> Cow<'_, [u8]>;
}

macro_rules! npy_element {
    ($t:ty, $d:literal) => {
        impl NpyElement for $t {
            const DESCR: &'static str = $d;
            #[inline]
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn le_bytes(data: &[Self]) -> Cow<'_, [u8]> {
                if cfg!(target_endian = "little") {
                    Cow::Borrowed(bytemuck::cast_slice(data))
                } else {
                    Cow::Owned(data.iter().flat_map(|v| v.to_le_bytes()).collect())
                }
            }
        }
    };
}
npy_element!(f32, "<f4");
npy_element!(f64, "<f8");
npy_element!(i32, "<i4");
npy_element!(i64, "<i8");
npy_element!(u32, "<u4");
npy_element!(u64, "<u8");

/// The `.npy` header for `descr` and `shape` (version 1.0, or 2.0 when the header is long).
pub fn header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let shape_text = match shape {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    let v1 = dict.len() + 1 + 10 <= 65535;
    let prefix = if v1 { 10 } else { 12 };
    let total = (prefix + dict.len() + 1).div_ceil(64) * 64;
    let mut h = Vec::with_capacity(total);
    h.extend_from_slice(MAGIC);
    let len = total - prefix;
    if v1 {
        h.extend_from_slice(&[1, 0]);
        h.extend_from_slice(&(len as u16).to_le_bytes());
    } else {
        h.extend_from_slice(&[2, 0]);
        h.extend_from_slice(&(len as u32).to_le_bytes());
    }
    h.extend_from_slice(dict.as_bytes());
    h.resize(total - 1, b' ');
    h.push(b'\n');
    h
}

/// Writes an array as `.npy` to `w`, streaming the data in chunks (never a second copy in memory).
///
/// # Errors
/// The writer's errors.
pub fn write_npy<T: NpyElement, W: Write>(
    w: &mut W,
    shape: &[usize],
    data: impl IntoIterator<Item = T>,
) -> std::io::Result<()> {
    w.write_all(&header(T::DESCR, shape))?;
    let mut buf = Vec::with_capacity(1 << 16);
    for v in data {
        v.put(&mut buf);
        if buf.len() >= 1 << 16 {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)
}

/// Writes an array held in a slice as `.npy` to `w`: the header, then the slice's bytes in one write
/// (no conversion on little-endian platforms).
///
/// # Errors
/// The writer's errors; `InvalidInput` if `shape` does not multiply to `data.len()`.
pub fn write_npy_slice<T: NpyElement, W: Write>(w: &mut W, shape: &[usize], data: &[T]) -> std::io::Result<()> {
    if shape.iter().product::<usize>() != data.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("array shape {shape:?} does not hold {} values", data.len()),
        ));
    }
    w.write_all(&header(T::DESCR, shape))?;
    write_chunked(w, &T::le_bytes(data))
}

/// Writes `bytes` in pieces of 4 MiB. One `write(2)` of hundreds of MB is bimodal on Linux under
/// memory pressure (0.5 s or 2-5 s for 290 MB on this project's VM, measured interleaved), pieces of
/// 4 MiB steady at the fast mode.
pub(crate) fn write_chunked<W: Write>(w: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    bytes.chunks(4 << 20).try_for_each(|c| w.write_all(c))
}

/// Writes a 0-d array of fixed-width bytes (NumPy `|S<n>`), as `np.save(np.array(b'csr'))` does.
///
/// # Errors
/// The writer's errors.
pub fn write_npy_bytes<W: Write>(w: &mut W, text: &str) -> std::io::Result<()> {
    w.write_all(&header(&format!("|S{}", text.len().max(1)), &[]))?;
    w.write_all(text.as_bytes())?;
    if text.is_empty() {
        w.write_all(&[0])?;
    }
    Ok(())
}

/// An `.npy` header.
struct Header {
    /// Where the data starts.
    data: usize,
    descr: String,
    fortran: bool,
    shape: Vec<usize>,
    count: usize,
}

/// Parses `.npy` bytes read from `path` into a [`Tensor`] (values as `f64`, row-major).
pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Tensor, IoError> {
    let Header { data, descr, fortran, shape, count } = parse_header(path, bytes)?;
    let (dtype, values) = decode(path, &descr, &bytes[data..], count)?;
    let values = if fortran && shape.len() > 1 && count > 0 { fortran_to_c(&values, &shape) } else { values };
    Ok(Tensor { shape, data: values, dtype })
}

/// The header at the start of `bytes` (which may end anywhere after it).
fn parse_header(path: &Path, bytes: &[u8]) -> Result<Header, IoError> {
    let bad = |m: &str| IoError::format(path, format!("not a valid .npy file: {m}"));
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad("missing the \\x93NUMPY magic"));
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(bad(&format!("unknown version {v}"))),
    };
    let header = bytes.get(start..start + hlen).ok_or_else(|| bad("truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text"))?;
    let descr = dict_value(header, "descr").ok_or_else(|| bad("no 'descr' in header"))?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"').to_string();
    let fortran = dict_value(header, "fortran_order").ok_or_else(|| bad("no 'fortran_order'"))?.starts_with("True");
    let shape_text = dict_value(header, "shape").ok_or_else(|| bad("no 'shape'"))?;
    let shape: Vec<usize> = shape_text
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad("malformed shape")))
        .collect::<Result<_, _>>()?;
    let count =
        element_count(&shape).ok_or_else(|| bad(&format!("shape {shape:?} has more elements than fit usize")))?;
    Ok(Header { data: start + hlen, descr, fortran, shape, count })
}

/// `prod(shape)`; `None` when the product of the non-zero dimensions overflows, even if a zero makes
/// the array empty (NumPy: "array is too big"), so every product of the shape a caller takes fits.
pub(crate) fn element_count(shape: &[usize]) -> Option<usize> {
    let nonzero = shape.iter().filter(|&&n| n != 0).try_fold(1usize, |a, &n| a.checked_mul(n))?;
    Some(if shape.contains(&0) { 0 } else { nonzero })
}

/// The raw value text of `key` in a Python dict literal header.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'")).or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = header[at + key.len() + 2..].trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') { rest.find(')')? + 1 } else { rest.find([',', '}']).unwrap_or(rest.len()) };
    Some(rest[..end].trim())
}

/// Decodes `count` elements of NumPy dtype `descr` into f64 (exact for every dtype but 64-bit integers
/// beyond 2^53).
pub(crate) fn decode(path: &Path, descr: &str, data: &[u8], count: usize) -> Result<(String, Vec<f64>), IoError> {
    let unsupported = || IoError::Dtype { path: path.to_path_buf(), dtype: descr.to_string() };
    let (order, code) = match descr.as_bytes().first() {
        Some(b'<' | b'|' | b'=') => ('<', &descr[1..]),
        Some(b'>') => ('>', &descr[1..]),
        _ => ('<', descr),
    };
    let (kind, size) = match code {
        "bfloat16" => ('b', 2),
        _ => {
            let kind = code.chars().next().ok_or_else(unsupported)?;
            (kind, code[kind.len_utf8()..].parse::<usize>().map_err(|_| unsupported())?)
        }
    };
    if !matches!((kind, size), ('f', 2 | 4 | 8) | ('b' | 'V', 2) | ('i' | 'u', 1 | 2 | 4 | 8) | ('b', 1)) {
        return Err(unsupported());
    }
    let need = count.checked_mul(size).ok_or_else(unsupported)?;
    if data.len() < need {
        return Err(IoError::format(
            path,
            format!("truncated data: {} bytes for {count} values of {descr}", data.len()),
        ));
    }
    let conv: fn(&[u8]) -> f64 = match (kind, size) {
        ('f', 2) => |b| half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f64(),
        ('b', 2) | ('V', 2) => |b| half::bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f64(),
        ('f', 4) => |b| f32::from_le_bytes(b.try_into().unwrap()) as f64,
        ('f', 8) => |b| f64::from_le_bytes(b.try_into().unwrap()),
        ('i', 1) => |b| b[0] as i8 as f64,
        ('i', 2) => |b| i16::from_le_bytes([b[0], b[1]]) as f64,
        ('i', 4) => |b| i32::from_le_bytes(b.try_into().unwrap()) as f64,
        ('i', 8) => |b| i64::from_le_bytes(b.try_into().unwrap()) as f64,
        ('u', 1) | ('b', 1) => |b| b[0] as f64,
        ('u', 2) => |b| u16::from_le_bytes([b[0], b[1]]) as f64,
        ('u', 4) => |b| u32::from_le_bytes(b.try_into().unwrap()) as f64,
        ('u', 8) => |b| u64::from_le_bytes(b.try_into().unwrap()) as f64,
        _ => return Err(unsupported()),
    };
    let name = match (kind, size) {
        ('f', 2) => "float16".to_string(),
        ('b' | 'V', 2) => "bfloat16".to_string(),
        ('f', n) => format!("float{}", n * 8),
        ('i', n) => format!("int{}", n * 8),
        ('u', n) => format!("uint{}", n * 8),
        _ => "bool".to_string(),
    };
    if order == '<' && (kind, size) == ('f', 8) {
        // np.save's float64: at memory speed
        let values = data[..need].chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect();
        return Ok((name, values));
    }
    let mut scratch = [0u8; 8];
    let values = data[..need]
        .chunks_exact(size)
        .map(|b| {
            if order == '>' && size > 1 {
                scratch[..size].copy_from_slice(b);
                scratch[..size].reverse();
                conv(&scratch[..size])
            } else {
                conv(b)
            }
        })
        .collect();
    Ok((name, values))
}

/// Column-major values of `shape` reordered row-major.
fn fortran_to_c(values: &[f64], shape: &[usize]) -> Vec<f64> {
    let n = shape.len();
    let mut fstride = vec![1; n];
    for d in 1..n {
        fstride[d] = fstride[d - 1] * shape[d - 1];
    }
    let mut out = Vec::with_capacity(values.len());
    let mut idx = vec![0; n];
    for _ in 0..values.len() {
        out.push(values[idx.iter().zip(&fstride).map(|(i, s)| i * s).sum::<usize>()]);
        for d in (0..n).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

/// Reads an `.npy` file.
///
/// # Errors
/// A missing or unreadable file, bad magic, truncated data, an unsupported dtype.
pub fn read_npy(path: &Path) -> Result<Tensor, IoError> {
    let os = |e| IoError::os(path, e);
    let mut file = std::fs::File::open(path).map_err(os)?;
    let len = file.metadata().map_err(os)?.len();
    // The header first. Little-endian float64 in C order (what np.save writes for a float array) then
    // goes from the file straight into the values: no second buffer, no per-element decoding.
    let mut bytes = Vec::new();
    (&mut file).take(4096).read_to_end(&mut bytes).map_err(os)?;
    if let Ok(h) = parse_header(path, &bytes) {
        let fast = matches!(h.descr.as_str(), "<f8" | "=f8") && (!h.fortran || h.shape.len() <= 1);
        let need = h.count.checked_mul(8).and_then(|b| b.checked_add(h.data)).map(|b| b as u64);
        if fast && bytes.len() >= h.data && need.is_some_and(|need| need <= len) {
            let mut values = vec![0f64; h.count];
            let dst: &mut [u8] = bytemuck::cast_slice_mut(&mut values);
            let have = (bytes.len() - h.data).min(dst.len());
            dst[..have].copy_from_slice(&bytes[h.data..h.data + have]);
            file.read_exact(&mut dst[have..]).map_err(os)?;
            return Ok(Tensor { shape: h.shape, data: values, dtype: "float64".to_string() });
        }
    }
    file.read_to_end(&mut bytes).map_err(os)?;
    parse(path, &bytes)
}
