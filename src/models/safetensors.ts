/**
 * A safetensors reader. The format is an 8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?}`, then raw little-endian
 * tensor data. Everything in the header is checked against the file before any tensor is
 * used, because model folders come from the internet.
 */
import * as fs from 'node:fs';
import { InputError } from './errors';

export type DType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const DTYPE_BYTES: Record<DType, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

/** The dtypes whose values can become float32 weights. */
export const FLOAT_DTYPES: readonly DType[] = ['F32', 'F16', 'BF16', 'F64'];

/** Headers larger than this are refused: real headers are kilobytes, a lying one could be terabytes. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface TensorInfo {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Absolute byte offset of the data in the file. */
  readonly offset: number;
  readonly byteLength: number;
  readonly file: string;
}

export class SafetensorsFile {
  private data: Buffer | undefined;
  private readonly mustBeFinite = new Set<string>();
  /** Tensors already scanned from disk by `verifyFinite` (no whole-file read). */
  private readonly scanned = new Set<string>();

  private constructor(
    readonly path: string,
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    readonly metadata: Readonly<Record<string, string>>,
    readonly size: number,
  ) {}

  /** Reads and validates the header only; tensor data is read on first use. */
  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      // Checked before the open: opening a FIFO blocks until a writer comes, which never happens.
      if (!fs.statSync(path).isFile()) throw new InputError('not a regular file', path);
      fd = fs.openSync(path, 'r');
    } catch (err) {
      if (err instanceof InputError) throw err;
      throw new InputError(`cannot read safetensors file (${(err as NodeJS.ErrnoException).code ?? String(err)})`, path);
    }
    try {
      const stat = fs.fstatSync(fd);
      if (!stat.isFile()) throw new InputError('not a regular file', path);
      const size = stat.size;
      const lengthBytes = Buffer.alloc(8);
      const got = fs.readSync(fd, lengthBytes, 0, 8, 0);
      if (got < 8) throw new InputError(`truncated: ${size} bytes, shorter than the 8-byte header length`, path);
      const headerLength = checkHeaderLength(Number(lengthBytes.readBigUInt64LE(0)), size, path);
      const header = Buffer.alloc(headerLength);
      fs.readSync(fd, header, 0, headerLength, 8);
      const { tensors, metadata } = parseHeader(header, size, path);
      return new SafetensorsFile(path, tensors, metadata, size);
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * The whole file: handed to ONNX Runtime as external data, and read from for conversions.
   * Tensors passed to `requireFinite` are scanned when it is first read.
   */
  get bytes(): Buffer {
    if (!this.data) {
      let data: Buffer;
      try {
        data = fs.readFileSync(this.path);
      } catch (err) {
        throw new InputError(`cannot read safetensors file (${(err as NodeJS.ErrnoException).code ?? String(err)})`, this.path);
      }
      if (data.length !== this.size) throw new InputError(`the file changed size while open (${this.size} → ${data.length} bytes)`, this.path);
      for (const name of this.mustBeFinite) this.checkFinite(name, data);
      this.data = data;
    }
    return this.data;
  }

  /**
   * Marks a tensor whose values must all be finite: one NaN or ±Infinity weight turns every
   * logit into NaN with nothing to say why. Checked when the data is read (at once if it was).
   */
  requireFinite(name: string): void {
    this.get(name);
    this.mustBeFinite.add(name);
    if (this.data) this.checkFinite(name, this.data);
  }

  private checkFinite(name: string, data: Buffer): void {
    const info = this.get(name);
    const bad = firstNonFinite(info, data);
    if (bad) this.reportNonFinite(name, bad);
  }

  private reportNonFinite(name: string, bad: { index: number; value: number }): never {
    const info = this.get(name);
    const columns = info.shape.length > 1 ? info.shape[info.shape.length - 1]! : 0;
    const at = columns > 0 ? `element ${bad.index} (row ${Math.floor(bad.index / columns)})` : `element ${bad.index}`;
    throw new InputError(`tensor "${name}" holds ${bad.value} at ${at}; non-finite weights would make every logit NaN (corrupt download or broken conversion?)`, this.path);
  }

  /**
   * The file's real location (symlinks resolved: Hugging Face's cache links snapshots to
   * blobs). ONNX Runtime reads external data only from inside the folder it is given, and it
   * resolves links before checking, so a graph that lets ORT map this file names the real file.
   */
  get realPath(): string {
    return (this.resolved ??= fs.realpathSync(this.path));
  }

  private resolved: string | undefined;

  /**
   * Runs the `requireFinite` checks without reading the whole file into memory: each tensor is
   * read from disk in 16 MiB chunks. Used when ONNX Runtime maps the file itself (session.ts),
   * so JavaScript never holds the weights. A no-op for tensors already checked.
   */
  verifyFinite(): void {
    const pending = [...this.mustBeFinite].filter((n) => !this.scanned.has(n));
    if (pending.length === 0 || this.data) return;
    const CHUNK = 16 * 1024 * 1024;
    const chunk = Buffer.allocUnsafeSlow(CHUNK);
    let fd: number;
    try {
      fd = fs.openSync(this.path, 'r');
    } catch (err) {
      throw new InputError(`cannot read safetensors file (${(err as NodeJS.ErrnoException).code ?? String(err)})`, this.path);
    }
    try {
      if (fs.fstatSync(fd).size !== this.size) throw new InputError(`the file changed size while open (${this.size} → ${fs.fstatSync(fd).size} bytes)`, this.path);
      for (const name of pending) {
        const info = this.get(name);
        const width = DTYPE_BYTES[info.dtype];
        for (let done = 0; done < info.byteLength; done += CHUNK) {
          const length = Math.min(CHUNK, info.byteLength - done);
          const got = fs.readSync(fd, chunk, 0, length, info.offset + done);
          if (got !== length) throw new InputError(`short read of tensor "${name}" (file truncated while open?)`, this.path);
          const bad = firstNonFinite({ ...info, offset: 0, byteLength: length }, chunk);
          if (bad) this.reportNonFinite(name, { index: bad.index + done / width, value: bad.value });
        }
        this.scanned.add(name);
      }
    } finally {
      fs.closeSync(fd);
    }
  }

  get(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new InputError(`tensor "${name}" is missing`, this.path);
    return info;
  }

  /** The tensor's values as float32 (converting F16/BF16/F64), in the file's layout. */
  readFloat32(name: string): Float32Array {
    return toFloat32(this.get(name), this.bytes);
  }
}

function checkHeaderLength(headerLength: number, fileSize: number, path: string): number {
  if (headerLength > MAX_HEADER_BYTES) {
    throw new InputError(`header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit (corrupt or not a safetensors file)`, path);
  }
  if (8 + headerLength > fileSize) {
    throw new InputError(`truncated: header says ${headerLength} bytes but the file has ${fileSize - 8} after the length`, path);
  }
  return headerLength;
}

/** Parses the JSON header (`header` is the header's bytes, after the 8-byte length). */
export function parseHeader(header: Buffer, fileSize: number, path: string): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(header.toString('utf8'));
  } catch (err) {
    throw new InputError(`header is not valid JSON (${(err as Error).message})`, path);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InputError('header is not a JSON object', path);
  }
  const dataStart = 8 + header.length;
  const dataLength = fileSize - dataStart;
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = (entry ?? {}) as Record<string, string>;
      continue;
    }
    tensors.set(name, checkEntry(name, entry, dataStart, dataLength, path));
  }
  checkNoOverlaps([...tensors.values()], path);
  // As in the reference reader: the last tensor must end where the file ends. Otherwise the
  // header length is off (all data shifted, so every weight would be garbage) or bytes are missing.
  const covered = [...tensors.values()].reduce((end, t) => Math.max(end, t.offset - dataStart + t.byteLength), 0);
  if (covered !== dataLength) {
    throw new InputError(`the tensors cover ${covered} bytes of data but the file has ${dataLength} after the header (wrong header length or extra bytes)`, path);
  }
  return { tensors, metadata };
}

function checkEntry(name: string, entry: unknown, dataStart: number, dataLength: number, path: string): TensorInfo {
  const where = `tensor "${name}"`;
  if (typeof entry !== 'object' || entry === null) throw new InputError(`${where}: header entry is not an object`, path);
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) {
    throw new InputError(`${where}: unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`, path);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new InputError(`${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`, path);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
    throw new InputError(`${where}: data_offsets ${JSON.stringify(offsets)} are not [begin, end] with 0 ≤ begin ≤ end`, path);
  }
  const [begin, end] = offsets as [number, number];
  const elements = (shape as number[]).reduce((a, b) => a * b, 1);
  const expected = elements * DTYPE_BYTES[dtype as DType];
  if (end - begin !== expected) {
    throw new InputError(`${where}: shape ${JSON.stringify(shape)} × ${dtype} needs ${expected} bytes but data_offsets span ${end - begin}`, path);
  }
  if (end > dataLength) {
    throw new InputError(`${where}: data_offsets end ${end} is past the end of the data (${dataLength} bytes; file truncated?)`, path);
  }
  return { name, dtype: dtype as DType, shape: shape as number[], offset: dataStart + begin, byteLength: expected, file: path };
}

function checkNoOverlaps(tensors: TensorInfo[], path: string): void {
  const sorted = tensors.filter((t) => t.byteLength > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (cur.offset < prev.offset + prev.byteLength) {
      throw new InputError(`tensors "${prev.name}" and "${cur.name}" overlap in the data section`, path);
    }
  }
}

export function toFloat32(info: TensorInfo, bytes: Buffer): Float32Array {
  const n = info.byteLength / DTYPE_BYTES[info.dtype];
  const out = new Float32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset + info.offset, info.byteLength);
  switch (info.dtype) {
    case 'F32':
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
      break;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true);
      break;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
      break;
    case 'BF16': {
      const u32 = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u32[i] = view.getUint16(i * 2, true) << 16;
      break;
    }
    default:
      throw new InputError(`tensor "${info.name}" has dtype ${info.dtype}; weights must be F32, F16, BF16 or F64`, info.file);
  }
  return out;
}

/**
 * The first NaN or ±Infinity in a float tensor (F64 values beyond float32's range count: they
 * become Infinity once converted), or null. Reads exponent bits in place, without converting.
 */
export function firstNonFinite(info: TensorInfo, bytes: Buffer): { index: number; value: number } | null {
  const width = DTYPE_BYTES[info.dtype];
  const n = info.byteLength / width;
  const start = bytes.byteOffset + info.offset;
  if (info.dtype === 'F64') {
    const view = new DataView(bytes.buffer, start, info.byteLength);
    for (let i = 0; i < n; i++) {
      const v = view.getFloat64(i * 8, true);
      if (!Number.isFinite(Math.fround(v))) return { index: i, value: v };
    }
    return null;
  }
  if (info.dtype !== 'F32' && info.dtype !== 'F16' && info.dtype !== 'BF16') return null;
  // Typed-array views need aligned data; safetensors does not promise alignment, so copy if not.
  let buffer: ArrayBufferLike = bytes.buffer;
  let begin = start;
  if (start % width !== 0) {
    const copy = new Uint8Array(info.byteLength);
    copy.set(bytes.subarray(info.offset, info.offset + info.byteLength));
    [buffer, begin] = [copy.buffer, 0];
  }
  const words = width === 4 ? new Uint32Array(buffer, begin, n) : new Uint16Array(buffer, begin, n);
  const mask = info.dtype === 'F32' ? 0x7f800000 : info.dtype === 'F16' ? 0x7c00 : 0x7f80;
  for (let i = 0; i < n; i++) {
    if ((words[i]! & mask) === mask) {
      const value = toFloat32({ ...info, offset: info.offset + i * width, byteLength: width }, bytes)[0]!;
      return { index: i, value };
    }
  }
  return null;
}

export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/**
 * Float32 values as IEEE 754 half-precision bits, rounded to nearest, ties to even (what a
 * PyTorch `.half()` gives): overflow becomes ±Infinity, small values become subnormals or ±0,
 * NaN stays NaN. For weights kept in half precision (build.ts `halfWeights`).
 */
export function float32ToHalfBits(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = bits[i]!;
    const sign = (x >>> 16) & 0x8000;
    const exponent = (x >>> 23) & 0xff;
    const mantissa = x & 0x7fffff;
    if (exponent === 0xff) {
      out[i] = sign | 0x7c00 | (mantissa ? 0x200 : 0);
      continue;
    }
    const e = exponent - 127 + 15;
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (e <= 0) {
      // Subnormal half (or zero): shift the mantissa with its implicit 1 into place, then round.
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      const m = mantissa | 0x800000;
      const shift = 14 - e;
      const half = 1 << (shift - 1);
      const rest = m & ((1 << shift) - 1);
      let h = m >>> shift;
      if (rest > half || (rest === half && (h & 1) === 1)) h += 1;
      out[i] = sign | h;
      continue;
    }
    let h = (e << 10) | (mantissa >>> 13);
    const rest = mantissa & 0x1fff;
    // A carry out of the mantissa moves into the exponent, which is the right rounding (up to Infinity).
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h += 1;
    out[i] = sign | h;
  }
  return out;
}

/**
 * Float32 values as bfloat16 bits (the upper half of the float32), rounded to nearest, ties to
 * even; NaN stays NaN.
 */
export function float32ToBfloat16Bits(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = bits[i]!;
    if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) out[i] = (x >>> 16) | 0x40;
    else out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}

/**
 * The start of a safetensors file: the header's length (u64, little-endian) and the JSON header
 * with each tensor's dtype, shape and data offsets, padded with spaces so the data section starts
 * 8-byte aligned, as the reference writer does. The tensors' bytes follow in the given order.
 */
export function safetensorsHeader(tensors: ReadonlyArray<{ name: string; shape: readonly number[]; dtype: DType; byteLength: number }>, metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.byteLength] };
    offset += t.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const out = Buffer.alloc(8 + Buffer.byteLength(json));
  out.writeBigUInt64LE(BigInt(Buffer.byteLength(json)), 0);
  out.write(json, 8, 'utf8');
  return out;
}

/**
 * Writes a safetensors file (model export; test and bench fixtures). Values are float32 and are
 * written as `dtype`: F32 as they are, F16 and BF16 rounded to nearest even.
 */
export function encodeSafetensors(tensors: ReadonlyArray<{ name: string; shape: readonly number[]; data: Float32Array }>, metadata?: Record<string, string>, dtype: 'F32' | 'F16' | 'BF16' = 'F32'): Buffer {
  const encoded = tensors.map((t): Uint8Array => {
    if (dtype === 'F32') return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const bits = dtype === 'F16' ? float32ToHalfBits(t.data) : float32ToBfloat16Bits(t.data);
    return new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength);
  });
  const header = safetensorsHeader(
    tensors.map((t, i) => ({ name: t.name, shape: t.shape, dtype, byteLength: encoded[i]!.byteLength })),
    metadata,
  );
  return Buffer.concat([header, ...encoded]);
}
