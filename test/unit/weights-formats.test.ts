/**
 * The weight formats a Hugging Face folder may come in: sharded safetensors with an index, and
 * F16/BF16 tensors (converted to float32 for the graph). Built from the embedded model.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Engine } from '../../src/engine/engine';
import { SafetensorsFile } from '../../src/models/safetensors';
import { EMBEDDED_MODEL, maxAbsDiff, tempDir } from '../helpers';

const IDS = [770, 11, 1038, 468, 1012, 565, 1030, 1034, 1031, 464, 461, 909, 13, 1038, 669, 464];

type Encoded = { name: string; dtype: 'F32' | 'F16' | 'BF16'; shape: readonly number[]; bytes: Buffer };

function writeSafetensors(file: string, tensors: Encoded[]): void {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([length, json, ...tensors.map((t) => t.bytes)]));
}

function toHalf(value: number): number {
  // Round-to-nearest float32 → float16 for the weights' range (no subnormal care needed here).
  const f = new Float32Array([value]);
  const u = new Uint32Array(f.buffer)[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exponent = ((u >>> 23) & 0xff) - 127 + 15;
  const mantissa = u & 0x7fffff;
  if (exponent <= 0) return sign;
  if (exponent >= 31) return sign | 0x7c00;
  return sign | ((exponent << 10) + Math.round(mantissa / 8192)); // + lets a rounding carry reach the exponent
}

function encode(data: Float32Array, dtype: Encoded['dtype']): Buffer {
  if (dtype === 'F32') return Buffer.from(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  const out = Buffer.alloc(data.length * 2);
  const u32 = new Uint32Array(data.buffer, data.byteOffset, data.length);
  for (let i = 0; i < data.length; i++) out.writeUInt16LE(dtype === 'F16' ? toHalf(data[i]!) : Math.round(u32[i]! / 65536) & 0xffff, i * 2);
  return out;
}

function variant(tag: string, dtype: Encoded['dtype'], shards: number): string {
  const dir = tempDir(tag);
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(EMBEDDED_MODEL, f), path.join(dir, f));
  const source = SafetensorsFile.open(path.join(EMBEDDED_MODEL, 'model.safetensors'));
  const names = [...source.tensors.keys()];
  const tensors = names.map((name) => ({ name, dtype, shape: source.get(name).shape, bytes: encode(source.readFloat32(name), dtype) }));
  if (shards === 1) {
    writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
    return dir;
  }
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const part = tensors.filter((_, i) => i % shards === s);
    part.forEach((t) => (weightMap[t.name] = file));
    writeSafetensors(path.join(dir, file), part);
  }
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return dir;
}

async function logitsOf(folder: string): Promise<Float32Array> {
  const engine = await Engine.load(folder);
  try {
    return (await engine.forward({ ids: [IDS] }))[0]!.logitsLast;
  } finally {
    await engine.dispose();
  }
}

describe('weight formats', () => {
  it('a sharded model (3 shards + index) gives the same logits as the single file', async () => {
    const reference = await logitsOf(EMBEDDED_MODEL);
    assert.ok(maxAbsDiff(await logitsOf(variant('sharded', 'F32', 3)), reference) < 1e-5);
  });

  for (const dtype of ['F16', 'BF16'] as const) {
    it(`${dtype} weights load, convert to float32 and keep the logits close`, async () => {
      const reference = await logitsOf(EMBEDDED_MODEL);
      const ours = await logitsOf(variant(dtype.toLowerCase(), dtype, 2));
      const tolerance = dtype === 'F16' ? 0.02 : 0.2; // 10 vs 7 mantissa bits through 4 layers
      assert.ok(maxAbsDiff(ours, reference) < tolerance, `max |Δ| ${maxAbsDiff(ours, reference)}`);
      assert.equal(ours.indexOf(Math.max(...ours)), reference.indexOf(Math.max(...reference)), 'same top token');
    });
  }

  it('an index that names a shard outside the folder is refused', async () => {
    const dir = variant('evil-index', 'F32', 2);
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8'));
    index.weight_map['transformer.wte.weight'] = '../../etc/passwd';
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
    await assert.rejects(Engine.load(dir), /shard name "..\/..\/etc\/passwd" for "transformer.wte.weight" is not a plain file name/);
  });
});
