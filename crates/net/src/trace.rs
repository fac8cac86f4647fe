//! A traced run written to a folder: `NNN_<tensor>.npy` per tensor and `trace.json`, in graph order,
//! all or nothing.

use std::path::{Path, PathBuf};

use convmat_io::{write_npy_slice, AtomicFile, NpyElement};
use serde::{Deserialize, Serialize};

use crate::{TraceError, Traced};

/// One line of `trace.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceRecord {
    /// The node that wrote the tensor.
    pub node: String,
    /// Its op.
    pub op: String,
    /// The tensor's name.
    pub tensor: String,
    /// Its shape (batch first).
    pub shape: Vec<usize>,
    /// The `.npy` file inside the folder.
    pub file: String,
}

/// A tensor name as a file name: letters, digits, `-`, `_`, `.` kept, everything else `_`.
fn file_name(k: usize, tensor: &str) -> String {
    let s: String = tensor
        .trim_start_matches(['/', '.'])
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .collect();
    format!("{k:03}_{}.npy", if s.is_empty() { "tensor" } else { &s })
}

/// Writes every traced tensor as `dir/NNN_<tensor>.npy` and `dir/trace.json` (a list of
/// [`TraceRecord`]). `dir` must not exist or be empty; the files are written into a fresh folder beside
/// it that takes its place only when every file is written, so a failure leaves nothing behind.
///
/// # Errors
/// [`TraceError::NotEmpty`]; a write error.
pub fn write_trace<T: NpyElement>(dir: &Path, trace: &[Traced<T>]) -> Result<Vec<TraceRecord>, TraceError> {
    let entries = trace.iter().map(|t| (t.node.clone(), t.op.clone(), t.tensor.clone(), t.value.shape.clone()));
    write_trace_with(dir, entries.collect(), |k, w| write_npy_slice(w, &trace[k].value.shape, &trace[k].value.data))
}

/// [`write_trace`] for tensors of several element types (a quantized run's stored integers beside its
/// floats): `entries` gives each tensor's node, op, name and shape, `write(k, w)` writes tensor `k`'s
/// `.npy` bytes.
///
/// # Errors
/// As [`write_trace`].
pub fn write_trace_with(
    dir: &Path,
    entries: Vec<(String, String, String, Vec<usize>)>,
    mut write: impl FnMut(usize, &mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<Vec<TraceRecord>, TraceError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TraceError::Io { path, source }
    };
    let exists = match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(TraceError::NotEmpty { path: dir.into() });
            }
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(io(dir)(e)),
    };
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let stem = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "trace".into());
    let tmp: PathBuf = parent.join(format!(".{stem}.partial-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let result = (|| {
        let mut records = Vec::with_capacity(entries.len());
        for (k, (node, op, tensor, shape)) in entries.into_iter().enumerate() {
            let file = file_name(k, &tensor);
            let mut f = AtomicFile::create(&tmp.join(&file))?;
            f.write(|w| write(k, w))?;
            f.commit()?;
            records.push(TraceRecord { node, op, tensor, shape, file });
        }
        let mut f = AtomicFile::create(&tmp.join("trace.json"))?;
        f.write(|w| {
            serde_json::to_writer_pretty(&mut *w, &records)?;
            std::io::Write::write_all(w, b"\n")
        })?;
        f.commit()?;
        if exists {
            std::fs::remove_dir(dir).map_err(io(dir))?;
        }
        std::fs::rename(&tmp, dir).map_err(io(dir))?;
        Ok(records)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}
