//! Tensor values: ONNX `TensorProto` decoding (every storage ONNX uses) and the small constant tensors
//! that shape subgraphs compute.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

use crate::proto::{data_type as dt, TensorProto, DATA_LOCATION_EXTERNAL};
use crate::OnnxError;

/// The values of a tensor: floating point (read as `f64`, exact for every ONNX float type) or integer.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// float, double, float16, bfloat16.
    Float(Vec<f64>),
    /// int8 .. int64, uint8 .. uint64, bool.
    Int(Vec<i64>),
}

impl Values {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Self::Float(v) => v.len(),
            Self::Int(v) => v.len(),
        }
    }
    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A constant tensor: shape and row-major values.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// The shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Values,
}

impl Tensor {
    /// A float tensor.
    pub fn float(shape: Vec<usize>, v: Vec<f64>) -> Self {
        Self { shape, values: Values::Float(v) }
    }
    /// An integer tensor.
    pub fn int(shape: Vec<usize>, v: Vec<i64>) -> Self {
        Self { shape, values: Values::Int(v) }
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.values.len()
    }
    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    /// The values as `f64`.
    pub fn to_f64(&self) -> Vec<f64> {
        match &self.values {
            Values::Float(v) => v.clone(),
            Values::Int(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }
    /// The values as `i64` (floats truncated toward zero, as a Cast does).
    pub fn to_i64(&self) -> Vec<i64> {
        match &self.values {
            Values::Float(v) => v.iter().map(|&x| x as i64).collect(),
            Values::Int(v) => v.clone(),
        }
    }
    /// Element `i` as `f64`.
    pub fn get_f64(&self, i: usize) -> f64 {
        match &self.values {
            Values::Float(v) => v[i],
            Values::Int(v) => v[i] as f64,
        }
    }
    /// The values of the same kind picked at `idx` (any iterator of indices into this tensor).
    pub(crate) fn pick(&self, shape: Vec<usize>, idx: impl Iterator<Item = usize>) -> Self {
        let values = match &self.values {
            Values::Float(v) => Values::Float(idx.map(|i| v[i]).collect()),
            Values::Int(v) => Values::Int(idx.map(|i| v[i]).collect()),
        };
        Self { shape, values }
    }
}

/// Element size in bytes of a data type convmat reads, or `None`.
fn elem_size(t: i32) -> Option<usize> {
    Some(match t {
        dt::FLOAT | dt::INT32 | dt::UINT32 => 4,
        dt::DOUBLE | dt::INT64 | dt::UINT64 => 8,
        dt::FLOAT16 | dt::BFLOAT16 | dt::INT16 | dt::UINT16 => 2,
        dt::INT8 | dt::UINT8 | dt::BOOL => 1,
        _ => return None,
    })
}

/// The shape a tensor proto declares, checked (no negative dimension).
fn dims(t: &TensorProto) -> Result<Vec<usize>, OnnxError> {
    t.dims
        .iter()
        .map(|&d| {
            usize::try_from(d)
                .map_err(|_| OnnxError::tensor(&t.name, format!("dimension {d} in {:?} is negative", t.dims)))
        })
        .collect()
}

/// Decodes a tensor proto; `dir` is the model's folder, for external data.
///
/// Nothing is allocated from a count the file claims beyond the bytes it holds: the element count is
/// checked against the stored data before any conversion.
pub(crate) fn decode(t: &TensorProto, dir: Option<&Path>) -> Result<Tensor, OnnxError> {
    let shape = dims(t)?;
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| OnnxError::tensor(&t.name, format!("shape {shape:?} overflows")))?;
    let size = elem_size(t.data_type).ok_or_else(|| {
        OnnxError::tensor(
            &t.name,
            format!(
                "data type {} is not supported (convmat reads float, double, float16, bfloat16, int8..int64, uint8..uint64, bool)",
                dt::name(t.data_type)
            ),
        )
    })?;
    let external;
    let raw: Option<&[u8]> = if t.data_location == DATA_LOCATION_EXTERNAL {
        external = read_external(t, dir, n, size)?;
        Some(&external)
    } else if !t.raw_data.is_empty() || n == 0 {
        Some(&t.raw_data)
    } else {
        None
    };
    let values = match raw {
        Some(raw) => {
            if raw.len() / size != n || raw.len() % size != 0 {
                return Err(OnnxError::tensor(
                    &t.name,
                    format!(
                        "shape {shape:?} needs {n} elements ({} bytes) but raw_data holds {} bytes",
                        n * size,
                        raw.len()
                    ),
                ));
            }
            from_raw(t.data_type, raw)
        }
        None => from_typed(t, n)?,
    };
    Ok(Tensor { shape, values })
}

fn from_raw(t: i32, raw: &[u8]) -> Values {
    fn chunks<const N: usize>(raw: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        raw.chunks_exact(N).map(|c| c.try_into().expect("exact chunk"))
    }
    match t {
        dt::FLOAT => Values::Float(chunks::<4>(raw).map(|b| f32::from_le_bytes(b) as f64).collect()),
        dt::DOUBLE => Values::Float(chunks::<8>(raw).map(f64::from_le_bytes).collect()),
        dt::FLOAT16 => Values::Float(chunks::<2>(raw).map(|b| half::f16::from_le_bytes(b).to_f64()).collect()),
        dt::BFLOAT16 => Values::Float(chunks::<2>(raw).map(|b| half::bf16::from_le_bytes(b).to_f64()).collect()),
        dt::INT8 => Values::Int(raw.iter().map(|&b| b as i8 as i64).collect()),
        dt::UINT8 | dt::BOOL => Values::Int(raw.iter().map(|&b| b as i64).collect()),
        dt::INT16 => Values::Int(chunks::<2>(raw).map(|b| i16::from_le_bytes(b) as i64).collect()),
        dt::UINT16 => Values::Int(chunks::<2>(raw).map(|b| u16::from_le_bytes(b) as i64).collect()),
        dt::INT32 => Values::Int(chunks::<4>(raw).map(|b| i32::from_le_bytes(b) as i64).collect()),
        dt::UINT32 => Values::Int(chunks::<4>(raw).map(|b| u32::from_le_bytes(b) as i64).collect()),
        dt::INT64 => Values::Int(chunks::<8>(raw).map(i64::from_le_bytes).collect()),
        // uint64 beyond i64::MAX saturates: convmat uses integers for shapes and indices only
        _ => Values::Int(chunks::<8>(raw).map(|b| i64::try_from(u64::from_le_bytes(b)).unwrap_or(i64::MAX)).collect()),
    }
}

/// The typed repeated fields: float_data (float), double_data (double), int64_data (int64),
/// uint64_data (uint32, uint64), int32_data (everything else, float16/bfloat16 as their bit patterns).
fn from_typed(t: &TensorProto, n: usize) -> Result<Values, OnnxError> {
    let check = |field: &str, len: usize| {
        if len == n {
            Ok(())
        } else {
            Err(OnnxError::tensor(
                &t.name,
                format!("shape {:?} needs {n} elements but {field} holds {len} (and raw_data is empty)", t.dims),
            ))
        }
    };
    Ok(match t.data_type {
        dt::FLOAT => {
            check("float_data", t.float_data.len())?;
            Values::Float(t.float_data.iter().map(|&x| x as f64).collect())
        }
        dt::DOUBLE => {
            check("double_data", t.double_data.len())?;
            Values::Float(t.double_data.clone())
        }
        dt::INT64 => {
            check("int64_data", t.int64_data.len())?;
            Values::Int(t.int64_data.clone())
        }
        dt::UINT32 | dt::UINT64 => {
            check("uint64_data", t.uint64_data.len())?;
            Values::Int(t.uint64_data.iter().map(|&x| i64::try_from(x).unwrap_or(i64::MAX)).collect())
        }
        dt::FLOAT16 => {
            check("int32_data", t.int32_data.len())?;
            Values::Float(t.int32_data.iter().map(|&x| half::f16::from_bits(x as u16).to_f64()).collect())
        }
        dt::BFLOAT16 => {
            check("int32_data", t.int32_data.len())?;
            Values::Float(t.int32_data.iter().map(|&x| half::bf16::from_bits(x as u16).to_f64()).collect())
        }
        _ => {
            check("int32_data", t.int32_data.len())?;
            Values::Int(t.int32_data.iter().map(|&x| x as i64).collect())
        }
    })
}

/// Checks an external tensor's `location`: relative, inside the model's folder (absolute paths and `..`
/// refused). Returns it.
pub(crate) fn check_external(t: &TensorProto) -> Result<String, OnnxError> {
    let location = t.external_data.iter().find(|e| e.key == "location").map(|e| e.value.clone()).unwrap_or_default();
    let fail =
        |what: &str| OnnxError::ExternalData { name: t.name.clone(), location: location.clone(), what: what.into() };
    if location.is_empty() {
        return Err(fail("the tensor is marked external but has no 'location' entry"));
    }
    let rel = Path::new(&location);
    if rel.is_absolute() || location.starts_with('/') || location.starts_with('\\') || location.contains(':') {
        return Err(fail("an absolute path is refused; external data must lie in the model's folder"));
    }
    if rel.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) || location.contains("..") {
        return Err(fail(
            "a path leaving the model's folder ('..') is refused; external data must lie in the model's folder",
        ));
    }
    Ok(location)
}

/// Reads an external tensor's bytes: `location` relative to the model's folder (absolute paths and
/// `..` refused), `offset` and `length` checked against the file before anything is allocated.
fn read_external(t: &TensorProto, dir: Option<&Path>, n: usize, size: usize) -> Result<Vec<u8>, OnnxError> {
    let entry = |k: &str| t.external_data.iter().find(|e| e.key == k).map(|e| e.value.as_str());
    let location = check_external(t)?;
    let rel = Path::new(&location);
    let fail = |what: String| OnnxError::ExternalData { name: t.name.clone(), location: location.clone(), what };
    let Some(dir) = dir else {
        return Err(fail("the model was read from memory, so there is no folder to read it from".into()));
    };
    let num = |k: &str| -> Result<Option<u64>, OnnxError> {
        entry(k)
            .map(|v| v.trim().parse::<u64>().map_err(|_| fail(format!("{k} '{v}' is not a non-negative integer"))))
            .transpose()
    };
    let offset = num("offset")?.unwrap_or(0);
    let need = (n as u64).checked_mul(size as u64).ok_or_else(|| fail("size overflows".into()))?;
    let length = num("length")?.unwrap_or(need);
    if length != need {
        return Err(fail(format!("length {length} bytes, but shape {:?} needs {need}", t.dims)));
    }
    let path = dir.join(rel);
    let mut f = std::fs::File::open(&path).map_err(|e| fail(format!("cannot open {}: {e}", path.display())))?;
    let file_len = f.metadata().map_err(|e| fail(e.to_string()))?.len();
    if offset.checked_add(length).is_none_or(|end| end > file_len) {
        return Err(fail(format!(
            "bytes {offset}..{} lie beyond the file's {file_len} bytes",
            offset.saturating_add(length)
        )));
    }
    f.seek(SeekFrom::Start(offset)).map_err(|e| fail(e.to_string()))?;
    let mut buf = vec![0u8; length as usize];
    f.read_exact(&mut buf).map_err(|e| fail(e.to_string()))?;
    Ok(buf)
}

/// Row-major strides of a shape.
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}
