/**
 * Shared by the conformance tests: where the peers' pinned code is (../shared/peers, never
 * copied here), the Debian Python that runs it, and the CLI runs that produce our exports.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { missingShared, REPO, SHARED } from '../helpers';

export { REPO, SHARED };
export const PEERS = path.join(SHARED, 'peers');
/** Debian's interpreter: python3-torch, -pydantic, -onnx install for it, not for a pyenv/venv python. */
export const PYTHON = '/usr/bin/python3';

/** The skip line when ../shared/peers is absent, else false. */
export function peersMissing(): string | false {
  return missingShared('peers');
}

let provisioned: string | false | undefined;
/**
 * Installs the Debian packages (test/conformance/provision.sh, idempotent) once per process.
 * Returns false when they are there, else why not (the tests then fail: CI must provision).
 */
export function provisionPython(): string | false {
  if (provisioned !== undefined) return provisioned;
  const run = spawnSync('bash', [path.join(__dirname, 'provision.sh')], { encoding: 'utf8', timeout: 1_200_000 });
  provisioned = run.status === 0 ? false : `test/conformance/provision.sh failed (exit ${run.status}): ${(run.stderr || run.stdout).trim().split('\n').slice(-3).join(' | ')}`;
  return provisioned;
}

/** Runs a Python script of test/conformance with Debian's python3; returns its stdout parsed as JSON lines. */
export function runPython(script: string, args: readonly string[], env: Record<string, string> = {}): any[] {
  const run = spawnSync(PYTHON, [path.join(__dirname, script), ...args], {
    encoding: 'utf8',
    timeout: 600_000,
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', ...env },
    maxBuffer: 256 * 1024 * 1024,
  });
  if (run.status !== 0) throw new Error(`${script} exited ${run.status}:\n${run.stderr}\n${run.stdout}`);
  return run.stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

/** Runs the CLI from source (`circuit-lens …`); throws with its stderr on a non-zero exit. */
export function cli(args: readonly string[]): { stdout: string; stderr: string; json: any } {
  const run = spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO, 'src/cli/main.ts'), ...args, '--json'], {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 600_000,
  });
  if (run.status !== 0) throw new Error(`circuit-lens ${args.join(' ')} exited ${run.status}:\n${run.stderr}`);
  return { stdout: run.stdout, stderr: run.stderr, json: JSON.parse(run.stdout.trim().split('\n').at(-1)!) };
}

export const IOI_PROMPT = 'When Mary and John went to the store, John gave a drink to';

export interface Exports {
  readonly dir: string;
  /** Our circuit graphs. */
  readonly ioiEdges: string;
  readonly promptNodes: string;
  readonly layer0: string;
  /** Neuronpedia / circuit-tracer JSON of each, drawn on IOI_PROMPT. */
  readonly npEdges: string;
  readonly npNodes: string;
  readonly npLayer0: string;
  readonly npLayer0Warnings: string[];
}

/**
 * Our exports on the embedded tiny-ioi-gpt2: the IOI edge circuit (8 prompts, top 40 edges, then
 * kept connected) and a node circuit discovered on one prompt, each as a Neuronpedia graph on
 * IOI_PROMPT; plus a circuit whose components all sit in layer 0 (the "No layer found" case).
 */
export function makeExports(dir: string): Exports {
  const at = (name: string) => path.join(dir, name);
  cli(['discover', '--task', 'ioi', '--n', '8', '--edges', '--top', '40', '--no-verify', '--out', at('ioi-edges.json')]);
  fs.writeFileSync(at('prompt.jsonl'), JSON.stringify({ prompt: IOI_PROMPT, target: ' Mary', foil: ' John' }) + '\n');
  cli(['discover', '--task', at('prompt.jsonl'), '--granularity', 'heads+mlps', '--top', '8', '--no-verify', '--out', at('prompt-nodes.json')]);
  // Layer 0 only: the prompt circuit restricted to its layer-0 components.
  const nodes = JSON.parse(fs.readFileSync(at('prompt-nodes.json'), 'utf8'));
  const layer0 = { ...nodes, nodes: nodes.nodes.filter((n: { kind: string; layer: number }) => n.layer === 0 || n.kind === 'input' || n.kind === 'logits') };
  layer0.selection = { ...layer0.selection, kept: layer0.nodes.length - 2 };
  fs.writeFileSync(at('layer0.json'), JSON.stringify(layer0));
  const np = (circuit: string, out: string) => cli(['export', '--circuit', at(circuit), '--format', 'neuronpedia', '--prompt', IOI_PROMPT, '--scan', 'tiny-ioi-gpt2', '--out', at(out)]);
  np('ioi-edges.json', 'np-ioi-edges.json');
  np('prompt-nodes.json', 'np-prompt-nodes.json');
  const layer0Run = np('layer0.json', 'np-layer0.json');
  return {
    dir,
    ioiEdges: at('ioi-edges.json'),
    promptNodes: at('prompt-nodes.json'),
    layer0: at('layer0.json'),
    npEdges: at('np-ioi-edges.json'),
    npNodes: at('np-prompt-nodes.json'),
    npLayer0: at('np-layer0.json'),
    npLayer0Warnings: layer0Run.json.warnings,
  };
}
