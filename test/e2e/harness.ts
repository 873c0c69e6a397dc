/// <reference lib="dom" />
// page.evaluate callbacks run in the browser: DOM types for them only (tsconfig.json has none).
/**
 * End-to-end harness: code-server 4.100.3 (VS Code's workbench in a browser, with a real Node
 * extension host) driven by playwright-core in Debian's Chromium. Why this setup: VS Code desktop
 * cannot be downloaded without network access, and code-server 4.101+ needs Node 22 (this project
 * runs on Node 20); test/e2e/install-code-server.sh installs it.
 *
 * Environment:
 *   CL_E2E_DIR       state folder (default .e2e/ in the repo; git-ignored)
 *   CL_E2E_VSIX      use this VSIX instead of packaging one
 *   CL_E2E_HEADFUL=1 show the browser (needs a display)
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { chromium, type Browser, type Frame, type Locator, type Page } from 'playwright-core';
import { buildCircuitGraph, selectNodes, validateCircuitGraph, type CircuitGraph } from '../../src/circuits/discovery/graph';
import { circuitFileText } from '../../src/pipelines/exports';

export const root = path.resolve(__dirname, '../..');
export const e2eDir = process.env['CL_E2E_DIR'] ?? path.join(root, '.e2e');
export const codeServerBin = path.join(e2eDir, 'code-server', 'node_modules', '.bin', 'code-server');
export const screenshotsDir = path.join(root, 'test', 'e2e', 'screenshots');
const CHROMIUM = '/usr/bin/chromium';

function log(msg: string): void {
  process.stderr.write(`[e2e] ${msg}\n`);
}

/** Installs code-server and Chromium when missing (idempotent; about 3 minutes the first time). */
export function ensureInstalled(): void {
  if (fs.existsSync(codeServerBin) && fs.existsSync(CHROMIUM)) return;
  log('installing code-server and chromium (first run only)…');
  execFileSync('bash', [path.join(root, 'test/e2e/install-code-server.sh'), path.join(e2eDir, 'code-server')], { stdio: 'inherit' });
}

/**
 * What goes into the VSIX, for its cache key: the bundle's sources, the packaged files and the
 * packaging set-up. docs/images is left out: the suites rewrite their screenshots there while
 * they run, and the images only decorate the extension's README page.
 */
const VSIX_INPUTS = ['src', 'webview', 'media', 'models/tiny-ioi-gpt2', 'package.json', 'package-lock.json', 'README.md', '.vscodeignore', 'esbuild.mjs', 'scripts/package.mjs'];

function vsixKey(): string {
  const hash = createHash('sha256');
  const add = (rel: string) => {
    const abs = path.join(root, rel);
    if (!fs.existsSync(abs)) return;
    if (fs.statSync(abs).isDirectory()) {
      for (const name of fs.readdirSync(abs).sort()) add(path.join(rel, name));
      return;
    }
    hash.update(`${rel}\0${fs.statSync(abs).size}\0`).update(fs.readFileSync(abs));
  };
  VSIX_INPUTS.forEach(add);
  return hash.digest('hex').slice(0, 16);
}

/**
 * Builds and packages the linux-x64 VSIX (or uses CL_E2E_VSIX), once per content: every suite
 * runs in its own process and asks for it, and packaging took 6.5 s (idle) each time.
 */
export function packageVsix(): string {
  const given = process.env['CL_E2E_VSIX'];
  if (given) return path.resolve(given);
  const version = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version as string;
  const name = `circuit-lens-linux-x64-${version}.vsix`;
  const dir = path.join(e2eDir, 'vsix', vsixKey());
  if (fs.existsSync(path.join(dir, name))) return path.join(dir, name);
  log('packaging the VSIX…');
  // Packed aside and renamed into place: a half-written package is never taken for a finished one.
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const tmp = fs.mkdtempSync(path.join(e2eDir, 'vsix-tmp-'));
  try {
    execFileSync(process.execPath, [path.join(root, 'scripts/package.mjs'), '--target', 'linux-x64', '--out', tmp], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
    // Packages of older sources are not needed again.
    for (const old of fs.readdirSync(path.dirname(dir))) fs.rmSync(path.join(path.dirname(dir), old), { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return path.join(dir, name);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export interface CodeServer {
  readonly url: string;
  readonly userDataDir: string;
  readonly workspace: string;
  readonly logFile: string;
  setSettings(patch: Record<string, unknown>): void;
  stop(): Promise<void>;
}

export interface StartOptions {
  /**
   * Keep workspace trust on (code-server's default) and open the workspace untrusted, in
   * Restricted Mode, without the startup prompt. Default: trust disabled (everything trusted).
   */
  readonly untrusted?: boolean;
}

/** A fresh user-data dir with the VSIX installed, and code-server serving `workspace`. */
export async function startCodeServer(vsix: string, workspace: string, settings: Record<string, unknown>, options: StartOptions = {}): Promise<CodeServer> {
  const userDataDir = path.join(e2eDir, `user-${process.pid}`);
  fs.rmSync(userDataDir, { recursive: true, force: true });
  const extDir = path.join(userDataDir, 'ext');
  fs.mkdirSync(path.join(userDataDir, 'User'), { recursive: true });
  const settingsFile = path.join(userDataDir, 'User', 'settings.json');
  let current: Record<string, unknown> = {
    'workbench.startupEditor': 'none',
    'workbench.welcomePage.walkthroughs.openOnInstall': false,
    'workbench.tips.enabled': false,
    ...(options.untrusted
      ? { 'security.workspace.trust.enabled': true, 'security.workspace.trust.startupPrompt': 'never', 'security.workspace.trust.banner': 'never' }
      : { 'security.workspace.trust.enabled': false }),
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'telemetry.telemetryLevel': 'off',
    'editor.hover.delay': 100,
    'editor.minimap.enabled': false,
    'window.commandCenter': false,
    ...settings,
  };
  fs.writeFileSync(settingsFile, JSON.stringify(current, null, 1));
  // Machine-scoped settings of the code-server host (e.g. circuitLens.model.path) are read from here.
  fs.mkdirSync(path.join(userDataDir, 'Machine'), { recursive: true });
  const machine = Object.fromEntries(Object.entries(settings).filter(([key]) => key.startsWith('circuitLens.')));
  fs.writeFileSync(path.join(userDataDir, 'Machine', 'settings.json'), JSON.stringify(machine, null, 1));
  log(`installing ${path.basename(vsix)} into code-server…`);
  execFileSync(codeServerBin, ['--user-data-dir', userDataDir, '--extensions-dir', extDir, '--install-extension', vsix], { stdio: ['ignore', 'ignore', 'inherit'] });
  const port = await freePort();
  const logFile = path.join(userDataDir, 'code-server.log');
  const out = fs.openSync(logFile, 'a');
  const proc: ChildProcess = spawn(
    codeServerBin,
    [
      '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--disable-telemetry', '--disable-update-check',
      ...(options.untrusted ? [] : ['--disable-workspace-trust']),
      '--disable-getting-started-override', '--user-data-dir', userDataDir, '--extensions-dir', extDir, workspace,
    ],
    // Its own process group, so stop() also ends the server's helpers (file watchers, extension host).
    { stdio: ['ignore', out, out], detached: true },
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) break;
    } catch {
      /* not up yet */
    }
    if (proc.exitCode !== null) throw new Error(`code-server exited (${proc.exitCode}); see ${logFile}`);
    if (Date.now() > deadline) throw new Error(`code-server did not start in 60 s; see ${logFile}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  log(`code-server up at ${url} (pid ${proc.pid})`);
  return {
    url,
    userDataDir,
    workspace,
    logFile,
    setSettings(patch) {
      current = { ...current, ...patch };
      fs.writeFileSync(settingsFile, JSON.stringify(current, null, 1));
    },
    async stop() {
      const group = (signal: NodeJS.Signals) => {
        try {
          process.kill(-proc.pid!, signal);
        } catch {
          /* already gone */
        }
      };
      if (proc.exitCode === null) {
        group('SIGTERM');
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 5000);
          proc.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
        });
      }
      group('SIGKILL');
    },
  };
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: process.env['CL_E2E_HEADFUL'] !== '1',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

export async function openWorkbench(browser: Browser, server: CodeServer): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(`${server.url}/?folder=${encodeURIComponent(server.workspace)}`);
  await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
  return page;
}

/** Waits until `fn` returns a truthy value (polling), or throws with `what`. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 30_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastErr ? ` (last error: ${(lastErr as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Runs a command from the palette by its full title ("Circuit Lens: Attribute Prompt"). Retries
 * until the command is listed: contributed commands appear only once the extension host has
 * scanned extensions.
 */
export async function runCommand(page: Page, title: string, timeoutMs = 60_000): Promise<void> {
  await until(
    `command "${title}" in the palette`,
    async () => {
      await page.keyboard.press('Escape');
      await page.keyboard.press('Control+Shift+P');
      const input = page.locator('.quick-input-widget input.input');
      await input.waitFor({ state: 'visible', timeout: 5000 });
      await input.fill(`>${title}`);
      // Enter runs the focused row, which is not yet the matching one while the list still shows
      // the recently used commands from before the filter applied (one of them may be ours,
      // visible but not focused): wait until the focused row is the command itself.
      const focused = async () => {
        const row = page.locator('.quick-input-list .monaco-list-row.focused').first();
        if (!(await row.isVisible().catch(() => false))) return false;
        const label = (await row.getAttribute('aria-label')) ?? (await row.innerText());
        return label.includes(title);
      };
      const ready = await until('the command focused', focused, 3000, 100).catch(() => false);
      if (!ready || (await input.inputValue()) !== `>${title}`) return false;
      await page.keyboard.press('Enter');
      return true;
    },
    timeoutMs,
    500,
  );
}

/** The title of the open quick input, or '' when none is open (a closed one stays in the DOM, hidden, with its last title). */
export async function quickInputTitle(page: Page): Promise<string> {
  if (!(await page.locator('.quick-input-widget').isVisible().catch(() => false))) return '';
  return (await page.locator('.quick-input-widget .quick-input-title').innerText().catch(() => '')) || '';
}

/**
 * Runs a command that asks for input and waits for its first step (`stepTitle`). If the step
 * does not show within `retryMs` (under load an Enter in the palette can land while the list
 * re-renders and run another row), the command is run again: a second palette closes any late
 * input of the first, so at most one is left open.
 */
export async function runCommandForInput(page: Page, title: string, stepTitle: string, attempts = 3, retryMs = 20_000): Promise<void> {
  const shown = async () => (await quickInputTitle(page)).includes(stepTitle);
  for (let attempt = 1; ; attempt++) {
    await runCommand(page, title);
    const ok = await until(`the quick input "${stepTitle}"`, shown, retryMs).catch((err: Error) => {
      if (attempt >= attempts) throw err;
      process.stderr.write(`[e2e] "${title}" showed no "${stepTitle}" within ${retryMs / 1000} s (attempt ${attempt}); running it again\n`);
      return false;
    });
    if (ok) return;
  }
}

/**
 * Opens the context menu on `target` (right click at `position`) and runs its item `label`: the
 * item is hovered until the menu focuses it, then Enter. A click does not do: the workbench's
 * menu can swallow a click that comes within a few tens of milliseconds of it opening (seen
 * here: the menu stayed open and the command never ran), and Enter on the focused item cannot
 * be swallowed that way.
 */
export async function runContextMenuItem(page: Page, target: Locator, position: { x: number; y: number }, label: string): Promise<void> {
  await target.click({ button: 'right', position });
  const item = page.locator('.monaco-menu .action-item', { hasText: label }).first();
  await item.waitFor({ state: 'visible', timeout: 10_000 });
  await item.hover();
  await until(`"${label}" focused in the context menu`, async () => ((await item.getAttribute('class')) ?? '').split(/\s+/).includes('focused'), 10_000);
  await page.keyboard.press('Enter');
  await item.waitFor({ state: 'hidden', timeout: 10_000 });
}

/**
 * Picks a row of the open quick pick by filtering and pressing Enter. Typing is steadier than
 * clicking: a notification or the panel taking focus can make a row momentarily not clickable.
 */
export async function pickQuickItem(page: Page, filter: string, rowText: string, timeoutMs = 30_000): Promise<void> {
  await until(
    `quick pick row "${rowText}"`,
    async () => {
      const input = page.locator('.quick-input-widget input.input');
      try {
        await input.waitFor({ state: 'visible', timeout: 5000 });
        await input.fill(filter);
        await page.locator('.quick-input-list .monaco-list-row', { hasText: rowText }).first().waitFor({ state: 'visible', timeout: 3000 });
      } catch {
        return false;
      }
      await page.keyboard.press('Enter');
      return true;
    },
    timeoutMs,
    500,
  );
}

/**
 * Accepts the open quick pick or input box whose title contains `stepTitle` (a multi-select's
 * preselected items, an input's typed value) and waits until it is gone. Enter goes to the
 * quick input only when it has focus, and a toast can take focus just as it opens; so the input
 * is focused and Enter pressed again while the same step is still showing (never after it
 * changed, so the next step is never accepted by mistake).
 */
export async function acceptQuickInput(page: Page, stepTitle: string, timeoutMs = 30_000): Promise<void> {
  const title = () => quickInputTitle(page);
  await until(`the quick input "${stepTitle}"`, async () => (await title()).includes(stepTitle), timeoutMs);
  await until(
    `the quick input "${stepTitle}" to be accepted`,
    async () => {
      if (!(await title()).includes(stepTitle)) return true;
      await page.locator('.quick-input-widget input.input').focus().catch(() => undefined);
      await page.keyboard.press('Enter');
      return until('the next step', async () => !(await title()).includes(stepTitle), 3000).catch(() => false);
    },
    timeoutMs,
    250,
  );
}

/** Opens a workspace file by name through Quick Open. */
export async function openFile(page: Page, name: string): Promise<void> {
  await page.keyboard.press('Escape');
  await page.keyboard.press('Control+P');
  const input = page.locator('.quick-input-widget input.input');
  await input.waitFor({ state: 'visible' });
  await input.fill(name);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: name }).first().waitFor({ state: 'visible' });
  await page.keyboard.press('Enter');
  await page.locator(`.tabs-container .tab[aria-label*="${name}"]`).first().waitFor({ state: 'visible' });
  await page.locator('.monaco-editor .view-lines').first().waitFor({ state: 'visible' });
}

/** Moves the cursor with Go to Line/Column (`line:column`, 1-based). */
export async function goTo(page: Page, line: number, column: number): Promise<void> {
  await page.locator('.monaco-editor .view-lines').first().click();
  await page.keyboard.press('Control+G');
  const input = page.locator('.quick-input-widget input.input');
  await input.waitFor({ state: 'visible' });
  await input.fill(`:${line}:${column}`);
  await page.keyboard.press('Enter');
}

/** The frame of our webview app (webviews are nested iframes). */
export async function webviewFrame(page: Page, selector = '#app'): Promise<Frame> {
  return until(
    'the circuit panel webview',
    async () => {
      for (const f of page.frames()) {
        try {
          if (await f.$(selector)) return f;
        } catch {
          /* detached */
        }
      }
      return undefined;
    },
    60_000,
    500,
  );
}

export async function notificationTexts(page: Page): Promise<string[]> {
  return page.locator('.notifications-toasts .notification-list-item-message').allInnerTexts();
}

export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(screenshotsDir, { recursive: true });
  const file = path.join(screenshotsDir, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/**
 * Settings that give the workbench the default dark theme and the default light one to toggle
 * to (the theme picker needs the marketplace, which is offline).
 */
export const THEME_SETTINGS = {
  'workbench.colorTheme': 'Default Dark Modern',
  'workbench.preferredDarkColorTheme': 'Default Dark Modern',
  'workbench.preferredLightColorTheme': 'Default Light Modern',
} as const;

const isDarkTheme = async (page: Page) => ((await page.locator('.monaco-workbench').getAttribute('class')) ?? '').includes('vs-dark');

/** Switches the workbench to the dark or the light theme of `THEME_SETTINGS` and waits until it has it. */
export async function setDarkTheme(page: Page, dark: boolean): Promise<void> {
  for (let attempt = 0; attempt < 4 && (await isDarkTheme(page)) !== dark; attempt++) {
    await runCommand(page, 'Preferences: Toggle between Light/Dark Themes');
    await until('the theme', async () => (await isDarkTheme(page)) === dark, 5000).catch(() => undefined);
  }
  if ((await isDarkTheme(page)) !== dark) throw new Error(`could not switch to the ${dark ? 'dark' : 'light'} theme`);
}

/**
 * A screenshot of the workbench for the README in one theme, once the webview in `frame` carries
 * the theme's class (its app restyles from it) and no toast covers it; `scrollTo` is brought into
 * view first. Returns the file.
 */
export async function themedScreenshot(page: Page, frame: Frame, name: string, dark: boolean, scrollTo?: string): Promise<string> {
  await setDarkTheme(page, dark);
  await until(`the panel in the ${dark ? 'dark' : 'light'} theme`, async () => (await frame.evaluate(() => document.body.className)).includes(dark ? 'vscode-dark' : 'vscode-light'));
  await until('no toasts', async () => (await page.locator('.notifications-toasts .notification-toast').count()) === 0, 20_000).catch(() => undefined);
  if (scrollTo) await frame.locator(scrollTo).scrollIntoViewIfNeeded();
  return screenshot(page, `${name}-${dark ? 'dark' : 'light'}`);
}

/** What the extension has written to its log channel so far (the "Circuit Lens" output, as files under the user-data dir). */
export function extensionLog(server: CodeServer): string {
  const logs = path.join(server.userDataDir, 'logs');
  if (!fs.existsSync(logs)) return '';
  const files = (fs.readdirSync(logs, { recursive: true }) as string[]).filter((f) => f.endsWith(`${path.sep}Circuit Lens.log`));
  return files.map((f) => fs.readFileSync(path.join(logs, f), 'utf8')).join('\n');
}

/** Loads the embedded demo model from the palette and waits for it in the status bar. */
export async function useEmbeddedModel(page: Page): Promise<void> {
  await runCommand(page, 'Circuit Lens: Use Embedded Demo Model');
  await until('the model in the status bar', async () => (await page.locator('.statusbar-item', { hasText: 'tiny-ioi-gpt2' }).count()) > 0, 60_000);
}

/** The CLI's JSON for a prompt (the e2e reference numbers). */
export function cliAttribute(prompt: string, extra: string[] = []): Record<string, unknown> {
  const out = execFileSync(process.execPath, [path.join(root, 'dist/cli.js'), 'attribute', '--prompt', prompt, '--json', ...extra], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  return JSON.parse(out) as Record<string, unknown>;
}

/** Runs the CLI (`dist/cli.js`) without blocking the test process; resolves to its stdout. */
export async function cli(args: readonly string[]): Promise<string> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [path.join(root, 'dist/cli.js'), ...args], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`circuit-lens ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** Where the extension keeps its saved circuits (one circuit graph JSON file each). */
export function circuitStore(server: CodeServer): string {
  return path.join(server.userDataDir, 'User', 'globalStorage', 'circuit-lens.circuit-lens', 'circuits');
}

/** The files of the embedded model that a copy of it needs. */
const EMBEDDED_MODEL_FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt'];

/** One suite's code-server, browser and workbench page over a workspace of its own. */
export interface Workbench {
  readonly server: CodeServer;
  readonly page: Page;
  /** The opened folder: this suite's and this process's own (another e2e run on the machine must not share it). */
  readonly workspace: string;
  /** Closes the browser, stops code-server and removes the workspace. */
  close(): Promise<void>;
}

export interface WorkbenchOptions extends StartOptions {
  /** User settings, beside the harness's own; a function of the workspace folder where a setting names a path in it. */
  readonly settings: Record<string, unknown> | ((workspace: string) => Record<string, unknown>);
  /** Text files written into the workspace before the server starts, by relative path. */
  readonly files?: Readonly<Record<string, string>>;
  /** Workspace folders (relative) that get a copy of the embedded model, e.g. to configure as `circuitLens.model.path`. */
  readonly modelCopies?: readonly string[];
  /** More set-up in the workspace before the server starts (e.g. circuit files made by the CLI). */
  readonly prepare?: (workspace: string) => Promise<void>;
  /** Circuits in the extension's store before the workbench opens, by name, in the file format the CLI writes. */
  readonly savedCircuits?: Readonly<Record<string, CircuitGraph>>;
  readonly viewport?: { readonly width: number; readonly height: number };
  readonly closeSideBar?: boolean;
}

/** The set-up every e2e suite starts from: the VSIX installed in a fresh code-server over a fresh workspace, and its workbench open. */
export async function startWorkbench(suite: string, options: WorkbenchOptions): Promise<Workbench> {
  ensureInstalled();
  const vsix = packageVsix();
  const workspace = path.join(e2eDir, `workspace-${suite}-${process.pid}`);
  fs.rmSync(workspace, { recursive: true, force: true });
  fs.mkdirSync(workspace, { recursive: true });
  for (const [name, text] of Object.entries(options.files ?? {})) {
    fs.mkdirSync(path.dirname(path.join(workspace, name)), { recursive: true });
    fs.writeFileSync(path.join(workspace, name), text);
  }
  for (const folder of options.modelCopies ?? []) {
    fs.mkdirSync(path.join(workspace, folder), { recursive: true });
    for (const f of EMBEDDED_MODEL_FILES) fs.copyFileSync(path.join(root, 'models', 'tiny-ioi-gpt2', f), path.join(workspace, folder, f));
  }
  await options.prepare?.(workspace);
  const settings = typeof options.settings === 'function' ? options.settings(workspace) : options.settings;
  const server = await startCodeServer(vsix, workspace, settings, options);
  let browser: Browser | undefined;
  try {
    const store = circuitStore(server);
    for (const [name, graph] of Object.entries(options.savedCircuits ?? {})) {
      fs.mkdirSync(store, { recursive: true });
      fs.writeFileSync(path.join(store, `${name}.json`), circuitFileText(graph));
    }
    browser = await launchBrowser();
    const page = await openWorkbench(browser, server);
    if (options.viewport) await page.setViewportSize(options.viewport);
    if (options.closeSideBar) await runCommand(page, 'View: Close Primary Side Bar');
    const opened = browser;
    return {
      server,
      page,
      workspace,
      async close() {
        await opened.close();
        await server.stop();
        fs.rmSync(workspace, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await browser?.close();
    await server.stop();
    throw err;
  }
}

/** The IOI prompt the editor suites attribute (the embedded model explains " Mary"). */
export const IOI_PROMPT = 'When Mary and John went to the store, John gave a drink to';

/** Our heatmap's decoration overlays on the first line of the editor. */
export const HEATMAP_DECORATION = '.monaco-editor .view-overlays > div:first-child .cdr[class*="TextEditorDecorationType"]';

/**
 * An IOI circuit of the embedded model in the CLI's circuit file format, for tests that do not
 * depend on discovery: a0.h0, m1 and a2.h1 kept of 20 candidates, verifiable on 16 prompts.
 * `taskName` and `edges` let a test put markup in the name or draw edges.
 */
export function fixtureCircuit(options: { taskName?: string; edges?: Parameters<typeof buildCircuitGraph>[0]['edges'] } = {}): CircuitGraph {
  const full = buildCircuitGraph({
    model: { name: 'tiny-ioi-gpt2', nLayers: 4, nHeads: 4, dModel: 128, dMlp: 512 },
    task: { name: options.taskName ?? 'ioi', metric: 'logit_diff', examples: 16, seed: 0 },
    method: { name: 'attnlrp', aggregation: 'signed-mean' },
    heads: [
      [0.9, 0.02, 0.01, 0.03],
      [0.04, 0.01, 0.02, 0.01],
      [0.01, 0.5, 0.02, 0.05],
      [0.03, 0.01, 0.04, 0.02],
    ],
    mlps: [0.02, 0.3, 0.01, 0.04],
    inputRelevance: 1,
    logitsRelevance: 1,
    edges: options.edges ?? [],
  });
  const scores = Object.fromEntries(full.nodes.filter((n) => n.kind === 'head' || n.kind === 'mlp').map((n) => [n.id, n.relevance]));
  const graph = { ...selectNodes(full, { kind: 'top-k', k: 3 }, { absolute: false }), scores, created: '2026-01-01T00:00:00.000Z' };
  return validateCircuitGraph(JSON.parse(JSON.stringify(graph)), 'fixture');
}
