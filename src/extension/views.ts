/**
 * The activity-bar views: the loaded model (architecture, then layers → heads and MLP) and the
 * saved circuits (stored as JSON in the extension's global storage).
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { type Circuit, circuitSchema, parseWith } from '../protocol';
import type { Ctx } from './ctx';

type ModelNode = { kind: 'info'; label: string; value: string } | { kind: 'layers' } | { kind: 'layer'; layer: number } | { kind: 'component'; id: string; label: string };

export class ModelTree implements vscode.TreeDataProvider<ModelNode> {
  private readonly emitter = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.emitter.event;

  constructor(private readonly ctx: Ctx) {
    ctx.push(this.emitter, ctx.onDidChangeModel(() => this.emitter.fire()));
  }

  getTreeItem(node: ModelNode): vscode.TreeItem {
    switch (node.kind) {
      case 'info': {
        const item = new vscode.TreeItem(node.label);
        item.description = node.value;
        item.tooltip = `${node.label}: ${node.value}`;
        return item;
      }
      case 'layers':
        return Object.assign(new vscode.TreeItem('Layers', vscode.TreeItemCollapsibleState.Collapsed), { iconPath: new vscode.ThemeIcon('layers') });
      case 'layer':
        return Object.assign(new vscode.TreeItem(`Layer ${node.layer}`, vscode.TreeItemCollapsibleState.Collapsed), { contextValue: 'layer' });
      case 'component':
        return Object.assign(new vscode.TreeItem(node.label), { description: node.id, contextValue: 'component', iconPath: new vscode.ThemeIcon(node.id.startsWith('m') ? 'symbol-method' : 'eye') });
    }
  }

  getChildren(node?: ModelNode): ModelNode[] {
    const m = this.ctx.model;
    if (!m) return [];
    const i = m.info;
    if (!node) {
      return [
        { kind: 'info', label: 'Model', value: path.basename(i.folder) },
        { kind: 'info', label: 'Architecture', value: `${i.architecture} (${i.modelType})` },
        { kind: 'info', label: 'Size', value: `${i.layers} layers · ${i.heads} heads${i.kvHeads !== i.heads ? ` (${i.kvHeads} KV)` : ''} · d_model ${i.dModel} · d_mlp ${i.dMlp}` },
        { kind: 'info', label: 'Parameters', value: i.parameters.toLocaleString('en-US') },
        { kind: 'info', label: 'Vocabulary', value: `${i.vocab} tokens${m.hasTokenizer ? '' : ' (no tokenizer)'}` },
        { kind: 'info', label: 'Execution provider', value: `${i.executionProvider} · ${i.dtype}` },
        { kind: 'info', label: 'Folder', value: i.folder },
        { kind: 'layers' },
      ];
    }
    if (node.kind === 'layers') return Array.from({ length: i.layers }, (_, layer) => ({ kind: 'layer' as const, layer }));
    if (node.kind === 'layer') {
      return [
        ...Array.from({ length: i.heads }, (_, h) => ({ kind: 'component' as const, id: `a${node.layer}.h${h}`, label: `Head ${h}` })),
        { kind: 'component' as const, id: `m${node.layer}`, label: 'MLP' },
      ];
    }
    return [];
  }
}

export interface SavedCircuit {
  readonly file: string;
  readonly circuit: Circuit;
}

/** Saved circuits: one JSON file per circuit under globalStorage/circuits. */
export class CircuitStore implements vscode.TreeDataProvider<SavedCircuit> {
  private readonly emitter = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.emitter.event;

  constructor(private readonly ctx: Ctx) {
    ctx.push(this.emitter);
  }

  private get dir(): string {
    return path.join(this.ctx.extension.globalStorageUri.fsPath, 'circuits');
  }

  async save(circuit: Circuit): Promise<string> {
    await fs.mkdir(this.dir, { recursive: true });
    const file = path.join(this.dir, `${circuit.id.replace(/[^A-Za-z0-9_.-]/g, '_')}.json`);
    await fs.writeFile(file, JSON.stringify(circuit, null, 1));
    this.emitter.fire();
    return file;
  }

  async remove(item: SavedCircuit): Promise<void> {
    await fs.rm(item.file, { force: true });
    this.emitter.fire();
  }

  async list(): Promise<SavedCircuit[]> {
    let names: string[];
    try {
      names = (await fs.readdir(this.dir)).filter((n) => n.endsWith('.json'));
    } catch {
      return [];
    }
    const out: SavedCircuit[] = [];
    for (const name of names) {
      const file = path.join(this.dir, name);
      try {
        out.push({ file, circuit: parseWith(circuitSchema, JSON.parse(await fs.readFile(file, 'utf8')), 64 << 20) });
      } catch (err) {
        this.ctx.log.warn(`ignoring saved circuit ${file}: ${(err as Error).message}`);
      }
    }
    return out.sort((a, b) => b.circuit.id.localeCompare(a.circuit.id));
  }

  getTreeItem(item: SavedCircuit): vscode.TreeItem {
    const c = item.circuit;
    const t = new vscode.TreeItem(c.title);
    const heads = c.nodes.filter((n) => n.kind === 'head').length;
    const mlps = c.nodes.filter((n) => n.kind === 'mlp').length;
    t.description = `${heads} heads · ${mlps} MLPs${c.metrics ? ` · faithfulness ${c.metrics.faithfulness.toFixed(2)}` : ''}`;
    t.tooltip = `${c.title}\n${c.task} · ${c.mode} · ${path.basename(c.model)}\n${c.nodes.length} nodes, ${c.edges.length} edges`;
    t.iconPath = new vscode.ThemeIcon('type-hierarchy');
    t.contextValue = 'savedCircuit';
    t.command = { command: 'circuitLens.openGraph', title: 'Open Circuit Graph', arguments: [item] };
    return t;
  }

  getChildren(item?: SavedCircuit): Promise<SavedCircuit[]> | SavedCircuit[] {
    return item ? [] : this.list();
  }
}
