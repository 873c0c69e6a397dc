/**
 * `circuit-lens export` flags (src/cli/export-graph.ts): --qkv, --node-scores, --scan, --slug,
 * the graph-metadata.json index, and clear exit-2 errors. Runs on the embedded model; needs
 * nothing from ../shared.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { tempDir } from '../helpers';
import { cli, IOI_PROMPT } from './helpers';

describe('circuit-lens export flags', () => {
  const dir = tempDir('conformance-export-cli');
  const at = (name: string) => path.join(dir, name);
  const read = (name: string) => JSON.parse(fs.readFileSync(at(name), 'utf8'));
  before(() => cli(['discover', '--task', 'ioi', '--n', '4', '--edges', '--top', '20', '--no-verify', '--out', at('c.json')]));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('--qkv split (default) and copy; --node-scores', () => {
    cli(['export', '--circuit', at('c.json'), '--format', 'eap-ig', '--out', at('split.json')]);
    cli(['export', '--circuit', at('c.json'), '--format', 'eap-ig', '--qkv', 'copy', '--node-scores', '--out', at('copy.json')]);
    const split = read('split.json');
    const copy = read('copy.json');
    const head = Object.keys(split.edges).find((k) => k.endsWith('<q>') && split.edges[k].in_graph)!;
    assert.ok(head, 'the circuit has an edge into a head');
    assert.ok(Math.abs(copy.edges[head].score - 3 * split.edges[head].score) <= 1e-9 * Math.abs(copy.edges[head].score));
    assert.ok(Object.values(split.nodes).every((n: any) => n.score === undefined), 'no node scores by default');
    assert.ok(Object.entries(copy.nodes).some(([name, n]: [string, any]) => name !== 'logits' && typeof n.score === 'number'), '--node-scores writes them');
  });

  test('--scan and --slug reach the metadata; graph-metadata.json indexes the graphs by slug', () => {
    const first = cli(['export', '--circuit', at('c.json'), '--format', 'neuronpedia', '--prompt', IOI_PROMPT, '--scan', 'gpt2-small', '--slug', 'ioi-a', '--out', at('a.json')]);
    assert.deepEqual(first.json.warnings, []);
    const second = cli(['export', '--circuit', at('c.json'), '--format', 'neuronpedia', '--prompt', IOI_PROMPT, '--out', at('b.json')]);
    assert.match(second.json.warnings.join(' '), /pass --scan/);
    assert.equal(read('a.json').metadata.scan, 'gpt2-small');
    assert.equal(read('a.json').metadata.slug, 'ioi-a');
    assert.equal(read('b.json').metadata.scan, 'tiny-ioi-gpt2');
    cli(['export', '--circuit', at('c.json'), '--format', 'neuronpedia', '--prompt', IOI_PROMPT, '--scan', 'gpt2-small', '--slug', 'ioi-a', '--out', at('a.json')]);
    assert.deepEqual(read('graph-metadata.json').graphs.map((g: any) => g.slug), ['b', 'ioi-a']);
  });

  test('bad flags exit 2 with a clear error', () => {
    const bad = (args: string[], message: RegExp) => assert.throws(() => cli(['export', '--circuit', at('c.json'), ...args]), (err: Error) => /exited 2/.test(err.message) && message.test(err.message));
    bad(['--format', 'eap-ig', '--qkv', 'thirds', '--out', at('x.json')], /--qkv must be one of split, copy/);
    bad(['--format', 'eap-ig', '--scan', 'gpt2-small', '--out', at('x.json')], /--scan and --slug belong to --format neuronpedia/);
    bad(['--format', 'neuronpedia', '--prompt', IOI_PROMPT, '--qkv', 'copy', '--out', at('x.json')], /--qkv and --node-scores belong to --format eap-ig/);
    bad(['--format', 'neuronpedia', '--prompt', IOI_PROMPT, '--scan', 'gpt2 small', '--out', at('x.json')], /--scan must be a model id/);
    bad(['--format', 'neuronpedia', '--prompt', IOI_PROMPT, '--slug', 'a/b', '--out', at('x.json')], /--slug must be URL-safe/);
    bad(['--format', 'eap-ig', '--out', path.join(dir, 'missing', 'x.json')], /the output folder does not exist/);
  });
});
