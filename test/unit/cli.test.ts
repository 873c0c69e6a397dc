/** The `circuit-lens` command as users run it (bin → dist/cli.js, built by `npm test`). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, SHARED, missingShared, readJson, relativeError, sharedModel, tempDir } from '../helpers';

const BIN = path.join(REPO, 'bin', 'circuit-lens.js');

function cli(...args: string[]): { code: number | null; json: any; stderr: string } {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  let json: unknown = null;
  if (result.status === 0 && args.includes('--json')) json = JSON.parse(result.stdout);
  return { code: result.status, json, stderr: result.stderr };
}

describe('circuit-lens CLI', { skip: !fs.existsSync(path.join(REPO, 'dist', 'cli.js')) && 'dist/cli.js is not built (run npm run build)' }, () => {
  it('info on the embedded model', () => {
    const { code, json } = cli('info', '--json');
    assert.equal(code, 0);
    assert.deepEqual(
      { a: json.architecture, l: json.layers, h: json.heads, d: json.d_model, m: json.d_mlp, v: json.vocab, p: json.parameters },
      { a: 'gpt2', l: 4, h: 4, d: 128, m: 512, v: 2088, p: 1_076_992 },
    );
  });

  it('logits --all equals the reference logits of the embedded model', () => {
    const reference = readJson(path.join(REPO, 'models', 'tiny-ioi-gpt2', 'reference.json'));
    const prompt = reference.prompts[0];
    const { code, json } = cli('logits', '--prompt', prompt.prompt, '--top', '10', '--all', '--json');
    assert.equal(code, 0);
    assert.deepEqual(json.ids, prompt.input_ids);
    assert.deepEqual(json.top.map((t: any) => t.id), prompt.top10_ids);
    json.top.forEach((t: any, i: number) => assert.ok(Math.abs(t.logit - prompt.top10_logits[i]) < 1e-4));
    assert.equal(json.logits_last.length, 2088);
  });

  it('attribute prints the reference fields under the reference names', { skip: missingShared('reference/tiny-ioi-gpt2/lrp_reference.json') }, () => {
    const reference = readJson(path.join(SHARED, 'reference', 'tiny-ioi-gpt2', 'lrp_reference.json'));
    const p = reference.prompts[0];
    const e = p.explanations[1];
    const { code, json } = cli('attribute', '--prompt', p.text, '--target-id', String(e.target.token), '--foil-id', String(e.target.minus), '--mode', 'cp-lrp', '--json');
    assert.equal(code, 0);
    for (const field of ['token_relevance', 'position_relevance', 'head_relevance', 'resid_pre', 'resid_mid'] as const) {
      assert.ok(relativeError([json[field]].flat(2), [e['cp-lrp'][field]].flat(2)) < 1e-4, field);
    }
    assert.ok(Math.abs(json.target_value - e.target_value) < 1e-4);
  });

  it('--weight-precision half keeps the matrices half and stays within the documented tolerance; a bad value is refused', () => {
    const args = ['attribute', '--ids', '770,11,1038,468,1012,565,1030,1034', '--target-id', '12', '--json', '--cache-dir', 'off'];
    const full = cli(...args);
    const half = cli(...args, '--weight-precision', 'half');
    assert.equal(half.code, 0, half.stderr);
    const err = relativeError(half.json.token_relevance, full.json.token_relevance);
    assert.ok(err > 0 && err <= 1e-2, `token relevance ${err}`);
    const info = cli('info', '--json', '--weight-precision', 'half');
    assert.equal(info.json.dtype, 'F32 (matrices kept half)');
    const bad = cli(...args, '--weight-precision', 'fp8');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /weight-precision.*auto, float32, half/);
  });

  it('generate reproduces stories260k greedy continuation token for token', { skip: missingShared('models/stories260k/reference.json') }, () => {
    const reference = readJson(path.join(sharedModel('stories260k'), 'reference.json'));
    const { code, json } = cli('generate', '--model', sharedModel('stories260k'), '--prompt', reference.greedy.prompt, '--max-new-tokens', String(reference.greedy.new_ids.length), '--json');
    assert.equal(code, 0);
    assert.deepEqual(json.new_ids, reference.greedy.new_ids);
  });

  it('discover → verify → export on IOI: the circuit file round-trips and exports validate', () => {
    const dir = tempDir('cli-circuit');
    const circuitFile = path.join(dir, 'ioi.json');
    const task = path.join(REPO, 'models', 'tiny-ioi-gpt2', 'ioi.jsonl');
    const found = cli('discover', '--task', task, '--n', '60', '--top', '4', '--out', circuitFile, '--json');
    assert.equal(found.code, 0, found.stderr);
    assert.equal(found.json.circuit_size, 4);
    assert.ok(found.json.metrics.faithfulness >= 0.9, `faithfulness ${found.json.metrics.faithfulness}`);
    const verified = cli('verify', '--circuit', circuitFile, '--task', task, '--n', '60', '--json');
    assert.equal(verified.code, 0, verified.stderr);
    assert.ok(Math.abs(verified.json.faithfulness - found.json.metrics.faithfulness) < 1e-9);
    for (const format of ['eap-ig', 'neuronpedia']) {
      const out = path.join(dir, `${format}.json`);
      const exported = cli('export', '--circuit', circuitFile, '--format', format, '--prompt', 'When Mary and John went to the store, John gave a drink to', '--out', out, '--json');
      assert.equal(exported.code, 0, exported.stderr);
      assert.ok(fs.statSync(out).size > 100);
    }
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temp files left');
  });

  it('bad input exits 2 with a one-line error and no stack', () => {
    const badTask = path.join(tempDir('bad-task'), 'broken.jsonl');
    fs.writeFileSync(badTask, '{"prompt": "x"\n');
    for (const args of [
      ['attribute', '--prompt', 'When Mary and John went', '--target', ' Maryland and'],
      ['attribute', '--prompt', 'When Mary', '--position', '7'],
      ['attribute', '--prompt', 'When Mary', '--target', ' John', '--foil', ' John'],
      ['attribute', '--prompt', 'When Mary', '--mode', 'shap'],
      ['logits', '--model', '/nonexistent', '--prompt', 'x'],
      ['logits', '--prompt', ''],
      ['logits', '--bogus'],
      ['discover', '--task', '/nonexistent.jsonl'],
      ['discover', '--task', badTask],
      ['discover', '--task', 'ioi', '--method', 'shap'],
      ['verify', '--circuit', '/nonexistent.json', '--task', 'ioi'],
    ]) {
      const { code, stderr } = cli(...args);
      assert.equal(code, 2, `${args.join(' ')}: ${stderr}`);
      assert.match(stderr, /^circuit-lens \w+: error: .+\n$/, args.join(' '));
    }
  });
});
