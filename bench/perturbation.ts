/**
 * AttnLRP's input-perturbation faithfulness test (src/circuits/discovery/perturbation.ts): MoRF and LeRF
 * token replacement, area between the curves (ABC, logit units, higher = more faithful), for
 * AttnLRP, CP-LRP, gradient × input, integrated gradients and random (3 seeds), on the embedded model (60 held-out IOI
 * prompts, replacement <|endoftext|>) and ../shared/models/stories260k when present (40 greedy
 * 24-token continuations of story openings, replacement <unk>, BOS never replaced).
 * 95 % bootstrap CIs over prompts (2000 resamples, seed 0); method differences by paired bootstrap.
 *
 * Integrated gradients (16 midpoint steps through the plain gradient, Engine.integratedGradients)
 * runs from two baselines: the fully replaced prompt (every token the test may replace set to the
 * replacement token; the point where both curves end) and zero token embeddings (positions kept).
 * Their completeness gaps |Σ IG − (f(x) − f(x'))| are printed under the table.
 *
 * The mean MoRF/LeRF curves (AttnLRP, CP-LRP, gradient × input, IG from the replaced prompt, random
 * seed 0) are drawn to docs/images/perturbation-curves.svg.
 *
 * Run: nice -n 10 node --import tsx bench/perturbation.ts   (about 3 minutes on 2 cores)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Engine, embeddedModelPath } from '../src/engine/engine';
import { heldOutIoiTask } from '../src/circuits/tasks/generators';
import { meanCurves, perturbationCurves, tokenScores, type PerturbationCurves, type PerturbationMethod } from '../src/circuits/discovery/perturbation';
import { bootstrapMean, formatInterval, meanSem, pairedBootstrapMeanDiff } from '../src/circuits/stats';
import { loadTaskFile } from '../src/circuits/tasks/tasks';

const METHODS = ['attnlrp', 'cp-lrp', 'gradient', 'integrated-gradients', 'ig-64', 'ig-zero'] as const;
const LABEL: Record<string, string> = {
  attnlrp: 'AttnLRP',
  'cp-lrp': 'CP-LRP',
  gradient: 'gradient × input',
  'integrated-gradients': 'IG, replaced-prompt baseline, 16 steps',
  'ig-64': 'IG, replaced-prompt baseline, 64 steps',
  'ig-zero': 'IG, zero baseline, 16 steps',
};
const opts = { resamples: 2000, seed: 0 };
const OPENINGS = [
  'Once upon a time', 'One day, a little girl', 'Tom and his dog', 'There was a big tree', 'Lily wanted to play',
  'The sun was shining', 'A small bird', 'Mom said', 'Ben had a red ball', 'In the park',
  'The cat saw', 'Sam was sad because', 'One morning', 'The little boy', 'Sue found a box',
  'It was a rainy day', 'The dog ran', 'Anna liked to', 'Once there was a', 'The kids went',
];

type Mean = ReturnType<typeof meanCurves>;

async function run(label: string, engine: Engine, prompts: number[][], replacement: number, from: number): Promise<Map<string, Mean>> {
  const means = new Map<string, Mean>();
  const abc = new Map<string, number[]>();
  const gaps = new Map<string, { gap: number[]; difference: number[] }>();
  for (const method of [...METHODS, 'random-0', 'random-1', 'random-2']) {
    const m: PerturbationMethod = method.startsWith('random') ? 'random' : method.startsWith('ig-') ? 'integrated-gradients' : (method as PerturbationMethod);
    const started = Date.now();
    const ig = { baseline: method === 'ig-zero' ? ('zero' as const) : { replacement, from }, steps: method === 'ig-64' ? 64 : 16 };
    const { scores, targets, completenessGap, explainedDifference } = await tokenScores(engine, prompts, m, m === 'random' ? Number(method.split('-')[1]) : 0, ig);
    if (completenessGap) gaps.set(method, { gap: completenessGap, difference: explainedDifference! });
    console.error(`${label}: ${method} scored in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const values: number[] = [];
    const curves: PerturbationCurves[] = [];
    for (let i = 0; i < prompts.length; i++) curves.push(await perturbationCurves(engine, prompts[i]!, scores[i]!, targets[i]!, replacement, from));
    values.push(...curves.map((c) => c.abc));
    abc.set(method, values);
    means.set(method, meanCurves(curves, 41));
  }
  console.log(`\n### ${label}: ${prompts.length} prompts, ${prompts[0]!.length} tokens (first), top-1 logit explained\n`);
  console.log('| method | ABC (logit units) | − random (paired) |');
  console.log('|---|---|---|');
  const random = abc.get('random-0')!.map((_, i) => (abc.get('random-0')![i]! + abc.get('random-1')![i]! + abc.get('random-2')![i]!) / 3);
  for (const method of METHODS) {
    console.log(`| ${LABEL[method]} | ${formatInterval(bootstrapMean(abc.get(method)!, opts))} | ${formatInterval(pairedBootstrapMeanDiff(abc.get(method)!, random, opts))} |`);
  }
  const seeds = meanSem(['random-0', 'random-1', 'random-2'].map((k) => abc.get(k)!.reduce((s, v) => s + v, 0) / prompts.length));
  console.log(`| random (3 seeds) | ${seeds.mean.toFixed(3)} ± ${seeds.sem.toFixed(3)} (mean ± SEM over seeds) | – |`);
  const diff = (a: string, b: string) => `${LABEL[a]} − ${LABEL[b]}: ${formatInterval(pairedBootstrapMeanDiff(abc.get(a)!, abc.get(b)!, opts))}`;
  const pairs: [string, string][] = [
    ['attnlrp', 'cp-lrp'], ['attnlrp', 'gradient'], ['attnlrp', 'integrated-gradients'], ['cp-lrp', 'integrated-gradients'],
    ['integrated-gradients', 'gradient'], ['ig-64', 'integrated-gradients'], ['integrated-gradients', 'ig-zero'],
  ];
  console.log(`\nPaired bootstrap differences:\n${pairs.map(([a, b]) => `- ${diff(a, b)}`).join('\n')}`);
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  console.log(`\nIntegrated gradients completeness, |Σ IG − (f(x) − f(x'))| in logit units (relative: / |f(x) − f(x')|):`);
  for (const [method, { gap, difference }] of gaps) {
    const abs = gap.map(Math.abs);
    const rel = gap.map((g, i) => Math.abs(g) / Math.abs(difference[i]!));
    console.log(`- ${LABEL[method]}: mean ${mean(abs).toFixed(4)}, max ${Math.max(...abs).toFixed(4)}; relative median ${pct(median(rel))}, max ${pct(Math.max(...rel))}; mean |f(x) − f(x')| ${mean(difference.map(Math.abs)).toFixed(2)}`);
  }
  return means;
}

const pct = (x: number) => `${(100 * x).toPrecision(2)} %`;

const SERIES: { key: string; label: string; color: string }[] = [
  { key: 'attnlrp', label: 'AttnLRP', color: '#1f77b4' },
  { key: 'cp-lrp', label: 'CP-LRP', color: '#ff7f0e' },
  { key: 'gradient', label: 'gradient × input', color: '#2ca02c' },
  { key: 'integrated-gradients', label: 'integrated gradients', color: '#d62728' },
  { key: 'random-0', label: 'random', color: '#7f7f7f' },
];

/** Mean MoRF (solid) and LeRF (dashed) logit vs fraction replaced, one panel per model, as a standalone SVG. */
function writeChart(panels: { title: string; means: Map<string, Mean> }[]): void {
  const W = 420;
  const H = 300;
  const pad = { l: 48, r: 12, t: 28, b: 40 };
  const parts: string[] = [];
  panels.forEach((panel, p) => {
    const x0 = p * W;
    const all = SERIES.flatMap((s) => [...panel.means.get(s.key)!.morf, ...panel.means.get(s.key)!.lerf]);
    const lo = Math.floor(Math.min(...all));
    const hi = Math.ceil(Math.max(...all));
    const X = (f: number) => x0 + pad.l + f * (W - pad.l - pad.r);
    const Y = (v: number) => pad.t + ((hi - v) / (hi - lo)) * (H - pad.t - pad.b);
    parts.push(`<text x="${x0 + W / 2}" y="18" text-anchor="middle" font-size="13">${panel.title}</text>`);
    parts.push(`<line x1="${X(0)}" y1="${Y(lo)}" x2="${X(1)}" y2="${Y(lo)}" stroke="#333"/><line x1="${X(0)}" y1="${Y(lo)}" x2="${X(0)}" y2="${Y(hi)}" stroke="#333"/>`);
    for (const f of [0, 0.25, 0.5, 0.75, 1]) parts.push(`<text x="${X(f)}" y="${Y(lo) + 14}" text-anchor="middle" font-size="10">${f}</text>`);
    const step = (hi - lo) / 4;
    for (let k = 0; k <= 4; k++) parts.push(`<text x="${X(0) - 4}" y="${Y(lo + k * step) + 3}" text-anchor="end" font-size="10">${(lo + k * step).toFixed(1)}</text>`);
    parts.push(`<text x="${x0 + W / 2}" y="${H - 6}" text-anchor="middle" font-size="11">fraction of tokens replaced</text>`);
    if (p === 0) parts.push(`<text transform="translate(12 ${H / 2}) rotate(-90)" text-anchor="middle" font-size="11">top-1 logit (mean)</text>`);
    for (const s of SERIES) {
      const m = panel.means.get(s.key)!;
      const line = (ys: number[], dash: string) => `<polyline fill="none" stroke="${s.color}" stroke-width="1.6"${dash} points="${m.fraction.map((f, i) => `${X(f).toFixed(1)},${Y(ys[i]!).toFixed(1)}`).join(' ')}"/>`;
      parts.push(line(m.morf, ''), line(m.lerf, ' stroke-dasharray="5 3"'));
    }
  });
  const width = W * panels.length;
  const legend = SERIES.map((s, i) => `<rect x="${16 + i * 150}" y="${H + 6}" width="14" height="3" fill="${s.color}"/><text x="${34 + i * 150}" y="${H + 11}" font-size="11">${s.label}</text>`).join('');
  const note = `<text x="${width - 8}" y="${H + 11}" text-anchor="end" font-size="10">solid: MoRF, dashed: LeRF</text>`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${H + 20}" viewBox="0 0 ${width} ${H + 20}" font-family="sans-serif"><rect width="100%" height="100%" fill="#fff"/>${parts.join('')}${legend}${note}</svg>\n`;
  const out = path.resolve(__dirname, '..', 'docs', 'images', 'perturbation-curves.svg');
  fs.writeFileSync(out, svg);
  console.log(`\nChart: ${path.relative(path.resolve(__dirname, '..'), out)}`);
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function main(): Promise<void> {
  const folder = embeddedModelPath();
  const engine = await Engine.load(folder);
  const calibration = loadTaskFile(path.join(folder, 'ioi.jsonl'));
  const ioi = heldOutIoiTask(engine.tokenizer!, 60, calibration.examples.map((e) => e.prompt ?? ''));
  const panels: { title: string; means: Map<string, Mean> }[] = [];
  panels.push({ title: 'embedded model, 60 IOI prompts', means: await run('embedded tiny-ioi-gpt2 (held-out IOI prompts)', engine, ioi.examples.map((e) => [...e.ids]), 2087, 0) });
  await engine.dispose();

  const stories = path.resolve(__dirname, '..', '..', 'shared', 'models', 'stories260k');
  if (!fs.existsSync(stories)) {
    console.log('\n../shared/models/stories260k is not present: the second model is skipped.');
    writeChart(panels);
    return;
  }
  const s = await Engine.load(stories);
  const tok = s.tokenizer!;
  const prompts: number[][] = [];
  for (const opening of OPENINGS.concat(OPENINGS.map((o) => `${o} and`))) {
    const ids = [...tok.encodeIds(opening)];
    while (ids.length < 24) {
      const [row] = await s.forward({ ids: [ids] });
      let best = 0;
      for (let v = 1; v < row!.logitsLast.length; v++) if (row!.logitsLast[v]! > row!.logitsLast[best]!) best = v;
      ids.push(best);
    }
    prompts.push(ids);
  }
  const from = prompts[0]![0] === 1 ? 1 : 0; // Llama BOS (id 1) stays in place
  panels.push({ title: 'stories260k, 40 story continuations', means: await run('stories260k (greedy story continuations)', s, prompts, 0, from) });
  await s.dispose();
  writeChart(panels);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
