/**
 * The activity-bar views: the loaded model (architecture, then layers → heads and MLP), the
 * saved circuits (circuit graph JSON files, exactly as the CLI writes them, in the extension's
 * global storage) and the pruning/correction runs of this session.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { circuitComponentIds, type CircuitGraph } from '../circuits/discovery/graph';
import { componentId } from '../models/componentIds';
import type { Run } from '../protocol/shapes';
import type { Ctx } from './ctx';
import { circuitFileText } from '../pipelines/exports';
import { circuitName, parseCircuitFile } from './exporters';

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
        ...Array.from({ length: i.heads }, (_, h) => ({ kind: 'component' as const, id: componentId.head(node.layer, h), label: `Head ${h}` })),
        { kind: 'component' as const, id: componentId.mlp(node.layer), label: 'MLP' },
      ];
    }
    return [];
  }
}

export interface SavedCircuit {
  readonly file: string;
  /** The file name without `.json`. */
  readonly name: string;
  readonly graph: CircuitGraph;
}

/** Saved circuits: one circuit graph JSON file per circuit under globalStorage/circuits. */
export class CircuitStore implements vscode.TreeDataProvider<SavedCircuit> {
  private readonly emitter = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.emitter.event;

  constructor(private readonly ctx: Ctx) {
    ctx.push(this.emitter);
  }

  get dir(): string {
    return path.join(this.ctx.extension.globalStorageUri.fsPath, 'circuits');
  }

  /** Writes the graph as the CLI would (`circuitFileText`), under `name` or a fresh one. */
  async save(graph: CircuitGraph, name = circuitName(graph)): Promise<SavedCircuit> {
    await fs.mkdir(this.dir, { recursive: true });
    const safe = name.replace(/[^A-Za-z0-9_.+-]+/g, '_').replace(/\.json$/, '');
    const file = path.join(this.dir, `${safe}.json`);
    const tmp = `${file}.${process.pid}.tmp`;
    await fs.writeFile(tmp, circuitFileText(graph));
    await fs.rename(tmp, file);
    this.emitter.fire();
    return { file, name: safe, graph };
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
        out.push({ file, name: name.slice(0, -'.json'.length), graph: parseCircuitFile(await fs.readFile(file, 'utf8'), file) });
      } catch (err) {
        this.ctx.log.warn(`ignoring saved circuit ${file}: ${(err as Error).message}`);
      }
    }
    return out.sort((a, b) => (b.graph.created ?? '').localeCompare(a.graph.created ?? '') || a.name.localeCompare(b.name));
  }

  getTreeItem(item: SavedCircuit): vscode.TreeItem {
    const g = item.graph;
    const t = new vscode.TreeItem(item.name);
    const components = circuitComponentIds(g).length;
    const faithfulness = g.metrics?.faithfulness;
    t.description = `${components} of ${g.selection.candidates} · ${g.granularity}${faithfulness !== undefined ? ` · faithfulness ${faithfulness.toFixed(2)}` : ''}`;
    t.tooltip = `${item.name}\n${g.task.name} (${g.task.metric}, ${g.task.examples} prompts) · ${g.method.name}${g.method.aggregation ? ` ${g.method.aggregation}` : ''} · ${g.model.name}\n${g.nodes.length} nodes, ${g.edges.length} edges\n${item.file}`;
    t.iconPath = new vscode.ThemeIcon('type-hierarchy');
    t.contextValue = 'savedCircuit';
    t.command = { command: 'circuitLens.openGraph', title: 'Open Circuit Graph', arguments: [item] };
    return t;
  }

  getChildren(item?: SavedCircuit): Promise<SavedCircuit[]> | SavedCircuit[] {
    return item ? [] : this.list();
  }
}

/** A one-line summary of a run (the Runs view, pickers, messages). */
export function describeRun(run: Run): string {
  if (run.kind === 'prune') {
    const ppl = run.perplexityBefore !== null && run.perplexityAfter !== null ? ` · perplexity ${fmt(run.perplexityBefore)} → ${fmt(run.perplexityAfter)}` : '';
    return `${(run.achievedSparsity * 100).toFixed(1)} % pruned${ppl}`;
  }
  if (run.kind === 'prune-curve') {
    const circuits = run.series.map((x) => `${x.mode === 'structured' ? 'S' : 'U'} ${x.method} ${Math.round(x.circuitRate * 100)} %`);
    return `dense IOI accuracy ${fmt(run.dense)} · circuits (${Math.round(run.settings.keep * 100)} % kept): ${circuits.join(', ')}`;
  }
  const changes = Object.keys(run.before).map((k) => `${k.replace(/_/g, ' ')} ${fmt(run.before[k]!)} → ${fmt(run.after[k] ?? Number.NaN)}`);
  return `${run.removed.length} of ${run.totalComponents} ${run.settings.unit} removed${changes.length ? ` · ${changes.join(', ')}` : ''}`;
}

export function fmt(x: number): string {
  return Number.isFinite(x) ? (Math.abs(x) >= 1000 ? x.toExponential(2) : x.toFixed(3)) : String(x);
}

/** The pruning and correction runs of this session; a click shows the run in the panel's charts. */
export class RunsTree implements vscode.TreeDataProvider<Run> {
  private readonly emitter = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.emitter.event;

  constructor(private readonly ctx: Ctx) {
    ctx.push(this.emitter, ctx.onDidChangeRuns(() => this.emitter.fire()));
  }

  getTreeItem(run: Run): vscode.TreeItem {
    const t = new vscode.TreeItem(run.title);
    t.description = describeRun(run);
    t.tooltip = `${run.title}\n${describeRun(run)}\n${run.model}\n${run.created}`;
    t.iconPath = new vscode.ThemeIcon(run.kind === 'prune' ? 'scissors' : run.kind === 'prune-curve' ? 'graph-line' : 'wrench');
    t.contextValue = `run.${run.kind}`;
    t.command = { command: 'circuitLens.showRun', title: 'Show Run', arguments: [run.id] };
    return t;
  }

  getChildren(run?: Run): Run[] {
    return run ? [] : [...this.ctx.runs];
  }
}
