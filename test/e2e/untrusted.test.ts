/// <reference lib="dom" />
// page.evaluate callbacks run in the browser: DOM types for them only (tsconfig.json has none).
/**
 * Circuit Lens in an untrusted workspace (code-server with workspace trust on, the folder opened
 * in Restricted Mode): a model folder inside the workspace is loaded only after the user agrees
 * in a modal dialog; declining leaves no model loaded.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { type CodeServer, extensionLog, IOI_PROMPT, openFile, runCommand, startWorkbench, until, type Workbench } from './harness';

let server: CodeServer;
let workbench: Workbench | undefined;
let page: Page;
/** A model folder that comes with the workspace. */
const MODEL = 'models/downloaded-gpt2';
let modelDir: string;

/** The modal consent dialog (VS Code renders modal messages as `.monaco-dialog-box`). */
const dialog = () => page.locator('.monaco-dialog-box');

describe('Circuit Lens in an untrusted workspace', { timeout: 10 * 60_000 }, () => {
  before(async () => {
    workbench = await startWorkbench('untrusted', {
      // A model folder that comes with the (untrusted) workspace.
      settings: (folder) => ({ 'circuitLens.model.path': path.join(folder, MODEL), 'git.enabled': false, 'workbench.colorTheme': 'Default Dark Modern' }),
      files: { 'prompt.txt': `${IOI_PROMPT}\n` },
      modelCopies: [MODEL],
      untrusted: true,
    });
    ({ server, page } = workbench);
    modelDir = path.join(workbench.workspace, MODEL);
  });

  after(async () => {
    await workbench?.close();
  });

  it('opens the workspace in Restricted Mode', async () => {
    await until('the Restricted Mode indicator', async () => (await page.locator('.statusbar-item', { hasText: 'Restricted Mode' }).count()) > 0, 60_000);
  });

  it('asks before loading a workspace model and does not load it when declined', async () => {
    await openFile(page, 'prompt.txt');
    await runCommand(page, 'Circuit Lens: Attribute Prompt');
    await dialog().waitFor({ state: 'visible', timeout: 60_000 });
    const text = await dialog().innerText();
    assert.match(text, /comes from this untrusted workspace/);
    assert.ok(text.includes(modelDir), text);
    await dialog().locator('.monaco-button', { hasText: 'Cancel' }).click();
    await dialog().waitFor({ state: 'hidden', timeout: 10_000 });
    // Nothing loads: once the refusal is logged the command has returned, and the status bar
    // keeps "No model" and no heatmap appears.
    await until('the refusal in the log', async () => /consent to load .* refused/.test(extensionLog(server)), 30_000);
    assert.equal(await page.locator('.statusbar-item', { hasText: 'downloaded-gpt2' }).count(), 0);
    assert.ok((await page.locator('.statusbar-item', { hasText: 'No model' }).count()) > 0);
    assert.equal(await page.locator('.monaco-editor .view-overlays .cdr[class*="TextEditorDecorationType"]').count(), 0);
  });

  it('loads it once the user agrees', async () => {
    await openFile(page, 'prompt.txt');
    await runCommand(page, 'Circuit Lens: Attribute Prompt');
    await dialog().waitFor({ state: 'visible', timeout: 60_000 });
    await dialog().locator('.monaco-button', { hasText: 'Load Model' }).click();
    await until('the model in the status bar', async () => (await page.locator('.statusbar-item', { hasText: 'downloaded-gpt2' }).count()) > 0, 60_000);
    await until('the heatmap', async () => (await page.locator('.monaco-editor .view-overlays .cdr[class*="TextEditorDecorationType"]').count()) >= 5, 60_000);
  });
});
