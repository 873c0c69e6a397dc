/**
 * Seeded pseudo-random numbers for the task generators. Generated data sets must be
 * reproducible from (generator, options, seed) alone so a circuit found today can be re-checked
 * tomorrow; `Math.random` cannot be seeded, hence this small PRNG.
 */

/** mulberry32: a 32-bit state generator, plenty for sampling templates and names. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Random {
  private readonly next: () => number;

  constructor(seed: number) {
    if (!Number.isInteger(seed)) throw new Error(`Random: seed must be an integer, got ${seed}`);
    this.next = mulberry32(seed);
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.next();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0) throw new Error(`Random.int: n must be a positive integer, got ${n}`);
    return Math.floor(this.next() * n);
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Random.pick: cannot pick from an empty list');
    return items[this.int(items.length)]!;
  }

  /** `count` distinct items (partial Fisher–Yates, so the input is not modified). */
  sample<T>(items: readonly T[], count: number): T[] {
    if (count > items.length) {
      throw new Error(`Random.sample: asked for ${count} distinct items from a list of ${items.length}`);
    }
    const pool = items.slice();
    for (let i = 0; i < count; i++) {
      const j = i + this.int(pool.length - i);
      [pool[i], pool[j]] = [pool[j]!, pool[i]!];
    }
    return pool.slice(0, count);
  }

  shuffle<T>(items: readonly T[]): T[] {
    return this.sample(items, items.length);
  }
}
