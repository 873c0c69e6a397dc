import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Random } from '../../src/circuits/prng';
import { enumerate, tpeSearch, tpeSuggest, type CategoricalSpace, type Config } from '../../src/circuits/pruning/tpe';

const SPACE: CategoricalSpace = { a: ['0', '1', '2', '3'], b: ['0', '1', '2', '3'], c: ['0', '1', '2', '3'] };

test('enumerate lists the product space', () => {
  assert.equal(enumerate(SPACE).length, 64);
  assert.throws(() => enumerate({ a: [] }), /no values/);
});

test('TPE prefers the values seen in the good trials', () => {
  const trials = [
    { config: { a: '1', b: '0', c: '0' }, value: 10 },
    { config: { a: '0', b: '0', c: '0' }, value: 1 },
    { config: { a: '2', b: '0', c: '0' }, value: 0 },
    { config: { a: '3', b: '0', c: '0' }, value: 0 },
  ];
  const next = tpeSuggest(SPACE, trials, [{ a: '0', b: '1', c: '1' }, { a: '1', b: '1', c: '1' }, { a: '2', b: '1', c: '1' }]);
  assert.equal(next.a, '1');
});

test('on a separable objective TPE finds the optimum more often than random search with the same budget', async () => {
  // Optimum at a=3, b=1, c=2; each dimension contributes independently, plus a little noise.
  const objective = (noiseSeed: number) => {
    const noise = new Random(noiseSeed);
    return async (c: Config) => ({ value: [0, 1, 2, 4][+c.a!]! + [1, 4, 0, 2][+c.b!]! + [0, 2, 4, 1][+c.c!]! + 0.1 * noise.float(), result: null });
  };
  let tpeHits = 0;
  let randomHits = 0;
  const budget = 14;
  for (let seed = 0; seed < 30; seed++) {
    const r = await tpeSearch(SPACE, objective(seed), { budget, seed, startup: 5 });
    assert.equal(r.trials.length, budget);
    assert.equal(new Set(r.trials.map((t) => JSON.stringify(t.config))).size, budget, 'no configuration is evaluated twice');
    if (r.best.config.a === '3' && r.best.config.b === '1' && r.best.config.c === '2') tpeHits++;
    const drawn = new Random(seed).sample(enumerate(SPACE), budget);
    if (drawn.some((c) => c.a === '3' && c.b === '1' && c.c === '2')) randomHits++;
  }
  // Random search hits with probability 14/64 ≈ 22 %.
  assert.ok(tpeHits >= 18 && tpeHits > randomHits + 8, `TPE ${tpeHits}/30, random ${randomHits}/30`);
});

test('TPE is seeded, evaluates the initial configuration first and stops at the space size', async () => {
  const f = async (c: Config) => ({ value: +c.a!, result: c.a });
  const a = await tpeSearch({ a: ['0', '1', '2'] }, f, { budget: 10, seed: 3, initial: [{ a: '1' }] });
  assert.equal(a.trials.length, 3);
  assert.deepEqual(a.trials[0]!.config, { a: '1' });
  assert.equal(a.best.config.a, '2');
  const b1 = await tpeSearch(SPACE, async (c) => ({ value: +c.a! * +c.b!, result: null }), { budget: 8, seed: 5 });
  const b2 = await tpeSearch(SPACE, async (c) => ({ value: +c.a! * +c.b!, result: null }), { budget: 8, seed: 5 });
  assert.deepEqual(b1.trials.map((t) => t.config), b2.trials.map((t) => t.config));
  await assert.rejects(tpeSearch(SPACE, f, { budget: 0 }), /budget/);
});

test('curve AUC of the mean over resampled prompts (the PXP objective on a prompt subset)', async () => {
  const { curveAuc } = await import('../../src/circuits/pruning/tune');
  const curve = [[2, 4], [1, 3], [0, 2]]; // [rate][prompt]
  // mean curve over both prompts: 3, 2, 1 at rates 0, 0.5, 1 → area 2
  assert.equal(curveAuc(curve, [0, 0.5, 1], [0, 1]), 2);
  // prompt 0 twice: 2, 1, 0 → area 1
  assert.equal(curveAuc(curve, [0, 0.5, 1], [0, 0]), 1);
});
