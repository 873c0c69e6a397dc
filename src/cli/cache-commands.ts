/** `circuit-lens cache info|clear`: the compiled-graph cache (src/engine/cache.ts). */
import { InputError } from '../models/errors';
import { GraphCache, resolveCacheDir, resolveCacheMaxBytes } from '../engine/cache';
import { parseFlags } from './args';
import type { Command } from './command';

const FLAGS = { 'cache-dir': { type: 'string' }, json: { type: 'boolean' } } as const;

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

export const cacheCommands: Record<string, Command> = {
  cache: {
    summary: 'show (info) or empty (clear) the compiled-graph cache',
    usage: 'circuit-lens cache info|clear [--cache-dir DIR] [--json]\n\nThe cache folder is --cache-dir, else $CIRCUIT_LENS_CACHE_DIR, else $XDG_CACHE_HOME/circuit-lens, else ~/.cache/circuit-lens; "off" disables it. Size cap: $CIRCUIT_LENS_CACHE_MAX_GB (default 16).',
    async run(ctx) {
      const [action, ...rest] = ctx.argv;
      if (action !== 'info' && action !== 'clear') throw new InputError(`cache needs "info" or "clear", got ${action === undefined ? 'nothing' : `"${action}"`}`);
      const flags = parseFlags(rest, FLAGS);
      const dir = resolveCacheDir(flags['cache-dir']);
      if (!dir) throw new InputError('the cache is off (--cache-dir off or CIRCUIT_LENS_CACHE_DIR=off): nothing to show or clear');
      const cache = new GraphCache(dir, resolveCacheMaxBytes());
      if (action === 'clear') {
        const freed = cache.clear();
        return { json: { dir, removed_entries: freed.entries, freed_bytes: freed.bytes }, text: `${dir}: removed ${freed.entries} compiled graph${freed.entries === 1 ? '' : 's'}, ${mib(freed.bytes)}` };
      }
      const entries = cache.entries().sort((a, b) => b.lastUsed - a.lastUsed);
      const total = entries.reduce((s, e) => s + e.bytes, 0);
      const json = {
        dir,
        max_bytes: cache.maxBytes,
        total_bytes: total,
        entries: entries.map((e) => ({ key: e.key, bytes: e.bytes, last_used: new Date(e.lastUsed).toISOString(), folder: e.meta.folder ?? null, options: e.meta.options ?? null })),
      };
      const lines = entries.map((e) => `${e.key}  ${mib(e.bytes).padStart(12)}  ${new Date(e.lastUsed).toISOString()}  ${String(e.meta.folder ?? '?')}`);
      return { json, text: `${dir}: ${entries.length} compiled graph${entries.length === 1 ? '' : 's'}, ${mib(total)} of ${mib(cache.maxBytes)}${lines.length ? '\n' + lines.join('\n') : ''}` };
    },
  },
};
