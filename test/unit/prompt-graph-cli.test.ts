/**
 * The prompt-graph commands as users run them (`graph`, `export --format neuronpedia` of a prompt
 * graph, `lens`, `steer`), and the logit lens and steering against the plain forward pass.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Engine } from '../../src/engine/engine';
import { validateNeuronpediaJson } from '../../src/circuits/exporters/export';
import { logitLens, steerAndGenerate } from '../../src/circuits/prompt/promptViews';
import { EMBEDDED_MODEL, REPO, SHARED, missingShared, tempDir } from '../helpers';

const PROMPT = 'Then, Sean and Hugo were thinking about going to the farm. Sean wanted to give a cake to';
const CORRUPTED = 'Then, Mark and Leo were thinking about going to the farm. Robert wanted to give a cake to';

function cli(...args: string[]): { code: number | null; json: any; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO, 'src', 'cli', 'main.ts'), ...args], { encoding: 'utf8', timeout: 120_000, cwd: REPO });
  const json = result.status === 0 && args.includes('--json') ? JSON.parse(result.stdout) : null;
  return { code: result.status, json, stdout: result.stdout, stderr: result.stderr };
}

/**
 * circuit-tracer's own pydantic graph model (frontend/graph_models.py) and Neuronpedia's
 * graph-schema.json accept the file, when ../shared/peers and a python with pydantic and
 * jsonschema are there.
 */
function checkWithPeers(file: string): void {
  const missing = missingShared('peers/circuit-tracer');
  const probe = spawnSync('python3', ['-c', 'import pydantic, jsonschema'], { encoding: 'utf8' });
  if (missing || probe.status !== 0) {
    console.log(`# peer formatter check skipped: ${missing || 'python3 with pydantic and jsonschema is not installed'}`);
    return;
  }
  const script = [
    'import json, sys, importlib.util, jsonschema',
    'peers, graph = sys.argv[1], json.load(open(sys.argv[2]))',
    "spec = importlib.util.spec_from_file_location('gm', peers + '/circuit-tracer/circuit_tracer/frontend/graph_models.py')",
    'gm = importlib.util.module_from_spec(spec); spec.loader.exec_module(gm)',
    'gm.Model(**graph)',
    "jsonschema.validate(graph, json.load(open(peers + '/neuronpedia/apps/webapp/app/api/graph/graph-schema.json')))",
  ].join('\n');
  const run = spawnSync('python3', ['-c', script, path.join(SHARED, 'peers'), file], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
}

describe('prompt-graph CLI', () => {
  it('graph writes a position-resolved graph with verification, and export draws it as a Neuronpedia graph', () => {
    const dir = tempDir('prompt-graph');
    const out = path.join(dir, 'graph.json');
    const run = cli('graph', '--prompt', PROMPT, '--target', ' Hugo', '--foil', ' Sean', '--verify', 'resample', '--corrupted', CORRUPTED, '--out', out);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /a2\.h2@19->logits@19/);
    assert.match(run.stdout, /Pearson \d\.\d+/);
    // The QK edges into the name mover: its query side at 19 and keys at the second subject (13).
    assert.match(run.stdout, /QK edges into a2\.h2@19:\n( {2}.*\n)* {2}\S+@13 +QK key 0\.0[1-9]/);
    const graph = JSON.parse(fs.readFileSync(out, 'utf8'));
    assert.equal(graph.kind, 'prompt-graph');
    assert.equal(graph.prompt.ids.length, 20);
    assert.ok(graph.metrics.verification.pearson >= 0.7, `Pearson ${graph.metrics.verification.pearson}`);
    assert.ok(graph.nodes.every((n: any) => n.kind === 'error' ? n.position === null : Number.isInteger(n.position)));

    const npFile = path.join(dir, 'np.json');
    const exported = cli('export', '--circuit', out, '--format', 'neuronpedia', '--out', npFile);
    assert.equal(exported.code, 0, exported.stderr);
    const np = JSON.parse(fs.readFileSync(npFile, 'utf8'));
    assert.deepEqual(validateNeuronpediaJson(np), []);
    assert.deepEqual(np.metadata.transcoder_list, []); // required by circuit-tracer's Metadata model
    const head = np.nodes.find((n: any) => n.clerp.startsWith('a2.h2@19'));
    assert.equal(head.ctx_idx, 19);
    assert.equal(head.feature, ((2 + 2) * (2 + 2 + 1)) / 2 + 2); // Cantor pairing (layer 2, head 2)
    const logit = np.nodes.find((n: any) => n.feature_type === 'logit');
    assert.match(logit.clerp, /\(p=\d\.\d{3}\)$/);
    assert.equal(np.links.length, graph.edges.filter((e: any) => e.relevance !== 0).length);
    assert.equal(new Set(np.nodes.map((n: any) => n.node_id)).size, np.nodes.length);
    assert.equal(cli('export', '--circuit', out, '--format', 'eap-ig', '--out', npFile).code, 2);
    checkWithPeers(npFile);
  });

  it('bad input exits 2 with a clear message', () => {
    const resample = cli('graph', '--prompt', PROMPT, '--verify', 'resample');
    assert.equal(resample.code, 2);
    assert.match(resample.stderr, /--corrupted/);
    assert.equal(cli('graph', '--prompt', PROMPT, '--edge-threshold', '1.5').code, 2);
    assert.equal(cli('graph', '--prompt', PROMPT, '--qk-threshold', '0').code, 2);
    assert.equal(cli('steer', '--prompt', PROMPT, '--node', 'a9.h0').code, 2);
    assert.equal(cli('steer', '--prompt', PROMPT, '--node', 'a2.h2@40').code, 2);
    assert.equal(cli('lens', '--prompt', PROMPT, '--positions', '99').code, 2);
  });
});

describe('logit lens and steering', () => {
  let engine: Engine;
  before(async () => (engine = await Engine.load(EMBEDDED_MODEL)));
  after(() => engine.dispose());

  it('the lens after the last layer is the model\'s own next-token distribution', async () => {
    const { ids } = engine.encode(PROMPT);
    const lens = await logitLens(engine, ids, { top: 3 });
    assert.equal(lens.layers.length, engine.spec.nLayers + 1);
    const [row] = await engine.forward({ ids: [ids], allLogits: true });
    const V = engine.spec.vocabSize;
    for (const t of [4, 13, ids.length - 1]) {
      const logits = row!.logits!.subarray(t * V, (t + 1) * V);
      const best = lens.top[engine.spec.nLayers]![t]![0]!;
      assert.equal(best.id, logits.indexOf(Math.max(...logits)));
      assert.ok(Math.abs(best.logit - logits[best.id]!) < 1e-3, `position ${t}: lens ${best.logit}, forward ${logits[best.id]}`);
    }
    // At the embedding layer the tied unembedding reads the input token back.
    assert.equal(lens.top[0]![4]![0]!.id, ids[4]);
  });

  it('steering by ×1 changes nothing; flipping the name mover at the last position makes the model name the subject', async () => {
    const { ids } = engine.encode(PROMPT);
    const same = await steerAndGenerate(engine, ids, 'a2.h2', ids.length - 1, 1, 3);
    assert.deepEqual(same.steered.ids, same.clean.ids);
    const flipped = await steerAndGenerate(engine, ids, 'a2.h2', ids.length - 1, -3, 1);
    assert.equal(flipped.clean.text, ' Hugo');
    assert.equal(flipped.steered.text, ' Sean');
  });
});
