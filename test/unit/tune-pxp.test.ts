/**
 * PXP's rule search (src/circuits/pruning/tune.ts `pxpSearch`, pxpRules.ts): the rule spec
 * (compact and JSON forms, bad input), PXP's relevance-1 seed against per-sample division by
 * the logit, and a small search on the embedded model whose numbers are recomputed
 * independently (default first, AUCs, held-out gain = best − default, paired).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Engine } from '../../src/engine/engine';
import { COMPOSITE_RULES } from '../../src/engine/rules';
import { attributionScores } from '../../src/circuits/pruning/prune';
import { formatRuleSpec, parseLinearRule, parseRuleSpec, PXP_DEFAULT_RULES, specComposite, specRuleTable } from '../../src/circuits/pruning/pxpRules';
import { curveAuc, formatPxpConfig, perPromptMetricCurve, pxpPruner, pxpSearch, PXP_DEFAULT_CONFIG } from '../../src/circuits/pruning/tune';
import { pxpTune } from '../../src/pipelines/pruning';
import { loadTaskFile, type TaskExample } from '../../src/circuits/tasks/tasks';
import { heldOutIoiTask } from '../../src/circuits/tasks/generators';
import { main } from '../../src/cli/main';
import { pruneCommands } from '../../src/cli/prune-commands';
import { InputError } from '../../src/models/errors';
import { EMBEDDED_MODEL, tempDir } from '../helpers';

describe('PXP rule spec', () => {
  it('compact form: defaults, zennit names, round trip', () => {
    assert.deepEqual(parseRuleSpec('softmax=attnlrp'), PXP_DEFAULT_RULES);
    const spec = parseRuleSpec('low=gamma,mid=zplus,high=alpha-beta,head=epsilon:0.25,softmax=cp');
    assert.deepEqual(spec.linear, {
      low: { kind: 'gamma', gamma: 0.25 },
      mid: { kind: 'alpha-beta', alpha: 1, beta: 0 },
      high: { kind: 'alpha-beta', alpha: 2, beta: 1 },
      head: { kind: 'epsilon', epsilon: 0.25 },
    });
    assert.equal(spec.softmax, 'cp');
    assert.equal(formatRuleSpec(spec), 'low=gamma,mid=zplus,high=alpha-beta,head=epsilon:0.25,softmax=cp');
    assert.deepEqual(parseRuleSpec(formatRuleSpec(spec)), spec);
    assert.deepEqual(parseLinearRule('zplus-w'), { kind: 'zplus' });
    assert.deepEqual(parseLinearRule('gradient'), { kind: 'epsilon', epsilon: 0 });
    assert.deepEqual(parseLinearRule('alpha-beta:3:2'), { kind: 'alpha-beta', alpha: 3, beta: 2 });
  });

  it('JSON form with strings or LinearRule objects', () => {
    const spec = parseRuleSpec('{"low": "gamma:1", "head": {"kind": "alpha-beta", "alpha": 2, "beta": 1}, "softmax": "cp"}');
    assert.deepEqual(spec.linear.low, { kind: 'gamma', gamma: 1 });
    assert.deepEqual(spec.linear.mid, PXP_DEFAULT_RULES.linear.mid);
    assert.deepEqual(spec.linear.head, { kind: 'alpha-beta', alpha: 2, beta: 1 });
  });

  it('bad input is an InputError that names the problem', () => {
    const bad: [string, RegExp][] = [
      ['low=bogus', /unknown rule "bogus"/],
      ['low=alpha-beta:2:0', /α − β must be 1/],
      ['low=epsilon:x', /not a number/],
      ['low=epsilon,low=gamma', /given twice/],
      ['lower=epsilon', /unknown key "lower"/],
      ['softmax=zplus', /softmax must be attnlrp or cp/],
      ['low', /not key=value/],
      ['', /empty/],
      ['{"low": 3}', /rule string or/],
      ['{"low": ', /invalid JSON/],
      ['low=zplus:1', /at most 0 parameters/],
    ];
    for (const [text, message] of bad) assert.throws(() => parseRuleSpec(text), (err: Error) => err instanceof InputError && message.test(err.message), text);
  });

  it('maps onto the engine rule table: softmax picks the composite, the groups the linear rules', () => {
    const spec = parseRuleSpec('low=gamma,softmax=cp');
    assert.equal(specComposite(spec), 'cp-lrp');
    assert.deepEqual(specRuleTable(spec), { ...COMPOSITE_RULES['cp-lrp'], linear: spec.linear });
    assert.deepEqual(specRuleTable(PXP_DEFAULT_RULES), { ...COMPOSITE_RULES.attnlrp, linear: PXP_DEFAULT_RULES.linear });
  });
});

describe('PXP search on the embedded model', () => {
  let engine: Engine;
  let examples: readonly TaskExample[];
  before(async () => {
    engine = await Engine.load(EMBEDDED_MODEL);
    examples = loadTaskFile(path.join(EMBEDDED_MODEL, 'ioi.jsonl')).examples;
  });
  after(() => engine?.dispose());

  it("PXP's relevance-1 seed is each sample's relevance divided by its explained logit", async () => {
    const rows = examples.slice(0, 3).map((e) => ({ ids: e.ids, target: { kind: 'logit' as const, position: e.ids.length - 1, token: e.target! } }));
    const rules = specRuleTable(parseRuleSpec('low=gamma,high=alpha-beta'));
    const one = await attributionScores(engine, rows, { mode: 'attnlrp', rules, aggregation: 'signed-mean', relevanceSeed: 'one' });
    const per = await engine.attribute({ ids: rows.map((r) => r.ids), targets: rows.map((r) => r.target), mode: 'attnlrp', rules, neurons: true });
    for (const l of [0, 3]) {
      const expected = Array.from(per[0]!.mlpRelevance![l]!, (_, i) => per.reduce((s, a) => s + a.mlpRelevance![l]![i]! / a.targetValue, 0) / per.length);
      const scale = Math.max(...expected.map(Math.abs));
      const err = Math.max(...expected.map((v, i) => Math.abs(v - one.neurons[l]![i]!))) / scale;
      assert.ok(err < 1e-6, `layer ${l}: relative error ${err}`);
    }
    const value = await attributionScores(engine, rows, { mode: 'attnlrp', rules, aggregation: 'signed-mean' });
    assert.notDeepEqual(Array.from(value.neurons[0]!), Array.from(one.neurons[0]!));
  });

  it('searches rules with the default first; its AUCs and the held-out gain recompute independently', async () => {
    const reference = examples.slice(0, 8);
    const calibration = examples.slice(8, 28);
    const heldOut = heldOutIoiTask(engine.tokenizer!, 12, examples.map((e) => e.prompt ?? '')).examples;
    const rates = [0, 0.5, 0.9];
    const result = await pxpSearch(engine, { reference, calibration, heldOut, unit: 'heads', budget: 3, startup: 2, rates, resamples: 200 });
    assert.equal(result.trials.length, 3);
    assert.equal(result.default.label, formatPxpConfig(PXP_DEFAULT_CONFIG));
    assert.equal(new Set(result.trials.map((t) => t.label)).size, 3, 'no configuration evaluated twice');
    assert.equal(result.best.auc, Math.max(...result.trials.map((t) => t.auc)));
    assert.equal(result.settings.spaceSize, 4 ** 4 * 2 * 2);
    // The default's calibration AUC, recomputed from its own pruner and curve.
    const curve = await perPromptMetricCurve(engine, await pxpPruner(engine, PXP_DEFAULT_CONFIG, reference, 'heads'), calibration, rates, 'logit_diff');
    assert.ok(Math.abs(curveAuc(curve, rates, calibration.map((_, i) => i)) - result.default.auc) < 1e-9);
    const h = result.heldOut!;
    assert.equal(h.n, 12);
    assert.ok(Math.abs(h.gain.estimate - (h.best.estimate - h.default.estimate)) < 1e-9, 'paired gain = best − default on the full sample');
    assert.ok(h.gain.lo <= h.gain.estimate && h.gain.estimate <= h.gain.hi);
  });

  it('the pipeline refuses --heldout for a task other than ioi', async () => {
    await assert.rejects(pxpTune(engine, { task: path.join(EMBEDDED_MODEL, 'greater_than.jsonl'), heldout: 10, budget: 1 }), /needs --task ioi/);
  });
});

describe('CLI tune --search rules', () => {
  const run = async (...argv: string[]) => {
    const write = process.stderr.write.bind(process.stderr);
    let err = '';
    process.stderr.write = ((chunk: string) => ((err += chunk), true)) as typeof process.stderr.write;
    try {
      return { code: await main(argv), err };
    } finally {
      process.stderr.write = write;
    }
  };
  it('a rule spec on the command line is the configuration measured, echoed in compact form (--json)', async () => {
    const dir = tempDir('tune-pxp-');
    const file = path.join(dir, 'ioi12.jsonl');
    fs.writeFileSync(file, fs.readFileSync(path.join(EMBEDDED_MODEL, 'ioi.jsonl'), 'utf8').split('\n').slice(0, 12).join('\n') + '\n');
    // The command itself (main() would print to stdout, which node:test uses for its own reports).
    let opened: Engine | undefined;
    const result = await pruneCommands.tune!.run({
      argv: ['--task', file, '--rules', 'low=gamma,softmax=cp', '--ranking', 'signed', '--unit', 'heads', '--budget', '1', '--reference', '4', '--json'],
      job: {},
      openEngine: async () => (opened = await Engine.load(EMBEDDED_MODEL)),
    }).finally(() => opened?.dispose());
    const json = result.json as any;
    assert.match(result.text, /reproduce: circuit-lens tune --task .* --unit heads --metric logit_diff --rules low=gamma,mid=epsilon,high=epsilon,head=epsilon,softmax=cp --ranking signed --budget 1 --reference 4/);
    assert.equal(json.best.rules, 'low=gamma,mid=epsilon,high=epsilon,head=epsilon,softmax=cp');
    assert.equal(json.best.ranking, 'signed');
    assert.deepEqual(json.best, json.default);
    assert.equal(json.log.length, 1);
    assert.deepEqual([json.settings.unit, json.settings.reference, json.settings.calibration, json.settings.relevanceSeed], ['heads', 4, 8, 'one']);
    assert.ok(Number.isFinite(json.best.auc));
  });

  it('bad spec, bad ranking, rule flags with --search settings', async () => {
    assert.deepEqual(await run('tune', '--task', 'ioi', '--rules', 'low=bogus'), { code: 2, err: 'circuit-lens tune: error: rule spec: unknown rule "bogus" (use epsilon[:E], gamma[:G], zplus, alpha-beta[:A:B], zplus-w, gradient)\n' });
    assert.equal((await run('tune', '--task', 'ioi', '--ranking', 'sideways')).code, 2);
    const mixed = await run('tune', '--task', 'ioi', '--search', 'settings', '--rules', 'low=gamma');
    assert.equal(mixed.code, 2);
    assert.match(mixed.err, /--rules belongs to --search rules/);
    assert.equal((await run('tune', '--task', 'ioi', '--unit', 'weights', '--search', 'rules')).code, 2);
  });
});
