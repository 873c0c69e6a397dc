import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Engine,
  FromWebview,
  fromWebviewMessages,
  parseWith,
  ProtocolError,
  s,
  ToWebview,
  toWebviewMessages,
  validateWorkerMessage,
  validateWorkerRequest,
  type PanelState,
} from '../../src/protocol';

const reasonOf = (r: { ok: boolean; reason?: string }) => {
  assert.equal(r.ok, false, 'expected the message to be rejected');
  return r.reason ?? '';
};

const state: PanelState = {
  circuit: {
    id: 'c1',
    title: 'IOI',
    task: 'ioi',
    model: 'tiny',
    mode: 'attnlrp',
    layers: 2,
    heads: 2,
    nodes: [
      { id: 'input', kind: 'input', layer: -1, relevance: 1 },
      { id: 'a1.h0', kind: 'head', layer: 1, head: 0, relevance: 0.5, label: '<img src=x onerror=alert(1)>' },
      { id: 'logits', kind: 'logits', layer: 2, relevance: 1 },
    ],
    edges: [{ source: 'input', target: 'a1.h0', weight: 0.4 }],
    metrics: { metric: 'logit diff', full: 3, circuit: 2.7, faithfulness: 0.9 },
  },
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
  it('accepts a full state and keeps model-derived strings as data', () => {
    const r = toWebviewMessages.validate(ToWebview.state.create(state));
    assert.ok(r.ok);
    if (r.ok && ToWebview.state.is(r.message)) assert.equal(r.message.params.circuit?.nodes[1]?.label, '<img src=x onerror=alert(1)>');
  });

  it('rejects a state with a hostile node', () => {
    const bad = structuredClone(state) as unknown as { circuit: { nodes: Record<string, unknown>[] } };
    bad.circuit.nodes[1]!['kind'] = 'script';
    assert.match(reasonOf(toWebviewMessages.validate({ method: 'panel/state', params: bad })), /nodes\[1\]\.kind/);
    const bad2 = structuredClone(state) as unknown as { circuit: { nodes: Record<string, unknown>[] } };
    bad2.circuit.nodes[1]!['onclick'] = 'alert(1)';
    assert.match(reasonOf(toWebviewMessages.validate({ method: 'panel/state', params: bad2 })), /onclick: unknown field/);
  });

  it('rejects commands meant for the other direction', () => {
    assert.equal(toWebviewMessages.validate(FromWebview.verify.create({ ablate: [] })).ok, false);
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
    const result = { info: { folder: '/m' }, hasTokenizer: true, circuits: false };
    assert.throws(() => parseWith(Engine.load.result, result, 1 << 20), /info\.architecture/);
  });
});
