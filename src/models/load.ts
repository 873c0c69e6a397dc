/** Opens a Hugging Face model folder as it is: config.json, safetensors weights, tokenizer. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from './errors';
import { specFromConfig, expectedShapes, specialIds } from './config';
import { ModelTokenizer } from './tokenizer';
import { ModelWeights } from './weights';
import type { ArchSpec } from './spec';

/** config.json files beyond this are refused before they are read (a lying file could be gigabytes). */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

export interface LoadedModel {
  readonly folder: string;
  readonly config: Record<string, unknown>;
  readonly spec: ArchSpec;
  readonly weights: ModelWeights;
  readonly tokenizer: ModelTokenizer | null;
}

/**
 * `beforeWeights`, when given, sees the parameter count from the safetensors headers (and
 * config-checked shapes) before any tensor is converted, and may refuse by throwing.
 */
export function loadModelFolder(folder: string, beforeWeights?: (parameters: number) => void): LoadedModel {
  const resolved = path.resolve(folder);
  if (!fs.existsSync(resolved)) throw new InputError('model folder does not exist', resolved);
  if (!fs.statSync(resolved).isDirectory()) throw new InputError('not a folder (pick the model folder holding config.json)', resolved);
  const configPath = path.join(resolved, 'config.json');
  if (!fs.existsSync(configPath)) throw new InputError('config.json is missing', resolved);
  const configStat = fs.statSync(configPath);
  if (!configStat.isFile()) throw new InputError('not a file', configPath);
  const configSize = configStat.size;
  if (configSize > MAX_CONFIG_BYTES) {
    throw new InputError(`${configSize} bytes is far too large for a model config (limit ${MAX_CONFIG_BYTES}; real ones are kilobytes)`, configPath);
  }
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(fs.readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new InputError(`not valid JSON (${(err as Error).message})`, configPath);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new InputError('not a JSON object', configPath);
  const weights = ModelWeights.open(resolved);
  const spec = withGenerationConfig(specFromConfig(config, (n) => weights.has(n), configPath), resolved);
  const expected = expectedShapes(spec);
  weights.checkShapes(expected);
  checkLayerCount(spec.nLayers, weights.names(), configPath);
  beforeWeights?.(parameterCount(weights));
  weights.requireFinite(expected.keys());
  const tokenizer = ModelTokenizer.open(resolved);
  return { folder: resolved, config, spec, weights, tokenizer };
}

/**
 * GPT-2 and Pythia checkpoints may carry the causal-mask buffers `attn.bias` / `attention.bias`
 * ([1, 1, n_ctx, n_ctx]) and `masked_bias`, older Pythia and Llama ones `rotary_emb.inv_freq`;
 * they are not parameters, and the graph builds its own mask and rotary tables.
 */
const BUFFER = /(?:^|\.)(?:attn|attention)\.(?:masked_)?bias$|(?:^|\.)rotary_emb\.inv_freq$/;

/**
 * generation_config.json, when present, is what HF's `generate` reads for bos/eos: its ids
 * take precedence over config.json's (Llama 3 lists several end-of-turn ids only there).
 */
function withGenerationConfig(spec: ArchSpec, folder: string): ArchSpec {
  const file = path.join(folder, 'generation_config.json');
  if (!fs.existsSync(file)) return spec;
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new InputError(`not valid JSON (${(err as Error).message})`, file);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new InputError('not a JSON object', file);
  const found = specialIds((name) => (json as Record<string, unknown>)[name], (message) => {
    throw new InputError(message, file);
  });
  return { ...spec, ...found };
}

/** Parameters, counting a tied embedding once and leaving out buffers. */
export function parameterCount(weights: ModelWeights): number {
  let total = 0;
  for (const name of weights.names()) if (!BUFFER.test(name)) total += weights.info(name).shape.reduce((a, b) => a * b, 1);
  return total;
}

/** The weights must not hold more blocks than the config says: extra layers would be silently ignored. */
function checkLayerCount(nLayers: number, names: readonly string[], configPath: string): void {
  let highest = -1;
  for (const name of names) {
    const match = /(?:^|\.)(?:h|layers)\.(\d+)\./.exec(name);
    if (match) highest = Math.max(highest, Number(match[1]));
  }
  if (highest + 1 > nLayers) {
    throw new InputError(`the config says ${nLayers} layers but the weights hold ${highest + 1}`, configPath);
  }
}
