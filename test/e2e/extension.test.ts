/**
 * Circuit Lens end to end in code-server: the packaged VSIX, the real engine worker and model,
 * the editor heatmap and the circuit panel, checked through the DOM.
 *
 *   npm run test:e2e          (installs code-server + chromium on first run; see harness.ts)
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Frame, Page } from 'playwright-core';
import {
  cliAttribute,
  type CodeServer,
  e2eDir,
  ensureInstalled,
  goTo,
  launchBrowser,
  notificationTexts,
  openFile,
  openWorkbench,
  packageVsix,
  pickQuickItem,
  runCommand,
  screenshot,
  startCodeServer,
  until,
  webviewFrame,
} from './harness';

const PROMPT = 'When Mary and John went to the store, John gave a drink to';
const DARK = 'dark';
const LIGHT = 'light';

/** Our heatmap's decoration overlays on the first line. */
const DECORATION = '.monaco-editor .view-overlays > div:first-child .cdr[class*="TextEditorDecorationType"]';

function tokenOffsets(tokens: readonly string[]): [number, number][] {
  let at = 0;
  return tokens.map((t) => {
    const span: [number, number] = [at, at + t.length];
    at += t.length;
    return span;
  });
}

let server: CodeServer;
let browser: Browser;
let page: Page;

/** A small circuit for the panel tests that do not depend on discovery. */
const fixtureCircuit = {
  id: 'fixture-ioi',
  title: 'Fixture circuit <b>not bold</b>',
  task: 'ioi',
  model: 'tiny-ioi-gpt2',
  mode: 'attnlrp',
  layers: 4,
  heads: 4,
  nodes: [
    { id: 'input', kind: 'input', layer: -1, relevance: 1 },
    { id: 'a0.h0', kind: 'head', layer: 0, head: 0, relevance: 0.9, label: '<img src=x onerror="document.body.dataset.pwned=1">' },
    { id: 'a2.h1', kind: 'head', layer: 2, head: 1, relevance: 0.5 },
    { id: 'm1', kind: 'mlp', layer: 1, relevance: 0.3 },
    { id: 'logits', kind: 'logits', layer: 4, relevance: 1 },
  ],
  edges: [
    { source: 'input', target: 'a0.h0', weight: 0.8 },
    { source: 'a0.h0', target: 'm1', weight: 0.4 },
    { source: 'm1', target: 'a2.h1', weight: -0.2 },
    { source: 'a2.h1', target: 'logits', weight: 0.6 },
  ],
};

async function hoverText(): Promise<string> {
  return until('the Circuit Lens hover', async () => {
    const hovers = await page.locator('.monaco-hover').allInnerTexts();
    return hovers.find((t) => t.includes('Circuit Lens'));
  });
}

/** Switches between the default light and dark themes (the theme picker needs the marketplace, which is offline). */
async function setTheme(theme: typeof LIGHT | typeof DARK): Promise<void> {
  const wantDark = theme === DARK;
  const isDark = async () => ((await page.locator('.monaco-workbench').getAttribute('class')) ?? '').includes('vs-dark');
  for (let attempt = 0; attempt < 4 && (await isDark()) !== wantDark; attempt++) {
    await runCommand(page, 'Preferences: Toggle between Light/Dark Themes');
    await until(`theme ${theme}`, async () => (await isDark()) === wantDark, 5000).catch(() => undefined);
  }
  assert.equal(await isDark(), wantDark, `could not switch to the ${theme} theme`);
  await page.waitForTimeout(500);
}

describe('Circuit Lens in code-server', { timeout: 15 * 60_000 }, () => {
  before(async () => {
    ensureInstalled();
    const vsix = packageVsix();
    const workspace = path.join(e2eDir, 'workspace');
    fs.rmSync(workspace, { recursive: true, force: true });
    fs.mkdirSync(workspace, { recursive: true });
    fs.writeFileSync(path.join(workspace, 'prompt.txt'), `${PROMPT}\nThe war lasted from the year 1732 to the year 17\n`);
    server = await startCodeServer(vsix, workspace, { 'workbench.colorTheme': 'Default Dark Modern', 'workbench.preferredDarkColorTheme': 'Default Dark Modern', 'workbench.preferredLightColorTheme': 'Default Light Modern', 'circuitLens.developer.testHooks': true, 'circuitLens.circuits.prompts': 16, 'circuitLens.pruning.windows': 8, 'git.enabled': false, 'git.openRepositoryInParentFolders': 'never' });
    // Seed a saved circuit so panel tests do not depend on discovery.
    const store = path.join(server.userDataDir, 'User', 'globalStorage', 'circuit-lens.circuit-lens', 'circuits');
    fs.mkdirSync(store, { recursive: true });
    fs.writeFileSync(path.join(store, 'fixture-ioi.json'), JSON.stringify(fixtureCircuit));
    browser = await launchBrowser();
    page = await openWorkbench(browser, server);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('loads the embedded model', async () => {
    await runCommand(page, 'Circuit Lens: Use Embedded Demo Model');
    await until('the model in the status bar', async () => (await page.locator('.statusbar-item', { hasText: 'tiny-ioi-gpt2' }).count()) > 0, 60_000);
  });

  it('attributes the current line from the editor context menu; heatmap, hover and CodeLens match the CLI', async () => {
    const cli = cliAttribute(PROMPT);
    const relevance = cli['token_relevance'] as number[];
    const ids = cli['ids'] as number[];
    const targetValue = cli['target_value'] as number;

    await openFile(page, 'prompt.txt');
    const line = page.locator('.monaco-editor .view-lines .view-line').first();
    await line.click({ button: 'right', position: { x: 40, y: 5 } });
    const item = page.locator('.monaco-menu .action-item', { hasText: 'Attribute with Circuit Lens' }).first();
    await item.waitFor({ state: 'visible', timeout: 10_000 });
    await item.click();

    // Decorations: background overlays from our colour buckets (adjacent tokens of one bucket merge).
    const decorated = await until('heatmap decorations', async () => {
      const n = await page.locator(DECORATION).count();
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
    }, DECORATION);
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
    await page.waitForTimeout(800); // the hover fades in
    await screenshot(page, 'heatmap-dark');
    await setTheme(LIGHT);
    await goTo(page, 1, 6);
    await runCommand(page, 'Show or Focus Hover');
    await hoverText();
    await page.waitForTimeout(800);
    await screenshot(page, 'heatmap-light');
    await setTheme(DARK);
    await page.keyboard.press('Escape');
  });

  it('cancels a long job and the host stays responsive', async () => {
    await runCommand(page, 'Circuit Lens: Run Engine Test Job (Developer)');
    const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'Engine test job' }).first();
    await toast.waitFor({ state: 'visible', timeout: 20_000 });
    await page.waitForTimeout(500);
    await toast.locator('.monaco-button', { hasText: 'Cancel' }).click();
    const t0 = Date.now();
    await toast.waitFor({ state: 'hidden', timeout: 10_000 });
    assert.ok(Date.now() - t0 < 5000, 'the job should stop within the 1 s grace period plus UI latency');
    // The next job works (a fresh worker reloads the model) and the editor still answers.
    await openFile(page, 'prompt.txt');
    await goTo(page, 1, 1);
    await runCommand(page, 'Circuit Lens: Attribute Prompt');
    await until('heatmap after cancel', async () => (await page.locator(DECORATION).count()) >= 5, 60_000);
    const errors = (await notificationTexts(page)).filter((t) => /failed|stopped/i.test(t));
    assert.deepEqual(errors, []);
  });

  let frame: Frame;

  it('opens a saved circuit in the panel and keeps model-derived text inert', async () => {
    await runCommand(page, 'Circuit Lens: Open Circuit Graph');
    const pick = page.locator('.quick-input-list .monaco-list-row', { hasText: 'Fixture circuit' }).first();
    const picked = await pick.waitFor({ state: 'visible', timeout: 5000 }).then(() => true, () => false);
    if (picked) await pickQuickItem(page, 'Fixture', 'Fixture circuit');
    frame = await webviewFrame(page, '[data-testid="node-count"]');
    await until('the fixture circuit in the panel', async () => (await frame.textContent('[data-testid="title"]'))?.includes('Fixture circuit'));
    assert.equal(await frame.textContent('[data-testid="node-count"]'), '5');
    assert.equal(await frame.locator('[data-testid="title"] b').count(), 0, 'title must be text, not HTML');
    await frame.locator('[data-testid="view-select"]').evaluate((e) => {
      (e as HTMLElement & { value: string }).value = 'table';
      e.dispatchEvent(new Event('change'));
    });
    await frame.locator('tr[data-node="a0.h0"]').waitFor();
    assert.equal(await frame.locator('table.nodes img').count(), 0, 'labels must never become elements');
    assert.equal(await frame.evaluate(() => document.body.dataset['pwned'] ?? null), null);
    await frame.locator('[data-testid="view-select"]').evaluate((e) => {
      (e as HTMLElement & { value: string }).value = 'graph';
      e.dispatchEvent(new Event('change'));
    });
  });

  it('rejects a hostile message posted to the panel', async () => {
    const before = Number((await frame.evaluate(() => document.body.dataset['rejected'])) ?? '0');
    // From the app's own window (not the host): rejected by origin.
    await frame.evaluate(() => window.postMessage({ method: 'panel/eval', params: 'alert(1)' }, '*'));
    await until('first rejection', async () => Number((await frame.evaluate(() => document.body.dataset['rejected'])) ?? '0') > before);
    // From the outer webview frame, where host messages come from: rejected by the validator.
    const hostile = { method: 'panel/state', params: { circuit: null, ablated: ['<script>alert(1)</script>'], pinned: [], selected: null, threshold: 0, topK: 1, view: 'graph' } };
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

  it('discovers the IOI circuit, verifies it, ablates a node and sees the metric change', async () => {
    await runCommand(page, 'Circuit Lens: Discover Circuit…');
    await pickQuickItem(page, 'Indirect object', 'Indirect object identification');
    const outcome = await until(
      'discovery result',
      async () => {
        const f = await webviewFrame(page, '[data-testid="node-count"]');
        const title = (await f.textContent('[data-testid="title"]')) ?? '';
        return title && !title.includes('Fixture') ? f : undefined;
      },
      5 * 60_000,
      1000,
    );
    const f = outcome;
    const nodes = Number(await f.textContent('[data-testid="node-count"]'));
    assert.ok(nodes > 2, `node count ${nodes}`);
    await f.click('[data-testid="verify"]');
    const faith1 = await until('faithfulness', async () => {
      const v = await f.textContent('[data-testid="faithfulness"]');
      return v && v !== '—' ? Number(v) : undefined;
    }, 5 * 60_000);
    assert.ok(Number.isFinite(faith1));
    const ablated1 = await f.textContent('[data-testid="metric-ablated"]');
    // For the README: heatmap and circuit side by side, without the side bar or progress toasts.
    await until('no toasts', async () => (await page.locator('.notifications-toasts .notification-toast').count()) === 0, 15_000).catch(() => undefined);
    await runCommand(page, 'View: Close Primary Side Bar');
    await page.keyboard.press('Escape');
    await page.waitForTimeout(1500);
    await screenshot(page, 'ioi-panel-dark');
    await runCommand(page, 'View: Toggle Primary Side Bar Visibility');
    // Ablate the most relevant head through the table, then verify again.
    await f.locator('[data-testid="view-select"]').evaluate((e) => {
      (e as HTMLElement & { value: string }).value = 'table';
      e.dispatchEvent(new Event('change'));
    });
    const headRow = f.locator('table.nodes tbody tr', { has: f.locator('td', { hasText: /^head$/ }) }).first();
    await headRow.locator('input[type="checkbox"]').first().check();
    assert.equal(await f.textContent('[data-testid="ablated-count"]'), '1');
    await f.click('[data-testid="verify"]');
    const ablated2 = await until('metric after ablation', async () => {
      const v = await f.textContent('[data-testid="metric-ablated"]');
      return v && v !== ablated1 && v !== '—' ? v : undefined;
    }, 5 * 60_000);
    assert.notEqual(ablated2, ablated1);
  });

  it('prunes the embedded model to 50 % and shows perplexity before/after and the sparsity curve', async () => {
    const pickRow = (filter: string, row: string) => pickQuickItem(page, filter, row);
    await runCommand(page, 'Circuit Lens: Prune Model…');
    await until('the method picker', async () => ((await page.locator('.quick-input-widget .quick-input-title').innerText().catch(() => '')) || '').includes('Prune Model (1/3)'), 20_000);
    await pickRow('attnlrp', 'attnlrp');
    await until('the sparsity box', async () => ((await page.locator('.quick-input-widget .quick-input-title').innerText().catch(() => '')) || '').includes('Prune Model (2/3)'), 20_000);
    await page.locator('.quick-input-widget input.input').fill('0.5');
    await page.keyboard.press('Enter');
    await until('the text picker', async () => ((await page.locator('.quick-input-widget .quick-input-title').innerText().catch(() => '')) || '').includes('Prune Model (3/3)'), 20_000);
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
    // The panel shows the same numbers and draws the curve.
    const f = await webviewFrame(page, '[data-testid="perplexity-after"]');
    assert.equal(Number(await f.textContent('[data-testid="perplexity-after"]')).toFixed(3), after.toFixed(3));
    assert.equal(Number(await f.textContent('[data-testid="perplexity-before"]')).toFixed(3), '5.150');
    await f.locator('[data-testid="chart-sparsity"] canvas').waitFor({ state: 'visible', timeout: 20_000 });
    const cells = await f.locator('[data-testid="sparsity-table"] td').allInnerTexts();
    assert.ok(cells.length >= 6, `curve cells: ${cells.join(' ')}`);
    assert.equal(cells[0], '5.150');
    assert.ok(cells.some((c) => Number(c).toFixed(3) === after.toFixed(3)));
    await f.locator('[data-testid="chart-sparsity"]').scrollIntoViewIfNeeded();
    await screenshot(page, 'pruning-dark');
  });
});
