/**
 * `circuit-lens perturb`: AttnLRP's input-perturbation faithfulness test (src/circuits/discovery/perturbation.ts):
 * MoRF/LeRF token replacement and the area between the curves per method, with a 95 % bootstrap
 * CI over prompts and the paired difference to random. Integrated gradients runs `--ig-steps`
 * midpoint steps (Engine.integratedGradients) from `--ig-baseline` (default: the fully replaced
 * prompt, where both curves end) and reports its mean |completeness gap|.
 */
import { InputError } from '../models/errors';
import { heldOutIoiTask } from '../circuits/tasks/generators';
import { loadTask } from '../circuits/pruning/pruneEval';
import { meanCurves, perturbationCurves, tokenScores, type PerturbationCurves, type PerturbationMethod } from '../circuits/discovery/perturbation';
import { bootstrapMean, pairedBootstrapMeanDiff } from '../circuits/stats';
import { intFlag, parseFlags } from './args';
import { MODEL_FLAGS, type Command } from './command';
import { IG_STEPS } from '../engine/engine';

const METHODS: readonly PerturbationMethod[] = ['attnlrp', 'cp-lrp', 'gradient', 'integrated-gradients', 'random'];

export const perturbCommands: Record<string, Command> = {
  perturb: {
    summary: "AttnLRP's perturbation test: MoRF/LeRF token replacement, area between curves per attribution method, with CIs",
    usage: 'circuit-lens perturb [--model DIR] --task ioi|FILE.jsonl [--n 40] [--methods attnlrp,cp-lrp,gradient,integrated-gradients,random] [--ig-steps 16] [--ig-baseline replacement|zero] [--replacement-id ID] [--seed 0] [--json]',
    async run(ctx) {
      const flags = parseFlags(ctx.argv, { ...MODEL_FLAGS, task: { type: 'string' }, n: { type: 'string' }, methods: { type: 'string' }, 'replacement-id': { type: 'string' }, seed: { type: 'string' }, 'ig-steps': { type: 'string' }, 'ig-baseline': { type: 'string' } });
      if (flags.task === undefined) throw new InputError('--task FILE.jsonl is required (its prompts are perturbed)');
      const methods = (flags.methods ?? METHODS.join(',')).split(',').map((s) => s.trim()) as PerturbationMethod[];
      for (const m of methods) if (!METHODS.includes(m)) throw new InputError(`--methods: "${m}" is not one of ${METHODS.join(', ')}`);
      const n = intFlag(flags.n, 'n', 40, 2);
      const seed = intFlag(flags.seed, 'seed', 0);
      const igSteps = intFlag(flags['ig-steps'], 'ig-steps', IG_STEPS, 1);
      if (igSteps > 1024) throw new InputError(`--ig-steps ${igSteps}: at most 1024`);
      const igBaseline = flags['ig-baseline'] ?? 'replacement';
      if (igBaseline !== 'replacement' && igBaseline !== 'zero') throw new InputError(`--ig-baseline: "${igBaseline}" is not one of replacement, zero`);
      const engine = await ctx.openEngine(flags.model, flags);
      const fallback = engine.spec.eosTokenId ?? 0;
      const replacement = intFlag(flags['replacement-id'], 'replacement-id', fallback, 0);
      if (replacement >= engine.spec.vocabSize) throw new InputError(`--replacement-id ${replacement} is outside the vocabulary (${engine.spec.vocabSize})`);
      // `ioi`: the held-out IOI split (generated for this tokenizer).
      if (flags.task === 'ioi' && !engine.tokenizer) throw new InputError('--task ioi generates prompts from text: the model needs a tokenizer.json', engine.folder);
      const examples = flags.task === 'ioi' ? heldOutIoiTask(engine.tokenizer!, n).examples : loadTask(engine, flags.task).examples;
      const prompts = examples.slice(0, n).map((e) => [...e.ids]);
      if (prompts.length < 2) throw new InputError('the task has fewer than 2 prompts: no interval can be computed', flags.task);
      const bos = engine.spec.bosTokenId;
      const from = bos !== undefined && prompts.every((p) => p[0] === bos) ? 1 : 0;
      const abc = new Map<string, number[]>();
      // Mean curves on 11 fractions per method, for charts (the JSON's `curves`).
      const curves = new Map<string, ReturnType<typeof meanCurves>>();
      let completeness: { steps: number; baseline: string; mean_abs_gap: number; max_relative_gap: number } | undefined;
      for (const method of methods) {
        const { scores, targets, completenessGap, explainedDifference } = await tokenScores(engine, prompts, method, seed, { steps: igSteps, baseline: igBaseline === 'zero' ? 'zero' : { replacement, from } });
        if (completenessGap && explainedDifference) {
          completeness = {
            steps: igSteps,
            baseline: igBaseline,
            mean_abs_gap: completenessGap.reduce((a, g) => a + Math.abs(g), 0) / completenessGap.length,
            // |gap| / |f(x) − f(x')| (Sundararajan et al. 2017, §5: raise the steps until it is within 5 %).
            max_relative_gap: Math.max(...completenessGap.map((g, i) => Math.abs(g) / Math.max(Math.abs(explainedDifference[i]!), 1e-9))),
          };
        }
        const perPrompt: PerturbationCurves[] = [];
        for (let i = 0; i < prompts.length; i++) perPrompt.push(await perturbationCurves(engine, prompts[i]!, scores[i]!, targets[i]!, replacement, from));
        abc.set(method, perPrompt.map((c) => c.abc));
        curves.set(method, meanCurves(perPrompt, 11));
      }
      const opts = { resamples: 2000, seed: 0 };
      const results = methods.map((m) => ({
        method: m,
        abc: bootstrapMean(abc.get(m)!, opts),
        ...(abc.has('random') && m !== 'random' ? { minus_random: pairedBootstrapMeanDiff(abc.get(m)!, abc.get('random')!, opts) } : {}),
        curves: curves.get(m)!,
      }));
      const json = { prompts: prompts.length, replacement_id: replacement, kept_prefix: from, results, ...(completeness ? { integrated_gradients: completeness } : {}) };
      const text = results.map((r) => `${r.method}: ABC ${r.abc.estimate.toFixed(3)} [${r.abc.lo.toFixed(3)}, ${r.abc.hi.toFixed(3)}]`).join('\n');
      const igLine = completeness
        ? `\nintegrated gradients (${completeness.steps} midpoint steps, ${completeness.baseline} baseline): mean |Σ IG − (f(x) − f(x'))| = ${completeness.mean_abs_gap.toFixed(4)}, at most ${(100 * completeness.max_relative_gap).toFixed(1)} % of |f(x) − f(x')|` +
          (completeness.max_relative_gap > 0.05 ? ' (above 5 %: raise --ig-steps)' : '')
        : '';
      return { json, text: text + igLine };
    },
  },
};
