/** Circuit discovery and verification: pure TypeScript over the `ModelRunner` interface. */
export * from './aggregate';
export * from './errors';
export * from './export';
export * from './faithfulness';
export * from './generators';
export * from './graph';
export * from './metrics';
export * from './prng';
export * from './ranking';
export * from './runner';
export * from './tasks';
export * from './templates';
