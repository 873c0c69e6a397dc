/**
 * Launches the in-host suite (test/inhost/suite.ts) inside a real VS Code desktop extension host
 * with @vscode/test-electron's `runTests`. VS Code is downloaded on first use (or taken from
 * VSCODE_EXECUTABLE); where it cannot be downloaded (no network, as on the development machine
 * of this repository) the suite skips with one line and exits 0.
 *
 * code-server cannot run it: it refuses `--extensionDevelopmentPath`/`--extensionTestsPath`, and
 * the VS Code server underneath accepts them but leaves test runs to a desktop client. The e2e
 * suite (test/e2e) covers the same ground in code-server through the UI.
 *
 * Usage: npm run test:inhost   (after npm run build)
 */
import * as path from 'node:path';
import { downloadAndUnzipVSCode, runTests } from '@vscode/test-electron';

async function main(): Promise<number> {
  const root = path.resolve(__dirname, '..', '..');
  const extensionTestsPath = path.join(root, 'dist', 'test', 'inhost-suite.js');
  let vscodeExecutablePath = process.env.VSCODE_EXECUTABLE;
  if (!vscodeExecutablePath) {
    try {
      vscodeExecutablePath = await downloadAndUnzipVSCode({ version: 'stable', timeout: 20_000 });
    } catch (err) {
      console.log(`in-host suite skipped: VS Code could not be downloaded (${(err as Error).message.split('\n')[0]}); set VSCODE_EXECUTABLE to run it`);
      return 0;
    }
  }
  await runTests({
    vscodeExecutablePath,
    extensionDevelopmentPath: root,
    extensionTestsPath,
    launchArgs: [path.join(root, 'models', 'tiny-ioi-gpt2'), '--disable-extensions', '--disable-workspace-trust'],
  });
  return 0;
}

main().then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    console.error(`in-host suite failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
