/**
 * A deterministic stand-in tokenizer for generator and task tests (not a model tokenizer):
 * words become one token if they have at most 7 letters and two tokens otherwise, a leading space
 * belongs to the word (as in byte-level BPE), two-digit numbers are one token each, punctuation is
 * one token. Good enough to check single-token filters and equal-length corruption.
 */
export function makeFakeEncoder(): { encode: (text: string) => number[]; vocabulary: Map<string, number> } {
  const vocabulary = new Map<string, number>();
  const idOf = (piece: string) => {
    let id = vocabulary.get(piece);
    if (id === undefined) {
      id = vocabulary.size;
      vocabulary.set(piece, id);
    }
    return id;
  };
  const encode = (text: string): number[] => {
    const ids: number[] = [];
    for (const piece of text.match(/ ?[A-Za-z]+| ?\d\d|\d| ?[^A-Za-z\d\s]| /g) ?? []) {
      const letters = piece.replace(/^ /, '');
      if (/^[A-Za-z]+$/.test(letters) && letters.length > 7) {
        ids.push(idOf(piece.slice(0, piece.length - 4)), idOf(piece.slice(piece.length - 4)));
      } else {
        ids.push(idOf(piece));
      }
    }
    return ids;
  };
  return { encode, vocabulary };
}
