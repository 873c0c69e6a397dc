/** discover --shard k/n and merge (src/circuits/shard.ts): merged == unsharded, exactly. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Engine } from '../../src/engine/engine';
import { aggregateAttributions } from '../../src/circuits/discovery/aggregate';
import { AGGREGATIONS } from '../../src/vocabulary';
import { scoreSamples } from '../../src/circuits/discovery/discover';
import type { ModelRunner } from '../../src/circuits/runner';
import { exactInteger, exactMean, mergePartials, parseShard, partialRelevance, relevanceFromPartial, shardTask } from '../../src/circuits/discovery/shard';
import { resolveTask } from '../../src/pipelines/inputs';
import { EMBEDDED_MODEL, REPO, relativeError } from '../helpers';

describe('exact sums', () => {
  it('a sum is the same in any order, and a one-term mean is the value itself', () => {
    const values = [1e-310, -3.5, 0.1, 1e300, -1e300, 2 ** -1074, 7.25e-5, -0.30000000000000004, 123456.789];
    for (const v of values) assert.equal(exactMean(exactInteger(v), 1), v);
    const forward = values.reduce((s, v) => s + exactInteger(v), 0n);
    const backward = [...values].reverse().reduce((s, v) => s + exactInteger(v), 0n);
    assert.equal(forward, backward);
    // Floating-point addition is not associative; the exact sum is (1e300 − 1e300 cancels exactly).
    assert.notEqual(values.reduce((s, v) => s + v, 0), [...values].reverse().reduce((s, v) => s + v, 0));
    assert.equal(exactMean(exactInteger(0.1) + exactInteger(0.2), 2), 0.15000000000000002);
    assert.throws(() => exactInteger(NaN), /non-finite/);
  });

  it('parses k/n and refuses nonsense', () => {
    assert.deepEqual(parseShard('2/8'), { index: 1, count: 8 });
    for (const bad of ['0/2', '3/2', '1/0', 'a/b', '1-2']) assert.throws(() => parseShard(bad), /k\/n/);
  });
});

describe('sharded discovery on the real engine', () => {
  it('merged shards equal the unsharded run exactly, in every aggregation mode', async () => {
    const engine = await Engine.load(EMBEDDED_MODEL);
    try {
      const task = resolveTask(engine, 'ioi', { n: 11, seed: 0 });
      const { nLayers, nHeads, dModel, dMlp } = engine.spec;
      const run = { model: 'tiny', task: task.name, metric: task.metric, method: 'attnlrp', examples: task.examples.length, batchSize: 4, layers: nLayers, heads: nHeads, dModel, dMlp };
      const score = (t: typeof task) => scoreSamples(engine as ModelRunner, t, { method: 'attnlrp', batchSize: 4 });
      const all = await score(task);
      const whole = partialRelevance(all, run, { index: 0, count: 1 });
      const parts: ReturnType<typeof partialRelevance>[] = [];
      for (let k = 0; k < 3; k++) {
        const shard = { index: k, count: 3 };
        parts.push(partialRelevance(await score(shardTask(task, shard, 4)), run, shard));
      }
      assert.deepEqual(parts.map((p) => p.count), [4, 4, 3], 'whole batches of 4');
      const merged = mergePartials([parts[2]!, parts[0]!, parts[1]!]);
      assert.deepEqual(merged.heads, whole.heads, 'exact sums are equal');
      assert.deepEqual(merged.neurons, whole.neurons);
      for (const mode of AGGREGATIONS) {
        const a = relevanceFromPartial(merged, mode);
        const b = relevanceFromPartial(whole, mode);
        assert.deepEqual(a.heads, b.heads, mode);
        assert.deepEqual(a.mlps, b.mlps, mode);
        assert.deepEqual(a.neurons!.map((x) => Array.from(x)), b.neurons!.map((x) => Array.from(x)), mode);
        // The same quantity as the in-memory float64 aggregation (which may differ in the last bits).
        const reference = aggregateAttributions(all, mode);
        assert.ok(relativeError(a.heads.flat(), reference.heads.flat()) < 1e-12, mode);
        assert.ok(relativeError(a.mlps!, reference.mlps!) < 1e-12, mode);
      }
      assert.throws(() => mergePartials([parts[0]!, parts[1]!]), /shard 3\/3 missing/);
      assert.throws(() => mergePartials([parts[0]!, parts[0]!, parts[1]!, parts[2]!]), /given twice/);
      assert.throws(() => mergePartials([parts[0]!, parts[1]!, { ...parts[2]!, run: { ...run, task: 'other' } }]), /different runs/);
    } finally {
      await engine.dispose();
    }
  });

  it('the CLI: discover --shard 1/2 and 2/2, merged, give the heads of discover --shard 1/1', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shard-cli-'));
    const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO, 'src', 'cli', 'main.ts'), ...args], { encoding: 'utf8', cwd: REPO, timeout: 180_000 });
    const discover = (shard: string, out: string) => {
      const r = cli('discover', '--task', 'ioi', '--n', '9', '--granularity', 'heads', '--batch', '3', '--shard', shard, '--out', path.join(dir, out), '--cache-dir', 'off');
      assert.equal(r.status, 0, r.stderr);
    };
    try {
      discover('1/2', 'a.json');
      discover('2/2', 'b.json');
      discover('1/1', 'whole.json');
      discover('4/4', 'empty.json'); // 9 examples in 3 batches: the fourth shard has none
      const merge = (...files: string[]) => cli('merge', ...files.map((f) => path.join(dir, f)), '--json', '--aggregation', 'mean-abs');
      const sharded = merge('b.json', 'a.json');
      const whole = merge('whole.json');
      assert.equal(sharded.status, 0, sharded.stderr);
      assert.deepEqual(JSON.parse(sharded.stdout).heads, JSON.parse(whole.stdout).heads);
      assert.equal(JSON.parse(sharded.stdout).examples, 9);
      const missing = merge('a.json');
      assert.equal(missing.status, 2);
      assert.match(missing.stderr, /shard 2\/2 missing/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
