/**
 * Circuit discovery on the embedded model (the MIB-style protocol: a fixed-size head circuit,
 * verified by mean ablation), every method on the same prompts, with 95 % bootstrap CIs.
 *
 * Split: scores and the circuit are computed on the calibration set (the model's ioi.jsonl /
 * greater_than.jsonl); everything reported is measured on a held-out set (IOI: ACDC templates,
 * `heldOutIoiTask`; greater-than: the seeded generator). The calibration faithfulness is printed
 * too, because that is what a default may be chosen on.
 *
 * Per method × aggregation: the 4-head circuit (25 % of the heads), its held-out faithfulness and
 * the share removed by ablating it (percentile bootstrap over held-out prompts, 2000 resamples,
 * seed 0), CPR/CMD of the MIB curve (same bootstrap), and the Spearman correlation of the per-head
 * scores with single-head zero-ablation drops measured on the held-out prompts (Fisher-z CI,
 * Bonett–Wright variance). Last: paired bootstrap of held-out faithfulness, signed-mean − mean-abs.
 *
 * Run: nice -n 10 node --import tsx bench/circuits.ts   (about 2 minutes on 2 cores)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Engine, embeddedModelPath } from '../src/engine/engine';
import { discoverCircuit } from '../src/circuits/discovery/discover';
import { DISCOVERY_METHODS } from '../src/vocabulary';
import { curveAreas, faithfulnessOf, MIB_FRACTIONS, circuitSizeForFraction, perPromptScores } from '../src/circuits/discovery/faithfulness';
import { generateGreaterThanTask, heldOutIoiTask, yearSplitsAsTwoTokens } from '../src/circuits/tasks/generators';
import { circuitComponentIds, selectNodes } from '../src/circuits/discovery/graph';
import { bootstrap, formatInterval, spearmanCI, type Interval } from '../src/circuits/stats';
import { loadTaskFile, type Task } from '../src/circuits/tasks/tasks';

const RESAMPLES = 2000;

interface Row {
  method: string;
  aggregation: string;
  circuit: string[];
  calibrationFaithfulness: number;
  faithfulness: Interval;
  removed: Interval;
  cpr: Interval;
  cmd: Interval;
  spearman: Interval;
  perPrompt: { full: number[]; empty: number[]; circuit: number[] };
}

async function main(): Promise<void> {
  const folder = embeddedModelPath();
  const engine = await Engine.load(folder);
  const tokenizer = engine.tokenizer!;
  const { nLayers: L, nHeads: H } = engine.spec;
  const heads = Array.from({ length: L * H }, (_, i) => `a${Math.floor(i / H)}.h${i % H}`);
  const encode = (t: string) => tokenizer.encodeIds(t);
  const calibrationIoi = loadTaskFile(path.join(folder, 'ioi.jsonl'));
  const splits: [Task, Task][] = [
    [calibrationIoi, heldOutIoiTask(tokenizer, 200, calibrationIoi.examples.map((e) => e.prompt ?? ''))],
    [loadTaskFile(path.join(folder, 'greater_than.jsonl')), generateGreaterThanTask({ count: 200, seed: 20_251, encode, yearIsClean: yearSplitsAsTwoTokens(encode) })],
  ];
  const results: Record<string, Row[]> = {};
  for (const [calibration, heldOut] of splits) {
    console.log(`\n### ${calibration.name}: circuit from ${calibration.examples.length} calibration prompts, measured on ${heldOut.examples.length} held-out prompts (metric ${calibration.metric}, mean ablation, 4 of 16 heads)\n`);
    // Single-head zero-ablation drops on the held-out prompts (ground truth for the Spearman column).
    const single = await perPromptScores(engine, heldOut, [[], ...heads.map((h) => [h])], 'zero');
    const fullMean = mean(single[0]!);
    const drops = heads.map((_, i) => fullMean - mean(single[i + 1]!));
    console.log('| method | aggregation | circuit | faithfulness (calibration) | faithfulness (held-out) | removed by ablating it | CPR | CMD | Spearman vs head ablation |');
    console.log('|---|---|---|---|---|---|---|---|---|');
    const rows: Row[] = [];
    for (const method of DISCOVERY_METHODS) {
      for (const aggregation of ['mean-abs', 'signed-mean'] as const) {
        if (method === 'activation' && aggregation === 'signed-mean') continue; // activation norms are non-negative: same ranking
        const { graph } = await discoverCircuit(engine, calibration, { method, aggregation, granularity: 'heads', modelName: 'tiny-ioi-gpt2' });
        const absolute = aggregation !== 'signed-mean';
        const circuit = circuitComponentIds(selectNodes(graph, { kind: 'top-k', k: 4 }, { absolute }));
        const outside = heads.filter((h) => !circuit.includes(h));
        const [cf, ce, cc] = await perPromptScores(engine, calibration, [[], heads, outside], 'mean');
        const calibrationFaithfulness = faithfulnessOf(cc!, ce!, cf!, cf!.map((_, i) => i));
        // Held-out: full, all ablated, circuit alone, circuit ablated, and the MIB curve's sizes.
        const score = (id: string) => graph.nodes.find((n) => n.id === id)!.relevance;
        const ranked = [...heads].sort((a, b) => (absolute ? Math.abs(score(b)) - Math.abs(score(a)) : score(b) - score(a)));
        const sizes = MIB_FRACTIONS.map((f) => circuitSizeForFraction(f, ranked.length));
        const sets = [[], heads, outside, circuit, ...sizes.map((s) => ranked.slice(s))];
        const [full, empty, alone, ablated, ...curve] = await perPromptScores(engine, heldOut, sets, 'mean');
        const n = full!.length;
        const opts = { resamples: RESAMPLES, seed: 0 };
        const faithfulness = bootstrap(n, (idx) => faithfulnessOf(alone!, empty!, full!, idx), opts);
        const removed = bootstrap(n, (idx) => 1 - sum(ablated!, idx) / sum(full!, idx), opts);
        const areas = (idx: readonly number[]) => curveAreas(MIB_FRACTIONS, curve.map((c) => faithfulnessOf(c, empty!, full!, idx)));
        const cpr = bootstrap(n, (idx) => areas(idx).cpr, opts);
        const cmd = bootstrap(n, (idx) => areas(idx).cmd, opts);
        const rho = spearmanCI(heads.map(score), drops);
        rows.push({ method, aggregation, circuit, calibrationFaithfulness, faithfulness, removed, cpr, cmd, spearman: rho, perPrompt: { full: full!, empty: empty!, circuit: alone! } });
        console.log(
          `| ${method} | ${aggregation} | ${circuit.join(' ')} | ${calibrationFaithfulness.toFixed(3)} | ${formatInterval(faithfulness)} | ${formatInterval(removed, 3)} | ${formatInterval(cpr)} | ${formatInterval(cmd)} | ${formatInterval(rho, 2)} |`,
        );
      }
    }
    // The default aggregation is chosen on calibration faithfulness (AttnLRP); the gain is reported held-out.
    const signed = rows.find((r) => r.method === 'attnlrp' && r.aggregation === 'signed-mean')!;
    const meanAbs = rows.find((r) => r.method === 'attnlrp' && r.aggregation === 'mean-abs')!;
    const chosen = signed.calibrationFaithfulness >= meanAbs.calibrationFaithfulness ? signed : meanAbs;
    const other = chosen === signed ? meanAbs : signed;
    const gain = bootstrap(
      signed.perPrompt.full.length,
      (idx) => faithfulnessOf(chosen.perPrompt.circuit, chosen.perPrompt.empty, chosen.perPrompt.full, idx) - faithfulnessOf(other.perPrompt.circuit, other.perPrompt.empty, other.perPrompt.full, idx),
      { resamples: RESAMPLES, seed: 0 },
    );
    console.log(
      `\nAttnLRP default chosen on calibration: ${chosen.aggregation} (${chosen.calibrationFaithfulness.toFixed(3)} vs ${other.calibrationFaithfulness.toFixed(3)}); ` +
        `held-out faithfulness gain over ${other.aggregation}: ${formatInterval(gain)} (paired bootstrap)`,
    );
    results[calibration.name] = rows;
  }
  fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
  fs.writeFileSync(path.join(__dirname, 'results', 'circuits-latest.json'), JSON.stringify(results, (_k, v) => (Array.isArray(v) && typeof v[0] === 'number' && v.length > 50 ? undefined : v), 1) + '\n');
  await engine.dispose();
}

const sum = (v: readonly number[], idx: readonly number[]) => idx.reduce((s, i) => s + v[i]!, 0);
const mean = (v: readonly number[]) => v.reduce((s, x) => s + x, 0) / v.length;

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
