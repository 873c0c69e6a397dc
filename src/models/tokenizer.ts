/**
 * The model's tokenizer, through @huggingface/tokenizers (tokenizer.json + tokenizer_config.json),
 * plus what that library does not give: each token's character span in the prompt, for editor
 * heatmaps. Spans come from decoding growing prefixes of the ids and aligning them with the text.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { InputError } from './errors';

export interface EncodedPrompt {
  readonly ids: number[];
  /** `[start, end)` character offsets of each token in the prompt. */
  readonly offsets: [number, number][];
}

export class ModelTokenizer {
  private constructor(
    private readonly tokenizer: Tokenizer,
    readonly vocabSize: number,
  ) {}

  /** Loads `tokenizer.json` from a model folder; null when the folder has none (token-id-only models). */
  static open(folder: string): ModelTokenizer | null {
    const file = path.join(folder, 'tokenizer.json');
    if (!fs.existsSync(file)) return null;
    const json = readJson(file);
    const configFile = path.join(folder, 'tokenizer_config.json');
    const config = fs.existsSync(configFile) ? readJson(configFile) : {};
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new InputError('not a JSON object', file);
    const model = (json as { model?: { type?: unknown } }).model;
    const supported = ['BPE', 'WordPiece', 'Unigram', 'WordLevel'];
    if (!model || (model.type !== undefined && !supported.includes(String(model.type)))) {
      throw new InputError(`tokenizer model type ${JSON.stringify(model?.type)} is not supported (supported: ${supported.join(', ')})`, file);
    }
    checkVocab((model as { vocab?: unknown }).vocab, model.type, file);
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(json as object, config as object);
    } catch (err) {
      throw new InputError(`cannot build the tokenizer (${(err as Error).message})`, file);
    }
    const vocab = (model as { vocab?: unknown }).vocab;
    const vocabSize = Array.isArray(vocab) ? vocab.length : Object.keys((vocab ?? {}) as object).length;
    return new ModelTokenizer(tokenizer, vocabSize);
  }

  /**
   * Encodes as the model was trained: special tokens follow tokenizer.json's post-processor
   * (Llama adds BOS; GPT-2 adds nothing). `checkIds` sees the ids before offsets are computed
   * and may refuse them by throwing.
   */
  encode(text: string, checkIds?: (ids: number[]) => void): EncodedPrompt {
    const ids = this.tokenizer.encode(text).ids;
    // Offsets cost a decode per token: refuse (e.g. a prompt past the context) before paying it.
    checkIds?.(ids);
    return { ids, offsets: this.offsets(text, ids) };
  }

  /**
   * Ids only: no character offsets (they cost a decode per token). For task files and long text;
   * a text corpus is one stream without special tokens (`specialTokens: false`).
   */
  encodeIds(text: string, specialTokens = true): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: specialTokens }).ids;
  }

  decode(ids: readonly number[]): string {
    return this.tokenizer.decode([...ids], { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  /** The text a single token stands for (decoded, so byte-level `Ġ` becomes a space). */
  tokenString(id: number): string {
    return this.decode([id]);
  }

  /**
   * The id of a target written as text (" Mary"), which must be exactly one token. A vocabulary
   * entry written as such (`ĠMary`, `▁Lily`) is accepted too.
   */
  singleTokenId(text: string): number {
    const ids = this.tokenizer.encode(text, { add_special_tokens: false }).ids;
    if (ids.length === 1) return ids[0]!;
    const exact = this.tokenizer.token_to_id(text);
    if (exact !== undefined) return exact;
    const pieces = ids.map((id) => JSON.stringify(this.tokenString(id))).join(' + ');
    throw new InputError(`${JSON.stringify(text)} is not a single token: it encodes as ${ids.length === 0 ? 'nothing' : pieces}`);
  }

  /**
   * Character spans by prefix decoding: token i covers the text between decode(ids[..i]) and
   * decode(ids[..i+1]). A token that ends inside a multi-byte character decodes to U+FFFD; its
   * span is empty and the character is given to the token that completes it.
   */
  private offsets(text: string, ids: readonly number[]): [number, number][] {
    const spans: [number, number][] = [];
    let previousEnd = 0;
    for (let i = 0; i < ids.length; i++) {
      const prefix = this.tokenizer.decode(ids.slice(0, i + 1), { skip_special_tokens: true, clean_up_tokenization_spaces: false });
      let end = alignedLength(text, prefix);
      if (end < previousEnd) end = previousEnd;
      spans.push([previousEnd, end]);
      previousEnd = end;
    }
    // Normalisers may drop characters (e.g. a leading space): close the last span at the text's end.
    if (spans.length > 0 && previousEnd < text.length) spans[spans.length - 1]![1] = text.length;
    return spans;
  }
}

/** How many characters of `text` the decoded `prefix` covers (prefix may end in U+FFFD or differ in spaces). */
function alignedLength(text: string, prefix: string): number {
  let clean = prefix;
  while (clean.endsWith('\uFFFD')) clean = clean.slice(0, -1);
  if (text.startsWith(clean)) return clean.length;
  // SentencePiece decoders drop the leading space marker; match ignoring whitespace differences.
  let t = 0;
  let p = 0;
  while (p < clean.length && t < text.length) {
    if (clean[p] === text[t]) {
      p++;
      t++;
    } else if (/\s/.test(text[t]!)) t++;
    else if (/\s/.test(clean[p]!)) p++;
    else break;
  }
  return t;
}

/**
 * The library accepts a malformed vocabulary and then encodes to undefined ids; refuse it here.
 * Unigram vocabularies are `[piece, score]` pairs, the others `{token: id}` maps.
 */
function checkVocab(vocab: unknown, type: unknown, file: string): void {
  if (type === 'Unigram') {
    if (!Array.isArray(vocab) || !vocab.every((e) => Array.isArray(e) && typeof e[0] === 'string' && typeof e[1] === 'number')) {
      throw new InputError('"model.vocab" of a Unigram tokenizer must be a list of [piece, score] pairs', file);
    }
    return;
  }
  if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab)) {
    throw new InputError(`"model.vocab" must be an object mapping tokens to ids, got ${Array.isArray(vocab) ? 'an array' : JSON.stringify(vocab)}`, file);
  }
  for (const [token, id] of Object.entries(vocab)) {
    if (!Number.isSafeInteger(id) || (id as number) < 0) {
      throw new InputError(`"model.vocab" gives token ${JSON.stringify(token)} the id ${JSON.stringify(id)}; ids must be non-negative integers`, file);
    }
  }
}

function readJson(file: string): unknown {
  let text: string;
  try {
    // A FIFO or device would block or never end: only regular files are read.
    if (!fs.statSync(file).isFile()) throw new InputError('not a regular file', file);
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError(`cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, file);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InputError(`not valid JSON (${(err as Error).message})`, file);
  }
}
