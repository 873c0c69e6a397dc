/** The host ↔ webview channel: a `ready` handshake, state updates from the host, commands from the webview. */
import { MessageSet, MessageType, s, type Infer } from './schema';
import { circuitGraphSchema, componentIdSchema, runSchema, verificationSchema } from './shapes';
import { logitLensSchema, promptAblationSchema, promptGraphSchema, promptNodeIdSchema, steerSchema } from './promptGraph';

/** The panel state the host sends (and the webview persists with `setState`). */
export const panelStateSchema = s.object({
  /** The circuit shown: exactly the circuit graph JSON a CLI run writes. */
  circuit: s.nullable(circuitGraphSchema),
  /** A name for the circuit (its saved name, or the file it was opened from). */
  title: s.string({ max: 512 }),
  /** The last verification of this circuit (cleared when another circuit is shown). */
  verification: s.nullable(verificationSchema),
  /** Pruning and correction runs of this session, and which of them the Charts view overlays. */
  runs: s.array(runSchema, { max: 256 }),
  shownRuns: s.array(s.string({ max: 128 }), { max: 256 }),
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
  verification: new MessageType('panel/verification', verificationSchema),
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
  showRuns: new MessageType('panel/showRuns', s.object({ ids: s.array(s.string({ max: 128 }), { max: 256 }) })),
  export: new MessageType(
    'panel/export',
    s.object({ format: s.literal('circuit-lens', 'neuronpedia', 'eap-ig', 'png'), nodes: s.optional(s.array(componentIdSchema, { max: 1 << 15 })), dataUrl: s.optional(s.string({ max: 16 << 20, pattern: /^data:image\/png;base64,[A-Za-z0-9+/=]*$/ })) }),
  ),
} as const;
export type FromWebviewType = (typeof FromWebview)[keyof typeof FromWebview];
/** Webview commands are small except a PNG export. */
export const fromWebviewMessages = new MessageSet<FromWebviewType>('panel', Object.values(FromWebview), 40 * 1024 * 1024);

// ── the prompt graph panel (its own webview: dist/promptGraph.js) ──

/** How many ablation and steering results the prompt graph panel keeps (the oldest go first). */
export const MAX_PANEL_ABLATIONS = 4096;
export const MAX_PANEL_STEERS = 256;

/** What the prompt graph panel shows (and persists with `setState`). */
export const promptPanelStateSchema = s.object({
  /** Exactly the graph `circuit-lens graph --out` writes for the same prompt and settings. */
  graph: s.nullable(promptGraphSchema),
  title: s.string({ max: 512 }),
  /** The selected node (its side card). */
  selected: s.nullable(s.string({ max: 64 })),
  /** Nodes ablated at their position and re-run in this panel, newest last. */
  ablations: s.array(promptAblationSchema, { max: MAX_PANEL_ABLATIONS }),
  /** The logit lens of the prompt, once asked for (optional: states saved before it existed). */
  lens: s.optional(s.nullable(logitLensSchema)),
  /** Steered continuations run in this panel, newest last. */
  steers: s.optional(s.array(steerSchema, { max: MAX_PANEL_STEERS })),
});
export type PromptPanelState = Infer<typeof promptPanelStateSchema>;

/** Host → prompt graph panel. */
export const ToPromptPanel = {
  state: new MessageType('promptGraph/state', promptPanelStateSchema),
  busy: new MessageType('promptGraph/busy', s.object({ busy: s.boolean() })),
  rejected: new MessageType('promptGraph/rejected', s.object({ reason: s.string({ max: 1024 }) })),
} as const;
export type ToPromptPanelType = (typeof ToPromptPanel)[keyof typeof ToPromptPanel];
export const toPromptPanelMessages = new MessageSet<ToPromptPanelType>('prompt graph', Object.values(ToPromptPanel), 64 * 1024 * 1024);

/** Prompt graph panel → host. */
export const FromPromptPanel = {
  ready: new MessageType('promptGraph/ready', s.void()),
  select: new MessageType('promptGraph/select', s.object({ id: s.nullable(s.string({ max: 64 })) })),
  /** Ablate a head/MLP node at its position and re-run the prompt (resample needs a corrupted prompt, so not offered). */
  ablate: new MessageType('promptGraph/ablate', s.object({ node: promptNodeIdSchema, ablation: s.literal('zero', 'mean') })),
  lens: new MessageType('promptGraph/lens', s.void()),
  steer: new MessageType('promptGraph/steer', s.object({ node: promptNodeIdSchema, scale: s.number({ min: -1000, max: 1000 }) })),
} as const;
export type FromPromptPanelType = (typeof FromPromptPanel)[keyof typeof FromPromptPanel];
export const fromPromptPanelMessages = new MessageSet<FromPromptPanelType>('prompt graph panel', Object.values(FromPromptPanel), 64 * 1024);
