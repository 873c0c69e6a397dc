/// <reference lib="dom" />
// page.evaluate callbacks run in the browser: DOM types for them only (tsconfig.json has none).
/**
 * Two prune runs overlaid in the Charts view (issue 14): the embedded model pruned to 50 % with
 * AttnLRP and with magnitude, both runs ticked, one sparsity–perplexity chart with both curves
 * and a row per run in its table; screenshots in light and dark for the README.
 * Every wait is on a state (a notification, an element), never a sleep.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Frame, Page } from 'playwright-core';
import { type CodeServer, e2eDir, ensureInstalled, launchBrowser, notificationTexts, openWorkbench, packageVsix, pickQuickItem, runCommand, screenshot, startCodeServer, until, webviewFrame } from './harness';

let server: CodeServer;
let browser: Browser;
let page: Page;
let workspace = '';

const title = async () => ((await page.locator('.quick-input-widget .quick-input-title').innerText().catch(() => '')) || '');

/** Prunes the embedded model to 50 % with `method` on heldout.txt; returns the notification. */
async function prune(method: string): Promise<string> {
  await runCommand(page, 'Circuit Lens: Prune Model…');
  await until('the method picker', async () => (await title()).includes('Prune Model (1/3)'), 30_000);
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

const isDark = async () => ((await page.locator('.monaco-workbench').getAttribute('class')) ?? '').includes('vs-dark');

async function themedScreenshot(f: Frame, name: string, dark: boolean): Promise<void> {
  for (let attempt = 0; attempt < 4 && (await isDark()) !== dark; attempt++) {
    await runCommand(page, 'Preferences: Toggle between Light/Dark Themes');
    await until('the theme', async () => (await isDark()) === dark, 5000).catch(() => undefined);
  }
  assert.equal(await isDark(), dark, 'could not switch the theme');
  await until('the panel in the theme', async () => (await f.evaluate(() => document.body.className)).includes(dark ? 'vscode-dark' : 'vscode-light'));
  await until('no toasts', async () => (await page.locator('.notifications-toasts .notification-toast').count()) === 0, 20_000).catch(() => undefined);
  await f.locator('[data-testid="chart-sparsity"]').scrollIntoViewIfNeeded();
  await screenshot(page, `${name}-${dark ? 'dark' : 'light'}`);
}

describe('prune runs overlaid in the Charts view', { timeout: 15 * 60_000 }, () => {
  before(async () => {
    ensureInstalled();
    const vsix = packageVsix();
    workspace = path.join(e2eDir, `workspace-runs-${process.pid}`);
    fs.rmSync(workspace, { recursive: true, force: true });
    fs.mkdirSync(workspace, { recursive: true });
    server = await startCodeServer(vsix, workspace, { 'workbench.colorTheme': 'Default Dark Modern', 'workbench.preferredDarkColorTheme': 'Default Dark Modern', 'workbench.preferredLightColorTheme': 'Default Light Modern', 'circuitLens.pruning.windows': 8, 'git.enabled': false });
    browser = await launchBrowser();
    page = await openWorkbench(browser, server);
    await page.setViewportSize({ width: 1200, height: 900 });
    await runCommand(page, 'View: Close Primary Side Bar');
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    if (workspace) fs.rmSync(workspace, { recursive: true, force: true });
  });

  it('prunes with AttnLRP and with magnitude and overlays both runs', async () => {
    await runCommand(page, 'Circuit Lens: Use Embedded Demo Model');
    await until('the model in the status bar', async () => (await page.locator('.statusbar-item', { hasText: 'tiny-ioi-gpt2' }).count()) > 0, 60_000);
    const first = await prune('attnlrp');
    const second = await prune('magnitude');
    const ppl = (note: string) => /perplexity ([0-9.]+) → ([0-9.]+)/.exec(note)!.slice(1).map(Number) as [number, number];
    const [dense, afterAttn] = ppl(first);
    const [dense2, afterMag] = ppl(second);
    assert.equal(dense, dense2, 'both runs start from the same dense model');
    const f = await webviewFrame(page, '[data-testid="run-toggle"]');
    await until('two runs listed', async () => (await f.locator('[data-testid="run-toggle"]').count()) === 2, 30_000);
    // Tick every run that is not shown yet, then wait for the chart to carry both.
    for (const cb of await f.locator('[data-testid="run-toggle"]').all()) if (!(await cb.isChecked())) await cb.check();
    await until('both runs ticked', async () => (await f.locator('[data-testid="run-toggle"]:checked').count()) === 2, 30_000);
    await f.locator('[data-testid="chart-sparsity"] canvas').waitFor({ state: 'visible', timeout: 30_000 });
    const table = await until('both runs in the sparsity table', async () => {
      // One table per shown run (its curve, 3 decimals as the notification).
      const tables = (await f.locator('[data-testid="sparsity-table"]').allInnerTexts()).map((t) => t.replace(/\s+/g, ' '));
      const has = (x: number) => tables.some((t) => t.includes(x.toFixed(3)));
      return tables.length === 2 && has(afterAttn) && has(afterMag) ? tables.join(' | ') : undefined;
    }, 30_000);
    process.stderr.write(`[e2e] dense ${dense}, attnlrp → ${afterAttn}, magnitude → ${afterMag}; table: ${table}\n`);
    await themedScreenshot(f, 'runs-overlay', true);
    await themedScreenshot(f, 'runs-overlay', false);
  });
});
