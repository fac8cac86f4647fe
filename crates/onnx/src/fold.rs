//! Constant folding: the small integer subgraphs `torch.onnx.export` writes to compute `Pad` amounts and
//! `Reshape` targets (Constant / ConstantOfShape / Concat / Reshape / Slice / Transpose / Cast / Shape /
//! Gather / Unsqueeze / Squeeze / Identity / elementwise arithmetic), evaluated once at load.

use crate::node::Node;
use crate::proto::data_type as dt;
use crate::tensor::{decode, strides, Tensor, Values};
use crate::OnnxError;

/// The ops [`fold`] evaluates when every input is a constant.
pub(crate) const FOLDABLE: &[&str] = &[
    "Constant",
    "ConstantOfShape",
    "Concat",
    "Reshape",
    "Slice",
    "Transpose",
    "Cast",
    "Shape",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Identity",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Neg",
    "Flatten",
    "Dropout",
    "Sqrt",
    "Reciprocal",
    "DequantizeLinear",
];

/// The largest tensor a folded op may create (ConstantOfShape takes its size from data).
const MAX_FOLDED: usize = 1 << 24;

/// Evaluates `node` on constant inputs (`None` for an omitted optional input). `opset` selects the
/// input-or-attribute forms (Slice before 10, Unsqueeze/Squeeze before 13).
pub(crate) fn fold(node: &Node<'_>, inputs: &[Option<&Tensor>], opset: i64) -> Result<Tensor, OnnxError> {
    let op = node.op();
    let name = node.name;
    let input = |i: usize| -> Result<&Tensor, OnnxError> {
        inputs.get(i).copied().flatten().ok_or_else(|| OnnxError::shape(name, op, format!("input {i} is missing")))
    };
    let bad = |what: String| OnnxError::shape(name, op, what);
    match op {
        "Constant" => constant(node),
        "Identity" | "Dropout" => Ok(input(0)?.clone()),
        "Shape" => {
            let s = &input(0)?.shape;
            Ok(shape_of(node, s))
        }
        "Cast" => {
            let t = input(0)?;
            let to = node.int("to").unwrap_or(dt::FLOAT as i64) as i32;
            Ok(match to {
                dt::FLOAT | dt::DOUBLE | dt::FLOAT16 | dt::BFLOAT16 => {
                    let v = t.to_f64();
                    let v = match to {
                        dt::FLOAT => v.iter().map(|&x| x as f32 as f64).collect(),
                        _ => v,
                    };
                    Tensor::float(t.shape.clone(), v)
                }
                dt::BOOL => Tensor::int(t.shape.clone(), t.to_f64().iter().map(|&x| (x != 0.0) as i64).collect()),
                _ => Tensor::int(t.shape.clone(), t.to_i64()),
            })
        }
        "ConstantOfShape" => {
            let shape = non_negative(name, op, "input shape", &input(0)?.to_i64())?;
            let n = checked_len(&shape).filter(|&n| n <= MAX_FOLDED).ok_or_else(|| {
                bad(format!("shape {shape:?} is larger than the {MAX_FOLDED} elements convmat folds"))
            })?;
            let value = match node.attr("value").and_then(|a| a.t.as_ref()) {
                Some(t) => decode(t, None)?,
                None => Tensor::float(vec![1], vec![0.0]),
            };
            if value.len() != 1 {
                return Err(bad(format!("attribute value has {} elements; expected 1", value.len())));
            }
            Ok(value.pick(shape, std::iter::repeat_n(0, n)))
        }
        "Concat" => {
            let ts: Vec<&Tensor> = (0..inputs.len()).map(input).collect::<Result<_, _>>()?;
            if ts.is_empty() {
                return Err(bad("Concat needs at least one input".into()));
            }
            let rank = ts[0].shape.len();
            let axis = axis(node, node.int("axis").unwrap_or(0), rank)?;
            let mut out_shape = ts[0].shape.clone();
            out_shape[axis] = 0;
            for t in &ts {
                if t.shape.len() != rank || t.shape.iter().enumerate().any(|(d, &x)| d != axis && x != ts[0].shape[d]) {
                    return Err(bad(format!(
                        "inputs of shapes {:?} and {:?} do not concatenate on axis {axis}",
                        ts[0].shape, t.shape
                    )));
                }
                out_shape[axis] += t.shape[axis];
            }
            let outer: usize = out_shape[..axis].iter().product();
            let inner: usize = out_shape[axis + 1..].iter().product();
            let float = ts.iter().any(|t| matches!(t.values, Values::Float(_)));
            let mut fv = Vec::new();
            let mut iv = Vec::new();
            for o in 0..outer {
                for t in &ts {
                    let chunk = t.shape[axis] * inner;
                    for i in o * chunk..(o + 1) * chunk {
                        if float {
                            fv.push(t.get_f64(i));
                        } else {
                            iv.push(t.to_i64_at(i));
                        }
                    }
                }
            }
            Ok(if float { Tensor::float(out_shape, fv) } else { Tensor::int(out_shape, iv) })
        }
        "Reshape" | "Flatten" | "Unsqueeze" | "Squeeze" => {
            let t = input(0)?;
            let shape = match op {
                "Reshape" => {
                    let target = input(1)?.to_i64();
                    reshape_target(node, &t.shape, &target, node.int("allowzero").unwrap_or(0) != 0)?
                }
                "Flatten" => {
                    let r = t.shape.len();
                    let a = axis(node, node.int("axis").unwrap_or(1), r + 1)?;
                    vec![t.shape[..a].iter().product(), t.shape[a..].iter().product()]
                }
                _ => {
                    let axes = axes_of(node, inputs, opset)?;
                    squeeze_shape(node, &t.shape, axes.as_deref(), op == "Unsqueeze")?
                }
            };
            Ok(Tensor { shape, values: t.values.clone() })
        }
        "Transpose" => {
            let t = input(0)?;
            let r = t.shape.len();
            let perm: Vec<usize> = match node.ints("perm") {
                Some(p) => p.iter().map(|&a| axis(node, a, r)).collect::<Result<_, _>>()?,
                None => (0..r).rev().collect(),
            };
            let mut seen = vec![false; r];
            if perm.len() != r || perm.iter().any(|&a| std::mem::replace(&mut seen[a], true)) {
                return Err(OnnxError::attr(name, op, "perm", format!("{perm:?}"), format!("a permutation of 0..{r}")));
            }
            let out_shape: Vec<usize> = perm.iter().map(|&a| t.shape[a]).collect();
            let in_strides = strides(&t.shape);
            let n = t.len();
            let os = strides(&out_shape);
            let idx = (0..n).map(|flat| {
                let mut rem = flat;
                let mut src = 0;
                for (d, &a) in perm.iter().enumerate() {
                    src += (rem / os[d]) * in_strides[a];
                    rem %= os[d];
                }
                src
            });
            Ok(t.pick(out_shape.clone(), idx))
        }
        "Slice" => slice(node, inputs, opset),
        "Gather" => {
            let (data, indices) = (input(0)?, input(1)?);
            let r = data.shape.len();
            let a = axis(node, node.int("axis").unwrap_or(0), r)?;
            let dim = data.shape[a];
            if checked_len(&indices.shape)
                .and_then(|n| n.checked_mul(data.len() / dim.max(1)))
                .is_none_or(|n| n > MAX_FOLDED)
            {
                return Err(bad(format!("the gathered tensor is larger than the {MAX_FOLDED} elements convmat folds")));
            }
            let idx: Vec<usize> = indices
                .to_i64()
                .iter()
                .map(|&i| {
                    let j = if i < 0 { i + dim as i64 } else { i };
                    usize::try_from(j)
                        .ok()
                        .filter(|&j| j < dim)
                        .ok_or_else(|| bad(format!("index {i} is out of range for axis {a} of size {dim}")))
                })
                .collect::<Result<_, _>>()?;
            let outer: usize = data.shape[..a].iter().product();
            let inner: usize = data.shape[a + 1..].iter().product();
            let mut shape = data.shape[..a].to_vec();
            shape.extend_from_slice(&indices.shape);
            shape.extend_from_slice(&data.shape[a + 1..]);
            let src = (0..outer).flat_map(|o| {
                let idx = &idx;
                idx.iter().flat_map(move |&j| (0..inner).map(move |i| (o * dim + j) * inner + i))
            });
            Ok(data.pick(shape, src))
        }
        "Neg" | "Sqrt" | "Reciprocal" => {
            let t = input(0)?;
            Ok(match (&t.values, op) {
                (Values::Int(v), "Neg") => Tensor::int(t.shape.clone(), v.iter().map(|x| -x).collect()),
                (_, "Neg") => Tensor::float(t.shape.clone(), t.to_f64().iter().map(|x| -x).collect()),
                (_, "Sqrt") => Tensor::float(t.shape.clone(), t.to_f64().iter().map(|x| x.sqrt()).collect()),
                _ => Tensor::float(t.shape.clone(), t.to_f64().iter().map(|x| 1.0 / x).collect()),
            })
        }
        "Add" | "Sub" | "Mul" | "Div" => {
            let (a, b) = (input(0)?, input(1)?);
            let shape = broadcast(&a.shape, &b.shape)
                .ok_or_else(|| bad(format!("shapes {:?} and {:?} do not broadcast", a.shape, b.shape)))?;
            let (ia, ib) = (broadcast_index(&a.shape, &shape), broadcast_index(&b.shape, &shape));
            let n = checked_len(&shape).filter(|&n| n <= MAX_FOLDED).ok_or_else(|| {
                bad(format!("shape {shape:?} is larger than the {MAX_FOLDED} elements convmat folds"))
            })?;
            Ok(match (&a.values, &b.values) {
                (Values::Int(x), Values::Int(y)) => {
                    let f = |p: i64, q: i64| match op {
                        "Add" => p.wrapping_add(q),
                        "Sub" => p.wrapping_sub(q),
                        "Mul" => p.wrapping_mul(q),
                        _ => p.checked_div(q).unwrap_or(0),
                    };
                    Tensor::int(shape, (0..n).map(|i| f(x[ia(i)], y[ib(i)])).collect())
                }
                _ => {
                    let f = |p: f64, q: f64| match op {
                        "Add" => p + q,
                        "Sub" => p - q,
                        "Mul" => p * q,
                        _ => p / q,
                    };
                    Tensor::float(shape, (0..n).map(|i| f(a.get_f64(ia(i)), b.get_f64(ib(i)))).collect())
                }
            })
        }
        "DequantizeLinear" => crate::quant::dequantize(node, input(0)?, input(1)?, inputs.get(2).copied().flatten()),
        _ => Err(OnnxError::unsupported(name, op, "convmat folds this op only as part of a computed activation")),
    }
}

impl Tensor {
    fn to_i64_at(&self, i: usize) -> i64 {
        match &self.values {
            Values::Float(v) => v[i] as i64,
            Values::Int(v) => v[i],
        }
    }
}

/// The `Shape` op's output for a tensor of shape `s` (with opset 15's `start` / `end`).
pub(crate) fn shape_of(node: &Node<'_>, s: &[usize]) -> Tensor {
    let r = s.len() as i64;
    let clampi = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = clampi(node.int("start").unwrap_or(0));
    let end = clampi(node.int("end").unwrap_or(r));
    let v: Vec<i64> = s[start..end.max(start)].iter().map(|&d| d as i64).collect();
    Tensor::int(vec![v.len()], v)
}

fn constant(node: &Node<'_>) -> Result<Tensor, OnnxError> {
    let (name, op) = (node.name, node.op());
    if let Some(t) = node.attr("value").and_then(|a| a.t.as_ref()) {
        let mut t2 = t.clone();
        if t2.name.is_empty() {
            t2.name = name.to_string();
        }
        return decode(&t2, None);
    }
    if let Some(a) = node.attr("value_float") {
        return Ok(Tensor::float(vec![], vec![a.f as f64]));
    }
    if let Some(a) = node.attr("value_floats") {
        return Ok(Tensor::float(vec![a.floats.len()], a.floats.iter().map(|&x| x as f64).collect()));
    }
    if let Some(a) = node.attr("value_int") {
        return Ok(Tensor::int(vec![], vec![a.i]));
    }
    if let Some(a) = node.attr("value_ints") {
        return Ok(Tensor::int(vec![a.ints.len()], a.ints.clone()));
    }
    Err(OnnxError::unsupported(
        name,
        op,
        "a Constant needs value, value_float(s) or value_int(s) (sparse and string constants are not read)",
    ))
}

pub(crate) fn checked_len(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

pub(crate) fn non_negative(node: &str, op: &str, what: &str, v: &[i64]) -> Result<Vec<usize>, OnnxError> {
    v.iter()
        .map(|&x| {
            usize::try_from(x).map_err(|_| OnnxError::shape(node, op, format!("{what} {v:?} has a negative value")))
        })
        .collect()
}

/// Normalizes a possibly negative axis for rank `r`.
pub(crate) fn axis(node: &Node<'_>, a: i64, r: usize) -> Result<usize, OnnxError> {
    let j = if a < 0 { a + r as i64 } else { a };
    usize::try_from(j)
        .ok()
        .filter(|&j| j < r.max(1))
        .ok_or_else(|| OnnxError::attr(node.name, node.op(), "axis", a, format!("an axis in -{r}..{r}")))
}

/// The target shape of a Reshape (`0` copies the input's dimension unless `allowzero`, `-1` is inferred).
pub(crate) fn reshape_target(
    node: &Node<'_>,
    input: &[usize],
    target: &[i64],
    allowzero: bool,
) -> Result<Vec<usize>, OnnxError> {
    let bad = || OnnxError::shape(node.name, node.op(), format!("cannot reshape {input:?} to {target:?}"));
    let total = checked_len(input).ok_or_else(bad)?;
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(*input.get(i).ok_or_else(bad)?),
            t if t >= 0 => out.push(t as usize),
            _ => return Err(bad()),
        }
    }
    let known = checked_len(&out).ok_or_else(bad)?;
    if let Some(i) = infer {
        if known == 0 || total % known != 0 {
            return Err(bad());
        }
        out[i] = total / known;
    } else if known != total {
        return Err(bad());
    }
    Ok(out)
}

fn axes_of(node: &Node<'_>, inputs: &[Option<&Tensor>], opset: i64) -> Result<Option<Vec<i64>>, OnnxError> {
    if opset >= 13 {
        Ok(inputs.get(1).copied().flatten().map(|t| t.to_i64()))
    } else {
        Ok(node.ints("axes").map(|a| a.to_vec()))
    }
}

/// The shape after Squeeze (`unsqueeze == false`) or Unsqueeze with these axes.
pub(crate) fn squeeze_shape(
    node: &Node<'_>,
    s: &[usize],
    axes: Option<&[i64]>,
    unsqueeze: bool,
) -> Result<Vec<usize>, OnnxError> {
    if unsqueeze {
        let axes = axes.ok_or_else(|| OnnxError::shape(node.name, node.op(), "Unsqueeze needs axes"))?;
        let r = s.len() + axes.len();
        let mut pos: Vec<usize> = axes.iter().map(|&a| axis(node, a, r)).collect::<Result<_, _>>()?;
        pos.sort_unstable();
        let mut out = Vec::with_capacity(r);
        let mut it = s.iter();
        for i in 0..r {
            if pos.binary_search(&i).is_ok() {
                out.push(1);
            } else {
                out.push(
                    *it.next()
                        .ok_or_else(|| OnnxError::shape(node.name, node.op(), format!("repeated axes {axes:?}")))?,
                );
            }
        }
        Ok(out)
    } else {
        let pos: Vec<usize> = match axes {
            Some(a) => a.iter().map(|&a| axis(node, a, s.len())).collect::<Result<_, _>>()?,
            None => (0..s.len()).filter(|&i| s[i] == 1).collect(),
        };
        if let Some(&p) = pos.iter().find(|&&p| s[p] != 1) {
            return Err(OnnxError::shape(
                node.name,
                node.op(),
                format!("cannot squeeze axis {p} of size {} in {s:?}", s[p]),
            ));
        }
        Ok(s.iter().enumerate().filter(|(i, _)| !pos.contains(i)).map(|(_, &d)| d).collect())
    }
}

/// A Slice's arguments resolved for a tensor of rank `r`: per sliced axis, the axis, start, end and step
/// as written (ends may be `i64::MAX`).
#[derive(Clone, Debug)]
pub(crate) struct SliceArgs {
    pub axes: Vec<usize>,
    pub starts: Vec<i64>,
    pub ends: Vec<i64>,
    pub steps: Vec<i64>,
}

/// Reads a Slice's starts / ends / axes / steps: inputs 1-4 from opset 10 (`inputs[k]` is `None` when
/// omitted), attributes before.
pub(crate) fn slice_args(
    node: &Node<'_>,
    inputs: &[Option<&Tensor>],
    opset: i64,
    r: usize,
) -> Result<SliceArgs, OnnxError> {
    let (name, op) = (node.name, node.op());
    let get = |i: usize, attr: &str| -> Option<Vec<i64>> {
        if opset >= 10 {
            inputs.get(i).copied().flatten().map(|t| t.to_i64())
        } else {
            node.ints(attr).map(|a| a.to_vec())
        }
    };
    let starts = get(1, "starts").ok_or_else(|| OnnxError::shape(name, op, "starts missing"))?;
    let ends = get(2, "ends").ok_or_else(|| OnnxError::shape(name, op, "ends missing"))?;
    let axes: Vec<usize> = match get(3, "axes") {
        Some(a) => a.iter().map(|&a| axis(node, a, r)).collect::<Result<_, _>>()?,
        None => (0..starts.len()).collect(),
    };
    let steps = if opset >= 10 { get(4, "") } else { None }.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(OnnxError::shape(name, op, "starts, ends, axes and steps differ in length"));
    }
    if steps.contains(&0) {
        return Err(OnnxError::shape(name, op, "a step of 0"));
    }
    Ok(SliceArgs { axes, starts, ends, steps })
}

/// The first index and the element count of `start..end` by `step` (non-zero) on an axis of size `dim`,
/// clamped as the Slice operator clamps.
pub(crate) fn slice_range(dim: usize, start: i64, end: i64, step: i64) -> (i64, usize) {
    let dim = dim as i64;
    let norm = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
    let (b, e) = if step > 0 {
        (norm(start).clamp(0, dim), norm(end).clamp(0, dim))
    } else {
        (norm(start).clamp(0, dim - 1), norm(end).clamp(-1, dim - 1))
    };
    let n = if step > 0 { (e - b + step - 1).div_euclid(step) } else { (b - e + (-step) - 1).div_euclid(-step) };
    (b, n.max(0) as usize)
}

/// The shape a Slice with these arguments gives a tensor of shape `s`.
pub(crate) fn slice_shape(args: &SliceArgs, s: &[usize]) -> Vec<usize> {
    let mut out = s.to_vec();
    for (k, &a) in args.axes.iter().enumerate() {
        out[a] = slice_range(s[a], args.starts[k], args.ends[k], args.steps[k]).1;
    }
    out
}

fn slice(node: &Node<'_>, inputs: &[Option<&Tensor>], opset: i64) -> Result<Tensor, OnnxError> {
    let (name, op) = (node.name, node.op());
    let data = inputs.first().copied().flatten().ok_or_else(|| OnnxError::shape(name, op, "input 0 is missing"))?;
    let r = data.shape.len();
    let args = slice_args(node, inputs, opset, r)?;
    // per axis: first index, step, count
    let mut first = vec![0i64; r];
    let mut step = vec![1i64; r];
    let mut count: Vec<usize> = data.shape.clone();
    for (k, &a) in args.axes.iter().enumerate() {
        let (b, n) = slice_range(data.shape[a], args.starts[k], args.ends[k], args.steps[k]);
        first[a] = b;
        step[a] = args.steps[k];
        count[a] = n;
    }
    let st = strides(&data.shape);
    let os = strides(&count);
    let total = checked_len(&count).unwrap_or(0);
    let idx = (0..total).map(|flat| {
        let mut rem = flat;
        let mut src = 0i64;
        for d in 0..r {
            let c = (rem / os[d]) as i64;
            rem %= os[d];
            src += (first[d] + c * step[d]) * st[d] as i64;
        }
        src as usize
    });
    Ok(data.pick(count.clone(), idx))
}

/// NumPy broadcasting of two shapes: the graph record's rule, one home for it.
pub(crate) use convmat_net::broadcast;

/// Maps a flat index of the broadcast shape `out` to the flat index of a tensor of shape `s`.
pub(crate) fn broadcast_index(s: &[usize], out: &[usize]) -> impl Fn(usize) -> usize {
    let r = out.len();
    let os = strides(out);
    let ss = strides(s);
    let lead = r - s.len();
    let s = s.to_vec();
    move |flat| {
        let mut rem = flat;
        let mut src = 0;
        for d in 0..r {
            let c = rem / os[d];
            rem %= os[d];
            if d >= lead && s[d - lead] != 1 {
                src += c * ss[d - lead];
            }
        }
        src
    }
}
