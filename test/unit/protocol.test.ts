import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseWith, ProtocolError, s } from '../../src/protocol/schema';
import type { Run, VerificationSummary } from '../../src/protocol/shapes';
import { FromWebview, fromWebviewMessages, ToWebview, toWebviewMessages, type PanelState } from '../../src/protocol/webview';
import { Engine, validateWorkerMessage, validateWorkerRequest } from '../../src/protocol/worker';

const reasonOf = (r: { ok: boolean; reason?: string }) => {
  assert.equal(r.ok, false, 'expected the message to be rejected');
  return r.reason ?? '';
};

const pruneRun: Run = {
  id: 'prune-1',
  title: 'attnlrp row-wise 50 %',
  created: '2026-01-01T00:00:00.000Z',
  model: 'tiny',
  kind: 'prune',
  settings: { method: 'attnlrp', scope: 'rowwise', sparsity: 0.5, aggregation: 'mean-abs', target: 'logit', samples: 'sequence', windows: 8, windowLength: 64, calibText: null, evalText: 'heldout.txt' },
  achievedSparsity: 0.5,
  prunedWeights: 50,
  totalWeights: 100,
  evalTokens: 1000,
  perplexityBefore: 5.15,
  perplexityAfter: 6.2,
  curve: [
    { sparsity: 0, perplexity: 5.15 },
    { sparsity: 0.5, perplexity: 6.2 },
  ],
};

/** The panel state: the circuit is the CLI's graph JSON; model-derived names are plain strings. */
const state: PanelState = {
  circuit: {
    version: 1,
    model: { name: 'tiny', nLayers: 2, nHeads: 2, dModel: 8, dMlp: 4 },
    task: { name: '<img src=x onerror=alert(1)>', metric: 'logit_diff', examples: 10 },
    method: { name: 'attnlrp', aggregation: 'signed-mean' },
    granularity: 'heads',
    nodes: [
      { id: 'input', kind: 'input', layer: -1, relevance: 1 },
      { id: 'a1.h0', kind: 'head', layer: 1, head: 0, relevance: 0.5 },
      { id: 'logits', kind: 'logits', layer: 2, relevance: 1 },
    ],
    edges: [{ id: 'input->a1.h0', source: 'input', target: 'a1.h0', relevance: 0.4 }],
    selection: { level: 'node', rule: 'top-k', value: 1, absolute: false, candidates: 4, kept: 1, removedForConnectivity: 0 },
    metrics: { metric: 'logit_diff', full: 3, circuit: 2.7, faithfulness: 0.9 },
    scores: { 'a0.h0': 0.1, 'a0.h1': -0.2, 'a1.h0': 0.5, 'a1.h1': 0 },
    created: '2026-01-01T00:00:00.000Z',
  },
  title: '<b>IOI</b>',
  verification: null,
  runs: [pruneRun],
  shownRuns: ['prune-1'],
  ablated: [],
  pinned: [],
  selected: null,
  threshold: 0.1,
  topK: 50,
  view: 'graph',
};

describe('webview → host commands', () => {
  it('accepts well-formed commands and returns typed copies', () => {
    const r = fromWebviewMessages.validate(FromWebview.verify.create({ ablate: ['a1.h0', 'm0'] }));
    assert.ok(r.ok);
    if (r.ok && FromWebview.verify.is(r.message)) assert.deepEqual(r.message.params.ablate, ['a1.h0', 'm0']);
    assert.ok(fromWebviewMessages.validate({ method: 'panel/ready' }).ok);
    assert.ok(fromWebviewMessages.validate(FromWebview.setThreshold.create({ threshold: 0.25, topK: 10 })).ok);
    assert.ok(fromWebviewMessages.validate(FromWebview.selectNode.create({ id: null })).ok);
  });

  it('rejects unknown message types', () => {
    assert.match(reasonOf(fromWebviewMessages.validate({ method: 'panel/runShell', params: { cmd: 'rm -rf /' } })), /unknown message type/);
    assert.match(reasonOf(fromWebviewMessages.validate({ method: 'panel/state', params: state })), /unknown message type/);
  });

  it('rejects non-objects and missing methods', () => {
    for (const raw of [null, undefined, 42, 'panel/ready', [], ['panel/ready'], { params: {} }, { method: 7 }]) {
      assert.equal(fromWebviewMessages.validate(raw).ok, false, JSON.stringify(raw));
    }
  });

  it('rejects wrong field types with a reason naming the field', () => {
    assert.match(reasonOf(fromWebviewMessages.validate({ method: 'panel/setThreshold', params: { threshold: '0.5', topK: 3 } })), /params\.threshold: expected finite number/);
    assert.match(reasonOf(fromWebviewMessages.validate({ method: 'panel/setThreshold', params: { threshold: 2, topK: 3 } })), /outside/);
    assert.match(reasonOf(fromWebviewMessages.validate({ method: 'panel/setThreshold', params: { threshold: NaN, topK: 3 } })), /threshold/);
    assert.match(reasonOf(fromWebviewMessages.validate({ method: 'panel/setThreshold', params: { threshold: 0.1, topK: 1.5 } })), /topK: expected integer/);
    assert.match(reasonOf(fromWebviewMessages.validate({ method: 'panel/ablate', params: { ids: 'a1.h0', ablated: true } })), /params\.ids: expected array/);
    assert.match(reasonOf(fromWebviewMessages.validate({ method: 'panel/ablate', params: { ids: ['a1.h0'] } })), /params\.ablated: expected boolean/);
  });

  it('rejects component ids that are not ids (injection attempts)', () => {
    for (const id of ['<script>', 'a1.h0; rm', '../../etc/passwd', 'a1.h0\n', '']) {
      assert.equal(fromWebviewMessages.validate({ method: 'panel/selectNode', params: { id } }).ok, false, id);
    }
  });

  it('rejects unknown fields, including prototype keys', () => {
    assert.match(reasonOf(fromWebviewMessages.validate({ method: 'panel/pin', params: { id: 'm0', pinned: true, extra: 1 } })), /extra: unknown field/);
    const poisoned = JSON.parse('{"method":"panel/pin","params":{"id":"m0","pinned":true,"__proto__":{"polluted":true}}}');
    assert.equal(fromWebviewMessages.validate(poisoned).ok, false);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    assert.equal(fromWebviewMessages.validate({ method: 'panel/ready', params: undefined, seq: 1 }).ok, false);
  });

  it('rejects class instances posing as plain objects', () => {
    class Fake {
      id = 'm0';
      pinned = true;
    }
    assert.equal(fromWebviewMessages.validate({ method: 'panel/pin', params: new Fake() }).ok, false);
  });

  it('rejects oversized payloads', () => {
    const ids = Array.from({ length: (1 << 15) + 1 }, () => 'm0');
    assert.match(reasonOf(fromWebviewMessages.validate({ method: 'panel/ablate', params: { ids, ablated: true } })), /array longer than/);
    const big = 'data:image/png;base64,' + 'A'.repeat(17 << 20);
    assert.match(reasonOf(fromWebviewMessages.validate({ method: 'panel/export', params: { format: 'png', dataUrl: big } })), /longer than/);
    assert.match(reasonOf(fromWebviewMessages.validate({ method: 'panel/export', params: { format: 'png', dataUrl: 'javascript:alert(1)' } })), /does not match/);
  });

  it('bounds the total size, not just each field', () => {
    const schema = s.array(s.string({ max: 1000 }), { max: 1000 });
    assert.throws(() => parseWith(schema, Array.from({ length: 1000 }, () => 'x'.repeat(1000)), 100_000), ProtocolError);
    assert.doesNotThrow(() => parseWith(schema, ['x'.repeat(1000)], 100_000));
  });
});

describe('host → webview messages', () => {
  it('accepts a full state (the CLI circuit graph, runs) and keeps model-derived strings as data', () => {
    const r = toWebviewMessages.validate(ToWebview.state.create(state));
    assert.ok(r.ok);
    if (r.ok && ToWebview.state.is(r.message)) {
      assert.equal(r.message.params.circuit?.task.name, '<img src=x onerror=alert(1)>');
      assert.equal(r.message.params.title, '<b>IOI</b>');
      assert.deepEqual(r.message.params.runs[0], pruneRun);
    }
  });

  it('rejects a state with a hostile node or a circuit the CLI would not read', () => {
    const bad = structuredClone(state) as unknown as { circuit: { nodes: Record<string, unknown>[] } };
    bad.circuit.nodes[1]!['kind'] = 'script';
    assert.match(reasonOf(toWebviewMessages.validate({ method: 'panel/state', params: bad })), /nodes\[1\]/);
    const bad2 = structuredClone(state) as unknown as { circuit: Record<string, unknown> };
    bad2.circuit['version'] = 2;
    assert.match(reasonOf(toWebviewMessages.validate({ method: 'panel/state', params: bad2 })), /version/);
    const bad3 = structuredClone(state) as unknown as { runs: Record<string, unknown>[] };
    bad3.runs[0]!['kind'] = 'circuit';
    assert.equal(toWebviewMessages.validate({ method: 'panel/state', params: bad3 }).ok, false);
  });

  it('carries a verification, and rejects one with an unknown metric', () => {
    const v: VerificationSummary = { metric: 'logit_diff', ablation: 'mean', full: 3, empty: 0, circuit: 2.7, complement: 0.3, faithfulness: 0.9, completeness: 0.9, cpr: 0.8, cmd: 0.1, curve: [{ fraction: 0.5, size: 2, score: 2, faithfulness: 0.7 }] };
    assert.ok(toWebviewMessages.validate(ToWebview.verification.create(v)).ok);
    assert.equal(toWebviewMessages.validate({ method: 'panel/verification', params: { ...v, metric: 'vibes' } }).ok, false);
  });

  it('rejects commands meant for the other direction', () => {
    assert.equal(toWebviewMessages.validate(FromWebview.verify.create({ ablate: [] })).ok, false);
  });
});

describe('webview → host: runs', () => {
  it('accepts the runs to overlay and rejects anything else', () => {
    assert.ok(fromWebviewMessages.validate(FromWebview.showRuns.create({ ids: ['prune-1'] })).ok);
    assert.equal(fromWebviewMessages.validate({ method: 'panel/showRuns', params: { ids: 'prune-1' } }).ok, false);
    assert.equal(fromWebviewMessages.validate({ method: 'panel/showRuns', params: { ids: ['x'.repeat(200)] } }).ok, false);
  });
});

describe('host ↔ engine worker', () => {
  it('validates requests and their params', () => {
    const ok = validateWorkerRequest({ type: 'request', id: 1, method: Engine.attributePrompt.method, params: { text: 'Hello', mode: 'attnlrp', target: 'top1' } });
    assert.ok(ok.ok && ok.kind === 'request');
    const cancel = validateWorkerRequest({ type: 'cancel', id: 1 });
    assert.ok(cancel.ok && cancel.kind === 'cancel');
  });

  it('rejects unknown methods, bad params and bad envelopes, keeping the id to answer', () => {
    const unknown = validateWorkerRequest({ type: 'request', id: 7, method: 'engine/eval', params: { code: 'process.exit()' } });
    assert.ok(!unknown.ok);
    if (!unknown.ok) {
      assert.equal(unknown.id, 7);
      assert.match(unknown.reason, /unknown message type/);
    }
    const badMode = validateWorkerRequest({ type: 'request', id: 8, method: 'engine/attributePrompt', params: { text: 'x', mode: 'magic', target: 'top1' } });
    assert.ok(!badMode.ok && /params\.mode/.test(badMode.reason));
    const badIds = validateWorkerRequest({ type: 'request', id: 9, method: 'engine/forward', params: { ids: [[1, -2]] } });
    assert.ok(!badIds.ok && /ids\[0\]\[1\]/.test(badIds.reason));
    assert.equal(validateWorkerRequest({ type: 'shutdown', id: 1 }).ok, false);
    assert.equal(validateWorkerRequest({ type: 'request', id: -1, method: 'engine/info' }).ok, false);
    assert.equal(validateWorkerRequest({ type: 'request', id: 1.5, method: 'engine/info' }).ok, false);
  });

  it('accepts typed arrays where the engine API has them', () => {
    const ok = validateWorkerRequest({
      type: 'request',
      id: 3,
      method: 'engine/forward',
      params: { ids: [[1, 2]], interventions: { ablate: ['a0.h1'], headReplacement: [[new Float32Array(4)]] } },
    });
    assert.ok(ok.ok);
    const bad = validateWorkerRequest({ type: 'request', id: 3, method: 'engine/forward', params: { ids: [[1, 2]], interventions: { ablate: ['a0.h1'], headReplacement: [[[1, 2]]] } } });
    assert.ok(!bad.ok);
  });

  it('validates worker → host envelopes', () => {
    assert.ok(validateWorkerMessage({ type: 'progress', id: 1, progress: { fraction: 0.5 } }).ok);
    assert.ok(validateWorkerMessage({ type: 'error', id: 1, error: { code: 'cancelled', message: 'Cancelled' } }).ok);
    assert.equal(validateWorkerMessage({ type: 'progress', id: 1, progress: { fraction: 5 } }).ok, false);
    assert.equal(validateWorkerMessage({ type: 'error', id: 1, error: { code: 'segfault', message: '' } }).ok, false);
    assert.equal(validateWorkerMessage({ type: 'eval', code: '1' }).ok, false);
  });

  it('checks results against the request result schema', () => {
    const result = { info: { folder: '/m' }, hasTokenizer: true };
    assert.throws(() => parseWith(Engine.load.result, result, 1 << 20), /info\.architecture/);
  });
});
