/** Minimal, strict argument parsing for the CLI: unknown flags are errors, not silently ignored. */
import { parseArgs } from 'node:util';
import { InputError } from '../models/errors';

export type FlagSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

export function parseFlags<F extends FlagSpec>(argv: string[], flags: F): { [K in keyof F]?: F[K]['type'] extends 'boolean' ? boolean : string } {
  try {
    const { values } = parseArgs({ args: argv, options: flags, strict: true, allowPositionals: false });
    return values as { [K in keyof F]?: F[K]['type'] extends 'boolean' ? boolean : string };
  } catch (err) {
    throw new InputError((err as Error).message);
  }
}

export function intFlag(value: string | undefined, name: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new InputError(`--${name} must be an integer ≥ ${min}, got "${value}"`);
  return n;
}

export function floatFlag(value: string | undefined, name: string, fallback: number, min = -Infinity, max = Infinity): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) throw new InputError(`--${name} must be a number in [${min}, ${max}], got "${value}"`);
  return n;
}

export function idsFlag(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (parts.length === 0) throw new InputError('--ids is empty');
  return parts.map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0) throw new InputError(`--ids: "${s}" is not a token id`);
    return n;
  });
}

/** A flag restricted to a set of values. */
export function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], flag: string, fallback: T): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) throw new InputError(`--${flag} must be one of ${allowed.join(', ')}, got "${value}"`);
  return value as T;
}
