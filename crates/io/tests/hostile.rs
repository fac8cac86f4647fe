//! Hostile input (issue 16): files whose headers claim more than they hold or sizes that overflow.
//! Each must be a clean error naming the file and the problem, never a panic (these tests run in the
//! dev profile, where overflow checks are on) and never an allocation sized by the header's claim.

use std::path::{Path, PathBuf};

use convmat_io::{npy_header, read_array, write_mtx, IoError, SparseFormat, SparseParts};

/// A `.npy` file with this header dict and data.
fn npy(dir: &Path, name: &str, dict: &str, data: &[u8]) -> PathBuf {
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    bytes.extend_from_slice(dict.as_bytes());
    bytes.extend_from_slice(data);
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn format_error(path: &Path) -> String {
    match read_array(path) {
        Err(e @ (IoError::Format { .. } | IoError::Dtype { .. })) => e.to_string(),
        other => panic!("{}: {other:?}", path.display()),
    }
}

#[test]
fn npy_shape_whose_product_overflows_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let big = 1u64 << 40;
    let dict = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({big}, {big}, {big}), }}");
    let e = format_error(&npy(dir.path(), "a.npy", &dict, &[0; 8]));
    assert!(e.contains("more elements than fit"), "{e}");
    // Fortran order, too: the strides were computed before any value was read
    let dict = dict.replace("False", "True");
    assert!(format_error(&npy(dir.path(), "b.npy", &dict, &[0; 8])).contains("more elements"));
}

#[test]
fn npy_header_claiming_more_data_than_the_file_holds_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // 2^60 bytes claimed, 8 held: the reader must not try to allocate 2^60 values
    let dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (1152921504606846976,), }";
    let e = format_error(&npy(dir.path(), "a.npy", dict, &[0; 8]));
    assert!(e.contains("truncated data: 8 bytes for 1152921504606846976 values"), "{e}");
    // a header length beyond the file
    let path = dir.path().join("b.npy");
    std::fs::write(&path, b"\x93NUMPY\x02\x00\xff\xff\xff\xff{}").unwrap();
    assert!(format_error(&path).contains("truncated header"));
}

#[test]
fn npy_with_a_zero_dimension_beside_huge_ones_is_an_error_as_in_numpy() {
    // fuzz finding (npy): such a shape holds no values, but any product a caller takes of it overflows;
    // NumPy refuses it too ("array is too big")
    let dir = tempfile::tempdir().unwrap();
    let big = 1u64 << 40;
    for order in ["False", "True"] {
        let dict = format!("{{'descr': '<f4', 'fortran_order': {order}, 'shape': ({big}, {big}, 0), }}");
        assert!(format_error(&npy(dir.path(), "a.npy", &dict, &[])).contains("more elements than fit"));
        let dict = format!("{{'descr': '<f4', 'fortran_order': {order}, 'shape': ({big}, 0, 3), }}");
        let t = read_array(&npy(dir.path(), "b.npy", &dict, &[])).unwrap();
        assert_eq!((t.shape, t.data.len()), (vec![1 << 40, 0, 3], 0));
    }
}

#[test]
fn npy_dtypes_that_are_not_numbers_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    // a multi-byte first character (slicing after it must respect UTF-8), a zero and a huge item size
    for descr in ["<é4", "é", "<f0", "<u99999999999999999999", "<c16", "|O", "<M8[s]", ""] {
        let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (2,), }}");
        let e = format_error(&npy(dir.path(), "a.npy", &dict, &[0; 64]));
        assert!(e.contains("unsupported dtype"), "{descr}: {e}");
    }
}

#[test]
fn the_npy_header_we_write_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.npy");
    let bytes = npy_header("<f8", &[0, 7]);
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(read_array(&path).unwrap().shape, vec![0, 7]);
}

#[test]
fn mtx_of_an_empty_indptr_writes_no_entries() {
    let m = SparseParts::<f64> { format: SparseFormat::Csr, shape: (0, 0), indptr: &[], indices: &[], data: &[] };
    let mut out = Vec::new();
    write_mtx(&mut out, &m, false).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with("0 0 0\n"), "{text}");
}

#[test]
fn mtx_of_inconsistent_parts_is_an_error() {
    let m =
        SparseParts::<f64> { format: SparseFormat::Csr, shape: (1, 3), indptr: &[0, 2], indices: &[1], data: &[1.0] };
    let e = write_mtx(&mut Vec::new(), &m, false).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("entry 1 is beyond indices (1)"), "{e}");
}

#[test]
fn safetensors_whose_shape_overflows_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let big = 1u64 << 40;
    let header = format!(r#"{{"w":{{"dtype":"F32","shape":[{big},{big},{big}],"data_offsets":[0,4]}}}}"#);
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&[0; 4]);
    let path = dir.path().join("a.safetensors");
    std::fs::write(&path, bytes).unwrap();
    let e = read_array(&dir.path().join("a.safetensors:w")).unwrap_err();
    assert!(matches!(e, IoError::Format { .. }), "{e:?}");
}
