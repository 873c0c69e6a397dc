/**
 * The in-host suite: runs inside the extension host (bundled to dist/test/inhost-suite.js and
 * loaded by VS Code through `--extensionTestsPath`), using the `vscode` API directly. It checks
 * what only the host can see: every contributed command is registered, every contributed
 * setting has its declared default, a document is attributed and the IOI circuit is discovered
 * through the extension's commands, with real engine work behind them.
 */
import assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { DISCOVER_DEFAULTS } from '../../src/pipelines/circuits';
import { validateCircuitGraph } from '../../src/circuits/discovery/graph';

const EXTENSION_ID = 'circuit-lens.circuit-lens';

interface Contributes {
  commands: { command: string }[];
  configuration: { properties: Record<string, { default?: unknown }> };
}

const cases: [string, () => Promise<void>][] = [];
const test = (name: string, fn: () => Promise<void>) => cases.push([name, fn]);

function contributes(): Contributes {
  const extension = vscode.extensions.getExtension(EXTENSION_ID);
  assert.ok(extension, `${EXTENSION_ID} is not installed in the test host`);
  return extension.packageJSON.contributes as Contributes;
}

test('every contributed command is registered', async () => {
  await vscode.extensions.getExtension(EXTENSION_ID)!.activate();
  const registered = new Set(await vscode.commands.getCommands(true));
  const missing = contributes().commands.map((c) => c.command).filter((id) => !registered.has(id));
  assert.deepEqual(missing, []);
});

test('every contributed setting has its declared default', async () => {
  for (const [key, schema] of Object.entries(contributes().configuration.properties)) {
    const [section, ...rest] = key.split('.');
    const inspected = vscode.workspace.getConfiguration(section).inspect(rest.join('.'));
    assert.ok(inspected, `${key} is not contributed`);
    assert.deepEqual(inspected.defaultValue, schema.default, key);
  }
  assert.equal(vscode.workspace.getConfiguration('circuitLens').get('circuits.prompts'), DISCOVER_DEFAULTS.n);
});

test('attributes a prompt in a document with the embedded model', async () => {
  await vscode.commands.executeCommand('circuitLens.useEmbeddedModel');
  const doc = await vscode.workspace.openTextDocument({ content: 'When Mary and John went to the store, John gave a drink to', language: 'plaintext' });
  const editor = await vscode.window.showTextDocument(doc);
  editor.selection = new vscode.Selection(0, 0, 0, doc.lineAt(0).text.length);
  const result = (await vscode.commands.executeCommand('circuitLens.attribute')) as { tokens?: { relevance: number }[] } | undefined;
  assert.ok(result?.tokens && result.tokens.length > 5, 'the attribute command returns the attribution it shows');
  assert.ok(result.tokens.every((t) => Number.isFinite(t.relevance)));
});

test('discovers the IOI circuit through the command, without pickers when given options', async () => {
  const graph = await vscode.commands.executeCommand('circuitLens.discoverCircuit', { task: 'ioi', n: 16 });
  const circuit = validateCircuitGraph(JSON.parse(JSON.stringify(graph)), 'discoverCircuit result');
  assert.equal(circuit.task.name, 'ioi');
  assert.equal(circuit.task.examples, 16);
  assert.ok(circuit.nodes.some((n) => n.kind === 'head'));
  assert.ok(Number.isFinite(circuit.metrics?.faithfulness));
});

/** The entry VS Code calls (`--extensionTestsPath`). Throws when any case fails. */
export async function run(): Promise<void> {
  const failures: string[] = [];
  for (const [name, fn] of cases) {
    try {
      await fn();
      console.log(`ok - ${name}`);
    } catch (err) {
      failures.push(name);
      console.log(`not ok - ${name}\n  ${(err as Error).stack ?? String(err)}`);
    }
  }
  console.log(`${cases.length - failures.length} passed, ${failures.length} failed`);
  if (failures.length > 0) throw new Error(`${failures.length} in-host case(s) failed: ${failures.join('; ')}`);
}
