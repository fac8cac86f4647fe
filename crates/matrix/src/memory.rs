//! How much memory a build may use: the front ends check an [`Estimate`](crate::Estimate) against it
//! before allocating.

use crate::MatrixError;

/// The memory the system can give this process now without swapping (Linux `MemAvailable` of
/// `/proc/meminfo`, in bytes); `None` where there is no such number (other systems, or an unreadable
/// or malformed file), in which case no limit applies.
pub fn available_memory() -> Option<u64> {
    mem_available(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

/// Below this many bytes a buffer is always allowed, without reading `/proc/meminfo`.
const SMALL: u128 = 64 << 20;

/// Refuses `count` values of `elem_bytes` bytes each (described by `what`) beyond the memory
/// available, or beyond what one allocation can hold where the system does not say. Buffers of up to
/// 64 MiB are always allowed, without asking the system.
///
/// # Errors
/// [`MatrixError::Memory`], with the bytes asked for and the limit.
pub fn check_memory(what: impl FnOnce() -> String, count: usize, elem_bytes: usize) -> Result<(), MatrixError> {
    let bytes = (count as u128).saturating_mul(elem_bytes as u128);
    if bytes <= SMALL {
        return Ok(()); // no system call on the hot paths (each apply checks its batch)
    }
    let available = available_memory().unwrap_or(isize::MAX as u64);
    if bytes > u128::from(available) {
        return Err(MatrixError::Memory { what: what(), bytes, available });
    }
    Ok(())
}

/// Asks the C allocator to keep freed memory in the process: with glibc, allocations up to 1 GiB come
/// from the heap instead of fresh `mmap`s and freed memory is not handed back, so a run that builds
/// block after block (weights, packed weights, outputs) reuses pages instead of faulting in freshly
/// zeroed ones each time (measured on `convmat run` of resnet18 at 224x224: 59,900 minor page faults
/// and 0.26-0.42 s against 27,900 and 0.13-0.14 s). Peak memory is unchanged; memory freed stays
/// reserved until the process ends, so this is for a process that does one job (the command line).
/// Elsewhere (other C libraries and systems) it does nothing.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets allocator parameters; an unsupported value is refused and ignored.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
    }
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes (the file says kB, meaning KiB).
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok()?.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::{check_memory, mem_available};
    use crate::MatrixError;

    #[test]
    fn small_buffers_pass_and_impossible_ones_are_an_error() {
        assert_eq!(check_memory(|| unreachable!(), 1 << 20, 8), Ok(()));
        let e = check_memory(|| "usize::MAX values".into(), usize::MAX, 8).unwrap_err();
        let MatrixError::Memory { what, bytes, .. } = &e else { panic!("{e:?}") };
        assert_eq!((what.as_str(), *bytes), ("usize::MAX values", usize::MAX as u128 * 8));
        assert!(
            e.to_string().starts_with("usize::MAX values: about 147573952589676412920 bytes, more than the "),
            "{e}"
        );
    }

    #[test]
    fn reads_mem_available_in_kib() {
        let text = "MemTotal:       24579584 kB\nMemFree:  100 kB\nMemAvailable:   20000000 kB\n";
        assert_eq!(mem_available(text), Some(20_000_000 * 1024));
        assert_eq!(mem_available("MemTotal: 5 kB\n"), None);
        assert_eq!(mem_available("MemAvailable: lots kB\n"), None);
        // a claim past u64 bytes is no number, not a wrapped one
        assert_eq!(mem_available("MemAvailable: 18446744073709551615 kB\n"), None);
    }
}
