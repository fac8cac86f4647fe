use std::path::PathBuf;

use thiserror::Error;

/// What can go wrong reading or writing a file. Every message names the file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IoError {
    /// The operating system refused (missing file, permissions, full disk, ...).
    #[error("{}: {error}", path.display())]
    Os {
        /// The file.
        path: PathBuf,
        /// Why (shown in the message, so not chained as a source).
        error: std::io::Error,
    },
    /// The folder a file is to be written in does not exist or is not a folder.
    #[error("{}: the folder '{}' {problem} ({error})", path.display(), folder.display())]
    Folder {
        /// The file to write.
        path: PathBuf,
        /// Its folder.
        folder: PathBuf,
        /// `does not exist` or `is not a folder`.
        problem: &'static str,
        /// What the operating system said.
        error: std::io::Error,
    },
    /// The file is not what its name says (truncated, corrupt, wrong magic).
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A dtype convmat does not read.
    #[error("{}: unsupported dtype {dtype}; expected float16, bfloat16, float32, float64 or an integer type", path.display())]
    Dtype {
        /// The file.
        path: PathBuf,
        /// The dtype, as the file spells it.
        dtype: String,
    },
    /// A key or tensor name that is not in the file.
    #[error("{}: no {what} '{key}'; the file has: {}", path.display(), available.join(", "))]
    Missing {
        /// The file.
        path: PathBuf,
        /// `array` or `layer`.
        what: &'static str,
        /// The name asked for.
        key: String,
        /// The names it has.
        available: Vec<String>,
    },
    /// A file extension convmat does not know.
    #[error("{}: unknown file type; expected {expected}", path.display())]
    Extension {
        /// The file.
        path: PathBuf,
        /// What would be valid.
        expected: &'static str,
    },
}

impl IoError {
    pub(crate) fn os(path: &std::path::Path, error: std::io::Error) -> Self {
        Self::Os { path: path.to_path_buf(), error }
    }
    pub(crate) fn format(path: &std::path::Path, message: impl Into<String>) -> Self {
        Self::Format { path: path.to_path_buf(), message: message.into() }
    }
}
