// Bundles the extension host, the engine worker, the CLI (when present) and the webview app.
// Usage: node esbuild.mjs [--production] [--watch]
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(fileURLToPath(import.meta.url));
const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

/** Prints errors as `✘ [ERROR] file:line:col` so a VS Code problem matcher picks them up. */
const problemMatcher = {
  name: 'problem-matcher',
  setup(build) {
    build.onStart(() => {
      if (watch) console.log('[watch] build started');
    });
    build.onEnd((result) => {
      for (const { text, location } of result.errors) {
        console.error(`✘ [ERROR] ${text}`);
        if (location) console.error(`    ${location.file}:${location.line}:${location.column}:`);
      }
      if (watch) console.log('[watch] build finished');
    });
  },
};

const node = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: !production,
  sourcesContent: false,
  minify: production,
  logLevel: 'warning',
  plugins: [problemMatcher],
};

const builds = [
  { ...node, entryPoints: ['src/extension/main.ts'], outfile: 'dist/extension.js', external: ['vscode', 'onnxruntime-node'] },
  { ...node, entryPoints: ['src/worker/worker.ts'], outfile: 'dist/worker.js', external: ['onnxruntime-node'] },
  // The in-host suite (test/inhost), loaded by VS Code through --extensionTestsPath.
  { ...node, entryPoints: ['test/inhost/suite.ts'], outfile: 'dist/test/inhost-suite.js', external: ['vscode', 'onnxruntime-node'] },
  {
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    sourcemap: !production,
    sourcesContent: false,
    minify: production,
    logLevel: 'warning',
    plugins: [problemMatcher],
    // The prompt graph panel is a second app with its own bundle (dist/promptGraph.js, .css).
    entryPoints: { webview: 'webview/main.ts', promptGraph: 'webview/promptGraph.ts' },
    outdir: 'dist',
    // The panel's CSS (webview/main.css, imported from main.ts) lands in dist/webview.css.
    loader: { '.css': 'css', '.ttf': 'file', '.woff': 'file', '.woff2': 'file' },
  },
];
if (fs.existsSync(path.join(root, 'src/cli/main.ts'))) {
  builds.push({ ...node, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js', external: ['onnxruntime-node'], banner: { js: '#!/usr/bin/env node' } });
}

process.chdir(root);
if (watch) {
  const contexts = await Promise.all(builds.map((b) => esbuild.context(b)));
  await Promise.all(contexts.map((c) => c.watch()));
} else {
  const results = await Promise.allSettled(builds.map((b) => esbuild.build(b)));
  const failed = results.filter((r) => r.status === 'rejected');
  if (failed.length > 0) {
    for (const f of failed) if (!String(f.reason?.message).includes('Build failed')) console.error(f.reason);
    process.exit(1);
  }
}
