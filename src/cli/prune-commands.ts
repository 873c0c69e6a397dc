/**
 * CLI commands for pruning, evaluation, correction and PXP tuning:
 * `prune`, `eval`, `correct`, `tune` (registered into the CLI's table by the lead).
 */
import { InputError } from '../models/errors';
import { checkExportDestination, exportModel } from '../circuits/pruning/modelExport';
import { evaluate, loadTask, readTextIds, textPerplexity } from '../circuits/pruning/pruneEval';
import { evalSetPath, requireFile } from '../pipelines/inputs';
import { correct, CORRECT_DEFAULTS, prune, PRUNE_DEFAULTS, pruneShard, pxpTune, tune } from '../pipelines/pruning';
import { formatRuleSpec, parseRuleSpec } from '../circuits/pruning/pxpRules';
import type { PxpTrial } from '../circuits/pruning/tune';
import { AGGREGATIONS, COMPOSITES, PRUNE_METHOD_DOCS, PRUNE_METHODS, PRUNE_SCOPES, SAMPLE_UNITS, describeVocabulary } from '../vocabulary';
import { floatFlag, intFlag, oneOf, parseFlags } from './args';
import { MODEL_FLAGS, type Command, type CommandContext } from './command';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseShard } from '../circuits/discovery/shard';
import { checkOutputFile, writeFileAtomic } from '../circuits/files';
import type { PruneMethod } from '../vocabulary';

/** `prune --shard k/n --partial PART.bin`: this shard's exact weight-relevance sums (src/circuits/pruning/shard.ts). */
async function pruneShardCommand(ctx: CommandContext, flags: Record<string, string | boolean | undefined>, method: PruneMethod): Promise<{ json: unknown; text: string }> {
  const str = (name: string) => flags[name] as string | undefined;
  if (str('shard') === undefined || str('partial') === undefined) throw new InputError('--shard k/n and --partial PART.bin go together (the shard writes its exact sums to PART.bin)');
  for (const f of ['sparsity', 'scope', 'out', 'overwrite', 'from-scores', 'eval']) if (flags[f] !== undefined) throw new InputError(`--${f} does not apply to a shard: shards only score; prune with --from-scores after circuit-lens merge`);
  let shard;
  try {
    shard = parseShard(str('shard')!);
  } catch (err) {
    throw new InputError((err as Error).message);
  }
  checkOutputFile(str('partial')!);
  const engine = await ctx.openEngine(str('model'), flags as Parameters<CommandContext['openEngine']>[1]);
  const started = Date.now();
  const r = await pruneShard(
    engine,
    {
      method,
      shard,
      aggregation: oneOf(str('aggregation'), AGGREGATIONS, 'aggregation', PRUNE_DEFAULTS.aggregation),
      target: oneOf(str('target'), ['logit', 'contrastive'] as const, 'target', PRUNE_DEFAULTS.target),
      samples: oneOf(str('samples'), SAMPLE_UNITS, 'samples', PRUNE_DEFAULTS.samples),
      windows: intFlag(str('windows'), 'windows', PRUNE_DEFAULTS.windows, 1),
      windowLength: intFlag(str('window-length'), 'window-length', PRUNE_DEFAULTS.windowLength, 2),
      ...(str('text') !== undefined ? { text: str('text')! } : {}),
      ...(str('calib') !== undefined ? { calib: str('calib')! } : {}),
    },
    ctx.job,
  );
  writeFileAtomic(str('partial')!, r.data);
  const json = { shard: `${shard.index + 1}/${shard.count}`, samples: r.rows, of: r.of, batches: r.batches, bytes: r.data.length, seconds: (Date.now() - started) / 1000, partial: path.resolve(str('partial')!) };
  return { json, text: `shard ${json.shard}: ${r.rows} of ${r.of} reference samples (${r.batches} batches) scored in ${json.seconds.toFixed(1)} s → ${json.partial} (combine with circuit-lens merge)` };
}

function readScoresFile(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new InputError(`cannot read the merged scores (${(err as Error).message})`, file);
  }
}

const CALIB_FLAGS = { windows: { type: 'string' }, 'window-length': { type: 'string' } } as const;

export const pruneCommands: Record<string, Command> = {
  prune: {
    summary: 'prune decoder-block linear weights by AttnLRP/CP-LRP relevance, Wanda, magnitude or gradient',
    usage:
      `circuit-lens prune [--model DIR] --sparsity S [--method M] [--scope ${PRUNE_SCOPES.join('|')}] [--aggregation ${AGGREGATIONS.join('|')}] [--target logit|contrastive] [--samples ${SAMPLE_UNITS.join('|')}] [--windows ${PRUNE_DEFAULTS.windows}] [--window-length ${PRUNE_DEFAULTS.windowLength}] [--text FILE | --calib FILE [--eval FILE]] [--out DIR [--overwrite]] [--from-scores MERGED.bin] [--json]\n` +
      `circuit-lens prune [--model DIR] --shard k/n --partial PART.bin [same scoring flags]   (one part of the calibration batches; combine with circuit-lens merge PART… --out MERGED.bin)\n\n` +
      `--text FILE (default: the model folder's ${PRUNE_DEFAULTS.text}) is split: perplexity on its first part, calibration windows from its end, never overlapping; --calib/--eval name the two parts separately.\n\n--method:\n${describeVocabulary(PRUNE_METHOD_DOCS)}`,
    async run(ctx) {
      const flags = parseFlags(ctx.argv, {
        ...MODEL_FLAGS,
        ...CALIB_FLAGS,
        calib: { type: 'string' },
        text: { type: 'string' },
        sparsity: { type: 'string' },
        method: { type: 'string' },
        scope: { type: 'string' },
        aggregation: { type: 'string' },
        target: { type: 'string' },
        samples: { type: 'string' },
        eval: { type: 'string' },
        out: { type: 'string' },
        overwrite: { type: 'boolean' },
        shard: { type: 'string' },
        partial: { type: 'string' },
        'from-scores': { type: 'string' },
      });
      const method = oneOf(flags.method, PRUNE_METHODS, 'method', 'attnlrp');
      if (flags.text !== undefined && (flags.calib !== undefined || flags.eval !== undefined)) throw new InputError('give --text (split into evaluation and calibration parts) or --calib [--eval], not both');
      if (flags.shard !== undefined || flags.partial !== undefined) return pruneShardCommand(ctx, flags, method);
      if (flags.sparsity === undefined) throw new InputError('--sparsity S (0 ≤ S ≤ 1) is required');
      const engine = await ctx.openEngine(flags.model, flags);
      if (flags.out) checkExportDestination(engine, flags.out, !!flags.overwrite);
      const result = await prune(
        engine,
        {
          method,
          sparsity: floatFlag(flags.sparsity, 'sparsity', 0.5, 0, 1),
          scope: oneOf(flags.scope, PRUNE_SCOPES, 'scope', PRUNE_DEFAULTS.scope),
          aggregation: oneOf(flags.aggregation, AGGREGATIONS, 'aggregation', PRUNE_DEFAULTS.aggregation),
          target: oneOf(flags.target, ['logit', 'contrastive'] as const, 'target', PRUNE_DEFAULTS.target),
          samples: oneOf(flags.samples, SAMPLE_UNITS, 'samples', PRUNE_DEFAULTS.samples),
          windows: intFlag(flags.windows, 'windows', PRUNE_DEFAULTS.windows, 1),
          windowLength: intFlag(flags['window-length'], 'window-length', PRUNE_DEFAULTS.windowLength, 2),
          ...(flags.text !== undefined ? { text: flags.text } : {}),
          ...(flags.calib !== undefined ? { calib: flags.calib } : {}),
          ...(flags.eval !== undefined ? { eval: flags.eval } : {}),
          ...(flags['from-scores'] !== undefined ? { scores: readScoresFile(flags['from-scores']) } : {}),
        },
        ctx.job,
      );
      const json: Record<string, unknown> = { ...result.report, per_tensor: result.perTensor, settings: result.settings };
      if (result.perplexityBefore !== null) {
        json.perplexity_dense = result.perplexityBefore;
        json.perplexity = result.perplexityAfter;
        json.eval_tokens = result.evalTokens;
      }
      if (flags.out) {
        const exported = await exportModel(engine, result.weights, flags.out, { overwrite: !!flags.overwrite, pruning: { purpose: 'compression', ...result.report } });
        json.exported = exported.folder;
      }
      const { report } = result;
      const text = `${method}/${report.scope}: ${report.prunedWeights} of ${report.totalWeights} weights zeroed (${(report.achievedSparsity * 100).toFixed(2)} %)` +
        (json.perplexity !== undefined ? `, perplexity ${(json.perplexity_dense as number).toFixed(4)} → ${(json.perplexity as number).toFixed(4)}` : '') +
        (json.exported ? `, written to ${String(json.exported)}` : '');
      return { json, text };
    },
  },

  eval: {
    summary: 'perplexity of a text file, or task metrics (IOI logit diff/accuracy, toxic probability)',
    usage: 'circuit-lens eval [--model DIR] (--text FILE | --task ioi|toxic|FILE.jsonl) [--context N] [--json]',
    async run(ctx) {
      const flags = parseFlags(ctx.argv, { ...MODEL_FLAGS, text: { type: 'string' }, task: { type: 'string' }, context: { type: 'string' } });
      if ((flags.text === undefined) === (flags.task === undefined)) throw new InputError('give exactly one of --text FILE or --task ioi|FILE.jsonl');
      const engine = await ctx.openEngine(flags.model, flags);
      if (flags.text !== undefined) {
        const ids = readTextIds(engine, requireFile(flags.text, 'text'));
        const r = await textPerplexity(engine, ids, flags.context ? intFlag(flags.context, 'context', engine.spec.maxPositions, 2) : undefined);
        return { json: { perplexity: r.perplexity, mean_nll: r.meanNll, tokens_scored: r.tokensScored, windows: r.windows }, text: `perplexity ${r.perplexity.toFixed(4)} (${r.tokensScored} tokens scored in ${r.windows} windows)` };
      }
      const task = loadTask(engine, evalSetPath(engine, flags.task!));
      const r = await evaluate(engine, { task });
      const t = r.task!;
      return { json: { task: t.name, metric: t.metric, n: t.n, ...t.values }, text: `${t.name} (${t.n}): ${Object.entries(t.values).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}` };
    },
  },

  correct: {
    summary: 'remove an undesired behaviour by differential relevance R_general − R_undesired (MLP neurons or up-projection weights)',
    usage:
      'circuit-lens correct [--model DIR] --undesired FILE.jsonl --general FILE.txt (--neurons N | --weights N) [--mode attnlrp|cp-lrp|gradient] [--steps 1,2,4,…] [--windows 16] [--window-length 64] [--out DIR [--overwrite]] [--json]',
    async run(ctx) {
      const flags = parseFlags(ctx.argv, {
        ...MODEL_FLAGS,
        ...CALIB_FLAGS,
        undesired: { type: 'string' },
        general: { type: 'string' },
        neurons: { type: 'string' },
        weights: { type: 'string' },
        mode: { type: 'string' },
        steps: { type: 'string' },
        out: { type: 'string' },
        overwrite: { type: 'boolean' },
      });
      if ((flags.neurons === undefined) === (flags.weights === undefined)) throw new InputError('give exactly one of --neurons N or --weights N');
      const unit = flags.neurons !== undefined ? 'neurons' : 'weights';
      const count = intFlag(flags.neurons ?? flags.weights, unit, 0, 1);
      const mode = oneOf(flags.mode, COMPOSITES, 'mode', CORRECT_DEFAULTS.mode);
      if (flags.undesired === undefined) throw new InputError('--undesired FILE.jsonl is required');
      if (flags.general === undefined) throw new InputError('--general FILE.txt|FILE.jsonl is required');
      const engine = await ctx.openEngine(flags.model, flags);
      if (flags.out) checkExportDestination(engine, flags.out, !!flags.overwrite);
      const steps = flags.steps ? flags.steps.split(',').map((s) => intFlag(s.trim(), 'steps', 1, 1)) : undefined;
      const result = await correct(
        engine,
        {
          undesired: flags.undesired,
          general: flags.general,
          unit,
          count,
          mode,
          windows: intFlag(flags.windows, 'windows', CORRECT_DEFAULTS.windows, 1),
          windowLength: intFlag(flags['window-length'], 'window-length', CORRECT_DEFAULTS.windowLength, 2),
          ...(steps && { steps }),
        },
        ctx.job,
      );
      const json: Record<string, unknown> = {
        unit,
        count: result.settings.count,
        total_components: result.totalComponents,
        ...result.details,
        steps: result.steps,
        removed: result.removed,
      };
      if (flags.out) {
        const exported = await exportModel(engine, result.weights, flags.out, {
          overwrite: !!flags.overwrite,
          pruning: { purpose: 'correction', unit, count: result.settings.count, ...result.details, steps: result.steps, removed: result.removed },
        });
        json.exported = exported.folder;
      }
      const first = result.steps[0]?.metrics;
      const last = result.steps[result.steps.length - 1]?.metrics;
      const text = `removed ${result.settings.count} ${unit}` + (first && last ? `: ${Object.keys(first).map((k) => `${k} ${first[k]!.toFixed(4)} → ${last[k]!.toFixed(4)}`).join(', ')}` : '') + (json.exported ? `; written to ${String(json.exported)}` : '');
      return { json, text };
    },
  },

  tune: {
    summary: 'PXP search (TPE), objective = AUC of the task metric vs pruning rate: over LRP rules per layer group × softmax rule × ranking (--search rules, PXP), or over composite × target × aggregation (--search settings)',
    usage:
      'circuit-lens tune [--model DIR] --task ioi|FILE.jsonl --budget N [--seed 0] [--reference 64] [--json]\n' +
      '  --search rules (PXP): [--unit neurons|heads] [--metric logit_diff|accuracy] [--rules SPEC] [--ranking abs|signed] [--heldout N] [--relevance-seed one|value]\n' +
      '  --search settings (default without rule flags): [--unit neurons|weights] [--metric accuracy|logit_diff]\n\n' +
      'SPEC (the configuration evaluated first; --budget 1 evaluates only it): low=RULE,mid=RULE,high=RULE,head=RULE,softmax=attnlrp|cp, RULE = epsilon[:E] | gamma[:G] | zplus | alpha-beta[:A:B] | zplus-w | gradient; keys left out: epsilon (1e-6), attnlrp. JSON with the same keys works too. ' +
      '--heldout N (with --task ioi): re-measure the best configuration and the baseline on N prompts of the generated held-out IOI split, with a paired bootstrap CI of the gain.',
    async run(ctx) {
      const flags = parseFlags(ctx.argv, {
        ...MODEL_FLAGS,
        task: { type: 'string' },
        budget: { type: 'string' },
        seed: { type: 'string' },
        unit: { type: 'string' },
        metric: { type: 'string' },
        reference: { type: 'string' },
        search: { type: 'string' },
        rules: { type: 'string' },
        ranking: { type: 'string' },
        heldout: { type: 'string' },
        'relevance-seed': { type: 'string' },
      });
      if (flags.task === undefined) throw new InputError('--task ioi|FILE.jsonl is required');
      const ruleFlags = (['rules', 'ranking', 'heldout', 'relevance-seed'] as const).filter((k) => flags[k] !== undefined);
      const search = oneOf(flags.search, ['settings', 'rules'] as const, 'search', ruleFlags.length > 0 ? 'rules' : 'settings');
      if (search === 'settings' && ruleFlags.length > 0) throw new InputError(`--${ruleFlags[0]} belongs to --search rules`);
      if (search === 'rules') {
        const options = {
          task: flags.task,
          ...(flags.reference !== undefined ? { reference: intFlag(flags.reference, 'reference', 64, 1) } : {}),
          budget: intFlag(flags.budget, 'budget', 24, 1),
          seed: intFlag(flags.seed, 'seed', 0),
          unit: oneOf(flags.unit, ['neurons', 'heads'] as const, 'unit', 'neurons'),
          metric: oneOf(flags.metric, ['logit_diff', 'accuracy'] as const, 'metric', 'logit_diff'),
          ...(flags.rules !== undefined ? { rules: flags.rules } : {}),
          ranking: oneOf(flags.ranking, ['abs', 'signed'] as const, 'ranking', 'abs'),
          ...(flags.heldout !== undefined ? { heldout: intFlag(flags.heldout, 'heldout', 200, 1) } : {}),
          relevanceSeed: oneOf(flags['relevance-seed'], ['one', 'value'] as const, 'relevance-seed', 'one'),
        };
        if (options.rules !== undefined) parseRuleSpec(options.rules); // bad input fails before the model loads
        const engine = await ctx.openEngine(flags.model, flags);
        const result = await pxpTune(engine, options, ctx.job);
        const trial = (t: PxpTrial) => ({ rules: formatRuleSpec(t.config.rules), ranking: t.config.ranking, auc: t.auc, seconds: t.seconds, curve: t.curve });
        const json = {
          settings: result.settings,
          best: trial(result.best),
          default: trial(result.default),
          calibration_gain: result.calibrationGain,
          ...(result.heldOut ? { held_out: result.heldOut } : {}),
          log: result.trials.map(trial),
        };
        const line = (t: PxpTrial) => `${t.label}: AUC ${t.auc.toFixed(4)}`;
        const ci = (i: { estimate: number; lo: number; hi: number }) => `${i.estimate.toFixed(4)} [${i.lo.toFixed(4)}, ${i.hi.toFixed(4)}]`;
        const text = [
          ...result.trials.map(line),
          `best: ${line(result.best)}`,
          `default: ${line(result.default)}`,
          `reproduce: circuit-lens tune --task ${flags.task} --unit ${options.unit} --metric ${options.metric} --rules ${formatRuleSpec(result.best.config.rules)} --ranking ${result.best.config.ranking} --budget 1${flags.reference !== undefined ? ` --reference ${options.reference}` : ''}${options.relevanceSeed !== 'one' ? ` --relevance-seed ${options.relevanceSeed}` : ''}`,
          `calibration gain (selected on it): ${ci(result.calibrationGain)}`,
          ...(result.heldOut ? [`held-out (${result.heldOut.n} prompts): default ${ci(result.heldOut.default)}, best ${ci(result.heldOut.best)}, gain ${ci(result.heldOut.gain)}`] : []),
        ].join('\n');
        return { json, text };
      }
      const engine = await ctx.openEngine(flags.model, flags);
      const result = await tune(
        engine,
        {
          task: flags.task,
          ...(flags.reference !== undefined ? { reference: intFlag(flags.reference, 'reference', 64, 1) } : {}),
          budget: intFlag(flags.budget, 'budget', 6, 1),
          seed: intFlag(flags.seed, 'seed', 0),
          unit: oneOf(flags.unit, ['neurons', 'weights'] as const, 'unit', 'neurons'),
          metric: oneOf(flags.metric, ['accuracy', 'logit_diff'] as const, 'metric', 'accuracy'),
        },
        ctx.job,
      );
      const trial = (t: (typeof result.trials)[number]) => ({ ...t.config, auc: t.auc, seconds: t.seconds, curve: t.curve.map((c) => ({ rate: c.rate, value: c.value })) });
      const json = { settings: result.settings, best: trial(result.best), default: trial(result.default), log: result.trials.map(trial) };
      const line = (t: (typeof result.trials)[number]) => `${t.config.composite} / ${t.config.target} / ${t.config.aggregation}: AUC ${t.auc.toFixed(4)}`;
      return { json, text: [...result.trials.map(line), `best: ${line(result.best)}`, `default: ${line(result.default)}`].join('\n') };
    },
  },
};
