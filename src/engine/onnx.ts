/**
 * A small typed writer for ONNX graphs over onnx-proto (protobufjs). Nodes are appended in
 * order; names are made unique by the writer. Weights are either copied in as raw data or,
 * for float32 tensors that already sit in a safetensors file, referenced as external data so a
 * large model is never copied into the protobuf (ONNX Runtime reads them from the file buffer).
 */
import { onnx } from 'onnx-proto';

export const OPSET = 18;

type AttrValue = number | number[] | string | { tensor: { data: Float32Array | BigInt64Array; dims: number[] } };

export interface ExternalRef {
  /** The file name ONNX Runtime will be given a buffer for. */
  readonly location: string;
  readonly offset: number;
  readonly length: number;
}

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;

export class OnnxWriter {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly used = new Set<string>();
  private readonly int64Constants = new Map<string, string>();

  /** A fresh name based on `hint`. */
  fresh(hint: string): string {
    let name = hint;
    for (let i = 1; this.used.has(name); i++) name = `${hint}_${i}`;
    this.used.add(name);
    return name;
  }

  op(type: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, hint = type.toLowerCase(), outputs = 1): string[] {
    const names = Array.from({ length: outputs }, (_, i) => this.fresh(outputs === 1 ? hint : `${hint}_${i}`));
    this.nodes.push({
      opType: type,
      input: [...inputs],
      output: names,
      name: this.fresh(`n_${hint}`),
      attribute: Object.entries(attrs).map(([name, value]) => attribute(name, value)),
    });
    return names;
  }

  /** A single-output op. */
  op1(type: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, hint?: string): string {
    return this.op(type, inputs, attrs, hint)[0]!;
  }

  input(name: string, elemType: 'float32' | 'int64', dims: readonly (number | string)[]): string {
    this.used.add(name);
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  /** Marks `tensor` as a graph output named `name` (through an Identity when the names differ). */
  output(name: string, tensor: string, elemType: 'float32' | 'int64' = 'float32'): void {
    if (tensor !== name) {
      this.used.add(name);
      this.nodes.push({ opType: 'Identity', input: [tensor], output: [name], name: this.fresh(`n_out_${name}`) });
    }
    this.outputs.push({ name, type: { tensorType: { elemType: elemType === 'float32' ? FLOAT : INT64 } } });
  }

  floatInitializer(hint: string, data: Float32Array, dims: readonly number[]): string {
    const name = this.fresh(hint);
    this.initializers.push({
      name,
      dims: [...dims],
      dataType: FLOAT,
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
  }

  externalInitializer(hint: string, dims: readonly number[], ref: ExternalRef): string {
    const name = this.fresh(hint);
    this.initializers.push({
      name,
      dims: [...dims],
      dataType: FLOAT,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: ref.location },
        { key: 'offset', value: String(ref.offset) },
        { key: 'length', value: String(ref.length) },
      ],
    });
    return name;
  }

  /** An int64 constant (shapes, axes, indices), shared between uses. */
  ints(values: readonly number[]): string {
    const key = values.join(',');
    const existing = this.int64Constants.get(key);
    if (existing) return existing;
    const name = this.fresh(`i64_${values.length ? values.join('_').replace(/-/g, 'm') : 'empty'}`);
    this.initializers.push({ name, dims: [values.length], dataType: INT64, rawData: new Uint8Array(new BigInt64Array(values.map(BigInt)).buffer) });
    this.int64Constants.set(key, name);
    return name;
  }

  /** A float32 scalar constant. */
  scalar(value: number, hint = 'c'): string {
    return this.floatInitializer(hint, new Float32Array([value]), []);
  }

  encode(producer: string): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: OPSET }],
      producerName: producer,
      graph: { name: 'circuit_lens', node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs },
    });
    return onnx.ModelProto.encode(model).finish();
  }

  get nodeCount(): number {
    return this.nodes.length;
  }
}

function valueInfo(name: string, elemType: 'float32' | 'int64', dims: readonly (number | string)[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: elemType === 'float32' ? FLOAT : INT64,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, value: AttrValue): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number') {
    return Number.isInteger(value) ? { name, type: T.INT, i: value } : { name, type: T.FLOAT, f: value };
  }
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  const { data, dims } = value.tensor;
  const isFloat = data instanceof Float32Array;
  return {
    name,
    type: T.TENSOR,
    t: { dims, dataType: isFloat ? FLOAT : INT64, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) },
  };
}
