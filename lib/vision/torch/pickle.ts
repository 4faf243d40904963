/**
 * A restricted unpickler for the pickles that `torch.save` writes for a `state_dict`. It reads
 * Python's pickle opcodes (protocols 2 to 4, as PyTorch's serializer and Python 2 era files use
 * them) into plain values and **never executes anything**: a `GLOBAL` resolves only the names
 * of {@link ALLOWED_GLOBALS} (`collections.OrderedDict`, PyTorch's tensor rebuild functions,
 * the storage and tensor type tags), and any other name is refused with an
 * {@link UnpickleRefusedError} that names it. `REDUCE` of a rebuild function yields a
 * {@link TensorRecord}: a description of the tensor (storage, offset, size, stride), never its
 * values; the values are read afterwards by `checkpoint.ts`, only for the tensors asked for.
 *
 * Values: `None` → `null`, `bool`, `int` → `number` (or `bigint` beyond 2^53), `float` →
 * `number`, `str` (and Python 2 `str`) → `string`, `bytes` → `Uint8Array`, list and tuple →
 * arrays, `dict` and `OrderedDict` → {@link PickleDict}, persistent ids → whatever the
 * caller's `persistentLoad` returns.
 *
 * @module
 */
import type { TorchDType } from "./types.ts";

/** A storage type tag such as `torch.FloatStorage`, resolved to its element type. */
export interface StorageType {
  kind: "storage-type";
  /** The qualified name, e.g. `"torch.FloatStorage"`. */
  name: string;
  /** The element type of the storage. */
  dtype: TorchDType;
}

/** A tensor type tag of old checkpoints (`torch.FloatTensor`), kept as its name only. */
export interface TensorType {
  kind: "tensor-type";
  /** The qualified name, e.g. `"torch.FloatTensor"`. */
  name: string;
  /** The element type of the tensor. */
  dtype: TorchDType;
}

/**
 * A storage named by a persistent id: its key in the file, element type, element count, and,
 * for a view of another storage (old files only), the element offset into that storage.
 */
export interface StorageRef {
  kind: "storage";
  /** The storage's key (`archive/data/<key>` in a zip file, a pointer string in legacy files). */
  key: string;
  /** Element type. */
  dtype: TorchDType;
  /** Elements in the storage with key {@link StorageRef.key}. */
  numel: number;
  /** Device it was saved from (`"cpu"`, `"cuda:0"`); informative only. */
  location: string;
  /** Elements to skip at the start of the storage (a view's offset; 0 otherwise). */
  elementOffset: number;
}

/** A tensor as a `_rebuild_tensor*` call describes it: where its values lie, not the values. */
export interface TensorRecord {
  kind: "tensor";
  /** The storage holding the values. */
  storage: StorageRef;
  /** Offset of the first element, in elements, from the start of the storage (or its view). */
  storageOffset: number;
  /** Shape, outermost first. */
  size: number[];
  /** Stride of each dimension, in elements. */
  stride: number[];
}

/** A global that {@link ALLOWED_GLOBALS} allowed and that is not a type tag. */
export interface PickleGlobal {
  kind: "global";
  /** The qualified name, e.g. `"collections.OrderedDict"`. */
  name: string;
}

/** A key of a {@link PickleDict}: Python's hashable values as they come out of the pickle. */
export type PickleKey = string | number | bigint | boolean | null | PickleValue[];

/** A Python `dict` or `collections.OrderedDict`, in insertion order. */
export class PickleDict {
  /** The entries, in insertion order. */
  readonly entries = new Map<PickleKey, PickleValue>();
  /** `"dict"` or `"collections.OrderedDict"`. */
  readonly className: string;
  /** The state given by `BUILD` (an `OrderedDict`'s attributes, such as `_metadata`). */
  state: PickleValue = null;

  /** An empty dict of class `className`. */
  constructor(className = "dict") {
    this.className = className;
  }
}

/** Every value the unpickler produces. */
export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | PickleDict
  | StorageType
  | TensorType
  | StorageRef
  | TensorRecord
  | PickleGlobal;

/** A pickle that could not be read (malformed, truncated, or using an unsupported opcode). */
export class PickleError extends Error {
  /** What was being read, e.g. the checkpoint's path and the record. */
  readonly source: string;
  /** Creates the error with `source: detail` as message. */
  constructor(source: string, detail: string) {
    super(`${source}: ${detail}`);
    this.name = "PickleError";
    this.source = source;
  }
}

/** The pickle ended before its `STOP` opcode: more bytes are needed (or the file is truncated). */
export class PickleTruncatedError extends PickleError {
  /** Creates the error for `source`. */
  constructor(source: string, at: number) {
    super(source, `the pickle ends at byte ${at} before its STOP opcode (truncated file?)`);
    this.name = "PickleTruncatedError";
  }
}

/** A pickle that names a global outside {@link ALLOWED_GLOBALS}; nothing was executed. */
export class UnpickleRefusedError extends Error {
  /** The refused global, e.g. `"posix.system"`. */
  readonly global: string;
  /** Creates the error naming `global` and the file it came from. */
  constructor(global: string, source: string) {
    super(
      `Refusing to load "${global}" from ${source}: only state_dict tensors are read. ` +
        `Save the model's state_dict (torch.save(model.state_dict(), path)) rather than ` +
        `objects of other classes, or load this file in Python if it is trusted.`,
    );
    this.name = "UnpickleRefusedError";
    this.global = global;
  }
}

const STORAGE_DTYPES: Record<string, TorchDType> = {
  Float: "float32",
  Double: "float64",
  Half: "float16",
  BFloat16: "bfloat16",
  Long: "int64",
  Int: "int32",
  Short: "int16",
  Char: "int8",
  Byte: "uint8",
  Bool: "bool",
};

/** The rebuild functions and classes a state_dict pickle may call. */
const CALLABLES = [
  "collections.OrderedDict",
  "torch._utils._rebuild_tensor",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_parameter",
  "torch._utils._rebuild_parameter_with_state",
] as const;

/**
 * The only globals a pickle may name: {@link CALLABLES}, the storage classes
 * (`torch.FloatStorage`, …) and, for the oldest files, the tensor classes (`torch.FloatTensor`,
 * …) used as type tags.
 */
export const ALLOWED_GLOBALS: readonly string[] = [
  ...CALLABLES,
  ...Object.keys(STORAGE_DTYPES).map((t) => `torch.${t}Storage`),
  ...Object.keys(STORAGE_DTYPES).map((t) => `torch.${t}Tensor`),
];

/** Resolves an allowed global to its value, or refuses it. */
function resolveGlobal(module: string, name: string, source: string): PickleValue {
  const full = `${module}.${name}`;
  if (!ALLOWED_GLOBALS.includes(full)) throw new UnpickleRefusedError(full, source);
  const type = /^torch\.(\w+?)(Storage|Tensor)$/.exec(full);
  if (type) {
    const dtype = STORAGE_DTYPES[type[1]];
    return { kind: type[2] === "Storage" ? "storage-type" : "tensor-type", name: full, dtype };
  }
  return { kind: "global", name: full };
}

/** Options of {@link unpickle}. */
export interface UnpickleOptions {
  /** What is read, for messages: the file and the record (`"model.pth (data.pkl)"`). */
  source: string;
  /** Turns a persistent id (`BINPERSID`) into a value; without it, a persistent id is an error. */
  persistentLoad?: (pid: PickleValue) => PickleValue;
}

/** What {@link unpickle} returns: the value and the offset just past the `STOP` opcode. */
export interface UnpickleResult {
  /** The unpickled value. */
  value: PickleValue;
  /** Offset of the first byte after the pickle. */
  end: number;
}

function isKind<K extends string>(v: PickleValue, kind: K): v is Extract<PickleValue, { kind: K }> {
  return typeof v === "object" && v !== null && !Array.isArray(v) &&
    !(v instanceof Uint8Array) && !(v instanceof PickleDict) && v.kind === kind;
}

/** A short description of a value for messages (`"a list of 3 items"`, `"a str"`). */
export function describeValue(v: PickleValue): string {
  if (v === null) return "None";
  if (typeof v === "boolean") return "a bool";
  if (typeof v === "number") return Number.isInteger(v) ? "an int" : "a float";
  if (typeof v === "bigint") return "an int";
  if (typeof v === "string") return "a str";
  if (v instanceof Uint8Array) return "bytes";
  if (Array.isArray(v)) return `a list or tuple of ${v.length} item${v.length === 1 ? "" : "s"}`;
  if (v instanceof PickleDict) {
    const n = v.entries.size;
    return `a ${v.className} of ${n} ${n === 1 ? "entry" : "entries"}`;
  }
  if (v.kind === "tensor") return "a tensor";
  if (v.kind === "storage") return "a bare storage (not a tensor)";
  return `the global ${v.name}`;
}

function asInt(v: PickleValue, what: string, source: string): number {
  if (typeof v === "bigint" && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(2 ** 53)) {
    return Number(v);
  }
  if (typeof v !== "number" || !Number.isInteger(v)) {
    throw new PickleError(source, `${what} should be an int, found ${describeValue(v)}`);
  }
  return v;
}

function asInts(v: PickleValue, what: string, source: string): number[] {
  if (!Array.isArray(v)) {
    throw new PickleError(source, `${what} should be a tuple of ints, found ${describeValue(v)}`);
  }
  return v.map((x) => asInt(x, what, source));
}

/** `_rebuild_tensor(storage, offset, size, stride, …)` as a {@link TensorRecord}. */
function rebuildTensor(args: PickleValue[], source: string): TensorRecord {
  const [storage, offset, size, stride] = args;
  if (storage === undefined || !isKind(storage, "storage")) {
    throw new PickleError(
      source,
      `a tensor's first argument should be a storage, found ${
        storage === undefined ? "nothing" : describeValue(storage)
      }`,
    );
  }
  const record: TensorRecord = {
    kind: "tensor",
    storage,
    storageOffset: asInt(offset ?? null, "a tensor's storage offset", source),
    size: asInts(size ?? null, "a tensor's size", source),
    stride: asInts(stride ?? null, "a tensor's stride", source),
  };
  if (record.size.length !== record.stride.length) {
    throw new PickleError(source, `a tensor has ${record.size.length} sizes but other strides`);
  }
  return record;
}

/** Applies an allowed callable (`REDUCE` or `NEWOBJ`) to its arguments; executes nothing. */
function call(fn: PickleValue, args: PickleValue, source: string): PickleValue {
  if (!isKind(fn, "global") || !Array.isArray(args)) {
    throw new PickleError(source, `cannot call ${describeValue(fn)}`);
  }
  switch (fn.name) {
    case "collections.OrderedDict": {
      const dict = new PickleDict("collections.OrderedDict");
      // Python 2 pickles an OrderedDict as OrderedDict([[key, value], …]).
      const items = args[0];
      if (Array.isArray(items)) {
        for (const pair of items) {
          if (!Array.isArray(pair) || pair.length !== 2) {
            throw new PickleError(source, "an OrderedDict item is not a (key, value) pair");
          }
          dict.entries.set(pair[0] as PickleKey, pair[1]);
        }
      }
      return dict;
    }
    case "torch._utils._rebuild_tensor":
    case "torch._utils._rebuild_tensor_v2":
      return rebuildTensor(args, source);
    case "torch._utils._rebuild_parameter":
    case "torch._utils._rebuild_parameter_with_state": {
      const data = args[0];
      if (data === undefined || !isKind(data, "tensor")) {
        throw new PickleError(source, "a parameter's data is not a tensor");
      }
      return data;
    }
  }
  throw new PickleError(source, `cannot call ${fn.name}`);
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** The decoding state of one pickle. */
class Machine {
  stack: PickleValue[] = [];
  marks: number[] = [];
  memo = new Map<number, PickleValue>();
  pos: number;
  readonly view: DataView;

  constructor(readonly bytes: Uint8Array, offset: number, readonly options: UnpickleOptions) {
    this.pos = offset;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(detail: string): never {
    throw new PickleError(this.options.source, detail);
  }

  need(n: number): number {
    if (this.pos + n > this.bytes.length) {
      throw new PickleTruncatedError(this.options.source, this.bytes.length);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8(): number {
    return this.bytes[this.need(1)];
  }
  u16(): number {
    return this.view.getUint16(this.need(2), true);
  }
  u32(): number {
    return this.view.getUint32(this.need(4), true);
  }
  u64(): number {
    const at = this.need(8);
    const v = this.view.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`a length of ${v} bytes`);
    return Number(v);
  }
  raw(n: number): Uint8Array {
    const at = this.need(n);
    return this.bytes.slice(at, at + n);
  }
  text(n: number): string {
    const at = this.need(n);
    try {
      return decoder.decode(this.bytes.subarray(at, at + n));
    } catch {
      return this.fail(`a string at byte ${at} is not valid UTF-8`);
    }
  }
  line(): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0) throw new PickleTruncatedError(this.options.source, this.bytes.length);
    return this.text(end - this.pos + 1).slice(0, -1);
  }

  pop(): PickleValue {
    if (this.stack.length === 0 || this.stack.length <= (this.marks.at(-1) ?? -1)) {
      this.fail(`stack underflow at byte ${this.pos}`);
    }
    return this.stack.pop()!;
  }
  top(): PickleValue {
    if (this.stack.length === 0) this.fail(`empty stack at byte ${this.pos}`);
    return this.stack[this.stack.length - 1];
  }
  popMark(): PickleValue[] {
    const mark = this.marks.pop();
    if (mark === undefined) this.fail(`no MARK before byte ${this.pos}`);
    return this.stack.splice(mark);
  }
  get(index: number): PickleValue {
    if (!this.memo.has(index)) this.fail(`memo entry ${index} is read before it is written`);
    return this.memo.get(index)!;
  }

  setItems(dict: PickleValue, items: PickleValue[]): void {
    if (!(dict instanceof PickleDict)) this.fail(`SETITEM on ${describeValue(dict)}`);
    if (items.length % 2 !== 0) this.fail("SETITEMS with an odd number of values");
    for (let i = 0; i < items.length; i += 2) dict.entries.set(items[i] as PickleKey, items[i + 1]);
  }
  append(list: PickleValue, items: PickleValue[]): void {
    if (!Array.isArray(list)) this.fail(`APPEND on ${describeValue(list)}`);
    list.push(...items);
  }
  build(target: PickleValue, state: PickleValue): void {
    if (target instanceof PickleDict) target.state = state;
    else if (!isKind(target, "tensor")) this.fail(`BUILD on ${describeValue(target)}`);
  }
  persistent(pid: PickleValue): PickleValue {
    if (!this.options.persistentLoad) this.fail("a persistent id where none is expected");
    return this.options.persistentLoad(pid);
  }
  long(n: number): number | bigint {
    const at = this.need(n);
    if (n === 0) return 0;
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(this.bytes[at + i]);
    if (this.bytes[at + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(v)
      : v;
  }
}

/** Runs one opcode that pushes a constant or reads the memo; returns false when not one. */
function stepValue(m: Machine, op: number): boolean {
  const s = m.stack;
  switch (op) {
    case 0x4e: // N  NONE
      s.push(null);
      break;
    case 0x88: // NEWTRUE
      s.push(true);
      break;
    case 0x89: // NEWFALSE
      s.push(false);
      break;
    case 0x4a: // J  BININT
      s.push(m.view.getInt32(m.need(4), true));
      break;
    case 0x4b: // K  BININT1
      s.push(m.u8());
      break;
    case 0x4d: // M  BININT2
      s.push(m.u16());
      break;
    case 0x8a: // LONG1
      s.push(m.long(m.u8()));
      break;
    case 0x8b: // LONG4
      s.push(m.long(m.u32()));
      break;
    case 0x47: // G  BINFLOAT (big-endian)
      s.push(m.view.getFloat64(m.need(8), false));
      break;
    case 0x58: // X  BINUNICODE
      s.push(m.text(m.u32()));
      break;
    case 0x8c: // SHORT_BINUNICODE
      s.push(m.text(m.u8()));
      break;
    case 0x8d: // BINUNICODE8
      s.push(m.text(m.u64()));
      break;
    case 0x54: // T  BINSTRING (Python 2 str, decoded as UTF-8 as torch.load does)
      s.push(m.text(m.view.getInt32(m.need(4), true)));
      break;
    case 0x55: // U  SHORT_BINSTRING
      s.push(m.text(m.u8()));
      break;
    case 0x42: // B  BINBYTES
      s.push(m.raw(m.u32()));
      break;
    case 0x43: // C  SHORT_BINBYTES
      s.push(m.raw(m.u8()));
      break;
    case 0x8e: // BINBYTES8
      s.push(m.raw(m.u64()));
      break;
    case 0x71: // q  BINPUT
      m.memo.set(m.u8(), m.top());
      break;
    case 0x72: // r  LONG_BINPUT
      m.memo.set(m.u32(), m.top());
      break;
    case 0x94: // MEMOIZE
      m.memo.set(m.memo.size, m.top());
      break;
    case 0x68: // h  BINGET
      s.push(m.get(m.u8()));
      break;
    case 0x6a: // j  LONG_BINGET
      s.push(m.get(m.u32()));
      break;
    default:
      return false;
  }
  return true;
}

/** Runs one opcode that builds containers or objects; returns false when not one. */
function stepStructure(m: Machine, op: number): boolean {
  const s = m.stack;
  const source = m.options.source;
  switch (op) {
    case 0x28: // (  MARK
      m.marks.push(s.length);
      break;
    case 0x7d: // }  EMPTY_DICT
      s.push(new PickleDict());
      break;
    case 0x64: { // d  DICT
      const dict = new PickleDict();
      m.setItems(dict, m.popMark());
      s.push(dict);
      break;
    }
    case 0x73: { // s  SETITEM
      const value = m.pop();
      const key = m.pop();
      m.setItems(m.top(), [key, value]);
      break;
    }
    case 0x75: { // u  SETITEMS
      const items = m.popMark();
      m.setItems(m.top(), items);
      break;
    }
    case 0x5d: // ]  EMPTY_LIST
    case 0x29: // )  EMPTY_TUPLE
      s.push([]);
      break;
    case 0x6c: // l  LIST
    case 0x74: // t  TUPLE
      s.push(m.popMark());
      break;
    case 0x85: // TUPLE1
      s.push([m.pop()]);
      break;
    case 0x86: { // TUPLE2
      const b = m.pop();
      s.push([m.pop(), b]);
      break;
    }
    case 0x87: { // TUPLE3
      const c = m.pop();
      const b = m.pop();
      s.push([m.pop(), b, c]);
      break;
    }
    case 0x61: { // a  APPEND
      const item = m.pop();
      m.append(m.top(), [item]);
      break;
    }
    case 0x65: { // e  APPENDS
      const items = m.popMark();
      m.append(m.top(), items);
      break;
    }
    case 0x63: { // c  GLOBAL
      const module = m.line();
      s.push(resolveGlobal(module, m.line(), source));
      break;
    }
    case 0x93: { // STACK_GLOBAL
      const name = m.pop();
      const module = m.pop();
      if (typeof module !== "string" || typeof name !== "string") {
        m.fail("STACK_GLOBAL with a name that is not a str");
      }
      s.push(resolveGlobal(module, name, source));
      break;
    }
    case 0x52: // R  REDUCE
    case 0x81: { // NEWOBJ
      const args = m.pop();
      s.push(call(m.pop(), args, source));
      break;
    }
    case 0x62: { // b  BUILD
      const state = m.pop();
      m.build(m.top(), state);
      break;
    }
    case 0x51: // Q  BINPERSID
      s.push(m.persistent(m.pop()));
      break;
    case 0x30: // 0  POP
      m.pop();
      break;
    case 0x32: // 2  DUP
      s.push(m.top());
      break;
    default:
      return false;
  }
  return true;
}

/**
 * Unpickles the pickle that starts at `offset` of `bytes`. Throws {@link PickleTruncatedError}
 * when `bytes` end before its `STOP` (read more of the file and try again),
 * {@link UnpickleRefusedError} for a global outside {@link ALLOWED_GLOBALS}, and
 * {@link PickleError} for anything malformed or unsupported.
 */
export function unpickle(
  bytes: Uint8Array,
  offset: number,
  options: UnpickleOptions,
): UnpickleResult {
  const m = new Machine(bytes, offset, options);
  for (;;) {
    const at = m.pos;
    const op = m.u8();
    if (op === 0x2e) { // .  STOP
      const value = m.pop();
      return { value, end: m.pos };
    }
    if (op === 0x80) { // PROTO
      const protocol = m.u8();
      if (protocol > 5) m.fail(`pickle protocol ${protocol} is not supported`);
    } else if (op === 0x95) { // FRAME: a length prefix; the opcodes follow inline
      m.u64();
    } else if (!stepValue(m, op) && !stepStructure(m, op)) {
      const char = op >= 0x20 && op < 0x7f ? ` ("${String.fromCharCode(op)}")` : "";
      m.fail(
        `unsupported pickle opcode 0x${op.toString(16).padStart(2, "0")}${char} at byte ${at}; ` +
          `only the opcodes of state_dict pickles are read`,
      );
    }
  }
}
