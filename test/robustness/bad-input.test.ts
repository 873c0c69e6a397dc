/**
 * Generated bad input: hundreds of broken model folders, config files, tokenizers, task files
 * and prompts, each of which must end in a clear error (InputError / CircuitInputError naming
 * the file or line and the problem) or, for valid-but-odd prompts, in a correct result — never
 * in another exception, a hang or a written file. See README.md in this folder.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadTaskFile, parseTaskJsonl } from '../../src/circuits/tasks/tasks';
import { Engine } from '../../src/engine/engine';
import { loadModelFolder } from '../../src/models/load';
import { MAX_HEADER_BYTES, SafetensorsFile } from '../../src/models/safetensors';
import { main as cliMain } from '../../src/cli/main';
import { InputError } from '../../src/models/errors';
import { EMBEDDED_MODEL, missingShared, sharedModel } from '../helpers';
import { tinyNodeGraph } from '../unit/circuits-graph-fixture';
import {
  BASE,
  ST,
  Tally,
  checkOffsets,
  editedHeader,
  modelFolder,
  rng,
  runCase,
  safetensorsBytes,
  scratchRoot,
  withTensorAs,
  type Expectation,
} from './harness';

const tally = new Tally();
const root = scratchRoot();
const ST_FILE = 'model.safetensors';
const CONFIG = JSON.parse(BASE['config.json'].toString('utf8')) as Record<string, unknown>;
const TOKENIZER = JSON.parse(BASE['tokenizer.json'].toString('utf8')) as Record<string, any>;
const VOCAB = 2088;

const error = (names: string | readonly string[], problem?: RegExp, line?: number): Expectation => ({
  kind: 'error',
  names: typeof names === 'string' ? [names] : names,
  ...(problem ? { problem } : {}),
  ...(line !== undefined ? { line } : {}),
});

/** What opening a model amounts to: headers, config and tokenizer, then the first read of the data (as a graph compile does). */
function openModel(dir: string): unknown {
  const model = loadModelFolder(dir);
  model.weights.readFloat32(model.spec.embedTokens);
  return model;
}

/** One generated model-folder case: build the folder, open it, classify, remove it. */
function folderCase(family: string, name: string, files: () => Partial<Record<string, Buffer | string | null>>, expect: Expectation, prepare?: (dir: string) => void): void {
  it(name, async () => {
    const dir = modelFolder(root, `${family}-${name}`, files());
    prepare?.(dir);
    try {
      await runCase(tally, { family, name, expect, watch: [root], run: () => openModel(dir) });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

const withBytes = (bytes: Buffer) => () => ({ [ST_FILE]: bytes });
const header = (edit: (h: Record<string, any>) => void) => () => ({ [ST_FILE]: editedHeader(edit) });

describe('generated bad input', { timeout: 180_000 }, () => {
  after(() => {
    fs.rmSync(root, { recursive: true, force: true });
    const families = [...tally.perFamily.entries()].map(([f, n]) => `${f} ${n}`).join(', ');
    console.log(`per family: ${families}; ${tally.accepted} valid-but-odd prompts accepted correctly; slowest: ${tally.slowest.name} (${tally.slowest.ms.toFixed(0)} ms)`);
    if (tally.problems.length > 0) console.log(tally.problems.join('\n'));
    console.log(tally.summary());
    assert.equal(tally.crashes, 0, 'crashes');
    assert.equal(tally.partialFiles, 0, 'partial files');
    assert.equal(tally.unclear, 0, 'errors that are not clear, or bad input accepted');
    assert.ok(tally.cases >= 200, `only ${tally.cases} cases`);
  });

  // -------------------------------------------------------------------------------------------
  describe('safetensors', () => {
    const F = 'safetensors';
    const total = ST.bytes.length;
    const dataStart = 8 + ST.headerLength;

    describe('truncated', () => {
      const r = rng(1);
      const offsets = new Set([0, 1, 4, 7, 8, 9, 64, ST.headerLength / 2, dataStart - 1, dataStart, dataStart + 1, dataStart + 4, total - 1, total - 4, total - 512]);
      for (const n of ST.names.slice(0, 6)) offsets.add(dataStart + ST.header[n]!.data_offsets[1]);
      while (offsets.size < 36) offsets.add(r.int(total - 1));
      for (const at of [...offsets].sort((a, b) => a - b)) {
        folderCase(F, `truncated at byte ${at}`, withBytes(ST.bytes.subarray(0, at)), error(ST_FILE, /truncated|past the end|not valid JSON|cover/));
      }
    });

    describe('header length bit flips', () => {
      for (let bit = 0; bit < 64; bit++) {
        const bytes = Buffer.from(ST.bytes);
        bytes[bit >> 3]! ^= 1 << (bit & 7);
        folderCase(F, `header length bit ${bit} flipped`, withBytes(bytes), error(ST_FILE));
      }
    });

    describe('JSON header bit flips', () => {
      const r = rng(2);
      for (let i = 0; i < 48; i++) {
        const at = 8 + r.int(ST.headerLength);
        const bit = r.int(8);
        const bytes = Buffer.from(ST.bytes);
        bytes[at]! ^= 1 << bit;
        const context = ST.bytes.toString('latin1', Math.max(8, at - 6), at + 6).replace(/[^\x20-\x7e]/g, '?');
        folderCase(F, `header byte ${at} bit ${bit} flipped (…${context}…)`, withBytes(bytes), error([ST_FILE, 'config.json']));
      }
    });

    describe('huge and lying sizes', () => {
      const lengths: [string, bigint][] = [
        ['0', 0n], ['1', 1n], ['2', 2n], ['7', 7n],
        ['the limit', BigInt(MAX_HEADER_BYTES)], ['the limit + 1', BigInt(MAX_HEADER_BYTES) + 1n],
        ['2^31', 1n << 31n], ['2^32', 1n << 32n], ['2^40', 1n << 40n], ['2^53', 1n << 53n], ['2^63', 1n << 63n], ['2^64 − 1', (1n << 64n) - 1n],
      ];
      for (const [label, value] of lengths) {
        const bytes = Buffer.from(ST.bytes);
        bytes.writeBigUInt64LE(value, 0);
        folderCase(F, `header length ${label}`, withBytes(bytes), error(ST_FILE, /header|truncated|JSON/));
      }
      const r = rng(3);
      const lies: [string, (e: any) => void][] = [
        ['shape [2^52, 2^52]', (e) => (e.shape = [2 ** 52, 2 ** 52])],
        ['shape [2^53]', (e) => (e.shape = [2 ** 53])],
        ['shape [1e300]', (e) => (e.shape = [1e300])],
        ['shape [1e15, 1e15, 1e15]', (e) => (e.shape = [1e15, 1e15, 1e15])],
        ['data_offsets [0, 2^53]', (e) => (e.data_offsets = [0, 2 ** 53])],
        ['data_offsets [0, 2^52]', (e) => (e.data_offsets = [0, 2 ** 52])],
        ['data_offsets moved to 2^52', (e) => (e.data_offsets = [2 ** 52, 2 ** 52 + e.data_offsets[1] - e.data_offsets[0]])],
        ['data_offsets [1e300, 1e300]', (e) => (e.data_offsets = [1e300, 1e300])],
      ];
      for (const [label, lie] of lies) {
        for (let k = 0; k < 2; k++) {
          const tensor = r.pick(ST.names);
          folderCase(F, `${tensor}: ${label}`, header((h) => lie(h[tensor])), error(ST_FILE, new RegExp(`"${tensor.replace(/\./g, '\\.')}"`)));
        }
      }
      // A header that really is big (1 MB of metadata padding) but whose length field claims even more.
      const big = editedHeader((h) => (h.__metadata__ = { pad: 'x'.repeat(1 << 20) }));
      const bigLying = Buffer.from(big);
      bigLying.writeBigUInt64LE(BigInt(big.length), 0);
      folderCase(F, 'a 1 MB header whose length claims the whole file', withBytes(bigLying), error(ST_FILE, /truncated/));
    });

    describe('overlapping and out-of-file offsets', () => {
      const r = rng(4);
      const bySize = new Map<number, string[]>();
      for (const n of ST.names) {
        const [b, e] = ST.header[n]!.data_offsets;
        bySize.set(e - b, [...(bySize.get(e - b) ?? []), n]);
      }
      const sameSize = [...bySize.values()].filter((g) => g.length > 1);
      for (let i = 0; i < 8; i++) {
        const group = r.pick(sameSize);
        const a = r.pick(group);
        const b = r.pick(group.filter((n) => n !== a));
        folderCase(F, `"${b}" given the offsets of "${a}"`, header((h) => (h[b].data_offsets = [...h[a].data_offsets])), error(ST_FILE, /overlap/));
      }
      for (let i = 0; i < 6; i++) {
        const a = r.pick(ST.names);
        const b = r.pick(ST.names.filter((n) => n !== a));
        const shift = 4 * (1 + r.int(16));
        folderCase(F, `"${b}" moved to overlap "${a}" by ${shift} bytes`, header((h) => {
          const size = h[b].data_offsets[1] - h[b].data_offsets[0];
          const start = Math.max(0, h[a].data_offsets[1] - shift);
          h[b].data_offsets = [start, start + size];
        }), error(ST_FILE, /overlap|past the end|cover/));
      }
      const dataLength = ST.data.length;
      const offsetLies: [string, (e: any) => void][] = [
        ['starts at the end of the data', (e) => (e.data_offsets = [dataLength, dataLength + e.data_offsets[1] - e.data_offsets[0]])],
        ['ends one byte past the data', (e) => (e.data_offsets = [dataLength - (e.data_offsets[1] - e.data_offsets[0]) + 1, dataLength + 1])],
        ['begin > end', (e) => (e.data_offsets = [e.data_offsets[1], e.data_offsets[0]])],
        ['negative begin', (e) => (e.data_offsets = [-4, e.data_offsets[1] - e.data_offsets[0] - 4])],
        ['three offsets', (e) => (e.data_offsets = [...e.data_offsets, 0])],
        ['one offset', (e) => (e.data_offsets = [e.data_offsets[0]])],
        ['string offsets', (e) => (e.data_offsets = e.data_offsets.map(String))],
        ['fractional offsets', (e) => (e.data_offsets = [e.data_offsets[0] + 0.5, e.data_offsets[1] + 0.5])],
        ['offsets null', (e) => (e.data_offsets = null)],
        ['offsets missing', (e) => delete e.data_offsets],
        ['offsets an object', (e) => (e.data_offsets = { begin: 0, end: 4 })],
      ];
      for (const [label, lie] of offsetLies) {
        const tensor = r.pick(ST.names);
        folderCase(F, `${tensor}: ${label}`, header((h) => lie(h[tensor])), error(ST_FILE, /data_offsets|overlap|past the end/));
      }
      folderCase(F, 'one byte of trailing garbage after the data', withBytes(Buffer.concat([ST.bytes, Buffer.from([0])])), error(ST_FILE, /cover/));
      folderCase(F, '1 MB of trailing garbage after the data', withBytes(Buffer.concat([ST.bytes, Buffer.alloc(1 << 20, 0xab)])), error(ST_FILE, /cover/));
      folderCase(F, 'an empty header before the data', withBytes(safetensorsBytes({}, ST.data)), error(ST_FILE));
      folderCase(F, 'an empty header and no data', withBytes(safetensorsBytes({}, Buffer.alloc(0))), error([ST_FILE, 'config.json'], /missing/));
    });

    describe('dtypes', () => {
      const r = rng(5);
      const unknown: unknown[] = ['F8_E4M3', 'F8_E5M2', 'float32', 'f32', '', 'F', 'F128', 'U64', 'C64', 'Q4_0', 'F4', null, 5, ['F32'], { type: 'F32' }];
      for (const dtype of unknown) {
        const tensor = r.pick(ST.names);
        folderCase(F, `${tensor}: dtype ${JSON.stringify(dtype)}`, header((h) => (h[tensor].dtype = dtype)), error(ST_FILE, /unsupported dtype/));
      }
      const widths: Record<string, number> = { I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, F64: 8, F16: 2, BF16: 2 };
      for (const [dtype, width] of Object.entries(widths)) {
        for (let k = 0; k < 2; k++) {
          const tensor = r.pick(ST.names);
          // Bytes stay consistent (the last dimension absorbs the width change): only the dtype or the resulting shape is wrong.
          folderCase(F, `${tensor}: dtype ${dtype} with a byte-consistent shape`, header((h) => {
            const shape = [...h[tensor].shape];
            shape[shape.length - 1] = (shape[shape.length - 1] * 4) / width;
            h[tensor].dtype = dtype;
            h[tensor].shape = shape;
          }), error(ST_FILE, dtype.startsWith('F') || dtype === 'BF16' ? /has shape .* but config\.json implies/ : /has dtype/));
        }
      }
    });

    describe('shape × dtype size mismatches', () => {
      const r = rng(6);
      const edits: [string, (shape: number[]) => unknown][] = [
        ['first dimension doubled', (s) => [s[0]! * 2, ...s.slice(1)]],
        ['last dimension dropped', (s) => (s.length > 1 ? s.slice(0, -1) : [s[0]! - 1])],
        ['an extra dimension of 2', (s) => [...s, 2]],
        ['a zero dimension', (s) => [0, ...s.slice(1)]],
        ['scalar []', () => []],
        ['a negative dimension', (s) => [-s[0]!, ...s.slice(1)]],
        ['a fractional dimension', (s) => [s[0]! + 0.5, ...s.slice(1)]],
        ['a string dimension', (s) => [String(s[0]), ...s.slice(1)]],
        ['shape null', () => null],
        ['shape a number', (s) => s[0]],
        ['shape missing', () => undefined],
        ['nested shape', (s) => [s]],
      ];
      for (const [label, edit] of edits) {
        for (let k = 0; k < 2; k++) {
          const tensor = r.pick(ST.names);
          folderCase(F, `${tensor}: ${label}`, header((h) => {
            const shape = edit(h[tensor].shape);
            if (shape === undefined) delete h[tensor].shape;
            else h[tensor].shape = shape;
          }), error(ST_FILE, /shape/));
        }
      }
    });

    describe('shapes that disagree with the config', () => {
      const r = rng(7);
      const reshapes: [string, (shape: number[]) => number[]][] = [
        ['transposed', (s) => (s.length === 2 ? [s[1]!, s[0]!] : [1, s[0]!])],
        ['flattened', (s) => (s.length === 2 ? [s[0]! * s[1]!] : [s[0]! / 2, 2])],
        ['unsqueezed', (s) => [1, ...s]],
        ['a trailing 1', (s) => [...s, 1]],
      ];
      const picked = new Set<string>();
      while (picked.size < 6) picked.add(r.pick(ST.names));
      for (const tensor of picked) {
        for (const [label, reshape] of reshapes) {
          const shape = reshape(ST.header[tensor]!.shape);
          if (JSON.stringify(shape) === JSON.stringify(ST.header[tensor]!.shape)) continue; // a square matrix transposed
          folderCase(F, `${tensor} ${label} to [${shape.join(', ')}]`, header((h) => (h[tensor].shape = shape)), error(ST_FILE, /has shape .* but config\.json implies/));
        }
      }
      for (const tensor of ['transformer.wte.weight', 'transformer.h.2.attn.c_attn.weight', 'transformer.ln_f.bias']) {
        folderCase(F, `${tensor} renamed away`, header((h) => {
          h[`${tensor}.renamed`] = h[tensor];
          delete h[tensor];
        }), error([ST_FILE, 'config.json'], /"transformer\.[a-z0-9_.]+" is missing/));
      }
    });

    describe('non-finite weights', () => {
      const r = rng(8);
      const values: [string, (buf: Buffer, at: number) => void][] = [
        ['NaN', (b, at) => b.writeFloatLE(NaN, at)],
        ['+Infinity', (b, at) => b.writeFloatLE(Infinity, at)],
        ['−Infinity', (b, at) => b.writeFloatLE(-Infinity, at)],
        ['a negative NaN with a payload', (b, at) => b.writeUInt32LE(0xffc01234, at)],
        ['a signalling NaN', (b, at) => b.writeUInt32LE(0x7f800001, at)],
      ];
      for (let i = 0; i < 20; i++) {
        const tensor = r.pick(ST.names);
        const [label, write] = values[i % values.length]!;
        const [begin, end] = ST.header[tensor]!.data_offsets;
        const element = r.int((end - begin) / 4);
        const bytes = Buffer.from(ST.bytes);
        write(bytes, dataStart + begin + element * 4);
        folderCase(F, `${tensor}[${element}] = ${label} (F32)`, withBytes(bytes), error(ST_FILE, new RegExp(`"${tensor.replace(/\./g, '\\.')}" holds (NaN|-?Infinity)`)));
      }
      const pokes: [string, 'F16' | 'BF16' | 'F64', (raw: Buffer, at: number) => void][] = [
        ['NaN', 'F16', (b, at) => b.writeUInt16LE(0x7e00, at)],
        ['+Infinity', 'F16', (b, at) => b.writeUInt16LE(0x7c00, at)],
        ['NaN', 'BF16', (b, at) => b.writeUInt16LE(0x7fc0, at)],
        ['−Infinity', 'BF16', (b, at) => b.writeUInt16LE(0xff80, at)],
        ['NaN', 'F64', (b, at) => b.writeDoubleLE(NaN, at)],
        ['+Infinity', 'F64', (b, at) => b.writeDoubleLE(Infinity, at)],
        ['1e300 (finite in F64, Infinity in float32)', 'F64', (b, at) => b.writeDoubleLE(1e300, at)],
      ];
      for (const [label, dtype, poke] of pokes) {
        for (const misalign of [0, 1]) {
          const tensor = r.pick(ST.names);
          const element = r.int(ST.header[tensor]!.shape.reduce((a, b) => a * b, 1));
          folderCase(F, `${tensor}[${element}] as ${dtype} holding ${label}${misalign ? ' (unaligned data)' : ''}`, () => ({
            [ST_FILE]: withTensorAs(tensor, dtype, (raw, width) => poke(raw, width * element), misalign),
          }), error(ST_FILE, new RegExp(`holds (NaN|-?Infinity|1e\\+300) at element ${element}\\b`)));
        }
      }
      for (const misalign of [1, 2, 3]) {
        const tensor = r.pick(ST.names);
        folderCase(F, `${tensor}[0] = NaN with the data ${misalign} bytes off alignment (F32)`, () => ({
          [ST_FILE]: withTensorAs(tensor, 'F32', (raw) => raw.writeFloatLE(NaN, 0), misalign),
        }), error(ST_FILE, /holds NaN at element 0\b/));
      }
    });

    describe('non-finite weights through the engine (a forward pass is refused, not NaN)', () => {
      const cases: [string, () => Buffer][] = [
        ['NaN in transformer.h.2.mlp.c_proj.weight (F32)', () => {
          const bytes = Buffer.from(ST.bytes);
          bytes.writeFloatLE(NaN, dataStart + ST.header['transformer.h.2.mlp.c_proj.weight']!.data_offsets[0] + 4 * 77);
          return bytes;
        }],
        ['+Infinity in transformer.wpe.weight (F16)', () => withTensorAs('transformer.wpe.weight', 'F16', (raw) => raw.writeUInt16LE(0x7c00, 2 * 300))],
      ];
      for (const [label, bytes] of cases) {
        it(label, async () => {
          const dir = modelFolder(root, 'engine-nan', { [ST_FILE]: bytes() });
          try {
            await runCase(tally, {
              family: F,
              name: `engine: ${label}`,
              expect: error(ST_FILE, /holds (NaN|Infinity)/),
              budgetMs: 30_000,
              watch: [root],
              run: async () => {
                const e = await Engine.load(dir);
                try {
                  return await e.forward({ ids: [[5, 6, 7]] });
                } finally {
                  await e.dispose();
                }
              },
            });
          } finally {
            fs.rmSync(dir, { recursive: true, force: true });
          }
        });
      }
    });

    describe('missing, misplaced and sharded weights', () => {
      folderCase(F, 'no weights file', () => ({ [ST_FILE]: null }), error(ST_FILE, /no model\.safetensors/));
      folderCase(F, 'only pytorch_model.bin', () => ({ [ST_FILE]: null, 'pytorch_model.bin': 'PK' }), error('pytorch_model.bin', /pickle/));
      folderCase(F, 'model.safetensors is a folder', () => ({ [ST_FILE]: null }), error(ST_FILE, /not a regular file/), (dir) => fs.mkdirSync(path.join(dir, ST_FILE)));
      // A FIFO blocks open() until a writer comes: it must be refused before it is opened.
      folderCase(F, 'model.safetensors is a FIFO', () => ({ [ST_FILE]: null }), error(ST_FILE, /not a regular file/), (dir) => execFileSync('mkfifo', [path.join(dir, ST_FILE)]));
      folderCase(F, 'tokenizer.json is a FIFO', () => ({ 'tokenizer.json': null }), error('tokenizer.json', /not a regular file/), (dir) => execFileSync('mkfifo', [path.join(dir, 'tokenizer.json')]));
      folderCase(F, 'an empty model.safetensors', withBytes(Buffer.alloc(0)), error(ST_FILE, /truncated/));
      const r = rng(9);
      for (let i = 0; i < 3; i++) {
        const garbage = Buffer.alloc(4096);
        for (let k = 0; k < garbage.length; k++) garbage[k] = r.int(256);
        folderCase(F, `4 KB of random bytes (seed ${i})`, withBytes(garbage), error(ST_FILE));
      }
      for (const [label, top] of [['an array', []], ['null', null], ['a number', 5], ['a string', 'x']] as const) {
        folderCase(F, `header is ${label}`, withBytes(safetensorsBytes(top, ST.data)), error(ST_FILE, /not a JSON object/));
      }
      for (const [label, entry] of [['null', null], ['a number', 7], ['a string', 'F32'], ['an array', [1, 2]]] as const) {
        const tensor = r.pick(ST.names);
        folderCase(F, `${tensor}: header entry is ${label}`, header((h) => (h[tensor] = entry)), error(ST_FILE, new RegExp(tensor.replace(/\./g, '\\.'))));
      }
      const index = 'model.safetensors.index.json';
      const weightMap = Object.fromEntries(ST.names.map((n) => [n, 'model-00001-of-00001.safetensors']));
      const shard = (map: unknown, extra: Record<string, Buffer | string> = {}) => () => ({ [ST_FILE]: null, [index]: JSON.stringify(map), ...extra });
      folderCase(F, 'sharded: index is not JSON', () => ({ [ST_FILE]: null, [index]: '{"weight_map": ' }), error(index, /not a valid index/));
      folderCase(F, 'sharded: no weight_map', shard({ metadata: {} }), error(index, /weight_map/));
      folderCase(F, 'sharded: shard file missing', shard({ weight_map: weightMap }), error('model-00001-of-00001.safetensors', /cannot read/));
      folderCase(F, 'sharded: shard name escapes the folder', shard({ weight_map: { ...weightMap, [ST.names[3]!]: '../model.safetensors' } }, { 'model-00001-of-00001.safetensors': ST.bytes }), error(index, /not a plain file name/));
      folderCase(F, 'sharded: absolute shard name', shard({ weight_map: { ...weightMap, [ST.names[5]!]: '/etc/passwd' } }, { 'model-00001-of-00001.safetensors': ST.bytes }), error(index, /not a plain file name/));
      folderCase(F, 'sharded: shard name not a string', shard({ weight_map: { ...weightMap, [ST.names[0]!]: 1 } }, { 'model-00001-of-00001.safetensors': ST.bytes }), error(index, /not a plain file name/));
      folderCase(F, 'sharded: listed tensor absent from its shard', shard({ weight_map: { ...weightMap, 'transformer.h.9.ln_1.weight': 'model-00001-of-00001.safetensors' } }, { 'model-00001-of-00001.safetensors': ST.bytes }), error('model-00001-of-00001.safetensors', /listed in the index but missing/));
      folderCase(F, 'sharded: truncated shard', shard({ weight_map: weightMap }, { 'model-00001-of-00001.safetensors': ST.bytes.subarray(0, 100_000) }), error('model-00001-of-00001.safetensors', /past the end|truncated/));
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('config.json', () => {
    const F = 'config';
    const C = 'config.json';
    const cfg = (edit: (c: Record<string, unknown>) => void) => () => {
      const c = structuredClone(CONFIG);
      edit(c);
      return { [C]: JSON.stringify(c) };
    };
    const aliases: Record<string, string[]> = { n_embd: ['hidden_size'], n_layer: ['num_hidden_layers'], n_head: ['num_attention_heads'], vocab_size: [], n_positions: ['n_ctx', 'max_position_embeddings'] };
    const bad: [string, unknown][] = [
      ['0', 0], ['−1', -1], ['−128', -128], ['1.5', 1.5], ['"128"', '128'], ['true', true], ['[128]', [128]], ['{}', {}],
      ['10⁹', 1e9], ['2^53', 2 ** 53], ['1e300', 1e300],
    ];
    for (const field of Object.keys(aliases)) {
      for (const [label, value] of bad) {
        folderCase(F, `${field} = ${label}`, cfg((c) => (c[field] = value)), error([C], /must be a positive integer|beyond the supported maximum|not divisible/));
      }
      folderCase(F, `${field} missing`, cfg((c) => {
        delete c[field];
        for (const a of aliases[field]!) delete c[a];
      }), error(C, /is missing/));
      folderCase(F, `${field} null`, cfg((c) => {
        c[field] = null;
        for (const a of aliases[field]!) delete c[a];
      }), error(C, /is missing/));
    }
    for (const [label, value] of [['0', 0], ['−1', -1], ['1.5', 1.5], ['"512"', '512'], ['10⁹', 1e9], ['256 (disagrees with the weights)', 256]] as const) {
      folderCase(F, `n_inner = ${label}`, cfg((c) => (c.n_inner = value)), error([C], /must be a positive integer|beyond the supported maximum|config\.json implies/));
    }
    for (const heads of [3, 5, 7, 129, 256, 1000]) {
      folderCase(F, `n_head = ${heads} does not divide the width 128`, cfg((c) => (c.n_head = heads)), error(C, /not divisible/));
    }
    for (const [field, value] of [['n_embd', 64], ['n_embd', 256], ['vocab_size', 2087], ['vocab_size', 2089], ['n_positions', 64], ['n_positions', 256], ['n_layer', 5], ['n_layer', 12]] as const) {
      folderCase(F, `${field} = ${value} disagrees with the weights`, cfg((c) => (c[field] = value)), error([C, ST_FILE], /config\.json implies|missing/));
    }
    const typed: [string, unknown, RegExp][] = [
      ['layer_norm_epsilon', 'x', /must be a number/], ['layer_norm_epsilon', [], /must be a number/], ['layer_norm_epsilon', {}, /must be a number/], ['layer_norm_epsilon', true, /must be a number/],
      ['layer_norm_epsilon', -1, /must be at least 0/], ['layer_norm_epsilon', -1e-5, /must be at least 0/],
      ['scale_attn_weights', 'yes', /true or false/], ['scale_attn_weights', 1, /true or false/], ['scale_attn_weights', [], /true or false/],
      ['scale_attn_by_inverse_layer_idx', true, /not supported/],
      ['activation_function', 5, /must be a string/], ['activation_function', 'swiglu', /unsupported activation/], ['activation_function', '', /unsupported activation/], ['activation_function', ['gelu'], /must be a string/],
      ['model_type', null, /missing/], ['model_type', 5, /must be a string/], ['model_type', 'GPT2', /unsupported model_type/], ['model_type', 'mamba', /unsupported model_type/],
      ['model_type', '', /unsupported model_type/], ['model_type', ['gpt2'], /must be a string/], ['model_type', {}, /must be a string/], ['model_type', 'llama', /missing|must be|is missing/],
    ];
    for (const [field, value, problem] of typed) {
      folderCase(F, `${field} = ${JSON.stringify(value)}`, cfg((c) => (c[field] = value)), error([C, ST_FILE], problem));
    }
    folderCase(F, 'model_type missing', cfg((c) => delete c.model_type), error(C, /"model_type" is missing/));

    const text = BASE['config.json'].toString('utf8');
    const r = rng(10);
    const cuts = new Set([1, 2, text.length - 1, text.length - 2]);
    while (cuts.size < 12) cuts.add(1 + r.int(text.length - 2));
    for (const at of [...cuts].sort((a, b) => a - b)) folderCase(F, `truncated at character ${at}`, () => ({ [C]: text.slice(0, at) }), error(C, /not valid JSON/));
    const notJson: [string, string | Buffer][] = [
      ['a trailing comma', text.replace(/\n}\s*$/, ',\n}')],
      ['single quotes', text.replace(/"/g, "'")],
      ['a NaN literal', text.replace('"n_layer": 4', '"n_layer": NaN')],
      ['a comment', `// exported\n${text}`],
      ['a UTF-8 byte-order mark', `\uFEFF${text}`],
      ['an empty file', ''],
      ['whitespace only', ' \n\t\n'],
      ['YAML', 'model_type: gpt2\nn_layer: 4\n'],
      ['two objects', `${text}\n${text}`],
      ['UTF-16', Buffer.from(`\uFEFF${text}`, 'utf16le')],
      ['NUL bytes', Buffer.alloc(512)],
    ];
    for (const [label, content] of notJson) folderCase(F, `not JSON: ${label}`, () => ({ [C]: content }), error(C, /not valid JSON/));
    for (const [label, content] of [['null', 'null'], ['an array', '[]'], ['a number', '5'], ['a string', '"gpt2"'], ['true', 'true'], ['an array of the config', `[${text}]`]] as const) {
      folderCase(F, `top level is ${label}`, () => ({ [C]: content }), error(C, /not a JSON object/));
    }
    folderCase(F, 'a 20 MB config (valid JSON)', cfg((c) => (c.id2label = Object.fromEntries(Array.from({ length: 1_000_000 }, (_, i) => [i, `label_${i}`])))), error(C, /too large/));
    folderCase(F, 'a 20 MB config (garbage)', () => ({ [C]: Buffer.alloc(20 << 20, 0x7b) }), error(C, /too large/));
    folderCase(F, 'config.json missing', () => ({ [C]: null }), error(C, /config\.json is missing/));
    folderCase(F, 'config.json is a folder', () => ({ [C]: null }), error(C, /not a file/), (dir) => fs.mkdirSync(path.join(dir, C)));
  });

  // -------------------------------------------------------------------------------------------
  // Malformed configs of the GPT-NeoX, Gemma 2 and Qwen3 families, on the shared random fixtures.
  for (const [model, family] of [['random-tiny-neox', 'neox-config'], ['random-tiny-gemma2', 'gemma2-config'], ['random-tiny-qwen3', 'qwen3-config']] as const) {
    describe(`config.json of ${model}`, { skip: missingShared(`models/${model}/model.safetensors`) }, () => {
      if (missingShared(`models/${model}/model.safetensors`)) return;
      const C = 'config.json';
      const base = JSON.parse(fs.readFileSync(path.join(sharedModel(model), C), 'utf8')) as Record<string, unknown>;
      const weights = fs.readFileSync(path.join(sharedModel(model), ST_FILE));
      const cfg = (edit: (c: Record<string, unknown>) => void) => () => {
        const c = structuredClone(base);
        edit(c);
        return { [C]: JSON.stringify(c), [ST_FILE]: weights, 'tokenizer.json': null, 'tokenizer_config.json': null };
      };
      for (const field of ['hidden_size', 'num_hidden_layers', 'num_attention_heads', 'vocab_size', 'intermediate_size']) {
        for (const [label, value] of [['0', 0], ['−1', -1], ['1.5', 1.5], ['"64"', '64'], ['true', true], ['10⁹', 1e9]] as const) {
          folderCase(family, `${field} = ${label}`, cfg((c) => (c[field] = value)), error([C], /must be a positive integer|beyond the supported maximum|not divisible|not a multiple/));
        }
        folderCase(family, `${field} missing`, cfg((c) => delete c[field]), error(C, /is missing/));
      }
      const cases: [string, (c: Record<string, unknown>) => void, RegExp, string[]?][] = [
        ['tie_word_embeddings = "no"', (c) => (c.tie_word_embeddings = 'no'), /true or false/],
        ['rope_scaling = 5', (c) => (c.rope_scaling = 5), /"rope_scaling" must be an object or null/],
        ['rope_scaling yarn', (c) => (c.rope_scaling = { type: 'yarn', factor: 4 }), /"rope_scaling" type "yarn" is not supported/],
        ['rope_scaling linear without factor', (c) => (c.rope_scaling = { type: 'linear' }), /"rope_scaling\.factor" must be a positive number/],
        ['rope_scaling llama3 with equal frequency factors', (c) => (c.rope_scaling = { rope_type: 'llama3', factor: 8, low_freq_factor: 2, high_freq_factor: 2 }), /high_freq_factor" must differ/],
        ['rope_parameters = []', (c) => (c.rope_parameters = []), /"rope_parameters" must be an object or null/],
        ['rope_parameters.rope_theta = "big"', (c) => (c.rope_parameters = { rope_theta: 'big' }), /"rope_parameters\.rope_theta" must be a number/],
      ];
      if (model === 'random-tiny-neox') {
        cases.push(
          ['rotary_pct = −0.5', (c) => (c.rotary_pct = -0.5), /"rotary_pct" must be at least 0/],
          ['rotary_pct = 1.5', (c) => (c.rotary_pct = 1.5), /"rotary_pct" must be at most 1/],
          ['rotary_pct = "0.25"', (c) => (c.rotary_pct = '0.25'), /"rotary_pct" must be a number/],
          ['rotary_pct giving 3 rotary dims', (c) => (c.rotary_pct = 0.1875), /3 rotary dims .* even number/],
          ['partial_rotary_factor disagrees with rotary_pct', (c) => (c.partial_rotary_factor = 0.5), /"rotary_pct" = 0\.25 and "partial_rotary_factor" = 0\.5 disagree/],
          ['rotary_emb_base = 0', (c) => (c.rotary_emb_base = 0), /"rotary_emb_base" must be greater than 0/],
          ['rope_theta disagrees with rotary_emb_base', (c) => (c.rope_theta = 500), /"rotary_emb_base" = 10000 and "rope_theta" = 500 disagree/],
          ['rope_parameters.partial_rotary_factor disagrees', (c) => (c.rope_parameters = { partial_rotary_factor: 1 }), /"rope_parameters\.partial_rotary_factor" = 1 disagree/],
          ['use_parallel_residual = "yes"', (c) => (c.use_parallel_residual = 'yes'), /"use_parallel_residual" must be true or false/],
          ['hidden_act = "swiglu"', (c) => (c.hidden_act = 'swiglu'), /unsupported activation "swiglu"/],
          ['layer_norm_eps = −1', (c) => (c.layer_norm_eps = -1), /"layer_norm_eps" must be at least 0/],
          ['num_attention_heads = 3', (c) => (c.num_attention_heads = 3), /not divisible/],
          ['untied without embed_out', (c) => (c.model_type = 'gpt_neox'), /./, ['drop-head']],
        );
      }
      if (model === 'random-tiny-gemma2') {
        cases.push(
          ['query_pre_attn_scalar = 0', (c) => (c.query_pre_attn_scalar = 0), /"query_pre_attn_scalar" must be greater than 0/],
          ['query_pre_attn_scalar = "32"', (c) => (c.query_pre_attn_scalar = '32'), /must be a number/],
          ['attn_logit_softcapping = −2', (c) => (c.attn_logit_softcapping = -2), /"attn_logit_softcapping" must be greater than 0/],
          ['final_logit_softcapping = 0', (c) => (c.final_logit_softcapping = 0), /"final_logit_softcapping" must be greater than 0/],
          ['final_logit_softcapping = "5"', (c) => (c.final_logit_softcapping = '5'), /must be a number/],
          ['sliding_window = 0', (c) => (c.sliding_window = 0), /"sliding_window" must be a positive integer/],
          ['sliding_window = 1.5', (c) => (c.sliding_window = 1.5), /"sliding_window" must be a positive integer/],
          ['sliding_window = "8"', (c) => (c.sliding_window = '8'), /"sliding_window" must be a positive integer/],
          ['layer_types too short', (c) => (c.layer_types = ['sliding_attention']), /"layer_types" must list one entry per layer/],
          ['layer_types a string', (c) => (c.layer_types = 'sliding_attention'), /"layer_types" must list one entry per layer/],
          ['layer_types with an unknown kind', (c) => (c.layer_types = ['sliding_attention', 'chunked_attention']), /"layer_types\[1\]" is "chunked_attention"/],
          ['head_dim = 23 (odd)', (c) => (c.head_dim = 23), /head_dim 23 must be even/],
          ['head_dim = 32 (disagrees with the weights)', (c) => (c.head_dim = 32), /config\.json implies/, [ST_FILE]],
          ['num_key_value_heads = 3', (c) => (c.num_key_value_heads = 3), /not a multiple/],
          ['hidden_activation = "relu6"', (c) => (c.hidden_activation = 'relu6'), /unsupported activation "relu6"/],
          ['rms_norm_eps = "small"', (c) => (c.rms_norm_eps = 'small'), /"rms_norm_eps" must be a number/],
        );
      }
      if (model === 'random-tiny-qwen3') {
        cases.push(
          ['head_dim = 31', (c) => (c.head_dim = 31), /head_dim 31 must be even/],
          ['head_dim = 16 (disagrees with the weights)', (c) => (c.head_dim = 16), /config\.json implies/, [ST_FILE]],
          ['head_dim absent (Qwen3Config default 128 disagrees)', (c) => delete c.head_dim, /config\.json implies/, [ST_FILE]],
          ['num_key_value_heads = 3', (c) => (c.num_key_value_heads = 3), /not a multiple/],
          ['rope_theta = 0', (c) => (c.rope_theta = 0), /"rope_theta" must be greater than 0/],
          ['rope_parameters.rope_theta disagrees', (c) => (c.rope_parameters = { rope_type: 'default', rope_theta: 10000 }), /"rope_theta" = 1000000 and "rope_parameters\.rope_theta" = 10000 disagree/],
          ['use_sliding_window = "true"', (c) => (c.use_sliding_window = 'true'), /"use_sliding_window" must be true or false/],
          ['max_window_layers = −1 with sliding on', (c) => Object.assign(c, { use_sliding_window: true, sliding_window: 4, max_window_layers: -1 }), /"max_window_layers" must be a positive integer/],
          ['hidden_act = 5', (c) => (c.hidden_act = 5), /"hidden_act" must be a string/],
          ['tie_word_embeddings = 1', (c) => (c.tie_word_embeddings = 1), /true or false/],
        );
      }
      for (const [label, edit, problem, extra] of cases) {
        if (extra?.includes('drop-head')) {
          // The head is required when untied: the error names it and tie_word_embeddings.
          const c = structuredClone(base);
          const header = JSON.parse(weights.subarray(8, 8 + Number(weights.readBigUInt64LE(0))).toString('utf8'));
          delete header['embed_out.weight'];
          const json = Buffer.from(JSON.stringify(header));
          const length = Buffer.alloc(8);
          length.writeBigUInt64LE(BigInt(json.length));
          const bytes = Buffer.concat([length, json, weights.subarray(8 + Number(weights.readBigUInt64LE(0)))]);
          folderCase(family, label, () => ({ [C]: JSON.stringify(c), [ST_FILE]: bytes, 'tokenizer.json': null, 'tokenizer_config.json': null }), error(C, /"embed_out\.weight" is missing from the weights and "tie_word_embeddings" is false/));
          continue;
        }
        folderCase(family, label, cfg(edit), error([C, ...(extra ?? [])], problem));
      }
    });
  }

  // Gemma 3 and Phi-3 have no shared fixture: their folders are the random Gemma 2 (plus q/k norm
  // gains) and the random Llama (fused qkv_proj / gate_up_proj), as in test/unit/hf-loading.test.ts.
  describe('config.json of Gemma 3 and Phi-3 folders built from the fixtures', { skip: missingShared('models/random-tiny-gemma2/model.safetensors') || missingShared('models/random-tiny-llama/model.safetensors') }, () => {
    if (missingShared('models/random-tiny-gemma2/model.safetensors') || missingShared('models/random-tiny-llama/model.safetensors')) return;
    const C = 'config.json';
    const encode = (tensors: Map<string, { shape: readonly number[]; data: Float32Array }>) => {
      const header: Record<string, unknown> = {};
      const parts: Buffer[] = [];
      let offset = 0;
      for (const [name, t] of tensors) {
        const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
        header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes.length] };
        parts.push(bytes);
        offset += bytes.length;
      }
      return safetensorsBytes(header, Buffer.concat(parts));
    };
    const read = (model: string) => {
      const file = SafetensorsFile.open(path.join(sharedModel(model), ST_FILE));
      return new Map([...file.tensors.keys()].map((n) => [n, { shape: file.get(n).shape, data: file.readFloat32(n) }]));
    };
    const gemma = read('random-tiny-gemma2');
    for (const l of [0, 1]) for (const n of ['q_norm', 'k_norm']) gemma.set(`model.layers.${l}.self_attn.${n}.weight`, { shape: [24], data: new Float32Array(24).fill(0.1) });
    const llama = read('random-tiny-llama');
    const phi = new Map([...llama].filter(([n]) => !/\.(self_attn\.[qkv]_proj|mlp\.(gate|up)_proj)\.weight$/.test(n)));
    const join = (...names: string[]) => {
      const parts = names.map((n) => llama.get(n)!);
      const data = new Float32Array(parts.reduce((a, t) => a + t.data.length, 0));
      let at = 0;
      for (const t of parts) {
        data.set(t.data, at);
        at += t.data.length;
      }
      return { shape: [parts.reduce((a, t) => a + t.shape[0]!, 0), 64], data };
    };
    for (const l of [0, 1]) {
      const p = `model.layers.${l}`;
      phi.set(`${p}.self_attn.qkv_proj.weight`, join(`${p}.self_attn.q_proj.weight`, `${p}.self_attn.k_proj.weight`, `${p}.self_attn.v_proj.weight`));
      phi.set(`${p}.mlp.gate_up_proj.weight`, join(`${p}.mlp.gate_proj.weight`, `${p}.mlp.up_proj.weight`));
    }
    const folders = {
      gemma3: { config: { ...JSON.parse(fs.readFileSync(path.join(sharedModel('random-tiny-gemma2'), C), 'utf8')), model_type: 'gemma3_text', sliding_window_pattern: 2 }, weights: encode(gemma) },
      phi3: { config: { ...JSON.parse(fs.readFileSync(path.join(sharedModel('random-tiny-llama'), C), 'utf8')), model_type: 'phi3', sliding_window: null }, weights: encode(phi) },
    };
    const cases: ['gemma3' | 'phi3', string, (c: Record<string, unknown>) => void, RegExp, string[]?][] = [
      ['gemma3', 'valid as built (control)', () => undefined, /^$/],
      ['gemma3', 'rope_local_base_freq = 0', (c) => (c.rope_local_base_freq = 0), /"rope_local_base_freq" must be greater than 0/],
      ['gemma3', 'rope_local_base_freq = "1e4"', (c) => (c.rope_local_base_freq = '1e4'), /"rope_local_base_freq" must be a number/],
      ['gemma3', 'sliding_window_pattern = 0', (c) => (c.sliding_window_pattern = 0), /"sliding_window_pattern" must be a positive integer/],
      ['gemma3', 'rope_parameters.sliding_attention = 5', (c) => (c.rope_parameters = { full_attention: { rope_theta: 1e6 }, sliding_attention: 5 }), /"rope_parameters\.sliding_attention" must be an object/],
      ['gemma3', 'rope_parameters.full_attention.rope_theta = −1', (c) => (c.rope_parameters = { full_attention: { rope_theta: -1 } }), /"rope_parameters\.full_attention\.rope_theta" must be a positive number/],
      ['gemma3', 'rope_parameters.full_attention yarn', (c) => (c.rope_parameters = { full_attention: { rope_type: 'yarn', factor: 8 } }), /"rope_parameters\.full_attention" type "yarn" is not supported/],
      ['gemma3', 'use_bidirectional_attention', (c) => (c.use_bidirectional_attention = true), /"use_bidirectional_attention"/],
      ['gemma3', 'q_norm missing (model_type gemma3_text on Gemma 2 weights)', (c) => (c.model_type = 'gemma3_text'), /q_norm\.weight" is missing/, [ST_FILE]],
      ['phi3', 'valid as built (control)', () => undefined, /^$/],
      ['phi3', 'rope_scaling longrope', (c) => (c.rope_scaling = { type: 'longrope', short_factor: [1], long_factor: [1] }), /"rope_scaling" type "longrope" \(Phi-3 long context\) is not supported/],
      ['phi3', 'partial_rotary_factor = 0.3125 (5 dims)', (c) => (c.partial_rotary_factor = 0.3125), /gives 5 rotary dims/],
      ['phi3', 'partial_rotary_factor = 2', (c) => (c.partial_rotary_factor = 2), /"partial_rotary_factor" must be at most 1/],
      ['phi3', 'num_key_value_heads = 4 (disagrees with qkv_proj)', (c) => (c.num_key_value_heads = 4), /config\.json implies/, [ST_FILE]],
      ['phi3', 'intermediate_size = 88 (disagrees with gate_up_proj)', (c) => (c.intermediate_size = 88), /config\.json implies/, [ST_FILE]],
      ['phi3', 'sliding_window = −1', (c) => (c.sliding_window = -1), /"sliding_window" must be a positive integer/],
    ];
    for (const [kind, label, edit, problem, extra] of cases) {
      const { config, weights } = folders[kind];
      const c = structuredClone(config);
      edit(c);
      const weightsFor = label.startsWith('q_norm missing') ? fs.readFileSync(path.join(sharedModel('random-tiny-gemma2'), ST_FILE)) : weights;
      const files = () => ({ [C]: JSON.stringify(c), [ST_FILE]: weightsFor, 'tokenizer.json': null, 'tokenizer_config.json': null });
      if (label.includes('(control)')) {
        it(`${kind}: ${label}`, () => assert.doesNotThrow(() => {
          const dir = modelFolder(root, `${kind}-control`, files());
          try {
            openModel(dir);
          } finally {
            fs.rmSync(dir, { recursive: true, force: true });
          }
        }));
        continue;
      }
      folderCase(`${kind}-config`, label, files, error([C, ...(extra ?? [])], problem));
    }
  });

  // -------------------------------------------------------------------------------------------
  describe('tokenizer.json', () => {
    const F = 'tokenizer';
    const T = 'tokenizer.json';
    const tok = (edit: (t: Record<string, any>) => unknown) => () => {
      const t = structuredClone(TOKENIZER);
      const replaced = edit(t);
      return { [T]: JSON.stringify(replaced === undefined ? t : replaced) };
    };
    const text = BASE['tokenizer.json'].toString('utf8');
    const r = rng(11);
    const cuts = new Set<number>([1, text.length - 1]);
    while (cuts.size < 10) cuts.add(1 + r.int(text.length - 2));
    for (const at of [...cuts].sort((a, b) => a - b)) folderCase(F, `truncated at character ${at}`, () => ({ [T]: text.slice(0, at) }), error(T, /not valid JSON/));
    for (const [label, content] of [['an empty file', ''], ['whitespace only', '\n\n'], ['random bytes', Buffer.from(Array.from({ length: 2048 }, () => r.int(256)))], ['UTF-16', Buffer.from(text, 'utf16le')]] as const) {
      folderCase(F, `not JSON: ${label}`, () => ({ [T]: content }), error(T, /not valid JSON/));
    }
    for (const [label, top] of [['null', null], ['an array', []], ['a number', 5], ['a string', 'BPE'], ['an empty object', {}]] as const) {
      folderCase(F, `top level is ${label}`, () => ({ [T]: JSON.stringify(top) }), error(T, /not a JSON object|not supported/));
    }
    const models: [string, (t: Record<string, any>) => unknown, RegExp][] = [
      ['model missing', (t) => void delete t.model, /not supported/],
      ['model null', (t) => void (t.model = null), /not supported/],
      ['model a string', (t) => void (t.model = 'BPE'), /not supported|cannot build|vocab/],
      ['model an array', (t) => void (t.model = []), /not supported|cannot build|vocab/],
      ['model empty', (t) => void (t.model = {}), /cannot build|vocab/],
      ['model type 5', (t) => void (t.model.type = 5), /not supported/],
      ['model type "Foo"', (t) => void (t.model.type = 'Foo'), /not supported/],
      ['model type "bpe"', (t) => void (t.model.type = 'bpe'), /not supported/],
      ['model type "SentencePiece"', (t) => void (t.model.type = 'SentencePiece'), /not supported/],
      ['model type Unigram with a BPE vocabulary', (t) => void (t.model.type = 'Unigram'), /Unigram/],
      ['vocab missing', (t) => void delete t.model.vocab, /vocab/],
      ['vocab null', (t) => void (t.model.vocab = null), /vocab/],
      ['vocab an array', (t) => void (t.model.vocab = [1, 2, 3]), /vocab/],
      ['vocab a string', (t) => void (t.model.vocab = 'x'), /vocab/],
      ['a negative id', (t) => void (t.model.vocab.zzz = -1), /vocab.*-1/],
      ['a string id', (t) => void (t.model.vocab.zzz = '12'), /vocab/],
      ['a fractional id', (t) => void (t.model.vocab.zzz = 1.5), /vocab/],
      ['merges a string', (t) => void (t.model.merges = 'a b'), /cannot build/],
      ['merges numbers', (t) => void (t.model.merges = [1, 2, 3]), /cannot build/],
      ['merges missing', (t) => void delete t.model.merges, /cannot build/],
      ['unknown pre_tokenizer', (t) => void (t.pre_tokenizer = { type: 'Foo' }), /cannot build/],
      ['pre_tokenizer a string', (t) => void (t.pre_tokenizer = 'ByteLevel'), /cannot build/],
      ['unknown decoder', (t) => void (t.decoder = { type: 'Foo' }), /cannot build/],
      ['unknown normalizer', (t) => void (t.normalizer = { type: 'Foo' }), /cannot build/],
      ['unknown post_processor', (t) => void (t.post_processor = { type: 'Foo' }), /cannot build/],
      ['added_tokens a number', (t) => void (t.added_tokens = 5), /cannot build/],
      ['added_tokens holding null', (t) => void (t.added_tokens = [null]), /cannot build/],
      ['added_tokens missing', (t) => void delete t.added_tokens, /cannot build/],
    ];
    for (const [label, edit, problem] of models) folderCase(F, label, tok(edit), error(T, problem));
    folderCase(F, 'tokenizer.json is a folder', () => ({ [T]: null }), error(T, /not a regular file/), (dir) => fs.mkdirSync(path.join(dir, T)));
    folderCase(F, 'tokenizer_config.json not JSON', () => ({ 'tokenizer_config.json': '{"bos_token": ' }), error('tokenizer_config.json', /not valid JSON/));
    folderCase(F, 'tokenizer_config.json empty', () => ({ 'tokenizer_config.json': '' }), error('tokenizer_config.json', /not valid JSON/));
  });

  // -------------------------------------------------------------------------------------------
  describe('task JSONL', () => {
    const F = 'task';
    const SOURCE = 'broken.jsonl';
    const good = fs.readFileSync(path.join(EMBEDDED_MODEL, 'ioi.jsonl'), 'utf8').split('\n').filter(Boolean).slice(0, 6);
    const sample = JSON.parse(good[0]!) as Record<string, any>;
    const ids: number[] = sample.prompt_ids;
    const rec = (edit: (r: Record<string, any>) => void) => {
      const r = structuredClone(sample);
      edit(r);
      return JSON.stringify(r);
    };
    const kinds: [string, string, RegExp][] = [
      ['not JSON: cut in half', good[1]!.slice(0, 120), /not valid JSON/],
      ['not JSON: trailing comma', good[1]!.replace(/}$/, ',}'), /not valid JSON/],
      ['not JSON: single quotes', `{'prompt': 'When Mary and John'}`, /not valid JSON/],
      ['not JSON: NaN id', good[1]!.replace(/"io_id": \d+/, '"io_id": NaN'), /not valid JSON/],
      ['not JSON: a bare word', 'prompt', /not valid JSON/],
      ['not JSON: two records on one line', `${good[1]} ${good[2]}`, /not valid JSON/],
      ['not JSON: a lone brace', '{', /not valid JSON/],
      ['an array', JSON.stringify([sample]), /expected a JSON object/],
      ['a number', '42', /expected a JSON object/],
      ['a string', '"When Mary and John went to the store"', /expected a JSON object/],
      ['null', 'null', /expected a JSON object/],
      ['true', 'true', /expected a JSON object/],
      ['no prompt', rec((r) => { delete r.prompt; delete r.prompt_ids; }), /missing the prompt/],
      ['prompt a number', rec((r) => { r.prompt = 5; }), /"prompt" must be a string/],
      ['prompt an array', rec((r) => { r.prompt = ['When']; }), /"prompt" must be a string/],
      ['prompt null', rec((r) => { r.prompt = null; }), /"prompt" must be a string/],
      ['prompt_ids a string', rec((r) => { r.prompt_ids = '1 2 3'; }), /"prompt_ids" must be an array/],
      ['prompt_ids holding strings', rec((r) => { r.prompt_ids = ids.map(String); }), /prompt_ids\[0\]/],
      ['prompt_ids holding a fraction', rec((r) => { r.prompt_ids = [...ids.slice(0, 3), 1.5, ...ids.slice(4)]; }), /prompt_ids\[3\]/],
      ['prompt_ids holding −1', rec((r) => { r.prompt_ids = [-1, ...ids.slice(1)]; }), /prompt_ids\[0\]/],
      ['prompt_ids holding the vocabulary size', rec((r) => { r.prompt_ids = [...ids.slice(0, -1), VOCAB]; }), /outside the vocabulary of 2088/],
      ['prompt_ids holding 10⁹', rec((r) => { r.prompt_ids = [1e9, ...ids.slice(1)]; }), /outside the vocabulary/],
      ['prompt_ids empty', rec((r) => { r.prompt_ids = []; delete r.corrupted_ids; }), /prompt is empty/],
      ['io_id out of vocabulary', rec((r) => { r.io_id = 5000; }), /io_id.*outside the vocabulary/],
      ['s_id negative', rec((r) => { r.s_id = -3; }), /s_id/],
      ['io_id a string', rec((r) => { r.io_id = ' Mary'; }), /io_id/],
      ['io two tokens (text only)', rec((r) => { delete r.io_id; r.io = ' Hugo Sean'; }), /is 2 tokens|tokens; the metric/],
      ['io empty (text only)', rec((r) => { delete r.io_id; r.io = ''; }), /is 0 tokens/],
      ['corrupted_ids one token short', rec((r) => { r.corrupted_ids = r.corrupted_ids.slice(1); }), /"corrupted_ids" has \d+ tokens but the prompt has/],
      ['corrupted_ids one token long', rec((r) => { r.corrupted_ids = [...r.corrupted_ids, 13]; }), /"corrupted_ids" has \d+ tokens but the prompt has/],
      ['corrupted_ids out of vocabulary', rec((r) => { r.corrupted_ids = [...r.corrupted_ids.slice(0, -1), 99999]; }), /corrupted_ids\[\d+\].*outside the vocabulary/],
      ['corrupted_prompt tokenizing to another length', rec((r) => { delete r.corrupted_ids; r.corrupted_prompt = 'Then, Mark'; }), /corrupted_prompt" has \d+ tokens but the prompt has/],
      ['no foil for a logit_diff task', rec((r) => { delete r.s; delete r.s_id; }), /needs a foil token/],
      ['yy_token_ids of 99', rec((r) => { r.yy_token_ids = Array.from({ length: 99 }, (_, i) => i); r.start_yy = 5; }), /exactly 100/],
      ['start_yy out of range', rec((r) => { r.yy_token_ids = Array.from({ length: 100 }, (_, i) => i); r.start_yy = 100; }), /start_yy/],
      ['good_ids a number', rec((r) => { r.good_ids = 5; }), /good_ids/],
    ];
    const r = rng(12);
    for (const [label, line, problem] of kinds) {
      for (let k = 0; k < 2; k++) {
        const position = r.int(good.length + 1); // index among the good lines
        const crlf = r.float() < 0.5;
        const blanks = r.int(3); // blank lines before the broken one
        const lines = [...good.slice(0, position), ...Array.from({ length: blanks }, () => ''), line, ...good.slice(position)];
        const expectedLine = position + blanks + 1;
        const body = lines.join(crlf ? '\r\n' : '\n') + '\n';
        it(`${label} at line ${expectedLine}${crlf ? ' (CRLF)' : ''}`, async () => {
          const encode = (t: string) => engine.tokenizer!.encode(t).ids;
          await runCase(tally, {
            family: F,
            name: `${label} at line ${expectedLine}`,
            expect: error(`${SOURCE}:${expectedLine}:`, problem, expectedLine),
            watch: [root],
            run: () => parseTaskJsonl(body, SOURCE, { vocabSize: VOCAB, encode }),
          });
        });
      }
    }
    const fileCase = (label: string, setup: (file: string) => void, problem: RegExp) => {
      it(`task file: ${label}`, async () => {
        const dir = fs.mkdtempSync(path.join(root, 'task-'));
        const file = path.join(dir, 'task.jsonl');
        setup(file);
        try {
          await runCase(tally, { family: F, name: `task file: ${label}`, expect: error('task.jsonl', problem), watch: [root], run: () => loadTaskFile(file, { vocabSize: VOCAB }) });
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      });
    };
    fileCase('missing', () => undefined, /cannot read/);
    fileCase('a folder', (f) => fs.mkdirSync(f), /cannot read/);
    fileCase('empty', (f) => fs.writeFileSync(f, ''), /no examples/);
    fileCase('blank lines only', (f) => fs.writeFileSync(f, '\n\r\n  \n'), /no examples/);
    fileCase('binary garbage', (f) => fs.writeFileSync(f, Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37 + 11) % 256))), /task\.jsonl:1: not valid JSON/);
  });

  // -------------------------------------------------------------------------------------------
  let engine: Engine;
  let engineDir: string;
  before(async () => {
    engineDir = modelFolder(root, 'engine');
    engine = await Engine.load(engineDir);
  });
  after(async () => {
    await engine?.dispose();
  });

  describe('prompts', () => {
    const F = 'prompt';
    const promptCase = (name: string, text: () => string, expect: Expectation, budgetMs = 15_000) => {
      it(name, async () => {
        const prompt = text();
        const e = engine;
        await runCase(tally, { family: F, name, expect, budgetMs, watch: [root], run: () => e.encode(prompt) });
      });
    };
    const tooLong = error('prompt', /the prompt has \d+ tokens, longer than the model's context of 128/);
    const r = rng(13);
    const randomChars = (n: number, ranges: [number, number][]) => {
      let s = '';
      while (s.length < n) {
        const [lo, hi] = r.pick(ranges);
        s += String.fromCodePoint(lo + r.int(hi - lo));
      }
      return s.slice(0, n);
    };
    promptCase('an empty prompt', () => '', error('prompt', /the prompt is empty/));
    const huge: [string, () => string][] = [
      ['ASCII letters', () => 'a'.repeat(100_000)],
      ['words', () => 'the war '.repeat(12_500)],
      ['spaces', () => ' '.repeat(100_000)],
      ['newlines', () => '\n'.repeat(100_000)],
      ['emoji', () => '😀'.repeat(50_000)],
      ['CJK', () => '漢'.repeat(100_000)],
      ['Hebrew and Arabic', () => 'שלום مرحبا '.repeat(9_091).slice(0, 100_000)],
      ['random Unicode', () => randomChars(100_000, [[0x20, 0x7f], [0x400, 0x4ff], [0x4e00, 0x9fff], [0x1f300, 0x1f6ff]])],
      ['combining marks', () => `a${'\u0301'.repeat(99_999)}`],
      ['zero-width joiners', () => 'a\u200d'.repeat(50_000)],
    ];
    // Before the length check moved ahead of the offsets, 20 000 characters took 7 s and 100 000 minutes;
    // 15 s separates that from a loaded 2-core machine (6 s seen with five other jobs running).
    for (const [label, text] of huge) promptCase(`100 000 characters of ${label} is refused quickly`, text, tooLong);
    promptCase('129 one-token words is refused', () => ' the'.repeat(129), tooLong);

    const accept = (text: () => string, needsReplacement = false): Expectation => ({
      kind: 'accept',
      verify: (result) => {
        const t = text();
        if (needsReplacement && !t.includes('\uFFFD')) throw new Error('expected U+FFFD in the decoded prompt');
        checkOffsets(t, result as { ids: number[]; offsets: [number, number][] }, VOCAB);
      },
    });
    const odd = (name: string, make: () => string, needsReplacement = false) => {
      const text = make();
      promptCase(name, () => text, accept(() => text, needsReplacement));
    };
    for (const ws of [' ', '\t', '\n', '   \n\t ', '\u00a0', '\u3000', '\u2028', '\r\n\r\n']) odd(`whitespace only: ${JSON.stringify(ws)}`, () => ws);
    const pools: Record<string, string[]> = {
      'RTL text': ['שלום', 'עולם', 'مرحبا', 'بالعالم', '\u200f', '\u200e', '\u202e', '\u202c', ' ', 'Mary'],
      emoji: ['😀', '👨‍👩‍👧‍👦', '👍🏽', '🇫🇷', '🏳️‍🌈', '❤️', ' ', 'a'],
      'combining characters': ['e\u0301', 'a\u0308\u0301', 'n\u0303', 'Z\u0336\u0337\u0338', '\u0301', ' ', 'o'],
      'zero-width joiners': ['\u200d', '\u200c', '\u200b', '\u2060', '\ufeff', 'a', 'b', ' '],
      'control characters': ['\u0000', '\u0007', '\u001b[31m', '\u007f', '\u0085', 'x', ' '],
      'lone surrogates': ['\ud800', '\udfff', '\ud83d', 'x', ' '],
      'mixed scripts': ['When', ' Mary', ' 漢字', ' Привет', ' Ελλάδα', ' 🎉', ' 123', '\t'],
    };
    for (const [family, pool] of Object.entries(pools)) {
      for (let seed = 0; seed < 4; seed++) {
        const pr = rng(100 + seed * 31 + family.length);
        odd(`${family} (seed ${seed})`, () => Array.from({ length: 3 + pr.int(6) }, () => pr.pick(pool)).join(''));
      }
    }
    for (let seed = 0; seed < 6; seed++) {
      const pr = rng(200 + seed);
      const bytes = Buffer.from(Array.from({ length: 8 + pr.int(16) }, () => (pr.float() < 0.5 ? 0x80 + pr.int(128) : 0x61 + pr.int(26))));
      bytes[0] = 0xff; // never valid in UTF-8
      odd(`non-UTF-8 bytes decoded as U+FFFD (seed ${seed})`, () => bytes.toString('utf8'), true);
    }
    odd('a literal U+FFFD', () => 'x\uFFFD\uFFFDy');
    odd('exactly 128 tokens (the whole context)', () => ' the'.repeat(128));

    it('the engine still runs after every bad prompt', async () => {
      const [row] = await engine.forward({ ids: [engine.encode('When Mary and John went to the store, John gave a drink to').ids] });
      assert.ok(row!.logitsLast.every(Number.isFinite));
    });
  });

  describe('CLI input and output paths', () => {
    const F = 'cli-paths';
    /** Runs the CLI in-process; exit 2 (bad input) becomes the InputError the harness classifies. */
    const cli = (argv: string[]) => async () => {
      const write = process.stderr.write.bind(process.stderr);
      let stderr = '';
      process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += String(chunk)), true)) as typeof process.stderr.write;
      let code: number;
      try {
        code = await cliMain(argv);
      } finally {
        process.stderr.write = write;
      }
      if (code === 2) throw new InputError(stderr.trim());
      if (code !== 0) throw new Error(`exit ${code}: ${stderr.trim()}`);
      return code;
    };
    const dir = path.join(root, 'cli-paths');
    const fifo = path.join(root, 'cli-fifo.jsonl');
    const circuit = path.join(root, 'cli-circuit.json');
    before(() => {
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(circuit, JSON.stringify(tinyNodeGraph()));
      execFileSync('mkfifo', [fifo]);
    });
    const ioi = path.join(EMBEDDED_MODEL, 'ioi.jsonl');
    const cases: [string, string[], Expectation][] = [
      ['discover --out names an existing folder', ['discover', '--task', ioi, '--n', '2', '--no-verify', '--out', dir], error('cli-paths', /not a regular file/)],
      ['discover --out in a missing folder', ['discover', '--task', ioi, '--n', '2', '--no-verify', '--out', path.join(dir, 'missing', 'c.json')], error('missing', /does not exist/)],
      ['discover --task is a FIFO', ['discover', '--task', fifo, '--n', '2', '--no-verify'], error('cli-fifo.jsonl', /not a regular file/)],
      ['verify --circuit is a folder', ['verify', '--circuit', dir], error('cli-paths', /not a regular file/)],
      ['verify --circuit is a FIFO', ['verify', '--circuit', fifo], error('cli-fifo.jsonl', /not a regular file/)],
      ['export --out names an existing folder', ['export', '--circuit', circuit, '--format', 'eap-ig', '--out', dir], error('cli-paths', /not a regular file/)],
    ];
    for (const [name, argv, expect] of cases) {
      it(name, async () => runCase(tally, { family: F, name, expect, watch: [dir], run: cli(argv) }));
    }
  });

  describe('controls (not counted: the generators themselves are sound)', () => {
    it('an untouched copy loads', () => {
      const dir = modelFolder(root, 'control');
      try {
        openModel(dir);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
    for (const dtype of ['F32', 'F16', 'BF16', 'F64'] as const) {
      it(`a tensor re-encoded as ${dtype} (no non-finite values) loads`, () => {
        const dir = modelFolder(root, `control-${dtype}`, { [ST_FILE]: withTensorAs('transformer.h.1.mlp.c_fc.weight', dtype) });
        try {
          openModel(dir);
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      });
    }
    for (const misalign of [1, 2, 3]) {
      it(`data ${misalign} bytes off alignment (F32 and BF16) loads`, () => {
        const dir = modelFolder(root, 'control-misaligned', { [ST_FILE]: withTensorAs('transformer.h.0.ln_2.weight', 'BF16', undefined, misalign) });
        try {
          openModel(dir);
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      });
    }
    it('an edited header with no edit loads', () => {
      const dir = modelFolder(root, 'control-header', { [ST_FILE]: editedHeader(() => undefined) });
      try {
        openModel(dir);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
