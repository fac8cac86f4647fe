//! Argument parsers shared by the subcommands.

/// A shape given on the command line (`C,H,W`), as one clap value.
#[derive(Clone, Debug)]
pub struct Dims(pub Vec<usize>);

/// Parses `C,H,W` (also `CxHxW`): positive integers (the library's [`parse_dims`]).
///
/// [`parse_dims`]: convmat_shape::parse_dims
pub fn parse_shape(text: &str) -> Result<Dims, String> {
    convmat_shape::parse_dims(text).map(Dims).map_err(|e| e.to_string())
}

/// Shape as `1x32x32`.
pub fn show_shape(shape: &[usize]) -> String {
    shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x")
}

/// Parses `--dtype`: f32, float32, f64, float64 or a fixed-point format (the library's [`Dtype`]).
///
/// [`Dtype`]: convmat_numeric::Dtype
pub fn parse_dtype(text: &str) -> Result<convmat_numeric::Dtype, String> {
    text.parse().map_err(|e: convmat_numeric::NumericError| e.to_string())
}

/// A `--dtype` with the rounding and overflow its text carries (`ap_fixed<8,3>`'s), for `apply`.
#[derive(Clone, Copy, Debug)]
pub struct TypedDtype {
    /// The element type.
    pub dtype: convmat_numeric::Dtype,
    /// The fixed-point type as written, if fixed point.
    pub fixed: Option<convmat_numeric::FixedType>,
}

/// Parses `--dtype` as [`parse_dtype`], keeping a fixed-point type's modes (the library's `FixedType`).
pub fn parse_typed_dtype(text: &str) -> Result<TypedDtype, String> {
    let dtype = parse_dtype(text)?;
    let fixed =
        dtype.fixed().map(|_| text.parse().map_err(|e: convmat_numeric::NumericError| e.to_string())).transpose()?;
    Ok(TypedDtype { dtype, fixed })
}
