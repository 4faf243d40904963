/**
 * A SentencePiece unigram tokenizer (Kudo 2018) for vocabularies given as `[piece, score]`
 * lists, as Universal Sentence Encoder lite ships its 8k vocabulary.
 *
 * Normalisation: NFKC, runs of whitespace collapsed to one space, trimmed, spaces replaced
 * by U+2581 ("▁") and one "▁" prepended. Segmentation: the Viterbi path maximising the sum
 * of piece scores (log probabilities); a character no piece covers becomes the unknown id
 * with score `min score − 10` (SentencePiece's unknown penalty), and consecutive unknowns
 * are merged into one.
 *
 * @module
 */

/** Options of {@link SentencePieceTokenizer}. */
export interface SentencePieceOptions {
  /** Ids below this are control symbols that never match text (default 0: none). */
  reservedIds?: number;
  /** Id emitted for uncovered characters (default 0). */
  unknownId?: number;
}

/** The word-boundary marker U+2581. */
export const WORD_BOUNDARY = "\u2581";

/** A SentencePiece unigram tokenizer. */
export class SentencePieceTokenizer {
  /** Number of vocabulary entries. */
  readonly size: number;
  /** Id of the unknown piece. */
  readonly unknownId: number;
  /** Pieces whose score in the vocabulary file was missing or positive (replaced, see below). */
  readonly repairedPieces: string[] = [];
  #pieces = new Map<string, { id: number; score: number }>();
  #maxChars = 1;
  #unknownScore: number;

  /**
   * Builds the tokenizer from `[piece, score]` entries (index = id). Scores that are not
   * finite negative numbers (some files lose the score of pieces with ":") are set to the
   * lowest score, so such pieces are used only when nothing else covers the text.
   */
  constructor(
    vocabulary: readonly (readonly [string, number | null])[],
    options: SentencePieceOptions = {},
  ) {
    const reserved = options.reservedIds ?? 0;
    this.unknownId = options.unknownId ?? 0;
    this.size = vocabulary.length;
    let minScore = Infinity;
    for (let id = reserved; id < vocabulary.length; id++) {
      const score = vocabulary[id][1];
      if (typeof score === "number" && Number.isFinite(score) && score <= 0) {
        minScore = Math.min(minScore, score);
      }
    }
    if (!Number.isFinite(minScore)) minScore = 0;
    for (let id = reserved; id < vocabulary.length; id++) {
      const [piece, raw] = vocabulary[id];
      let score = raw;
      if (typeof score !== "number" || !Number.isFinite(score) || score > 0) {
        this.repairedPieces.push(piece);
        score = minScore;
      }
      if (!this.#pieces.has(piece)) this.#pieces.set(piece, { id, score });
      this.#maxChars = Math.max(this.#maxChars, Array.from(piece).length);
    }
    this.#unknownScore = minScore - 10;
  }

  /** The normalised form of `text` that is segmented (see the module documentation). */
  normalize(text: string): string {
    const collapsed = text.normalize("NFKC").replace(/\s+/gu, " ").trim();
    return WORD_BOUNDARY + collapsed.replaceAll(" ", WORD_BOUNDARY);
  }

  /** The pieces of `text` (unknown stretches as `null`) with their ids. */
  segment(text: string): { piece: string | null; id: number }[] {
    const chars = Array.from(this.normalize(text));
    const n = chars.length;
    const best = new Float64Array(n + 1).fill(-Infinity);
    const fromPos = new Int32Array(n + 1).fill(-1);
    const pieceId = new Int32Array(n + 1).fill(-1); // -1 = unknown character
    best[0] = 0;
    for (let i = 0; i < n; i++) {
      if (best[i] === -Infinity) continue;
      let piece = "";
      for (let len = 1; len <= this.#maxChars && i + len <= n; len++) {
        piece += chars[i + len - 1];
        const entry = this.#pieces.get(piece);
        if (!entry) continue;
        const score = best[i] + entry.score;
        if (score > best[i + len]) {
          best[i + len] = score;
          fromPos[i + len] = i;
          pieceId[i + len] = entry.id;
        }
      }
      const unknown = best[i] + this.#unknownScore;
      if (unknown > best[i + 1]) {
        best[i + 1] = unknown;
        fromPos[i + 1] = i;
        pieceId[i + 1] = -1;
      }
    }
    const out: { piece: string | null; id: number }[] = [];
    for (let end = n; end > 0; end = fromPos[end]) {
      const start = fromPos[end];
      const id = pieceId[end];
      if (id === -1) {
        if (out.length > 0 && out[out.length - 1].piece === null) continue; // merge unknowns
        out.push({ piece: null, id: this.unknownId });
      } else {
        out.push({ piece: chars.slice(start, end).join(""), id });
      }
    }
    return out.reverse();
  }

  /** Token ids of `text`. */
  encode(text: string): number[] {
    return this.segment(text).map((s) => s.id);
  }
}
