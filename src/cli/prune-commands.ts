/**
 * CLI commands for pruning, evaluation, correction and PXP tuning:
 * `prune`, `eval`, `correct`, `tune` (registered into the CLI's table by the lead).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Composite } from '../engine/api';
import type { Engine } from '../engine/engine';
import { InputError } from '../models/errors';
import { correct, undesiredOutputs } from '../circuits/correct';
import { checkExportDestination, exportModel } from '../circuits/modelExport';
import { AGGREGATIONS, PRUNE_METHODS, PRUNE_SCOPES, SAMPLE_UNITS, calibrationWindows, nextTokenOutputs, prune, type Aggregation, type CalibTarget, type PruneMethod, type PruneScope, type SampleUnit } from '../circuits/prune';
import { evaluate, ioiMetrics, loadTask, probabilityMetric, readTextIds, splitCalibration, textPerplexity } from '../circuits/pruneEval';
import type { TaskExample } from '../circuits/tasks';
import { tune } from '../circuits/tune';
import { floatFlag, intFlag, oneOf, parseFlags } from './args';
import { MODEL_FLAGS, type Command } from './command';


function requireFile(value: string | undefined, flag: string): string {
  if (value === undefined) throw new InputError(`--${flag} FILE is required`);
  if (!fs.existsSync(value)) throw new InputError(`--${flag}: file not found`, value);
  return value;
}

/** `ioi`, `toxic`, `greater_than` name the model folder's own eval set; anything else is a JSONL path. */
function taskPath(engine: Engine, task: string): string {
  if (/^[a-z_]+$/.test(task)) {
    const file = path.join(engine.folder, `${task}.jsonl`);
    if (!fs.existsSync(file)) throw new InputError(`the model folder has no ${task}.jsonl; pass a JSONL file instead`, engine.folder);
    return file;
  }
  return requireFile(task, 'task');
}

const CALIB_FLAGS = { windows: { type: 'string' }, 'window-length': { type: 'string' } } as const;

export const pruneCommands: Record<string, Command> = {
  prune: {
    summary: 'prune decoder-block linear weights by AttnLRP/CP-LRP relevance, Wanda, magnitude or gradient',
    usage:
      'circuit-lens prune [--model DIR] --calib FILE --sparsity S --method attnlrp|cp-lrp|wanda|magnitude|gradient|random --scope rowwise|global [--aggregation mean-abs|abs-mean|signed-mean] [--target logit|contrastive] [--samples sequence|position] [--windows 32] [--window-length 64] [--eval FILE] [--out DIR [--overwrite]] [--json]',
    async run(ctx) {
      const flags = parseFlags(ctx.argv, {
        ...MODEL_FLAGS,
        ...CALIB_FLAGS,
        calib: { type: 'string' },
        sparsity: { type: 'string' },
        method: { type: 'string' },
        scope: { type: 'string' },
        aggregation: { type: 'string' },
        target: { type: 'string' },
        samples: { type: 'string' },
        eval: { type: 'string' },
        out: { type: 'string' },
        overwrite: { type: 'boolean' },
      });
      const method = oneOf<PruneMethod>(flags.method, PRUNE_METHODS, 'method', 'attnlrp');
      const scope = oneOf<PruneScope>(flags.scope, PRUNE_SCOPES, 'scope', 'rowwise');
      const aggregation = oneOf<Aggregation>(flags.aggregation, AGGREGATIONS, 'aggregation', 'mean-abs');
      const target = oneOf<CalibTarget>(flags.target, ['logit', 'contrastive'], 'target', 'logit');
      const samples = oneOf<SampleUnit>(flags.samples, SAMPLE_UNITS, 'samples', 'sequence');
      if (flags.sparsity === undefined) throw new InputError('--sparsity S (0 ≤ S ≤ 1) is required');
      const sparsity = floatFlag(flags.sparsity, 'sparsity', 0.5, 0, 1);
      const needsCalib = method !== 'magnitude' && method !== 'random';
      const engine = await ctx.openEngine(flags.model, flags);
      if (flags.out) checkExportDestination(engine, flags.out, !!flags.overwrite);
      const calibIds = needsCalib || flags.calib ? readTextIds(engine, requireFile(flags.calib, 'calib')) : undefined;
      const result = await prune(engine, {
        method,
        scope,
        sparsity,
        aggregation,
        target,
        samples,
        ...(calibIds && { calibIds }),
        windows: intFlag(flags.windows, 'windows', 32, 1),
        windowLength: intFlag(flags['window-length'], 'window-length', 64, 2),
      });
      const { perTensor, ...report } = result.report;
      const json: Record<string, unknown> = { ...report, per_tensor: perTensor };
      if (flags.eval) {
        const ids = readTextIds(engine, requireFile(flags.eval, 'eval'));
        const pruned = engine.withWeights(result.weights);
        json.perplexity_dense = (await textPerplexity(engine, ids)).perplexity;
        json.perplexity = (await textPerplexity(pruned, ids)).perplexity;
        await pruned.dispose();
      }
      if (flags.out) {
        const exported = await exportModel(engine, result.weights, flags.out, { overwrite: !!flags.overwrite, pruning: { purpose: 'compression', ...report } });
        json.exported = exported.folder;
      }
      const text = `${method}/${scope}: ${result.report.prunedWeights} of ${result.report.totalWeights} weights zeroed (${(result.report.achievedSparsity * 100).toFixed(2)} %)` +
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
      const task = loadTask(engine, taskPath(engine, flags.task!));
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
      const mode = oneOf<Composite>(flags.mode, ['attnlrp', 'cp-lrp', 'gradient'], 'mode', 'attnlrp');
      const engine = await ctx.openEngine(flags.model, flags);
      if (flags.out) checkExportDestination(engine, flags.out, !!flags.overwrite);
      const task = loadTask(engine, requireFile(flags.undesired, 'undesired'));
      // toxic.jsonl holds matched controls too: only the rows marked toxic are undesired.
      const undesired: TaskExample[] = task.examples.some((e) => e.meta.context !== undefined) ? task.examples.filter((e) => e.meta.context === 'toxic') : [...task.examples];
      if (undesired.length === 0) throw new InputError('no undesired rows (rows with "context": "toxic", or any row without a context field)', flags.undesired);
      const windows = intFlag(flags.windows, 'windows', 16, 1);
      const windowLength = intFlag(flags['window-length'], 'window-length', 64, 2);
      const { calibIds, evalIds } = splitCalibration(readTextIds(engine, requireFile(flags.general, 'general')), windows * windowLength);
      const general = nextTokenOutputs(calibrationWindows(calibIds, { windows, windowLength }));
      const isProb = undesired[0]!.goodTokens !== undefined;
      const steps = flags.steps ? flags.steps.split(',').map((s) => intFlag(s.trim(), 'steps', 1, 1)) : undefined;
      const result = await correct(engine, {
        undesired: undesiredOutputs(undesired),
        general,
        unit,
        count,
        mode,
        ...(steps && { steps }),
        evaluate: async (e) => ({
          [isProb ? 'undesired_probability' : 'undesired_logit_diff']: isProb ? await probabilityMetric(e, undesired) : (await ioiMetrics(e, undesired)).logitDiff,
          general_perplexity: (await textPerplexity(e, evalIds)).perplexity,
        }),
      });
      const json: Record<string, unknown> = {
        unit,
        count: result.count,
        total_components: result.totalComponents,
        settings: result.settings,
        general_split: { reference_tokens: calibIds.length, perplexity_tokens: evalIds.length, note: 'reference windows from the end of the general text, perplexity on the rest' },
        steps: result.steps,
        removed: result.removed,
      };
      if (flags.out) {
        const exported = await exportModel(engine, result.weights, flags.out, {
          overwrite: !!flags.overwrite,
          pruning: { purpose: 'correction', unit, count: result.count, settings: result.settings, steps: result.steps, removed: result.removed },
        });
        json.exported = exported.folder;
      }
      const first = result.steps[0]?.metrics;
      const last = result.steps[result.steps.length - 1]?.metrics;
      const text = `removed ${result.count} ${unit}` + (first && last ? `: ${Object.keys(first).map((k) => `${k} ${first[k]!.toFixed(4)} → ${last[k]!.toFixed(4)}`).join(', ')}` : '') + (json.exported ? `; written to ${String(json.exported)}` : '');
      return { json, text };
    },
  },

  tune: {
    summary: 'PXP search (TPE) over attribution settings (composite, target, aggregation), objective = AUC of the task metric vs pruning rate',
    usage: 'circuit-lens tune [--model DIR] --task ioi|FILE.jsonl --budget N [--seed 0] [--unit neurons|weights] [--metric accuracy|logit_diff] [--reference 64] [--json]',
    async run(ctx) {
      const flags = parseFlags(ctx.argv, {
        ...MODEL_FLAGS,
        task: { type: 'string' },
        budget: { type: 'string' },
        seed: { type: 'string' },
        unit: { type: 'string' },
        metric: { type: 'string' },
        reference: { type: 'string' },
      });
      if (flags.task === undefined) throw new InputError('--task ioi|FILE.jsonl is required');
      const engine = await ctx.openEngine(flags.model, flags);
      const task = loadTask(engine, taskPath(engine, flags.task));
      const nRef = intFlag(flags.reference, 'reference', Math.min(64, Math.floor(task.examples.length / 3)), 1);
      if (nRef >= task.examples.length) throw new InputError(`--reference ${nRef} leaves no evaluation prompts (the task has ${task.examples.length})`);
      const result = await tune(engine, {
        reference: task.examples.slice(0, nRef),
        evaluation: task.examples.slice(nRef),
        budget: intFlag(flags.budget, 'budget', 6, 1),
        seed: intFlag(flags.seed, 'seed', 0),
        unit: oneOf(flags.unit, ['neurons', 'weights'] as const, 'unit', 'neurons'),
        metric: oneOf(flags.metric, ['accuracy', 'logit_diff'] as const, 'metric', 'accuracy'),
      });
      const trial = (t: (typeof result.trials)[number]) => ({ ...t.config, auc: t.auc, seconds: t.seconds, curve: t.curve.map((c) => ({ rate: c.rate, value: c.value })) });
      const json = { settings: result.settings, best: trial(result.best), default: trial(result.default), log: result.trials.map(trial) };
      const line = (t: (typeof result.trials)[number]) => `${t.config.composite} / ${t.config.target} / ${t.config.aggregation}: AUC ${t.auc.toFixed(4)}`;
      return { json, text: [...result.trials.map(line), `best: ${line(result.best)}`, `default: ${line(result.default)}`].join('\n') };
    },
  },
};
