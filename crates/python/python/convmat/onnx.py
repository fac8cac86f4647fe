"""ONNX models in: every node listed, every affine block's exact matrix, BatchNorm folded.

:func:`load` reads a ``.onnx`` file in Rust (no onnxruntime, no ``onnx`` package needed) through the
same library calls as ``convmat onnx`` and ``convmat export``, so the CLI and Python never disagree:

- :attr:`Model.nodes`: every node in order with op, input and output shapes (one sample, batch
  dropped), parameters and whether convmat builds its matrix -- ``convmat onnx --json``'s "nodes";
- :meth:`Model.affine_layers`: the model cut into affine blocks (Conv, ConvTranspose, Gemm, MatMul,
  pooling, BatchNorm / Pad / constant Add and Mul folded into them), each with its exact matrix
  (``scipy.sparse.csr_array`` / ``csc_array`` or ``numpy.ndarray``), its bias and the nonlinearity that
  follows: ``flatten(y) = matrix @ flatten(x) + bias`` with ``flatten`` row-major (NCHW), as
  ``torch.flatten`` and ONNX ``Flatten`` order one sample;
- :meth:`Model.conv_layer`: one Conv / ConvTranspose / pooling node as a :class:`convmat.Conv`, for
  every convmat function (fixed point, spectra, the operator);
- :meth:`Model.export`: the blocks written as ``NNN_name.npz`` files plus ``manifest.json``
  (``convmat export``), one block in memory at a time.

Bad input (a missing file, bytes that are no ONNX model, an op convmat cannot represent, a dynamic
input shape without ``input_shape``) raises :class:`convmat.ConvmatError` with one line.

Examples
--------
``examples/cnn.onnx`` (in the repository; README's "ONNX models" section shows how
``torch.onnx.export`` made it): Conv, BatchNorm, ReLU, MaxPool, a reflect-padded Conv, ReLU, Flatten,
Linear, on one 1x28x28 image.

>>> import numpy as np, convmat.onnx
>>> model = convmat.onnx.load("examples/cnn.onnx")
>>> for layer in model.affine_layers():
...     print(layer.name, layer.matrix.shape, layer.activation, layer.nodes)
/0/Conv (6272, 784) Relu ['/0/Conv']
/4/Conv (784, 1568) Relu ['/4/Pad', '/4/Conv']
/7/Gemm (10, 784) None ['/6/Flatten', '/7/Gemm']

The whole model re-checked: the blocks composed with the nonlinearities between them (here ReLU
and a 2x2 MaxPool) are the model (compare with ``onnxruntime`` on the same input).

>>> x = np.linspace(-1, 1, 784).reshape(1, 28, 28)
>>> v = x.ravel()
>>> for layer in model.affine_layers():
...     v = layer.matrix @ v + layer.bias
...     for act in layer.activations:
...         if act.op == "Relu":
...             v = np.maximum(v, 0)
...         elif act.op == "MaxPool":  # kernel 2, stride 2
...             c, h, w = act.input_shape
...             v = v.reshape(c, h // 2, 2, w // 2, 2).max(axis=(2, 4)).ravel()
>>> v.shape
(10,)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._native import ConvmatError

__all__ = ["Activation", "AffineLayer", "ConvNode", "FixedRun", "GraphNode", "Input", "Model", "Node", "load"]


def _tuple(shape: Optional[Sequence[int]]) -> Optional[Tuple[int, ...]]:
    return None if shape is None else tuple(shape)


class Input(NamedTuple):
    """A graph input (not an initializer)."""

    name: str
    declared: List[str]
    """The shape as the model declares it, dynamic dimensions by their names."""
    shape: Tuple[int, ...]
    """The shape of one sample used (batch dimension dropped)."""


class Node(NamedTuple):
    """One node as ``convmat onnx --json`` lists it; shapes are of one sample (batch dropped)."""

    name: str
    op: str
    input_shape: Optional[Tuple[int, ...]]
    """The shape of the activation it reads; None for constants."""
    output_shape: Optional[Tuple[int, ...]]
    params: Dict[str, Any]
    """Its attributes and derived facts: weight shape, the PyTorch ``expression``, ``role``
    (``affine``, ``identity``, ``nonlinearity``, ``constant``, ``unsupported``), ``folded_into``, ..."""
    affine: bool
    """Whether convmat builds its matrix (alone or folded into a neighbour)."""


class GraphNode(NamedTuple):
    """One node of the model as a graph of exact blocks (``manifest.json``'s ``graph`` list)."""

    name: str
    op: str
    """The op as the model writes it (``Conv``, ``Add``, ``Clip``, ...)."""
    kind: str
    """``block`` (an exact affine map of one tensor), ``junction`` (Add / Sub of two computed tensors,
    Concat, Split, Slice, Transpose, reshapes) or ``nonlinearity`` (by ONNX semantics)."""
    inputs: List[str]
    """The computed tensors it reads."""
    outputs: List[str]
    """The tensors it writes."""
    output_shapes: List[Tuple[int, ...]]
    """One sample's shape of each output."""
    file: Optional[str]
    """The block's ``.npz`` file in an export (None here)."""
    folded: List[str]
    """Nodes folded into it (a block's BatchNorm, a Pad before a Conv)."""
    params: Dict[str, Any]
    """The model's attributes and the typed parameters evaluation reads (``junction`` / ``nonlinearity``
    naming the op, ``axis``, ``perm``, ``sizes``, ``min``, ``max``, ``scale``, ``bias``, ...)."""


class Activation(NamedTuple):
    """A nonlinearity between two affine blocks (``Relu``, ``MaxPool``, ``Softmax``, ...)."""

    name: str
    op: str
    params: Dict[str, Any]
    """Its ONNX attributes (e.g. ``kernel_shape``, ``strides``, ``pads`` of a ``MaxPool``)."""
    input_shape: Tuple[int, ...]
    output_shape: Tuple[int, ...]


class ConvNode(NamedTuple):
    """A convolution-like node of a model as a :class:`convmat.Conv` and the input it reads."""

    layer: Any
    """A :class:`convmat.Conv`: every convmat function takes it."""
    input_shape: Tuple[int, ...]
    """The node's input, one sample (the Pad's input when a Pad was folded in)."""


@dataclass(frozen=True, repr=False)
class AffineLayer:
    """One affine block of a model: ``flatten(y) = matrix @ flatten(x) + bias`` on one sample."""

    name: str
    """The main node's name (the Conv, Gemm, ...)."""
    op: str
    """The main node's op."""
    matrix: Any
    """``scipy.sparse.csr_array`` / ``csc_array`` (float64), or a ``numpy.ndarray`` for ``format="dense"``."""
    bias: np.ndarray
    """float64, one value per row."""
    input_shape: Tuple[int, ...]
    output_shape: Tuple[int, ...]
    activation: Optional[str]
    """The op of the nonlinearity that follows (``"Relu"``, ...), None when another block or the end
    follows: the manifest's ``nonlinearity``."""
    activations: List[Activation]
    """Every nonlinearity that follows, in order, with its attributes: the manifest's ``nonlinearities``."""
    nodes: List[str]
    """Every node folded into this block (Pad, BatchNormalization, constant Add, ...), in graph order."""

    def __repr__(self) -> str:
        return (
            f"AffineLayer(name={self.name!r}, op={self.op!r}, input_shape={self.input_shape}, "
            f"output_shape={self.output_shape}, matrix={type(self.matrix).__name__}{self.matrix.shape}, "
            f"activation={self.activation!r}, nodes={self.nodes!r})"
        )


def _matrix(out: Any) -> Any:
    if isinstance(out, np.ndarray):
        return out
    data, indices, indptr, shape, kind = out
    import scipy.sparse as sp

    cls = sp.csr_array if kind == "csr" else sp.csc_array
    return cls((data, indices, indptr), shape=shape, copy=False)


def _path(name: str, value: Any) -> str:
    if not isinstance(value, (str, os.PathLike)):
        raise ConvmatError(f"invalid {name} {value!r}: expected a file path (str or pathlib.Path)")
    return os.fspath(value)


def _input_shape(value: Any) -> Optional[List[int]]:
    if value is None:
        return None
    from . import _shape

    return _shape(value)


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ConvmatError(f"invalid {name} {value!r}: expected True or False")
    return bool(value)


class FixedRun:
    """What :meth:`Model.run_fixed` returns: ``output``, its fixed-point ``format`` (``None``: real values
    after a float node without a type), the per-node ``report`` and, with ``trace=True``, ``tensors``."""

    __slots__ = ("output", "format", "report", "tensors")

    def __init__(self, output: Any, format: Optional[str], report: List[dict], tensors: dict) -> None:
        self.output = output
        self.format = format
        self.report = report
        self.tensors = tensors

    def __repr__(self) -> str:
        over = sum(r["products"] + r["accumulators"] + r["results"] for r in self.report)
        return f"convmat.onnx.FixedRun(output {tuple(self.output.shape)} in {self.format}, {len(self.report)} nodes, {over} overflows)"


class Model:
    """An ONNX model read by :func:`load`.

    Attributes
    ----------
    path : str
    opset : int
        The default-domain opset it imports.
    input_shape : tuple of int or None
        The per-sample input shape given to :func:`load` (None: the model's own static shape).
    inputs : list of Input
    nodes : list of Node
        Every node in order: ``convmat onnx --json``'s "nodes".
    """

    def __init__(self, native: Any, input_shape: Optional[List[int]]) -> None:
        self._native = native
        self.path: str = os.fspath(native.path)
        self.opset: int = native.opset
        self.input_shape: Optional[Tuple[int, ...]] = _tuple(input_shape)
        summary = json.loads(native.summary(input_shape))
        self.inputs: List[Input] = [Input(i["name"], i["declared"], tuple(i["shape"])) for i in summary["inputs"]]
        self.nodes: List[Node] = [
            Node(n["name"], n["op"], _tuple(n["input_shape"]), _tuple(n["output_shape"]), n["params"], n["affine"])
            for n in summary["nodes"]
        ]

    def affine_layers(self, fold_batchnorm: bool = True, format: str = "csr") -> List[AffineLayer]:
        """The model's affine blocks in order, each with its exact matrix and bias.

        Each block is built in Rust with the GIL released and handed to SciPy / NumPy before the next is
        built; the list holds them all. For a model whose blocks do not fit in memory together,
        :meth:`export` writes them one at a time.

        Parameters
        ----------
        fold_batchnorm : bool
            Fold each BatchNormalization into the Conv / ConvTranspose / Gemm before it (default);
            False keeps it a diagonal block of its own (``convmat export --no-fold``).
        format : {"csr", "csc", "dense"}
            ``scipy.sparse.csr_array`` / ``csc_array`` (int32 indices when they fit) or ``numpy.ndarray``.

        Returns
        -------
        list of AffineLayer
            ``.name``, ``.op``, ``.matrix``, ``.bias``, ``.input_shape``, ``.output_shape``,
            ``.activation`` (the op of the nonlinearity that follows, or None), ``.activations``,
            ``.nodes`` (the nodes folded in).

        Raises
        ------
        ConvmatError
            An op convmat cannot represent (named with its node), a graph that is not a chain,
            weights that cannot be read.

        Examples
        --------
        >>> import convmat.onnx
        >>> model = convmat.onnx.load("examples/cnn.onnx")
        >>> [(layer.op, layer.matrix.shape, layer.activation) for layer in model.affine_layers()]
        [('Conv', (6272, 784), 'Relu'), ('Conv', (784, 1568), 'Relu'), ('Gemm', (10, 784), None)]
        >>> [layer.op for layer in model.affine_layers(fold_batchnorm=False)]
        ['Conv', 'Conv', 'Gemm']
        >>> type(model.affine_layers(format="dense")[0].matrix).__name__
        'ndarray'
        """
        fmt = format if isinstance(format, str) else None
        if fmt is None:
            raise ConvmatError(f"invalid format {format!r}: expected 'csr', 'csc' or 'dense'")
        blocks = self._native.affine_layers(
            None if self.input_shape is None else list(self.input_shape), _bool("fold_batchnorm", fold_batchnorm), fmt
        )
        out = []
        for name, op, nodes, in_shape, out_shape, acts, matrix, bias in blocks:
            activations = [
                Activation(a["name"], a["op"], a["params"], tuple(a["input_shape"]), tuple(a["output_shape"]))
                for a in json.loads(acts)
            ]
            out.append(
                AffineLayer(
                    name=name,
                    op=op,
                    matrix=_matrix(matrix),
                    bias=bias,
                    input_shape=tuple(in_shape),
                    output_shape=tuple(out_shape),
                    activation=activations[0].op if activations else None,
                    activations=activations,
                    nodes=list(nodes),
                )
            )
        return out

    def conv_layer(self, node_name: str) -> ConvNode:
        """One convolution-like node as a :class:`convmat.Conv`, for every convmat function.

        The Conv / ConvTranspose (a ``Pad`` before it folded into its padding), AveragePool /
        GlobalAveragePool (a depthwise convolution of ``1 / kernel size``) or Pad node, its attributes
        mapped by the library exactly as ``convmat build --weights MODEL.onnx --layer NODE`` maps them.

        Returns
        -------
        ConvNode
            ``.layer`` (a :class:`convmat.Conv`) and ``.input_shape`` (the node's input, one sample).

        Raises
        ------
        ConvmatError
            A name no node has (the message lists the close ones), a node that is not a convolution
            (Gemm, BatchNormalization: use :meth:`affine_layers`), a pool whose border windows divide by
            fewer taps.

        Examples
        --------
        >>> import convmat, convmat.onnx
        >>> layer, shape = convmat.onnx.load("examples/cnn.onnx").conv_layer("/4/Conv")
        >>> layer, shape
        (convmat.Conv(Conv2d(8, 16, 3, stride=2, padding=(1, 1), padding_mode='reflect')), (8, 14, 14))
        >>> s = convmat.spectral_norm(layer, shape)   # the node's Lipschitz constant, certified
        >>> bool(s.lower <= s.value <= s.upper)
        True
        """
        if not isinstance(node_name, str):
            raise ConvmatError(f"invalid node_name {node_name!r}: expected a node's name (model.nodes lists them)")
        from . import Conv

        w, b, stride, padding, dilation, groups, mode, transposed, output_padding, shape = self._native.conv_layer(
            node_name, None if self.input_shape is None else list(self.input_shape)
        )
        layer = Conv(
            w,
            b,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            padding_mode=mode,
            transposed=transposed,
            output_padding=output_padding,
        )
        return ConvNode(layer, tuple(shape))

    def export(self, out_dir: Union[str, "os.PathLike[str]"], fold_batchnorm: bool = True) -> List[Dict[str, Any]]:
        """Writes every block as ``out_dir/NNN_name.npz`` (SciPy CSR with ``bias``) and ``manifest.json``.

        Exactly ``convmat export MODEL.onnx -o out_dir``: one block in memory at a time; a failure
        leaves no file of this export behind. Returns the manifest's "blocks" (file, name, op, nodes,
        shapes, nonlinearity, nonlinearities, rows, cols, nnz).

        Examples
        --------
        >>> import scipy.sparse, convmat.onnx
        >>> blocks = convmat.onnx.load("examples/cnn.onnx").export("blocks")
        >>> [(b["file"], b["nonlinearity"]) for b in blocks]
        [('000_0_Conv.npz', 'Relu'), ('001_4_Conv.npz', 'Relu'), ('002_7_Gemm.npz', None)]
        >>> scipy.sparse.load_npz("blocks/000_0_Conv.npz").shape
        (6272, 784)
        """
        return json.loads(
            self._native.export(
                _path("out_dir", out_dir),
                None if self.input_shape is None else list(self.input_shape),
                _bool("fold_batchnorm", fold_batchnorm),
            )
        )

    @property
    def graph(self) -> List[GraphNode]:
        """The model as a graph of exact blocks, junctions and nonlinearities, in topological order:
        the records of ``convmat export``'s ``manifest.json`` ``graph`` list (without files).

        Raises
        ------
        ConvmatError
            An op convmat cannot represent, named with its node and the reason.

        Examples
        --------
        >>> import convmat.onnx
        >>> [(n.op, n.kind) for n in convmat.onnx.load("examples/cnn.onnx").graph][:3]
        [('Conv', 'block'), ('Relu', 'nonlinearity'), ('MaxPool', 'nonlinearity')]
        """
        records = json.loads(self._native.graph(None if self.input_shape is None else list(self.input_shape), True))
        return [
            GraphNode(r["name"], r["op"], r["kind"], r["inputs"], r["outputs"],
                      [tuple(s) for s in r["output_shapes"]], r["file"], r["folded"], r["params"])
            for r in records
        ]

    def run(self, x: Any, trace: bool = False, dtype: str = "float32", fixed: Any = None) -> Any:
        """The model evaluated on ``x`` through its exact blocks (``convmat run``).

        Every block (Conv, Gemm, pools, BatchNorm folded) is applied through convmat's operator, every
        junction and nonlinearity by ONNX semantics.

        Parameters
        ----------
        x : array_like
            A batch ``(N, *sample)`` or one sample ``(*sample)``.
        trace : bool
            Also return every tensor the nodes write, in graph order.
        dtype : {"float32", "float64"}
            The precision of the run (float32: onnxruntime's).

        Returns
        -------
        numpy.ndarray or (numpy.ndarray, dict)
            The output (without a batch dimension when ``x`` had none); with ``trace=True`` also a
            ``dict`` (in graph order) from tensor name to array (batch first).

        Raises
        ------
        ConvmatError
            An input of the wrong shape; an op convmat cannot represent.

        Examples
        --------
        >>> import numpy as np, convmat.onnx
        >>> model = convmat.onnx.load("examples/cnn.onnx")
        >>> y, tensors = model.run(np.ones((2, 1, 28, 28)), trace=True)
        >>> y.shape, y.dtype, list(tensors)[0]
        ((2, 10), dtype('float32'), '/0/Conv_output_0')
        """
        if fixed is not None:
            return self.run_fixed(x, fixed, trace=trace)
        arr = np.asarray(getattr(x, "detach", lambda: x)(), dtype=np.float64)
        if not isinstance(dtype, str):
            raise ConvmatError(f"invalid dtype {dtype!r}: expected 'float32' or 'float64'")
        y, traced = self._native.run(arr, _bool("trace", trace), dtype)
        if not trace:
            return y
        return y, {name: value for name, _node, _op, value in traced}

    def run_fixed(self, x: Any, formats: Any, trace: bool = False) -> "FixedRun":
        """The model evaluated in fixed point (``convmat run --fixed``): every block through convmat's
        fixed-point apply with its layer's types, Relu / MaxPool / Clip / Add / Concat on the stored values,
        the other nonlinearities through float and cast back; ``model.run(x, fixed=formats)`` is the same.

        Parameters
        ----------
        x : array_like
            A batch ``(N, *sample)`` or one sample.
        formats : dict, str or os.PathLike
            The formats file's content as a ``dict`` (``{"input": "q1.7", "default": {...}, "layers":
            {NODE: {"weight", "bias", "accumulator", "result", "input", "rounding", "overflow"}}}``), its
            JSON text, or its path.
        trace : bool
            Also keep every tensor of the run (``.tensors``).

        Returns
        -------
        FixedRun
            ``.output`` (real values of ``.format``), ``.format``, ``.report`` (one ``dict`` per node: the
            types, ``arithmetic`` fixed / exact / float, ``sqnr_db`` against a float32 run, overflow counts
            ``products`` / ``accumulators`` / ``results`` and per output ``channels``), ``.tensors``.

        Raises
        ------
        ConvmatError
            A formats file naming a layer the model lacks, a type that does not parse or cannot hold a
            layer's weights, malformed JSON.

        Examples
        --------
        >>> import numpy as np, convmat.onnx
        >>> model = convmat.onnx.load("examples/cnn.onnx")
        >>> r = model.run_fixed(np.ones((1, 1, 28, 28)) / 2, {"input": "q1.7", "default": {"weight": "q2.6", "result": "q4.8"}})
        >>> r.output.shape, r.format, r.report[0]["arithmetic"]
        ((1, 10), 'q4.8', 'fixed')
        """
        if isinstance(formats, dict):
            text = json.dumps(formats)
        elif isinstance(formats, (str, os.PathLike)) and not str(formats).lstrip().startswith("{"):
            try:
                with open(formats) as f:
                    text = f.read()
            except OSError as e:
                raise ConvmatError(f"{formats}: {e.strerror} (give the formats as a dict, JSON text or a path)") from None
        elif isinstance(formats, str):
            text = formats
        else:
            raise ConvmatError(f"invalid formats {type(formats).__name__}: expected a dict, JSON text or a path")
        arr = np.asarray(getattr(x, "detach", lambda: x)(), dtype=np.float64)
        y, fmt, report, traced = self._native.run_fixed(arr, text, _bool("trace", trace))
        return FixedRun(y, fmt, json.loads(report), {name: value for name, _node, _op, value in traced})

    def norms(self, tol: float = 1e-6) -> "convmat.NetworkNorms":
        """Every affine block's certified spectral norm and their product (AutoLip): exactly
        ``convmat svd --weights MODEL.onnx --json``, as a :class:`convmat.NetworkNorms` (the same result
        :func:`convmat.network_norms` gives for a ``torch.nn.Sequential``).

        Blocks are the graph's (BatchNorm folded; residual Adds, Concats and Splits are read too); each
        layer's ``method`` says how its interval was found (closed form, dense SVD, per group, certified
        matrix-free) and ``graph_upper`` bounds the whole graph node by node. Ctrl-C stops the computation.

        Examples
        --------
        >>> import convmat.onnx
        >>> r = convmat.onnx.load("examples/cnn.onnx").norms()
        >>> [l.name for l in r.layers][:2], r.layers[r.largest].name
        (['/0/Conv', '/4/Conv'], '/0/Conv')
        """
        from . import _network, _spectrum_tol

        shape = None if self.input_shape is None else list(self.input_shape)
        return _network(self._native.norms(shape, _spectrum_tol(tol)))

    def __repr__(self) -> str:
        affine = sum(1 for n in self.nodes if n.affine)
        return f"convmat.onnx.Model({self.path!r}, opset {self.opset}, {len(self.nodes)} nodes, {affine} affine)"


def load(path: Union[str, "os.PathLike[str]"], input_shape: Optional[Sequence[int]] = None) -> Model:
    """Reads an ONNX model and walks its graph on one input shape.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.onnx`` file; external data (``.onnx.data``) is read from its folder.
    input_shape : tuple of int, optional
        One sample ``(C, H, W)`` (batch dropped), needed only when the model's input shape is dynamic.

    Returns
    -------
    Model
        With ``.nodes`` and ``.affine_layers(fold_batchnorm=True, format="csr")``.

    Raises
    ------
    ConvmatError
        A missing file, bytes that are not an ONNX model (truncated, corrupt), an opset older than 7,
        external data outside the model's folder, a dynamic input shape without ``input_shape``.

    Examples
    --------
    >>> import convmat.onnx
    >>> model = convmat.onnx.load("examples/cnn.onnx")
    >>> model
    convmat.onnx.Model('examples/cnn.onnx', opset 20, 23 nodes, 5 affine)
    >>> for n in model.nodes[:3]:
    ...     print(n.name, n.op, n.input_shape, n.output_shape, n.affine)
    /0/Conv Conv (1, 28, 28) (8, 28, 28) True
    /2/Relu Relu (8, 28, 28) (8, 28, 28) False
    /3/MaxPool MaxPool (8, 28, 28) (8, 14, 14) False
    >>> model.nodes[0].params["expression"]
    'Conv2d(1, 8, 3, padding=(1, 1))'
    >>> convmat.onnx.load("missing.onnx")
    Traceback (most recent call last):
    ...
    convmat.ConvmatError: missing.onnx: No such file or directory (os error 2)
    """
    shape = _input_shape(input_shape)
    native = _native.OnnxModel(_path("path", path))
    return Model(native, shape)


def _lower(
    self: Model,
    out_path: Union[str, "os.PathLike[str]"],
    form: str = "gemm",
    max_dense_bytes: Optional[int] = None,
    keep_input_shape: bool = False,
    max_pool: str = "keep",
) -> Dict[str, Any]:
    """Writes the model lowered for MILP encoders and verifiers: ``convmat lower MODEL.onnx -o out_path``.

    Every affine block (Conv, ConvTranspose, linear pools, Gemm, MatMul; BatchNorm and Pad folded) becomes
    one dense ``Gemm`` (``alpha=1, beta=1, transA=0, transB=1`` written explicitly) or, with
    ``form="matmul"``, ``MatMul`` + ``Add``; the nonlinearities stay the ONNX ops they were; the graph
    input keeps its name and is flat, ``[N, C*H*W]`` in row-major order (``keep_input_shape=True``: the
    original shape behind a leading ``Flatten``). Weights are float32; blocks are built and written one
    at a time into a temporary file renamed over ``out_path`` on success.

    Parameters
    ----------
    out_path : str or os.PathLike
        The ``.onnx`` file to write.
    form : {"gemm", "matmul"}
    max_dense_bytes : int, optional
        Refuse models whose dense weights take more bytes (default: the memory available).
    keep_input_shape : bool
    max_pool : {"keep", "relu"}
        ``"keep"``: a MaxPool stays the op it was, between a ``Reshape`` and a ``Flatten``; ``"relu"``: it
        becomes ``Gemm`` + ``Relu`` layers (pairwise maxima, ``max(a, b) = relu(a - b) + relu(b) -
        relu(-b)``) for readers that take nothing else (OMLT, gurobi-machinelearning).

    Graphs lower too: a residual ``Add`` / ``Sub`` and a channel ``Concat`` become ``Add`` / ``Sub`` /
    ``Concat(axis=1)`` of the flat vectors; Split, Slice and Transpose become 0/1 selection blocks.

    Returns
    -------
    dict
        ``{"model", "output", "blocks": [{"name", "op", "rows", "cols", "bytes"}], "bytes"}``: ``convmat
        lower --json`` without its ``seconds``.

    Raises
    ------
    ConvmatError
        An op convmat cannot represent (named with its node), dense weights over ``max_dense_bytes``
        (naming the largest block), ``out_path`` a directory.

    Examples
    --------
    >>> import convmat.onnx
    >>> r = convmat.onnx.load("examples/cnn.onnx").lower("cnn_gemm.onnx")
    >>> [(b["op"], b["rows"], b["cols"]) for b in r["blocks"]][:2]
    [('Conv', 6272, 784), ('Conv', 784, 1568)]
    """
    if not isinstance(form, str):
        raise ConvmatError(f"invalid form {form!r}: expected 'gemm' or 'matmul'")
    if not isinstance(max_pool, str):
        raise ConvmatError(f"invalid max_pool {max_pool!r}: expected 'keep' or 'relu'")
    if max_dense_bytes is not None and (
        isinstance(max_dense_bytes, bool) or not isinstance(max_dense_bytes, int) or max_dense_bytes < 0
    ):
        raise ConvmatError(f"invalid max_dense_bytes {max_dense_bytes!r}: expected a number of bytes >= 0, or None")
    return json.loads(
        self._native.lower(
            _path("out_path", out_path),
            None if self.input_shape is None else list(self.input_shape),
            form,
            max_dense_bytes,
            _bool("keep_input_shape", keep_input_shape),
            max_pool,
        )
    )


Model.lower = _lower  # type: ignore[attr-defined]
