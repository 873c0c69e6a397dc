/**
 * The settings the extension contributes (package.json) against the one vocabulary
 * (src/vocabulary.ts) and the pipelines' defaults: an enum or a default declared twice can
 * drift, so every one that has a counterpart is checked here.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { DISCOVER_DEFAULTS } from '../../src/pipelines/circuits';
import { CORRECT_DEFAULTS, PRUNE_DEFAULTS } from '../../src/pipelines/pruning';
import { COMPOSITE_DOCS, EXECUTION_PROVIDER_DOCS, PRUNE_SCOPE_DOCS, TARGET_CHOICE_DOCS, WEIGHT_PRECISION_DOCS } from '../../src/vocabulary';
import { REPO } from '../helpers';

interface Setting {
  type: string;
  default?: unknown;
  enum?: string[];
  enumDescriptions?: string[];
  minimum?: number;
  maximum?: number;
}

const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
  contributes: { configuration: { properties: Record<string, Setting> }; commands: { command: string }[]; views: Record<string, { id: string }[]> };
};
const settings = pkg.contributes.configuration.properties;

function setting(key: string): Setting {
  const s = settings[key];
  assert.ok(s, `package.json contributes no setting ${key}`);
  return s;
}

describe('package.json settings and the vocabulary', () => {
  const enums: [string, Readonly<Record<string, string>>][] = [
    ['circuitLens.engine.executionProvider', EXECUTION_PROVIDER_DOCS],
    ['circuitLens.engine.weightPrecision', WEIGHT_PRECISION_DOCS],
    ['circuitLens.attribution.mode', COMPOSITE_DOCS],
    ['circuitLens.attribution.target', TARGET_CHOICE_DOCS],
    ['circuitLens.pruning.scope', PRUNE_SCOPE_DOCS],
  ];
  for (const [key, docs] of enums) {
    it(`${key}: the enum and its descriptions are the vocabulary's`, () => {
      const s = setting(key);
      assert.deepEqual(s.enum, Object.keys(docs));
      assert.deepEqual(s.enumDescriptions, Object.values(docs));
      assert.ok(s.enum!.includes(s.default as string), `default ${String(s.default)} is not in the enum`);
    });
  }

  it('every setting with an enum is checked here', () => {
    const withEnum = Object.entries(settings)
      .filter(([, s]) => s.enum !== undefined)
      .map(([key]) => key)
      .sort();
    assert.deepEqual(withEnum, enums.map(([key]) => key).sort());
  });
});

describe('package.json defaults and the pipelines', () => {
  it('circuitLens.circuits.prompts defaults to DISCOVER_DEFAULTS.n (the CLI’s --n)', () => {
    assert.equal(setting('circuitLens.circuits.prompts').default, DISCOVER_DEFAULTS.n);
  });

  it('circuitLens.attribution.mode defaults to the discovery and correction rule set', () => {
    assert.equal(setting('circuitLens.attribution.mode').default, DISCOVER_DEFAULTS.method);
    assert.equal(setting('circuitLens.attribution.mode').default, CORRECT_DEFAULTS.mode);
  });

  it('circuitLens.pruning.* default to PRUNE_DEFAULTS (the CLI’s prune flags)', () => {
    assert.equal(setting('circuitLens.pruning.scope').default, PRUNE_DEFAULTS.scope);
    assert.equal(setting('circuitLens.pruning.windows').default, PRUNE_DEFAULTS.windows);
  });

  it('the engine settings default to what the engine does without them', () => {
    assert.equal(setting('circuitLens.engine.executionProvider').default, 'auto');
    assert.equal(setting('circuitLens.engine.threads').default, 0);
  });
});

describe('package.json views and commands', () => {
  it('contributes the Runs view and the command it opens runs with', () => {
    assert.ok(pkg.contributes.views['circuitLens']!.some((v) => v.id === 'circuitLens.runs'));
    assert.ok(pkg.contributes.commands.some((c) => c.command === 'circuitLens.showRun'));
  });
});
