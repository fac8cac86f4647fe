//! [`AtomicFile`]: a file that appears whole or not at all, and leaves nothing behind when its writer
//! dies.

use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use crate::IoError;

/// What [`AtomicFile::commit`] guarantees once it returns.
///
/// Both policies write to a temporary file beside the target and rename it over the target, so an
/// error, a panic or a killed process never leaves a partial file and never clobbers the old one.
/// They differ in what survives a power loss or an operating-system crash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Durability {
    /// Rename without `fsync` (the default, as NumPy's `np.save`/`savez`, SciPy's `save_npz` and
    /// `torch.save` do): the kernel writes the data back on its own schedule (Linux: within ~30 s).
    /// If the machine loses power before then, the target may hold the old file, or (ext4 and most
    /// file systems flush a file that replaces another by rename first, so mostly for a new target)
    /// an empty or short file. Measured on this project's VM for a 290 MB matrix: `fsync` takes
    /// 0.15-1 s, as long as everything else `convmat build` does.
    #[default]
    Atomic,
    /// Also `fsync` the file before the rename and its directory after it: when
    /// [`commit`](AtomicFile::commit) returns, the new file is on disk and survives a power loss.
    Synced,
}

/// Where the data goes until the commit.
enum Temp {
    /// Linux `O_TMPFILE`: a file with no name in the target's directory. A killed process leaves
    /// nothing; the commit links it under a temporary name and renames that over the target (the name
    /// exists for the two system calls between).
    Unnamed,
    /// Elsewhere (or a file system without `O_TMPFILE`): `.NAME.convmat-PID-N.tmp` beside the target,
    /// removed on drop; one a killed process left is removed by the next write of the same target.
    Named(PathBuf),
}

/// A file written atomically: data goes to a temporary file in the target's directory, which
/// [`commit`](Self::commit) renames over the target (after an `fsync` with [`Durability::Synced`]).
/// Dropped without a commit (an error, a panic), the temporary file is removed and the target is
/// untouched. On Linux the temporary file has no name until the commit (`O_TMPFILE`), so a process
/// killed while writing (SIGKILL, out of memory) leaves nothing behind either; where the file system
/// lacks that, a named temporary file left by a dead process is removed by the next write of the same
/// target.
pub struct AtomicFile {
    target: PathBuf,
    dir: PathBuf,
    temp: Temp,
    writer: Option<BufWriter<File>>,
    durability: Durability,
}

impl AtomicFile {
    /// Starts writing `target`, with the default [`Durability::Atomic`].
    ///
    /// # Errors
    /// The target's directory does not exist (the error names it) or is not writable; the target is a
    /// directory.
    pub fn create(target: &Path) -> Result<Self, IoError> {
        Self::create_with(target, Durability::default())
    }

    /// Starts writing `target` with the given durability.
    ///
    /// # Errors
    /// The target's directory does not exist (the error names it) or is not writable; the target is a
    /// directory.
    pub fn create_with(target: &Path, durability: Durability) -> Result<Self, IoError> {
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if target.is_dir() {
            return Err(IoError::format(target, "is a directory; give a file name"));
        }
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                let error = std::io::ErrorKind::NotADirectory.into();
                return Err(IoError::Folder { path: target.into(), folder: dir, problem: "is not a folder", error });
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(IoError::Folder { path: target.into(), folder: dir, problem: "does not exist", error })
            }
            Err(e) => return Err(IoError::os(&dir, e)),
        }
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        remove_stale(&dir, &name);
        let file_and_temp = match unnamed(&dir) {
            Some(f) => (f, Temp::Unnamed),
            None => {
                let (f, temp) = named(&dir, &name).map_err(|e| IoError::os(target, e))?;
                (f, Temp::Named(temp))
            }
        };
        let (f, temp) = file_and_temp;
        Ok(Self {
            target: target.to_path_buf(),
            dir,
            temp,
            writer: Some(BufWriter::with_capacity(1 << 20, f)),
            durability,
        })
    }

    /// The writer (buffered; writes of 1 MiB or more go straight to the file).
    pub fn writer(&mut self) -> &mut BufWriter<File> {
        self.writer.as_mut().expect("not committed yet")
    }

    /// Runs a writer such as [`write_npy`](crate::write_npy) or
    /// [`write_sparse_npz`](crate::write_sparse_npz) on this file, naming the target in any error it
    /// returns.
    ///
    /// # Errors
    /// The writer's, as [`IoError::Os`] with the target's path.
    pub fn write<R>(&mut self, f: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<R>) -> Result<R, IoError> {
        let target = self.target.clone();
        f(self.writer()).map_err(|e| IoError::os(&target, e))
    }

    /// Flushes the temporary file (and fsyncs it, with [`Durability::Synced`]) and renames it over the
    /// target.
    ///
    /// # Errors
    /// Any of those steps (the temporary file is then removed).
    pub fn commit(mut self) -> Result<(), IoError> {
        let w = self.writer.take().expect("committed once");
        let mut cleanup = None;
        let result = self.finish(w, &mut cleanup);
        if let (Err(_), Some(temp)) = (&result, cleanup) {
            let _ = std::fs::remove_file(temp);
        }
        result
    }

    /// Flushes, names the data (`cleanup` holds the name for the caller to remove on failure), renames.
    fn finish(&self, w: BufWriter<File>, cleanup: &mut Option<PathBuf>) -> Result<(), IoError> {
        let os = |e| IoError::os(&self.target, e);
        let mut f = w.into_inner().map_err(|e| os(e.into_error()))?;
        if self.durability == Durability::Synced {
            f.sync_all().map_err(os)?;
        }
        let temp = match &self.temp {
            Temp::Named(temp) => temp.clone(),
            Temp::Unnamed => {
                let name = self.target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                match link(&f, &self.dir, &name) {
                    Ok(temp) => temp,
                    // no /proc, or a file system that cannot link an unnamed file: copy it to a named one
                    Err(_) => {
                        let (mut copy, temp) = named(&self.dir, &name).map_err(os)?;
                        *cleanup = Some(temp.clone());
                        f.rewind().map_err(os)?;
                        std::io::copy(&mut f, &mut copy).map_err(os)?;
                        copy.flush().map_err(os)?;
                        if self.durability == Durability::Synced {
                            copy.sync_all().map_err(os)?;
                        }
                        temp
                    }
                }
            }
        };
        *cleanup = Some(temp.clone());
        drop(f);
        std::fs::rename(&temp, &self.target).map_err(os)?;
        *cleanup = None;
        if self.durability == Durability::Synced {
            // make the rename itself durable; not all platforms allow opening a directory
            if let Ok(d) = File::open(&self.dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            if let Temp::Named(temp) = &self.temp {
                let _ = std::fs::remove_file(temp);
            }
        }
    }
}

/// The temporary name of attempt `attempt` of process `pid` writing `name`.
fn temp_name(name: &str, pid: u32, attempt: u32) -> String {
    format!(".{name}.convmat-{pid}-{attempt}.tmp")
}

/// A new named temporary file beside the target.
fn named(dir: &Path, name: &str) -> std::io::Result<(File, PathBuf)> {
    for attempt in 0..100u32 {
        let temp = dir.join(temp_name(name, std::process::id(), attempt));
        match std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&temp) {
            Ok(f) => return Ok((f, temp)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "could not create a temporary file beside it"))
}

/// An unnamed file in `dir` (readable, for the copy fallback), or `None` where the platform or the
/// file system has no `O_TMPFILE`.
#[cfg(target_os = "linux")]
fn unnamed(dir: &Path) -> Option<File> {
    use rustix::fs::{Mode, OFlags};
    let mode = Mode::from_bits_truncate(0o666); // as a named file: the umask applies
    rustix::fs::open(dir, OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC, mode).ok().map(File::from)
}

#[cfg(not(target_os = "linux"))]
fn unnamed(_dir: &Path) -> Option<File> {
    None
}

/// Gives the unnamed file `f` a temporary name in `dir` (`linkat` through `/proc/self/fd`, as
/// `open(2)` describes for `O_TMPFILE`).
#[cfg(target_os = "linux")]
fn link(f: &File, dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    use std::os::fd::AsRawFd;
    let proc_path = format!("/proc/self/fd/{}", f.as_raw_fd());
    for attempt in 0..100u32 {
        let temp = dir.join(temp_name(name, std::process::id(), attempt));
        let cwd = rustix::fs::CWD;
        match rustix::fs::linkat(cwd, proc_path.as_str(), cwd, &temp, rustix::fs::AtFlags::SYMLINK_FOLLOW) {
            Ok(()) => return Ok(temp),
            Err(rustix::io::Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "could not name the temporary file"))
}

#[cfg(not(target_os = "linux"))]
fn link(_f: &File, _dir: &Path, _name: &str) -> std::io::Result<PathBuf> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// Removes the temporary files of `name` that processes no longer running left in `dir` (killed while
/// writing where there is no `O_TMPFILE`). Where `/proc` is missing, whether a process runs is unknown
/// and nothing is removed; a temporary file of a running process (even one that reused the pid) is
/// kept.
fn remove_stale(dir: &Path, name: &str) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let prefix = format!(".{name}.convmat-");
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)).and_then(|r| r.strip_suffix(".tmp"))
        else {
            continue;
        };
        let Some((pid, attempt)) = rest.split_once('-') else { continue };
        let (Ok(pid), Ok(_)) = (pid.parse::<u32>(), attempt.parse::<u32>()) else { continue };
        if pid != std::process::id() && !proc.join(pid.to_string()).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dead_processes_temporaries_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let touch = |n: &str| std::fs::write(dir.path().join(n), b"x").unwrap();
        // beyond Linux's largest pid_max (2^22): no process has it
        let dead = temp_name("a.npz", u32::MAX - 1, 0);
        let alive = temp_name("a.npz", std::process::id(), 3);
        let other_target = temp_name("b.npz", u32::MAX - 1, 0);
        for n in [&dead, &alive, &other_target, &".a.npz.convmat-x-0.tmp".to_string()] {
            touch(n);
        }
        remove_stale(dir.path(), "a.npz");
        let mut left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        let mut expected = vec![alive, other_target, ".a.npz.convmat-x-0.tmp".to_string()];
        expected.sort();
        if Path::new("/proc/self").exists() {
            assert_eq!(left, expected);
        }
    }

    #[test]
    fn a_missing_folder_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("docs").join("spy.png");
        let e = AtomicFile::create(&target).err().unwrap().to_string();
        assert!(e.contains(&format!("the folder '{}' does not exist", dir.path().join("docs").display())), "{e}");
        let file = dir.path().join("f");
        std::fs::write(&file, b"").unwrap();
        let e = AtomicFile::create(&file.join("x.npy")).err().unwrap().to_string();
        assert!(e.contains("is not a folder"), "{e}");
    }

    #[test]
    fn a_commit_replaces_and_a_drop_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.bin");
        for (content, commit) in [(&b"first"[..], true), (b"second", false), (b"third", true)] {
            let mut f = AtomicFile::create_with(&target, Durability::Synced).unwrap();
            f.writer().write_all(content).unwrap();
            if commit {
                f.commit().unwrap();
            }
            let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert_eq!(names, ["a.bin"]);
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"third");
    }
}
