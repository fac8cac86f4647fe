//! Writing `.npz` archives at the speed of the page cache.
//!
//! An `.npz` is a zip archive of `.npy` files. NumPy's `np.savez` (and SciPy's `save_npz`) store the
//! entries uncompressed, so writing one is: for each array a zip local header, the `.npy` header, the
//! array's bytes; then the central directory. This writer sends every array's bytes to the writer in
//! 4 MiB writes straight from the caller's buffer (no element-wise conversion, no staging copy), and
//! computes each entry's CRC-32 (crc32fast, PCLMULQDQ/AVX-512) on a second thread while the first one
//! writes the same bytes, then patches the CRC into the local header (as the zip crate does, whose
//! output this is byte for byte). Writing 290 MB costs what `write(2)` of 290 MB costs.
//!
//! Entries past 4 GiB (or starting past it) get ZIP64 fields, as Python's `zipfile` writes them.
//! Timestamps are MS-DOS's epoch (1980-01-01 00:00), so equal arrays give byte-identical files.

use std::borrow::Cow;
use std::io::{Seek, SeekFrom, Write};

use crate::npy::{header, write_chunked, NpyElement};
use crate::SparseParts;

/// Bodies at least this large get their CRC computed on a second thread while they are written.
const PARALLEL_CRC: usize = 4 << 20;

/// One array of an `.npz`: its name (without `.npy`), its `.npy` header, and its bytes.
pub struct NpzEntry<'a> {
    name: String,
    header: Vec<u8>,
    body: Cow<'a, [u8]>,
}

impl<'a> NpzEntry<'a> {
    /// An n-d array, row-major, borrowed as bytes where the platform is little-endian.
    ///
    /// # Panics
    /// If `shape` does not multiply to `data.len()`.
    pub fn array<T: NpyElement>(name: &str, shape: &[usize], data: &'a [T]) -> Self {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "shape {shape:?} of array {name}");
        Self { name: format!("{name}.npy"), header: header(T::DESCR, shape), body: T::le_bytes(data) }
    }

    /// A 0-d array of fixed-width bytes (NumPy `|S<n>`), as `np.save(np.array(b'csr'))` writes it.
    pub fn text(name: &str, text: &str) -> NpzEntry<'static> {
        let body = if text.is_empty() { vec![0] } else { text.as_bytes().to_vec() };
        NpzEntry {
            name: format!("{name}.npy"),
            header: header(&format!("|S{}", text.len().max(1)), &[]),
            body: Cow::Owned(body),
        }
    }

    fn len(&self) -> u64 {
        (self.header.len() + self.body.len()) as u64
    }
}

/// Writes `entries` as an `.npz` (a zip archive of stored `.npy` files) to `w`, starting at its
/// current position; returns `w`.
///
/// # Errors
/// The writer's errors.
pub fn write_npz<W: Write + Seek>(mut w: W, entries: &[NpzEntry<'_>]) -> std::io::Result<W> {
    write_npz_with(&mut w, entries, false)?;
    Ok(w)
}

/// [`write_npz`], optionally with ZIP64 fields on every entry (to test them without 4 GiB files).
pub(crate) fn write_npz_with<W: Write + Seek>(
    w: &mut W,
    entries: &[NpzEntry<'_>],
    force_zip64: bool,
) -> std::io::Result<()> {
    let base = w.stream_position()?;
    let mut offset = 0u64; // relative to base, as zip offsets are to the archive's start
    let mut central = Vec::new();
    for e in entries {
        let size = e.len();
        let zip64 = force_zip64 || size >= u32::MAX as u64;
        let local = local_header(&e.name, size, 0, zip64);
        w.write_all(&local)?;
        let crc = write_with_crc(w, &e.header, &e.body)?;
        let end = offset + local.len() as u64 + size;
        // the CRC sits at byte 14 of the local header
        w.seek(SeekFrom::Start(base + offset + 14))?;
        w.write_all(&crc.to_le_bytes())?;
        w.seek(SeekFrom::Start(base + end))?;
        central_header(&mut central, &e.name, size, crc, offset, force_zip64);
        offset = end;
    }
    let cd_size = central.len() as u64;
    w.write_all(&central)?;
    end_of_central_directory(w, entries.len() as u64, cd_size, offset, force_zip64)?;
    w.flush()
}

/// Writes a sparse matrix as `.npz` in SciPy's `save_npz` layout (`indices`, `indptr`, `format`,
/// `shape`, `data`; stored, not compressed), plus `extras` arrays (e.g. `bias`, `qformat`), through
/// [`write_npz`]: the index and value arrays go out straight from `m`'s buffers.
/// Index arrays are int32 when every index fits, else int64, as SciPy chooses.
///
/// # Errors
/// Any write error.
pub fn write_sparse_npz<T: NpyElement, W: Write + Seek>(
    w: W,
    m: &SparseParts<'_, T>,
    extras: &[(&str, Extra<'_>)],
) -> Result<W, std::io::Error> {
    let nnz = m.data.len();
    let wide = nnz > i32::MAX as usize || m.shape.0.max(m.shape.1) > i32::MAX as usize;
    // narrow: every index is below a dimension <= i32::MAX, so its u32 bytes are its i32 bytes
    let (indices64, indptr64, indptr32): (Vec<i64>, Vec<i64>, Vec<i32>) = if wide {
        (m.indices.iter().map(|&i| i64::from(i)).collect(), m.indptr.iter().map(|&i| i as i64).collect(), vec![])
    } else {
        (vec![], vec![], m.indptr.iter().map(|&i| i as i32).collect())
    };
    let shape = [m.shape.0 as i64, m.shape.1 as i64];
    let mut entries = Vec::with_capacity(5 + extras.len());
    if wide {
        entries.push(NpzEntry::array("indices", &[nnz], &indices64));
        entries.push(NpzEntry::array("indptr", &[m.indptr.len()], &indptr64));
    } else {
        entries.push(NpzEntry::array("indices", &[nnz], bytemuck::cast_slice::<u32, i32>(m.indices)));
        entries.push(NpzEntry::array("indptr", &[m.indptr.len()], &indptr32));
    }
    entries.push(NpzEntry::text("format", m.format.as_str()));
    entries.push(NpzEntry::array("shape", &[2], &shape));
    entries.push(NpzEntry::array("data", &[nnz], m.data));
    for (name, extra) in extras {
        entries.push(match extra {
            Extra::F64(v) => NpzEntry::array(name, &[v.len()], v),
            Extra::Text(t) => NpzEntry::text(name, t),
        });
    }
    write_npz(w, &entries)
}

/// An extra array in a sparse `.npz`.
pub enum Extra<'a> {
    /// A float64 vector.
    F64(&'a [f64]),
    /// A byte string (`|S<n>`).
    Text(&'a str),
}

/// `header` then `body` to `w`, returning their CRC-32; large bodies are checksummed on a second
/// thread while this one writes them (both only read the buffer).
fn write_with_crc<W: Write>(w: &mut W, header: &[u8], body: &[u8]) -> std::io::Result<u32> {
    let mut h = crc32fast::Hasher::new();
    h.update(header);
    w.write_all(header)?;
    if body.len() < PARALLEL_CRC {
        h.update(body);
        write_chunked(w, body)?;
        return Ok(h.finalize());
    }
    std::thread::scope(|s| {
        let crc = s.spawn(move || {
            h.update(body);
            h.finalize()
        });
        let written = write_chunked(w, body);
        let crc = crc.join().expect("crc32 does not panic");
        written.map(|()| crc)
    })
}

const VERSION_ZIP64: u16 = 45;
const VERSION_STORED: u16 = 10;
/// 1980-01-01 00:00:00 in MS-DOS time and date.
const DOS_TIME: u16 = 0;
const DOS_DATE: u16 = (1 << 5) | 1;

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// `v` as a 32-bit field, or the ZIP64 marker `0xFFFFFFFF`.
fn field32(v: u64, zip64: bool) -> u32 {
    if zip64 || v >= u32::MAX as u64 {
        u32::MAX
    } else {
        v as u32
    }
}

fn local_header(name: &str, size: u64, crc: u32, zip64: bool) -> Vec<u8> {
    let mut h = Vec::with_capacity(30 + name.len() + 20);
    put32(&mut h, 0x0403_4b50);
    put16(&mut h, if zip64 { VERSION_ZIP64 } else { VERSION_STORED });
    put16(&mut h, 0); // flags
    put16(&mut h, 0); // stored
    put16(&mut h, DOS_TIME);
    put16(&mut h, DOS_DATE);
    put32(&mut h, crc);
    put32(&mut h, field32(size, zip64)); // compressed
    put32(&mut h, field32(size, zip64)); // uncompressed
    put16(&mut h, name.len() as u16);
    put16(&mut h, if zip64 { 20 } else { 0 });
    h.extend_from_slice(name.as_bytes());
    if zip64 {
        put16(&mut h, 0x0001);
        put16(&mut h, 16);
        put64(&mut h, size); // uncompressed
        put64(&mut h, size); // compressed
    }
    h
}

fn central_header(out: &mut Vec<u8>, name: &str, size: u64, crc: u32, offset: u64, force_zip64: bool) {
    // the ZIP64 extra holds exactly the fields whose 32-bit slot is 0xFFFFFFFF, in this order
    let big_size = force_zip64 || size >= u32::MAX as u64;
    let big_offset = force_zip64 || offset >= u32::MAX as u64;
    let mut extra = Vec::new();
    if big_size {
        put64(&mut extra, size);
        put64(&mut extra, size);
    }
    if big_offset {
        put64(&mut extra, offset);
    }
    let zip64 = big_size || big_offset;
    let version = if zip64 { VERSION_ZIP64 } else { VERSION_STORED };
    put32(out, 0x0201_4b50);
    put16(out, (3 << 8) | version); // made by: Unix
    put16(out, version);
    put16(out, 0); // flags
    put16(out, 0); // stored
    put16(out, DOS_TIME);
    put16(out, DOS_DATE);
    put32(out, crc);
    put32(out, field32(size, big_size));
    put32(out, field32(size, big_size));
    put16(out, name.len() as u16);
    put16(out, if zip64 { extra.len() as u16 + 4 } else { 0 });
    put16(out, 0); // comment
    put16(out, 0); // disk
    put16(out, 0); // internal attributes
    put32(out, 0o100644 << 16); // external attributes: a regular file, rw-r--r--
    put32(out, field32(offset, big_offset));
    out.extend_from_slice(name.as_bytes());
    if zip64 {
        put16(out, 0x0001);
        put16(out, extra.len() as u16);
        out.extend_from_slice(&extra);
    }
}

fn end_of_central_directory<W: Write>(
    w: &mut W,
    entries: u64,
    cd_size: u64,
    cd_offset: u64,
    force_zip64: bool,
) -> std::io::Result<()> {
    let zip64 = force_zip64 || entries >= 0xFFFF || cd_size >= u32::MAX as u64 || cd_offset >= u32::MAX as u64;
    let mut e = Vec::with_capacity(98);
    if zip64 {
        let record = cd_offset + cd_size;
        put32(&mut e, 0x0606_4b50);
        put64(&mut e, 44); // size of the rest of this record
        put16(&mut e, (3 << 8) | VERSION_ZIP64);
        put16(&mut e, VERSION_ZIP64);
        put32(&mut e, 0); // this disk
        put32(&mut e, 0); // disk of the central directory
        put64(&mut e, entries);
        put64(&mut e, entries);
        put64(&mut e, cd_size);
        put64(&mut e, cd_offset);
        put32(&mut e, 0x0706_4b50); // locator
        put32(&mut e, 0);
        put64(&mut e, record);
        put32(&mut e, 1); // disks
    }
    put32(&mut e, 0x0605_4b50);
    put16(&mut e, 0);
    put16(&mut e, 0);
    let count = if zip64 { 0xFFFF } else { entries as u16 };
    put16(&mut e, count);
    put16(&mut e, count);
    put32(&mut e, field32(cd_size, zip64));
    put32(&mut e, field32(cd_offset, zip64));
    put16(&mut e, 0); // comment
    w.write_all(&e)
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Read};

    use super::*;

    fn entries<'a>(a: &'a [f32], b: &'a [i64]) -> Vec<NpzEntry<'a>> {
        vec![NpzEntry::array("a", &[2, 3], a), NpzEntry::array("b", &[b.len()], b), NpzEntry::text("format", "csr")]
    }

    /// The zip crate (an independent reader) finds every entry with its bytes and CRC, with and without
    /// ZIP64 fields.
    #[test]
    fn zip_reader_reads_what_is_written() {
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, -6.5];
        let b: Vec<i64> = (0..(PARALLEL_CRC as i64 / 8 + 3)).map(|i| i * 7 - 3).collect();
        for zip64 in [false, true] {
            let mut cur = Cursor::new(b"prefix".to_vec());
            cur.seek(SeekFrom::End(0)).unwrap();
            write_npz_with(&mut cur, &entries(&a, &b), zip64).unwrap();
            let bytes = cur.into_inner()[6..].to_vec();
            let mut z = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
            assert_eq!(z.file_names().count(), 3);
            let mut read = |name: &str| {
                let mut out = Vec::new();
                z.by_name(name).unwrap().read_to_end(&mut out).unwrap(); // checks the CRC
                out
            };
            let want_a: Vec<u8> = a.iter().flat_map(|v| v.to_le_bytes()).collect();
            let got = read("a.npy");
            assert_eq!(&got[got.len() - 24..], &want_a[..], "zip64 {zip64}");
            let got = read("b.npy");
            assert_eq!(got.len(), 128 + b.len() * 8, "zip64 {zip64}");
            assert_eq!(&got[128..136], &(-3i64).to_le_bytes());
            assert_eq!(&read("format.npy")[128..], b"csr");
        }
    }

    /// Byte for byte what the zip crate writes for the same stored entries (the writer convmat used
    /// before; SciPy's `load_npz` read its files).
    #[test]
    fn same_bytes_as_the_zip_crate() {
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, -6.5];
        let b: Vec<i64> = (0..(PARALLEL_CRC as i64 / 8 + 3)).map(|i| i * 7 - 3).collect();
        let ours = write_npz(Cursor::new(Vec::new()), &entries(&a, &b)).unwrap().into_inner();
        let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for e in entries(&a, &b) {
            z.start_file(e.name.as_str(), opts).unwrap();
            z.write_all(&e.header).unwrap();
            z.write_all(&e.body).unwrap();
        }
        assert!(ours == z.finish().unwrap().into_inner(), "the archives differ");
    }
}
