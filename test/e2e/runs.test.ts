/// <reference lib="dom" />
// page.evaluate callbacks run in the browser: DOM types for them only (tsconfig.json has none).
/**
 * Two prune runs and one correct run side by side in the Charts view (issue 14): the embedded
 * model pruned to 50 % with AttnLRP and with magnitude, and corrected (48 MLP neurons removed
 * for toxic.jsonl, heldout.txt kept); all three runs ticked, one sparsity–perplexity chart with
 * both curves and a table per prune run, and the correction's before/after table with the numbers
 * of its notification; screenshots in light and dark for the README.
 * Every wait is on a state (a notification, an element), never a sleep.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { notificationTexts, pickQuickItem, quickInputTitle, runCommandForInput, startWorkbench, THEME_SETTINGS, themedScreenshot, until, useEmbeddedModel, webviewFrame, type Workbench } from './harness';

let workbench: Workbench | undefined;
let page: Page;

const title = () => quickInputTitle(page);

/** Prunes the embedded model to 50 % with `method` on heldout.txt; returns the notification. */
async function prune(method: string): Promise<string> {
  await runCommandForInput(page, 'Circuit Lens: Prune Model…', 'Prune Model (1/3)');
  await pickQuickItem(page, method, method);
  await until('the sparsity box', async () => (await title()).includes('Prune Model (2/3)'), 30_000);
  await page.locator('.quick-input-widget input.input').fill('0.5');
  await page.keyboard.press('Enter');
  await until('the text picker', async () => (await title()).includes('Prune Model (3/3)'), 30_000);
  await pickQuickItem(page, 'heldout', 'heldout.txt');
  return until(
    `the ${method} pruning result`,
    async () => {
      const notes = await notificationTexts(page);
      const failed = notes.find((n) => /Prun.*failed/.test(n));
      if (failed) throw new Error(failed);
      return notes.find((n) => /Pruned .*perplexity/.test(n) && n.includes(`(${method},`));
    },
    5 * 60_000,
    1000,
  );
}

/** Corrects the embedded model (toxic.jsonl against heldout.txt, 48 neurons); returns the notification. */
async function correct(): Promise<string> {
  await runCommandForInput(page, 'Circuit Lens: Correct Model…', 'Correct Model (1/3)');
  await pickQuickItem(page, 'toxic', 'toxic.jsonl');
  await until('the general-data picker', async () => (await title()).includes('Correct Model (2/3)'), 30_000);
  await pickQuickItem(page, 'heldout', 'heldout.txt');
  await until('the neuron count', async () => (await title()).includes('Correct Model (3/3)'), 30_000);
  await page.locator('.quick-input-widget input.input').fill('48');
  await page.keyboard.press('Enter');
  return until(
    'the correction result',
    async () => {
      const notes = await notificationTexts(page);
      const failed = notes.find((n) => /Correct.*failed/.test(n));
      if (failed) throw new Error(failed);
      return notes.find((n) => /^Correction: /.test(n));
    },
    5 * 60_000,
    1000,
  );
}

describe('prune and correct runs side by side in the Charts view', { timeout: 15 * 60_000 }, () => {
  before(async () => {
    workbench = await startWorkbench('runs', {
      settings: { ...THEME_SETTINGS, 'circuitLens.pruning.windows': 8, 'git.enabled': false },
      viewport: { width: 1200, height: 900 },
      closeSideBar: true,
    });
    ({ page } = workbench);
  });

  after(async () => {
    await workbench?.close();
  });

  it('prunes with AttnLRP and with magnitude, corrects, and shows the three runs together', async () => {
    await useEmbeddedModel(page);
    const first = await prune('attnlrp');
    const second = await prune('magnitude');
    const ppl = (note: string) => /perplexity ([0-9.]+) → ([0-9.]+)/.exec(note)!.slice(1).map(Number) as [number, number];
    const [dense, afterAttn] = ppl(first);
    const [dense2, afterMag] = ppl(second);
    assert.equal(dense, dense2, 'both runs start from the same dense model');
    // "Correction: 48 of 2048 neurons removed · undesired probability 0.123 → 0.045, general perplexity 5.150 → 5.301"
    const corrected = await correct();
    const change = (name: string) => {
      const m = new RegExp(`${name} ([0-9.e+-]+) → ([0-9.e+-]+)`).exec(corrected);
      assert.ok(m, `${name} in "${corrected}"`);
      return [m[1]!, m[2]!] as const;
    };
    const [undesiredBefore, undesiredAfter] = change('undesired probability');
    const [generalBefore] = change('general perplexity');
    const f = await webviewFrame(page, '[data-testid="run-toggle"]');
    await until('three runs listed', async () => (await f.locator('[data-testid="run-toggle"]').count()) === 3, 30_000);
    // Tick every run that is not shown yet, then wait for the charts to carry all three.
    for (const cb of await f.locator('[data-testid="run-toggle"]').all()) if (!(await cb.isChecked())) await cb.check();
    await until('all runs ticked', async () => (await f.locator('[data-testid="run-toggle"]:checked').count()) === 3, 30_000);
    await f.locator('[data-testid="chart-sparsity"] canvas').waitFor({ state: 'visible', timeout: 30_000 });
    const table = await until('both prune runs in the sparsity tables', async () => {
      // One table per shown prune run (its curve, 3 decimals as the notification).
      const tables = (await f.locator('[data-testid="sparsity-table"]').allInnerTexts()).map((t) => t.replace(/\s+/g, ' '));
      const has = (x: number) => tables.some((t) => t.includes(x.toFixed(3)));
      return tables.length === 2 && has(afterAttn) && has(afterMag) ? tables.join(' | ') : undefined;
    }, 30_000);
    // The correction beside them: its before/after table with the notification's numbers, and its chart.
    const correction = f.locator('[data-testid="chart-correction"]');
    await until('the correction chart', async () => (await correction.count()) === 1, 30_000);
    await correction.locator('canvas').waitFor({ state: 'visible', timeout: 30_000 });
    const row = (metric: string) => correction.locator(`[data-testid="correction-table"] tr[data-metric="${metric}"] td`).allInnerTexts();
    const undesired = await row('undesired_probability');
    assert.deepEqual(undesired.slice(0, 2), [undesiredBefore, undesiredAfter]);
    assert.ok(Number(undesiredAfter) < Number(undesiredBefore), `the correction lowers the undesired probability: ${corrected}`);
    const perplexity = await row('general_perplexity');
    assert.equal(perplexity[0], generalBefore);
    // All three on screen together: the sparsity chart and the correction chart are both rendered in the one Charts view.
    const boxes = await Promise.all(['chart-sparsity', 'chart-correction'].map((id) => f.locator(`[data-testid="${id}"]`).boundingBox()));
    assert.ok(boxes.every((b) => b && b.width > 100 && b.height > 100), `chart boxes ${JSON.stringify(boxes)}`);
    process.stderr.write(`[e2e] dense ${dense}, attnlrp → ${afterAttn}, magnitude → ${afterMag}; ${corrected}; table: ${table}\n`);
    await themedScreenshot(page, f, 'runs-overlay', true, '[data-testid="chart-correction"]');
    await themedScreenshot(page, f, 'runs-overlay', false, '[data-testid="chart-correction"]');
  });
});
