/**
 * The peers' viewer code, loaded from ../shared/peers as it is (never copied here):
 * - Neuronpedia `apps/webapp/app/[modelId]/graph/utils.ts` (formatCLTGraphData, the Cantor
 *   decoders, the upload schema), bundled with esbuild; the two webapp modules it imports that
 *   are not pinned are stubbed: `@/lib/env` (two constants) and `@/prisma/generated/zod` (types
 *   only). d3, cuid and zod come from npm.
 * - circuit-tracer `frontend/assets/util.js` and `attribution_graph/util-cg.js` (formatData), run
 *   as the browser runs them (scripts sharing a `window` global) in a Node vm context. Its page
 *   loads d3 and Anthropic's d3-jetpack (jetpack_2024-07-20.js, not pinned); Neuronpedia's
 *   d3-jetpack.ts is the TypeScript port of that same file, so it supplies `d3.nestBy`.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import * as vm from 'node:vm';
import { PEERS, REPO } from './helpers';

const NP_GRAPH = path.join(PEERS, 'neuronpedia', 'apps', 'webapp', 'app', '[modelId]', 'graph');
const CT_ASSETS = path.join(PEERS, 'circuit-tracer', 'circuit_tracer', 'frontend', 'assets');
const OUT = path.join(REPO, '.cache', 'conformance');

async function bundle(entry: string, outfile: string): Promise<string> {
  const esbuild = await import('esbuild');
  const stubs: Record<string, string> = {
    '@/lib/env': "export const DEFAULT_CREATOR_USER_ID = 'conformance-test'; export const NEXT_PUBLIC_URL = 'http://localhost:3000';",
    '@/prisma/generated/zod': 'export {};',
  };
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    logLevel: 'silent',
    nodePaths: [path.join(REPO, 'node_modules')],
    plugins: [
      {
        name: 'neuronpedia-aliases',
        setup(build) {
          build.onResolve({ filter: /^@\// }, (args) => {
            if (args.path in stubs) return { path: args.path, namespace: 'stub' };
            if (args.path === '@/app/api/graph/graph-schema.json') return { path: path.join(PEERS, 'neuronpedia', 'apps', 'webapp', 'app', 'api', 'graph', 'graph-schema.json') };
            return { errors: [{ text: `conformance bundle: no mapping for ${args.path}` }] };
          });
          build.onLoad({ filter: /.*/, namespace: 'stub' }, (args) => ({ contents: stubs[args.path]!, loader: 'ts' }));
        },
      },
    ],
  });
  return outfile;
}

export interface NeuronpediaUtils {
  formatCLTGraphData(data: any, logitDiff: string | null): any;
  getLayerFromFeatureAndGraph(modelId: string, node: any, graph: any): number;
  getIndexFromFeatureAndGraph(modelId: string, node: any, graph: any): number;
  ATTRIBUTION_GRAPH_SCHEMA: object;
}

export async function loadNeuronpedia(): Promise<NeuronpediaUtils> {
  const file = await bundle(path.join(NP_GRAPH, 'utils.ts'), path.join(OUT, 'neuronpedia-utils.cjs'));
  return createRequire(__filename)(file) as NeuronpediaUtils;
}

/** circuit-tracer's `window.utilCg.formatData(data, visState)`. */
export async function loadCircuitTracer(): Promise<{ formatData(data: any, visState: any): Promise<any> }> {
  const jetpack = await bundle(path.join(NP_GRAPH, 'd3-jetpack.ts'), path.join(OUT, 'd3-jetpack.cjs'));
  const d3 = (createRequire(__filename)(jetpack) as { default: unknown }).default;
  const context: Record<string, unknown> = {
    d3,
    console,
    URL,
    URLSearchParams,
    location: new URL('http://localhost:8032/index.html'),
    history: { replaceState() {} },
    setTimeout,
    clearTimeout,
  };
  context['window'] = context;
  vm.createContext(context);
  for (const file of [path.join(CT_ASSETS, 'util.js'), path.join(CT_ASSETS, 'attribution_graph', 'util-cg.js')]) {
    vm.runInContext(fs.readFileSync(file, 'utf8'), context, { filename: file });
  }
  return (context['utilCg'] as { formatData(data: any, visState: any): Promise<any> });
}
