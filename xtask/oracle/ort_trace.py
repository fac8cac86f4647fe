"""onnxruntime's trace of a quantized model in `convmat run --trace`'s layout, for `convmat diff`.

Writes DIR/trace.json (node, op, tensor, shape, file, in graph order) and one .npy per integer tensor a
node writes, as onnxruntime's CPU provider computes it with default session options (QDQ fused). A
tensor whose being a graph output would stop a fusion (and change the result) is left out, as in
quant_golden.py.

Run: /work/venv/bin/python xtask/oracle/ort_trace.py MODEL.onnx X.npy DIR
"""

import json
import pathlib
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

ort.set_default_logger_severity(3)


def main(model_path, x_path, out):
    model = onnx.load(model_path)
    x = np.load(x_path)
    session = lambda m: ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {model.graph.input[0].name: x}
    plain = session(model).run(None, feed)[0]
    typed = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in list(typed.graph.value_info) + list(typed.graph.output)}
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=False)
    records = []
    for node in model.graph.node:
        for o in node.output:
            # shape inference does not type the contrib ops' outputs: try the integer types in turn
            known = types.get(o, TensorProto.UNDEFINED)
            tries = [known] if known else [TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32]
            got = None
            for t in tries:
                if t not in (TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32):
                    break
                m = onnx.ModelProto()
                m.CopyFrom(model)
                if o not in {g.name for g in m.graph.output}:
                    m.graph.output.append(helper.make_tensor_value_info(o, t, None))
                try:
                    got = session(m).run(None, feed)
                    break
                except Exception:
                    got = None
            if got is None or not np.array_equal(got[0], plain):
                continue
            value = got[[g.name for g in m.graph.output].index(o)]
            file = f"{len(records):03d}_{''.join(c if c.isalnum() or c in '-_.' else '_' for c in o.lstrip('/.'))}.npy"
            np.save(out / file, value.astype(np.int64))
            records.append(dict(node=node.name or o, op=node.op_type, tensor=o, shape=list(value.shape), file=file))
    (out / "trace.json").write_text(json.dumps(records, indent=2) + "\n")
    print(f"{len(records)} tensors and trace.json in {out} (onnxruntime {ort.__version__})")


if __name__ == "__main__":
    main(*sys.argv[1:4])
