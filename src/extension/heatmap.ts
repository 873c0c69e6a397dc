/**
 * The token heatmap: relevance per prompt token as bucketed background decorations (GitLens
 * style: one decoration type per bucket, 10 positive and 10 negative, colours from
 * `contributes.colors` so themes can override them), a hover per token with the exact numbers,
 * and a CodeLens above the prompt naming the explained target and the top next tokens.
 *
 * Colour is never the only carrier: the hover of every token spells out its relevance, sign,
 * rank and share, and the few top-ranked tokens (`OUTLINED`) get a thin outline — solid when
 * they support the target, dashed when they oppose it — so the strongest evidence and its sign
 * read without colour. Other tokens get no border (an underline on every token merged into one
 * line under the whole prompt).
 */
import * as vscode from 'vscode';
import type { PromptAttribution, TokenRelevance } from '../protocol/shapes';

export const BUCKETS = 10;
/** Tokens with the largest |relevance| that get an outline. */
export const OUTLINED = 3;

/** Which bucket (1..BUCKETS) a relevance falls in, relative to the largest |relevance|; 0 = none. */
export function bucketOf(relevance: number, maxAbs: number): number {
  if (!(maxAbs > 0) || relevance === 0 || !Number.isFinite(relevance)) return 0;
  return Math.min(BUCKETS, Math.max(1, Math.ceil((Math.abs(relevance) / maxAbs) * BUCKETS)));
}

/** A number with sign and 4 significant digits (`+0.1234`, `-1.235e-5`), ASCII only so tests can parse it. */
export function formatRelevance(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const body = Math.abs(x) >= 1e-3 && Math.abs(x) < 1e5 ? Math.abs(x).toPrecision(4) : Math.abs(x).toExponential(3);
  return `${x < 0 ? '-' : '+'}${body}`;
}

/** Token text made visible and safe for Markdown: spaces as ␣, newlines as ↵, Markdown/HTML escaped. */
export function visibleToken(text: string): string {
  const shown = text.replace(/ /g, '␣').replace(/\n/g, '↵').replace(/\t/g, '⇥').replace(/\r/g, '');
  return shown.replace(/[\\`*_{}[\]()#+\-.!|<>&~]/g, (c) => `\\${c}`);
}

interface Applied {
  readonly uri: string;
  readonly version: number;
  /** Document offset of the prompt's first character. */
  readonly base: number;
  readonly result: PromptAttribution;
  /** Tokens sorted by |relevance|, for ranks. */
  readonly ranks: Map<number, number>;
  readonly totalAbs: number;
  readonly promptRange: vscode.Range;
}

export class Heatmap implements vscode.HoverProvider, vscode.CodeLensProvider, vscode.Disposable {
  private readonly positive: vscode.TextEditorDecorationType[] = [];
  private readonly negative: vscode.TextEditorDecorationType[] = [];
  /** Outlines of the top-ranked tokens: [supports, opposes]. */
  private readonly outline: [vscode.TextEditorDecorationType, vscode.TextEditorDecorationType];
  private readonly byUri = new Map<string, Applied>();
  private readonly lensEmitter = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.lensEmitter.event;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly codeLensEnabled: () => boolean) {
    for (let i = 1; i <= BUCKETS; i++) {
      this.positive.push(this.makeType('positive', i));
      this.negative.push(this.makeType('negative', i));
    }
    this.outline = [this.makeOutline('positive'), this.makeOutline('negative')];
    this.disposables.push(
      this.lensEmitter,
      vscode.window.onDidChangeVisibleTextEditors((editors) => editors.forEach((e) => this.render(e))),
      vscode.workspace.onDidChangeTextDocument((e) => {
        const applied = this.byUri.get(e.document.uri.toString());
        // Offsets are stale once the prompt is edited; drop the heatmap rather than mislead.
        if (applied && e.contentChanges.some((c) => c.range.intersection(applied.promptRange) || c.range.start.isBefore(applied.promptRange.start))) {
          this.clear(e.document.uri);
        }
      }),
      vscode.workspace.onDidCloseTextDocument((d) => this.byUri.delete(d.uri.toString())),
    );
  }

  private makeType(sign: 'positive' | 'negative', bucket: number): vscode.TextEditorDecorationType {
    const color = new vscode.ThemeColor(`circuitLens.relevance.${sign}${bucket}`);
    return vscode.window.createTextEditorDecorationType({
      backgroundColor: color,
      borderRadius: '2px',
      rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
      ...(bucket >= 6 ? { overviewRulerColor: color, overviewRulerLane: vscode.OverviewRulerLane.Center } : {}),
    });
  }

  private makeOutline(sign: 'positive' | 'negative'): vscode.TextEditorDecorationType {
    return vscode.window.createTextEditorDecorationType({
      borderColor: new vscode.ThemeColor(`circuitLens.relevance.${sign}${BUCKETS}`),
      borderStyle: sign === 'positive' ? 'solid' : 'dashed',
      borderWidth: '1px',
      borderRadius: '3px',
      rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
    });
  }

  /** Shows `result` for the prompt starting at document offset `base`. */
  show(editor: vscode.TextEditor, base: number, result: PromptAttribution): void {
    const doc = editor.document;
    const order = result.tokens.map((_, i) => i).sort((a, b) => Math.abs(result.tokens[b]!.relevance) - Math.abs(result.tokens[a]!.relevance));
    const ranks = new Map<number, number>();
    order.forEach((tokenIndex, rank) => ranks.set(tokenIndex, rank + 1));
    const totalAbs = result.tokens.reduce((acc, t) => acc + Math.abs(t.relevance), 0);
    const lastEnd = result.tokens.reduce((acc, t) => Math.max(acc, t.end), 0);
    const promptRange = new vscode.Range(doc.positionAt(base), doc.positionAt(base + lastEnd));
    this.byUri.set(doc.uri.toString(), { uri: doc.uri.toString(), version: doc.version, base, result, ranks, totalAbs, promptRange });
    for (const e of vscode.window.visibleTextEditors) if (e.document === doc) this.render(e);
    this.lensEmitter.fire();
  }

  clear(uri?: vscode.Uri): void {
    if (uri) this.byUri.delete(uri.toString());
    else this.byUri.clear();
    for (const e of vscode.window.visibleTextEditors) this.render(e);
    this.lensEmitter.fire();
  }

  has(uri: vscode.Uri): boolean {
    return this.byUri.has(uri.toString());
  }

  private render(editor: vscode.TextEditor): void {
    const applied = this.byUri.get(editor.document.uri.toString());
    const pos: vscode.Range[][] = this.positive.map(() => []);
    const neg: vscode.Range[][] = this.negative.map(() => []);
    const outlined: [vscode.Range[], vscode.Range[]] = [[], []];
    if (applied) {
      const maxAbs = Math.max(0, ...applied.result.tokens.map((t) => Math.abs(t.relevance)));
      applied.result.tokens.forEach((t, i) => {
        const b = bucketOf(t.relevance, maxAbs);
        if (b === 0 || t.end <= t.start) return;
        const range = this.rangeOf(editor.document, applied, t);
        (t.relevance > 0 ? pos : neg)[b - 1]!.push(range);
        if ((applied.ranks.get(i) ?? Infinity) <= OUTLINED) outlined[t.relevance > 0 ? 0 : 1].push(range);
      });
    }
    this.positive.forEach((type, i) => editor.setDecorations(type, pos[i]!));
    this.negative.forEach((type, i) => editor.setDecorations(type, neg[i]!));
    this.outline.forEach((type, i) => editor.setDecorations(type, outlined[i]!));
  }

  private rangeOf(doc: vscode.TextDocument, applied: Applied, t: TokenRelevance): vscode.Range {
    return new vscode.Range(doc.positionAt(applied.base + t.start), doc.positionAt(applied.base + t.end));
  }

  provideHover(doc: vscode.TextDocument, position: vscode.Position): vscode.Hover | undefined {
    const applied = this.byUri.get(doc.uri.toString());
    if (!applied || !applied.promptRange.contains(position)) return undefined;
    const offset = doc.offsetAt(position) - applied.base;
    const index = applied.result.tokens.findIndex((t) => t.start <= offset && offset < t.end);
    if (index < 0) return undefined;
    const t = applied.result.tokens[index]!;
    const r = applied.result;
    const share = applied.totalAbs > 0 ? (100 * Math.abs(t.relevance)) / applied.totalAbs : 0;
    const md = new vscode.MarkdownString(undefined, true);
    md.isTrusted = { enabledCommands: ['circuitLens.clearHeatmap', 'circuitLens.showLog'] };
    md.appendMarkdown(`**Circuit Lens** · token \`${t.text.replace(/`/g, "'").replace(/\n/g, '↵')}\`\n\n`);
    md.appendMarkdown(`| | |\n|---|---|\n`);
    md.appendMarkdown(`| token | ${visibleToken(t.text)} |\n`);
    md.appendMarkdown(`| id | ${t.id} |\n`);
    md.appendMarkdown(`| position | ${index} |\n`);
    md.appendMarkdown(`| relevance | ${formatRelevance(t.relevance)} (${t.relevance >= 0 ? 'supports' : 'opposes'} the target) |\n`);
    md.appendMarkdown(`| rank | ${applied.ranks.get(index)} of ${r.tokens.length} by \\|relevance\\|${(applied.ranks.get(index) ?? Infinity) <= OUTLINED ? ` (top ${OUTLINED}: outlined, ${t.relevance >= 0 ? 'solid' : 'dashed'})` : ''} |\n`);
    md.appendMarkdown(`| share | ${share.toFixed(1)}% of total \\|relevance\\| |\n\n`);
    md.appendMarkdown(`${describeTarget(r)} · ${r.mode}\n\n`);
    md.appendMarkdown(`Top next: ${r.topNext.map((n) => `${visibleToken(n.text)} ${(100 * n.prob).toFixed(1)}%`).join(' · ')}\n\n`);
    md.appendMarkdown(`[Clear heatmap](command:circuitLens.clearHeatmap) · [Show log](command:circuitLens.showLog)`);
    return new vscode.Hover(md, this.rangeOf(doc, applied, t));
  }

  provideCodeLenses(doc: vscode.TextDocument): vscode.CodeLens[] {
    const applied = this.byUri.get(doc.uri.toString());
    if (!applied || !this.codeLensEnabled()) return [];
    const r = applied.result;
    const range = new vscode.Range(applied.promptRange.start, applied.promptRange.start);
    const top = r.topNext
      .slice(0, 3)
      .map((n) => `“${plainToken(n.text)}” ${(100 * n.prob).toFixed(0)}%`)
      .join(', ');
    return [
      new vscode.CodeLens(range, {
        title: `$(circuit-board) ${plainDescribeTarget(r)}`,
        tooltip: 'The quantity whose relevance the heatmap shows',
        command: 'circuitLens.attribute',
      }),
      new vscode.CodeLens(range, { title: `next: ${top}`, tooltip: 'Most likely next tokens', command: '' }),
      new vscode.CodeLens(range, { title: 'Clear', command: 'circuitLens.clearHeatmap', arguments: [doc.uri] }),
    ];
  }

  dispose(): void {
    for (const t of [...this.positive, ...this.negative, ...this.outline]) t.dispose();
    while (this.disposables.length) this.disposables.pop()?.dispose();
  }
}

function plainToken(text: string): string {
  return text.replace(/\n/g, '↵');
}

function describeTarget(r: PromptAttribution): string {
  const t = r.target;
  const what = t.kind === 'logit_diff' ? `logit(${visibleToken(t.text)}) − logit(${visibleToken(t.foilText ?? '')})` : `logit(${visibleToken(t.text)})`;
  return `Explains ${what} = ${formatRelevance(t.value)}`;
}

function plainDescribeTarget(r: PromptAttribution): string {
  const t = r.target;
  const what = t.kind === 'logit_diff' ? `logit “${plainToken(t.text)}” − “${plainToken(t.foilText ?? '')}”` : `logit “${plainToken(t.text)}”`;
  return `explains ${what} = ${t.value.toFixed(3)} (${r.mode})`;
}
