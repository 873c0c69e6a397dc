/**
 * A small Tree-structured Parzen Estimator (Bergstra et al. 2011) for categorical search spaces,
 * the Bayesian optimiser used for PXP's rule search (PXP's paper uses a GP surrogate; its code
 * has no optimiser, shared/notes/methods.md E.1). No npm dependency fits a 20-line need.
 *
 * - The first `startup` configurations are drawn at random without replacement.
 * - Then the trials are split at the γ-quantile of the objective (best ⌈γ·n⌉ = "good"), each
 *   dimension gets a categorical density from counts + a uniform prior of `prior` per value, in
 *   the good set l(x) and the rest g(x), and the next configuration is the not yet evaluated one
 *   maximising Π_d l_d(x_d) / g_d(x_d) (the expected-improvement criterion of TPE). With small
 *   spaces every unevaluated configuration is scored exactly instead of sampling candidates.
 * - Maximises the objective. Seeded: same seed, same sequence.
 */
import { Random } from '../prng';

export type CategoricalSpace = Readonly<Record<string, readonly string[]>>;
export type Config = Record<string, string>;

export interface TpeOptions {
  readonly budget: number;
  readonly seed?: number;
  readonly startup?: number;
  readonly gamma?: number;
  readonly prior?: number;
  /** Evaluated first (e.g. the current default), counted in the budget. */
  readonly initial?: readonly Config[];
}

export interface TpeTrial<T> {
  readonly config: Config;
  readonly value: number;
  readonly result: T;
}

export function enumerate(space: CategoricalSpace): Config[] {
  let out: Config[] = [{}];
  for (const [dim, values] of Object.entries(space)) {
    if (values.length === 0) throw new Error(`search space: dimension "${dim}" has no values`);
    out = out.flatMap((c) => values.map((v) => ({ ...c, [dim]: v })));
  }
  return out;
}

const key = (c: Config) => JSON.stringify(Object.entries(c).sort(([a], [b]) => a.localeCompare(b)));

/** The TPE choice of the next configuration among `candidates`, given the trials so far. */
export function tpeSuggest(space: CategoricalSpace, trials: readonly { config: Config; value: number }[], candidates: readonly Config[], gamma = 0.25, prior = 1): Config {
  if (candidates.length === 0) throw new Error('TPE: no candidate left');
  const sorted = [...trials].sort((a, b) => b.value - a.value);
  const nGood = Math.max(1, Math.ceil(gamma * sorted.length));
  const good = sorted.slice(0, nGood);
  const bad = sorted.slice(nGood);
  const density = (set: readonly { config: Config }[], dim: string, value: string) => {
    const values = space[dim]!;
    const count = set.filter((t) => t.config[dim] === value).length;
    return (count + prior) / (set.length + prior * values.length);
  };
  let best = candidates[0]!;
  let bestScore = -Infinity;
  for (const c of candidates) {
    let score = 0;
    for (const dim of Object.keys(space)) score += Math.log(density(good, dim, c[dim]!)) - Math.log(density(bad, dim, c[dim]!));
    if (score > bestScore) {
      bestScore = score;
      best = c;
    }
  }
  return best;
}

export async function tpeSearch<T>(space: CategoricalSpace, objective: (config: Config) => Promise<{ value: number; result: T }>, options: TpeOptions): Promise<{ trials: TpeTrial<T>[]; best: TpeTrial<T> }> {
  if (!Number.isInteger(options.budget) || options.budget < 1) throw new Error(`TPE: budget must be an integer ≥ 1, got ${options.budget}`);
  const all = enumerate(space);
  const random = new Random(options.seed ?? 0);
  const startup = options.startup ?? Math.min(4, options.budget);
  const trials: TpeTrial<T>[] = [];
  const seen = new Set<string>();
  const run = async (config: Config) => {
    seen.add(key(config));
    const { value, result } = await objective(config);
    if (!Number.isFinite(value)) throw new Error(`TPE: the objective returned ${value} for ${key(config)}`);
    trials.push({ config, value, result });
  };
  for (const c of options.initial ?? []) if (trials.length < options.budget && !seen.has(key(c))) await run(c);
  const shuffled = random.shuffle(all);
  while (trials.length < Math.min(options.budget, all.length)) {
    const left = shuffled.filter((c) => !seen.has(key(c)));
    if (trials.length < startup) await run(left[0]!);
    else await run(tpeSuggest(space, trials, left, options.gamma ?? 0.25, options.prior ?? 1));
  }
  const best = trials.reduce((a, b) => (b.value > a.value ? b : a));
  return { trials, best };
}
