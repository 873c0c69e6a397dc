"""One fresh-process AttnLRP attribution with the PyTorch-eager oracle, for bench/scale.ts.

    python3 bench/oracle-fresh.py --oracle-dir ../shared/reference/oracle --model DIR --tokens 128 [--threads 2]

Imports torch and the oracle, loads the model, explains the last position's logit of token 0
(the same target as bench/attribution.ts and our CLI run), prints one JSON line with the phases.
The process's whole wall time (interpreter start to exit) is measured by the caller.
"""
import argparse
import json
import resource
import sys
import time

t_start = time.perf_counter()
ap = argparse.ArgumentParser()
ap.add_argument("--oracle-dir", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--tokens", type=int, default=128)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
sys.dont_write_bytecode = True
sys.path.insert(0, a.oracle_dir)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from attnlrp import Target, explain  # noqa: E402
from hf_models import load_model  # noqa: E402

torch.set_num_threads(a.threads)
t_import = time.perf_counter()
m = load_model(a.model, dtype=torch.float32)
t_load = time.perf_counter()
ids = [int(t) for t in np.random.default_rng(a.tokens).integers(0, m.vocab_size, a.tokens)]
explain(m, ids, Target(token=0), mode="attnlrp", latents="heads")
t_done = time.perf_counter()
print(json.dumps({"import_s": t_import - t_start, "load_s": t_load - t_import, "attribution_s": t_done - t_load,
                  "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
