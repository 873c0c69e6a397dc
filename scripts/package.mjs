// Builds a platform-specific VSIX: production bundle + only the target's ONNX Runtime binaries.
// Usage: node scripts/package.mjs [--target linux-x64] [--out out/] [--no-build]
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const target = arg('--target', 'linux-x64');
const outDir = path.resolve(root, arg('--out', 'out'));
const ortDirs = {
  'linux-x64': 'linux/x64',
  'linux-arm64': 'linux/arm64',
  'darwin-arm64': 'darwin/arm64',
  'win32-x64': 'win32/x64',
  'win32-arm64': 'win32/arm64',
};
if (!ortDirs[target]) {
  console.error(`unsupported target ${target} (onnxruntime-node ships binaries for ${Object.keys(ortDirs).join(', ')})`);
  process.exit(2);
}
const bin = path.join(root, 'node_modules/onnxruntime-node/bin/napi-v6', ortDirs[target]);
if (!fs.existsSync(bin)) {
  console.error(`missing ${bin}: install onnxruntime-node first`);
  process.exit(1);
}

const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });
if (!process.argv.includes('--no-build')) run(process.execPath, ['esbuild.mjs', '--production']);

// The checked-in .vscodeignore is written for linux-x64; swap the binary folder for other targets.
fs.mkdirSync(outDir, { recursive: true });
const ignore = fs.readFileSync(path.join(root, '.vscodeignore'), 'utf8').replace('napi-v6/linux/x64/', `napi-v6/${ortDirs[target]}/`);
const ignoreFile = path.join(outDir, `.vscodeignore.${target}`);
fs.writeFileSync(ignoreFile, ignore);

const version = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version;
const vsix = path.join(outDir, `circuit-lens-${target}-${version}.vsix`);
const vsce = path.join(root, 'node_modules/@vscode/vsce/vsce');
const extra = [];
if (!fs.existsSync(path.join(root, 'LICENSE'))) extra.push('--skip-license');
// The README's images are relative (docs/images, shipped in the package); there is no public
// repository URL to rewrite them against.
run(process.execPath, [vsce, 'package', '--target', target, '--ignoreFile', ignoreFile, '--allow-missing-repository', '--no-rewrite-relative-links', ...extra, '-o', vsix]);
console.log(vsix);
