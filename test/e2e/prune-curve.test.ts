/// <reference lib="dom" />
// page.evaluate callbacks run in the browser: DOM types for them only (tsconfig.json has none).
/**
 * SparC³'s circuit protocol in the editor (issues 11 + 14): "Circuit Lens: SparC³ Prune Curve…" on
 * the embedded model with the small editor defaults (structured; AttnLRP, gradient, activation, Wanda, random;
 * 3 seeds × 16 prompts),
 * then the Charts view must hold one accuracy-vs-sparsity line per method — read back from the
 * Chart.js datasets the view drew (canvas data-lines) and from the table of numbers — and one
 * circuit marker per method. Screenshots in light and dark go to docs/images for the README.
 * Every wait is on a state (a notification, an element), never a sleep.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Frame, Page } from 'playwright-core';
import { acceptQuickInput, notificationTexts, quickInputTitle, root, runCommandForInput, startWorkbench, THEME_SETTINGS, themedScreenshot, until, useEmbeddedModel, webviewFrame, type Workbench } from './harness';

let workbench: Workbench | undefined;
let page: Page;

const title = () => quickInputTitle(page);

/** Screenshot of the workbench in one theme, copied to docs/images/prune-curve-{light,dark}.png. */
async function docScreenshot(f: Frame, dark: boolean): Promise<void> {
  const file = await themedScreenshot(page, f, 'prune-curve', dark, '[data-testid="chart-prune-curve"]');
  fs.copyFileSync(file, path.join(root, 'docs', 'images', path.basename(file)));
}

/** Runs SparC³ Prune Curve… with the preselected modes and methods and `seeds` seeds; returns its notification. */
async function pruneCurve(seeds: number): Promise<string> {
  const before = new Set(await notificationTexts(page));
  await runCommandForInput(page, 'Circuit Lens: SparC³ Prune Curve…', 'SparC³ Prune Curve (1/3)');
  // Multi-select pickers: Enter accepts the preselected items (structured; all five methods).
  await acceptQuickInput(page, 'SparC³ Prune Curve (1/3)');
  await acceptQuickInput(page, 'SparC³ Prune Curve (2/3)');
  await until('the seed box', async () => (await title()).includes('SparC³ Prune Curve (3/3)'), 30_000);
  await page.locator('.quick-input-widget input.input').fill(String(seeds));
  await acceptQuickInput(page, 'SparC³ Prune Curve (3/3)');
  return until(
    'the prune-curve result',
    async () => {
      const notes = await notificationTexts(page);
      const failed = notes.find((n) => /prune curves.*failed/i.test(n));
      if (failed) throw new Error(failed);
      return notes.find((n) => n.startsWith('SparC³ prune curves: ') && !before.has(n));
    },
    5 * 60_000,
    1000,
  );
}

describe('SparC³ prune curves in the Charts view', { timeout: 10 * 60_000 }, () => {
  before(async () => {
    workbench = await startWorkbench('prune-curve', {
      settings: { ...THEME_SETTINGS, 'git.enabled': false },
      viewport: { width: 1200, height: 900 },
      closeSideBar: true,
    });
    ({ page } = workbench);
  });

  after(async () => {
    await workbench?.close();
  });

  it('runs the command with the small defaults and charts one line per method with its circuit', async () => {
    await useEmbeddedModel(page);
    const note = await pruneCurve(3);
    const methods = ['attnlrp', 'gradient', 'activation', 'wanda', 'random'];
    const f = await webviewFrame(page, '[data-testid="chart-prune-curve"]');
    const canvas = f.locator('[data-testid="chart-prune-curve"] canvas[data-lines]');
    await canvas.waitFor({ state: 'visible', timeout: 30_000 });
    const lines = JSON.parse((await canvas.getAttribute('data-lines')) ?? '[]') as string[];
    assert.deepEqual(lines, methods, 'one line per method, drawn from the run');
    assert.equal(await canvas.getAttribute('data-circuits'), String(methods.length), 'one circuit marker per method');
    const rows = f.locator('[data-testid="prune-curve-row"]');
    assert.deepEqual(await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-method'))), methods);
    // The table's circuit per method is the notification's ("S attnlrp 90 %").
    for (const m of methods) {
      const cell = await f.locator(`[data-testid="prune-curve-row"][data-method="${m}"] [data-testid="prune-curve-circuit"]`).innerText();
      const pct = /^(\d+) % pruned/.exec(cell)?.[1];
      assert.ok(pct !== undefined && note.includes(`S ${m} ${pct} %`), `${m}: table "${cell}" vs notification "${note}"`);
    }
    const box = await f.locator('[data-testid="chart-prune-curve"] .chart-box').boundingBox();
    assert.ok(box && box.width > 200 && box.height > 200, `chart box ${JSON.stringify(box)}`);
    process.stderr.write(`[e2e] ${note}\n`);
    await docScreenshot(f, true);
    await docScreenshot(f, false);

    // A second run (1 seed) overlaid on the first: both ticked, one chart, one line per method and run.
    await until('no toasts', async () => (await page.locator('.notifications-toasts .notification-toast').count()) === 0, 20_000).catch(() => undefined);
    await pruneCurve(1);
    const g = await webviewFrame(page, '[data-testid="run-toggle"]');
    await until('two runs listed', async () => (await g.locator('[data-testid="run-toggle"]').count()) === 2, 30_000);
    for (const cb of await g.locator('[data-testid="run-toggle"]').all()) if (!(await cb.isChecked())) await cb.check();
    const overlaid = await until('both runs in one chart', async () => {
      const c = g.locator('[data-testid="chart-prune-curve"] canvas[data-lines]');
      if ((await c.count()) !== 1) return undefined;
      const drawn = JSON.parse((await c.getAttribute('data-lines')) ?? '[]') as string[];
      return drawn.length === 2 * methods.length ? drawn : undefined;
    }, 30_000);
    for (const m of methods) assert.equal(overlaid.filter((l) => l.startsWith(`${m} · `)).length, 2, `${m} once per run: ${overlaid.join(' | ')}`);
    assert.equal(await g.locator('[data-testid="prune-curve-table"]').count(), 2, 'a table per run');
  });
});
