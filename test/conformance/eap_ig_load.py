"""Loads Circuit Lens EAP-IG exports with EAP-IG's own Graph (hannamw/EAP-IG src/eap/graph.py,
from ../shared/peers, unmodified) under Debian's python3-torch, and reports what it read.

argv: PEERS_EAP_IG_SRC JSON... ; prints one JSON line per file:
  nodes, edges (counts of the full graph), in_graph (edge names), pair_sums ({"src->dst": Σ score
  over q/k/v}), topn_in_graph (edge names after apply_topn(count_included_edges())),
  roundtrip (to_json then from_json again: same in_graph and scores).
"""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "stubs"))
sys.path.insert(0, sys.argv[1])

from eap.graph import Graph  # noqa: E402  (the peer's code)


def report(path):
    g = Graph.from_json(path)
    in_graph = sorted(name for name, edge in g.edges.items() if edge.in_graph)
    pair_sums = {}
    for name, edge in g.edges.items():
        pair = f"{edge.parent.name}->{edge.child.name}"
        pair_sums[pair] = pair_sums.get(pair, 0.0) + float(edge.score)
    n_nodes = sum(1 for node in g.nodes.values() if node.in_graph)
    k = g.count_included_edges()
    # Round trip through EAP-IG's own writer.
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "roundtrip.json")
        g.to_json(out)
        again = Graph.from_json(out)
        roundtrip = sorted(name for name, edge in again.edges.items() if edge.in_graph) == in_graph and all(
            abs(float(again.edges[name].score) - float(edge.score)) < 1e-6 for name, edge in g.edges.items()
        )
    g.apply_topn(k, absolute=True)
    topn = sorted(name for name, edge in g.edges.items() if edge.in_graph)
    return {
        "file": path,
        "nodes": len(g.nodes),
        "edges": len(g.edges),
        "nodes_in_graph": n_nodes,
        "in_graph": in_graph,
        "pair_sums": pair_sums,
        "count_included_edges": int(k),
        "topn_in_graph": topn,
        "roundtrip": bool(roundtrip),
    }


for path in sys.argv[2:]:
    print(json.dumps(report(path)), flush=True)
