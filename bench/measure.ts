/**
 * One measurement in its own process (spawned by forward.ts / attribution.ts through
 * common.runChild), so that the peak RSS it reports belongs to one model × length only.
 *
 *     node --import tsx bench/measure.ts '{"folder":"…","tokens":128,"attribution":true,"runs":7,"warmup":2,"threads":2}'
 *
 * Prints progress on stderr and one JSON line (MeasureResult) on stdout.
 * - forward: `engine.forward` (logits at every position, as the engine always computes them).
 * - attribution: `engine.attribute`, mode attnlrp, target = logit of token 0 at the last
 *   position (the oracle's target), i.e. forward + relevance in one session run.
 * Small models run more than `runs` times, until `minTimeMs` has passed (noise).
 * With both, the runs alternate forward / attribution so that load from other processes
 * hits both alike; the ratio is taken per process.
 */
import * as os from 'node:os';
import { Engine } from '../src/engine/engine';
import { maxRssMiB, randomIds, stats, type Stats } from './common';

export interface MeasureRequest {
  readonly folder: string;
  readonly tokens: number;
  readonly attribution: boolean;
  readonly runs: number;
  readonly warmup: number;
  readonly threads: number;
  readonly mode?: 'attnlrp' | 'cp-lrp' | 'gradient';
  /** Keep running (past `runs`, at most 200) until the timed loop has lasted this long. */
  readonly minTimeMs?: number;
}

export interface MeasureResult {
  readonly folder: string;
  readonly tokens: number;
  readonly threads: number;
  readonly parameters: number;
  readonly loadMs: number;
  /** First call: graph compile + session creation + one run. */
  readonly forwardFirstMs: number;
  readonly forward: Stats;
  readonly attributionFirstMs: number | null;
  readonly attribution: Stats | null;
  readonly ratio: number | null;
  readonly rssAfterLoadMiB: number;
  /** Peak RSS once the forward session existed and ran (before any attribution session). */
  readonly peakRssForwardMiB: number;
  /** Peak RSS of the whole process. */
  readonly peakRssMiB: number;
  readonly cpuUserS: number;
  readonly cpuSystemS: number;
  readonly loadavgStart: number[];
  readonly loadavgEnd: number[];
}

async function main(): Promise<void> {
  const req = JSON.parse(process.argv[2]!) as MeasureRequest;
  const loadavgStart = os.loadavg();
  const log = (m: string) => console.error(`[measure T=${req.tokens}] ${m}`);
  const t = performance.now();
  const engine = await Engine.load(req.folder, { threads: req.threads, executionProvider: 'cpu' });
  const loadMs = performance.now() - t;
  const rssAfterLoadMiB = maxRssMiB();
  const ids = [randomIds(req.tokens, engine.spec.vocabSize)];
  const targets = [{ kind: 'logit' as const, position: req.tokens - 1, token: 0 }];
  const fwd = () => engine.forward({ ids });
  const attr = () => engine.attribute({ ids, targets, mode: req.mode ?? 'attnlrp' });
  const timed = async (fn: () => Promise<unknown>) => {
    const t0 = performance.now();
    await fn();
    return performance.now() - t0;
  };

  const forwardFirstMs = await timed(fwd);
  for (let i = 1; i < req.warmup; i++) await fwd();
  const peakRssForwardMiB = maxRssMiB();
  log(`forward session ready (first call ${forwardFirstMs.toFixed(0)} ms, peak RSS ${peakRssForwardMiB.toFixed(0)} MiB)`);
  let attributionFirstMs: number | null = null;
  if (req.attribution) {
    attributionFirstMs = await timed(attr);
    for (let i = 1; i < req.warmup; i++) await attr();
    log(`attribution session ready (first call ${attributionFirstMs.toFixed(0)} ms)`);
  }
  const cpu0 = process.cpuUsage();
  const f: number[] = [];
  const a: number[] = [];
  const loopStart = performance.now();
  const minTimeMs = req.minTimeMs ?? 0;
  for (let i = 0; i < 200 && (i < req.runs || performance.now() - loopStart < minTimeMs); i++) {
    f.push(await timed(fwd));
    if (req.attribution) a.push(await timed(attr));
  }
  const cpu = process.cpuUsage(cpu0);
  const forward = stats(f);
  const attribution = req.attribution ? stats(a) : null;
  const result: MeasureResult = {
    folder: req.folder,
    tokens: req.tokens,
    threads: req.threads,
    parameters: engine.info().parameters,
    loadMs,
    forwardFirstMs,
    forward,
    attributionFirstMs,
    attribution,
    ratio: attribution ? attribution.medianMs / forward.medianMs : null,
    rssAfterLoadMiB,
    peakRssForwardMiB,
    peakRssMiB: maxRssMiB(),
    cpuUserS: cpu.user / 1e6,
    cpuSystemS: cpu.system / 1e6,
    loadavgStart,
    loadavgEnd: os.loadavg(),
  };
  await engine.dispose();
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
