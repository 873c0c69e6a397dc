/**
 * A small typed writer for ONNX graphs over onnx-proto (protobufjs). Nodes are appended in
 * order; names are made unique by the writer. Weights are either copied in as raw data or,
 * for float32 tensors that already sit in a safetensors file, referenced as external data so a
 * large model is never copied into the protobuf (ONNX Runtime reads them from the file buffer).
 *
 * Opset 17, not 18: of the ops the compiler emits, only ReduceMean (axes became an input) and
 * Split (`num_outputs` added) changed in opset 18, and both are written in their opset-17 form
 * here (constant axes → attribute; an equal two-way split needs no attribute in 17). The graph
 * is the same computation, and opset 17 is the newest that Debian's `python3-onnx` (1.12)
 * checker knows, so `onnx.checker.check_model(full_check=True)` can validate every graph.
 *
 * Graph outputs are declared with their rank (ONNX IR: a `tensor_type` without `shape` is not
 * a valid graph output for the checker, and `shape: {}` declares a scalar). Ranks and, where
 * they follow from constants and input dims, the dims themselves are inferred at `encode`
 * (`inferShapes` below: the ONNX operator docs' shape rules for the ops used).
 */
import { onnx } from 'onnx-proto';

export const OPSET = 17;

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
  /** Values of the int64 constants, by initializer name (for opset-17 attributes and shape inference). */
  private readonly int64Values = new Map<string, readonly number[]>();

  /** A fresh name based on `hint`. */
  fresh(hint: string): string {
    let name = hint;
    for (let i = 1; this.used.has(name); i++) name = `${hint}_${i}`;
    this.used.add(name);
    return name;
  }

  op(type: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, hint = type.toLowerCase(), outputs = 1): string[] {
    if (type.startsWith('Reduce') && type !== 'ReduceSum' && inputs.length === 2) {
      // Opset 17: axes is an attribute of every Reduce* but ReduceSum (opset 18 made it an input).
      const axes = this.int64Values.get(inputs[1]!);
      if (axes === undefined) throw new Error(`OnnxWriter: ${type} axes must be an int64 constant (opset 17 takes them as an attribute)`);
      inputs = [inputs[0]!];
      attrs = { ...attrs, axes: [...axes] };
    }
    if (type === 'Split' && 'num_outputs' in attrs) {
      // Opset 17 splits into equal parts, one per output, when no `split` input is given.
      if (attrs['num_outputs'] !== outputs) throw new Error('OnnxWriter: Split num_outputs must equal the number of outputs');
      const { num_outputs: _, ...rest } = attrs;
      attrs = rest;
    }
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

  /** The position of the next node: `clone` copies the nodes written between two marks. */
  mark(): number {
    return this.nodes.length;
  }

  /** Every output of the nodes written between two marks. */
  outputsBetween(start: number, end: number): string[] {
    return this.nodes.slice(start, end).flatMap((node) => node.output ?? []);
  }

  /**
   * Writes a copy of the nodes between two marks, reading `inputs[name]` where the originals
   * read `name` and each other's copies where they read each other; returns original → copy
   * for their outputs. The copy is a second computation of the same values, which ONNX Runtime
   * schedules by its own inputs (activation checkpointing: tape.ts `recomputeInBackward`).
   */
  clone(start: number, end: number, inputs: ReadonlyMap<string, string>): Map<string, string> {
    const renamed = new Map(inputs);
    const copies = new Map<string, string>();
    for (const node of this.nodes.slice(start, end)) {
      const output = (node.output ?? []).map((o) => {
        const copy = this.fresh(`${o}_re`);
        copies.set(o, copy);
        return copy;
      });
      this.nodes.push({ ...node, name: this.fresh(`${node.name ?? 'n'}_re`), input: (node.input ?? []).map((i) => renamed.get(i) ?? i), output });
      for (const [i, o] of (node.output ?? []).entries()) renamed.set(o, output[i]!);
    }
    return copies;
  }

  /**
   * `x` again, once `after` exists: Reshape(x, Shape(x)) with an empty slice of Shape(after) in
   * the target shape. ONNX Runtime can neither run it before `after` nor fold it away, so what
   * reads it waits for `after`, and common-subexpression elimination cannot merge it with x.
   * Reshape takes every element type (the CPU's Expand has no BF16 kernel) and copies nothing.
   */
  after(x: string, after: string, hint = 'after'): string {
    const none = this.op1('Slice', [this.op1('Shape', [after]), this.ints([0]), this.ints([0])], {}, `${hint}_none`);
    return this.op1('Reshape', [x, this.op1('Concat', [none, this.op1('Shape', [x])], { axis: 0 })], {}, hint);
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

  /**
   * Initializers some node or graph output reads. Opset-17 Reduce* take constant axes as an
   * attribute, which can leave an int64 constant unread; ONNX Runtime warns on stderr about
   * every unused initializer, so they are not written.
   */
  private usedInitializers(nodes: readonly onnx.INodeProto[]): onnx.ITensorProto[] {
    const read = new Set<string>(this.outputs.map((o) => o.name!));
    for (const node of nodes) for (const input of node.input ?? []) read.add(input);
    return this.initializers.filter((init) => read.has(init.name!));
  }

  /**
   * The nodes some graph output depends on, in their order. A VJP emits the gradient of every
   * operand and the tape keeps only those that need one (the mask's, a bias's), so the rest are
   * dead. ONNX Runtime does not remove them, and its topological order runs such a leaf at the
   * end of the graph: each one held a T×T gradient map per layer until then (2.25 GiB of the
   * 2,048-token attribution's peak on the GPT-2-small-sized model).
   */
  private liveNodes(): onnx.INodeProto[] {
    const needed = new Set<string>(this.outputs.map((o) => o.name!));
    const live: boolean[] = new Array<boolean>(this.nodes.length).fill(false);
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const node = this.nodes[i]!;
      if (!(node.output ?? []).some((o) => needed.has(o))) continue;
      live[i] = true;
      for (const input of node.input ?? []) if (input) needed.add(input);
    }
    return this.nodes.filter((_, i) => live[i]);
  }

  /** The inferred shape of every tensor (see `inferShapes`). */
  shapes(): Map<string, InferredShape> {
    return inferShapes(this.inputs, this.initializers, this.nodes, this.int64Values);
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

  /** Half-precision bits (IEEE float16) as an initializer. */
  halfInitializer(hint: string, bits: Uint16Array, dims: readonly number[]): string {
    const name = this.fresh(hint);
    this.initializers.push({ name, dims: [...dims], dataType: onnx.TensorProto.DataType.FLOAT16, rawData: new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength) });
    return name;
  }

  /** An initializer read from a file by offset (`dataType`: the file's element type, float32 unless said). */
  externalInitializer(hint: string, dims: readonly number[], ref: ExternalRef, dataType: 'float32' | 'float16' | 'bfloat16' = 'float32'): string {
    const name = this.fresh(hint);
    this.initializers.push({
      name,
      dims: [...dims],
      dataType: dataType === 'float32' ? FLOAT : dataType === 'float16' ? onnx.TensorProto.DataType.FLOAT16 : onnx.TensorProto.DataType.BFLOAT16,
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
    this.int64Values.set(name, [...values]);
    return name;
  }

  /** A float32 scalar constant. */
  scalar(value: number, hint = 'c'): string {
    return this.floatInitializer(hint, new Float32Array([value]), []);
  }

  encode(producer: string): Uint8Array {
    const shapes = this.shapes();
    const outputs = this.outputs.map((output) => {
      const shape = shapes.get(output.name!);
      // Unknown (an op without a shape rule upstream): declared without shape, which ONNX Runtime
      // accepts and onnx.checker refuses — test/conformance/onnx.test.ts catches it.
      if (shape === undefined) return output;
      const dim = shape.map((d) => (typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {}));
      return { ...output, type: { tensorType: { ...output.type!.tensorType!, shape: { dim } } } };
    });
    const nodes = this.liveNodes();
    const model = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: OPSET }],
      producerName: producer,
      graph: { name: 'circuit_lens', node: nodes, initializer: this.usedInitializers(nodes), input: this.inputs, output: outputs },
    });
    return onnx.ModelProto.encode(model).finish();
  }

  /** Nodes written to the graph (dead ones left out). */
  get nodeCount(): number {
    return this.liveNodes().length;
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

/** A dim: known size, a symbolic name from a graph input, or unknown (null). */
export type InferredDim = number | string | null;
export type InferredShape = InferredDim[];

/**
 * Shapes of every tensor of a graph, by the shape rules of the ONNX operator docs
 * (docs/Operators.md, opset 17) for the ops the compiler emits. Values of small int64 tensors
 * (constants, `Shape` outputs and what Gather/Concat/Cast/Squeeze make of them) are tracked
 * so Reshape, Expand and ConstantOfShape outputs get their rank. An op without a rule leaves
 * its outputs (and everything computed from them) out of the map, so the engine keeps working;
 * the ONNX conformance test then fails on the shapeless graph output.
 */
export function inferShapes(
  inputs: readonly onnx.IValueInfoProto[],
  initializers: readonly onnx.ITensorProto[],
  nodes: readonly onnx.INodeProto[],
  int64Values: ReadonlyMap<string, readonly number[]>,
): Map<string, InferredShape> {
  const shapes = new Map<string, InferredShape>();
  /** Known element values of 1-D/0-D int64 tensors (null entries: unknown element). */
  const values = new Map<string, (number | string | null)[]>();
  for (const input of inputs) {
    shapes.set(input.name!, (input.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? Number(d.dimValue) : null)));
  }
  for (const init of initializers) {
    shapes.set(init.name!, (init.dims ?? []).map(Number));
    const known = int64Values.get(init.name!);
    if (known) values.set(init.name!, [...known]);
  }
  const shapeOf = (name: string): InferredShape => {
    const shape = shapes.get(name);
    if (shape === undefined) throw new Error(`inferShapes: "${name}" is used before it is produced`);
    return shape;
  };
  const attr = (node: onnx.INodeProto, name: string) => node.attribute?.find((a) => a.name === name);
  const attrInt = (node: onnx.INodeProto, name: string, fallback: number) => {
    const a = attr(node, name);
    return a === undefined ? fallback : Number(a.i);
  };
  const attrInts = (node: onnx.INodeProto, name: string) => attr(node, name)?.ints?.map(Number);
  const constInts = (name: string | undefined): number[] | undefined => {
    if (name === undefined || name === '') return undefined;
    const v = values.get(name);
    return v !== undefined && v.every((x) => typeof x === 'number') ? (v as number[]) : undefined;
  };
  const broadcast = (list: InferredShape[]): InferredShape => {
    const rank = Math.max(...list.map((s) => s.length));
    return Array.from({ length: rank }, (_, i) => {
      const dims = list.map((s) => s[s.length - rank + i]).filter((d) => d !== undefined) as InferredDim[];
      const notOne = dims.filter((d) => d !== 1);
      if (notOne.length === 0) return 1;
      const numbers = notOne.filter((d): d is number => typeof d === 'number');
      if (numbers.length > 0) return numbers[0]!;
      const first = notOne[0]!;
      // Symbols: equal symbols (or a symbol and unknowns broadcast against 1) keep the name.
      return notOne.every((d) => d === first) ? first : null;
    });
  };
  const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

  for (const node of nodes) {
    const outs = (node.output ?? []) as string[];
    try {
      inferNode(node);
    } catch {
      // No rule, or an input of unknown shape: this node's outputs (and what depends on them) stay unknown.
      for (const name of outs) shapes.delete(name);
    }
  }
  return shapes;

  function inferNode(node: onnx.INodeProto): void {
    const type = node.opType!;
    const ins = (node.input ?? []) as string[];
    const outs = (node.output ?? []) as string[];
    const x = ins[0] !== undefined && ins[0] !== '' ? shapeOf(ins[0]) : [];
    let out: InferredShape;
    let value: (number | string | null)[] | undefined;
    switch (type) {
      case 'Add': case 'Sub': case 'Mul': case 'Div': case 'Pow': case 'Sum': case 'Max': case 'Min': case 'Where':
      case 'Greater': case 'Less': case 'Equal': case 'GreaterOrEqual': case 'LessOrEqual': case 'And': case 'Or':
        out = broadcast(ins.map(shapeOf));
        break;
      case 'Tanh': case 'Sqrt': case 'Sigmoid': case 'Reciprocal': case 'Erf': case 'Relu': case 'Neg':
      case 'Exp': case 'Softmax': case 'Trilu': case 'Identity': case 'Abs': case 'Sign': case 'Log': case 'Cos': case 'Sin':
      case 'Not': case 'Clip': case 'LogSoftmax':
        out = [...x];
        if (type === 'Identity' && values.has(ins[0]!)) value = values.get(ins[0]!);
        break;
      case 'Cast':
        out = [...x];
        if (values.has(ins[0]!)) value = values.get(ins[0]!);
        break;
      case 'ReduceSum': case 'ReduceMean': case 'ReduceMax': case 'ReduceMin': case 'ReduceProd': case 'ReduceSumSquare': {
        const axes = (type === 'ReduceSum' ? constInts(ins[1]) : attrInts(node, 'axes'))?.map((a) => norm(a, x.length));
        if (ins[1] && type === 'ReduceSum' && axes === undefined) throw new Error(`inferShapes: ${type} "${node.name}" has non-constant axes`);
        const reduced = (i: number) => axes === undefined || axes.length === 0 || axes.includes(i);
        out = attrInt(node, 'keepdims', 1) ? x.map((d, i) => (reduced(i) ? 1 : d)) : x.filter((_, i) => !reduced(i));
        break;
      }
      case 'Shape':
        out = [x.length];
        value = [...x];
        break;
      case 'Reshape': {
        const target = values.get(ins[1]!);
        const targetShape = shapeOf(ins[1]!);
        if (target === undefined && typeof targetShape[0] !== 'number') throw new Error(`inferShapes: Reshape "${node.name}" has a shape of unknown length`);
        const dims = target ?? Array.from({ length: targetShape[0] as number }, () => null);
        out = dims.map((d, i) => (d === 0 ? (x[i] ?? null) : d === -1 ? null : d));
        break;
      }
      case 'Expand': {
        const target = values.get(ins[1]!);
        const targetShape = shapeOf(ins[1]!);
        if (target === undefined && typeof targetShape[0] !== 'number') throw new Error(`inferShapes: Expand "${node.name}" has a shape of unknown length`);
        out = broadcast([x, target ?? Array.from({ length: targetShape[0] as number }, () => null)]);
        break;
      }
      case 'ConstantOfShape': {
        const target = values.get(ins[0]!);
        const length = x[0];
        if (target === undefined && typeof length !== 'number') throw new Error(`inferShapes: ConstantOfShape "${node.name}" has a shape of unknown length`);
        out = target ?? Array.from({ length: length as number }, () => null);
        break;
      }
      case 'Gather': {
        const axis = norm(attrInt(node, 'axis', 0), x.length);
        const indices = shapeOf(ins[1]!);
        out = [...x.slice(0, axis), ...indices, ...x.slice(axis + 1)];
        const data = values.get(ins[0]!);
        const index = constInts(ins[1]);
        if (data !== undefined && index !== undefined && x.length === 1) {
          value = index.map((i) => data[i < 0 ? i + data.length : i] ?? null);
        }
        break;
      }
      case 'Transpose': {
        const perm = attrInts(node, 'perm') ?? x.map((_, i) => x.length - 1 - i);
        out = perm.map((p) => x[p] ?? null);
        break;
      }
      case 'Unsqueeze': {
        const axes = constInts(ins[1]);
        if (axes === undefined) throw new Error(`inferShapes: Unsqueeze "${node.name}" has non-constant axes`);
        const rank = x.length + axes.length;
        const at = new Set(axes.map((a) => norm(a, rank)));
        const rest = [...x];
        out = Array.from({ length: rank }, (_, i) => (at.has(i) ? 1 : (rest.shift() ?? null)));
        if (values.has(ins[0]!) && x.length === 0) value = values.get(ins[0]!);
        break;
      }
      case 'Squeeze': {
        const axes = constInts(ins[1])?.map((a) => norm(a, x.length));
        if (axes === undefined && x.some((d) => typeof d !== 'number')) throw new Error(`inferShapes: Squeeze "${node.name}" without axes on a tensor of unknown dims`);
        out = x.filter((d, i) => (axes === undefined ? d !== 1 : !axes.includes(i)));
        if (values.has(ins[0]!)) value = values.get(ins[0]!);
        break;
      }
      case 'MatMul': {
        const b = shapeOf(ins[1]!);
        if (x.length === 1 && b.length === 1) out = [];
        else if (b.length === 1) out = x.slice(0, -1);
        else if (x.length === 1) out = [...b.slice(0, -2), b[b.length - 1]!];
        else out = [...broadcast([x.slice(0, -2), b.slice(0, -2)]), x[x.length - 2]!, b[b.length - 1]!];
        break;
      }
      case 'Concat': {
        const parts = ins.map(shapeOf);
        const axis = norm(attrInt(node, 'axis', 0), x.length);
        out = x.map((d, i) => {
          if (i !== axis) return parts.map((p) => p[i]).find((e) => e !== null && e !== undefined) ?? d;
          return parts.every((p) => typeof p[i] === 'number') ? parts.reduce((sum, p) => sum + (p[i] as number), 0) : null;
        });
        if (x.length === 1 && ins.every((i) => values.has(i))) value = ins.flatMap((i) => values.get(i)!);
        break;
      }
      case 'Slice': {
        const starts = constInts(ins[1]);
        const ends = constInts(ins[2]);
        const axes = constInts(ins[3]) ?? starts?.map((_, i) => i);
        const steps = constInts(ins[4]);
        out = [...x];
        // Sliced axes: the size is known only for constant bounds on a known dim.
        const sliced = axes ?? x.map((_, i) => i);
        sliced.forEach((a, k) => {
          const axis = norm(a, x.length);
          const dim = x[axis];
          if (starts && ends && typeof dim === 'number' && (steps === undefined || steps[k] === 1)) {
            const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + dim : v, 0), dim);
            out[axis] = Math.max(clamp(ends[k]!) - clamp(starts[k]!), 0);
          } else out[axis] = null;
        });
        break;
      }
      case 'Range':
        out = [null];
        break;
      case 'Split': {
        const axis = norm(attrInt(node, 'axis', 0), x.length);
        const dim = x[axis];
        const part = typeof dim === 'number' && dim % outs.length === 0 ? dim / outs.length : null;
        for (const name of outs) shapes.set(name, x.map((d, i) => (i === axis ? part : d)));
        return;
      }
      default:
        throw new Error(`inferShapes: no shape rule for ${type} (node "${node.name}")`);
    }
    for (const name of outs) {
      shapes.set(name, out);
      if (value !== undefined) values.set(name, value);
    }
  }
}
