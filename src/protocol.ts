/**
 * The one message protocol of Circuit Lens, shared by the extension host, the engine worker and
 * the circuit-graph webview. No runtime dependencies (type-only imports), so every side can bundle it.
 *
 * Messages are declared as values (GitLens `IpcCommand`/`IpcNotification` style): a method name
 * and a schema that is both the validator and, through `Infer`, the TypeScript type. A message
 * name and its parameter type therefore cannot drift apart, and every incoming message is checked
 * against the same declaration its sender was typed with.
 *
 * Two channels:
 * - host ↔ engine worker: `request`s with ids answered by `response` or `error`, `progress`
 *   while a job runs, `cancel` from the host, `log` and `ready` from the worker;
 * - host ↔ webview: a `ready` handshake, state updates from the host, commands from the webview.
 *
 * Validation rejects unknown message types, unknown or mistyped fields and payloads over a size
 * budget, and gives a reason (`path: expected …`) that the receiver logs.
 */
import type { Attribution, ExecutionProviderSetting, ForwardRow, ModelInfo, Target } from './engine/api';

// ───────────────────────────── schemas ─────────────────────────────

/** Why a message was rejected; `reason` names the offending field. */
export class ProtocolError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'ProtocolError';
  }
}

/** Tracks the approximate size of a payload while it is parsed (bytes: 2 per char, 8 per number). */
class Budget {
  private used = 0;
  constructor(private readonly limit: number) {}
  spend(bytes: number, path: string): void {
    this.used += bytes;
    if (this.used > this.limit) throw new ProtocolError(`${path || 'message'}: payload exceeds ${this.limit} bytes`);
  }
}

/** A validator that returns a fresh, typed copy of what it accepts (never the input object itself). */
export interface Schema<T> {
  readonly parse: (value: unknown, path: string, budget: Budget) => T;
  readonly label: string;
}
export type Infer<S> = S extends Schema<infer T> ? T : never;

const fail = (path: string, expected: string, value: unknown): never => {
  let got: string = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  if (typeof value === 'string') got = `string of length ${value.length}`;
  throw new ProtocolError(`${path || 'message'}: expected ${expected}, got ${got}`);
};

const isPlainObject = (v: unknown): v is Record<string, unknown> => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
};

export const s = {
  string(opts: { max?: number; min?: number; pattern?: RegExp } = {}): Schema<string> {
    const max = opts.max ?? 4096;
    const min = opts.min ?? 0;
    const label = `string (${min}..${max} chars)`;
    return {
      label,
      parse(v, path, budget) {
        if (typeof v !== 'string') return fail(path, label, v);
        if (v.length > max) throw new ProtocolError(`${path}: string longer than ${max} characters`);
        if (v.length < min) throw new ProtocolError(`${path}: string shorter than ${min} characters`);
        if (opts.pattern && !opts.pattern.test(v)) throw new ProtocolError(`${path}: string does not match ${opts.pattern}`);
        budget.spend(2 * v.length + 8, path);
        return v;
      },
    };
  },
  number(opts: { min?: number; max?: number; int?: boolean } = {}): Schema<number> {
    const label = `${opts.int ? 'integer' : 'finite number'}${opts.min !== undefined ? ` ≥ ${opts.min}` : ''}${opts.max !== undefined ? ` ≤ ${opts.max}` : ''}`;
    return {
      label,
      parse(v, path, budget) {
        if (typeof v !== 'number' || !Number.isFinite(v)) return fail(path, label, v);
        if (opts.int && !Number.isInteger(v)) return fail(path, label, v);
        if ((opts.min !== undefined && v < opts.min) || (opts.max !== undefined && v > opts.max)) {
          throw new ProtocolError(`${path}: ${v} is outside ${label}`);
        }
        budget.spend(8, path);
        return v;
      },
    };
  },
  /** Like `number` but also accepts ±Infinity and NaN (metric values may legitimately be non-finite). */
  anyNumber(): Schema<number> {
    return {
      label: 'number',
      parse(v, path, budget) {
        if (typeof v !== 'number') return fail(path, 'number', v);
        budget.spend(8, path);
        return v;
      },
    };
  },
  boolean(): Schema<boolean> {
    return {
      label: 'boolean',
      parse(v, path, budget) {
        if (typeof v !== 'boolean') return fail(path, 'boolean', v);
        budget.spend(4, path);
        return v;
      },
    };
  },
  literal<const T extends readonly (string | number | boolean)[]>(...values: T): Schema<T[number]> {
    const label = `one of ${values.map((x) => JSON.stringify(x)).join(', ')}`;
    return {
      label,
      parse(v, path, budget) {
        if (!values.includes(v as T[number])) {
          throw new ProtocolError(`${path}: expected ${label}, got ${typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : typeof v}`);
        }
        budget.spend(8, path);
        return v as T[number];
      },
    };
  },
  array<T>(item: Schema<T>, opts: { max?: number } = {}): Schema<T[]> {
    const max = opts.max ?? 1024;
    const label = `array (≤ ${max}) of ${item.label}`;
    return {
      label,
      parse(v, path, budget) {
        if (!Array.isArray(v)) return fail(path, label, v);
        if (v.length > max) throw new ProtocolError(`${path}: array longer than ${max}`);
        budget.spend(8, path);
        const out: T[] = new Array<T>(v.length);
        for (let i = 0; i < v.length; i++) out[i] = item.parse(v[i], `${path}[${i}]`, budget);
        return out;
      },
    };
  },
  /** Accepts a Float32Array (structured clone keeps it) or, when `fromArray`, a plain number array. */
  float32(opts: { max?: number; fromArray?: boolean } = {}): Schema<Float32Array> {
    const max = opts.max ?? 1 << 26;
    const label = `Float32Array (≤ ${max})`;
    return {
      label,
      parse(v, path, budget) {
        if (v instanceof Float32Array) {
          if (v.length > max) throw new ProtocolError(`${path}: Float32Array longer than ${max}`);
          budget.spend(v.byteLength, path);
          return v;
        }
        if (opts.fromArray && Array.isArray(v)) {
          if (v.length > max) throw new ProtocolError(`${path}: array longer than ${max}`);
          budget.spend(8 * v.length, path);
          const out = new Float32Array(v.length);
          for (let i = 0; i < v.length; i++) {
            const x = v[i] as unknown;
            if (typeof x !== 'number') return fail(`${path}[${i}]`, 'number', x);
            out[i] = x;
          }
          return out;
        }
        return fail(path, label, v);
      },
    };
  },
  object<Shape extends Record<string, Schema<unknown>>>(
    shape: Shape,
  ): Schema<{ [K in keyof Shape as undefined extends Infer<Shape[K]> ? never : K]: Infer<Shape[K]> } & {
    [K in keyof Shape as undefined extends Infer<Shape[K]> ? K : never]?: Infer<Shape[K]>;
  }> {
    const keys = Object.keys(shape);
    const label = `object {${keys.join(', ')}}`;
    return {
      label,
      parse(v, path, budget) {
        if (!isPlainObject(v)) return fail(path, 'object', v);
        for (const key of Object.keys(v)) {
          if (!Object.prototype.hasOwnProperty.call(shape, key)) {
            throw new ProtocolError(`${path ? `${path}.` : ''}${key.slice(0, 40)}: unknown field`);
          }
        }
        budget.spend(16, path);
        const out: Record<string, unknown> = {};
        for (const key of keys) {
          const raw = Object.prototype.hasOwnProperty.call(v, key) ? v[key] : undefined;
          const parsed = shape[key]!.parse(raw, path ? `${path}.${key}` : key, budget);
          if (parsed !== undefined) out[key] = parsed;
        }
        return out as never;
      },
    };
  },
  /** String-keyed map with a bounded number of keys. */
  record<T>(value: Schema<T>, opts: { maxKeys?: number; keyMax?: number } = {}): Schema<Record<string, T>> {
    const maxKeys = opts.maxKeys ?? 1024;
    const keyMax = opts.keyMax ?? 256;
    return {
      label: `record of ${value.label}`,
      parse(v, path, budget) {
        if (!isPlainObject(v)) return fail(path, 'object', v);
        const keys = Object.keys(v);
        if (keys.length > maxKeys) throw new ProtocolError(`${path}: more than ${maxKeys} keys`);
        const out: Record<string, T> = Object.create(null) as Record<string, T>;
        for (const key of keys) {
          if (key.length > keyMax) throw new ProtocolError(`${path}: key longer than ${keyMax}`);
          budget.spend(2 * key.length, path);
          out[key] = value.parse(v[key], `${path}[${JSON.stringify(key.slice(0, 40))}]`, budget);
        }
        return out;
      },
    };
  },
  optional<T>(inner: Schema<T>): Schema<T | undefined> {
    return {
      label: `${inner.label} (optional)`,
      parse: (v, path, budget) => (v === undefined ? undefined : inner.parse(v, path, budget)),
    };
  },
  nullable<T>(inner: Schema<T>): Schema<T | null> {
    return {
      label: `${inner.label} or null`,
      parse: (v, path, budget) => (v === null ? null : inner.parse(v, path, budget)),
    };
  },
  /** A union discriminated by a string field. */
  tagged<K extends string, M extends Record<string, Schema<Record<string, unknown>>>>(
    key: K,
    variants: M,
  ): Schema<Infer<M[keyof M]>> {
    const names = Object.keys(variants);
    return {
      label: `${key} ∈ {${names.join(', ')}}`,
      parse(v, path, budget) {
        if (!isPlainObject(v)) return fail(path, 'object', v);
        const tag = v[key];
        if (typeof tag !== 'string' || !Object.prototype.hasOwnProperty.call(variants, tag)) {
          throw new ProtocolError(`${path ? `${path}.` : ''}${key}: expected one of ${names.join(', ')}`);
        }
        return variants[tag]!.parse(v, path, budget) as Infer<M[keyof M]>;
      },
    };
  },
  /** Anything structured-cloneable, counted against the budget but not inspected (trusted payloads only). */
  unknown(): Schema<unknown> {
    return { label: 'any', parse: (v) => v };
  },
  void(): Schema<void> {
    return {
      label: 'nothing',
      parse(v, path) {
        if (v !== undefined && v !== null && !(isPlainObject(v) && Object.keys(v).length === 0)) {
          throw new ProtocolError(`${path || 'params'}: expected no parameters`);
        }
      },
    };
  },
};

/** Parses `value` against `schema` with a size budget; throws `ProtocolError`. */
export function parseWith<T>(schema: Schema<T>, value: unknown, maxBytes: number, path = ''): T {
  return schema.parse(value, path, new Budget(maxBytes));
}

// ───────────────────────────── message definitions ─────────────────────────────

/** A one-way message: a method name and its parameter schema. */
export class MessageType<M extends string, P> {
  constructor(
    readonly method: M,
    readonly params: Schema<P>,
  ) {}
  /** Builds the wire form; typed so a sender cannot pass the wrong params. */
  create(params: P): { method: M; params: P } {
    return { method: this.method, params };
  }
  is(msg: { method: string }): msg is { method: M; params: P } {
    return msg.method === this.method;
  }
}

/** A request answered with a result (host → engine worker). */
export class RequestType<M extends string, P, R> extends MessageType<M, P> {
  constructor(
    method: M,
    params: Schema<P>,
    readonly result: Schema<R>,
  ) {
    super(method, params);
  }
}

/** A set of message types that one side accepts; `validate` is the single entry point for incoming messages. */
export class MessageSet<T extends MessageType<string, unknown>> {
  private readonly byMethod = new Map<string, T>();
  constructor(
    readonly name: string,
    types: readonly T[],
    /** Largest accepted payload, in approximate bytes. */
    readonly maxBytes: number,
  ) {
    for (const t of types) this.byMethod.set(t.method, t);
  }
  get(method: string): T | undefined {
    return this.byMethod.get(method);
  }
  methods(): string[] {
    return [...this.byMethod.keys()];
  }
  /** Validates an incoming `{ method, params }` message (extra envelope fields listed in `envelope`). */
  validate(raw: unknown, envelope: Record<string, Schema<unknown>> = {}): Validated<T> {
    try {
      if (!isPlainObject(raw)) return { ok: false, reason: `${this.name}: message is not an object` };
      const method = raw['method'];
      if (typeof method !== 'string') return { ok: false, reason: `${this.name}: message has no method` };
      const type = this.byMethod.get(method);
      if (!type) return { ok: false, reason: `${this.name}: unknown message type ${JSON.stringify(method.slice(0, 60))}` };
      for (const key of Object.keys(raw)) {
        if (key !== 'method' && key !== 'params' && !(key in envelope)) {
          return { ok: false, reason: `${this.name}: ${method}: unknown envelope field ${JSON.stringify(key.slice(0, 40))}` };
        }
      }
      const budget = new Budget(this.maxBytes);
      const extra: Record<string, unknown> = {};
      for (const [key, schema] of Object.entries(envelope)) extra[key] = schema.parse(raw[key], key, budget);
      const params = type.params.parse(raw['params'], 'params', budget);
      return { ok: true, type, message: { method, params, ...extra } as ValidatedMessage<T> };
    } catch (err) {
      if (err instanceof ProtocolError) return { ok: false, reason: `${this.name}: ${String(raw && (raw as { method?: unknown }).method).slice(0, 60)}: ${err.reason}` };
      return { ok: false, reason: `${this.name}: ${(err as Error).message}` };
    }
  }
}

type ParamsOf<T> = T extends MessageType<string, infer P> ? P : never;
export type ValidatedMessage<T> = T extends MessageType<infer M, infer P> ? { method: M; params: P; [extra: string]: unknown } : never;
export type Validated<T extends MessageType<string, unknown>> =
  | { ok: true; type: T; message: ValidatedMessage<T> }
  | { ok: false; reason: string };
export type { ParamsOf };

// ───────────────────────────── shared data shapes ─────────────────────────────

/** Component ids in EAP-IG / TransformerLens style: `input`, `a2.h1`, `m3`, `m3.n17`, `logits`. */
export const componentIdPattern = /^(input|logits|a\d{1,4}\.h\d{1,4}|m\d{1,4}(\.n\d{1,7})?)$/;
const componentIdSchema = s.string({ max: 24, pattern: componentIdPattern });

export const COMPOSITES = ['attnlrp', 'cp-lrp', 'gradient'] as const;
export const EXECUTION_PROVIDERS = ['auto', 'cpu', 'cuda', 'webgpu'] as const satisfies readonly ExecutionProviderSetting[];
export const TARGET_CHOICES = ['top1', 'token', 'logit-diff'] as const;
export type TargetChoice = (typeof TARGET_CHOICES)[number];

// Compile-time check that the schema and the engine's type agree in both directions.
type Same<A, B> = [A] extends [B] ? ([keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false) : false;
const assertSame = <T extends true>(): T | undefined => undefined;
const modeSchema = s.literal(...COMPOSITES);
const providerSchema = s.literal(...EXECUTION_PROVIDERS);
const tokenIdSchema = s.number({ int: true, min: 0, max: 1 << 24 });
const idsSchema = s.array(s.array(tokenIdSchema, { max: 1 << 16 }), { max: 4096 });

const targetSchema = s.object({
  kind: s.literal('logit', 'logit_diff', 'contrastive', 'set_diff'),
  position: s.number({ int: true, min: -1 << 16, max: 1 << 16 }),
  token: tokenIdSchema,
  foil: s.optional(tokenIdSchema),
  good: s.optional(s.array(tokenIdSchema, { max: 1 << 16 })),
  bad: s.optional(s.array(tokenIdSchema, { max: 1 << 16 })),
});
assertSame<Same<Infer<typeof targetSchema>, Target>>();

const interventionsSchema = s.object({
  ablate: s.array(componentIdSchema, { max: 1 << 16 }),
  headReplacement: s.optional(s.array(s.array(s.float32()), { max: 4096 })),
  neuronReplacement: s.optional(s.array(s.array(s.float32()), { max: 4096 })),
});

export const modelInfoSchema = s.object({
  folder: s.string({ max: 4096 }),
  architecture: s.string({ max: 256 }),
  modelType: s.string({ max: 256 }),
  layers: s.number({ int: true, min: 0 }),
  heads: s.number({ int: true, min: 0 }),
  kvHeads: s.number({ int: true, min: 0 }),
  dModel: s.number({ int: true, min: 0 }),
  headDim: s.number({ int: true, min: 0 }),
  dMlp: s.number({ int: true, min: 0 }),
  vocab: s.number({ int: true, min: 0 }),
  maxPositions: s.number({ int: true, min: 0 }),
  parameters: s.number({ int: true, min: 0 }),
  dtype: s.string({ max: 64 }),
  executionProvider: s.string({ max: 64 }),
});
assertSame<Same<Infer<typeof modelInfoSchema>, ModelInfo>>();

/** What `load` returns: the engine's info plus what the extension needs to know about the folder. */
export const loadedModelSchema = s.object({
  info: modelInfoSchema,
  hasTokenizer: s.boolean(),
  /** Whether circuit discovery / verification are available in this build. */
  circuits: s.boolean(),
});
export type LoadedModel = Infer<typeof loadedModelSchema>;

/** One token of an attributed prompt with its character span in the prompt text. */
export const tokenRelevanceSchema = s.object({
  id: tokenIdSchema,
  text: s.string({ max: 1024 }),
  start: s.number({ int: true, min: 0 }),
  end: s.number({ int: true, min: 0 }),
  relevance: s.anyNumber(),
});
export type TokenRelevance = Infer<typeof tokenRelevanceSchema>;

export const nextTokenSchema = s.object({
  id: tokenIdSchema,
  text: s.string({ max: 1024 }),
  prob: s.anyNumber(),
  logit: s.anyNumber(),
});
export type NextToken = Infer<typeof nextTokenSchema>;

/** The prompt-level result behind the editor heatmap (tokens, target, top next tokens). */
export const promptAttributionSchema = s.object({
  mode: modeSchema,
  tokens: s.array(tokenRelevanceSchema, { max: 1 << 16 }),
  positionRelevance: s.nullable(s.array(s.anyNumber(), { max: 1 << 16 })),
  target: s.object({
    kind: s.literal('logit', 'logit_diff', 'contrastive', 'set_diff'),
    token: tokenIdSchema,
    text: s.string({ max: 1024 }),
    foil: s.optional(tokenIdSchema),
    foilText: s.optional(s.string({ max: 1024 })),
    value: s.anyNumber(),
  }),
  topNext: s.array(nextTokenSchema, { max: 100 }),
  headRelevance: s.array(s.array(s.anyNumber(), { max: 4096 }), { max: 4096 }),
  sums: s.object({ token: s.anyNumber(), position: s.anyNumber(), bias: s.anyNumber() }),
});
export type PromptAttribution = Infer<typeof promptAttributionSchema>;

// ── circuit graph view (worker → host → webview) ──

export const NODE_KINDS = ['input', 'head', 'mlp', 'logits'] as const;
export const graphNodeSchema = s.object({
  id: componentIdSchema,
  kind: s.literal(...NODE_KINDS),
  layer: s.number({ int: true, min: -1, max: 4096 }),
  head: s.optional(s.number({ int: true, min: 0, max: 4096 })),
  relevance: s.anyNumber(),
  /** Model-derived text (e.g. a token); rendered as text only. */
  label: s.optional(s.string({ max: 256 })),
});
export type GraphNode = Infer<typeof graphNodeSchema>;

export const graphEdgeSchema = s.object({
  source: componentIdSchema,
  target: componentIdSchema,
  weight: s.anyNumber(),
});
export type GraphEdge = Infer<typeof graphEdgeSchema>;

export const circuitMetricsSchema = s.object({
  metric: s.string({ max: 128 }),
  full: s.anyNumber(),
  circuit: s.anyNumber(),
  ablated: s.optional(s.anyNumber()),
  faithfulness: s.anyNumber(),
  /** Components ablated in the `ablated` run (beyond those outside the circuit). */
  ablatedNodes: s.optional(s.array(componentIdSchema, { max: 1 << 14 })),
});
export type CircuitMetrics = Infer<typeof circuitMetricsSchema>;

export const curvePointSchema = s.object({ x: s.anyNumber(), y: s.anyNumber() });

// ── pruning (worker → host → webview) ──

export const PRUNE_METHODS = ['attnlrp', 'cp-lrp', 'gradient', 'wanda', 'magnitude', 'random'] as const;
export type PruneMethod = (typeof PRUNE_METHODS)[number];
export const PRUNE_SCOPES = ['rowwise', 'global'] as const;
export type PruneScope = (typeof PRUNE_SCOPES)[number];

const pruneSummaryShape = {
  method: s.literal(...PRUNE_METHODS),
  scope: s.literal(...PRUNE_SCOPES),
  /** Requested fraction of the decoder-block linear weights set to zero. */
  sparsity: s.number({ min: 0, max: 1 }),
  achievedSparsity: s.number({ min: 0, max: 1 }),
  prunedWeights: s.number({ int: true, min: 0 }),
  totalWeights: s.number({ int: true, min: 0 }),
  perplexityBefore: s.anyNumber(),
  perplexityAfter: s.anyNumber(),
  /** The text file perplexity is measured on (its first part) and calibration windows come from (the rest). */
  text: s.string({ max: 4096 }),
  evalTokens: s.number({ int: true, min: 0 }),
  calibration: s.nullable(
    s.object({
      windows: s.number({ int: true, min: 0 }),
      windowLength: s.number({ int: true, min: 0 }),
      tokens: s.number({ int: true, min: 0 }),
      explainedOutputs: s.number({ int: true, min: 0 }),
    }),
  ),
};
/** What a pruning run reports (shown in the panel next to its sparsity–perplexity curve). */
export const pruneSummarySchema = s.object(pruneSummaryShape);
export type PruneSummary = Infer<typeof pruneSummarySchema>;
export const circuitSchema = s.object({
  id: s.string({ max: 128 }),
  title: s.string({ max: 512 }),
  task: s.string({ max: 128 }),
  model: s.string({ max: 4096 }),
  mode: modeSchema,
  prompt: s.optional(s.string({ max: 1 << 14 })),
  layers: s.number({ int: true, min: 0, max: 4096 }),
  heads: s.number({ int: true, min: 0, max: 4096 }),
  /** Model widths, for the EAP-IG export (absent in circuits saved by older builds). */
  dModel: s.optional(s.number({ int: true, min: 1, max: 1 << 20 })),
  dMlp: s.optional(s.number({ int: true, min: 1, max: 1 << 22 })),
  /** Task prompts the relevance was averaged over. */
  examples: s.optional(s.number({ int: true, min: 0, max: 1 << 20 })),
  nodes: s.array(graphNodeSchema, { max: 1 << 15 }),
  edges: s.array(graphEdgeSchema, { max: 1 << 17 }),
  metrics: s.optional(circuitMetricsSchema),
  /** `[L][H]` mean head relevance over the task's prompts. */
  headRelevance: s.optional(s.array(s.array(s.anyNumber(), { max: 4096 }), { max: 4096 })),
  /** Per-layer attention and MLP relevance. */
  layerRelevance: s.optional(s.object({ attn: s.array(s.anyNumber(), { max: 4096 }), mlp: s.array(s.anyNumber(), { max: 4096 }) })),
  /** Faithfulness as a function of circuit size (x = components kept). */
  faithfulnessCurve: s.optional(s.array(curvePointSchema, { max: 4096 })),
  /** Perplexity as a function of sparsity (x = fraction pruned), from pruning runs. */
  sparsityCurve: s.optional(s.array(curvePointSchema, { max: 4096 })),
  /** The pruning run the sparsity curve comes from. */
  pruning: s.optional(pruneSummarySchema),
});
export type Circuit = Infer<typeof circuitSchema>;

export const TASKS = ['ioi', 'greater-than'] as const;
export const taskSchema = s.literal(...TASKS);

// ───────────────────────────── host ↔ engine worker ─────────────────────────────

const WORKER_MAX = 512 * 1024 * 1024;

const forwardRowSchema = s.object({
  logitsLast: s.float32(),
  logits: s.optional(s.float32()),
  headZ: s.optional(s.array(s.float32(), { max: 4096 })),
  mlpPost: s.optional(s.array(s.float32(), { max: 4096 })),
});
assertSame<Same<Infer<typeof forwardRowSchema>, Omit<ForwardRow, never>>>();

const matrixSchema = s.array(s.array(s.anyNumber(), { max: 4096 }), { max: 4096 });
const attributionSchema = s.object({
  targetValue: s.anyNumber(),
  logitsLast: s.float32(),
  tokenRelevance: s.float32(),
  positionRelevance: s.nullable(s.float32()),
  headRelevance: matrixSchema,
  headRelevanceProbs: s.nullable(matrixSchema),
  headRelevanceScores: s.nullable(matrixSchema),
  mlpRelevance: s.nullable(s.array(s.float32(), { max: 4096 })),
  residPre: s.array(s.anyNumber(), { max: 4096 }),
  residMid: s.array(s.anyNumber(), { max: 4096 }),
  residFinal: s.anyNumber(),
  biasRelevance: s.object({ linear: s.anyNumber(), layernorm: s.anyNumber() }),
  headPatch: s.optional(matrixSchema),
  neuronPatch: s.optional(s.array(s.float32(), { max: 4096 })),
  weightRelevance: s.record(s.float32(), { maxKeys: 4096 }),
});
assertSame<Same<Infer<typeof attributionSchema>, Attribution>>();

/** Requests the host sends to the engine worker. */
export const Engine = {
  load: new RequestType(
    'engine/load',
    s.object({ folder: s.string({ min: 1, max: 4096 }), executionProvider: s.optional(providerSchema), threads: s.optional(s.number({ int: true, min: 0, max: 1024 })), memoryShare: s.optional(s.number({ min: 0.05, max: 1 })) }),
    loadedModelSchema,
  ),
  info: new RequestType('engine/info', s.void(), s.nullable(loadedModelSchema)),
  tokenize: new RequestType(
    'engine/tokenize',
    s.object({ text: s.string({ max: 1 << 20 }) }),
    s.object({ ids: s.array(tokenIdSchema, { max: 1 << 20 }), offsets: s.array(s.array(s.number({ int: true, min: 0 }), { max: 2 }), { max: 1 << 20 }), tokens: s.array(s.string({ max: 1024 }), { max: 1 << 20 }) }),
  ),
  forward: new RequestType(
    'engine/forward',
    s.object({ ids: idsSchema, allLogits: s.optional(s.boolean()), hooks: s.optional(s.boolean()), interventions: s.optional(interventionsSchema) }),
    s.array(forwardRowSchema, { max: 4096 }),
  ),
  attribute: new RequestType(
    'engine/attribute',
    s.object({
      ids: idsSchema,
      targets: s.array(targetSchema, { max: 4096 }),
      mode: modeSchema,
      weights: s.optional(s.array(s.string({ max: 256 }), { max: 4096 })),
      interventions: s.optional(interventionsSchema),
      neurons: s.optional(s.boolean()),
    }),
    s.array(attributionSchema, { max: 4096 }),
  ),
  /** Tokenize + attribute + decode in one call: what the editor heatmap needs. */
  attributePrompt: new RequestType(
    'engine/attributePrompt',
    s.object({
      text: s.string({ min: 1, max: 1 << 16 }),
      mode: modeSchema,
      target: s.literal(...TARGET_CHOICES),
      /** Target token text for `token` / `logit-diff` (must be one token). */
      token: s.optional(s.string({ max: 256 })),
      foil: s.optional(s.string({ max: 256 })),
      topNext: s.optional(s.number({ int: true, min: 0, max: 100 })),
    }),
    promptAttributionSchema,
  ),
  discover: new RequestType(
    'engine/discover',
    s.object({
      task: taskSchema,
      mode: modeSchema,
      /** Number of task prompts to average over. */
      prompts: s.optional(s.number({ int: true, min: 1, max: 10000 })),
      maxNodes: s.optional(s.number({ int: true, min: 1, max: 1 << 15 })),
      maxEdges: s.optional(s.number({ int: true, min: 0, max: 1 << 17 })),
      threshold: s.optional(s.number({ min: 0, max: 1 })),
    }),
    circuitSchema,
  ),
  verify: new RequestType(
    'engine/verify',
    s.object({
      task: taskSchema,
      nodes: s.array(componentIdSchema, { max: 1 << 15 }),
      ablate: s.array(componentIdSchema, { max: 1 << 15 }),
      prompts: s.optional(s.number({ int: true, min: 1, max: 10000 })),
    }),
    circuitMetricsSchema,
  ),
  /**
   * Unstructured pruning of the decoder-block linear weights (src/circuits/prune.ts). The text
   * is split once: perplexity on its first part (at most 8,192 tokens), calibration windows from
   * the rest, so the two never overlap. The pruned weights stay in the worker for `exportModel`.
   */
  prune: new RequestType(
    'engine/prune',
    s.object({
      /** A text file; default: the model folder's heldout.txt. */
      text: s.optional(s.string({ min: 1, max: 4096 })),
      method: s.literal(...PRUNE_METHODS),
      scope: s.optional(s.literal(...PRUNE_SCOPES)),
      sparsity: s.number({ min: 0, max: 1 }),
      windows: s.optional(s.number({ int: true, min: 1, max: 4096 })),
      windowLength: s.optional(s.number({ int: true, min: 2, max: 1 << 16 })),
      /** Extra sparsities for the curve (the requested one and 0 are always measured). */
      curve: s.optional(s.array(s.number({ min: 0, max: 1 }), { max: 32 })),
    }),
    s.object({ ...pruneSummaryShape, curve: s.array(curvePointSchema, { max: 64 }) }),
  ),
  /**
   * Model correction by differential relevance (src/circuits/correct.ts): removes the MLP
   * neurons most relevant to the undesired task and least relevant to the general data. The
   * corrected weights stay in the worker for `exportModel`.
   */
  correct: new RequestType(
    'engine/correct',
    s.object({
      /** JSONL task of the undesired behaviour (rows marked `"context": "toxic"` when the file has a context field). */
      undesired: s.string({ min: 1, max: 4096 }),
      /** General data: a text file (next-token windows, perplexity) or a JSONL task (its targets, its metric). */
      general: s.string({ min: 1, max: 4096 }),
      neurons: s.number({ int: true, min: 1, max: 1 << 24 }),
      mode: modeSchema,
      windows: s.optional(s.number({ int: true, min: 1, max: 4096 })),
    }),
    s.object({
      unit: s.literal('neurons'),
      count: s.number({ int: true, min: 0 }),
      totalComponents: s.number({ int: true, min: 0 }),
      removed: s.array(componentIdSchema, { max: 1 << 20 }),
      /** Metric name → value on the dense model and on the corrected one. */
      before: s.record(s.anyNumber(), { maxKeys: 32 }),
      after: s.record(s.anyNumber(), { maxKeys: 32 }),
    }),
  ),
  /** Writes the last pruned or corrected model as a Hugging Face folder (atomically; never into the source folder). */
  exportModel: new RequestType(
    'engine/exportModel',
    s.object({ folder: s.string({ min: 1, max: 4096 }), overwrite: s.optional(s.boolean()) }),
    s.object({
      folder: s.string({ max: 4096 }),
      files: s.array(s.string({ max: 4096 }), { max: 256 }),
      kind: s.literal('prune', 'correct'),
      zeroedWeights: s.number({ int: true, min: 0 }),
    }),
  ),
  /** Test hook: a job that runs for `ms` milliseconds, reporting progress, honouring cancel only if `cooperative`. */
  sleep: new RequestType('engine/sleep', s.object({ ms: s.number({ int: true, min: 0, max: 600000 }), cooperative: s.boolean() }), s.void()),
  dispose: new RequestType('engine/dispose', s.void(), s.void()),
} as const;

export type EngineRequestType = (typeof Engine)[keyof typeof Engine];
export type EngineParams<K extends keyof typeof Engine> = ParamsOf<(typeof Engine)[K]>;
export type EngineResult<K extends keyof typeof Engine> = (typeof Engine)[K] extends RequestType<string, unknown, infer R> ? R : never;

export const engineRequests = new MessageSet<EngineRequestType>('engine', Object.values(Engine), 64 * 1024 * 1024);

export const progressSchema = s.object({
  message: s.optional(s.string({ max: 1024 })),
  /** Fraction done in [0, 1]. */
  fraction: s.optional(s.number({ min: 0, max: 1 })),
});
export type Progress = Infer<typeof progressSchema>;

export const ERROR_CODES = ['cancelled', 'unavailable', 'input', 'no-model', 'internal', 'worker-died', 'protocol'] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];
export const errorSchema = s.object({
  code: s.literal(...ERROR_CODES),
  message: s.string({ max: 1 << 14 }),
  name: s.optional(s.string({ max: 128 })),
  stack: s.optional(s.string({ max: 1 << 16 })),
});
export type WireError = Infer<typeof errorSchema>;

const idSchema = s.number({ int: true, min: 0, max: Number.MAX_SAFE_INTEGER });

/** Envelope of a host → worker message. */
export type HostToWorker =
  | { type: 'request'; id: number; method: string; params: unknown }
  | { type: 'cancel'; id: number };

/** Envelope of a worker → host message (results are checked against the request's result schema). */
export const workerToHostSchema = s.tagged('type', {
  ready: s.object({ type: s.literal('ready') }),
  response: s.object({ type: s.literal('response'), id: idSchema, result: s.unknown() }),
  error: s.object({ type: s.literal('error'), id: idSchema, error: errorSchema }),
  progress: s.object({ type: s.literal('progress'), id: idSchema, progress: progressSchema }),
  log: s.object({ type: s.literal('log'), level: s.literal('trace', 'debug', 'info', 'warn', 'error'), message: s.string({ max: 1 << 16 }) }),
});
export type WorkerToHost = Infer<typeof workerToHostSchema>;

export const hostToWorkerSchema = s.tagged('type', {
  request: s.object({ type: s.literal('request'), id: idSchema, method: s.string({ max: 64 }), params: s.unknown() }),
  cancel: s.object({ type: s.literal('cancel'), id: idSchema }),
});

/** Validates an envelope from the worker (result payloads are validated per request by the client). */
export function validateWorkerMessage(raw: unknown): { ok: true; message: WorkerToHost } | { ok: false; reason: string } {
  try {
    return { ok: true, message: parseWith(workerToHostSchema, raw, WORKER_MAX) };
  } catch (err) {
    return { ok: false, reason: `worker: ${err instanceof ProtocolError ? err.reason : (err as Error).message}` };
  }
}

/** Validates a request envelope and its params on the worker side. */
export function validateWorkerRequest(
  raw: unknown,
): { ok: true; kind: 'cancel'; id: number } | { ok: true; kind: 'request'; id: number; type: EngineRequestType; params: unknown } | { ok: false; id?: number; reason: string } {
  let envelope: Infer<typeof hostToWorkerSchema>;
  try {
    envelope = parseWith(hostToWorkerSchema, raw, 1024);
  } catch (err) {
    const id = isPlainObject(raw) && typeof raw['id'] === 'number' ? raw['id'] : undefined;
    // The params are not inspected by the envelope schema and do not count against its budget.
    return { ok: false, ...(id !== undefined ? { id } : {}), reason: `engine: ${err instanceof ProtocolError ? err.reason : (err as Error).message}` };
  }
  if (envelope.type === 'cancel') return { ok: true, kind: 'cancel', id: envelope.id };
  const checked = engineRequests.validate({ method: envelope.method, params: envelope.params });
  if (!checked.ok) return { ok: false, id: envelope.id, reason: checked.reason };
  return { ok: true, kind: 'request', id: envelope.id, type: checked.type, params: checked.message.params };
}

// ───────────────────────────── host ↔ webview ─────────────────────────────

/** The panel state the host sends (and the webview persists with `setState`). */
export const panelStateSchema = s.object({
  circuit: s.nullable(circuitSchema),
  /** Components the user toggled off (ablated) in the panel. */
  ablated: s.array(componentIdSchema, { max: 1 << 15 }),
  pinned: s.array(componentIdSchema, { max: 1 << 15 }),
  selected: s.nullable(componentIdSchema),
  threshold: s.number({ min: 0, max: 1 }),
  topK: s.number({ int: true, min: 1, max: 1 << 17 }),
  view: s.literal('graph', 'table', 'charts'),
});
export type PanelState = Infer<typeof panelStateSchema>;

/** Host → webview. */
export const ToWebview = {
  state: new MessageType('panel/state', panelStateSchema),
  verifying: new MessageType('panel/verifying', s.object({ busy: s.boolean() })),
  metrics: new MessageType('panel/metrics', circuitMetricsSchema),
  error: new MessageType('panel/error', s.object({ message: s.string({ max: 4096 }) })),
  /** The host refused a message from the webview (shown in the panel's status line). */
  rejected: new MessageType('panel/rejected', s.object({ reason: s.string({ max: 1024 }) })),
} as const;
export type ToWebviewType = (typeof ToWebview)[keyof typeof ToWebview];
export const toWebviewMessages = new MessageSet<ToWebviewType>('webview', Object.values(ToWebview), 32 * 1024 * 1024);

/** Webview → host. */
export const FromWebview = {
  ready: new MessageType('panel/ready', s.void()),
  selectNode: new MessageType('panel/selectNode', s.object({ id: s.nullable(componentIdSchema) })),
  ablate: new MessageType('panel/ablate', s.object({ ids: s.array(componentIdSchema, { max: 1 << 15 }), ablated: s.boolean() })),
  pin: new MessageType('panel/pin', s.object({ id: componentIdSchema, pinned: s.boolean() })),
  verify: new MessageType('panel/verify', s.object({ ablate: s.array(componentIdSchema, { max: 1 << 15 }) })),
  setThreshold: new MessageType('panel/setThreshold', s.object({ threshold: s.number({ min: 0, max: 1 }), topK: s.number({ int: true, min: 1, max: 1 << 17 }) })),
  setView: new MessageType('panel/setView', s.object({ view: s.literal('graph', 'table', 'charts') })),
  export: new MessageType(
    'panel/export',
    s.object({ format: s.literal('circuit-lens', 'neuronpedia', 'eap-ig', 'png'), nodes: s.optional(s.array(componentIdSchema, { max: 1 << 15 })), dataUrl: s.optional(s.string({ max: 16 << 20, pattern: /^data:image\/png;base64,[A-Za-z0-9+/=]*$/ })) }),
  ),
} as const;
export type FromWebviewType = (typeof FromWebview)[keyof typeof FromWebview];
/** Webview commands are small except a PNG export. */
export const fromWebviewMessages = new MessageSet<FromWebviewType>('panel', Object.values(FromWebview), 40 * 1024 * 1024);
