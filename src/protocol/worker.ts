/** The host ↔ engine worker channel: requests answered by `response` or `error`, `progress` while a job runs, `cancel` from the host, `log` and `ready` from the worker. */
import { ABLATIONS, AGGREGATIONS, DISCOVERY_METHODS, GRANULARITIES, PRUNE_METHODS, PRUNE_SCOPES, TARGET_CHOICES } from '../vocabulary';
import { isPlainObject, MessageSet, parseWith, ProtocolError, RequestType, s, type Infer, type ParamsOf } from './schema';
import {
  attributionSchema,
  circuitGraphSchema,
  componentIdSchema,
  correctRunSchema,
  CURVE_METHOD_NAMES,
  CURVE_MODE_NAMES,
  pruneCurveRunSchema,
  forwardRowSchema,
  idsSchema,
  interventionsSchema,
  loadedModelSchema,
  modeSchema,
  promptAttributionSchema,
  providerSchema,
  weightPrecisionSchema,
  pruneRunSchema,
  targetSchema,
  tokenIdSchema,
  verificationSchema,
} from './shapes';
import { logitLensSchema, promptAblationSchema, promptGraphSchema, promptNodeIdSchema, steerSchema } from './promptGraph';

const WORKER_MAX = 512 * 1024 * 1024;

/** A prompt and what to explain at its last position: the editor's Attribute Prompt and Open Prompt Graph. */
const promptTargetFields = {
  text: s.string({ min: 1, max: 1 << 16 }),
  mode: modeSchema,
  target: s.literal(...TARGET_CHOICES),
  /** Target token text for `token` / `logit-diff` (must be one token). */
  token: s.optional(s.string({ max: 256 })),
  foil: s.optional(s.string({ max: 256 })),
};

/** Requests the host sends to the engine worker. */
export const Engine = {
  load: new RequestType(
    'engine/load',
    s.object({ folder: s.string({ min: 1, max: 4096 }), executionProvider: s.optional(providerSchema), threads: s.optional(s.number({ int: true, min: 0, max: 1024 })), memoryShare: s.optional(s.number({ min: 0.05, max: 1 })), cacheDir: s.optional(s.string({ min: 1, max: 4096 })), weightPrecision: s.optional(weightPrecisionSchema) }),
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
      ...promptTargetFields,
      topNext: s.optional(s.number({ int: true, min: 0, max: 100 })),
    }),
    promptAttributionSchema,
  ),
  /** Discovers a circuit (src/pipelines/circuits.ts `discover`, as `circuit-lens discover`). */
  discover: new RequestType(
    'engine/discover',
    s.object({
      /** `ioi`, `greater-than` or a JSONL task file. */
      task: s.string({ min: 1, max: 4096 }),
      n: s.optional(s.number({ int: true, min: 1, max: 100000 })),
      seed: s.optional(s.number({ int: true, min: 0, max: 2 ** 31 })),
      method: s.optional(s.literal(...DISCOVERY_METHODS)),
      granularity: s.optional(s.literal(...GRANULARITIES)),
      aggregation: s.optional(s.literal(...AGGREGATIONS)),
      edges: s.optional(s.boolean()),
      top: s.optional(s.number({ int: true, min: 1, max: 1 << 20 })),
      budget: s.optional(s.number({ min: 0, max: 1 })),
      ablation: s.optional(s.literal(...ABLATIONS)),
    }),
    circuitGraphSchema,
  ),
  /** Verifies a circuit on its task, optionally without some of its components. */
  verify: new RequestType(
    'engine/verify',
    s.object({
      graph: circuitGraphSchema,
      task: s.optional(s.string({ min: 1, max: 4096 })),
      ablation: s.optional(s.literal(...ABLATIONS)),
      ablate: s.optional(s.array(componentIdSchema, { max: 1 << 15 })),
    }),
    verificationSchema,
  ),
  /**
   * Unstructured pruning of the decoder-block linear weights (src/pipelines/pruning.ts). The
   * pruned weights stay in the worker for `exportModel`.
   */
  prune: new RequestType(
    'engine/prune',
    s.object({
      method: s.literal(...PRUNE_METHODS),
      sparsity: s.number({ min: 0, max: 1 }),
      scope: s.optional(s.literal(...PRUNE_SCOPES)),
      /** A text file; default: the model folder's heldout.txt. */
      text: s.optional(s.string({ min: 1, max: 4096 })),
      windows: s.optional(s.number({ int: true, min: 1, max: 4096 })),
      windowLength: s.optional(s.number({ int: true, min: 2, max: 1 << 16 })),
      /** Extra sparsities for the curve (the requested one and 0 are always measured). */
      curve: s.optional(s.array(s.number({ min: 0, max: 1 }), { max: 32 })),
    }),
    pruneRunSchema,
  ),
  /**
   * SparC³'s circuit protocol (src/pipelines/pruneCurve.ts `pruneCurve`, as `circuit-lens prune-curve`):
   * scores only, the model's weights are left as they are.
   */
  pruneCurve: new RequestType(
    'engine/pruneCurve',
    s.object({
      /** `ioi` (the held-out IOI split) or a JSONL file of IOI prompts with io and s. */
      eval: s.string({ min: 1, max: 4096 }),
      seeds: s.optional(s.number({ int: true, min: 1, max: 64 })),
      reference: s.optional(s.number({ int: true, min: 2, max: 4096 })),
      methods: s.optional(s.array(s.literal(...CURVE_METHOD_NAMES), { max: 8 })),
      modes: s.optional(s.array(s.literal(...CURVE_MODE_NAMES), { max: 2 })),
      rates: s.optional(s.array(s.number({ min: 0, max: 0.999999 }), { max: 64 })),
      keep: s.optional(s.number({ min: 0, max: 1 })),
    }),
    pruneCurveRunSchema,
  ),
  /** Model correction (src/pipelines/pruning.ts `correct`); the corrected weights stay in the worker for `exportModel`. */
  correct: new RequestType(
    'engine/correct',
    s.object({
      undesired: s.string({ min: 1, max: 4096 }),
      general: s.string({ min: 1, max: 4096 }),
      neurons: s.number({ int: true, min: 1, max: 1 << 24 }),
      mode: s.optional(modeSchema),
      windows: s.optional(s.number({ int: true, min: 1, max: 4096 })),
    }),
    correctRunSchema,
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
  /**
   * The prompt graph of one prompt at its last position (src/pipelines/promptGraph.ts
   * `promptGraph`, as `circuit-lens graph`): what the editor's prompt graph panel draws.
   */
  promptGraph: new RequestType(
    'engine/promptGraph',
    s.object({
      ...promptTargetFields,
      nodeThreshold: s.optional(s.number({ min: 1e-9, max: 1 })),
      edgeThreshold: s.optional(s.number({ min: 1e-9, max: 1 })),
    }),
    promptGraphSchema,
  ),
  /** Re-runs a prompt graph's prompt with one head/MLP node ablated at its position (`ablatePromptGraphNodes`). */
  ablatePromptNode: new RequestType(
    'engine/ablatePromptNode',
    s.object({
      ids: s.array(tokenIdSchema, { max: 1 << 16 }),
      metric: s.literal('logit', 'logit_diff', 'contrastive'),
      position: s.number({ int: true, min: 0, max: 1 << 16 }),
      token: tokenIdSchema,
      foil: s.optional(tokenIdSchema),
      node: promptNodeIdSchema,
      ablation: s.literal('zero', 'mean'),
    }),
    promptAblationSchema,
  ),
  /** Logit lens of a prompt (as `circuit-lens lens`): the prompt graph panel's lens view. */
  logitLens: new RequestType('engine/logitLens', s.object({ ids: s.array(tokenIdSchema, { max: 1 << 16 }), top: s.optional(s.number({ int: true, min: 1, max: 20 })) }), logitLensSchema),
  /** Steer-and-generate (as `circuit-lens steer`): scale a head/MLP at a position and continue greedily. */
  steer: new RequestType(
    'engine/steer',
    s.object({ ids: s.array(tokenIdSchema, { max: 1 << 16 }), node: promptNodeIdSchema, scale: s.number({ min: -1000, max: 1000 }), maxNewTokens: s.optional(s.number({ int: true, min: 1, max: 64 })) }),
    steerSchema,
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

