import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as path from 'node:path';
import { Engine } from '../../src/engine/engine';
import { areaBetweenCurves, morfOrder, perturbationCurves, perturbedPrompts, tokenScores } from '../../src/circuits/discovery/perturbation';
import { loadTaskFile } from '../../src/circuits/tasks/tasks';
import { captureCli, EMBEDDED_MODEL } from '../helpers';

test('MoRF order, nested replacements and the area between the curves', () => {
  assert.deepEqual(morfOrder([0.1, 3, -2, 3]), [1, 3, 0, 2]);
  assert.deepEqual(perturbedPrompts([5, 6, 7], [2, 0, 1], 9), [[5, 6, 7], [5, 6, 9], [9, 6, 9], [9, 9, 9]]);
  // LeRF flat at 1, MoRF 1 → 0 → 0 over fractions 0, ½, 1: gaps 0, 1, 1 → ½·(0+1)/2 + ½·(1+1)/2.
  close(areaBetweenCurves([1, 0, 0], [1, 1, 1]), 0.5 * 0.5 + 1 * 0.5);
  close(areaBetweenCurves([2, 1], [2, 1]), 0);
  assert.throws(() => areaBetweenCurves([1], [1]), /≥ 2/);
});

let engine: Engine;
before(async () => (engine = await Engine.load(EMBEDDED_MODEL)));
after(() => engine.dispose());

test('on IOI prompts AttnLRP token relevance beats random replacement order (ABC > 0) and the curves start at the unperturbed logit', async () => {
  const task = loadTaskFile(path.join(EMBEDDED_MODEL, 'ioi.jsonl'));
  const prompts = task.examples.slice(0, 8).map((e) => [...e.ids]);
  const { scores, targets } = await tokenScores(engine, prompts, 'attnlrp');
  const random = await tokenScores(engine, prompts, 'random', 1);
  let lrp = 0;
  let rnd = 0;
  for (let i = 0; i < prompts.length; i++) {
    const c = await perturbationCurves(engine, prompts[i]!, scores[i]!, targets[i]!, 2087);
    const [row] = await engine.forward({ ids: [prompts[i]!] });
    close(c.morf[0]!, row!.logitsLast[targets[i]!]!, 1e-4);
    assert.equal(c.morf.length, prompts[i]!.length + 1);
    close(c.morf[c.morf.length - 1]!, c.lerf[c.lerf.length - 1]!, 1e-4); // everything replaced either way
    lrp += c.abc;
    rnd += (await perturbationCurves(engine, prompts[i]!, random.scores[i]!, targets[i]!, 2087)).abc;
  }
  assert.ok(lrp / prompts.length > 5, `AttnLRP ABC ${lrp / prompts.length}`);
  assert.ok(lrp > rnd + 3 * prompts.length, `AttnLRP ${lrp / prompts.length} vs random ${rnd / prompts.length}`);
});

function close(a: number, b: number, tol = 1e-12): void {
  assert.ok(Math.abs(a - b) <= tol, `expected ${b}, got ${a}`);
}

test('CLI perturb: ABC with CIs per method; bad input exits 2', async () => {
  await captureCli(async (main) => {
    assert.equal(await main(['perturb', '--task', path.join(EMBEDDED_MODEL, 'ioi.jsonl'), '--methods', 'shap']), 2);
    assert.equal(await main(['perturb']), 2);
  });
  const { result: code, printed: out } = await captureCli((main) => main(['perturb', '--task', path.join(EMBEDDED_MODEL, 'ioi.jsonl'), '--n', '6', '--methods', 'attnlrp,random', '--json']));
  assert.equal(code, 0, out.join(''));
  const json = JSON.parse(out.filter((s) => s.startsWith('{"prompts"')).pop()!);
  assert.equal(json.prompts, 6);
  assert.equal(json.replacement_id, 2087);
  const lrp = json.results[0];
  assert.ok(lrp.abc.lo <= lrp.abc.estimate && lrp.abc.estimate <= lrp.abc.hi);
  assert.ok(lrp.minus_random.estimate > 0);
});
