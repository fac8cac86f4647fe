"""convmat.dask on a LocalCluster of two worker processes (one thread each): the shards the workers
build and write stack to convmat.matrix, in SciPy's layout; bad arguments fail before any task runs; a
failing task leaves no shard of its call behind."""

import doctest
import json
import pickle

import numpy as np
import pytest
import scipy.sparse as sp

import convmat

distributed = pytest.importorskip("dask.distributed")
import convmat.dask  # noqa: E402  (needs dask)


@pytest.fixture(scope="module")
def client():
    # worker processes: the layer crosses by pickle, as on a real cluster
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster, distributed.Client(cluster) as c:
        yield c


class Conv1dStandIn:
    """What torch.nn.ConvTranspose1d(3, 4, 5, stride=2, padding=1, output_padding=1) holds."""

    def __init__(self):
        rng = np.random.default_rng(17)
        self.weight = rng.standard_normal((3, 4, 5))
        self.bias = rng.standard_normal(4)
        self.stride, self.padding, self.dilation, self.groups = (2,), (1,), (1,), 1
        self.padding_mode, self.transposed, self.output_padding = "zeros", True, (1,)


def layers():
    rng = np.random.default_rng(14)
    w = rng.standard_normal((6, 2, 3, 3))
    w[0, 0] = 0.0  # explicit zeros: kept unless drop_zeros
    return {
        "conv2d": (convmat.Conv(w, rng.standard_normal(6), stride=(1, 2), padding=1, groups=2), (4, 9, 8)),
        "reflect_nobias": (convmat.Conv(w[:, :1], padding=2, dilation=2, padding_mode="reflect"), (1, 7, 6)),
        "transposed1d": (Conv1dStandIn(), (3, 11)),
    }


@pytest.mark.parametrize("name", list(layers()))
@pytest.mark.parametrize("fmt, dtype, drop", [("csr", "float32", False), ("csc", "float64", True)])
def test_shards_written_by_workers_stack_to_the_matrix(client, tmp_path, name, fmt, dtype, drop):
    layer, shape = layers()[name]
    want = convmat.matrix(layer, shape, format=fmt, dtype=dtype, drop_zeros=drop)
    manifest = convmat.dask.build_shards(
        client, layer, shape, tmp_path, rows_per_shard=37, format=fmt, dtype=dtype, drop_zeros=drop
    )
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    assert manifest["shape"] == list(want.shape) and manifest["nnz"] == want.nnz
    assert (manifest["format"], manifest["dtype"], manifest["input_shape"]) == (fmt, dtype, list(shape))
    ranges = [tuple(s["rows"]) for s in manifest["shards"]]
    assert ranges[0][0] == 0 and ranges[-1][1] == want.shape[0]
    assert all(a[1] == b[0] and a[1] - a[0] == 37 for a, b in zip(ranges, ranges[1:]))
    has_bias = convmat.Conv.from_torch(layer).bias is not None
    bias = convmat.bias_vector(layer, shape, dtype="float64")
    for s in manifest["shards"]:
        r0, r1 = s["rows"]
        part = sp.load_npz(tmp_path / s["file"])  # SciPy's layout
        assert part.format == fmt and part.dtype == np.dtype(dtype) and part.nnz == s["nnz"]
        assert (part != want[r0:r1]).nnz == 0
        with np.load(tmp_path / s["file"]) as z:
            assert ("bias" in z.files) == has_bias
            if has_bias:
                assert np.array_equal(z["bias"], bias[r0:r1])
    stacked = convmat.dask.load_shards(tmp_path)
    assert stacked.format == fmt and (stacked != want).nnz == 0
    assert not list(tmp_path.glob("*.tmp-*"))


def test_delayed_shards_computed_on_the_cluster_stack_to_the_matrix(client):
    for layer, shape in layers().values():
        shards = convmat.dask.matrix(layer, shape, rows_per_shard=50)
        parts = client.gather(client.compute(shards))
        assert all(isinstance(p, sp.csr_array) for p in parts)
        assert (sp.vstack(parts, format="csr") != convmat.matrix(layer, shape)).nnz == 0


def test_default_shards_stay_under_the_byte_bound():
    layer, shape = layers()["conv2d"]
    bound = 4000
    ranges = convmat.dask.row_ranges(layer, shape, max_shard_bytes=bound)
    assert len(ranges) > 1 and ranges[-1][1] == convmat.estimate(layer, shape).rows
    for r0, r1 in ranges:
        assert convmat.estimate(layer, shape, rows=(r0, r1)).bytes <= bound + 8 * 2  # the row pointers' ends
    assert convmat.dask.row_ranges(layer, shape) == [(0, convmat.estimate(layer, shape).rows)]


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(format="dense"), "shards are sparse"),
        (dict(dtype="q1.7"), "fixed-point shards"),
        (dict(dtype="float16"), "float16"),
        (dict(rows_per_shard=0), "rows_per_shard"),
        (dict(max_shard_bytes=-1), "max_shard_bytes"),
        (dict(input_shape=(3, 9, 8)), "channel|3"),
        (dict(out_dir=5), "out_dir"),
        (dict(layer=object()), "not a convolution layer"),
    ],
)
def test_bad_arguments_fail_before_any_task(client, tmp_path, kwargs, pattern):
    layer, shape = layers()["conv2d"]
    args = dict(layer=layer, input_shape=shape, out_dir=tmp_path / "out")
    args.update(kwargs)
    with pytest.raises(convmat.ConvmatError, match=pattern) as e:
        convmat.dask.build_shards(client, **args)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_failing_task_leaves_no_shard_behind(client, tmp_path):
    layer, shape = layers()["conv2d"]
    (tmp_path / "shard_00002.npz").mkdir()  # the third shard cannot be written
    with pytest.raises(OSError):
        convmat.dask.build_shards(client, layer, shape, tmp_path, rows_per_shard=40)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard_00002.npz"]


def test_layers_pickle_by_their_arguments():
    layer, shape = layers()["conv2d"]
    back = pickle.loads(pickle.dumps(layer))
    assert repr(back) == repr(layer) and back.padding == layer.padding
    assert (convmat.matrix(back, shape) != convmat.matrix(layer, shape)).nnz == 0


def test_equal_layers_get_equal_dask_keys():
    from dask.base import tokenize

    layer, shape = layers()["conv2d"]
    again, _ = layers()["conv2d"]
    other = convmat.Conv(layer.weight, layer.bias, stride=1, padding=1, groups=2)
    assert tokenize(layer) == tokenize(again) != tokenize(other)
    keys = [d.key for d in convmat.dask.matrix(layer, shape, rows_per_shard=50)]
    assert keys == [d.key for d in convmat.dask.matrix(again, shape, rows_per_shard=50)] and len(set(keys)) == len(keys)


def test_docstrings_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    failures, tried = doctest.testmod(convmat.dask, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert tried >= 10 and failures == 0
