/**
 * The vocabulary of Circuit Lens: every enumeration a user can choose from, declared once with
 * its documentation. The CLI's flag checks and help, the protocol's validators, the extension's
 * quick picks and the `package.json` setting enums all derive from (or are tested against,
 * `test/unit/vocabulary.test.ts`) these tables. No imports, so every room (models, engine,
 * circuits, protocol, webview) can use it.
 *
 * Each table maps a value to a one-line description; `valuesOf` gives the ordered list.
 */

type Vocabulary = Readonly<Record<string, string>>;

/** The values of a vocabulary table, in declaration order. */
export function valuesOf<V extends Vocabulary>(table: V): readonly (keyof V & string)[] {
  return Object.keys(table) as (keyof V & string)[];
}

/** `value — description` lines, for `--help` texts. */
export function describeVocabulary(table: Vocabulary, indent = '    '): string {
  const width = Math.max(...Object.keys(table).map((k) => k.length));
  return Object.entries(table)
    .map(([value, doc]) => `${indent}${value.padEnd(width)}  ${doc}`)
    .join('\n');
}

/**
 * Rule sets for the modified backward pass. Each is one entry of the rule table
 * (`src/engine/rules.ts`, typed `Record<Composite, RuleTable>`, so a new name here without a
 * table entry does not compile).
 */
export const COMPOSITE_DOCS = {
  attnlrp: 'AttnLRP (Achtibat et al. 2024): ½ rules at Q·Kᵀ and A·V, identity rule for activations, std/rsqrt treated as constant',
  'cp-lrp': 'CP-LRP: attention probabilities treated as constants (V takes all relevance), otherwise as AttnLRP',
  gradient: 'plain gradient × input (no LRP rule anywhere)',
  'ln-gradient': "gradient × input with the LN-rule only (Ali et al. 2022): norms' std treated as constant, all else the plain gradient",
  'pxp-gamma': 'PXP-style (Hatefi et al. 2024): AttnLRP with per-layer-group linear rules, γ = 0.25 in the low and mid thirds of the blocks, ε = 1e-6 in the high third and at the unembedding',
} as const;
export type Composite = keyof typeof COMPOSITE_DOCS;
export const COMPOSITES = valuesOf(COMPOSITE_DOCS);

/** One entry per composite, so a new composite is a scoring method everywhere at once. */
function perComposite(describe: (composite: Composite) => string): Record<Composite, string> {
  return Object.fromEntries(COMPOSITES.map((c) => [c, describe(c)])) as Record<Composite, string>;
}

/** How component scores for a circuit are obtained: any composite's relevance, or a baseline. */
export const DISCOVERY_METHOD_DOCS = {
  ...perComposite((c) => `${c} relevance of each component (${COMPOSITE_DOCS[c]})`),
  activation: 'mean |activation| of each component (a baseline that ignores the metric)',
  eap: 'edge attribution patching: (clean − corrupted) · ∇metric (Syed et al. 2023)',
} as const;
export type DiscoveryMethod = keyof typeof DISCOVERY_METHOD_DOCS;
export const DISCOVERY_METHODS = valuesOf(DISCOVERY_METHOD_DOCS);

/** How per-example scores become one score per component. */
export const AGGREGATION_DOCS = {
  'signed-mean': 'mean of the signed scores: a component that works against the metric scores below zero',
  'mean-abs': 'mean of |score| per example',
  'abs-mean': '|mean of the signed scores|',
} as const;
export type Aggregation = keyof typeof AGGREGATION_DOCS;
export const AGGREGATIONS = valuesOf(AGGREGATION_DOCS);

/** What an ablated component's activation is replaced with. */
export const ABLATION_DOCS = {
  zero: 'zero',
  mean: 'its mean over the task prompts (all positions)',
  'mean-positional': 'its mean over the task prompts, per position',
  resample: 'its value on the corrupted prompt (needs corrupted_prompt)',
} as const;
export type Ablation = keyof typeof ABLATION_DOCS;
export const ABLATIONS = valuesOf(ABLATION_DOCS);

/** Which components a circuit is made of. */
export const GRANULARITY_DOCS = {
  heads: 'attention heads',
  'heads+mlps': 'attention heads and whole MLP blocks',
  'heads+neurons': 'attention heads and single MLP neurons',
  neurons: 'single MLP neurons',
} as const;
export type Granularity = keyof typeof GRANULARITY_DOCS;
export const GRANULARITIES = valuesOf(GRANULARITY_DOCS);

/** Tasks generated for the loaded model's tokenizer (a JSONL file is always accepted too). */
export const BUILT_IN_TASK_DOCS = {
  ioi: 'indirect object identification (ACDC templates, BABA and ABBA, ABC corruption); metric logit difference',
  'greater-than': 'greater-than on years (Hanna et al. 2023); metric probability difference',
} as const;
export type BuiltInTask = keyof typeof BUILT_IN_TASK_DOCS;
export const BUILT_IN_TASKS = valuesOf(BUILT_IN_TASK_DOCS);

/** How weights are scored for unstructured pruning: any composite's |R_W| = |W ⊙ g̃_W|, or a baseline. */
export const PRUNE_METHOD_DOCS = {
  ...perComposite((c) => `|R_W| = |W ⊙ g̃_W| under ${c} (SparC³; ${c === 'gradient' ? 'the plain gradient' : 'its LRP rules'})`),
  wanda: '|W| · ‖x‖₂ of the input feature (Sun et al. 2024)',
  magnitude: '|W|',
  random: 'uniform random scores (a floor)',
} as const;
export type PruneMethod = keyof typeof PRUNE_METHOD_DOCS;
export const PRUNE_METHODS = valuesOf(PRUNE_METHOD_DOCS);

export const PRUNE_SCOPE_DOCS = {
  rowwise: 'prune the same fraction of every output row of every weight matrix',
  global: 'one ranking over all decoder-block linear weights',
} as const;
export type PruneScope = keyof typeof PRUNE_SCOPE_DOCS;
export const PRUNE_SCOPES = valuesOf(PRUNE_SCOPE_DOCS);

/** What one reference sample is when weights are scored by relevance. */
export const SAMPLE_UNIT_DOCS = {
  sequence: 'a calibration window: all its positions explained in one backward pass (SparC³)',
  position: 'each explained position (PXP per-token |R|; one backward pass per position)',
} as const;
export type SampleUnit = keyof typeof SAMPLE_UNIT_DOCS;
export const SAMPLE_UNITS = valuesOf(SAMPLE_UNIT_DOCS);

export const EXECUTION_PROVIDER_DOCS = {
  auto: 'CUDA, then WebGPU, then the CPU; logs why each fallback happened',
  cpu: 'the CPU (always available)',
  cuda: 'NVIDIA GPU (needs onnxruntime-node installed with its CUDA 12 binaries)',
  webgpu: 'WebGPU (Vulkan on Linux)',
} as const;
export type ExecutionProviderSetting = keyof typeof EXECUTION_PROVIDER_DOCS;
export const EXECUTION_PROVIDERS = valuesOf(EXECUTION_PROVIDER_DOCS);

/** How weight matrices are stored in the compiled graph (build.ts `halfWeights`); compute stays float32. */
export const WEIGHT_PRECISION_DOCS = {
  auto: 'half precision on a GPU provider when the files are F16/BF16, float32 otherwise (the CPU stays float32)',
  float32: 'every weight as float32 (F16/BF16 files are converted on load)',
  half: 'weight matrices in half precision: F16/BF16 as stored, F32 rounded to F16; cast to float32 per use',
} as const;
export type WeightPrecision = keyof typeof WEIGHT_PRECISION_DOCS;
export const WEIGHT_PRECISIONS = valuesOf(WEIGHT_PRECISION_DOCS);

/** What the editor's Attribute Prompt explains. */
export const TARGET_CHOICE_DOCS = {
  top1: 'the most likely next token',
  token: 'a token you type',
  'logit-diff': 'the logit of a token minus that of a foil (e.g. IOI)',
} as const;
export type TargetChoice = keyof typeof TARGET_CHOICE_DOCS;
export const TARGET_CHOICES = valuesOf(TARGET_CHOICE_DOCS);

/** What a task measures on each prompt (per example, then averaged). */
export const METRIC_DOCS = {
  logit_diff: 'logit(target) − logit(foil) at the last position (IOI)',
  prob_diff: 'Σ p(good) − Σ p(bad), softmax over the full vocabulary (greater-than)',
  prob: 'Σ p(good) (e.g. the probability of an insult, toxic.jsonl)',
  accuracy: '1 when logit(target) > logit(foil), else 0',
  top1: '1 when the target is the arg-max token, else 0',
  kl: "KL(full model ‖ this run) of the last-position distribution; needs the full model's logits",
} as const;
export type MetricName = keyof typeof METRIC_DOCS;
export const METRIC_NAMES = valuesOf(METRIC_DOCS);
