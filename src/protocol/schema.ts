/**
 * A small schema library for everything that crosses a boundary (worker messages, webview
 * messages): a schema is both the validator and, through `Infer`, the TypeScript type, so a
 * message name and its parameter type cannot drift apart. Validation rejects unknown fields,
 * mistyped values and payloads over a size budget, and gives a reason (`path: expected …`)
 * that the receiver logs. No runtime dependencies, so every side can bundle it.
 *
 * Messages are declared as values (GitLens `IpcCommand`/`IpcNotification` style).
 */

// ───────────────────────────── schemas ─────────────────────────────

/** Why a message was rejected; `reason` names the offending field. */
export class ProtocolError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'ProtocolError';
  }
}

/** Tracks the approximate size of a payload while it is parsed (bytes: 2 per char, 8 per number). */
export class Budget {
  private used = 0;
  constructor(private readonly limit: number) {}
  spend(bytes: number, path: string): void {
    this.used += bytes;
    if (this.used > this.limit) throw new ProtocolError(`${path || 'message'}: payload exceeds ${this.limit} bytes`);
  }
}

/** A validator that returns a fresh, typed copy of what it accepts (never the input object itself). */
export interface Schema<T> {
  readonly parse: (value: unknown, path: string, budget: Budget) => T;
  readonly label: string;
}
export type Infer<S> = S extends Schema<infer T> ? T : never;

const fail = (path: string, expected: string, value: unknown): never => {
  let got: string = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  if (typeof value === 'string') got = `string of length ${value.length}`;
  throw new ProtocolError(`${path || 'message'}: expected ${expected}, got ${got}`);
};

export const isPlainObject = (v: unknown): v is Record<string, unknown> => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
};

export const s = {
  string(opts: { max?: number; min?: number; pattern?: RegExp } = {}): Schema<string> {
    const max = opts.max ?? 4096;
    const min = opts.min ?? 0;
    const label = `string (${min}..${max} chars)`;
    return {
      label,
      parse(v, path, budget) {
        if (typeof v !== 'string') return fail(path, label, v);
        if (v.length > max) throw new ProtocolError(`${path}: string longer than ${max} characters`);
        if (v.length < min) throw new ProtocolError(`${path}: string shorter than ${min} characters`);
        if (opts.pattern && !opts.pattern.test(v)) throw new ProtocolError(`${path}: string does not match ${opts.pattern}`);
        budget.spend(2 * v.length + 8, path);
        return v;
      },
    };
  },
  number(opts: { min?: number; max?: number; int?: boolean } = {}): Schema<number> {
    const label = `${opts.int ? 'integer' : 'finite number'}${opts.min !== undefined ? ` ≥ ${opts.min}` : ''}${opts.max !== undefined ? ` ≤ ${opts.max}` : ''}`;
    return {
      label,
      parse(v, path, budget) {
        if (typeof v !== 'number' || !Number.isFinite(v)) return fail(path, label, v);
        if (opts.int && !Number.isInteger(v)) return fail(path, label, v);
        if ((opts.min !== undefined && v < opts.min) || (opts.max !== undefined && v > opts.max)) {
          throw new ProtocolError(`${path}: ${v} is outside ${label}`);
        }
        budget.spend(8, path);
        return v;
      },
    };
  },
  /** Like `number` but also accepts ±Infinity and NaN (metric values may legitimately be non-finite). */
  anyNumber(): Schema<number> {
    return {
      label: 'number',
      parse(v, path, budget) {
        if (typeof v !== 'number') return fail(path, 'number', v);
        budget.spend(8, path);
        return v;
      },
    };
  },
  boolean(): Schema<boolean> {
    return {
      label: 'boolean',
      parse(v, path, budget) {
        if (typeof v !== 'boolean') return fail(path, 'boolean', v);
        budget.spend(4, path);
        return v;
      },
    };
  },
  literal<const T extends readonly (string | number | boolean)[]>(...values: T): Schema<T[number]> {
    const label = `one of ${values.map((x) => JSON.stringify(x)).join(', ')}`;
    return {
      label,
      parse(v, path, budget) {
        if (!values.includes(v as T[number])) {
          throw new ProtocolError(`${path}: expected ${label}, got ${typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : typeof v}`);
        }
        budget.spend(8, path);
        return v as T[number];
      },
    };
  },
  array<T>(item: Schema<T>, opts: { max?: number } = {}): Schema<T[]> {
    const max = opts.max ?? 1024;
    const label = `array (≤ ${max}) of ${item.label}`;
    return {
      label,
      parse(v, path, budget) {
        if (!Array.isArray(v)) return fail(path, label, v);
        if (v.length > max) throw new ProtocolError(`${path}: array longer than ${max}`);
        budget.spend(8, path);
        const out: T[] = new Array<T>(v.length);
        for (let i = 0; i < v.length; i++) out[i] = item.parse(v[i], `${path}[${i}]`, budget);
        return out;
      },
    };
  },
  /** Accepts a Float32Array (structured clone keeps it) or, when `fromArray`, a plain number array. */
  float32(opts: { max?: number; fromArray?: boolean } = {}): Schema<Float32Array> {
    const max = opts.max ?? 1 << 26;
    const label = `Float32Array (≤ ${max})`;
    return {
      label,
      parse(v, path, budget) {
        if (v instanceof Float32Array) {
          if (v.length > max) throw new ProtocolError(`${path}: Float32Array longer than ${max}`);
          budget.spend(v.byteLength, path);
          return v;
        }
        if (opts.fromArray && Array.isArray(v)) {
          if (v.length > max) throw new ProtocolError(`${path}: array longer than ${max}`);
          budget.spend(8 * v.length, path);
          const out = new Float32Array(v.length);
          for (let i = 0; i < v.length; i++) {
            const x = v[i] as unknown;
            if (typeof x !== 'number') return fail(`${path}[${i}]`, 'number', x);
            out[i] = x;
          }
          return out;
        }
        return fail(path, label, v);
      },
    };
  },
  object<Shape extends Record<string, Schema<unknown>>>(
    shape: Shape,
  ): Schema<{ [K in keyof Shape as undefined extends Infer<Shape[K]> ? never : K]: Infer<Shape[K]> } & {
    // Absent, never `undefined`: `parse` leaves out keys whose value is undefined.
    [K in keyof Shape as undefined extends Infer<Shape[K]> ? K : never]?: Exclude<Infer<Shape[K]>, undefined>;
  }> {
    const keys = Object.keys(shape);
    const label = `object {${keys.join(', ')}}`;
    return {
      label,
      parse(v, path, budget) {
        if (!isPlainObject(v)) return fail(path, 'object', v);
        for (const key of Object.keys(v)) {
          if (!Object.prototype.hasOwnProperty.call(shape, key)) {
            throw new ProtocolError(`${path ? `${path}.` : ''}${key.slice(0, 40)}: unknown field`);
          }
        }
        budget.spend(16, path);
        const out: Record<string, unknown> = {};
        for (const key of keys) {
          const raw = Object.prototype.hasOwnProperty.call(v, key) ? v[key] : undefined;
          const parsed = shape[key]!.parse(raw, path ? `${path}.${key}` : key, budget);
          if (parsed !== undefined) out[key] = parsed;
        }
        return out as never;
      },
    };
  },
  /** String-keyed map with a bounded number of keys. */
  record<T>(value: Schema<T>, opts: { maxKeys?: number; keyMax?: number } = {}): Schema<Record<string, T>> {
    const maxKeys = opts.maxKeys ?? 1024;
    const keyMax = opts.keyMax ?? 256;
    return {
      label: `record of ${value.label}`,
      parse(v, path, budget) {
        if (!isPlainObject(v)) return fail(path, 'object', v);
        const keys = Object.keys(v);
        if (keys.length > maxKeys) throw new ProtocolError(`${path}: more than ${maxKeys} keys`);
        const out: Record<string, T> = Object.create(null) as Record<string, T>;
        for (const key of keys) {
          if (key.length > keyMax) throw new ProtocolError(`${path}: key longer than ${keyMax}`);
          budget.spend(2 * key.length, path);
          out[key] = value.parse(v[key], `${path}[${JSON.stringify(key.slice(0, 40))}]`, budget);
        }
        return out;
      },
    };
  },
  optional<T>(inner: Schema<T>): Schema<T | undefined> {
    return {
      label: `${inner.label} (optional)`,
      parse: (v, path, budget) => (v === undefined ? undefined : inner.parse(v, path, budget)),
    };
  },
  nullable<T>(inner: Schema<T>): Schema<T | null> {
    return {
      label: `${inner.label} or null`,
      parse: (v, path, budget) => (v === null ? null : inner.parse(v, path, budget)),
    };
  },
  /** A union discriminated by a string field. */
  tagged<K extends string, M extends Record<string, Schema<Record<string, unknown>>>>(
    key: K,
    variants: M,
  ): Schema<Infer<M[keyof M]>> {
    const names = Object.keys(variants);
    return {
      label: `${key} ∈ {${names.join(', ')}}`,
      parse(v, path, budget) {
        if (!isPlainObject(v)) return fail(path, 'object', v);
        const tag = v[key];
        if (typeof tag !== 'string' || !Object.prototype.hasOwnProperty.call(variants, tag)) {
          throw new ProtocolError(`${path ? `${path}.` : ''}${key}: expected one of ${names.join(', ')}`);
        }
        return variants[tag]!.parse(v, path, budget) as Infer<M[keyof M]>;
      },
    };
  },
  /** Anything structured-cloneable, counted against the budget but not inspected (trusted payloads only). */
  unknown(): Schema<unknown> {
    return { label: 'any', parse: (v) => v };
  },
  void(): Schema<void> {
    return {
      label: 'nothing',
      parse(v, path) {
        if (v !== undefined && v !== null && !(isPlainObject(v) && Object.keys(v).length === 0)) {
          throw new ProtocolError(`${path || 'params'}: expected no parameters`);
        }
      },
    };
  },
};

/** Parses `value` against `schema` with a size budget; throws `ProtocolError`. */
export function parseWith<T>(schema: Schema<T>, value: unknown, maxBytes: number, path = ''): T {
  return schema.parse(value, path, new Budget(maxBytes));
}

// ───────────────────────────── message definitions ─────────────────────────────

/** A one-way message: a method name and its parameter schema. */
export class MessageType<M extends string, P> {
  constructor(
    readonly method: M,
    readonly params: Schema<P>,
  ) {}
  /** Builds the wire form; typed so a sender cannot pass the wrong params. */
  create(params: P): { method: M; params: P } {
    return { method: this.method, params };
  }
  is(msg: { method: string }): msg is { method: M; params: P } {
    return msg.method === this.method;
  }
}

/** A request answered with a result (host → engine worker). */
export class RequestType<M extends string, P, R> extends MessageType<M, P> {
  constructor(
    method: M,
    params: Schema<P>,
    readonly result: Schema<R>,
  ) {
    super(method, params);
  }
}

/** A set of message types that one side accepts; `validate` is the single entry point for incoming messages. */
export class MessageSet<T extends MessageType<string, unknown>> {
  private readonly byMethod = new Map<string, T>();
  constructor(
    readonly name: string,
    types: readonly T[],
    /** Largest accepted payload, in approximate bytes. */
    readonly maxBytes: number,
  ) {
    for (const t of types) this.byMethod.set(t.method, t);
  }
  get(method: string): T | undefined {
    return this.byMethod.get(method);
  }
  methods(): string[] {
    return [...this.byMethod.keys()];
  }
  /** Validates an incoming `{ method, params }` message (extra envelope fields listed in `envelope`). */
  validate(raw: unknown, envelope: Record<string, Schema<unknown>> = {}): Validated<T> {
    try {
      if (!isPlainObject(raw)) return { ok: false, reason: `${this.name}: message is not an object` };
      const method = raw['method'];
      if (typeof method !== 'string') return { ok: false, reason: `${this.name}: message has no method` };
      const type = this.byMethod.get(method);
      if (!type) return { ok: false, reason: `${this.name}: unknown message type ${JSON.stringify(method.slice(0, 60))}` };
      for (const key of Object.keys(raw)) {
        if (key !== 'method' && key !== 'params' && !(key in envelope)) {
          return { ok: false, reason: `${this.name}: ${method}: unknown envelope field ${JSON.stringify(key.slice(0, 40))}` };
        }
      }
      const budget = new Budget(this.maxBytes);
      const extra: Record<string, unknown> = {};
      for (const [key, schema] of Object.entries(envelope)) extra[key] = schema.parse(raw[key], key, budget);
      const params = type.params.parse(raw['params'], 'params', budget);
      return { ok: true, type, message: { method, params, ...extra } as ValidatedMessage<T> };
    } catch (err) {
      if (err instanceof ProtocolError) return { ok: false, reason: `${this.name}: ${String(raw && (raw as { method?: unknown }).method).slice(0, 60)}: ${err.reason}` };
      return { ok: false, reason: `${this.name}: ${(err as Error).message}` };
    }
  }
}

type ParamsOf<T> = T extends MessageType<string, infer P> ? P : never;
export type ValidatedMessage<T> = T extends MessageType<infer M, infer P> ? { method: M; params: P; [extra: string]: unknown } : never;
export type Validated<T extends MessageType<string, unknown>> =
  | { ok: true; type: T; message: ValidatedMessage<T> }
  | { ok: false; reason: string };
export type { ParamsOf };

