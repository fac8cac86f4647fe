//! A model as a whole graph of exact blocks ([`convmat_net::Graph`]): every Conv / Gemm / pool / ...
//! a block (BatchNorm, Pad and constant Add / Mul folded where the block's output has no other
//! reader), residual Adds, Concats, Splits, Slices, Transposes and reshapes junctions, the rest
//! nonlinearities, each named with its node when convmat cannot represent it.

use std::collections::HashMap;

use convmat_matrix::Float;
use convmat_net::{BlockMap, BlockSource, Graph, Junction, Node as NetNode, Nonlinearity, Port, Role, Run, Tensor};

use crate::blocks::{base, is_post, post_maps, BlockOptions, Plan};
use crate::graph::{Analysis, NodeKind};
use crate::layers::PoolParts;
use crate::node::Node;
use crate::{Model, OnnxError};

/// A model read as a [`Graph`], with the analysis that builds its blocks on demand.
pub struct Network<'m> {
    analysis: Analysis<'m>,
    graph: Graph,
    /// Graph node index -> the plan of its block.
    plans: HashMap<usize, Plan>,
}

impl Model {
    /// The model as a graph of exact blocks, junctions and nonlinearities (see [`Network`]).
    /// `input_shape` (one sample) is needed only when the input's shape is dynamic.
    ///
    /// # Errors
    /// The errors of [`summary`](Self::summary); an op convmat cannot represent, named with its node and
    /// the reason; a graph whose record does not validate.
    pub fn network(&self, input_shape: Option<&[usize]>, opts: &BlockOptions) -> Result<Network<'_>, OnnxError> {
        let analysis = Analysis::new(self, input_shape)?;
        let (graph, plans) = read(&analysis, opts)?;
        graph.validate().map_err(|e| OnnxError::Graph(Box::new(e)))?;
        Ok(Network { analysis, graph, plans })
    }
}

impl Network<'_> {
    /// The graph record.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The map of the graph's node `index`, a block, built now.
    ///
    /// # Errors
    /// Weights that cannot be read; a node that is not a block.
    pub fn block(&self, index: usize) -> Result<BlockMap, OnnxError> {
        let n = &self.graph.nodes[index];
        let plan = self.plans.get(&index).ok_or_else(|| OnnxError::unsupported(&n.name, &n.op, "not a block"))?;
        block_map(&self.analysis, plan)
    }

    /// Evaluates the model on `inputs` (one per graph input, `(N, *sample)` or one sample), every block
    /// through convmat's operator; `trace` keeps every tensor in graph order.
    ///
    /// # Errors
    /// An input of the wrong shape; a block that cannot be built.
    pub fn run<T: Float>(&self, inputs: Vec<Tensor<T>>, trace: bool) -> Result<Run<T>, OnnxError> {
        self.graph.run(self, inputs, trace).map_err(|e| OnnxError::Graph(Box::new(e)))
    }
}

impl BlockSource for Network<'_> {
    fn block(&self, index: usize, _: &NetNode) -> Result<BlockMap, Box<dyn std::error::Error + Send + Sync>> {
        Network::block(self, index).map_err(|e| Box::new(e) as _)
    }
}

/// Builds the graph record from the analysis.
fn read(a: &Analysis<'_>, opts: &BlockOptions) -> Result<(Graph, HashMap<usize, Plan>), OnnxError> {
    let g = &a.model.graph;
    // a value -> the graph tensor that holds it (a folded Pad's output is its input's tensor)
    let mut alias: HashMap<String, String> = HashMap::new();
    let resolve = |alias: &HashMap<String, String>, v: &str| alias.get(v).cloned().unwrap_or_else(|| v.to_string());
    let mut nodes: Vec<NetNode> = Vec::new();
    let mut plans: HashMap<usize, Plan> = HashMap::new();
    // graph tensor -> the graph block that writes it
    let mut block_of: HashMap<String, usize> = HashMap::new();
    let circular_members: Vec<usize> = a.circular.values().flat_map(|c| c.members.iter().copied()).collect();
    let folded_pads: Vec<usize> = a.pad_into.values().copied().collect();
    for (i, info) in a.infos.iter().enumerate() {
        let node = Node::new(&g.node[i]);
        let (name, op) = (node.name, node.op());
        if info.kind == NodeKind::Constant || circular_members.contains(&i) {
            continue;
        }
        let out = node.p.output.first().cloned().unwrap_or_default();
        let acts: Vec<String> = match a.circular.get(&i) {
            Some(c) => vec![c.input.clone()],
            None => node.p.input.iter().filter(|n| !n.is_empty() && !a.is_const(n)).cloned().collect(),
        };
        if folded_pads.contains(&i) {
            // read by the Conv it is folded into: that Conv reads the Pad's input
            alias.insert(out, resolve(&alias, &acts[0]));
            continue;
        }
        let inputs: Vec<String> = acts.iter().map(|v| resolve(&alias, v)).collect();
        let role = role(a, i, &node, &info.kind, acts.len())?;
        let outputs: Vec<String> = match role {
            Role::Junction(Junction::Split { .. }) => node.p.output.clone(),
            _ => vec![out.clone()],
        };
        let mut output_shapes = Vec::with_capacity(outputs.len());
        for o in &outputs {
            let s = a
                .act_shape(o)
                .ok_or_else(|| OnnxError::shape(name, op, format!("the shape of its output '{o}' is unknown")))?;
            output_shapes.push(s[1..].to_vec());
        }
        if role == Role::Block {
            // a BatchNorm / constant Add / Mul right after a block, its only reader: folded into it
            let x = inputs[0].as_str();
            let fold = is_post(op)
                && !a.convs.contains_key(&i)
                && (op != "BatchNormalization" || opts.fold_batchnorm)
                && a.consumers.get(&acts[0]) == Some(&1)
                && block_of.contains_key(x);
            if fold {
                let b = block_of.remove(x).expect("checked");
                let plan = plans.get_mut(&b).expect("a block's plan");
                let mut post = plan.post().to_vec();
                post.push(i);
                *plan = Plan::graph_block(plan.main, post, out.clone());
                let n = &mut nodes[b];
                n.outputs = outputs;
                n.output_shapes = output_shapes;
                n.folded.push(name.to_string());
                block_of.insert(out, b);
                continue;
            }
            plans.insert(nodes.len(), Plan::graph_block(i, Vec::new(), out.clone()));
            block_of.insert(out, nodes.len());
        }
        let mut folded = Vec::new();
        if let Some(&p) = a.pad_into.get(&i) {
            folded.push(a.infos[p].name.clone());
        }
        nodes.push(NetNode {
            name: name.to_string(),
            op: op.to_string(),
            role,
            inputs,
            outputs,
            output_shapes,
            folded,
            params: info.params.clone(),
        });
    }
    let inputs = a.inputs.iter().map(|p| Port { name: p.name.clone(), shape: p.shape.clone() }).collect();
    let outputs = g.output.iter().map(|o| resolve(&alias, &o.name)).collect();
    Ok((Graph { inputs, nodes, outputs }, plans))
}

/// The role of node `i` (with `acts` computed operands), or why convmat cannot represent it.
fn role(a: &Analysis<'_>, i: usize, node: &Node<'_>, kind: &NodeKind, acts: usize) -> Result<Role, OnnxError> {
    let (name, op) = (node.name, node.op());
    let why = match kind {
        NodeKind::Unsupported(why) => why.clone(),
        _ => String::new(),
    };
    let refuse = |what: &str| Err(OnnxError::unsupported(name, op, what));
    let axis = |default: i64| -> Result<usize, OnnxError> {
        let r = node.input(0).and_then(|x| a.act_shape(x)).map_or(0, <[usize]>::len);
        crate::fold::axis(node, node.int("axis").unwrap_or(default), r)
    };
    let params = &a.infos[i].params;
    let ints = |k: &str| -> Vec<usize> {
        params
            .get(k)
            .and_then(|v| v.as_array())
            .map(|v| v.iter().filter_map(|x| x.as_u64().map(|x| x as usize)).collect())
            .unwrap_or_default()
    };
    Ok(match kind {
        NodeKind::Constant => unreachable!("constants are skipped"),
        NodeKind::Affine if a.circular.contains_key(&i) || acts == 1 => Role::Block,
        NodeKind::Affine => return refuse("an affine op of more than one computed tensor"),
        NodeKind::Identity => Role::Junction(Junction::Reshape),
        NodeKind::Nonlinearity => Role::Nonlinearity(nonlinearity(a, node)?),
        NodeKind::Unsupported(_) if a.infos[i].output_shape.is_none() => return refuse(&why),
        NodeKind::Unsupported(_) => match (op, acts) {
            ("Add", 2) => Role::Junction(Junction::Add),
            ("Sub", 2) => Role::Junction(Junction::Sub),
            ("Mul", 2) => Role::Nonlinearity(Nonlinearity::Mul),
            ("Div", 2) => Role::Nonlinearity(Nonlinearity::Div),
            ("Concat", n) if n == node.p.input.iter().filter(|s| !s.is_empty()).count() => {
                Role::Junction(Junction::Concat { axis: axis(0)? })
            }
            ("Concat", _) => return refuse("a Concat of computed tensors and constants"),
            ("Split", 1) => Role::Junction(Junction::Split {
                axis: params["axis"].as_u64().unwrap_or(1) as usize,
                sizes: ints("split"),
            }),
            ("Transpose", 1) => Role::Junction(Junction::Transpose { perm: ints("perm") }),
            ("Slice", 1) => {
                let args = &a.slices[&i];
                let s = node.input(0).and_then(|x| a.act_shape(x)).unwrap_or_default();
                let (mut axes, mut starts, mut steps, mut counts) = (vec![], vec![], vec![], vec![]);
                for k in 0..args.axes.len() {
                    let ax = args.axes[k];
                    let (b, n) = crate::fold::slice_range(s[ax], args.starts[k], args.ends[k], args.steps[k]);
                    if ax == 0 {
                        if n == s[0] && args.steps[k] == 1 {
                            continue;
                        }
                        return refuse("it slices the batch axis 0");
                    }
                    axes.push(ax);
                    starts.push(b.max(0) as usize);
                    steps.push(args.steps[k]);
                    counts.push(n);
                }
                Role::Junction(Junction::Slice { axes, starts, steps, counts })
            }
            _ => return refuse(&why),
        },
    })
}

/// A nonlinearity node's typed parameters.
fn nonlinearity(a: &Analysis<'_>, node: &Node<'_>) -> Result<Nonlinearity, OnnxError> {
    let (name, op) = (node.name, node.op());
    let s = node.input(0).and_then(|x| a.act_shape(x)).unwrap_or_default().to_vec();
    let r = s.len();
    let float = |k: &str, d: f64| node.float(k).unwrap_or(d);
    let scalar = |k: usize, role: &'static str| -> Result<Option<f64>, OnnxError> {
        match node.input(k) {
            None => Ok(None),
            Some(_) => {
                let t = a.const_input(node, k, role)?;
                if t.len() != 1 {
                    return Err(OnnxError::shape(name, op, format!("{role} has {} values; expected one", t.len())));
                }
                Ok(Some(t.get_f64(0)))
            }
        }
    };
    let extra_outputs =
        node.p.output.iter().skip(1).any(|o| !o.is_empty() && a.consumers.get(o).is_some_and(|&c| c > 0));
    if extra_outputs {
        return Err(OnnxError::unsupported(
            name,
            op,
            "a second output (indices, mean, ...) is read; convmat evaluates only the first",
        ));
    }
    let softmax_axis = || -> Result<(usize, bool), OnnxError> {
        let new = a.model.opset() >= 13;
        let ax = crate::fold::axis(node, node.int("axis").unwrap_or(if new { -1 } else { 1 }), r)?;
        Ok((ax, !new))
    };
    Ok(match op {
        "Relu" => Nonlinearity::Relu,
        "LeakyRelu" => Nonlinearity::LeakyRelu { alpha: float("alpha", 0.01) },
        "Elu" => Nonlinearity::Elu { alpha: float("alpha", 1.0) },
        "PRelu" => {
            let t = a.const_input(node, 1, "slope")?;
            Nonlinearity::PRelu { slope: t.to_f64(), shape: t.shape.clone() }
        }
        "Clip" if a.model.opset() < 11 => Nonlinearity::Clip { min: node.float("min"), max: node.float("max") },
        "Clip" => Nonlinearity::Clip { min: scalar(1, "min")?, max: scalar(2, "max")? },
        "HardSigmoid" => Nonlinearity::HardSigmoid { alpha: float("alpha", 0.2), beta: float("beta", 0.5) },
        "HardSwish" => Nonlinearity::HardSwish,
        "Sigmoid" => Nonlinearity::Sigmoid,
        "Tanh" => Nonlinearity::Tanh,
        "Softplus" => Nonlinearity::Softplus,
        "Softsign" => Nonlinearity::Softsign,
        "Erf" => Nonlinearity::Erf,
        "Gelu" => match node.string("approximate").as_deref().unwrap_or("none") {
            "none" => Nonlinearity::Gelu { tanh: false },
            "tanh" => Nonlinearity::Gelu { tanh: true },
            other => return Err(OnnxError::attr(name, op, "approximate", other, "none or tanh")),
        },
        "Abs" => Nonlinearity::Abs,
        "Exp" => Nonlinearity::Exp,
        "Sqrt" => Nonlinearity::Sqrt,
        "Reciprocal" => Nonlinearity::Reciprocal,
        "Pow" => match scalar(1, "exponent")? {
            Some(exponent) => Nonlinearity::Pow { exponent },
            None => return Err(OnnxError::shape(name, op, "the exponent input is missing")),
        },
        "MaxPool" => {
            let p = PoolParts::from_node(node, &s)?;
            Nonlinearity::MaxPool { kernel: p.kernel, strides: p.stride, dilations: p.dilation, pads_begin: p.pad_begin, output: p.out }
        }
        "GlobalMaxPool" => Nonlinearity::GlobalMaxPool,
        "Softmax" => {
            let (axis, coerce) = softmax_axis()?;
            Nonlinearity::Softmax { axis, coerce }
        }
        "LogSoftmax" => {
            let (axis, coerce) = softmax_axis()?;
            Nonlinearity::LogSoftmax { axis, coerce }
        }
        "LayerNormalization" => {
            let axis = crate::fold::axis(node, node.int("axis").unwrap_or(-1), r)?;
            if axis == 0 {
                return Err(OnnxError::unsupported(name, op, "it normalizes over the batch axis 0"));
            }
            let norm = &s[axis..];
            let n: usize = norm.iter().product();
            let expand = |k: usize, role: &'static str, default: f64| -> Result<Vec<f64>, OnnxError> {
                match node.input(k) {
                    None => Ok(vec![default; n]),
                    Some(_) => {
                        let t = a.const_input(node, k, role)?;
                        if crate::fold::broadcast(norm, &t.shape).as_deref() != Some(norm) {
                            return Err(OnnxError::shape(name, op, format!("{role} of shape {:?} does not broadcast onto {norm:?}", t.shape)));
                        }
                        let idx = crate::fold::broadcast_index(&t.shape, norm);
                        Ok((0..n).map(|e| t.get_f64(idx(e))).collect())
                    }
                }
            };
            Nonlinearity::LayerNorm { axis, epsilon: float("epsilon", 1e-5), scale: expand(1, "scale", 1.0)?, bias: expand(2, "B", 0.0)? }
        }
        // ONNX's float defaults (1.67326319217681884765625, 1.05070102214813232421875)
        "Selu" => Nonlinearity::Selu {
            alpha: float("alpha", f64::from(1.673_263_2_f32)),
            gamma: float("gamma", f64::from(1.050_701_f32)),
        },
        "Celu" => Nonlinearity::Celu { alpha: float("alpha", 1.0) },
        "Mish" => Nonlinearity::Mish,
        "ThresholdedRelu" => Nonlinearity::ThresholdedRelu { alpha: float("alpha", 1.0) },
        "Sign" => Nonlinearity::Sign,
        "Log" => Nonlinearity::Log,
        "Round" => Nonlinearity::Round,
        "Floor" => Nonlinearity::Floor,
        "Ceil" => Nonlinearity::Ceil,
        "LpPool" | "GlobalLpPool" => {
            let p = node.int("p").unwrap_or(2);
            if p < 1 {
                return Err(OnnxError::attr(name, op, "p", p.to_string(), "a positive integer"));
            }
            if op == "GlobalLpPool" {
                Nonlinearity::GlobalLpPool { p: p as f64 }
            } else {
                let w = PoolParts::from_node(node, &s)?;
                Nonlinearity::LpPool {
                    p: p as f64,
                    kernel: w.kernel,
                    strides: w.stride,
                    dilations: w.dilation,
                    pads_begin: w.pad_begin,
                    output: w.out,
                }
            }
        }
        "LRN" => {
            let size = node.int("size").ok_or_else(|| OnnxError::attr(name, op, "size", "missing", "required"))?;
            if size < 1 {
                return Err(OnnxError::attr(name, op, "size", size.to_string(), "a positive integer"));
            }
            Nonlinearity::Lrn {
                size: size as usize,
                alpha: float("alpha", 1e-4),
                beta: float("beta", 0.75),
                bias: float("bias", 1.0),
            }
        }
        _ => {
            return Err(OnnxError::unsupported(
                name,
                op,
                "convmat knows it as a nonlinearity but does not evaluate it (run, export's graph and the graph bound take Relu, LeakyRelu, PRelu, Elu, Selu, Celu, Mish, ThresholdedRelu, Clip, HardSigmoid, HardSwish, Sigmoid, Tanh, Softplus, Softsign, Erf, Gelu, Abs, Sign, Exp, Log, Sqrt, Reciprocal, Pow, Round, Floor, Ceil, MaxPool, GlobalMaxPool, LpPool, GlobalLpPool, LRN, Softmax, LogSoftmax, LayerNormalization)",
            ))
        }
    })
}

/// A planned block's map: the main node's (convolution, dense, mean or identity) with the folded post
/// nodes' elementwise scale and shift.
pub(crate) fn block_map(a: &Analysis<'_>, plan: &Plan) -> Result<BlockMap, OnnxError> {
    let i = plan.main;
    let node = Node::new(&a.model.graph.node[i]);
    let info = &a.infos[i];
    let input = info.input_shape.clone().unwrap_or_default();
    let main_out = info.output_shape.clone().unwrap_or_default();
    let n_out: usize = main_out.iter().product();
    let map = if let Some(parts) = a.convs.get(&i) {
        BlockMap::Conv { layer: parts.layer(a, 1.0)?, scale: parts.row_scale(), shift: None }
    } else {
        match node.op() {
            "Gemm" => {
                let b = a.const_input(&node, 1, "B")?.to_f64();
                let trans_b = node.int("transB").unwrap_or(0) != 0;
                let (alpha, beta) = (node.float("alpha").unwrap_or(1.0), node.float("beta").unwrap_or(1.0));
                let (rows, cols) = (n_out, input.iter().product::<usize>());
                // W[r, c] = alpha · B'[c, r]
                let weight = (0..rows)
                    .flat_map(|r| (0..cols).map(move |c| (r, c)))
                    .map(|(r, c)| alpha * if trans_b { b[r * cols + c] } else { b[c * rows + r] })
                    .collect();
                let bias = match node.input(2) {
                    Some(_) => {
                        let c = a.const_input(&node, 2, "C")?;
                        crate::blocks::expand(node.name, node.op(), &c, &[1, rows])?.iter().map(|v| beta * v).collect()
                    }
                    None => vec![0.0; rows],
                };
                BlockMap::Dense { weight, rows, cols, reps: 1, bias }
            }
            "MatMul" => {
                // x @ B on the last axis: one copy of Bᵀ per position of the leading axes
                let b = a.const_input(&node, 1, "B")?;
                let (cols, rows) = (b.shape[0], b.shape[1]);
                let bv = b.to_f64();
                let weight =
                    (0..rows).flat_map(|r| (0..cols).map(move |c| (r, c))).map(|(r, c)| bv[c * rows + r]).collect();
                BlockMap::Dense { weight, rows, cols, reps: n_out / rows.max(1), bias: vec![0.0; n_out] }
            }
            "ReduceMean" => {
                let (m, bias) = base(a, i, &node, &input, &main_out)?;
                BlockMap::Sparse { matrix: m, bias }
            }
            // BatchNormalization / constant Add / Sub / Mul / Div alone: a diagonal
            _ => BlockMap::Diagonal { scale: vec![1.0; n_out], shift: vec![0.0; n_out] },
        }
    };
    match post_maps(a, plan, &main_out, n_out)? {
        Some((scale, shift)) => Ok(map.then_scale(&scale, &shift)),
        None => Ok(map),
    }
}

/// One node of the graph as `manifest.json`'s `graph` list and Python's `model.graph` give it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GraphRecord {
    /// The node's name.
    pub name: String,
    /// Its op as the model writes it.
    pub op: String,
    /// `block`, `junction` or `nonlinearity`.
    pub kind: convmat_net::Kind,
    /// The computed tensors it reads.
    pub inputs: Vec<String>,
    /// The tensors it writes.
    pub outputs: Vec<String>,
    /// One sample's shape of each output.
    pub output_shapes: Vec<Vec<usize>>,
    /// The block's `.npz` file (blocks of an export only).
    pub file: Option<String>,
    /// Nodes folded into it (a block's BatchNorm, a Pad before a Conv).
    pub folded: Vec<String>,
    /// The model's attributes and what evaluation reads: for junctions and nonlinearities the typed
    /// parameters (`junction` / `nonlinearity` naming the op, `axis`, `perm`, `sizes`, `min`, `max`,
    /// `scale`, `bias`, ...), for blocks the shapes and the PyTorch expression of a convolution.
    pub params: serde_json::Map<String, serde_json::Value>,
}

impl Network<'_> {
    /// The graph's nodes as records; `file(index, node)` names each block's file (or `None`).
    pub(crate) fn records(
        &self,
        mut file: impl FnMut(usize, &NetNode) -> Result<Option<String>, OnnxError>,
    ) -> Result<Vec<GraphRecord>, OnnxError> {
        let mut out = Vec::with_capacity(self.graph.nodes.len());
        for (i, n) in self.graph.nodes.iter().enumerate() {
            let mut params = n.params.clone();
            for k in ["role", "unsupported", "joins", "inputs"] {
                params.remove(k);
            }
            if let Ok(serde_json::Value::Object(role)) = serde_json::to_value(&n.role) {
                params.extend(role.into_iter().filter(|(k, _)| k != "kind"));
            }
            let file = if n.kind() == convmat_net::Kind::Block { file(i, n)? } else { None };
            out.push(GraphRecord {
                name: n.name.clone(),
                op: n.op.clone(),
                kind: n.kind(),
                inputs: n.inputs.clone(),
                outputs: n.outputs.clone(),
                output_shapes: n.output_shapes.clone(),
                file,
                folded: n.folded.clone(),
                params,
            });
        }
        Ok(out)
    }

    /// The graph's nodes as records, without files.
    pub fn graph_records(&self) -> Vec<GraphRecord> {
        self.records(|_, _| Ok(None)).expect("no file to name")
    }

    /// Writes every block as `dir/NNN_name.npz` (SciPy CSR with a `bias` array, one block in memory at
    /// a time) and `dir/manifest.json` with `blocks` (one entry per block, no nonlinearities: the graph
    /// says what follows) and `graph` (every node). A failure removes the files this call wrote.
    ///
    /// # Errors
    /// A block that cannot be built; a write error.
    pub fn export(&self, dir: &std::path::Path) -> Result<Vec<crate::ExportedBlock>, OnnxError> {
        use crate::blocks::{sanitize, write_csr, write_manifest, AffineLayer};
        std::fs::create_dir_all(dir).map_err(|source| OnnxError::Io { path: dir.into(), source })?;
        let shapes = self.graph.shapes().map_err(|e| OnnxError::Graph(Box::new(e)))?;
        let mut written: Vec<std::path::PathBuf> = Vec::new();
        let mut entries = Vec::new();
        let result = (|| {
            let graph = self.records(|i, node| {
                let file = format!("{:03}_{}.npz", entries.len(), sanitize(&node.name));
                let (matrix, bias) = self.block(i)?.to_csr().map_err(|source| OnnxError::Matrix {
                    node: node.name.clone(),
                    op: node.op.clone(),
                    source: Box::new(source),
                })?;
                let path = dir.join(&file);
                write_csr(&path, &matrix, &bias)?;
                written.push(path);
                let layer = AffineLayer {
                    name: node.name.clone(),
                    op: node.op.clone(),
                    nodes: std::iter::once(node.name.clone()).chain(node.folded.iter().cloned()).collect(),
                    input_shape: shapes[node.inputs[0].as_str()].clone(),
                    output_shape: node.output_shapes[0].clone(),
                    activations: Vec::new(),
                    matrix,
                    bias,
                };
                entries.push(crate::ExportedBlock::new(file.clone(), &layer));
                Ok(Some(file))
            })?;
            let model = self.analysis.model.path().display().to_string();
            let manifest = serde_json::json!({"model": model, "blocks": entries, "graph": graph});
            write_manifest(&dir.join("manifest.json"), &manifest)
        })();
        match result {
            Ok(()) => Ok(entries),
            Err(e) => {
                for p in &written {
                    let _ = std::fs::remove_file(p);
                }
                Err(e)
            }
        }
    }
}

impl Model {
    /// The shape of one sample in an input of shape `given`: `given` without its first (batch)
    /// dimension when it has the declared rank of the graph input, else `given` itself (one sample).
    pub fn sample_shape(&self, given: &[usize]) -> Vec<usize> {
        let declared = self
            .graph
            .input
            .iter()
            .find(|v| !self.init.contains_key(&v.name))
            .and_then(|v| v.r#type.as_ref()?.tensor_type.as_ref()?.shape.as_ref().map(|s| s.dim.len()))
            .unwrap_or(0);
        if given.len() + 1 == declared {
            given.to_vec()
        } else {
            given.get(1..).unwrap_or_default().to_vec()
        }
    }

    /// Evaluates the model on one input (`(N, *sample)` or one sample) in `T`, every block through
    /// convmat's operator, the rest by ONNX semantics; `trace` keeps every tensor in graph order. The
    /// graph is read on the input's sample shape, so a dynamic input needs no shape of its own.
    ///
    /// # Errors
    /// An input that does not fit the graph input; the errors of [`network`](Self::network) and
    /// [`Network::run`].
    pub fn run<T: Float>(&self, input: Tensor<T>, opts: &BlockOptions, trace: bool) -> Result<Run<T>, OnnxError> {
        let sample = self.sample_shape(&input.shape);
        self.network(Some(&sample), opts)?.run(vec![input], trace)
    }
}
