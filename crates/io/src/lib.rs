//! File formats for convmat.
//!
//! - Read weights and biases: `.npy` (float16, bfloat16, float32, float64, integers; C or Fortran
//!   order; either endianness), `.npz` by key, and safetensors (a PyTorch `state_dict` saved with
//!   `safetensors.torch.save_file`: [`read_safetensors_layer`] reads `<layer>.weight` and `<layer>.bias`
//!   and lists the layers when the name is wrong).
//! - Write dense arrays as `.npy`, sparse matrices as `.npz` in SciPy's `save_npz` layout (so
//!   `scipy.sparse.load_npz` opens them) and as Matrix Market `.mtx`, streaming the data (never a
//!   second copy in memory).
//! - Every write is atomic ([`AtomicFile`]): a temporary file in the target directory (on Linux an
//!   unnamed one, so even a killed process leaves nothing behind), renamed over the target. A failure
//!   never leaves a partial file and never clobbers an existing one; `fsync` is opt-in ([`Durability`]).
//! - Large arrays go to the file straight from the caller's buffers with their CRC-32 computed on a
//!   second thread ([`write_npz`], [`write_npy_slice`]): writing costs what `write(2)` costs.
//!
//! ```
//! use convmat_io::{read_array, write_npy, AtomicFile};
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("w.npy");
//! let mut f = AtomicFile::create(&path).unwrap();
//! write_npy(f.writer(), &[2, 2], [1.0f32, 2.0, 3.0, 4.0]).unwrap();
//! f.commit().unwrap();
//! let t = read_array(&path).unwrap();
//! assert_eq!((t.shape, t.data), (vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]));
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod atomic;
mod error;
mod npy;
mod npz;

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub use atomic::{AtomicFile, Durability};
pub use error::IoError;
pub use npy::{header as npy_header, read_npy, write_npy, write_npy_bytes, write_npy_slice, NpyElement};
pub use npz::{write_npz, write_sparse_npz, Extra, NpzEntry};

/// An n-d array read from a file: row-major values as `f64` (exact for every supported dtype but
/// 64-bit integers beyond 2^53) and the dtype it had.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// The shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f64>,
    /// The dtype in the file (`float32`, `bfloat16`, `int8`, ...).
    pub dtype: String,
}

/// Reads an array: `.npy`, `.npz` (`file.npz:key`, or the only array), or a safetensors tensor
/// (`file.safetensors:name`).
///
/// # Errors
/// As the readers; an unknown extension.
pub fn read_array(spec: &Path) -> Result<Tensor, IoError> {
    let (path, key) = split_key(spec);
    match extension(&path).as_str() {
        "npy" => read_npy(&path),
        "npz" => read_npz(&path, key.as_deref()),
        "safetensors" => {
            let key = key.ok_or_else(|| IoError::format(&path, "name the tensor: file.safetensors:name"))?;
            read_safetensors(&path, &key)
        }
        _ => Err(IoError::Extension { path, expected: ".npy, .npz[:key] or .safetensors:name" }),
    }
}

/// `file.npz:key` -> (`file.npz`, `key`); a path without a key is returned whole.
fn split_key(spec: &Path) -> (PathBuf, Option<String>) {
    let text = spec.to_string_lossy();
    if let Some((file, key)) = text.rsplit_once(':') {
        if [".npz", ".safetensors"].iter().any(|e| file.ends_with(e)) {
            return (PathBuf::from(file), Some(key.to_string()));
        }
    }
    (spec.to_path_buf(), None)
}

fn extension(path: &Path) -> String {
    path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase()
}

fn open_zip(path: &Path) -> Result<zip::ZipArchive<File>, IoError> {
    let f = File::open(path).map_err(|e| IoError::os(path, e))?;
    zip::ZipArchive::new(f).map_err(|e| IoError::format(path, format!("not a valid .npz (zip) file: {e}")))
}

fn zip_names(z: &zip::ZipArchive<File>) -> Vec<String> {
    z.file_names().filter_map(|n| n.ok()).map(|n| n.trim_end_matches(".npy").to_string()).collect()
}

/// The array names in an `.npz` file.
///
/// # Errors
/// A missing or invalid file.
pub fn npz_keys(path: &Path) -> Result<Vec<String>, IoError> {
    let z = open_zip(path)?;
    Ok(zip_names(&z))
}

/// Reads array `key` of an `.npz` file (stored or deflated, as `np.savez` / `np.savez_compressed`
/// write them); without a key, the file must hold exactly one array.
///
/// # Errors
/// A missing or invalid file; a key it does not have (the error lists those it has).
pub fn read_npz(path: &Path, key: Option<&str>) -> Result<Tensor, IoError> {
    let mut z = open_zip(path)?;
    let names = zip_names(&z);
    let key = match key {
        Some(k) => k.to_string(),
        None if names.len() == 1 => names[0].clone(),
        None => {
            return Err(IoError::Missing {
                path: path.into(),
                what: "array (name it: file.npz:key)",
                key: String::new(),
                available: names,
            })
        }
    };
    if !names.contains(&key) {
        return Err(IoError::Missing { path: path.into(), what: "array", key, available: names });
    }
    let mut entry = z.by_name(&format!("{key}.npy")).map_err(|e| IoError::format(path, e.to_string()))?;
    // grows with the bytes actually inflated, never past the size the zip directory declares
    let declared = entry.size();
    let mut bytes = Vec::new();
    entry.by_ref().take(declared).read_to_end(&mut bytes).map_err(|e| IoError::os(path, e))?;
    npy::parse(&path.join(format!("{key}.npy")), &bytes)
}

/// Reads tensor `name` of a safetensors file.
///
/// # Errors
/// A missing or invalid file; a name it does not have (the error lists those it has); an unsupported dtype.
pub fn read_safetensors(path: &Path, name: &str) -> Result<Tensor, IoError> {
    let bytes = std::fs::read(path).map_err(|e| IoError::os(path, e))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| IoError::format(path, format!("not a valid safetensors file: {e}")))?;
    let t = st.tensor(name).map_err(|_| {
        let mut available: Vec<String> = st.names().into_iter().map(String::from).collect();
        available.sort();
        IoError::Missing { path: path.into(), what: "tensor", key: name.to_string(), available }
    })?;
    use safetensors::Dtype;
    let descr = match t.dtype() {
        Dtype::F16 => "<f2",
        Dtype::BF16 => "bfloat16",
        Dtype::F32 => "<f4",
        Dtype::F64 => "<f8",
        Dtype::I8 => "|i1",
        Dtype::I16 => "<i2",
        Dtype::I32 => "<i4",
        Dtype::I64 => "<i8",
        Dtype::U8 => "|u1",
        Dtype::U16 => "<u2",
        Dtype::U32 => "<u4",
        Dtype::U64 => "<u8",
        other => return Err(IoError::Dtype { path: path.into(), dtype: format!("{other:?}") }),
    };
    let shape = t.shape().to_vec();
    let count = npy::element_count(&shape).ok_or_else(|| {
        IoError::format(path, format!("tensor '{name}' has shape {shape:?}, more elements than fit usize"))
    })?;
    let (dtype, data) = npy::decode(path, descr, t.data(), count)?;
    Ok(Tensor { shape, data, dtype })
}

/// The layers of a safetensors `state_dict`: the names `NAME` with a tensor `NAME.weight`, sorted.
///
/// # Errors
/// A missing or invalid file.
pub fn safetensors_layers(path: &Path) -> Result<Vec<String>, IoError> {
    let bytes = std::fs::read(path).map_err(|e| IoError::os(path, e))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| IoError::format(path, format!("not a valid safetensors file: {e}")))?;
    let mut layers: Vec<String> =
        st.names().into_iter().filter_map(|n| n.strip_suffix(".weight").map(String::from)).collect();
    layers.sort();
    Ok(layers)
}

/// A PyTorch layer's `weight` and `bias` from a safetensors `state_dict`.
///
/// # Errors
/// A layer without `<layer>.weight`: the error lists the layers the file has.
pub fn read_safetensors_layer(path: &Path, layer: &str) -> Result<(Tensor, Option<Tensor>), IoError> {
    let weight = match read_safetensors(path, &format!("{layer}.weight")) {
        Err(IoError::Missing { path, .. }) => {
            let available = safetensors_layers(&path)?;
            return Err(IoError::Missing { path, what: "layer", key: layer.to_string(), available });
        }
        r => r?,
    };
    let bias = match read_safetensors(path, &format!("{layer}.bias")) {
        Ok(b) => Some(b),
        Err(IoError::Missing { .. }) => None,
        Err(e) => return Err(e),
    };
    Ok((weight, bias))
}

/// How a compressed sparse matrix is stored: by rows or by columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SparseFormat {
    /// Compressed sparse rows: `indptr` per row, `indices` are columns.
    Csr,
    /// Compressed sparse columns: `indptr` per column, `indices` are rows.
    Csc,
}

impl SparseFormat {
    /// `csr` or `csc` (SciPy's `format` entry).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csr => "csr",
            Self::Csc => "csc",
        }
    }
}

impl std::fmt::Display for SparseFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A compressed sparse matrix to write, borrowed.
pub struct SparseParts<'a, T> {
    /// By rows or by columns.
    pub format: SparseFormat,
    /// `(rows, cols)`.
    pub shape: (usize, usize),
    /// Offsets into `indices`/`data` per major slot.
    pub indptr: &'a [usize],
    /// Minor indices.
    pub indices: &'a [u32],
    /// Values.
    pub data: &'a [T],
}

/// Writes a sparse matrix as Matrix Market coordinate (`real general`, or `integer general` for
/// integer values), 1-based, in storage order.
///
/// # Errors
/// Any write error.
pub fn write_mtx<T: std::fmt::Display + Copy, W: Write>(
    w: &mut W,
    m: &SparseParts<'_, T>,
    integer: bool,
) -> std::io::Result<()> {
    writeln!(w, "%%MatrixMarket matrix coordinate {} general", if integer { "integer" } else { "real" })?;
    writeln!(w, "% written by convmat")?;
    writeln!(w, "{} {} {}", m.shape.0, m.shape.1, m.data.len())?;
    let bad = |k: usize| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "inconsistent sparse matrix: entry {k} is beyond indices ({}) or data ({})",
                m.indices.len(),
                m.data.len()
            ),
        )
    };
    // an empty indptr (no major slots) writes no entries
    for (major, slot) in m.indptr.windows(2).enumerate() {
        for k in slot[0]..slot[1] {
            let (&minor, value) = m.indices.get(k).zip(m.data.get(k)).ok_or_else(|| bad(k))?;
            let (r, c) = match m.format {
                SparseFormat::Csr => (major, minor as usize),
                SparseFormat::Csc => (minor as usize, major),
            };
            writeln!(w, "{} {} {}", r + 1, c + 1, value)?;
        }
    }
    Ok(())
}
