/**
 * What every use case receives besides its options: a way to report progress, a log, and a
 * cancellation signal. The CLI passes a context that writes to stderr; the worker passes one
 * that posts `progress`/`log` messages and aborts on the host's `cancel`.
 */
import { Engine } from '../engine/engine';

export interface Progress {
  readonly message?: string;
  /** Fraction done in [0, 1]. */
  readonly fraction?: number;
}

export interface JobContext {
  readonly signal?: AbortSignal;
  progress?(p: Progress): void;
  log?(message: string): void;
}

/** Thrown when a job's signal is aborted; the worker reports it as `cancelled`. */
export class CancelledError extends Error {
  constructor() {
    super('Cancelled');
    this.name = 'CancelledError';
  }
}

export function checkCancelled(ctx: JobContext): void {
  if (ctx.signal?.aborted) throw new CancelledError();
}

/**
 * The engine with a cancellation check before every call (and on the engines `withWeights`
 * returns), so the long loops of src/circuits/ stop between engine calls once cancelled.
 */
export function cancellable(engine: Engine, ctx: JobContext): Engine {
  const signal = ctx.signal;
  if (!signal) return engine;
  return new Proxy(engine, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (prop !== 'dispose' && signal.aborted) throw new CancelledError();
        const out = (value as (...a: unknown[]) => unknown).apply(target, args);
        return out instanceof Engine ? cancellable(out, ctx) : out;
      };
    },
  });
}

/** Maps (done, total) of a sub-step onto [from, to] of the job's progress bar. */
export function stepProgress(ctx: JobContext, message: (done: number, total: number) => string, from: number, to: number) {
  return (done: number, total: number): void => ctx.progress?.({ message: message(done, total), fraction: from + ((to - from) * done) / Math.max(1, total) });
}
