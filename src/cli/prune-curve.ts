/**
 * `circuit-lens prune-curve`: SparC³'s circuit protocol (src/circuits/pruning/pruneCurve.ts) — IOI accuracy
 * vs sparsity for structured and unstructured pruning, several methods, several reference-set
 * seeds, mean ± SEM, and the circuit = the sparsest model keeping `--keep` of dense accuracy.
 * Flags in, JSON out: the run itself is src/pipelines/pruneCurve.ts (shared with the editor).
 */
import * as fs from 'node:fs';
import { InputError } from '../models/errors';
import { CURVE_METHODS, type CurveMethod, type CurveMode } from '../circuits/pruning/pruneCurve';
import * as path from 'node:path';
import { PRUNE_CURVE_DEFAULTS } from '../pipelines/defaults';
import { CURVE_MODES, pruneCurve, pruneCurveShard } from '../pipelines/pruneCurve';
import { parseShard } from '../circuits/discovery/shard';
import { checkOutputFile, writeFileAtomic } from '../circuits/files';
import { floatFlag, intFlag, parseFlags } from './args';
import { MODEL_FLAGS, type Command } from './command';

export const pruneCurveCommands: Record<string, Command> = {
  'prune-curve': {
    summary: "SparC³ circuits: IOI accuracy vs sparsity (structured heads+neurons, unstructured MLP weights), methods × reference-set seeds",
    usage:
      'circuit-lens prune-curve [--model DIR] --eval ioi|FILE.jsonl [--seeds 3] [--reference 128] [--methods attnlrp,gradient,activation,wanda,random] [--modes structured,unstructured] [--rates 0,0.2,…] [--keep 0.9] [--json]\n' +
      'circuit-lens prune-curve … --shard k/n --out PART.json   (the seeds k−1, k−1+n, …; combine with circuit-lens merge PART… --out curves.json)',
    async run(ctx) {
      const flags = parseFlags(ctx.argv, {
        ...MODEL_FLAGS,
        eval: { type: 'string' },
        seeds: { type: 'string' },
        reference: { type: 'string' },
        methods: { type: 'string' },
        modes: { type: 'string' },
        rates: { type: 'string' },
        keep: { type: 'string' },
        shard: { type: 'string' },
        out: { type: 'string' },
      });
      if ((flags.shard === undefined) !== (flags.out === undefined)) throw new InputError('--shard k/n and --out PART.json go together (the shard writes its seeds’ accuracies to PART.json)');
      if (flags.eval === undefined) throw new InputError('--eval ioi|FILE.jsonl (IOI prompts with io and s) is required');
      if (flags.eval !== 'ioi' && !fs.existsSync(flags.eval)) throw new InputError('--eval: file not found', flags.eval);
      const seeds = intFlag(flags.seeds, 'seeds', PRUNE_CURVE_DEFAULTS.seeds, 1);
      const reference = intFlag(flags.reference, 'reference', PRUNE_CURVE_DEFAULTS.reference, 2);
      const keep = floatFlag(flags.keep, 'keep', PRUNE_CURVE_DEFAULTS.keep, 0, 1);
      const list = <T extends string>(value: string | undefined, allowed: readonly T[], flag: string): T[] | undefined => {
        if (value === undefined) return undefined;
        const items = value.split(',').map((s) => s.trim());
        for (const item of items) if (!allowed.includes(item as T)) throw new InputError(`--${flag}: "${item}" is not one of ${allowed.join(', ')}`);
        return items as T[];
      };
      const methods = list<CurveMethod>(flags.methods, CURVE_METHODS, 'methods');
      const modes = list<CurveMode>(flags.modes, CURVE_MODES, 'modes');
      const rates = flags.rates?.split(',').map((s) => floatFlag(s.trim(), 'rates', 0, 0, 0.999999));
      const engine = await ctx.openEngine(flags.model, flags);
      if (flags.shard !== undefined) {
        let shard;
        try {
          shard = parseShard(flags.shard);
        } catch (err) {
          throw new InputError((err as Error).message);
        }
        checkOutputFile(flags.out!);
        const part = await pruneCurveShard(engine, { eval: flags.eval, seeds, reference, keep, shard, ...(methods && { methods }), ...(modes && { modes }), ...(rates && { rates }) }, ctx.job);
        writeFileAtomic(flags.out!, JSON.stringify(part) + '\n');
        const json = { shard: `${shard.index + 1}/${shard.count}`, seeds: part.seedIndex, of: seeds, out: path.resolve(flags.out!) };
        return { json, text: `shard ${json.shard}: seeds ${part.seedIndex.join(', ')} of ${seeds} → ${json.out} (combine with circuit-lens merge)` };
      }
      const result = await pruneCurve(engine, { eval: flags.eval, seeds, reference, keep, ...(methods && { methods }), ...(modes && { modes }), ...(rates && { rates }) }, ctx.job);
      const text = [
        `dense IOI accuracy ${result.dense.toFixed(3)}`,
        ...result.series.map((s) => `${s.mode} ${s.method} (${s.scope}): ${s.mean.map((m, i) => `${s.rates[i]}:${m.toFixed(3)}±${s.sem[i]!.toFixed(3)}`).join(' ')} → circuit ${Math.round(s.circuitRate * 100)} % pruned (${s.circuitSize} of ${s.total} left)`),
      ].join('\n');
      return { json: result, text };
    },
  },
};
