/**
 * `circuit-lens`: the headless command over the same core as the extension, for batch work
 * and CI. Every command prints JSON with `--json` (field names match the reference files) and
 * a short human summary otherwise. Bad input exits 2 with a one-line error; nothing else is
 * written.
 */
import { InputError } from '../models/errors';
import { Engine, embeddedModelPath } from '../engine/engine';
import { argmaxOf, attributePrompt, encodePrompt, type TokenRef } from '../pipelines/attribution';
import { COMPOSITES, EXECUTION_PROVIDERS, WEIGHT_PRECISIONS } from '../vocabulary';
import { idsFlag, intFlag, oneOf, parseFlags, type FlagSpec } from './args';
import { attributionJson, topK } from './format';
import { circuitCommands } from './commands';
import { pruneCommands } from './prune-commands';
import { pruneCurveCommands } from './prune-curve';
import { perturbCommands } from './perturb';
import { graphCommands } from './graph';
import { interopCommands } from './export-graph';
import { cacheCommands } from './cache-commands';
import { shardCommands } from './shard-commands';
import { resolveCacheDir } from '../engine/cache';
import { MODEL_FLAGS, type Command, type CommandContext } from './command';

export { MODEL_FLAGS, type Command, type CommandContext };

const PROMPT_FLAGS = { ...MODEL_FLAGS, prompt: { type: 'string' }, ids: { type: 'string' } } as const satisfies FlagSpec;

/** The prompt as ids (+ token strings when the model has a tokenizer). */
export function promptIds(engine: Engine, flags: { prompt?: string; ids?: string }): { ids: number[]; tokens: string[] | null; text: string | null } {
  const prompt = promptFlag(flags);
  const { ids, text } = encodePrompt(engine, prompt);
  return { ids, tokens: engine.tokenizer ? ids.map((id) => engine.tokenizer!.tokenString(id)) : null, text };
}

function promptFlag(flags: { prompt?: string; ids?: string }): { text: string } | { ids: number[] } {
  if (flags.prompt !== undefined && flags.ids !== undefined) throw new InputError('give --prompt or --ids, not both');
  if (flags.ids !== undefined) return { ids: idsFlag(flags.ids) };
  if (flags.prompt === undefined) throw new InputError('give the prompt with --prompt TEXT or --ids 1,2,3');
  return { text: flags.prompt };
}

function tokenFlag(text: string | undefined, id: string | undefined, what: string): TokenRef | undefined {
  if (text !== undefined && id !== undefined) throw new InputError(`give --${what} or --${what}-id, not both`);
  if (id !== undefined) return { id: intFlag(id, `${what}-id`, 0) };
  return text === undefined ? undefined : { text };
}

const commands: Record<string, Command> = {
  info: {
    summary: 'architecture, sizes and parameter count of a model',
    usage: 'circuit-lens info [--model DIR] [--json]',
    async run(ctx) {
      const flags = parseFlags(ctx.argv, MODEL_FLAGS);
      const engine = await ctx.openEngine(flags.model, flags);
      const info = engine.info();
      const json = {
        folder: info.folder,
        architecture: info.architecture,
        model_type: info.modelType,
        layers: info.layers,
        heads: info.heads,
        kv_heads: info.kvHeads,
        d_model: info.dModel,
        d_head: info.headDim,
        d_mlp: info.dMlp,
        vocab: info.vocab,
        context: info.maxPositions,
        parameters: info.parameters,
        dtype: info.dtype,
      };
      return { json, text: `${info.architecture} (${info.modelType}): ${info.layers} layers, ${info.heads} heads (${info.kvHeads} kv), d_model ${info.dModel}, d_mlp ${info.dMlp}, vocab ${info.vocab}, ${info.parameters.toLocaleString('en')} parameters, ${info.dtype}` };
    },
  },

  logits: {
    summary: 'next-token logits at the last position',
    usage: 'circuit-lens logits [--model DIR] (--prompt TEXT | --ids 1,2,3) [--top K] [--all] [--json]',
    async run(ctx) {
      const flags = parseFlags(ctx.argv, { ...PROMPT_FLAGS, top: { type: 'string' }, all: { type: 'boolean' } });
      const engine = await ctx.openEngine(flags.model, flags);
      const prompt = promptIds(engine, flags);
      const [row] = await engine.forward({ ids: [prompt.ids] });
      const top = topK(row!.logitsLast, intFlag(flags.top, 'top', 10, 1), engine);
      const json = {
        ids: prompt.ids,
        tokens: prompt.tokens,
        top,
        ...(flags.all ? { logits_last: Array.from(row!.logitsLast) } : {}),
      };
      return { json, text: top.map((t) => `${JSON.stringify(t.token ?? t.id)}\t${t.logit.toFixed(4)}`).join('\n') };
    },
  },

  generate: {
    summary: 'greedy continuation',
    usage: 'circuit-lens generate [--model DIR] (--prompt TEXT | --ids …) --max-new-tokens N [--json]',
    async run(ctx) {
      const flags = parseFlags(ctx.argv, { ...PROMPT_FLAGS, 'max-new-tokens': { type: 'string' } });
      const engine = await ctx.openEngine(flags.model, flags);
      const prompt = promptIds(engine, flags);
      const maxNew = intFlag(flags['max-new-tokens'], 'max-new-tokens', 20, 1);
      const ids = [...prompt.ids];
      const newIds: number[] = [];
      for (let i = 0; i < maxNew && ids.length < engine.spec.maxPositions; i++) {
        const [row] = await engine.forward({ ids: [ids] });
        const next = argmaxOf(row!.logitsLast);
        ids.push(next);
        newIds.push(next);
        if (next === engine.spec.eosTokenId) break;
      }
      const text = engine.tokenizer ? engine.tokenizer.decode(newIds) : null;
      const json = {
        ids: prompt.ids,
        new_ids: newIds,
        new_tokens: engine.tokenizer ? newIds.map((id) => engine.tokenizer!.tokenString(id)) : null,
        continuation_text: text,
      };
      return { json, text: text ?? newIds.join(',') };
    },
  },

  attribute: {
    summary: 'AttnLRP / CP-LRP / gradient×input relevance of tokens, heads, neurons and weights',
    usage:
      'circuit-lens attribute [--model DIR] (--prompt TEXT | --ids …) [--target TOKEN | --target-id N] [--foil TOKEN | --foil-id N] [--contrastive] [--position P] [--mode attnlrp|cp-lrp|gradient] [--weights NAME,…] [--json]',
    async run(ctx) {
      const flags = parseFlags(ctx.argv, {
        ...PROMPT_FLAGS,
        target: { type: 'string' },
        'target-id': { type: 'string' },
        foil: { type: 'string' },
        'foil-id': { type: 'string' },
        contrastive: { type: 'boolean' },
        position: { type: 'string' },
        mode: { type: 'string' },
        weights: { type: 'string' },
      });
      const engine = await ctx.openEngine(flags.model, flags);
      const mode = oneOf(flags.mode, COMPOSITES, 'mode', 'attnlrp');
      const target = tokenFlag(flags.target, flags['target-id'], 'target');
      const foil = tokenFlag(flags.foil, flags['foil-id'], 'foil');
      const r = await attributePrompt(
        engine,
        {
          prompt: promptFlag(flags),
          mode,
          ...(target ? { target } : {}),
          ...(foil ? { foil } : {}),
          contrastive: !!flags.contrastive,
          ...(flags.position !== undefined ? { position: intFlag(flags.position, 'position', 0) } : {}),
          weights: flags.weights ? flags.weights.split(',').map((s) => s.trim()).filter(Boolean) : [],
        },
        ctx.job,
      );
      const a = r.attribution;
      const json = attributionJson(engine, r, r.target, mode, a);
      const shown = r.tokens ?? r.ids.map(String);
      const text = shown.map((t, i) => `${JSON.stringify(t)}\t${a.tokenRelevance[i]!.toFixed(4)}`).join('\n') + `\ntarget ${JSON.stringify(json.target.token_string ?? r.target.token)} value ${a.targetValue.toFixed(4)} (${mode})`;
      return { json, text };
    },
  },

  ...circuitCommands,
  ...pruneCommands,
  ...pruneCurveCommands,
  ...perturbCommands,
  ...graphCommands,
  ...interopCommands,
  ...cacheCommands,
  ...shardCommands,
};


function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `usage: circuit-lens <command> [flags]\n\ncommands:\n${lines.join('\n')}\n\n--model DIR defaults to the embedded tiny-ioi-gpt2 model. --json prints machine-readable output.\nEngine flags: --ep auto|cpu|cuda|webgpu, --weight-precision auto|float32|half, --threads N, --cache-dir DIR|off.\nRun circuit-lens <command> --help for a command's flags.`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`circuit-lens: unknown command "${name}"\n\n${usage()}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${command.usage}\n\n${command.summary}\n`);
    return 0;
  }
  const engines: Engine[] = [];
  const ctx: CommandContext = {
    argv: rest,
    job: { log: (m) => process.stderr.write(`circuit-lens: ${m}\n`) },
    async openEngine(model, flags) {
      const ep = oneOf(flags.ep, EXECUTION_PROVIDERS, 'ep', 'cpu');
      const engine = await Engine.load(model ?? embeddedModelPath(), {
        executionProvider: ep,
        weightPrecision: oneOf(flags['weight-precision'], WEIGHT_PRECISIONS, 'weight-precision', 'auto'),
        threads: intFlag(flags.threads, 'threads', 0),
        cacheDir: resolveCacheDir(flags['cache-dir']),
        // One process, usually one run: skip ORT's weight prepacking (session.ts).
        prepack: false,
        log: (m) => process.stderr.write(`circuit-lens: ${m}\n`),
      });
      engines.push(engine);
      return engine;
    },
  };
  try {
    const { json, text } = await command.run(ctx);
    process.stdout.write(rest.includes('--json') ? JSON.stringify(json) + '\n' : text + '\n');
    return 0;
  } catch (err) {
    if (err instanceof InputError) {
      process.stderr.write(`circuit-lens ${name}: error: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`circuit-lens ${name}: internal error: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  } finally {
    for (const engine of engines) await engine.dispose();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`circuit-lens: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
