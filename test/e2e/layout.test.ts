/// <reference lib="dom" />
// page.evaluate callbacks run in the browser: DOM types for them only (tsconfig.json has none).
/**
 * The circuit graph at any size (issue 14, "Done when"): the panel is opened at three sizes —
 * narrow (≈ 410 px of editor), half a 1920-px screen, and maximized (1920×1080 without the side
 * bar) — for the IOI circuit and the greater-than circuit the CLI discovers on the embedded model,
 * and for a 12-layer × 12-head circuit written here (a GPT-2-small shape with random scores; the
 * panel needs no model to show it). At each size, read back from cytoscape through the webview's
 * read-only hook (`__circuitLensGraph`, webview/graph.ts): every node, with its label, lies
 * inside the canvas, the canvas inside the page, and no two node labels overlap.
 * Every wait is on a state (the refit after the resize), never a sleep.
 *
 * It also takes the README's graph screenshots (test/e2e/screenshots/graph-*.png, light and dark;
 * the ones in docs/images are copies of these).
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Frame, Page } from 'playwright-core';
import { buildCircuitGraph, selectNodes, validateCircuitGraph, type CircuitGraph } from '../../src/circuits/discovery/graph';
import { circuitFileText } from '../../src/pipelines/exports';
import type { GraphSnapshot } from '../../webview/graph';
import { cli, pickQuickItem, runCommand, screenshot, setDarkTheme, startWorkbench, THEME_SETTINGS, until, webviewFrame, type Workbench } from './harness';

let workbench: Workbench | undefined;
let page: Page;

/** mulberry32: a seeded generator, so the 12-layer circuit is the same every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A 12-layer × 12-head circuit (GPT-2-small shape) with random signed head and MLP scores, 20
 * heads kept (the largest |score|), and forward edges between kept heads: the circuit file the
 * CLI would write for such a model, without running one.
 */
function twelveLayerCircuit(): CircuitGraph {
  const rand = prng(12);
  const L = 12;
  const H = 12;
  // 20 strong heads spread over all layers, the other 124 weak; MLPs weaker than the kept heads.
  const strong = new Set<number>();
  while (strong.size < 20) strong.add(Math.floor(rand() * L * H));
  const sign = () => (rand() < 0.25 ? -1 : 1);
  const heads = Array.from({ length: L }, (_, l) => Array.from({ length: H }, (_, h) => sign() * (strong.has(l * H + h) ? 0.3 + rand() : 0.01 + 0.1 * rand())));
  const mlps = Array.from({ length: L }, () => sign() * (0.01 + 0.1 * rand()));
  const kept = [...strong].sort((a, b) => a - b).map((i) => ({ id: `a${Math.floor(i / H)}.h${i % H}`, layer: Math.floor(i / H) }));
  const edges: { source: string; target: string; relevance: number }[] = [];
  for (const k of kept) {
    edges.push({ source: 'input', target: k.id, relevance: sign() * rand() * 0.5 });
    edges.push({ source: k.id, target: 'logits', relevance: sign() * rand() * 0.5 });
    const later = kept.filter((x) => x.layer > k.layer);
    for (let j = 0; j < Math.min(2, later.length); j++) edges.push({ source: k.id, target: later[Math.floor(rand() * later.length)]!.id, relevance: sign() * rand() });
  }
  const unique = [...new Map(edges.map((e) => [`${e.source}->${e.target}`, e])).values()];
  const full = buildCircuitGraph({
    model: { name: 'random-gpt2-12l', nLayers: L, nHeads: H, dModel: 768, dMlp: 3072 },
    task: { name: 'ioi', metric: 'logit_diff', examples: 32, seed: 0 },
    method: { name: 'attnlrp', aggregation: 'signed-mean' },
    heads,
    mlps,
    inputRelevance: 1,
    logitsRelevance: 1,
    edges: unique,
  });
  const scores = Object.fromEntries(full.nodes.filter((n) => n.kind === 'head' || n.kind === 'mlp').map((n) => [n.id, n.relevance]));
  const graph = { ...selectNodes(full, { kind: 'top-k', k: 20 }, { absolute: true }), scores, created: '2026-01-01T00:00:00.000Z' };
  return validateCircuitGraph(JSON.parse(JSON.stringify(graph)), '12-layer circuit');
}

interface Size {
  readonly name: string;
  readonly width: number;
  readonly height: number;
  /** The smallest canvas we accept at this size: the graph must use the room the panel has beside its 240-px inspector (below it when narrow). */
  readonly minCanvas: { w: number; h: number };
}

const SIZES: readonly Size[] = [
  { name: 'narrow', width: 460, height: 800, minCanvas: { w: 330, h: 250 } },
  { name: 'half', width: 960, height: 900, minCanvas: { w: 560, h: 400 } },
  { name: 'maximized', width: 1920, height: 1080, minCanvas: { w: 1500, h: 600 } },
];

async function snapshot(f: Frame): Promise<GraphSnapshot | null> {
  return f.evaluate(() => {
    const hook = (window as unknown as { __circuitLensGraph?: () => unknown }).__circuitLensGraph;
    return (hook ? hook() : null) as GraphSnapshot | null;
  });
}

/** Opens a workspace circuit file in the panel and waits for its graph. */
async function openCircuit(file: string): Promise<Frame> {
  await runCommand(page, 'Circuit Lens: Open Circuit Graph…');
  await pickQuickItem(page, file.replace(/\.json$/, ''), file);
  const title = file.replace(/\.json$/, '');
  return until(
    `${file} in the panel`,
    async () => {
      const f = await webviewFrame(page, '[data-testid="node-count"]');
      if ((await f.textContent('[data-testid="title"]'))?.trim() !== title) return undefined;
      const s = await snapshot(f);
      return s && s.nodes.length > 0 ? f : undefined;
    },
    60_000,
  );
}

/**
 * Resizes the page and waits until the graph has refitted to its new canvas: the webview lies
 * inside the new page, and the graph's canvas, its container and its fit all have the webview's
 * new size. (A graph that is consistent with itself is not enough: right after a shrink it still
 * has the old, larger size until the webview's resize reaches it.)
 */
async function resize(f: Frame, size: Size): Promise<GraphSnapshot> {
  await page.setViewportSize({ width: size.width, height: size.height });
  return until(
    `the graph refitted at ${size.name} (${size.width}×${size.height})`,
    async () => {
      const box = await (await f.frameElement()).boundingBox();
      if (!box || box.x < 0 || box.y < 0 || box.x + box.width > size.width + 1 || box.y + box.height > size.height + 1) return undefined;
      const s = await snapshot(f);
      if (!s || !s.fitted) return undefined;
      const settled = s.container.w === s.width && s.container.h === s.height && s.fitted.w === s.width && s.fitted.h === s.height;
      const inFrame = s.width <= box.width + 1 && s.height <= box.height + 1;
      return settled && inFrame && s.width >= size.minCanvas.w && s.height >= size.minCanvas.h ? s : undefined;
    },
    30_000,
  ).catch(async (err: Error) => {
    await screenshot(page, `layout-failed-${size.name}`);
    throw new Error(`${err.message}; last snapshot: ${JSON.stringify({ ...(await snapshot(f)), nodes: undefined })}`);
  });
}

type Box = { x1: number; y1: number; x2: number; y2: number };
const overlapArea = (a: Box, b: Box) => Math.max(0, Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1)) * Math.max(0, Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1));

/** Whether the segment p→q meets the box (Liang–Barsky clipping). */
function segmentHitsBox(p: [number, number], q: [number, number], b: Box): boolean {
  const [dx, dy] = [q[0] - p[0], q[1] - p[1]];
  let [t0, t1] = [0, 1];
  for (const [den, num] of [[-dx, p[0] - b.x1], [dx, b.x2 - p[0]], [-dy, p[1] - b.y1], [dy, b.y2 - p[1]]] as const) {
    if (den === 0) {
      if (num < 0) return false;
    } else {
      const t = num / den;
      if (den < 0) t0 = Math.max(t0, t);
      else t1 = Math.min(t1, t);
      if (t0 > t1) return false;
    }
  }
  return true;
}

/** The assertions of issue 14 at one size; returns a line for the log. */
async function checkLayout(f: Frame, circuit: string, s: GraphSnapshot): Promise<string> {
  const where = `${circuit}, canvas ${s.width}×${s.height}`;
  // The canvas lies inside the page's viewport (nothing of it cut off by the workbench).
  const frameBox = await (await f.frameElement()).boundingBox();
  const viewport = page.viewportSize()!;
  assert.ok(frameBox, `${where}: the webview has no box`);
  assert.ok(frameBox.x >= 0 && frameBox.y >= 0 && frameBox.x + frameBox.width <= viewport.width + 1 && frameBox.y + frameBox.height <= viewport.height + 1, `${where}: the webview ${JSON.stringify(frameBox)} leaves the page ${JSON.stringify(viewport)}`);
  const canvas = await f.evaluate(() => {
    const r = document.querySelector('.graph-canvas')!.getBoundingClientRect();
    return { x1: r.left, y1: r.top, x2: r.right, y2: r.bottom, vw: window.innerWidth, vh: window.innerHeight };
  });
  assert.ok(canvas.x1 >= 0 && canvas.y1 >= 0 && canvas.x2 <= canvas.vw + 1 && canvas.y2 <= canvas.vh + 1, `${where}: the canvas ${JSON.stringify(canvas)} leaves the webview`);
  // Every node, label included, inside the canvas.
  const tol = 0.5;
  for (const n of s.nodes) {
    const b = n.box;
    assert.ok(b.x1 >= -tol && b.y1 >= -tol && b.x2 <= s.width + tol && b.y2 <= s.height + tol, `${where}: node ${n.id} at ${JSON.stringify(b)} is outside the canvas`);
  }
  // No two labels overlap — all labels, also those too small to be drawn at this zoom.
  const labelled = s.nodes.filter((n) => n.labelBox && n.labelBox.x2 > n.labelBox.x1);
  for (let i = 0; i < labelled.length; i++) {
    for (let j = i + 1; j < labelled.length; j++) {
      const a = labelled[i]!;
      const b = labelled[j]!;
      assert.ok(overlapArea(a.labelBox!, b.labelBox!) <= 0.01, `${where}: labels "${a.label}" ${JSON.stringify(a.labelBox)} and "${b.label}" ${JSON.stringify(b.labelBox)} overlap`);
    }
  }
  const drawnLabels = labelled.filter((n) => n.fontPx >= s.minLabelPx);
  const drawn = drawnLabels.length;
  // Edges crossing a drawn label (an edge entering a node from below passes its own label):
  // cytoscape draws edges beneath nodes and labels ('z-index-compare: auto'), and each label sits
  // on a halo — a box of the canvas colour — so the edge shows only faintly behind the text.
  // The layer axis's labels (class 'axis') have no halo: no edge may cross them at all.
  const crossed = drawnLabels.filter((n) => s.edges.some((e) => e.points.slice(1).some((q, i) => segmentHitsBox(e.points[i]!, q, n.labelBox!))));
  for (const n of crossed) assert.ok(!n.classes.split(' ').includes('axis'), `${where}: an edge crosses the axis label "${n.label}"`);
  for (const n of drawnLabels.filter((x) => !x.classes.split(' ').includes('axis'))) {
    assert.ok(n.labelHalo >= 0.7 && n.zCompare === 'auto', `${where}: label "${n.label}" has no halo (${n.labelHalo}) or is not above the edges (${n.zCompare})`);
  }
  for (const e of s.edges) assert.equal(e.zCompare, 'auto', `${where}: edge ${e.id} is not drawn beneath the labels`);
  return `${where}: ${s.nodes.length} nodes inside, ${labelled.length} labels without overlap (${drawn} drawn, font ${labelled[0]?.fontPx.toFixed(1)} px; ${crossed.length} crossed by an edge, all on a halo above the edges)`;
}

/** A screenshot of the workbench for the README, once the panel has the theme's colours. */
async function docScreenshot(f: Frame, name: string, dark: boolean): Promise<void> {
  await setDarkTheme(page, dark);
  // The graph restyles from the body's theme class: wait for the webview to carry it.
  await until(`the panel in the ${dark ? 'dark' : 'light'} theme`, async () => (await f.evaluate(() => document.body.className)).includes(dark ? 'vscode-dark' : 'vscode-light'));
  await f.click('[data-testid="fit"]');
  await screenshot(page, `${name}-${dark ? 'dark' : 'light'}`);
}

const CIRCUITS = ['ioi.json', 'greater-than.json', 'gpt2-12l.json'] as const;

describe('the circuit graph at three panel sizes', { timeout: 15 * 60_000 }, () => {
  before(async () => {
    workbench = await startWorkbench('layout', {
      settings: { ...THEME_SETTINGS, 'git.enabled': false },
      files: { 'gpt2-12l.json': circuitFileText(twelveLayerCircuit()) },
      prepare: async (folder) => {
        await cli(['discover', '--task', 'ioi', '--out', path.join(folder, 'ioi.json')]);
        await cli(['discover', '--task', 'greater-than', '--out', path.join(folder, 'greater-than.json')]);
      },
      closeSideBar: true,
    });
    ({ page } = workbench);
  });

  after(async () => {
    await workbench?.close();
  });

  for (const file of CIRCUITS) {
    it(`${file}: every node inside the canvas, no two labels overlap, every label on a halo above the edges, narrow, half and maximized`, async () => {
      const f = await openCircuit(file);
      const lines: string[] = [];
      for (const size of SIZES) lines.push(`${size.name}: ${await checkLayout(f, file, await resize(f, size))}`);
      // And back to narrow: shrinking refits too.
      lines.push(`narrow again: ${await checkLayout(f, file, await resize(f, SIZES[0]!))}`);
      process.stderr.write(`[e2e] ${lines.join('\n[e2e] ')}\n`);
      // README screenshots at the half size (small files, the graph readable).
      await resize(f, SIZES[1]!);
      const name = `graph-${file.replace(/\.json$/, '')}`;
      await docScreenshot(f, name, false);
      await docScreenshot(f, name, true);
    });
  }
});
