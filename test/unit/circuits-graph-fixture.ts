/** A small hand-made circuit graph shared by the graph and export tests. */
import { buildCircuitGraph, type CircuitGraph, type CircuitModelInfo } from '../../src/circuits/discovery/graph';

export const TINY_MODEL: CircuitModelInfo = { name: 'tiny-test', nLayers: 2, nHeads: 2, dModel: 8, dMlp: 3 };

/** Heads [[0.5, −3], [1, 0.1]] and MLPs [2, −0.2]: Σ|R| over components = 6.8. */
export function tinyNodeGraph(): CircuitGraph {
  return buildCircuitGraph({
    model: TINY_MODEL,
    task: { name: 'ioi', metric: 'logit_diff', examples: 10 },
    method: { name: 'attnlrp', aggregation: 'mean-abs' },
    heads: [
      [0.5, -3],
      [1, 0.1],
    ],
    mlps: [2, -0.2],
    inputRelevance: 4,
    logitsRelevance: 5,
  });
}

/** The same nodes with scored edges: one strong input→a0.h0→m1→logits path and a dead end. */
export function tinyEdgeGraph(): CircuitGraph {
  return buildCircuitGraph({
    model: TINY_MODEL,
    task: { name: 'ioi', metric: 'logit_diff', examples: 10 },
    method: { name: 'attnlrp' },
    heads: [
      [0.5, -3],
      [1, 0.1],
    ],
    mlps: [2, -0.2],
    edges: [
      { source: 'input', target: 'a0.h0', relevance: 5 },
      { source: 'a0.h0', target: 'm1', relevance: -4 },
      { source: 'm1', target: 'logits', relevance: 3 },
      { source: 'input', target: 'a1.h1', relevance: 2.5 },
      { source: 'm0', target: 'logits', relevance: 0.1 },
      { source: 'input', target: 'm0', relevance: 0.05 },
    ],
  });
}
