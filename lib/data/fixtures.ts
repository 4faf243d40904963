/**
 * Small synthetic IMDB-shaped archives for tests and examples that must run without the
 * real dataset: tar (+ gzip) writing with `tar-stream`, and a generator of review files in
 * the `aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt` layout.
 *
 * @module
 */
import tar from "tar-stream";
import { Random } from "../random.ts";

/** One entry to write into a tar archive. */
export interface TarEntry {
  /** Path inside the archive. */
  name: string;
  /** File contents (text is written as UTF-8); omit for a directory. */
  data?: string | Uint8Array;
  /** Entry type; default `"file"`, or `"directory"` when `data` is omitted. */
  type?: "file" | "directory" | "symlink";
  /** Target of a symlink. */
  linkname?: string;
}

/** The bytes of a tar archive holding `entries` (with the end-of-archive marker). */
export async function tarBytes(entries: TarEntry[]): Promise<Uint8Array<ArrayBuffer>> {
  const pack = tar.pack();
  const encoder = new TextEncoder();
  for (const entry of entries) {
    const type = entry.type ?? (entry.data === undefined ? "directory" : "file");
    const data = typeof entry.data === "string" ? encoder.encode(entry.data) : entry.data;
    const header = { name: entry.name, type, linkname: entry.linkname, mtime: new Date(0) };
    if (type === "file") pack.entry(header, data ?? new Uint8Array(0));
    else pack.entry(header);
  }
  pack.finalize();
  const chunks: Uint8Array[] = [];
  for await (const chunk of pack) chunks.push(chunk as Uint8Array);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** `bytes` compressed with gzip. */
export async function gzipBytes(bytes: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  const stream = ReadableStream.from([new Uint8Array(bytes)]).pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Writes `entries` as a `.tar.gz` (or a plain `.tar` with `gzip: false`) to `path`. */
export async function writeTarArchive(
  path: string,
  entries: TarEntry[],
  options: { gzip?: boolean } = {},
): Promise<string> {
  const bytes = await tarBytes(entries);
  await Deno.writeFile(path, options.gzip === false ? bytes : await gzipBytes(bytes));
  return path;
}

/** Options of {@link miniImdbEntries}. */
export interface MiniImdbOptions {
  /** Reviews per split and label (default 5). */
  perFolder?: number;
  /** Seed of the ratings and words (default 1). */
  seed?: number;
  /** Also write `train/unsup/` files and the top-level extras of the real archive. */
  extras?: boolean;
}

const POSITIVE = ["great", "wonderful", "moving", "superb", "fun", "brilliant"];
const NEGATIVE = ["awful", "boring", "dull", "weak", "silly", "painful"];
const NEUTRAL = ["the", "film", "plot", "actor", "scene", "music", "story", "camera"];

/**
 * Entries of a tiny archive laid out like `aclImdb_v1.tar.gz`: `perFolder` reviews in each
 * of train/pos, train/neg, test/pos, test/neg, ids 0..perFolder-1, seeded ratings in the
 * right range, texts made of a few sentiment words with `<br /><br />` between sentences.
 */
export function miniImdbEntries(options: MiniImdbOptions = {}): TarEntry[] {
  const perFolder = options.perFolder ?? 5;
  const random = new Random(options.seed ?? 1);
  const entries: TarEntry[] = [{ name: "aclImdb/" }];
  if (options.extras) {
    entries.push(
      { name: "aclImdb/README", data: "Large Movie Review Dataset v1.0 (synthetic copy)\n" },
      { name: "aclImdb/imdb.vocab", data: "the\nfilm\n" },
      { name: "aclImdb/train/labeledBow.feat", data: "9 0:1\n" },
      { name: "aclImdb/train/urls_pos.txt", data: "http://www.imdb.com/title/tt0000000/\n" },
      { name: "aclImdb/train/unsup/" },
      { name: "aclImdb/train/unsup/0_0.txt", data: "An unlabelled review." },
    );
  }
  const word = (list: string[]) => list[random.int(list.length)];
  for (const split of ["train", "test"]) {
    entries.push({ name: `aclImdb/${split}/` });
    for (const folder of ["pos", "neg"]) {
      entries.push({ name: `aclImdb/${split}/${folder}/` });
      const sentiment = folder === "pos" ? POSITIVE : NEGATIVE;
      for (let id = 0; id < perFolder; id++) {
        const rating = folder === "pos" ? 7 + random.int(4) : 1 + random.int(4);
        const sentence = () =>
          `The ${word(NEUTRAL)} was ${word(sentiment)} and the ${word(NEUTRAL)} ${
            word(sentiment)
          }.`;
        const text = `${sentence()}<br /><br />${sentence()} ${split} ${folder} ${id}`;
        entries.push({ name: `aclImdb/${split}/${folder}/${id}_${rating}.txt`, data: text });
      }
    }
  }
  return entries;
}
