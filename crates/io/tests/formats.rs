//! Files written by NumPy 2.4 / torch 2.15 (tests/data) read back exactly.

use std::path::PathBuf;

use convmat_io::{npz_keys, read_array, read_npz, read_safetensors_layer};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// a = arange(6).reshape(2, 3) / 4 - 0.5, in C order
const A: [f64; 6] = [-0.5, -0.25, 0.0, 0.25, 0.5, 0.75];

#[test]
fn npy_dtypes_and_orders() {
    for (file, dtype) in [("fortran_f64.npy", "float64"), ("f16.npy", "float16"), ("big_endian_f4.npy", "float32")] {
        let t = read_array(&data(file)).unwrap();
        assert_eq!(
            (t.shape.as_slice(), t.data.as_slice(), t.dtype.as_str()),
            (&[2usize, 3][..], &A[..], dtype),
            "{file}"
        );
    }
    let t = read_array(&data("i8.npy")).unwrap();
    assert_eq!(t.data, A.map(|v| v * 4.0));
    assert_eq!(t.dtype, "int8");
    let t = read_array(&data("u16.npy")).unwrap();
    assert_eq!((t.shape, t.data), (vec![3, 2], (0..6).map(f64::from).collect()));
    let t = read_array(&data("f32_3d_fortran.npy")).unwrap();
    assert_eq!((t.shape, t.data), (vec![2, 3, 4], (0..24).map(f64::from).collect()));
}

#[test]
fn compressed_npz_by_key() {
    let p = data("compressed.npz");
    let mut keys = npz_keys(&p).unwrap();
    keys.sort();
    assert_eq!(keys, ["bias", "weight"]);
    assert_eq!(read_npz(&p, Some("weight")).unwrap().data, A);
    let mut spec = p.clone().into_os_string();
    spec.push(":bias");
    assert_eq!(read_array(&PathBuf::from(spec)).unwrap().data, vec![1.5, -2.0]);
    let e = read_npz(&p, Some("nope")).unwrap_err().to_string();
    assert!(e.contains("no array 'nope'") && e.contains("weight"), "{e}");
    assert!(read_npz(&p, None).unwrap_err().to_string().contains("name it"));
}

#[test]
fn safetensors_bf16_and_f16() {
    let (w, b) = read_safetensors_layer(&data("bf16.safetensors"), "conv").unwrap();
    assert_eq!((w.shape, w.data, w.dtype.as_str()), (vec![2, 3], A.to_vec(), "bfloat16"));
    let b = b.unwrap();
    assert_eq!((b.data, b.dtype.as_str()), (vec![1.0, 2.0], "float16"));
    let e = read_safetensors_layer(&data("bf16.safetensors"), "fc").unwrap_err().to_string();
    assert!(e.contains("no layer 'fc'") && e.contains("conv"), "{e}");
}
