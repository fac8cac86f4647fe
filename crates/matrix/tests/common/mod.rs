//! The random layer the property suites (`props.rs`, `range.rs`) draw: a `ConvSpec` with every option
//! from a few small numbers, written once.

use convmat_shape::{ConvSpec, Padding, PaddingMode};

/// One spatial axis: input size, kernel, stride, dilation, output padding (transposed layers).
pub type Axis = (usize, usize, usize, usize, usize);

/// The spec of a random layer and its spatial input size, `channels` being groups, input and output
/// channels per group. `pk` picks the padding: symmetric `pads[..rank]`,
/// explicit begins `pads[..rank]` / ends `pads[3..3 + rank]`, `same` (stride 1), `same_lower`, or `valid`
/// (`same` forms are not drawn for transposed layers, which PyTorch does not have them for).
pub fn random_spec(
    axes: &[Axis],
    (groups, in_per_group, out_per_group): (usize, usize, usize),
    (pk, pads): (u8, &[usize]),
    mode: PaddingMode,
    transposed: bool,
) -> (ConvSpec, Vec<usize>) {
    let rank = axes.len();
    let v = |f: fn(&Axis) -> usize| axes.iter().map(f).collect::<Vec<_>>();
    let padding = match pk {
        0 => Padding::symmetric(&pads[..rank]),
        1 => Padding::Explicit { begin: pads[..rank].to_vec(), end: pads[3..3 + rank].to_vec() },
        2 if !transposed => Padding::Same,
        3 if !transposed => Padding::SameLower,
        _ => Padding::Valid,
    };
    let (cin, cout) = (groups * in_per_group, groups * out_per_group);
    let spec = if transposed {
        ConvSpec::new_transposed(rank, cin, cout, v(|a| a.1)).with_output_padding(v(|a| a.4))
    } else {
        ConvSpec::new(rank, cin, cout, v(|a| a.1)).with_padding_mode(mode)
    };
    let stride = if matches!(padding, Padding::Same) { vec![1; rank] } else { v(|a| a.2) };
    (spec.with_groups(groups).with_stride(stride).with_dilation(v(|a| a.3)).with_padding(padding), v(|a| a.0))
}
