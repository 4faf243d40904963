/**
 * Reads PyTorch checkpoint files (`torch.save` of a `state_dict`) without Python:
 * {@link openCheckpoint} lists every tensor (name, dtype, shape) from the file's pickle, and
 * reads the values of only the tensors asked for, seeking to their bytes.
 *
 * Three layouts are recognized from the first bytes of the file:
 *
 * - **zip** (PyTorch ≥ 1.6): `<folder>/data.pkl` holds the pickle, `<folder>/data/<key>` each
 *   storage's raw bytes, `<folder>/byteorder` the byte order (little-endian when absent);
 * - **legacy** (PyTorch < 1.6, or `_use_new_zipfile_serialization=False`): a sequence of
 *   pickles (magic number, protocol version 1001, system info, the object, the list of storage
 *   keys), then each storage in that order as an 8-byte little-endian element count followed
 *   by its raw bytes;
 * - **tar** (PyTorch ≤ 0.1): a tar archive with members `sys_info`, `pickle`, `storages`
 *   and `tensors`, the tensors' sizes and strides stored in `tensors` rather than the pickle.
 *
 * Values come out as float32 in row-major order of the shape, strides and storage offsets
 * applied (a transposed view saved as such comes out transposed). The file's object may be a
 * `state_dict` or a dict holding one under `"state_dict"` or `"model"`; anything else, and any
 * Python class outside the unpickler's allow-list (`pickle.ts`), is an error naming the file.
 *
 * @module
 */
import {
  describeValue,
  PickleDict,
  PickleError,
  PickleTruncatedError,
  type PickleValue,
  type StorageRef,
  type StorageType,
  type TensorRecord,
  unpickle,
} from "./pickle.ts";
import type { StateDict, StateDictSource, TensorInfo, TorchDType } from "./types.ts";
import { RandomAccessFile, readZipDirectory, readZipEntry, type ZipEntry } from "./zip.ts";

/** Bytes per element of each storage type. */
export const ELEMENT_SIZE: Readonly<Record<TorchDType, number>> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** The layouts {@link openCheckpoint} reads (see the module doc). */
export type CheckpointFormat = "zip" | "legacy" | "tar";

/** A {@link StateDictSource} read from a checkpoint file. */
export interface CheckpointSource extends StateDictSource {
  /** The file's layout. */
  readonly format: CheckpointFormat;
  /** Bytes read from the file so far (listing and reads): a read of a few tensors is small. */
  readonly bytesRead: number;
}

/** Where one storage's bytes are: element type, length, and a reader of byte ranges. */
interface StorageData {
  dtype: TorchDType;
  numel: number;
  /** Reads `length` bytes from `start` bytes into the storage. */
  read(start: number, length: number): Promise<Uint8Array<ArrayBuffer>>;
}

/** What each layout's opener finds: the tensors of the state_dict and their storages. */
interface Layout {
  format: CheckpointFormat;
  littleEndian: boolean;
  tensors: Map<string, TensorRecord>;
  storages: Map<string, StorageData>;
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

function isRecord(v: PickleValue, kind: "storage-type"): v is StorageType;
function isRecord(v: PickleValue, kind: "tensor"): v is TensorRecord;
function isRecord(v: PickleValue, kind: string): boolean {
  return typeof v === "object" && v !== null && !Array.isArray(v) &&
    !(v instanceof Uint8Array) && !(v instanceof PickleDict) && v.kind === kind;
}

/**
 * Unpickles the pickle at `offset` of `file` (reading a growing window until it ends, but not
 * past `limit`); `what` names it in messages.
 */
async function readPickleAt(
  file: RandomAccessFile,
  offset: number,
  limit: number,
  what: string,
  persistentLoad?: (pid: PickleValue) => PickleValue,
): Promise<{ value: PickleValue; end: number }> {
  const source = `${file.path} (${what})`;
  let length = Math.min(limit - offset, 4096);
  for (;;) {
    const bytes = await file.readAt(offset, length, what);
    try {
      const result = unpickle(bytes, 0, { source, persistentLoad });
      return { value: result.value, end: offset + result.end };
    } catch (e) {
      if (!(e instanceof PickleTruncatedError)) throw e;
      if (offset + length >= limit) {
        throw new Error(
          `${file.path} is truncated: ${what} ends at byte ${limit} before its end; ` +
            `download or save the file again.`,
        );
      }
      length = Math.min(limit - offset, length * 4);
    }
  }
}

/** The `state_dict` inside the unpickled object, as name → tensor record. */
export function stateDictOf(value: PickleValue, path: string): Map<string, TensorRecord> {
  let dict = value;
  if (dict instanceof PickleDict) {
    for (const key of ["state_dict", "model"]) {
      const inner = dict.entries.get(key);
      if (inner instanceof PickleDict) {
        dict = inner;
        break;
      }
    }
  }
  if (!(dict instanceof PickleDict)) {
    throw new Error(
      `${path} holds ${describeValue(value)}, not a state_dict (a dict of tensors); ` +
        `save model.state_dict() with torch.save.`,
    );
  }
  const tensors = new Map<string, TensorRecord>();
  for (const [key, tensor] of dict.entries) {
    if (typeof key !== "string") {
      throw new Error(`${path} holds a dict with a key that is not a str: not a state_dict.`);
    }
    if (!isRecord(tensor, "tensor")) {
      throw new Error(
        `${path} holds a dict whose entry "${key}" is ${describeValue(tensor)}, not a tensor: ` +
          `not a state_dict (a dict of tensors, possibly under "state_dict" or "model").`,
      );
    }
    tensors.set(key, tensor);
  }
  return tensors;
}

/** A persistent id `('storage', StorageType, key, location, numel[, view])` as a storage ref. */
function storageRefOf(pid: PickleValue, path: string): StorageRef {
  if (!Array.isArray(pid) || pid[0] !== "storage" || pid.length < 5) {
    const what = Array.isArray(pid) && typeof pid[0] === "string" ? ` of type "${pid[0]}"` : "";
    throw new Error(
      `${path} references a persistent object${what} that is not a storage: ` +
        `not a state_dict (a pickled module?). Save model.state_dict() instead.`,
    );
  }
  const [, type, key, location, numel, view] = pid;
  if (!isRecord(type, "storage-type") || typeof numel !== "number") {
    throw new PickleError(path, `a malformed storage id (${describeValue(type)})`);
  }
  let elementOffset = 0;
  if (Array.isArray(view) && typeof view[1] === "number") elementOffset = view[1];
  return {
    kind: "storage",
    key: String(key),
    dtype: type.dtype,
    numel,
    location: String(location),
    elementOffset,
  };
}

/** Opens a zip-format checkpoint (see the module doc). */
async function openZip(file: RandomAccessFile): Promise<Layout> {
  const entries = await readZipDirectory(file);
  const pkl = entries.find((e) => /^([^/]+\/)?data\.pkl$/.test(e.name));
  if (!pkl) {
    throw new Error(
      `${file.path} is a zip archive without a data.pkl record: not a PyTorch checkpoint ` +
        `written by torch.save.`,
    );
  }
  const prefix = pkl.name.slice(0, -"data.pkl".length);
  const byName = new Map<string, ZipEntry>(entries.map((e) => [e.name, e]));
  let littleEndian = true;
  const order = byName.get(`${prefix}byteorder`);
  if (order) {
    const text = new TextDecoder().decode(await readZipEntry(file, order)).trim();
    if (text !== "little" && text !== "big") {
      throw new Error(`${file.path}: unknown byte order "${text}" in ${order.name}.`);
    }
    littleEndian = text === "little";
  }
  const storages = new Map<string, StorageData>();
  const persistentLoad = (pid: PickleValue): PickleValue => {
    const ref = storageRefOf(pid, file.path);
    if (!storages.has(ref.key)) {
      const entry = byName.get(`${prefix}data/${ref.key}`);
      if (!entry) {
        throw new Error(`${file.path} lacks the record ${prefix}data/${ref.key}; damaged file?`);
      }
      storages.set(ref.key, {
        dtype: ref.dtype,
        numel: ref.numel,
        read: (start, length) => readZipEntry(file, entry, start, length),
      });
    }
    return ref;
  };
  const bytes = await readZipEntry(file, pkl);
  const { value } = unpickle(bytes, 0, { source: `${file.path} (${pkl.name})`, persistentLoad });
  return { format: "zip", littleEndian, tensors: stateDictOf(value, file.path), storages };
}

/** Opens a legacy pickle-sequence checkpoint (see the module doc). */
async function openLegacy(file: RandomAccessFile): Promise<Layout> {
  const size = file.size;
  let magic;
  try {
    magic = await readPickleAt(file, 0, size, "the magic number");
  } catch (e) {
    if (e instanceof PickleError) throw notACheckpoint(file.path, (e as Error).message);
    throw e;
  }
  if (magic.value !== LEGACY_MAGIC) {
    throw notACheckpoint(file.path, `it starts with a pickle of ${describeValue(magic.value)}`);
  }
  const version = await readPickleAt(file, magic.end, size, "the protocol version");
  if (version.value !== LEGACY_PROTOCOL) {
    throw new Error(
      `${file.path}: unknown legacy protocol version ${String(version.value)} ` +
        `(expected ${LEGACY_PROTOCOL}).`,
    );
  }
  const sysInfo = await readPickleAt(file, version.end, size, "the system info");
  const info = sysInfo.value instanceof PickleDict ? sysInfo.value.entries : undefined;
  const littleEndian = info?.get("little_endian") !== false;
  const refs = new Map<string, StorageRef>();
  const object = await readPickleAt(file, sysInfo.end, size, "the state_dict pickle", (pid) => {
    const ref = storageRefOf(pid, file.path);
    refs.set(ref.key, ref);
    return ref;
  });
  const tensors = stateDictOf(object.value, file.path);
  const keys = await readPickleAt(file, object.end, size, "the list of storage keys");
  if (!Array.isArray(keys.value)) {
    throw new Error(`${file.path}: the storage key list is ${describeValue(keys.value)}.`);
  }
  const storages = new Map<string, StorageData>();
  let at = keys.end;
  for (const rawKey of keys.value) {
    const key = String(rawKey);
    const ref = refs.get(key);
    if (!ref) throw new Error(`${file.path}: storage ${key} is listed but never referenced.`);
    storages.set(key, legacyStorage(file, ref, at, littleEndian));
    at += 8 + ref.numel * ELEMENT_SIZE[ref.dtype];
  }
  if (at > size) {
    throw new Error(
      `${file.path} is truncated: its storages end at byte ${at} but the file has ${size} ` +
        `bytes; download or save it again.`,
    );
  }
  return { format: "legacy", littleEndian, tensors, storages };
}

/**
 * A storage of the legacy formats at `offset`: an 8-byte element count (checked on the first
 * read) followed by the bytes.
 */
function legacyStorage(
  file: RandomAccessFile,
  ref: { key: string; dtype: TorchDType; numel: number },
  offset: number,
  littleEndian: boolean,
): StorageData {
  let checked = false;
  return {
    dtype: ref.dtype,
    numel: ref.numel,
    read: async (start, length) => {
      if (!checked) {
        const head = await file.readAt(offset, 8, `the header of storage ${ref.key}`);
        const count = new DataView(head.buffer).getBigInt64(0, littleEndian);
        if (count !== BigInt(ref.numel)) {
          throw new Error(
            `${file.path} is damaged: storage ${ref.key} at byte ${offset} records ${count} ` +
              `elements, its pickle says ${ref.numel}; download or save it again.`,
          );
        }
        checked = true;
      }
      return file.readAt(offset + 8 + start, length, `storage ${ref.key}`);
    },
  };
}

/** A member of a tar archive: where its bytes lie. */
interface TarMember {
  offset: number;
  size: number;
}

/** Lists the members of a tar archive (ustar, with pax headers), reading headers only. */
async function readTar(file: RandomAccessFile): Promise<Map<string, TarMember>> {
  const members = new Map<string, TarMember>();
  const text = new TextDecoder();
  const field = (b: Uint8Array, start: number, length: number) => {
    const s = b.subarray(start, start + length);
    const end = s.indexOf(0);
    return text.decode(end < 0 ? s : s.subarray(0, end));
  };
  let at = 0;
  let pax: Record<string, string> = {};
  while (at + 512 <= file.size) {
    const header = await file.readAt(at, 512, "a tar header");
    if (header.every((b) => b === 0)) break;
    const prefix = field(header, 345, 155);
    let name = (prefix ? `${prefix}/` : "") + field(header, 0, 100);
    let size = parseInt(field(header, 124, 12).trim() || "0", 8);
    const type = String.fromCharCode(header[156] || 0x30);
    if (pax.path) name = pax.path;
    if (pax.size) size = Number(pax.size);
    if (!Number.isFinite(size)) throw new Error(`${file.path}: a damaged tar header at ${at}.`);
    const offset = at + 512;
    if (offset + size > file.size) {
      throw new Error(
        `${file.path} is truncated: tar member "${name}" ends at byte ${offset + size} but the ` +
          `file has ${file.size} bytes; download it again.`,
      );
    }
    pax = {};
    if (type === "x") {
      const records = text.decode(await file.readAt(offset, size, "a pax header"));
      for (const m of records.matchAll(/\d+ ([^=]+)=([^\n]*)\n/g)) pax[m[1]] = m[2];
    } else if (type === "0" || type === "\0") {
      members.set(name.replace(/^\.\//, ""), { offset, size });
    }
    at = offset + Math.ceil(size / 512) * 512;
  }
  return members;
}

/** Reads the `storages` member of a tar checkpoint: each storage's place, then the views. */
async function readTarStorages(
  file: RandomAccessFile,
  member: TarMember,
  littleEndian: boolean,
): Promise<Map<string, StorageData>> {
  const end = member.offset + member.size;
  const count = await readPickleAt(file, member.offset, end, "the storage count");
  const storages = new Map<string, StorageData>();
  let at = count.end;
  for (let i = 0; i < Number(count.value); i++) {
    const args = await readPickleAt(file, at, end, `the header of storage ${i}`);
    const [key, , type] = Array.isArray(args.value) ? args.value : [];
    if (type === undefined || !isRecord(type, "storage-type")) {
      throw new PickleError(file.path, `storage ${i} has a malformed header`);
    }
    const head = await file.readAt(args.end, 8, `the length of storage ${i}`);
    const numel = Number(new DataView(head.buffer).getBigInt64(0, littleEndian));
    const ref = { key: String(key), dtype: type.dtype, numel };
    storages.set(ref.key, legacyStorage(file, ref, args.end, littleEndian));
    at = args.end + 8 + numel * ELEMENT_SIZE[type.dtype];
  }
  const views = await readPickleAt(file, at, end, "the storage views");
  for (const view of Array.isArray(views.value) ? views.value : []) {
    const [target, root, offset, numel] = Array.isArray(view) ? view : [];
    const base = storages.get(String(root));
    if (!base || typeof offset !== "number" || typeof numel !== "number") {
      throw new PickleError(file.path, `a malformed storage view of ${String(root)}`);
    }
    const skip = offset * ELEMENT_SIZE[base.dtype];
    storages.set(String(target), {
      dtype: base.dtype,
      numel,
      read: (start, length) => base.read(skip + start, length),
    });
  }
  return storages;
}

/** Reads the `tensors` member of a tar checkpoint: each tensor's storage, size and stride. */
async function readTarTensors(
  file: RandomAccessFile,
  member: TarMember,
  storages: Map<string, StorageData>,
  littleEndian: boolean,
): Promise<Map<string, TensorRecord>> {
  const end = member.offset + member.size;
  const count = await readPickleAt(file, member.offset, end, "the tensor count");
  const tensors = new Map<string, TensorRecord>();
  let at = count.end;
  for (let i = 0; i < Number(count.value); i++) {
    const args = await readPickleAt(file, at, end, `the header of tensor ${i}`);
    const [key, storageId] = Array.isArray(args.value) ? args.value : [];
    const storage = storages.get(String(storageId));
    if (!storage) throw new PickleError(file.path, `tensor ${i} names no known storage`);
    const ndimBytes = await file.readAt(args.end, 8, `the rank of tensor ${i}`);
    const ndim = new DataView(ndimBytes.buffer).getInt32(0, littleEndian);
    const body = await file.readAt(args.end + 8, 16 * ndim + 8, `the shape of tensor ${i}`);
    const view = new DataView(body.buffer);
    const int = (j: number) => Number(view.getBigInt64(8 * j, littleEndian));
    tensors.set(String(key), {
      kind: "tensor",
      storage: {
        kind: "storage",
        key: String(storageId),
        dtype: storage.dtype,
        numel: storage.numel,
        location: "cpu",
        elementOffset: 0,
      },
      size: Array.from({ length: ndim }, (_, j) => int(j)),
      stride: Array.from({ length: ndim }, (_, j) => int(ndim + j)),
      storageOffset: int(2 * ndim),
    });
    at = args.end + 8 + 16 * ndim + 8;
  }
  return tensors;
}

/** Opens a tar-layout checkpoint of PyTorch ≤ 0.1 (see the module doc). */
async function openTar(file: RandomAccessFile): Promise<Layout> {
  const members = await readTar(file);
  const member = (name: string) => {
    const m = members.get(name);
    if (!m) throw new Error(`${file.path} is a tar archive without "${name}": not a checkpoint.`);
    return m;
  };
  const info = member("sys_info");
  const sysInfo = await readPickleAt(file, info.offset, info.offset + info.size, "sys_info");
  const littleEndian = !(sysInfo.value instanceof PickleDict) ||
    sysInfo.value.entries.get("little_endian") !== false;
  const storages = await readTarStorages(file, member("storages"), littleEndian);
  const byKey = await readTarTensors(file, member("tensors"), storages, littleEndian);
  const pickle = member("pickle");
  const object = await readPickleAt(
    file,
    pickle.offset,
    pickle.offset + pickle.size,
    "the state_dict pickle",
    (pid) => {
      const tensor = Array.isArray(pid) ? undefined : byKey.get(String(pid));
      if (!tensor) {
        throw new Error(`${file.path} references ${describeValue(pid)}, not a saved tensor.`);
      }
      return tensor;
    },
  );
  return { format: "tar", littleEndian, tensors: stateDictOf(object.value, file.path), storages };
}

function notACheckpoint(path: string, detail: string): Error {
  return new Error(
    `${path} is not a PyTorch checkpoint (${detail}); expected a file written by torch.save ` +
      `(zip, legacy or tar layout).`,
  );
}

/** Which layout `head` (the file's first bytes) starts. */
function detectFormat(head: Uint8Array, path: string): CheckpointFormat {
  const ascii = (start: number, length: number) =>
    String.fromCharCode(...head.subarray(start, start + length));
  if (ascii(0, 4) === "PK\x03\x04" || ascii(0, 4) === "PK\x05\x06") return "zip";
  if (head.length >= 262 && ascii(257, 5) === "ustar") return "tar";
  if (head[0] === 0x80) return "legacy";
  const shown = Array.from(head.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join(" ");
  throw notACheckpoint(path, head.length === 0 ? "it is empty" : `it starts with ${shown}`);
}

/**
 * Opens the PyTorch checkpoint at `path` (zip, legacy or tar layout; see the module doc) and
 * lists its tensors without reading their values. Errors name the file: a file that is not a
 * checkpoint, a truncated one, a class outside the allow-list, an object that is not a
 * state_dict. Call `close()` when done.
 */
export async function openCheckpoint(path: string): Promise<CheckpointSource> {
  const file = await RandomAccessFile.open(path);
  try {
    const head = await file.readAt(0, Math.min(file.size, 512), "the header");
    const format = detectFormat(head, path);
    const layout = format === "zip"
      ? await openZip(file)
      : format === "tar"
      ? await openTar(file)
      : await openLegacy(file);
    return checkpointSource(file, layout);
  } catch (e) {
    file.close();
    throw e;
  }
}

/** The {@link CheckpointSource} over an opened layout. */
function checkpointSource(file: RandomAccessFile, layout: Layout): CheckpointSource {
  const entries = new Map<string, TensorInfo>();
  for (const [name, t] of layout.tensors) {
    entries.set(name, { dtype: t.storage.dtype, shape: t.size.slice() });
  }
  let closed = false;
  return {
    format: layout.format,
    entries,
    description: file.path,
    get bytesRead() {
      return file.bytesRead;
    },
    read: async (keys) => {
      if (closed) throw new Error(`${file.path} was closed; open it again to read tensors.`);
      const missing = keys.filter((k) => !layout.tensors.has(k));
      if (missing.length > 0) {
        const known = [...layout.tensors.keys()];
        const shown = known.slice(0, 8).join(", ") + (known.length > 8 ? ", …" : "");
        throw new Error(
          `${file.path} has no tensor ${missing.map((k) => `"${k}"`).join(", ")} ` +
            `(it has ${known.length}: ${shown}).`,
        );
      }
      const out: StateDict = new Map();
      for (const key of keys) {
        out.set(key, await readTensor(file.path, key, layout.tensors.get(key)!, layout));
      }
      return out;
    },
    close: () => {
      if (!closed) file.close();
      closed = true;
    },
  };
}

/** Reads one tensor's values: the span of its storage it covers, decoded and gathered. */
async function readTensor(
  path: string,
  name: string,
  record: TensorRecord,
  layout: Layout,
): Promise<{ dtype: TorchDType; shape: number[]; data: Float32Array }> {
  const { size, stride } = record;
  const dtype = record.storage.dtype;
  const numel = size.reduce((a, b) => a * b, 1);
  if (size.some((s) => s < 0) || stride.some((s) => s < 0)) {
    throw new Error(`${path}: tensor "${name}" has a negative size or stride.`);
  }
  if (numel === 0) return { dtype, shape: size.slice(), data: new Float32Array(0) };
  const storage = layout.storages.get(record.storage.key);
  if (!storage) throw new Error(`${path}: tensor "${name}" names a storage not in the file.`);
  const first = record.storage.elementOffset + record.storageOffset;
  const span = 1 + size.reduce((sum, s, d) => sum + (s - 1) * stride[d], 0);
  if (first + span > storage.numel) {
    throw new Error(
      `${path} is damaged: tensor "${name}" reaches element ${first + span} of a storage of ` +
        `${storage.numel} elements.`,
    );
  }
  const itemSize = ELEMENT_SIZE[dtype];
  const bytes = await storage.read(first * itemSize, span * itemSize);
  const values = decodeElements(bytes, dtype, layout.littleEndian);
  return { dtype, shape: size.slice(), data: gather(values, size, stride, numel) };
}

/** A float16 bit pattern as a number. */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** Decodes raw storage bytes of `dtype` to float32 (int64 beyond 2^53 rounds). */
export function decodeElements(
  bytes: Uint8Array<ArrayBuffer>,
  dtype: TorchDType,
  littleEndian = true,
): Float32Array {
  const n = bytes.length / ELEMENT_SIZE[dtype];
  const le = littleEndian;
  if (dtype === "float32" && le && bytes.byteOffset % 4 === 0) {
    return new Float32Array(bytes.buffer, bytes.byteOffset, n);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  switch (dtype) {
    case "float32":
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, le);
      break;
    case "float64":
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, le);
      break;
    case "float16":
      for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(2 * i, le));
      break;
    case "bfloat16": {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = view.getUint16(2 * i, le) << 16;
      break;
    }
    case "int64":
      for (let i = 0; i < n; i++) {
        const [hi, lo] = le ? [8 * i + 4, 8 * i] : [8 * i, 8 * i + 4];
        out[i] = view.getInt32(hi, le) * 2 ** 32 + view.getUint32(lo, le);
      }
      break;
    case "int32":
      for (let i = 0; i < n; i++) out[i] = view.getInt32(4 * i, le);
      break;
    case "int16":
      for (let i = 0; i < n; i++) out[i] = view.getInt16(2 * i, le);
      break;
    case "int8":
      for (let i = 0; i < n; i++) out[i] = view.getInt8(i);
      break;
    case "uint8":
      out.set(bytes);
      break;
    case "bool":
      for (let i = 0; i < n; i++) out[i] = bytes[i] ? 1 : 0;
      break;
  }
  return out;
}

/** Whether `stride` is row-major contiguous for `size` (strides of size-1 dims do not count). */
function isContiguous(size: number[], stride: number[]): boolean {
  let expected = 1;
  for (let d = size.length - 1; d >= 0; d--) {
    if (size[d] !== 1 && stride[d] !== expected) return false;
    expected *= size[d];
  }
  return true;
}

/** The `numel` elements of a strided tensor over `values` (its span), in row-major order. */
function gather(values: Float32Array, size: number[], stride: number[], numel: number) {
  if (isContiguous(size, stride)) return values.length === numel ? values : values.slice(0, numel);
  const out = new Float32Array(numel);
  const nd = size.length;
  const inner = size[nd - 1];
  const innerStride = stride[nd - 1];
  const index = new Array<number>(nd).fill(0);
  let src = 0;
  for (let o = 0; o < numel; o += inner) {
    for (let j = 0; j < inner; j++) out[o + j] = values[src + j * innerStride];
    for (let d = nd - 2; d >= 0; d--) {
      index[d]++;
      src += stride[d];
      if (index[d] < size[d]) break;
      src -= stride[d] * size[d];
      index[d] = 0;
    }
  }
  return out;
}
