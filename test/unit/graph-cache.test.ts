/** The compiled-graph cache (src/engine/cache.ts) on the real engine and ONNX Runtime. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Engine } from '../../src/engine/engine';
import { GraphCache, resolveCacheDir } from '../../src/engine/cache';
import { spawnSync } from 'node:child_process';
import { EMBEDDED_MODEL, REPO } from '../helpers';

const ids = [[464, 1200, 373, 257, 922, 13, 383, 1200]].map((row) => row.map((id) => id % 2088));
const targets = [{ kind: 'logit' as const, position: 7, token: 12 }];

function temp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'graph-cache-'));
}

async function attribution(cacheDir: string | null) {
  const engine = await Engine.load(EMBEDDED_MODEL, { cacheDir });
  const [a] = await engine.attribute({ ids, targets, mode: 'attnlrp' });
  const [f] = await engine.forward({ ids });
  // A compile scans the weights file from disk (finite-weight check) and lets ONNX Runtime map
  // it (session.ts): JavaScript never holds the whole file. A hit does neither.
  const file = engine.loaded.weights.files[0] as unknown as { data?: Buffer; scanned: Set<string> };
  const bytesRead = file.data !== undefined;
  const compiled = file.scanned.size > 0;
  await engine.dispose();
  return { a: a!, f: f!, bytesRead, compiled };
}

describe('graph cache', () => {
  it('a hit gives the same numbers as a compile; neither reads the weights into JavaScript', async () => {
    const dir = temp();
    try {
      const plain = await attribution(null);
      const miss = await attribution(dir);
      const entries = new GraphCache(dir).entries();
      assert.equal(entries.length, 2, 'one entry per graph (forward, attribution)');
      const hit = await attribution(dir);
      assert.equal(plain.compiled, true);
      assert.equal(miss.compiled, true);
      assert.equal(hit.compiled, false, 'a hit opens the cached graph without compiling');
      for (const run of [plain, miss, hit]) assert.equal(run.bytesRead, false, 'ONNX Runtime maps the weights; JavaScript never reads the file');
      for (const run of [miss, hit]) {
        assert.deepEqual(Array.from(run.a.tokenRelevance), Array.from(plain.a.tokenRelevance));
        assert.deepEqual(run.a.headRelevance, plain.a.headRelevance);
        assert.equal(run.a.targetValue, plain.a.targetValue);
        assert.deepEqual(Array.from(run.f.logitsLast), Array.from(plain.f.logitsLast));
      }
      assert.equal(new GraphCache(dir).entries().length, 2, 'a hit writes nothing new');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a damaged entry is dropped and recompiled', async () => {
    const dir = temp();
    try {
      const first = await attribution(dir);
      for (const e of new GraphCache(dir).entries()) fs.writeFileSync(path.join(e.dir, 'graph.onnx'), 'not a model');
      const again = await attribution(dir);
      assert.equal(again.compiled, true);
      assert.deepEqual(Array.from(again.a.tokenRelevance), Array.from(first.a.tokenRelevance));
      const third = await attribution(dir);
      assert.equal(third.compiled, false, 'the recompiled entry serves the next process');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('pruned weights are never cached; a changed weights file gets a new key', async () => {
    const dir = temp();
    const model = temp();
    try {
      for (const f of fs.readdirSync(EMBEDDED_MODEL)) fs.copyFileSync(path.join(EMBEDDED_MODEL, f), path.join(model, f));
      const engine = await Engine.load(model, { cacheDir: dir });
      const name = 'transformer.h.0.mlp.c_fc.weight';
      const pruned = engine.withWeights(new Map([[name, new Float32Array(engine.loaded.weights.readFloat32(name).length)]]));
      await pruned.attribute({ ids, targets, mode: 'attnlrp' });
      assert.equal(new GraphCache(dir).entries().length, 0);
      await engine.attribute({ ids, targets, mode: 'attnlrp' });
      assert.equal(new GraphCache(dir).entries().length, 1);
      await engine.dispose();
      await pruned.dispose();
      // Same size, new content (one weight flipped): the content hash must change the key.
      const file = path.join(model, 'model.safetensors');
      const bytes = fs.readFileSync(file);
      const info = engine.loaded.weights.info(name);
      bytes.writeFloatLE(bytes.readFloatLE(info.offset) + 1, info.offset);
      fs.writeFileSync(file, bytes);
      const changed = await Engine.load(model, { cacheDir: dir });
      await changed.attribute({ ids, targets, mode: 'attnlrp' });
      await changed.dispose();
      assert.equal(new GraphCache(dir).entries().length, 2);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(model, { recursive: true, force: true });
    }
  });

  it('evicts least-recently-used entries past the cap, refuses entries above it, and clears', () => {
    const dir = temp();
    try {
      const cache = new GraphCache(dir, 3000);
      const put = (key: string, size: number, age: number) => {
        const w = cache.begin(key, {});
        fs.writeFileSync(w.modelPath, Buffer.alloc(size));
        w.commit();
        const meta = path.join(dir, 'graphs', key, 'meta.json');
        if (fs.existsSync(meta)) fs.utimesSync(meta, age, age);
      };
      put('a', 1000, 1000);
      put('b', 1000, 2000);
      assert.deepEqual(cache.entries().map((e) => e.key).sort(), ['a', 'b']);
      assert.ok(cache.lookup('a')); // a is now the most recently used
      put('c', 1000, 3_000_000_000);
      assert.deepEqual(cache.entries().map((e) => e.key).sort(), ['a', 'c'], 'b was least recently used');
      put('huge', 5000, 4000);
      assert.equal(cache.lookup('huge'), null, 'an entry larger than the cap is not kept');
      assert.equal(fs.readdirSync(path.join(dir, 'graphs')).filter((n) => n.startsWith('.tmp')).length, 0, 'no temporary folders left');
      const cleared = cache.clear();
      assert.equal(cleared.entries, 2);
      assert.deepEqual(cache.entries(), []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('resolves the cache folder from the flag, the environment and XDG', () => {
    assert.equal(resolveCacheDir('/x/y', {}), path.resolve('/x/y'));
    assert.equal(resolveCacheDir(undefined, { CIRCUIT_LENS_CACHE_DIR: '/c' }), path.resolve('/c'));
    assert.equal(resolveCacheDir('off', { CIRCUIT_LENS_CACHE_DIR: '/c' }), null);
    assert.equal(resolveCacheDir(undefined, { XDG_CACHE_HOME: '/xdg' }), path.join('/xdg', 'circuit-lens'));
    assert.equal(resolveCacheDir(undefined, {}), path.join(os.homedir(), '.cache', 'circuit-lens'));
    assert.throws(() => resolveCacheDir(' ', {}), /empty/);
  });

  it('the CLI fills the folder given by --cache-dir, and `cache info` / `cache clear` show and empty it', () => {
    const dir = temp();
    const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO, 'src', 'cli', 'main.ts'), ...args], { encoding: 'utf8', cwd: REPO, timeout: 120_000 });
    try {
      assert.equal(cli('logits', '--ids', '1,2,3', '--cache-dir', dir).status, 0);
      const info = cli('cache', 'info', '--cache-dir', dir, '--json');
      assert.equal(info.status, 0);
      const listed = JSON.parse(info.stdout) as { entries: { bytes: number; folder: string }[] };
      assert.equal(listed.entries.length, 1);
      assert.equal(listed.entries[0]!.folder, EMBEDDED_MODEL);
      const cleared = JSON.parse(cli('cache', 'clear', '--cache-dir', dir, '--json').stdout) as { removed_entries: number };
      assert.equal(cleared.removed_entries, 1);
      assert.deepEqual(new GraphCache(dir).entries(), []);
      const bad = cli('cache', 'purge', '--cache-dir', dir);
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /"info" or "clear"/);
      assert.equal(cli('logits', '--ids', '1,2,3', '--cache-dir', 'off').status, 0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
