"""Runs onnx.checker.check_model(full_check=True) (Debian python3-onnx) on each ONNX file given.

Prints one JSON line per file: {"file", "ok", "error"?, "opset", "outputs": [[name, rank], ...]}.
full_check also runs strict shape inference, which compares every declared output shape with
the inferred one. Path-based checking resolves external data beside the model file.
"""
import json
import sys

import onnx

for path in sys.argv[1:]:
    result = {"file": path}
    try:
        onnx.checker.check_model(path, full_check=True)
        model = onnx.load(path, load_external_data=False)
        result["ok"] = True
        result["opset"] = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")][0]
        result["outputs"] = [[o.name, len(o.type.tensor_type.shape.dim)] for o in model.graph.output]
    except Exception as err:  # the checker's message is the test's diagnostic
        result["ok"] = False
        result["error"] = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
    print(json.dumps(result), flush=True)
