/// <reference lib="dom" />
// page.evaluate callbacks run in the browser: DOM types for them only (tsconfig.json has none).
/**
 * Circuit Lens end to end in code-server: the packaged VSIX, the real engine worker and model,
 * the editor heatmap and the circuit panel, checked through the DOM. The editor and the CLI run
 * the same pipeline: a circuit discovered in the editor equals the CLI's for the same settings,
 * the panel opens the CLI's circuit file, and the CLI verifies the circuit the panel saved.
 *
 *   npm run test:e2e          (installs code-server + chromium on first run; see harness.ts)
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Frame, Page } from 'playwright-core';
import type { CircuitGraph } from '../../src/circuits/discovery/graph';
import {
  circuitStore,
  cli,
  cliAttribute,
  type CodeServer,
  fixtureCircuit,
  goTo,
  HEATMAP_DECORATION,
  IOI_PROMPT,
  notificationTexts,
  openFile,
  pickQuickItem,
  quickInputTitle,
  runCommand,
  runCommandForInput,
  runContextMenuItem,
  screenshot,
  setDarkTheme,
  startWorkbench,
  THEME_SETTINGS,
  until,
  useEmbeddedModel,
  webviewFrame,
  type Workbench,
} from './harness';

const DARK = 'dark';
const LIGHT = 'light';


function tokenOffsets(tokens: readonly string[]): [number, number][] {
  let at = 0;
  return tokens.map((t) => {
    const span: [number, number] = [at, at + t.length];
    at += t.length;
    return span;
  });
}

let server: CodeServer;
let workbench: Workbench | undefined;
let page: Page;

/** Saved circuits are named by their file (no `/`): markup in the name must stay text. */
const FIXTURE_NAME = 'Fixture circuit <img src=x onerror="document.body.dataset.pwned=2">';

/** A circuit file without its timestamp (the one field two runs of the same discovery differ in). */
function withoutTime(file: string): Record<string, unknown> {
  const json = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  assert.equal(typeof json['created'], 'string', `${file} has no created time`);
  delete json['created'];
  return json;
}

/** Chooses a view of the panel through its select. */
async function showView(f: Frame, view: 'graph' | 'table' | 'charts'): Promise<void> {
  await f.locator('[data-testid="view-select"]').evaluate((e, v) => {
    (e as HTMLElement & { value: string }).value = v;
    e.dispatchEvent(new Event('change'));
  }, view);
}

async function hoverText(): Promise<string> {
  return until('the Circuit Lens hover', async () => {
    const hovers = await page.locator('.monaco-hover').allInnerTexts();
    return hovers.find((t) => t.includes('Circuit Lens'));
  });
}

/** Switches between the default light and dark themes, and waits until the workbench has repainted. */
async function setTheme(theme: typeof LIGHT | typeof DARK): Promise<void> {
  await setDarkTheme(page, theme === DARK);
  await animationsSettled();
}

/** Waits until no finite CSS animation of the workbench is running (the hover's fade-in, a theme's transitions). */
async function animationsSettled(): Promise<void> {
  await until('the animations to settle', () => page.evaluate(() => document.getAnimations().every((a) => a.playState !== 'running' || a.effect?.getTiming().iterations === Infinity)));
}

describe('Circuit Lens in code-server', { timeout: 15 * 60_000 }, () => {
  before(async () => {
    workbench = await startWorkbench('extension', {
      settings: { ...THEME_SETTINGS, 'circuitLens.developer.testHooks': true, 'circuitLens.pruning.windows': 8, 'git.enabled': false, 'git.openRepositoryInParentFolders': 'never' },
      files: { 'prompt.txt': `${IOI_PROMPT}\nThe war lasted from the year 1732 to the year 17\n` },
      // A saved circuit, so panel tests do not depend on discovery.
      savedCircuits: {
        // With a hostile task name that must stay text, and edges to draw.
        [FIXTURE_NAME]: fixtureCircuit({
          taskName: '<img src=x onerror="document.body.dataset.pwned=1">',
          edges: [
            { source: 'input', target: 'a0.h0', relevance: 0.8 },
            { source: 'a0.h0', target: 'm1', relevance: 0.4 },
            { source: 'm1', target: 'a2.h1', relevance: -0.2 },
            { source: 'a2.h1', target: 'logits', relevance: 0.6 },
          ],
        }),
      },
    });
    ({ server, page } = workbench);
  });

  after(async () => {
    await workbench?.close();
  });

  it('loads the embedded model', async () => {
    await useEmbeddedModel(page);
  });

  it('attributes the current line from the editor context menu; heatmap, hover and CodeLens match the CLI', async () => {
    const cli = cliAttribute(IOI_PROMPT);
    const relevance = cli['token_relevance'] as number[];
    const ids = cli['ids'] as number[];
    const targetValue = cli['target_value'] as number;

    await openFile(page, 'prompt.txt');
    await runContextMenuItem(page, page.locator('.monaco-editor .view-lines .view-line').first(), { x: 40, y: 5 }, 'Attribute with Circuit Lens');

    // Decorations: background overlays from our colour buckets (adjacent tokens of one bucket merge).
    const decorated = await until('heatmap decorations', async () => {
      const n = await page.locator(HEATMAP_DECORATION).count();
      return n >= 5 ? n : 0;
    }, 60_000);
    assert.ok(decorated >= 5, `decorated ranges: ${decorated}`);
    // The most intense red overlay sits on the token the CLI ranks first (" Mary", characters 4..9).
    const top = relevance.map((r, i) => [Math.abs(r), i] as const).sort((a, b) => b[0] - a[0])[0]![1];
    const offsets = tokenOffsets(cli['tokens'] as string[]);
    const geometry = await page.evaluate((sel) => {
      const line = document.querySelector('.monaco-editor .view-lines .view-line') as HTMLElement;
      const text = line.firstElementChild as HTMLElement;
      const charWidth = text.getBoundingClientRect().width / (text.textContent ?? ' ').length;
      const overlays = Array.from(document.querySelectorAll(sel)).map((d) => {
        const el = d as HTMLElement;
        return { left: parseFloat(el.style.left), width: parseFloat(el.style.width), bg: getComputedStyle(el).backgroundColor };
      });
      return { charWidth, overlays };
    }, HEATMAP_DECORATION);
    const alpha = (bg: string) => Number(/rgba?\(([^)]+)\)/.exec(bg)?.[1]?.split(',')[3] ?? 1);
    const hottest = [...geometry.overlays].sort((a, b) => alpha(b.bg) - alpha(a.bg))[0]!;
    assert.ok(Math.abs(hottest.left - offsets[top]![0] * geometry.charWidth) < 3, `hottest overlay at ${hottest.left}px, token ${top} starts at ${offsets[top]![0]}`);
    assert.ok(Math.abs(hottest.width - (offsets[top]![1] - offsets[top]![0]) * geometry.charWidth) < 3);

    // CodeLens names the explained target with the CLI's value.
    const lens = await until('the CodeLens', async () => {
      const t = (await page.locator('.codelens-decoration').allInnerTexts()).join(' ');
      return t.includes('explains') ? t : undefined;
    });
    assert.match(lens, /logit “ Mary”/);
    assert.ok(lens.includes(targetValue.toFixed(3)), `CodeLens "${lens}" should show ${targetValue.toFixed(3)}`);

    // Hover over " Mary" (offsets 4..9 → column 6).
    await goTo(page, 1, 6);
    await runCommand(page, 'Show or Focus Hover');
    const text = await hoverText();
    const total = relevance.reduce((a, b) => a + Math.abs(b), 0);
    const rank = [...relevance].sort((a, b) => Math.abs(b) - Math.abs(a)).indexOf(relevance[1]!) + 1;
    const shown = /relevance\s*([+-][0-9.]+(?:e[+-]?\d+)?)/.exec(text);
    assert.ok(shown, `hover text: ${text}`);
    assert.ok(Math.abs(Number(shown[1]) - relevance[1]!) <= 1e-3 * Math.abs(relevance[1]!) + 1e-6, `hover ${shown[1]} vs CLI ${relevance[1]}`);
    assert.match(text, new RegExp(`id\\s*${ids[1]}\\b`));
    assert.match(text, new RegExp(`rank\\s*${rank} of ${relevance.length}`));
    assert.ok(text.includes(`${((100 * Math.abs(relevance[1]!)) / total).toFixed(1)}% of total`), text);
    assert.match(text, /␣Mary/);
    await setTheme(DARK);
    await goTo(page, 1, 6);
    await runCommand(page, 'Show or Focus Hover');
    await hoverText();
    await animationsSettled(); // the hover fades in
    await screenshot(page, 'heatmap-dark');
    await setTheme(LIGHT);
    await goTo(page, 1, 6);
    await runCommand(page, 'Show or Focus Hover');
    await hoverText();
    await animationsSettled();
    await screenshot(page, 'heatmap-light');
    await setTheme(DARK);
    await page.keyboard.press('Escape');
  });

  it('cancels a long job and the host stays responsive', async () => {
    await runCommand(page, 'Circuit Lens: Run Engine Test Job (Developer)');
    const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'Engine test job' }).first();
    await toast.waitFor({ state: 'visible', timeout: 20_000 });
    const cancel = toast.locator('.monaco-button', { hasText: 'Cancel' });
    await cancel.waitFor({ state: 'visible', timeout: 20_000 });
    await cancel.click();
    const t0 = Date.now();
    await toast.waitFor({ state: 'hidden', timeout: 10_000 });
    assert.ok(Date.now() - t0 < 5000, 'the job should stop within the 1 s grace period plus UI latency');
    // The next job works (a fresh worker reloads the model) and the editor still answers.
    await openFile(page, 'prompt.txt');
    await goTo(page, 1, 1);
    await runCommand(page, 'Circuit Lens: Attribute Prompt');
    await until('heatmap after cancel', async () => (await page.locator(HEATMAP_DECORATION).count()) >= 5, 60_000);
    const errors = (await notificationTexts(page)).filter((t) => /failed|stopped/i.test(t));
    assert.deepEqual(errors, []);
  });

  let frame: Frame;

  it('opens a saved circuit in the panel with its layer axis, legend and ghosts, and keeps model-derived text inert', async () => {
    await runCommand(page, 'Circuit Lens: Open Circuit Graph…');
    await pickQuickItem(page, 'Fixture', 'Fixture circuit');
    frame = await webviewFrame(page, '[data-testid="node-count"]');
    await until('the fixture circuit in the panel', async () => (await frame.textContent('[data-testid="title"]'))?.includes('Fixture circuit'));
    assert.equal(await frame.textContent('[data-testid="node-count"]'), '5');
    assert.equal(await frame.textContent('[data-testid="edge-count"]'), '4');
    assert.equal(await frame.locator('[data-testid="title"] img').count(), 0, 'title must be text, not HTML');
    assert.match((await frame.textContent('[data-testid="title"]')) ?? '', /<img src=x/);
    // Discovery-time metrics are absent from the fixture: nothing stale is shown.
    assert.equal(await frame.locator('[data-testid="not-verified"]').count(), 1);
    assert.ok((await frame.locator('[data-testid="legend"]').innerText()).includes('candidate not in the circuit'));
    await frame.click('[data-testid="fit"]');
    await showView(frame, 'table');
    await frame.locator('tr[data-node="a0.h0"]').waitFor();
    // Ranked among all 20 candidates (graph.scores), not only the kept ones.
    assert.match((await frame.locator('tr[data-node="a0.h0"]').innerText()).replace(/\s+/g, ' '), /1 \/ 20/);
    assert.equal(await frame.locator('table.nodes img').count(), 0, 'names must never become elements');
    await showView(frame, 'charts');
    await frame.locator('[data-testid="head-heatmap"]').waitFor();
    assert.equal(await frame.locator('[data-testid="head-heatmap"] td.kept').count(), 2, 'a0.h0 and a2.h1 are marked as kept');
    assert.equal(await frame.evaluate(() => document.body.dataset['pwned'] ?? null), null);
    await showView(frame, 'graph');
  });

  it('rejects a hostile message posted to the panel', async () => {
    const before = Number((await frame.evaluate(() => document.body.dataset['rejected'])) ?? '0');
    // From the app's own window (not the host): rejected by origin.
    await frame.evaluate(() => window.postMessage({ method: 'panel/eval', params: 'alert(1)' }, '*'));
    await until('first rejection', async () => Number((await frame.evaluate(() => document.body.dataset['rejected'])) ?? '0') > before);
    // From the outer webview frame, where host messages come from: rejected by the validator.
    const hostile = {
      method: 'panel/state',
      params: { circuit: null, title: '', verification: null, runs: [], shownRuns: [], ablated: ['<script>alert(1)</script>'], pinned: [], selected: null, threshold: 0, topK: 1, view: 'graph' },
    };
    const outer = frame.parentFrame();
    assert.ok(outer, 'the webview app runs in a nested frame');
    await outer.evaluate((msg) => {
      for (const f of Array.from(document.querySelectorAll('iframe'))) f.contentWindow?.postMessage(msg, '*');
    }, hostile);
    await until('validator rejection', async () => Number((await frame.evaluate(() => document.body.dataset['rejected'])) ?? '0') > before + 1);
    const status = (await frame.textContent('[data-testid="status"]')) ?? '';
    assert.match(status, /Ignored a malformed message: .*ablated\[0\]/);
    // The panel still shows the circuit: nothing was applied.
    assert.equal(await frame.textContent('[data-testid="node-count"]'), '5');
    assert.equal(await frame.textContent('[data-testid="ablated-count"]'), '0');
  });

  it('screenshots the panel in dark and light themes', async () => {
    await setTheme(DARK);
    await screenshot(page, 'panel-dark');
    await setTheme(LIGHT);
    await screenshot(page, 'panel-light');
    await setTheme(DARK);
  });

  /** The circuit the editor discovered and saved, and the one the CLI wrote for the same settings. */
  let saved = '';
  let fromCli = '';

  it('discovers the IOI circuit in the editor and with the CLI: the same circuit.json apart from the time', async () => {
    const store = circuitStore(server);
    const existing = new Set(fs.readdirSync(store));
    await runCommandForInput(page, 'Circuit Lens: Discover Circuit…', 'Discover Circuit');
    // Fresh workspace: every setting is the default, i.e. `circuit-lens discover --task ioi`.
    await pickQuickItem(page, 'Discover', 'Discover');
    const f = await until(
      'the discovered circuit in the panel',
      async () => {
        const fr = await webviewFrame(page, '[data-testid="node-count"]');
        return ((await fr.textContent('[data-testid="title"]')) ?? '').startsWith('ioi-attnlrp') ? fr : undefined;
      },
      8 * 60_000,
      1000,
    );
    frame = f;
    const added = fs.readdirSync(store).filter((n) => !existing.has(n) && n.endsWith('.json'));
    assert.equal(added.length, 1, `new saved circuits: ${added.join(', ')}`);
    saved = path.join(store, added[0]!);
    assert.equal((await f.textContent('[data-testid="title"]'))?.trim(), added[0]!.replace(/\.json$/, ''));
    const graph = JSON.parse(fs.readFileSync(saved, 'utf8')) as CircuitGraph;
    assert.equal(Number(await f.textContent('[data-testid="node-count"]')), graph.nodes.length);
    // The panel shows the metrics measured at discovery until it is verified again.
    assert.equal(await f.textContent('[data-testid="metrics-source"]'), 'measured at discovery');
    const shownFaith = Number(await f.textContent('[data-testid="faithfulness"]'));
    assert.ok(Math.abs(shownFaith - graph.metrics!.faithfulness!) <= 5e-5, `panel ${shownFaith}, file ${graph.metrics!.faithfulness}`);

    fromCli = path.join(server.workspace, 'cli-ioi.json');
    await cli(['discover', '--task', 'ioi', '--out', fromCli]);
    assert.deepEqual(withoutTime(saved), withoutTime(fromCli), 'the editor and the CLI must find the same circuit');
    // Byte for byte too, once the time is the same: both write the documented JSON the same way.
    const cliText = fs.readFileSync(fromCli, 'utf8');
    const editorText = fs.readFileSync(saved, 'utf8');
    assert.equal(editorText.replace(/"created": "[^"]*"/, ''), cliText.replace(/"created": "[^"]*"/, ''));
  });

  it('verifies the circuit in the panel, ablates a node and sees the metric change; the CLI verifies the saved file alike', async () => {
    const f = frame;
    await f.click('[data-testid="verify"]');
    await until('the verification', async () => (await f.textContent('[data-testid="metrics-source"]')) === 'verified in this session', 5 * 60_000);
    const faith = Number(await f.textContent('[data-testid="faithfulness"]'));
    assert.ok(Number.isFinite(faith), `faithfulness ${faith}`);
    assert.match((await f.textContent('[data-testid="status"]')) ?? '', /Verified: faithfulness/);
    const out = JSON.parse(await cli(['verify', '--circuit', saved, '--task', 'ioi', '--json'])) as Record<string, unknown>;
    const cliFaith = Number(out['faithfulness'] ?? (out['metrics'] as Record<string, unknown> | undefined)?.['faithfulness']);
    assert.ok(Math.abs(cliFaith - faith) <= 1e-3 * Math.max(1, Math.abs(faith)), `the CLI verifies the panel's circuit at ${cliFaith}, the panel at ${faith}`);
    // For the README: heatmap and circuit side by side, without the side bar or progress toasts.
    await until('no toasts', async () => (await page.locator('.notifications-toasts .notification-toast').count()) === 0, 15_000).catch(() => undefined);
    await runCommand(page, 'View: Close Primary Side Bar');
    await page.keyboard.press('Escape');
    await f.click('[data-testid="fit"]');
    await screenshot(page, 'ioi-panel-dark');
    await runCommand(page, 'View: Toggle Primary Side Bar Visibility');
    // Ablate the most relevant head through the table, then verify again.
    await showView(f, 'table');
    const headRow = f.locator('table.nodes tbody tr', { has: f.locator('td', { hasText: /^head$/ }) }).first();
    await headRow.locator('input[type="checkbox"]').first().check();
    assert.equal(await f.textContent('[data-testid="ablated-count"]'), '1');
    await f.click('[data-testid="verify"]');
    const ablated = await until('the metric with the ablation', async () => {
      const v = await f.textContent('[data-testid="metric-ablated"]');
      return v && v !== '—' ? v : undefined;
    }, 5 * 60_000);
    assert.notEqual(ablated, await f.textContent('[data-testid="metric-circuit"]'));
    await showView(f, 'graph');
  });

  it('opens the CLI circuit in the panel, without the previous verification', async () => {
    await runCommand(page, 'Circuit Lens: Open Circuit Graph…');
    await pickQuickItem(page, 'cli-ioi', 'cli-ioi.json');
    const f = frame;
    await until('the CLI circuit in the panel', async () => (await f.textContent('[data-testid="title"]'))?.trim() === 'cli-ioi');
    const graph = JSON.parse(fs.readFileSync(fromCli, 'utf8')) as CircuitGraph;
    assert.equal(Number(await f.textContent('[data-testid="node-count"]')), graph.nodes.length);
    assert.equal(await f.textContent('[data-testid="metrics-source"]'), 'measured at discovery');
    assert.equal(await f.textContent('[data-testid="ablated-count"]'), '0');
    assert.doesNotMatch((await f.textContent('[data-testid="status"]')) ?? '', /Verified/);
    await showView(f, 'charts');
    await f.locator('[data-testid="chart-faithfulness"] canvas').waitFor({ state: 'visible', timeout: 20_000 });
    const sizes = (await f.locator('[data-testid="curve-table"] tr').first().locator('th[scope="col"]').allInnerTexts()).map(Number);
    assert.ok(sizes.length >= 2, `curve sizes ${sizes.join(' ')}`);
    assert.deepEqual([...new Set(sizes)], sizes, 'one point per circuit size');
    assert.ok(sizes.every((x, i) => x > 0 && (i === 0 || x > sizes[i - 1]!)), `sizes ascend on the log axis: ${sizes.join(' ')}`);
    await showView(f, 'graph');
  });

  it('prunes the embedded model to 50 % and shows the run: perplexity before/after and the sparsity curve', async () => {
    const pickRow = (filter: string, row: string) => pickQuickItem(page, filter, row);
    await runCommandForInput(page, 'Circuit Lens: Prune Model…', 'Prune Model (1/3)');
    await pickRow('attnlrp', 'attnlrp');
    await until('the sparsity box', async () => (await quickInputTitle(page)).includes('Prune Model (2/3)'), 20_000);
    await page.locator('.quick-input-widget input.input').fill('0.5');
    await page.keyboard.press('Enter');
    await until('the text picker', async () => (await quickInputTitle(page)).includes('Prune Model (3/3)'), 20_000);
    await pickRow('heldout', 'heldout.txt');
    // The notification: "Pruned 50.0 % of the weights (attnlrp, rowwise): perplexity 5.150 → x.xxx".
    const note = await until(
      'the pruning result',
      async () => (await notificationTexts(page)).find((n) => /Pruned .*perplexity/.test(n) || /Prun.*failed/.test(n)),
      5 * 60_000,
      1000,
    );
    const m = /Pruned 50\.0 % of the weights \(attnlrp, rowwise\): perplexity ([0-9.]+) → ([0-9.]+)/.exec(note);
    assert.ok(m, note);
    // Dense perplexity on the first 8,192 tokens of heldout.txt (README: 5.150).
    assert.equal(m[1], '5.150');
    const after = Number(m[2]);
    assert.ok(after > 5 && after < 20, note);
    // The panel's Charts view shows the run: the same numbers and the curve on a numeric axis.
    const f = await webviewFrame(page, '[data-testid="perplexity-after"]');
    assert.equal(Number(await f.textContent('[data-testid="perplexity-after"]')).toFixed(3), after.toFixed(3));
    assert.equal(Number(await f.textContent('[data-testid="perplexity-before"]')).toFixed(3), '5.150');
    assert.equal(await f.locator('[data-testid="run-toggle"]:checked').count(), 1);
    await f.locator('[data-testid="chart-sparsity"] canvas').waitFor({ state: 'visible', timeout: 20_000 });
    const cells = await f.locator('[data-testid="sparsity-table"] td').allInnerTexts();
    assert.ok(cells.length >= 6, `curve cells: ${cells.join(' ')}`);
    assert.equal(cells[0], '5.150');
    assert.ok(cells.some((c) => Number(c).toFixed(3) === after.toFixed(3)));
    // The circuit shown before stays in the panel (the run is overlaid, not a fake circuit).
    assert.equal((await f.textContent('[data-testid="title"]'))?.trim(), 'cli-ioi');
    await f.locator('[data-testid="chart-sparsity"]').scrollIntoViewIfNeeded();
    await screenshot(page, 'pruning-dark');
  });
});
