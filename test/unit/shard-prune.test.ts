/** prune --shard k/n and merge (src/circuits/pruning/shard.ts): merged scores prune exactly as the unsharded ones. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Engine } from '../../src/engine/engine';
import { exactInteger } from '../../src/circuits/discovery/shard';
import { decodePartialWeights, encodeWeightScores, mergePartialWeights, PairSums } from '../../src/circuits/pruning/shard';
import { prune, pruneShard } from '../../src/pipelines/pruning';
import { captureCli, EMBEDDED_MODEL, tempDir } from '../helpers';

describe('exact pair sums', () => {
  it('hi + lo + extras is the exact sum, whatever the magnitudes', () => {
    const values = [1e300, 0.1, -1e300, 2 ** -1074, 3.5e-20, 1, -0.30000000000000004, 1e-300, 7e15, 0.1];
    const sums = new PairSums(1);
    for (const v of values) sums.add([v], 0, false);
    assert.equal(sums.exact(0), values.reduce((s, v) => s + exactInteger(v), 0n));
    assert.ok(sums.extras.size > 0, 'this sequence needs the BigInt side table');
    const abs = new PairSums(1);
    for (const v of values) abs.add([v], 0, true);
    assert.equal(abs.exact(0), values.reduce((s, v) => s + exactInteger(Math.abs(v)), 0n));
  });
});

describe('sharded pruning on the real engine', () => {
  // 7 windows × 15 positions = 105 reference samples = 7 batches of 16: shards get 3, 2, 2 batches.
  const options = { method: 'attnlrp', aggregation: 'mean-abs', samples: 'position', windows: 7, windowLength: 16 } as const;

  it('3 uneven shards merged prune exactly like one shard and like the unsharded run', async () => {
    const engine = await Engine.load(EMBEDDED_MODEL);
    try {
      const parts: ReturnType<typeof decodePartialWeights>[] = [];
      for (let k = 0; k < 3; k++) parts.push(decodePartialWeights((await pruneShard(engine, { ...options, shard: { index: k, count: 3 } })).data));
      assert.deepEqual(parts.map((p) => p.header.count), [41, 32, 32], 'whole batches of 16, strided');
      const whole = decodePartialWeights((await pruneShard(engine, { ...options, shard: { index: 0, count: 1 } })).data);
      // The exact sums themselves (not only their float32 means) add up to the whole run's.
      const extra = (h: string | undefined) => (h === undefined ? 0n : h.startsWith('-') ? -BigInt(`0x${h.slice(1)}`) : BigInt(`0x${h}`));
      const exact = (p: (typeof parts)[number], k: number) => exactInteger(p.hi[k]!) + exactInteger(p.lo[k]!) + extra(p.header.extras[String(k)]);
      let differing = 0;
      for (let k = 0; k < whole.hi.length; k++) if (parts.reduce((s, p) => s + exact(p, k), 0n) !== exact(whole, k)) differing++;
      assert.equal(differing, 0, 'per-weight exact sums of the shards equal the whole run’s');
      const merged = encodeWeightScores(mergePartialWeights([parts[1]!, parts[2]!, parts[0]!]));
      assert.ok(merged.equals(encodeWeightScores(mergePartialWeights([whole]))), 'merged scores are bit-identical to one shard of everything');

      const fromShards = await prune(engine, { ...options, sparsity: 0.5, scores: merged });
      const unsharded = await prune(engine, { ...options, sparsity: 0.5 });
      assert.equal(fromShards.perplexityAfter, unsharded.perplexityAfter, 'perplexity of the pruned model');
      assert.equal(fromShards.report.prunedWeights, unsharded.report.prunedWeights);
      for (const [name, w] of unsharded.weights) assert.ok(Buffer.from(w.buffer).equals(Buffer.from(fromShards.weights.get(name)!.buffer)), `pruned ${name}`);
      assert.deepEqual(fromShards.settings, unsharded.settings);

      assert.throws(() => mergePartialWeights([parts[0]!, parts[1]!]), /shard 3\/3 missing/);
      assert.throws(() => mergePartialWeights([parts[0]!, parts[0]!, parts[1]!, parts[2]!]), /given twice/);
      const other = decodePartialWeights((await pruneShard(engine, { ...options, windows: 6, shard: { index: 2, count: 3 } })).data);
      assert.throws(() => mergePartialWeights([parts[0]!, parts[1]!, other]), /different runs/);
      await assert.rejects(prune(engine, { ...options, aggregation: 'signed-mean', sparsity: 0.5, scores: merged }), /other settings/);
      await assert.rejects(prune(engine, { ...options, method: 'magnitude', sparsity: 0.5, scores: merged }), /scores weights itself/);
    } finally {
      await engine.dispose();
    }
  });

  it('the CLI: prune --shard, merge, prune --from-scores; bad input exits 2 and writes nothing', async () => {
    const dir = tempDir('shard-prune-');
    const flags = ['--model', EMBEDDED_MODEL, '--samples', 'position', '--windows', '7', '--window-length', '16', '--cache-dir', 'off'];
    const file = (name: string) => path.join(dir, name);
    try {
      const { result, printed } = await captureCli(async (main) => {
        const codes: number[] = [];
        for (const k of [1, 2, 3]) codes.push(await main(['prune', ...flags, '--shard', `${k}/3`, '--partial', file(`p${k}.bin`), '--json']));
        codes.push(await main(['merge', file('p3.bin'), file('p1.bin'), file('p2.bin'), '--out', file('merged.bin'), '--json']));
        codes.push(await main(['prune', ...flags, '--sparsity', '0.5', '--from-scores', file('merged.bin'), '--json']));
        codes.push(await main(['prune', ...flags, '--sparsity', '0.5', '--json']));
        codes.push(await main(['merge', file('p1.bin'), file('p2.bin'), '--out', file('bad.bin')]));
        codes.push(await main(['prune', ...flags.slice(0, -4), '--windows', '6', '--sparsity', '0.5', '--from-scores', file('merged.bin')]));
        codes.push(await main(['prune', ...flags, '--method', 'magnitude', '--shard', '1/2', '--partial', file('m.bin')]));
        // Flags a shard would ignore are refused before any work (--scope applies at --from-scores; --text and --calib exclude each other).
        codes.push(await main(['prune', ...flags, '--scope', 'global', '--shard', '1/2', '--partial', file('m.bin')]));
        codes.push(await main(['prune', ...flags, '--text', 'a.txt', '--calib', 'b.txt', '--shard', '1/2', '--partial', file('m.bin')]));
        const p1 = fs.readFileSync(file('p1.bin'));
        fs.writeFileSync(file('cut.bin'), p1.subarray(0, p1.length - 8));
        codes.push(await main(['merge', file('cut.bin'), file('p2.bin'), file('p3.bin'), '--out', file('bad.bin')]));
        fs.writeFileSync(file('discover.json'), JSON.stringify({ format: 'circuit-lens-partial-relevance' }));
        codes.push(await main(['merge', file('discover.json'), file('p2.bin'), '--out', file('bad.bin')]));
        fs.rmSync(file('cut.bin'));
        fs.rmSync(file('discover.json'));
        return codes;
      });
      assert.deepEqual(result, [0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2], printed.join(''));
      const jsons = printed.filter((s) => s.trimStart().startsWith('{')).map((s) => JSON.parse(s));
      const [fromShards, unsharded] = jsons.filter((j) => 'perplexity' in j);
      assert.equal(fromShards.perplexity, unsharded.perplexity);
      assert.ok(Number.isFinite(fromShards.perplexity));
      assert.match(printed.join(''), /shard 3\/3 missing/);
      assert.match(printed.join(''), /truncated prune --shard output/);
      assert.match(printed.join(''), /parts of different kinds/);
      assert.match(printed.join(''), /other settings or another calibration text/);
      assert.match(printed.join(''), /not an attribution method/);
      assert.match(printed.join(''), /--scope does not apply to a shard/);
      assert.match(printed.join(''), /give --text .* or --calib \[--eval\], not both/);
      assert.ok(!fs.existsSync(file('bad.bin')) && !fs.existsSync(file('m.bin')), 'no partial files on failure');
      assert.deepEqual(fs.readdirSync(dir).sort(), ['merged.bin', 'p1.bin', 'p2.bin', 'p3.bin']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
