/**
 * Streaming reader for `.tar` and `.tar.gz` archives: gunzip with `node:zlib`, tar parsing
 * with the maintained `tar-stream` package. Entries are handed over one by one, so an
 * archive is never extracted to disk nor held in memory as a whole.
 *
 * Entry names are never joined onto a folder here (nothing is written), but callers select
 * files by name and may build paths from them, so a hostile name anywhere in the archive (an
 * absolute path such as `/abs.txt`, a `..` component such as `../evil.txt` or `a\..\..\x`,
 * a NUL byte; the rules of `lib/safe_path.ts`) rejects the whole read with an error naming the
 * archive, the entry and why, before that entry's bytes are handed over. Link targets are
 * never followed nor handed over.
 *
 * @module
 */
import { createReadStream } from "node:fs";
import { pipeline } from "node:stream";
import { createGunzip } from "node:zlib";
import tar from "tar-stream";
import { UnsafePathError, unsafeReason } from "../safe_path.ts";

/** One regular file inside a tar archive. */
export interface TarFile {
  /**
   * Path inside the archive, without a leading `./`: always relative, without `..`
   * components or NUL bytes (an archive with another name is refused).
   */
  name: string;
  /** Size in bytes, from the tar header. */
  size: number;
}

/** Options of {@link readTarFiles}. */
export interface ReadTarOptions {
  /**
   * Decides per file whether its bytes are wanted (`true`) or skipped unread (`false`).
   * Called before the bytes are read. Default: every file.
   */
  want?: (file: TarFile) => boolean;
  /**
   * Called with each wanted file and its complete bytes, in archive order. The bytes may be
   * a view into a larger buffer: copy them to keep them. May throw: reading stops and
   * {@link readTarFiles} rejects with that error.
   */
  onFile: (file: TarFile, bytes: Uint8Array) => void;
}

const ARCHIVE_RULE = "Entries of an archive must be relative paths that stay inside it; " +
  "this archive is damaged or not the one expected.";

/** The size of a tar block; the archive ends with two zero blocks. */
const BLOCK = 512;
const END_MARKER = 2 * BLOCK;

/** Whether the file at `path` starts with the gzip magic bytes 1f 8b. */
export async function isGzipFile(path: string): Promise<boolean> {
  using file = await Deno.open(path, { read: true });
  const head = new Uint8Array(2);
  let got = 0;
  while (got < 2) {
    const n = await file.read(head.subarray(got));
    if (n === null) break;
    got += n;
  }
  return got === 2 && head[0] === 0x1f && head[1] === 0x8b;
}

/**
 * Keeps the last {@link END_MARKER} bytes of a byte stream, to check at the end that the
 * tar stream closes with its end-of-archive marker (two zero blocks). tar-stream accepts an
 * archive cut off exactly between two entries; this check does not.
 */
class Tail {
  #buffer = new Uint8Array(END_MARKER);
  #filled = 0;

  push(chunk: Uint8Array): void {
    if (chunk.length >= END_MARKER) {
      this.#buffer.set(chunk.subarray(chunk.length - END_MARKER));
      this.#filled = END_MARKER;
      return;
    }
    const keep = Math.min(this.#filled, END_MARKER - chunk.length);
    this.#buffer.copyWithin(0, this.#filled - keep, this.#filled);
    this.#buffer.set(chunk, keep);
    this.#filled = keep + chunk.length;
  }

  endsWithMarker(): boolean {
    return this.#filled === END_MARKER && this.#buffer.every((b) => b === 0);
  }
}

function concatChunks(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) {
    const [chunk] = chunks; // a Node Buffer: hand out a plain Uint8Array view of it
    return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length);
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/**
 * Streams the regular files of the `.tar` or `.tar.gz` archive at `path` (gzip is detected
 * from the magic bytes, not the name). Directories, links and other entry types are
 * skipped. Rejects with an `Error` naming the archive (and the entry, when one is involved)
 * when the gzip data is corrupt, the tar stream is truncated or malformed, an entry of any
 * type has a hostile name (an {@link UnsafePathError}: absolute, `..`, NUL; see the module
 * doc), or `onFile` throws (its error is re-thrown unchanged).
 */
export async function readTarFiles(path: string, options: ReadTarOptions): Promise<void> {
  const gzip = await isGzipFile(path);
  if (!gzip && /\.(t?gz)$/i.test(path)) {
    throw new Error(
      `${path}: corrupt gzip data: the file is not gzip data (it does not start with the ` +
        `gzip magic bytes 1f 8b). Download the archive again.`,
    );
  }
  const want = options.want ?? (() => true);
  const extract = tar.extract();
  const tail = new Tail();
  let lastEntry: string | undefined;
  let fileError: unknown;
  let tarError: Error | undefined;

  extract.on("entry", (header, stream, next) => {
    const name = header.name.replace(/^(\.\/)+/, "");
    lastEntry = name;
    // A truncated archive destroys the open entry stream with the same error that the
    // extractor reports; without a listener it would surface as an uncaught error.
    stream.on("error", () => {});
    const isFile = header.type === "file" || header.type === "contiguous-file";
    // The archive's own top folder ("./", ".") is the one name allowed to name no file.
    const isRoot = header.type === "directory" && (name === "" || name === ".");
    const unsafe = isRoot ? null : unsafeReason(name);
    if (unsafe !== null) {
      fileError ??= new UnsafePathError(`${path}: tar entry`, header.name, unsafe, ARCHIVE_RULE);
    }
    const file: TarFile = { name, size: header.size ?? 0 };
    if (!isFile || fileError !== undefined || !want(file)) {
      stream.on("end", () => next());
      stream.resume();
      return;
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    stream.on("data", (data) => {
      const chunk = data as Uint8Array;
      chunks.push(chunk);
      size += chunk.length;
    });
    stream.on("end", () => {
      try {
        options.onFile(file, concatChunks(chunks, size));
      } catch (e) {
        fileError ??= e;
      }
      next();
    });
  });
  const finished = new Promise<void>((resolve) => {
    extract.on("finish", () => resolve());
    extract.on("error", (e: Error) => {
      tarError ??= e;
      resolve();
    });
  });

  const raw = createReadStream(path, { highWaterMark: 1 << 20 });
  let source: AsyncIterable<Uint8Array> = raw;
  if (gzip) {
    const gunzip = createGunzip({ chunkSize: 1 << 17 });
    pipeline(raw, gunzip, () => {});
    source = gunzip;
  }

  const where = () => (lastEntry ? ` (after entry ${lastEntry})` : "");
  let tarBytes = 0;
  try {
    for await (const chunk of source) {
      if (tarError || fileError !== undefined || extract.destroying) break;
      tarBytes += chunk.length;
      tail.push(chunk);
      if (!extract.write(chunk) && !extract.destroying) {
        await new Promise<void>((resolve) => {
          const done = () => {
            extract.off("drain", done);
            extract.off("close", done);
            resolve();
          };
          extract.on("drain", done);
          extract.on("close", done);
        });
      }
    }
  } catch (e) {
    extract.destroy();
    raw.destroy();
    if (fileError !== undefined) throw fileError;
    const message = (e as Error).message;
    if (gzip) {
      throw new Error(
        `${path}: corrupt gzip data${
          tarBytes ? ` after ${tarBytes} decompressed bytes` : ""
        }${where()}: ${message}. ` +
          `The archive is damaged or incomplete; download it again.`,
      );
    }
    throw new Error(`${path}: could not read the archive: ${message}`);
  }
  raw.destroy();
  if (fileError !== undefined) {
    extract.destroy();
    throw fileError;
  }
  if (!tarError) extract.end(null);
  await finished;
  if (fileError !== undefined) throw fileError;
  if (tarError) {
    throw new Error(
      `${path}: truncated or corrupt tar data${where()}: ${tarError.message}. ` +
        `The archive is damaged or incomplete; download it again.`,
    );
  }
  if (!tail.endsWithMarker()) {
    throw new Error(
      `${path}: truncated tar data${where()}: the end-of-archive marker (two zero blocks) is ` +
        `missing after ${tarBytes} bytes. The archive is incomplete; download it again.`,
    );
  }
}
