/**
 * Adam's update as a small WebAssembly SIMD function (four float32 lanes), written here as
 * bytes: the same float32 operations, in the same order, as the scalar loop of `adam.ts`, so
 * both give bit for bit the same parameters and moments (float32 `+ − × ÷ √` are correctly
 * rounded in both; the scalar loop rounds each double result to float32). The moments,
 * gradients and parameters live in the module's memory, which {@link AdamSimd} exposes as
 * `Float32Array` views.
 *
 * @module
 */

// Opcodes (WebAssembly 2.0, with the fixed-width SIMD proposal).
const LOCAL_GET = 0x20, LOCAL_SET = 0x21, LOCAL_TEE = 0x22, I32_CONST = 0x41;
const I32_ADD = 0x6a, I32_MUL = 0x6c, I32_EQZ = 0x45, I32_LT_U = 0x49, F32_CONST = 0x43;
const F32_NE = 0x5c, IF = 0x04, BLOCK = 0x02, LOOP = 0x03, BR_IF = 0x0d, END = 0x0b;
const VOID = 0x40, I32 = 0x7f, F32 = 0x7d, V128 = 0x7b;
const simd = (op: number) => [0xfd, ...leb(op)];
const V128_LOAD = [...simd(0x00), 0, 0], V128_STORE = [...simd(0x0b), 0, 0];
const F32X4_SPLAT = simd(0x13), F32X4_SQRT = simd(0xe3), F32X4_ADD = simd(0xe4);
const F32X4_SUB = simd(0xe5), F32X4_MUL = simd(0xe6), F32X4_DIV = simd(0xe7);

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

const text = (s: string) => [...leb(s.length), ...new TextEncoder().encode(s)];
const section = (id: number, body: number[]) => [id, ...leb(body.length), ...body];

// Parameters: p, g, m, v (byte offsets), n (floats, a multiple of 4), then
// b1, b2, 1−b1, 1−b2, ε, √(1−b2ᵗ), step size, weight decay.
const [P, G, M, V, N, B1, B2, OMB1, OMB2, EPS, BC2, STEP, DECAY] = [...Array(13).keys()];
// Locals: i, end; splatted constants; p, g, m', v'.
const I = 13, END_ = 14, B1V = 15, B2V = 16, OMB1V = 17, OMB2V = 18, EPSV = 19, BC2V = 20;
const STEPV = 21, DECAYV = 22, PV = 23, GV = 24, MV = 25, VV = 26;

const at = (base: number) => [LOCAL_GET, base, LOCAL_GET, I, I32_ADD];

function body(): number[] {
  const splat = (from: number, to: number) => [LOCAL_GET, from, ...F32X4_SPLAT, LOCAL_SET, to];
  // deno-fmt-ignore
  const code = [
    ...splat(B1, B1V),
    ...splat(B2, B2V),
    ...splat(OMB1, OMB1V),
    ...splat(OMB2, OMB2V),
    ...splat(EPS, EPSV),
    ...splat(BC2, BC2V),
    ...splat(STEP, STEPV),
    ...splat(DECAY, DECAYV),
    LOCAL_GET, N, I32_CONST, 4, I32_MUL, LOCAL_SET, END_,
    BLOCK, VOID,
    LOCAL_GET, END_, I32_EQZ, BR_IF, 0,
    LOOP, VOID,
    ...at(P), ...V128_LOAD, LOCAL_SET, PV,
    ...at(G), ...V128_LOAD, LOCAL_SET, GV,
    // g ← g + p·decay, when there is a decay
    LOCAL_GET, DECAY, F32_CONST, 0, 0, 0, 0, F32_NE,
    IF, VOID,
    LOCAL_GET, GV, LOCAL_GET, PV, LOCAL_GET, DECAYV, ...F32X4_MUL, ...F32X4_ADD, LOCAL_SET, GV,
    END,
    // m' = m·b1 + g·(1−b1)
    ...at(M), ...V128_LOAD, LOCAL_GET, B1V, ...F32X4_MUL,
    LOCAL_GET, GV, LOCAL_GET, OMB1V, ...F32X4_MUL, ...F32X4_ADD, LOCAL_SET, MV,
    // v' = v·b2 + (g·g)·(1−b2)
    ...at(V), ...V128_LOAD, LOCAL_GET, B2V, ...F32X4_MUL,
    LOCAL_GET, GV, LOCAL_GET, GV, ...F32X4_MUL, LOCAL_GET, OMB2V, ...F32X4_MUL,
    ...F32X4_ADD, LOCAL_SET, VV,
    ...at(M), LOCAL_GET, MV, ...V128_STORE,
    ...at(V), LOCAL_GET, VV, ...V128_STORE,
    // g's place ← p − (m' / (√v' / √(1−b2ᵗ) + ε)) · step
    ...at(G),
    LOCAL_GET, PV,
    LOCAL_GET, MV,
    LOCAL_GET, VV, ...F32X4_SQRT, LOCAL_GET, BC2V, ...F32X4_DIV, LOCAL_GET, EPSV, ...F32X4_ADD,
    ...F32X4_DIV, LOCAL_GET, STEPV, ...F32X4_MUL,
    ...F32X4_SUB,
    ...V128_STORE,
    LOCAL_GET, I, I32_CONST, 16, I32_ADD, LOCAL_TEE, I,
    LOCAL_GET, END_, I32_LT_U, BR_IF, 0,
    END,
    END,
    END,
  ];
  const locals = [2, 2, I32, 12, V128];
  return [...leb(locals.length + code.length), ...locals, ...code];
}

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const type = [1, 0x60, 13, ...Array(5).fill(I32), ...Array(8).fill(F32), 0];
  const imports = [1, ...text("env"), ...text("memory"), 0x02, 0x00, 1];
  // deno-fmt-ignore
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, type),
    ...section(2, imports),
    ...section(3, [1, 0]),
    ...section(7, [1, ...text("adam"), 0x00, 0]),
    ...section(10, [1, ...body()]),
  ]);
}

type AdamFunction = (
  p: number,
  g: number,
  m: number,
  v: number,
  n: number,
  b1: number,
  b2: number,
  oneMinusB1: number,
  oneMinusB2: number,
  epsilon: number,
  sqrtBc2: number,
  step: number,
  decay: number,
) => void;

let compiled: WebAssembly.Module | null | undefined;

/** Adam's moments, gradients and parameters in one WebAssembly memory, and the update. */
export class AdamSimd {
  /** First moments. */
  readonly m: Float32Array;
  /** Second moments. */
  readonly v: Float32Array;
  /** Gradients, replaced by the new parameter values. */
  readonly values: Float32Array;
  /** Parameters before the update. */
  readonly params: Float32Array;
  readonly #adam: AdamFunction;

  private constructor(size: number, instance: WebAssembly.Instance, memory: WebAssembly.Memory) {
    const stride = Math.ceil(size / 4) * 4; // arrays start on 16-byte boundaries
    const array = (k: number) => new Float32Array(memory.buffer, 4 * k * stride, size);
    [this.m, this.v, this.values, this.params] = [array(0), array(1), array(2), array(3)];
    this.#adam = instance.exports.adam as AdamFunction;
  }

  /** The SIMD update for `size` parameters, or undefined where WebAssembly SIMD is missing. */
  static create(size: number): AdamSimd | undefined {
    if (compiled === undefined) {
      const bytes = moduleBytes();
      compiled = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
    }
    if (compiled === null) return undefined;
    const stride = Math.ceil(size / 4) * 4;
    const memory = new WebAssembly.Memory({
      initial: Math.max(1, Math.ceil((16 * stride) / 65536)),
    });
    const instance = new WebAssembly.Instance(compiled, { env: { memory } });
    return new AdamSimd(size, instance, memory);
  }

  /**
   * Updates entries `[from, from + count)` (`count` a multiple of 4) in place: moments, and
   * `values` (gradients) replaced by the new parameters; the constants are float32 values.
   */
  update(
    from: number,
    count: number,
    constants: {
      b1: number;
      b2: number;
      oneMinusB1: number;
      oneMinusB2: number;
      epsilon: number;
      sqrtBc2: number;
      step: number;
      decay: number;
    },
  ): void {
    if (count % 4 !== 0) throw new Error(`AdamSimd.update: count ${count} is not a multiple of 4`);
    const c = constants;
    const byte = (a: Float32Array) => a.byteOffset + 4 * from;
    this.#adam(
      byte(this.params),
      byte(this.values),
      byte(this.m),
      byte(this.v),
      count,
      c.b1,
      c.b2,
      c.oneMinusB1,
      c.oneMinusB2,
      c.epsilon,
      c.sqrtBc2,
      c.step,
      c.decay,
    );
  }
}
