// ESLint flat config (typescript-eslint). ESLint rather than Biome because its
// `no-restricted-imports` takes per-folder overrides, which is how the walls between the rooms
// (README, "Architecture") are enforced: `vscode` only in src/extension, `onnxruntime-node`
// only in the engine's session module, and the webview only on protocol types.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const wall = (paths, patterns = []) => ['error', { paths, patterns }];
const VSCODE = { name: 'vscode', message: 'Only src/extension may import vscode (README, "Architecture").' };
const ORT = { name: 'onnxruntime-node', message: 'Only src/engine/session.ts opens ONNX Runtime; use the Engine.' };

export default tseslint.config(
  { ignores: ['dist/**', 'out/**', 'node_modules/**', '.e2e/**', 'bench/models/**', '.cache/**', '.scratch/**', 'bench/results/**', 'test/e2e/screenshots/**', '**/*.mjs', '**/*.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-constant-condition': ['error', { checkLoops: false }],
      'no-restricted-imports': wall([VSCODE, ORT]),
    },
  },
  { files: ['src/engine/session.ts', 'test/**/*.ts', 'bench/**/*.ts'], rules: { 'no-restricted-imports': wall([VSCODE]) } },
  // Code that runs inside VS Code. Tests may open ONNX Runtime themselves, so only vscode is walled off above.
  { files: ['src/extension/**/*.ts'], rules: { 'no-restricted-imports': wall([ORT]) } },
  { files: ['test/inhost/suite.ts', 'test/e2e/**/*.ts'], rules: { 'no-restricted-imports': 'off' } },
  {
    files: ['src/models/**/*.ts', 'src/vocabulary.ts'],
    rules: { 'no-restricted-imports': wall([VSCODE, ORT], [{ group: ['**/engine/**', '**/circuits/**', '**/pipelines/**', '**/worker/**', '**/extension/**', '**/cli/**', '**/protocol/**'], message: 'src/models is the bottom room: it imports nothing of ours above it.' }]) },
  },
  {
    files: ['webview/**/*.ts'],
    rules: { 'no-restricted-imports': wall([VSCODE, ORT], [{ group: ['**/engine/engine', '**/engine/session', '**/worker/**', '**/pipelines/**', '**/extension/**', 'node:*'], message: 'The webview runs in a browser: it may use the protocol and pure data modules only.' }]) },
  },
);
