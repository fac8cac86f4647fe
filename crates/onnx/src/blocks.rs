//! A model as a chain of affine blocks (BatchNorm, Pad and constant Add/Mul folded) separated by
//! nonlinearities, built one block at a time, and exported as SciPy CSR `.npz` files plus a manifest.

use std::path::{Path, PathBuf};

use convmat_io::{write_sparse_npz, AtomicFile, Extra, SparseFormat, SparseParts};
use convmat_matrix::MatrixOptions;
use serde::Serialize;
use serde_json::{json, Map, Value as Json};
use sprs::CsMatI;

use crate::fold::{broadcast_index, checked_len};
use crate::graph::{Analysis, NodeKind};
use crate::node::Node;
use crate::tensor::Tensor;
use crate::{Model, OnnxError};

/// The sparse matrix type blocks are built in: `f64` values, `u32` column indices, `usize` row offsets.
pub type Csr = CsMatI<f64, u32, usize>;

/// How a model is cut into blocks.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BlockOptions {
    /// Fold a BatchNormalization into the affine block before it (default); `false` keeps it a
    /// diagonal block of its own.
    pub fold_batchnorm: bool,
}

impl Default for BlockOptions {
    fn default() -> Self {
        Self { fold_batchnorm: true }
    }
}

impl BlockOptions {
    /// Sets [`fold_batchnorm`](Self::fold_batchnorm).
    pub fn fold_batchnorm(mut self, fold: bool) -> Self {
        self.fold_batchnorm = fold;
        self
    }
}

/// A nonlinearity between two blocks.
#[derive(Clone, Debug, Serialize)]
pub struct Activation {
    /// The node's name.
    pub name: String,
    /// Its op (`Relu`, `MaxPool`, ...).
    pub op: String,
    /// Its attributes.
    pub params: Map<String, Json>,
    /// The shape it reads (one sample).
    pub input_shape: Vec<usize>,
    /// The shape it produces.
    pub output_shape: Vec<usize>,
}

/// The plan of one block: which nodes it folds, before anything is built.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub(crate) main: usize,
    /// Identity and Pad nodes applied before the main node, folded into it.
    pre: Vec<usize>,
    /// BatchNormalization / constant Add / Sub / Mul / Div nodes after it.
    post: Vec<usize>,
    activations: Vec<usize>,
    output_value: String,
}

/// One affine block of a model: `flatten(y) = matrix · flatten(x) + bias`, shapes of one sample.
#[derive(Clone, Debug)]
pub struct AffineLayer {
    /// The main node's name (the Conv, Gemm, ...).
    pub name: String,
    /// The main node's op.
    pub op: String,
    /// Every node folded into this block, in graph order.
    pub nodes: Vec<String>,
    /// The shape it reads.
    pub input_shape: Vec<usize>,
    /// The shape it produces.
    pub output_shape: Vec<usize>,
    /// The nonlinearities that follow it, in order, before the next block.
    pub activations: Vec<Activation>,
    /// The matrix, CSR (explicit zeros of the weights kept, so the pattern is the geometry's).
    pub matrix: Csr,
    /// The bias, one value per row.
    pub bias: Vec<f64>,
}

/// The blocks of a model, built one at a time on demand (see [`Model::affine_layers`]).
pub struct AffineLayers<'m> {
    analysis: Analysis<'m>,
    plans: Vec<Plan>,
    next: usize,
}

impl AffineLayers<'_> {
    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.plans.len()
    }
    /// Whether the model has no affine block.
    pub fn is_empty(&self) -> bool {
        self.plans.is_empty()
    }
    /// Every block's name, op, nodes, shapes and activations, in order, without building any matrix
    /// (`matrix` and `bias` empty): what a writer sizes its output by before the first block is built.
    pub fn outlines(&self) -> Vec<AffineLayer> {
        self.plans.iter().map(|p| describe(&self.analysis, p)).collect()
    }
}

impl Iterator for AffineLayers<'_> {
    type Item = Result<AffineLayer, OnnxError>;
    fn next(&mut self) -> Option<Self::Item> {
        let plan = self.plans.get(self.next)?;
        self.next += 1;
        Some(build(&self.analysis, plan))
    }
}

impl Model {
    /// The model's affine blocks in order (each node's attributes mapped, BatchNorm / Pad / constant
    /// Add and Mul folded), built lazily: one block in memory at a time.
    ///
    /// # Errors
    /// Up front: a dynamic input without `input_shape`, an unsupported op (named with its node), a graph
    /// that is not a chain. Per block: weights that cannot be read.
    pub fn affine_layers(
        &self,
        input_shape: Option<&[usize]>,
        opts: &BlockOptions,
    ) -> Result<AffineLayers<'_>, OnnxError> {
        let analysis = Analysis::new(self, input_shape)?;
        let plans = plan(&analysis, opts)?;
        Ok(AffineLayers { analysis, plans, next: 0 })
    }

    /// Writes every block as `dir/NNN_name.npz` (SciPy CSR with a `bias` array) and `dir/manifest.json`.
    /// Every check runs before the first file is written; a failure later removes the files this call
    /// wrote, so the folder never holds a partial export.
    ///
    /// # Errors
    /// As [`affine_layers`](Self::affine_layers); a write error.
    pub fn export(
        &self,
        dir: &Path,
        input_shape: Option<&[usize]>,
        opts: &BlockOptions,
    ) -> Result<Vec<ExportedBlock>, OnnxError> {
        // a chain exports as it always has; any other graph through its graph record
        let layers = match self.affine_layers(input_shape, opts) {
            Ok(layers) => layers,
            Err(chain) => {
                return match self.network(input_shape, opts) {
                    Ok(network) => network.export(dir),
                    Err(e) if matches!(chain, OnnxError::Branch { .. } | OnnxError::Unsupported { .. }) => Err(e),
                    Err(_) => Err(chain),
                }
            }
        };
        // the chain's graph record, when convmat evaluates every node of it
        let network = self.network(input_shape, opts).ok();
        std::fs::create_dir_all(dir).map_err(|source| OnnxError::Io { path: dir.into(), source })?;
        let mut written: Vec<PathBuf> = Vec::new();
        let result = (|| {
            let mut entries = Vec::new();
            for (k, layer) in layers.enumerate() {
                let layer = layer?;
                let file = format!("{k:03}_{}.npz", sanitize(&layer.name));
                let path = dir.join(&file);
                write_block(&path, &layer)?;
                written.push(path);
                entries.push(ExportedBlock::new(file, &layer));
            }
            let mut manifest = json!({"model": self.path().display().to_string(), "blocks": entries});
            if let Some(network) = &network {
                // the graph's blocks are the chain's (the same nodes folded): each names the chain's file
                let files: std::collections::HashMap<&str, &str> =
                    entries.iter().map(|e| (e.name.as_str(), e.file.as_str())).collect();
                let graph = network.records(|_, node| Ok(files.get(node.name.as_str()).map(|f| f.to_string())))?;
                manifest["graph"] = serde_json::to_value(graph).expect("plain records");
            }
            write_manifest(&dir.join("manifest.json"), &manifest)?;
            Ok(entries)
        })();
        if result.is_err() {
            for p in &written {
                let _ = std::fs::remove_file(p);
            }
        }
        result
    }
}

/// Writes `manifest.json` atomically.
pub(crate) fn write_manifest(path: &Path, manifest: &Json) -> Result<(), OnnxError> {
    let mut f = AtomicFile::create(path)?;
    f.write(|w| {
        serde_json::to_writer_pretty(&mut *w, manifest)?;
        std::io::Write::write_all(w, b"\n")
    })?;
    f.commit()?;
    Ok(())
}

/// One entry of `manifest.json`.
#[derive(Clone, Debug, Serialize)]
pub struct ExportedBlock {
    /// The file name inside the folder.
    pub file: String,
    /// The main node.
    pub name: String,
    /// Its op.
    pub op: String,
    /// Every node folded into the block.
    pub nodes: Vec<String>,
    /// The shape it reads (one sample).
    pub input_shape: Vec<usize>,
    /// The shape it produces.
    pub output_shape: Vec<usize>,
    /// The op of the first nonlinearity that follows (`null` when another block or the end follows).
    pub nonlinearity: Option<String>,
    /// Every nonlinearity that follows, with its attributes.
    pub nonlinearities: Vec<Activation>,
    /// Matrix rows.
    pub rows: usize,
    /// Matrix columns.
    pub cols: usize,
    /// Stored entries.
    pub nnz: usize,
}

impl ExportedBlock {
    pub(crate) fn new(file: String, l: &AffineLayer) -> Self {
        Self {
            file,
            name: l.name.clone(),
            op: l.op.clone(),
            nodes: l.nodes.clone(),
            input_shape: l.input_shape.clone(),
            output_shape: l.output_shape.clone(),
            nonlinearity: l.activations.first().map(|a| a.op.clone()),
            nonlinearities: l.activations.clone(),
            rows: l.matrix.rows(),
            cols: l.matrix.cols(),
            nnz: l.matrix.nnz(),
        }
    }
}

/// A node name as a file name: letters, digits, `-`, `_`, `.` kept, everything else `_`.
pub(crate) fn sanitize(name: &str) -> String {
    let s: String = name
        .trim_start_matches(['/', '.'])
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .collect();
    if s.is_empty() {
        "block".into()
    } else {
        s
    }
}

/// Writes one block atomically.
pub fn write_block(path: &Path, layer: &AffineLayer) -> Result<(), OnnxError> {
    write_csr(path, &layer.matrix, &layer.bias)
}

/// Writes a matrix and bias atomically as a SciPy CSR `.npz` with a `bias` array.
pub(crate) fn write_csr(path: &Path, m: &Csr, bias: &[f64]) -> Result<(), OnnxError> {
    let indptr = m.indptr();
    let parts = SparseParts {
        format: SparseFormat::Csr,
        shape: (m.rows(), m.cols()),
        indptr: indptr.raw_storage(),
        indices: m.indices(),
        data: m.data(),
    };
    let mut f = AtomicFile::create(path)?;
    f.write(|w| write_sparse_npz(w, &parts, &[("bias", Extra::F64(bias))]).map(drop))?;
    f.commit()?;
    Ok(())
}

impl Plan {
    /// A graph's block: node `main` with the `post` nodes folded after it, writing `output_value`.
    pub(crate) fn graph_block(main: usize, post: Vec<usize>, output_value: String) -> Self {
        Self { main, pre: Vec::new(), post, activations: Vec::new(), output_value }
    }

    /// The post nodes folded after the main node.
    pub(crate) fn post(&self) -> &[usize] {
        &self.post
    }
}

pub(crate) fn is_post(op: &str) -> bool {
    matches!(op, "BatchNormalization" | "Add" | "Sub" | "Mul" | "Div")
}

/// Cuts the analysed graph into blocks; checks that it is one chain of supported nodes.
pub(crate) fn plan(a: &Analysis<'_>, opts: &BlockOptions) -> Result<Vec<Plan>, OnnxError> {
    let g = &a.model.graph;
    let mut cur: Option<String> = a.inputs.first().map(|i| i.name.clone());
    let mut plans: Vec<Plan> = Vec::new();
    let mut pre: Vec<usize> = Vec::new();
    // whether the last block may still take post nodes (nothing but posts since its main node)
    let mut open = false;
    // the Slices and inner Concats of torch's circular paddings: folded into their last Concat
    let members: Vec<usize> = a.circular.values().flat_map(|c| c.members.iter().copied()).collect();
    for (i, info) in a.infos.iter().enumerate() {
        let node = Node::new(&g.node[i]);
        if info.kind == NodeKind::Constant {
            continue;
        }
        if let NodeKind::Unsupported(why) = &info.kind {
            return Err(OnnxError::unsupported(&info.name, &info.op, why.clone()));
        }
        if members.contains(&i) {
            pre.push(i);
            open = false;
            continue;
        }
        let x = match a.circular.get(&i) {
            Some(c) => Some(c.input.clone()),
            None => node.p.input.iter().find(|n| !n.is_empty() && !a.is_const(n)).cloned(),
        };
        if x != cur {
            return Err(OnnxError::Branch {
                node: info.name.clone(),
                op: info.op.clone(),
                input: x.unwrap_or_default(),
            });
        }
        let out = node.p.output.first().cloned().unwrap_or_default();
        cur = Some(out.clone());
        match info.kind {
            NodeKind::Identity => {
                pre.push(i);
                open = false;
            }
            NodeKind::Nonlinearity => {
                if plans.is_empty() {
                    // a nonlinearity before any block: an identity block carries it
                    plans.push(Plan {
                        main: usize::MAX,
                        pre: std::mem::take(&mut pre),
                        post: vec![],
                        activations: vec![],
                        output_value: String::new(),
                    });
                }
                plans.last_mut().expect("pushed").activations.push(i);
                open = false;
            }
            _ => {
                let single_reader = a.consumers.get(x.as_deref().unwrap_or_default()) == Some(&1);
                if a.pad_into.values().any(|&p| p == i) {
                    pre.push(i);
                    open = false;
                    continue;
                }
                let fold_ok = open
                    && pre.is_empty()
                    && single_reader
                    && is_post(&info.op)
                    && (info.op != "BatchNormalization" || opts.fold_batchnorm);
                if fold_ok {
                    let last = plans.last_mut().expect("open block");
                    last.post.push(i);
                    last.output_value = out;
                } else {
                    plans.push(Plan {
                        main: i,
                        pre: std::mem::take(&mut pre),
                        post: vec![],
                        activations: vec![],
                        output_value: out,
                    });
                    open = true;
                }
            }
        }
    }
    Ok(plans)
}

fn sample(a: &Analysis<'_>, value: &str) -> Vec<usize> {
    a.act_shape(value).map(|s| s[1..].to_vec()).unwrap_or_default()
}

/// Builds one planned block.
pub(crate) fn build(a: &Analysis<'_>, plan: &Plan) -> Result<AffineLayer, OnnxError> {
    let mut layer = describe(a, plan);
    if plan.main == usize::MAX {
        let n = layer.input_shape.iter().product();
        (layer.matrix, layer.bias) = (identity(n), vec![0.0; n]);
        return Ok(layer);
    }
    let main = Node::new(&a.model.graph.node[plan.main]);
    let main_out = a.infos[plan.main].output_shape.clone().unwrap_or_default();
    let (matrix, bias) = base(a, plan.main, &main, &layer.input_shape, &main_out)?;
    (layer.matrix, layer.bias) = apply_post(a, plan, &main_out, matrix, bias)?;
    Ok(layer)
}

/// A planned block's names, shapes and activations, with an empty matrix and bias.
pub(crate) fn describe(a: &Analysis<'_>, plan: &Plan) -> AffineLayer {
    let g = &a.model.graph;
    let names = |v: &[usize]| -> Vec<String> { v.iter().map(|&i| a.infos[i].name.clone()).collect() };
    let activations: Vec<Activation> = plan
        .activations
        .iter()
        .map(|&i| Activation {
            name: a.infos[i].name.clone(),
            op: a.infos[i].op.clone(),
            params: Node::new(&g.node[i]).attributes_json(),
            input_shape: a.infos[i].input_shape.clone().unwrap_or_default(),
            output_shape: a.infos[i].output_shape.clone().unwrap_or_default(),
        })
        .collect();
    let mut nodes = names(&plan.pre);
    let empty = identity(0);
    if plan.main == usize::MAX {
        // identity block carrying a leading nonlinearity
        let first = plan.pre.first().or(plan.activations.first()).copied().expect("non-empty plan");
        let shape = a.infos[first].input_shape.clone().unwrap_or_default();
        return AffineLayer {
            name: "input".into(),
            op: "Identity".into(),
            nodes,
            input_shape: shape.clone(),
            output_shape: shape,
            activations,
            matrix: empty,
            bias: Vec::new(),
        };
    }
    let info = &a.infos[plan.main];
    nodes.push(info.name.clone());
    nodes.extend(names(&plan.post));
    let first = plan.pre.first().copied().unwrap_or(plan.main);
    AffineLayer {
        name: info.name.clone(),
        op: info.op.clone(),
        nodes,
        input_shape: a.infos[first].input_shape.clone().unwrap_or_default(),
        output_shape: sample(a, &plan.output_value),
        activations,
        matrix: empty,
        bias: Vec::new(),
    }
}

fn identity(n: usize) -> Csr {
    CsMatI::new((n, n), (0..=n).collect(), (0..n as u32).collect(), vec![1.0; n])
}

/// The main node's matrix and bias (zeros when it has none).
pub(crate) fn base(
    a: &Analysis<'_>,
    i: usize,
    node: &Node<'_>,
    input: &[usize],
    output: &[usize],
) -> Result<(Csr, Vec<f64>), OnnxError> {
    let (name, op) = (node.name, node.op());
    if let Some(parts) = a.convs.get(&i) {
        let conv = parts.conv(a)?;
        let m: Csr = conv.csr_with::<u32, usize>(&MatrixOptions::default()).map_err(|source| OnnxError::Matrix {
            node: name.into(),
            op: op.into(),
            source: Box::new(source),
        })?;
        let bias = conv.expanded_bias().unwrap_or_else(|| vec![0.0; m.rows()]);
        return Ok(match parts.row_scale() {
            Some(scale) => (scale_rows(m, &scale), bias),
            None => (m, bias),
        });
    }
    let n_in: usize = input.iter().product();
    let n_out: usize = output.iter().product();
    match op {
        "Gemm" => {
            let b = a.const_input(node, 1, "B")?;
            let trans_b = node.int("transB").unwrap_or(0) != 0;
            let alpha = node.float("alpha").unwrap_or(1.0);
            let beta = node.float("beta").unwrap_or(1.0);
            let (k, n) = (n_in, n_out);
            let bv = b.to_f64();
            // W[n, k] = alpha * B'[k, n]
            let at = |r: usize, c: usize| alpha * if trans_b { bv[r * k + c] } else { bv[c * n + r] };
            let m = dense_rows(n, k, 1, at);
            let bias = match node.input(2) {
                Some(_) => {
                    let c = a.const_input(node, 2, "C")?;
                    expand(name, op, &c, &[1, n])?.iter().map(|v| beta * v).collect()
                }
                None => vec![0.0; n],
            };
            Ok((m, bias))
        }
        "MatMul" => {
            let b = a.const_input(node, 1, "B")?;
            let (k, n) = (b.shape[0], b.shape[1]);
            let bv = b.to_f64();
            let reps = n_in / k.max(1);
            Ok((dense_rows(n, k, reps, |r, c| bv[c * n + r]), vec![0.0; n_out]))
        }
        "ReduceMean" => {
            let mut full = vec![1];
            full.extend_from_slice(input);
            Ok((mean_matrix(&full, &a.reduce_axes[&i]), vec![0.0; n_out]))
        }
        // BatchNormalization / Add / ... on their own: the identity, then the elementwise post map
        _ => Ok((identity(n_in), vec![0.0; n_in])),
    }
}

/// ReduceMean over `axes` of a tensor of full shape `s` (keepdims or not: the same row-major order): each
/// output the mean of the inputs that agree with it off those axes.
pub(crate) fn mean_matrix(s: &[usize], axes: &[usize]) -> Csr {
    let n_in: usize = s.iter().product();
    let kept: Vec<usize> = (0..s.len()).map(|d| if axes.contains(&d) { 1 } else { s[d] }).collect();
    let n_out: usize = kept.iter().product();
    let count = (n_in / n_out.max(1)).max(1);
    let (is, os) = (crate::tensor::strides(s), crate::tensor::strides(&kept));
    // per output row, its inputs in increasing order
    let mut rows: Vec<Vec<u32>> = vec![Vec::with_capacity(count); n_out];
    for flat in 0..n_in {
        let r: usize = (0..s.len()).map(|d| if axes.contains(&d) { 0 } else { (flat / is[d]) % s[d] * os[d] }).sum();
        rows[r].push(flat as u32);
    }
    let mut indptr = Vec::with_capacity(n_out + 1);
    indptr.push(0);
    let mut indices = Vec::with_capacity(n_in);
    for r in rows {
        indices.extend(r);
        indptr.push(indices.len());
    }
    CsMatI::new((n_out, n_in), indptr, indices, vec![1.0 / count as f64; n_in])
}

/// A block-diagonal CSR with `reps` copies of the `n x k` matrix `at(row, col)`.
fn dense_rows(n: usize, k: usize, reps: usize, at: impl Fn(usize, usize) -> f64) -> Csr {
    let rows = n * reps;
    let mut indptr = Vec::with_capacity(rows + 1);
    let mut indices = Vec::with_capacity(rows * k);
    let mut data = Vec::with_capacity(rows * k);
    indptr.push(0);
    for rep in 0..reps {
        for r in 0..n {
            for c in 0..k {
                indices.push((rep * k + c) as u32);
                data.push(at(r, c));
            }
            indptr.push(indices.len());
        }
    }
    CsMatI::new((rows, k * reps), indptr, indices, data)
}

fn scale_rows(m: Csr, scale: &[f64]) -> Csr {
    let (shape, indptr, indices, mut data) =
        (m.shape(), m.indptr().raw_storage().to_vec(), m.indices().to_vec(), m.data().to_vec());
    for r in 0..shape.0 {
        for v in &mut data[indptr[r]..indptr[r + 1]] {
            *v *= scale[r];
        }
    }
    CsMatI::new(shape, indptr, indices, data)
}

/// A constant broadcast onto the full shape `[1, *sample]`, flattened.
pub(crate) fn expand(node: &str, op: &str, c: &Tensor, full: &[usize]) -> Result<Vec<f64>, OnnxError> {
    if crate::fold::broadcast(full, &c.shape).as_deref() != Some(full) {
        return Err(OnnxError::shape(
            node,
            op,
            format!("the constant of shape {:?} does not broadcast onto {full:?}", c.shape),
        ));
    }
    let idx = broadcast_index(&c.shape, full);
    let n = checked_len(full).unwrap_or(0);
    Ok((0..n).map(|i| c.get_f64(idx(i))).collect())
}

/// Folds the post nodes (BatchNorm, constant Add / Sub / Mul / Div) into the matrix rows and bias.
fn apply_post(
    a: &Analysis<'_>,
    plan: &Plan,
    main_out: &[usize],
    m: Csr,
    bias: Vec<f64>,
) -> Result<(Csr, Vec<f64>), OnnxError> {
    let Some((scale, shift)) = post_maps(a, plan, main_out, bias.len())? else { return Ok((m, bias)) };
    let bias = bias.iter().zip(&scale).zip(&shift).map(|((b, s), t)| b * s + t).collect();
    Ok((scale_rows(m, &scale), bias))
}

/// `(scale, shift)` per output.
pub(crate) type ScaleShift = (Vec<f64>, Vec<f64>);

/// The post nodes (BatchNorm, constant Add / Sub / Mul / Div) of a block as one elementwise map
/// `y -> scale · y + shift` on its `n` outputs, `None` when it has none.
pub(crate) fn post_maps(
    a: &Analysis<'_>,
    plan: &Plan,
    main_out: &[usize],
    n: usize,
) -> Result<Option<ScaleShift>, OnnxError> {
    let g = &a.model.graph;
    let mut posts = plan.post.clone();
    let main = Node::new(&g.node[plan.main]);
    if is_post(main.op()) && !a.convs.contains_key(&plan.main) && !matches!(main.op(), "Gemm" | "MatMul") {
        posts.insert(0, plan.main);
    }
    if posts.is_empty() {
        return Ok(None);
    }
    let mut full = vec![1];
    full.extend_from_slice(main_out);
    let mut scale = vec![1.0; n];
    let mut shift = vec![0.0; n];
    for &p in &posts {
        let node = Node::new(&g.node[p]);
        let (name, op) = (node.name, node.op());
        let (s2, t2): (Vec<f64>, Vec<f64>) = if op == "BatchNormalization" {
            let c = full[1];
            let inner: usize = full[2..].iter().product();
            let get = |k: usize, role: &'static str| a.const_input(&node, k, role).map(|t| t.to_f64());
            let (gamma, beta, mean, var) = (get(1, "scale")?, get(2, "B")?, get(3, "mean")?, get(4, "var")?);
            let eps = node.float("epsilon").unwrap_or(1e-5);
            let sc: Vec<f64> = (0..c).map(|j| gamma[j] / (var[j] + eps).sqrt()).collect();
            let sh: Vec<f64> = (0..c).map(|j| beta[j] - mean[j] * sc[j]).collect();
            ((0..n).map(|e| sc[(e / inner) % c]).collect(), (0..n).map(|e| sh[(e / inner) % c]).collect())
        } else {
            let x = plan_input(&node, a);
            let (ci, const_first) = if node.input(0) == Some(x.as_str()) { (1, false) } else { (0, true) };
            let c = a.const_input(&node, ci, "constant operand")?;
            let v = expand(name, op, &c, &full)?;
            match (op, const_first) {
                ("Add", _) => (vec![1.0; n], v),
                ("Sub", false) => (vec![1.0; n], v.iter().map(|x| -x).collect()),
                ("Sub", true) => (vec![-1.0; n], v),
                ("Mul", _) => (v, vec![0.0; n]),
                _ => (v.iter().map(|x| 1.0 / x).collect(), vec![0.0; n]),
            }
        };
        for e in 0..n {
            scale[e] *= s2[e];
            shift[e] = shift[e] * s2[e] + t2[e];
        }
    }
    if scale.iter().chain(&shift).any(|v| !v.is_finite()) {
        let last = &a.infos[*posts.last().expect("non-empty")];
        return Err(OnnxError::shape(
            &last.name,
            &last.op,
            "folding gives NaN or infinity (a zero divisor or a negative variance)",
        ));
    }
    Ok(Some((scale, shift)))
}

fn plan_input(node: &Node<'_>, a: &Analysis<'_>) -> String {
    node.p.input.iter().find(|n| !n.is_empty() && !a.is_const(n)).cloned().unwrap_or_default()
}
