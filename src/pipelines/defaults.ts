/**
 * The defaults of the use cases, in one place for the CLI's flags and the editor's pickers. No
 * imports, so the extension host can show them without bundling the engine.
 */

/** The defaults of discovery, for the CLI's flags and the editor's pickers alike. */
export const DISCOVER_DEFAULTS = {
  task: 'ioi',
  /** Prompts generated for a built-in task (a task file keeps all its rows unless n is given). */
  n: 100,
  seed: 0,
  method: 'attnlrp',
  /**
   * Signed by default: a component that consistently works against the task metric is not part
   * of its circuit. Chosen on the calibration split (README, "Honest defaults").
   */
  aggregation: 'signed-mean',
  ablation: 'mean',
  /** Share of the candidates kept when neither top-k nor a budget is given (nodes, edges). */
  nodeShare: 0.25,
  edgeShare: 0.1,
  batchSize: 32,
} as const satisfies Record<string, unknown>;

export const PRUNE_DEFAULTS = {
  scope: 'rowwise',
  aggregation: 'mean-abs',
  target: 'logit',
  samples: 'sequence',
  windows: 32,
  windowLength: 64,
  /** The text used when none is named: the model folder's held-out text. */
  text: 'heldout.txt',
} as const satisfies Record<string, unknown>;

export const CORRECT_DEFAULTS = {
  mode: 'attnlrp',
  windows: 16,
  windowLength: 64,
} as const satisfies Record<string, unknown>;

/** `circuit-lens prune-curve` and the editor's SparC³ Prune Curve… (SparC³ Fig. 2, 11, 12). */
export const PRUNE_CURVE_DEFAULTS = {
  seeds: 3,
  reference: 128,
  keep: 0.9,
  /** Prompts of the held-out IOI split used by `eval: 'ioi'`. */
  heldOut: 200,
} as const;
