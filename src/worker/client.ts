/**
 * `EngineClient`: the host side of the engine worker. It spawns dist/worker.js lazily, sends the
 * typed requests of `src/protocol.ts`, validates every answer, forwards progress, and cancels.
 *
 * Cancelling asks the worker to stop; a job still running a second later (stuck in a native
 * call) gets the worker terminated. The worker's death — asked for or not — fails its pending
 * jobs, and the next call spawns a fresh worker and reloads the last model before running.
 * No `vscode` import: the CLI and tests can use it too.
 */
import { Worker } from 'node:worker_threads';
import { parseWith, ProtocolError } from '../protocol/schema';
import { Engine as Req, type EngineParams, type EngineResult, type ErrorCode, type HostToWorker, type Progress, validateWorkerMessage, type WireError } from '../protocol/worker';

/** A failed engine job. `code` tells cancellation, missing features, bad input and crashes apart. */
export class EngineError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly remoteStack?: string,
  ) {
    super(message);
    this.name = code === 'cancelled' ? 'CancellationError' : 'EngineError';
  }
  static from(e: WireError): EngineError {
    return new EngineError(e.code, e.message, e.stack);
  }
}

export interface JobOptions {
  onProgress?: (p: Progress) => void;
  /** Aborting cancels the job (see `EngineClient.cancel`). */
  signal?: AbortSignal;
}

export interface EngineClientOptions {
  /** Path of the bundled worker script (dist/worker.js). */
  readonly workerPath: string;
  readonly log?: (level: 'trace' | 'debug' | 'info' | 'warn' | 'error', message: string) => void;
  /** How long a cancelled job may take to stop before the worker is terminated (ms). */
  readonly cancelGraceMs?: number;
  /** Enables test-only requests (`engine/sleep`). */
  readonly testHooks?: boolean;
  readonly env?: NodeJS.ProcessEnv;
}

interface Pending {
  readonly id: number;
  readonly method: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: Error) => void;
  readonly onProgress: ((p: Progress) => void) | undefined;
  readonly parseResult: (raw: unknown) => unknown;
  cancelTimer?: NodeJS.Timeout;
  cancelled?: boolean;
}

type Method = keyof typeof Req;
const RESULT_MAX = 512 * 1024 * 1024;

export class EngineClient {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private lastLoad: EngineParams<'load'> | null = null;
  /** Resolves once a fresh worker has restored the last model (null while none is needed). */
  private restoring: Promise<void> | null = null;
  private disposed = false;
  private readonly grace: number;
  private readonly deathListeners = new Set<(err: EngineError) => void>();

  constructor(private readonly options: EngineClientOptions) {
    this.grace = options.cancelGraceMs ?? 1000;
  }

  /** Whether a worker is running now (it is spawned on the first request). */
  get alive(): boolean {
    return this.worker !== null;
  }

  /** Called when the worker dies without being asked to (crash, out of memory). */
  onDidDie(listener: (err: EngineError) => void): { dispose(): void } {
    this.deathListeners.add(listener);
    return { dispose: () => this.deathListeners.delete(listener) };
  }

  load(params: EngineParams<'load'>, opts?: JobOptions) {
    const job = this.call('load', params, opts);
    job.then(
      () => (this.lastLoad = params),
      () => undefined,
    );
    return job;
  }
  info(opts?: JobOptions) {
    return this.call('info', undefined, opts);
  }
  tokenize(params: EngineParams<'tokenize'>, opts?: JobOptions) {
    return this.call('tokenize', params, opts);
  }
  forward(params: EngineParams<'forward'>, opts?: JobOptions) {
    return this.call('forward', params, opts);
  }
  attribute(params: EngineParams<'attribute'>, opts?: JobOptions) {
    return this.call('attribute', params, opts);
  }
  attributePrompt(params: EngineParams<'attributePrompt'>, opts?: JobOptions) {
    return this.call('attributePrompt', params, opts);
  }
  discover(params: EngineParams<'discover'>, opts?: JobOptions) {
    return this.call('discover', params, opts);
  }
  verify(params: EngineParams<'verify'>, opts?: JobOptions) {
    return this.call('verify', params, opts);
  }
  prune(params: EngineParams<'prune'>, opts?: JobOptions) {
    return this.call('prune', params, opts);
  }
  pruneCurve(params: EngineParams<'pruneCurve'>, opts?: JobOptions) {
    return this.call('pruneCurve', params, opts);
  }
  correct(params: EngineParams<'correct'>, opts?: JobOptions) {
    return this.call('correct', params, opts);
  }
  exportModel(params: EngineParams<'exportModel'>, opts?: JobOptions) {
    return this.call('exportModel', params, opts);
  }
  promptGraph(params: EngineParams<'promptGraph'>, opts?: JobOptions) {
    return this.call('promptGraph', params, opts);
  }
  ablatePromptNode(params: EngineParams<'ablatePromptNode'>, opts?: JobOptions) {
    return this.call('ablatePromptNode', params, opts);
  }
  logitLens(params: EngineParams<'logitLens'>, opts?: JobOptions) {
    return this.call('logitLens', params, opts);
  }
  steer(params: EngineParams<'steer'>, opts?: JobOptions) {
    return this.call('steer', params, opts);
  }
  /** Test hook (needs `testHooks`). */
  sleep(params: EngineParams<'sleep'>, opts?: JobOptions) {
    return this.call('sleep', params, opts);
  }

  /** Cancels one job, or every pending job when `id` is omitted. */
  cancel(id?: number): void {
    const targets = id === undefined ? [...this.pending.values()] : [this.pending.get(id)].filter((p): p is Pending => !!p);
    for (const p of targets) {
      if (p.cancelled) continue;
      p.cancelled = true;
      this.send({ type: 'cancel', id: p.id });
      p.cancelTimer = setTimeout(() => {
        if (!this.pending.has(p.id)) return;
        this.log('warn', `job ${p.id} (${p.method}) did not stop within ${this.grace} ms; terminating the engine worker`);
        this.kill(new EngineError('cancelled', 'Cancelled'));
      }, this.grace);
    }
  }

  /** Forgets the model and stops the worker. Further calls fail. */
  async dispose(): Promise<void> {
    this.disposed = true;
    this.kill(new EngineError('cancelled', 'The engine was shut down'));
    this.deathListeners.clear();
  }

  /** Sends a request; the returned promise carries the job id for `cancel`. */
  call<K extends Method>(method: K, params: EngineParams<K>, opts: JobOptions = {}): Promise<EngineResult<K>> & { id: number } {
    const id = this.nextId++;
    const type = Req[method];
    let settle!: { resolve: (v: unknown) => void; reject: (e: Error) => void };
    const promise = new Promise<EngineResult<K>>((resolve, reject) => {
      settle = { resolve: resolve as (v: unknown) => void, reject };
    }) as Promise<EngineResult<K>> & { id: number };
    promise.id = id;
    if (this.disposed) {
      settle.reject(new EngineError('internal', 'The engine client has been disposed'));
      return promise;
    }
    // Reject locally what the worker would reject, so the caller gets the reason at once.
    try {
      parseWith(type.params as never, params, 64 * 1024 * 1024, 'params');
    } catch (err) {
      settle.reject(new EngineError('protocol', err instanceof ProtocolError ? err.reason : String(err)));
      return promise;
    }
    const pending: Pending = {
      id,
      method,
      resolve: settle.resolve,
      reject: settle.reject,
      onProgress: opts.onProgress,
      parseResult: (raw) => parseWith(type.result as never, raw, RESULT_MAX, 'result'),
    };
    this.pending.set(id, pending);
    if (opts.signal) {
      if (opts.signal.aborted) {
        this.finish(id, new EngineError('cancelled', 'Cancelled'));
        return promise;
      }
      opts.signal.addEventListener('abort', () => this.cancel(id), { once: true });
    }
    const start = () => {
      if (!this.pending.has(id)) return;
      if (pending.cancelled) {
        this.finish(id, new EngineError('cancelled', 'Cancelled'));
        return;
      }
      this.send({ type: 'request', id, method: type.method, params });
    };
    const needsRestore = !this.worker && this.lastLoad !== null && method !== 'load' && method !== 'dispose';
    this.ensureWorker();
    if (needsRestore) this.restoring = this.restore();
    if (this.restoring && method !== 'load') {
      this.restoring.then(start, (err: Error) => this.finish(id, err instanceof EngineError ? err : new EngineError('internal', err.message)));
    } else {
      start();
    }
    return promise;
  }

  private async restore(): Promise<void> {
    const params = this.lastLoad!;
    this.log('info', `restoring model ${params.folder} in a fresh engine worker`);
    try {
      await new Promise((resolve, reject) => {
        const id = this.nextId++;
        this.pending.set(id, {
          id,
          method: 'load',
          resolve,
          reject,
          onProgress: undefined,
          parseResult: (raw) => parseWith(Req.load.result, raw, RESULT_MAX, 'result'),
        });
        this.send({ type: 'request', id, method: Req.load.method, params });
      });
    } finally {
      this.restoring = null;
    }
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(this.options.workerPath, {
      workerData: { testHooks: this.options.testHooks === true },
      ...(this.options.env ? { env: this.options.env } : {}),
      stdout: false,
      stderr: false,
    });
    this.worker = worker;
    this.log('debug', `engine worker started (thread ${worker.threadId})`);
    worker.on('message', (raw: unknown) => this.onMessage(raw));
    worker.on('error', (err) => {
      if (this.worker !== worker) return;
      this.log('error', `engine worker error: ${err.stack ?? err.message}`);
      this.onDeath(worker, new EngineError('worker-died', `The engine worker crashed: ${err.message}`));
    });
    worker.on('exit', (code) => {
      if (this.worker !== worker) return;
      this.onDeath(worker, new EngineError('worker-died', `The engine worker exited unexpectedly (exit code ${code})`));
    });
    return worker;
  }

  private onDeath(worker: Worker, err: EngineError): void {
    if (this.worker !== worker) return;
    this.worker = null;
    this.restoring = null;
    this.log('error', err.message);
    this.failAll(err);
    for (const l of this.deathListeners) l(err);
  }

  private kill(reason: EngineError): void {
    const worker = this.worker;
    this.worker = null;
    this.restoring = null;
    this.failAll(reason);
    if (worker) void worker.terminate();
  }

  private failAll(err: EngineError): void {
    for (const p of [...this.pending.values()]) {
      this.finish(p.id, p.cancelled ? new EngineError('cancelled', 'Cancelled') : err);
    }
  }

  private finish(id: number, outcome: Error | { result: unknown }): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (p.cancelTimer) clearTimeout(p.cancelTimer);
    if (outcome instanceof Error) p.reject(outcome);
    else p.resolve(outcome.result);
  }

  private onMessage(raw: unknown): void {
    const checked = validateWorkerMessage(raw);
    if (!checked.ok) {
      this.log('error', `ignored a malformed message from the engine worker: ${checked.reason}`);
      return;
    }
    const msg = checked.message;
    switch (msg.type) {
      case 'ready':
        return;
      case 'log':
        this.log(msg.level, msg.message);
        return;
      case 'progress': {
        const p = this.pending.get(msg.id);
        if (p && !p.cancelled) p.onProgress?.(msg.progress);
        return;
      }
      case 'error':
        this.finish(msg.id, EngineError.from(msg.error));
        return;
      case 'response': {
        const p = this.pending.get(msg.id);
        if (!p) return;
        let result: unknown;
        try {
          result = p.parseResult(msg.result);
        } catch (err) {
          const reason = err instanceof ProtocolError ? err.reason : String(err);
          this.log('error', `engine worker answered ${p.method} with a malformed result: ${reason}`);
          this.finish(msg.id, new EngineError('protocol', `Malformed result from the engine: ${reason}`));
          return;
        }
        this.finish(msg.id, { result });
        return;
      }
    }
  }

  private send(message: HostToWorker): void {
    this.worker?.postMessage(message);
  }

  private log(level: 'trace' | 'debug' | 'info' | 'warn' | 'error', message: string): void {
    this.options.log?.(level, message);
  }
}
