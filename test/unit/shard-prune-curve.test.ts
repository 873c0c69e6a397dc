/** prune-curve --shard k/n and merge (src/pipelines/pruneCurve.ts): the merged JSON is the unsharded run's. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { captureCli, EMBEDDED_MODEL, tempDir } from '../helpers';

describe('sharded prune-curve on the real engine', () => {
  it('3 uneven shards (seeds {0,3}, {1}, {2}) merge into exactly the unsharded JSON; bad input exits 2', async () => {
    const dir = tempDir('shard-curve-');
    const file = (name: string) => path.join(dir, name);
    const flags = ['--model', EMBEDDED_MODEL, '--eval', path.join(EMBEDDED_MODEL, 'ioi.jsonl'), '--seeds', '4', '--reference', '4', '--methods', 'attnlrp,random', '--rates', '0,0.5,0.9', '--cache-dir', 'off', '--json'];
    try {
      const cli = async (argv: string[]) => {
        const { result: code, printed } = await captureCli((main) => main(argv));
        return { code, text: printed.join('') };
      };
      const result = [await cli(['prune-curve', ...flags])];
      for (const k of [1, 2, 3]) result.push(await cli(['prune-curve', ...flags, '--shard', `${k}/3`, '--out', file(`c${k}.json`)]));
      result.push(await cli(['merge', file('c2.json'), file('c3.json'), file('c1.json'), '--out', file('curves.json'), '--json']));
      result.push(await cli(['merge', file('c1.json'), file('c2.json'), '--json']));
      result.push(await cli(['prune-curve', ...flags, '--shard', '5/5', '--out', file('none.json')]));
      result.push(await cli(['prune-curve', ...flags, '--keep', '0.5', '--shard', '3/3', '--out', file('other.json')]));
      result.push(await cli(['merge', file('c1.json'), file('c2.json'), file('other.json'), '--json']));
      const printedSince = (i: number) => result[i]!.text;
      assert.deepEqual(result.map((r) => r.code), [0, 0, 0, 0, 0, 2, 2, 0, 2], result.map((r) => r.text).join('\n'));
      // stderr's progress lines come first; the JSON result is the last write.
      const jsonOf = (i: number) => JSON.parse(printedSince(i).slice(printedSince(i).search(/^\{/m)));
      const unsharded = jsonOf(0);
      const merged = jsonOf(4);
      assert.deepEqual(merged, unsharded, 'merged JSON equals the unsharded run');
      assert.deepEqual(JSON.parse(fs.readFileSync(file('curves.json'), 'utf8')), unsharded);
      assert.equal(unsharded.series.length, 4);
      assert.equal(unsharded.series[0].accuracy.length, 4, 'four seeds');
      assert.deepEqual(JSON.parse(fs.readFileSync(file('c1.json'), 'utf8')).seedIndex, [0, 3]);
      assert.match(printedSince(5), /shard 3\/3 missing/);
      assert.match(printedSince(6), /at most 4 shards/);
      assert.match(printedSince(8), /different runs/);
      assert.ok(!fs.existsSync(file('none.json')));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
