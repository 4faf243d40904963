/**
 * Random access to the files PyTorch checkpoints are made of: {@link RandomAccessFile} reads
 * byte ranges of an open file (counting what it read), and {@link readZipDirectory} lists a
 * zip archive as `torch.save` (PyTorch ≥ 1.6) writes it: stored (uncompressed) entries, with
 * zip64 records when the file or an entry passes 4 GiB. Only the central directory is read
 * when the archive is opened; an entry's data offset is found from its local header when the
 * entry is read, so reading one tensor of a 500 MB file reads that tensor's bytes only.
 *
 * @module
 */

/** A file opened for reads at any offset; reads are serialized, so concurrent calls are safe. */
export class RandomAccessFile {
  /** The file's path, for messages. */
  readonly path: string;
  /** The file's size in bytes. */
  readonly size: number;
  /** Bytes read so far (all calls of {@link RandomAccessFile.readAt}). */
  bytesRead = 0;
  #file: Deno.FsFile;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(path: string, file: Deno.FsFile, size: number) {
    this.path = path;
    this.#file = file;
    this.size = size;
  }

  /** Opens `path` for reading. */
  static async open(path: string): Promise<RandomAccessFile> {
    const file = await Deno.open(path, { read: true });
    try {
      const { size } = await file.stat();
      return new RandomAccessFile(path, file, size);
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /**
   * Reads `length` bytes at `offset`. A range past the end of the file is an error naming the
   * file and `what` (the record being read): the file is truncated.
   */
  readAt(offset: number, length: number, what = "data"): Promise<Uint8Array<ArrayBuffer>> {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      return Promise.reject(
        new Error(
          `${this.path} is truncated or damaged: ${what} lies at bytes ${offset}–` +
            `${offset + length} but the file has ${this.size} bytes; download it again.`,
        ),
      );
    }
    const run = this.#queue.then(() => this.#read(offset, length));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #read(offset: number, length: number): Promise<Uint8Array<ArrayBuffer>> {
    const out = new Uint8Array(length);
    await this.#file.seek(offset, Deno.SeekMode.Start);
    let done = 0;
    while (done < length) {
      const n = await this.#file.read(out.subarray(done));
      if (n === null) {
        throw new Error(`${this.path} ended at byte ${offset + done} while reading; truncated?`);
      }
      done += n;
    }
    this.bytesRead += length;
    return out;
  }

  /** Closes the file. */
  close(): void {
    this.#file.close();
  }
}

/** One entry of a zip archive's central directory. */
export interface ZipEntry {
  /** The entry's name (`archive/data/0`). */
  name: string;
  /** Offset of its local file header. */
  headerOffset: number;
  /** Stored size (equal to {@link ZipEntry.size} for stored entries). */
  compressedSize: number;
  /** Uncompressed size. */
  size: number;
  /** Compression method (0: stored). */
  method: number;
  /** CRC-32 of the uncompressed bytes. */
  crc32: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX32 = 0xffffffff;

function u64(view: DataView, at: number): number {
  return Number(view.getBigUint64(at, true));
}

/** Where the central directory lies and how many entries it has. */
async function findCentralDirectory(
  file: RandomAccessFile,
): Promise<{ offset: number; size: number; count: number }> {
  // The end record is the last 22 bytes unless an archive comment follows it (up to 64 KiB):
  // look in the last KiB first, then in the longest tail a comment allows.
  let view = new DataView(new ArrayBuffer(0));
  let at = -1;
  for (const tailLength of [Math.min(file.size, 1024), Math.min(file.size, 20 + 22 + 0xffff)]) {
    const tail = await file.readAt(file.size - tailLength, tailLength, "the zip directory");
    view = new DataView(tail.buffer);
    at = -1;
    for (let i = tail.length - 22; i >= 0 && at < 0; i--) {
      if (view.getUint32(i, true) === EOCD) at = i;
    }
    // Keep room for a zip64 locator (20 bytes) before the end record, unless at the file start.
    if (at >= 20 || (at >= 0 && tailLength === file.size)) break;
  }
  if (at < 0) {
    throw new Error(
      `${file.path} is a truncated or damaged zip archive (no end-of-central-directory record); ` +
        `download or save it again.`,
    );
  }
  let count = view.getUint16(at + 10, true);
  let size = view.getUint32(at + 12, true);
  let offset = view.getUint32(at + 16, true);
  if (count === 0xffff || size === MAX32 || offset === MAX32) {
    const locatorAt = at - 20;
    if (locatorAt < 0 || view.getUint32(locatorAt, true) !== ZIP64_LOCATOR) {
      throw new Error(`${file.path}: a zip64 archive without its zip64 locator; damaged file?`);
    }
    const recordAt = u64(view, locatorAt + 8);
    const record = new DataView((await file.readAt(recordAt, 56, "the zip64 directory")).buffer);
    if (record.getUint32(0, true) !== ZIP64_EOCD) {
      throw new Error(`${file.path}: no zip64 end-of-central-directory record; damaged file?`);
    }
    count = u64(record, 32);
    size = u64(record, 40);
    offset = u64(record, 48);
  }
  return { offset, size, count };
}

/** Applies a zip64 extra field (id 1) to the 32-bit fields that overflowed. */
function applyZip64(entry: ZipEntry, extra: DataView, path: string): void {
  let at = 0;
  while (at + 4 <= extra.byteLength) {
    const id = extra.getUint16(at, true);
    const length = extra.getUint16(at + 2, true);
    if (id === 1) {
      let field = at + 4;
      const next = () => {
        if (field + 8 > at + 4 + length) {
          throw new Error(`${path}: the zip64 field of ${entry.name} is too short`);
        }
        const v = u64(extra, field);
        field += 8;
        return v;
      };
      if (entry.size === MAX32) entry.size = next();
      if (entry.compressedSize === MAX32) entry.compressedSize = next();
      if (entry.headerOffset === MAX32) entry.headerOffset = next();
      return;
    }
    at += 4 + length;
  }
}

/** Reads the central directory of the zip archive `file`: every entry, in directory order. */
export async function readZipDirectory(file: RandomAccessFile): Promise<ZipEntry[]> {
  const { offset, size, count } = await findCentralDirectory(file);
  const bytes = await file.readAt(offset, size, "the zip central directory");
  const view = new DataView(bytes.buffer);
  const names = new TextDecoder();
  const entries: ZipEntry[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 46 > bytes.length || view.getUint32(at, true) !== CENTRAL) {
      throw new Error(`${file.path}: zip directory entry ${i} is damaged; download it again.`);
    }
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    const entry: ZipEntry = {
      name: names.decode(bytes.subarray(at + 46, at + 46 + nameLength)),
      method: view.getUint16(at + 10, true),
      crc32: view.getUint32(at + 16, true),
      compressedSize: view.getUint32(at + 20, true),
      size: view.getUint32(at + 24, true),
      headerOffset: view.getUint32(at + 42, true),
    };
    const extraAt = at + 46 + nameLength;
    applyZip64(entry, new DataView(bytes.buffer, extraAt, extraLength), file.path);
    entries.push(entry);
    at = extraAt + extraLength + commentLength;
  }
  return entries;
}

/**
 * Offset of `entry`'s data in `file` (past its local header, whose name and extra field may
 * differ in length from the central directory's). Only stored entries can be read in place:
 * a compressed one is an error naming it.
 */
export async function zipDataOffset(file: RandomAccessFile, entry: ZipEntry): Promise<number> {
  if (entry.method !== 0) {
    throw new Error(
      `${file.path}: ${entry.name} is compressed (method ${entry.method}); PyTorch writes ` +
        `stored entries only. Was the archive re-zipped? Save it again with torch.save.`,
    );
  }
  const header = new DataView(
    (await file.readAt(entry.headerOffset, 30, `the local header of ${entry.name}`)).buffer,
  );
  if (header.getUint32(0, true) !== LOCAL) {
    throw new Error(`${file.path}: the local header of ${entry.name} is damaged.`);
  }
  return entry.headerOffset + 30 + header.getUint16(26, true) + header.getUint16(28, true);
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** The CRC-32 (zip's checksum) of `bytes`. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * Reads `entry`'s bytes, or `length` bytes of them from `start` (a part of a large storage),
 * as stored. A whole entry is checked against its CRC-32.
 */
export async function readZipEntry(
  file: RandomAccessFile,
  entry: ZipEntry,
  start = 0,
  length = entry.size - start,
): Promise<Uint8Array<ArrayBuffer>> {
  if (start < 0 || start + length > entry.size) {
    throw new Error(
      `${file.path}: bytes ${start}–${start + length} of ${entry.name} are asked for, ` +
        `but it holds ${entry.size} bytes; the file is damaged.`,
    );
  }
  const offset = await zipDataOffset(file, entry);
  const bytes = await file.readAt(offset + start, length, entry.name);
  if (start === 0 && length === entry.size && crc32(bytes) !== entry.crc32) {
    throw new Error(
      `${file.path}: ${entry.name} fails its CRC-32 check; the file is damaged, download it again.`,
    );
  }
  return bytes;
}
