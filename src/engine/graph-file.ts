/**
 * A compiled relevance graph as a standalone ONNX file, for running it outside Circuit Lens
 * (Python onnxruntime, onnxruntime-web, TensorRT). The engine hands ONNX Runtime the weight
 * files as buffers (`CompiledGraph.externalData`); on disk the graph instead needs its external
 * data beside it. Every weight the graph references (slices of the safetensors files) and every
 * inline weight over `INLINE_LIMIT` bytes is written once to `<graph>.data`, 64-byte aligned,
 * and the initializers point there (ONNX external-data convention: docs/ExternalData.md of
 * onnx/onnx — `location` relative to the model file, `offset`, `length`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import type { ArchSpec } from '../models/spec';
import type { ModelWeights } from '../models/weights';
import { compileGraph, type CompiledGraph, type GraphOptions } from './build';

/** Inline initializers up to this size stay in the protobuf (shape constants, scalars). */
const INLINE_LIMIT = 1024;
const ALIGN = 64;

export interface GraphFile {
  readonly model: string;
  readonly data: string;
  readonly modelBytes: number;
  readonly dataBytes: number;
  readonly nodeCount: number;
  readonly inputs: { name: string; type: string; dims: (number | string)[] }[];
  readonly outputs: { name: string; type: string; dims: (number | string | null)[] }[];
}

/** Compiles the graph for `options` over a loaded model's spec and weights. */
export function compileForExport(spec: ArchSpec, weights: ModelWeights, options: GraphOptions): CompiledGraph {
  return compileGraph(spec, weights, options);
}

/** Writes `graph` to `out` (the .onnx file) with its external data in `<out>.data`. */
export function writeGraphFile(graph: CompiledGraph, out: string): GraphFile {
  const model = onnx.ModelProto.decode(graph.model);
  const buffers = new Map(graph.externalData.map(({ path: p, data }) => [p, data]));
  const dataName = `${path.basename(out)}.data`;
  const dataPath = path.join(path.dirname(out), dataName);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const append = (bytes: Uint8Array): number => {
    const pad = (ALIGN - (size % ALIGN)) % ALIGN;
    if (pad > 0) chunks.push(new Uint8Array(pad));
    size += pad;
    const offset = size;
    chunks.push(bytes);
    size += bytes.byteLength;
    return offset;
  };
  const external = (offset: number, length: number) => [
    { key: 'location', value: dataName },
    { key: 'offset', value: String(offset) },
    { key: 'length', value: String(length) },
  ];
  for (const init of model.graph!.initializer!) {
    if (init.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
      const entry = (key: string) => (init.externalData ?? []).find((e) => e.key === key)?.value;
      const location = entry('location')!;
      const source = buffers.get(location);
      if (source === undefined) throw new Error(`graph export: initializer "${init.name}" refers to "${location}", which the compiled graph does not carry`);
      const from = Number(entry('offset') ?? 0);
      const length = Number(entry('length') ?? source.byteLength - from);
      const offset = append(source.subarray(from, from + length));
      init.externalData = external(offset, length).map((e) => onnx.StringStringEntryProto.create(e));
    } else if (init.rawData && init.rawData.byteLength > INLINE_LIMIT) {
      const length = init.rawData.byteLength;
      const offset = append(init.rawData);
      init.rawData = new Uint8Array(0);
      init.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      init.externalData = external(offset, length).map((e) => onnx.StringStringEntryProto.create(e));
    }
  }
  const bytes = onnx.ModelProto.encode(model).finish();
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  const fd = fs.openSync(dataPath, 'w');
  try {
    for (const chunk of chunks) fs.writeSync(fd, chunk);
  } finally {
    fs.closeSync(fd);
  }
  fs.writeFileSync(out, bytes);
  const elem = (t: number | null | undefined) => (t === onnx.TensorProto.DataType.INT64 ? 'int64' : 'float32');
  const dims = (info: onnx.IValueInfoProto) =>
    (info.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? Number(d.dimValue) : null));
  return {
    model: path.resolve(out),
    data: path.resolve(dataPath),
    modelBytes: bytes.byteLength,
    dataBytes: size,
    nodeCount: graph.nodeCount,
    inputs: model.graph!.input!.map((i) => ({ name: i.name!, type: elem(i.type?.tensorType?.elemType), dims: dims(i) as (number | string)[] })),
    outputs: model.graph!.output!.map((o) => ({ name: o.name!, type: elem(o.type?.tensorType?.elemType), dims: dims(o) })),
  };
}
