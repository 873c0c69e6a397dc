/**
 * Errors for bad user-supplied input (task files, circuit JSON, options). They always say
 * *where* (file and line, or the JSON path) and *what* is wrong, because these messages end up
 * in the VS Code problems view and in CLI output, where the user has nothing else to go on.
 */
import { InputError } from '../models/errors';

/** A kind of InputError, so the CLI (exit 2) and the worker (`input` code) treat it as the user's to fix. */
export class CircuitInputError extends InputError {
  /** File name (or a label such as `generated IOI`) the bad input came from. */
  readonly source: string;
  /** 1-based line number for line-oriented inputs (JSONL); absent otherwise. */
  readonly line?: number;

  constructor(source: string, problem: string, line?: number) {
    super(line === undefined ? `${source}: ${problem}` : `${source}:${line}: ${problem}`);
    this.name = 'CircuitInputError';
    this.source = source;
    if (line !== undefined) this.line = line;
  }
}

/** Throws one error listing every problem found, so a user can fix a file in one pass. */
export function throwIfProblems(source: string, problems: readonly string[], what: string): void {
  if (problems.length === 0) return;
  const shown = problems.slice(0, 20);
  const more = problems.length > shown.length ? `\n  … and ${problems.length - shown.length} more` : '';
  throw new CircuitInputError(
    source,
    `${what} has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n  ${shown.join('\n  ')}${more}`,
  );
}

/** A short, readable rendering of an offending value for error messages. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === 'string') {
    const clipped = value.length > 40 ? `${value.slice(0, 40)}…` : value;
    return JSON.stringify(clipped);
  }
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}
