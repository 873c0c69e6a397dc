/**
 * EngineClient ↔ worker, end to end: the real worker bundle (src/worker/worker.ts) running the
 * real engine on the embedded model in a worker_threads worker. Covers results, error codes,
 * cancellation (cooperative and by termination), and a worker killed mid-job.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { EngineClient, EngineError } from '../../src/worker/client';
import { Engine } from '../../src/engine/engine';
import { EMBEDDED_MODEL, tempDir, buildTestWorker, testWorkerPath } from '../helpers';

// Bundled inside the repository so `require('onnxruntime-node')` resolves from node_modules.
const workerPath = testWorkerPath('test-worker');
const PROMPT = 'When Mary and John went to the store, John gave a drink to';

before(() => buildTestWorker('test-worker'));
after(() => fs.rmSync(workerPath, { force: true }));

function client(extra: Partial<ConstructorParameters<typeof EngineClient>[0]> = {}) {
  const logs: string[] = [];
  const c = new EngineClient({ workerPath, testHooks: true, cancelGraceMs: 300, log: (l, m) => logs.push(`${l}: ${m}`), ...extra });
  return { c, logs };
}

describe('EngineClient with the real engine in a worker', () => {
  it('loads the embedded model and attributes a prompt with the same numbers as the engine in-process', async () => {
    const { c } = client();
    const engine = await Engine.load(EMBEDDED_MODEL);
    try {
      const loaded = await c.load({ folder: EMBEDDED_MODEL });
      assert.equal(loaded.info.layers, 4);
      assert.equal(loaded.hasTokenizer, true);
      const progress: string[] = [];
      const r = await c.attributePrompt({ text: PROMPT, mode: 'attnlrp', target: 'top1' }, { onProgress: (p) => progress.push(p.message ?? '') });
      assert.equal(r.target.text, ' Mary');
      const { ids } = engine.encode(PROMPT);
      const [direct] = await engine.attribute({ ids: [ids], targets: [{ kind: 'logit', position: ids.length - 1, token: engine.tokenizer!.singleTokenId(' Mary') }], mode: 'attnlrp' });
      assert.equal(r.tokens.length, ids.length);
      r.tokens.forEach((t, i) => assert.ok(Math.abs(t.relevance - direct!.tokenRelevance[i]!) < 1e-5, `token ${i}`));
      // Offsets point into the prompt and cover each token's text.
      r.tokens.forEach((t) => assert.equal(PROMPT.slice(t.start, t.end), t.text));
      assert.equal(r.topNext[0]!.text, ' Mary');
      assert.ok(progress.length > 0);
      const diff = await c.attributePrompt({ text: PROMPT, mode: 'cp-lrp', target: 'logit-diff', token: ' Mary', foil: ' John' });
      assert.equal(diff.target.kind, 'logit_diff');
      assert.equal(diff.target.foilText, ' John');
    } finally {
      await c.dispose();
      await engine.dispose();
    }
  });

  it('reports input errors with their code', async () => {
    const { c } = client();
    const missing = tempDir('no-model');
    try {
      await assert.rejects(c.attributePrompt({ text: 'abc', mode: 'attnlrp', target: 'top1' }), (e: EngineError) => e.code === 'no-model');
      await assert.rejects(c.load({ folder: missing }), (e: EngineError) => e.code === 'input' && /config\.json/.test(e.message));
      await c.load({ folder: EMBEDDED_MODEL });
      await assert.rejects(c.attributePrompt({ text: PROMPT, mode: 'attnlrp', target: 'token', token: ' Maryland and' }), (e: EngineError) => e.code === 'input' && /not a single token/.test(e.message));
      // The heatmap and the prompt graph refuse a target choice without its tokens alike (the graph once explained the top-1 token instead).
      for (const request of [c.attributePrompt.bind(c), c.promptGraph.bind(c)]) {
        await assert.rejects(request({ text: PROMPT, mode: 'attnlrp', target: 'token' }), (e: EngineError) => e.code === 'input' && /No target token/.test(e.message));
        await assert.rejects(request({ text: PROMPT, mode: 'attnlrp', target: 'logit-diff', token: ' Mary' }), (e: EngineError) => e.code === 'input' && /foil/.test(e.message));
      }
    } finally {
      await c.dispose();
    }
  });

  it('rejects bad params locally without a round trip', async () => {
    const { c } = client();
    try {
      await assert.rejects(c.attributePrompt({ text: '', mode: 'attnlrp', target: 'top1' }), (e: EngineError) => e.code === 'protocol');
      assert.equal(c.alive, false);
    } finally {
      await c.dispose();
    }
  });

  it('cancels a cooperative job without killing the worker', async () => {
    const { c } = client();
    try {
      await c.load({ folder: EMBEDDED_MODEL });
      const job = c.sleep({ ms: 5000, cooperative: true });
      setTimeout(() => c.cancel(job.id), 100);
      const t0 = Date.now();
      await assert.rejects(job, (e: EngineError) => e.code === 'cancelled');
      assert.ok(Date.now() - t0 < 1000);
      assert.equal(c.alive, true);
      const r = await c.attributePrompt({ text: PROMPT, mode: 'attnlrp', target: 'top1' });
      assert.equal(r.target.text, ' Mary');
    } finally {
      await c.dispose();
    }
  });

  it('terminates a stuck job after the grace period; the next job respawns and reloads the model', async () => {
    const { c, logs } = client();
    try {
      await c.load({ folder: EMBEDDED_MODEL });
      const controller = new AbortController();
      const job = c.sleep({ ms: 20000, cooperative: false }, { signal: controller.signal });
      setTimeout(() => controller.abort(), 100);
      const t0 = Date.now();
      // The host event loop must stay free while the worker spins.
      let ticks = 0;
      const timer = setInterval(() => ticks++, 20);
      await assert.rejects(job, (e: EngineError) => e.code === 'cancelled');
      clearInterval(timer);
      const elapsed = Date.now() - t0;
      assert.ok(elapsed < 2000, `took ${elapsed} ms`);
      assert.ok(ticks > 5, `host ticked ${ticks} times`);
      assert.equal(c.alive, false);
      assert.ok(logs.some((l) => /terminating the engine worker/.test(l)));
      const r = await c.attributePrompt({ text: PROMPT, mode: 'attnlrp', target: 'top1' });
      assert.equal(r.target.text, ' Mary');
    } finally {
      await c.dispose();
    }
  });

  it('a worker killed mid-job is reported as a death, and the next attribution succeeds', async () => {
    const { c } = client();
    const deaths: EngineError[] = [];
    c.onDidDie((e) => deaths.push(e));
    try {
      await c.load({ folder: EMBEDDED_MODEL });
      const job = c.sleep({ ms: 20000, cooperative: false });
      // Kill the thread from outside, as an out-of-memory or native crash would.
      setTimeout(() => void (c as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate(), 100);
      await assert.rejects(job, (e: EngineError) => e.code === 'worker-died');
      assert.equal(deaths.length, 1);
      const r = await c.attributePrompt({ text: PROMPT, mode: 'attnlrp', target: 'top1' });
      assert.equal(r.target.text, ' Mary');
    } finally {
      await c.dispose();
    }
  });

  it('cancels everything at once', async () => {
    const { c } = client();
    try {
      await c.load({ folder: EMBEDDED_MODEL });
      const a = c.sleep({ ms: 3000, cooperative: true });
      const b = c.sleep({ ms: 3000, cooperative: true });
      setTimeout(() => c.cancel(), 50);
      await assert.rejects(a, /Cancelled/);
      await assert.rejects(b, /Cancelled/);
    } finally {
      await c.dispose();
    }
  });
});
