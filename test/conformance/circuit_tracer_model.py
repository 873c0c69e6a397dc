"""Parses Circuit Lens Neuronpedia/circuit-tracer graphs with circuit-tracer's own pydantic model
(decoderesearch/circuit-tracer circuit_tracer/frontend/graph_models.py from ../shared/peers,
unmodified, loaded by path so its package __init__ with torch models is not imported) under
Debian's python3-pydantic.

argv: GRAPH_MODELS_PY GRAPH_JSON... ; prints one JSON line per file, or {"file", "error"} when
the model rejects it.
"""
import importlib.util
import json
import sys

spec = importlib.util.spec_from_file_location("graph_models", sys.argv[1])
graph_models = importlib.util.module_from_spec(spec)
spec.loader.exec_module(graph_models)

for path in sys.argv[2:]:
    with open(path) as f:
        data = json.load(f)
    if path.endswith("graph-metadata.json"):
        # circuit-tracer's serve lists graphs from this index: each entry is a dumped Metadata.
        try:
            slugs = [graph_models.Metadata.parse_obj(entry).slug for entry in data["graphs"]]
            print(json.dumps({"file": path, "slugs": slugs}), flush=True)
        except Exception as err:
            print(json.dumps({"file": path, "error": str(err)}), flush=True)
        continue
    try:
        model = graph_models.Model.parse_obj(data)
    except Exception as err:  # pydantic.ValidationError: the diagnostic is the result
        print(json.dumps({"file": path, "error": str(err)}), flush=True)
        continue
    print(
        json.dumps(
            {
                "file": path,
                "nodes": len(model.nodes),
                "links": len(model.links),
                "transcoder_list": model.metadata.transcoder_list,
                "logit": [(n.node_id, n.token_prob, n.clerp) for n in model.nodes if n.feature_type == "logit"],
            }
        ),
        flush=True,
    )
