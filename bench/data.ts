/**
 * Bench of the data stage: time to load all 50,000 labelled reviews from the IMDB archive
 * (gunzip + tar + UTF-8 decoding + checks), reviews per second and peak memory (RSS sampled
 * every 5 ms), side by side with Python's tarfile reading the same archive
 * (bench/data_reference.py, Debian's python3) in the same run. Ends with one JSON line.
 *
 * The bench fails (exit 1, no JSON line) when the reference cannot run: a missing reference
 * is never reported as a null figure. Checked before anything is timed, with a message
 * naming the missing program or Python module and the Debian package to install.
 *
 * It also exports what the other benches share: the check of a Python reference
 * (`requirePython`, `pythonFailure`, `failureText`) and this process's peak memory and CPU
 * time (`peakRssMb`, `resetPeakRss`, `cpuSeconds`); importing it runs no bench.
 *
 * Usage: deno run -A bench/data.ts [--runs N] [--source PATH]
 * Default source: the shared labelled-only archive (see lib/data defaultImdbSource()).
 */
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";
import process from "node:process";
import { defaultImdbSource, loadImdb, splitReviews } from "../lib/data/mod.ts";

/** Peak resident memory of this process in MB (VmHWM), else the current RSS. */
export function peakRssMb(): number {
  try {
    const kb = Number(/VmHWM:\s+(\d+)/.exec(Deno.readTextFileSync("/proc/self/status"))?.[1]);
    if (kb) return kb / 1024;
  } catch { /* not Linux */ }
  return Deno.memoryUsage().rss / 2 ** 20;
}

/** Lowers this process's VmHWM to its current RSS (Linux ≥ 4.0); false where refused. */
export function resetPeakRss(): boolean {
  try {
    Deno.writeTextFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}

/** CPU seconds used by this process (all threads): /proc, else getrusage via node:process. */
export function cpuSeconds(): number {
  try {
    const fields = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
    const seconds = (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, USER_HZ
    if (Number.isFinite(seconds)) return seconds;
  } catch { /* not Linux */ }
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** The Python the references run with: Debian's own, with its python3-* packages. */
export const PYTHON = "/usr/bin/python3";

/**
 * Debian packages of the Python modules the references import, directly or through another
 * (top-level module name → package); any other module `m` is looked for as `python3-m`, and
 * a module of Python's standard library as `python3`.
 */
const DEBIAN_PACKAGES: Record<string, string> = {
  torch: "python3-torch",
  torchvision: "python3-torchvision",
  PIL: "python3-pil",
  numpy: "python3-numpy",
  scipy: "python3-scipy",
  sklearn: "python3-sklearn",
  joblib: "python3-joblib",
  threadpoolctl: "python3-threadpoolctl",
};

/** A reference tool that cannot run; the message says why and what to install. */
export class ReferenceUnavailableError extends Error {
  override name = "ReferenceUnavailableError";
}

const install = (packages: string[]) =>
  `install Debian's ${packages.join(" and ")} (sudo apt-get install ${packages.join(" ")})`;

/** The Debian package of the top-level module `module` (`stdlib`: it is in Python's own). */
function debianPackage(module: string, stdlib = false): string {
  const top = module.split(".")[0];
  return stdlib ? "python3" : DEBIAN_PACKAGES[top] ??
    `python3-${top.toLowerCase().replaceAll("_", "-")}`;
}

/** Imports each module given as an argument; on the first failure prints why and exits 3. */
const IMPORT_CHECK = `
import importlib, json, sys
for module in sys.argv[1:]:
    try:
        importlib.import_module(module)
    except BaseException as e:
        missing = (e.name if isinstance(e, ImportError) and e.name else module).split(".")[0]
        print(json.dumps({"module": module, "missing": missing,
                          "stdlib": missing in getattr(sys, "stdlib_module_names", ()),
                          "error": f"{type(e).__name__}: {e}"}))
        sys.exit(3)
`;

/**
 * Checks that `python` runs and imports every module of `modules` (e.g. `["torch"]`, or
 * `[]` for a reference that needs only the standard library); throws a
 * ReferenceUnavailableError naming the program or module that is missing and the Debian
 * package to install. `what` names the reference in the message.
 */
export async function requirePython(
  what: string,
  modules: readonly string[],
  python = PYTHON,
): Promise<void> {
  const packages = modules.map((m) => debianPackage(m));
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(python, {
      args: ["-c", IMPORT_CHECK, ...modules],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    throw new ReferenceUnavailableError(
      `${what} needs ${python}, which cannot run (${(e as Error).message}); ` +
        install([...new Set(["python3", ...packages])]),
    );
  }
  if (out.success) return;
  const stdout = new TextDecoder().decode(out.stdout).trim();
  let failed: { module: string; missing: string; stdlib: boolean; error: string } | undefined;
  try {
    failed = JSON.parse(stdout.split("\n").at(-1) ?? "");
  } catch { /* not the check's line: Python itself failed */ }
  if (!failed?.missing) {
    const stderr = new TextDecoder().decode(out.stderr).trim();
    throw new ReferenceUnavailableError(
      `${what} needs ${python}, which fails (exit ${out.code}${
        stderr ? `: ${stderr.slice(-500)}` : ""
      }); ${install([...new Set(["python3", ...packages])])}`,
    );
  }
  const pkg = debianPackage(failed.missing, failed.stdlib);
  const through = failed.missing === failed.module.split(".")[0]
    ? ""
    : ` (needed by "${failed.module}")`;
  throw new ReferenceUnavailableError(
    `${what} needs the Python module "${failed.missing}"${through}, which ${python} cannot ` +
      `import (${failed.error}); ${install([pkg])}`,
  );
}

/**
 * The error for a Python reference that exited with `code` and `stderr`: names the Debian
 * package when a module was missing, else shows the end of its standard error.
 */
export function pythonFailure(
  what: string,
  code: number,
  stderr: string,
  python = PYTHON,
): Error {
  const missing = /No module named '([^']+)'/.exec(stderr)?.[1];
  if (missing) {
    return new ReferenceUnavailableError(
      `${what} needs the Python module "${missing.split(".")[0]}", which ${python} lacks; ` +
        install([debianPackage(missing)]),
    );
  }
  return new ReferenceUnavailableError(`${what} failed (exit ${code}):\n${stderr.slice(-1500)}`);
}

/** What to print for a bench that threw `e`: the message of a missing reference, else the stack. */
export function failureText(e: unknown): string {
  if (e instanceof ReferenceUnavailableError) return e.message;
  return e instanceof Error ? e.stack ?? e.message : String(e);
}

const TARGET_SECONDS = 5;
const REFERENCE = "the Python reference (bench/data_reference.py)";

const median = (xs: number[]) => {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const mb = (bytes: number) => bytes / 2 ** 20;

/** One timed load of `source` with RSS sampled meanwhile. */
async function timedLoad(
  source: string,
): Promise<{ seconds: number; peakRss: number; count: number }> {
  let peakRss = Deno.memoryUsage().rss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
  }, 5);
  const start = performance.now();
  const reviews = await loadImdb({ source });
  const seconds = (performance.now() - start) / 1000;
  clearInterval(sampler);
  peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
  return { seconds, peakRss, count: reviews.length };
}

/** One run of the Python reference on `source` in a child process; throws when it fails. */
async function referenceLoad(source: string): Promise<{ seconds: number; peakRssMb: number }> {
  const script = fileURLToPath(new URL("./data_reference.py", import.meta.url));
  const out = await new Deno.Command(PYTHON, {
    args: [script, source],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw pythonFailure(REFERENCE, out.code, new TextDecoder().decode(out.stderr));
  }
  const stdout = new TextDecoder().decode(out.stdout).trim();
  let result: { seconds?: unknown; peak_rss_mb?: unknown } = {};
  try {
    result = JSON.parse(stdout.split("\n").at(-1) ?? "");
  } catch { /* checked below */ }
  if (typeof result.seconds !== "number" || typeof result.peak_rss_mb !== "number") {
    throw new ReferenceUnavailableError(`${REFERENCE} printed no timing: ${stdout.slice(-500)}`);
  }
  return { seconds: result.seconds, peakRssMb: result.peak_rss_mb };
}

function argument(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

/** Runs the bench; returns the exit code. */
async function main(): Promise<number> {
  const runs = Number(argument("--runs") ?? 3);
  if (!Number.isInteger(runs) || runs < 1) {
    console.error(`--runs must be a positive integer, not ${argument("--runs")}`);
    return 2;
  }
  const source = argument("--source") ?? defaultImdbSource();
  if (/^https?:/.test(source) || !existsSync(source)) {
    console.error(
      `bench/data.ts needs a local archive; ${source} is not one. Pass --source PATH or put ` +
        `the shared folder beside the project (see README).`,
    );
    return 2;
  }
  // The reference needs only Python's standard library (tarfile, gzip, hashlib, resource).
  await requirePython(REFERENCE, ["tarfile", "gzip", "hashlib", "resource"]);

  console.log(`bench data: loading ${source}, ${runs} runs, each beside the Python reference`);
  const baseRss = Deno.memoryUsage().rss;
  const ours: { seconds: number; peakRss: number; count: number }[] = [];
  const reference: { seconds: number; peakRssMb: number }[] = [];
  for (let run = 1; run <= runs; run++) {
    const r = await timedLoad(source);
    ours.push(r);
    const ref = await referenceLoad(source);
    reference.push(ref);
    console.log(
      `run ${run}: ${r.count} reviews in ${r.seconds.toFixed(2)} s ` +
        `(${(r.count / r.seconds).toFixed(0)} reviews/s), peak RSS ${
          mb(r.peakRss).toFixed(0)
        } MB | Python tarfile ${ref.seconds.toFixed(2)} s, ${ref.peakRssMb.toFixed(0)} MB`,
    );
  }

  const reviews = await loadImdb({ source });
  const splitStart = performance.now();
  splitReviews(reviews, { scheme: "paper", seed: 42 });
  splitReviews(reviews, { scheme: "standard", trainSize: 2000, testSize: 2000 });
  const splitMs = (performance.now() - splitStart) / 2;

  const loadSeconds = median(ours.map((r) => r.seconds));
  const referenceSeconds = median(reference.map((r) => r.seconds));
  const count = ours[0].count;
  const figures: Record<string, number | string> = {
    reviews: count,
    runs,
    load_seconds: Number(loadSeconds.toFixed(3)),
    load_seconds_first_run: Number(ours[0].seconds.toFixed(3)),
    reviews_per_second: Math.round(count / loadSeconds),
    peak_rss_mb_first_run: Number(mb(ours[0].peakRss).toFixed(1)),
    peak_rss_mb: Number(mb(Math.max(...ours.map((r) => r.peakRss))).toFixed(1)),
    rss_before_mb: Number(mb(baseRss).toFixed(1)),
    split_ms: Number(splitMs.toFixed(1)),
    reference: "python3 tarfile (bench/data_reference.py)",
    reference_load_seconds: Number(referenceSeconds.toFixed(3)),
    reference_peak_rss_mb: Number(Math.max(...reference.map((r) => r.peakRssMb)).toFixed(1)),
    speedup_vs_reference: Number((referenceSeconds / loadSeconds).toFixed(2)),
  };
  console.log(
    `median load ${loadSeconds.toFixed(2)} s = ${figures.reviews_per_second} reviews/s; ` +
      `peak RSS ${figures.peak_rss_mb} MB; Python tarfile ${figures.reference_load_seconds} s ` +
      `(ours is ${figures.speedup_vs_reference}x as fast); split ${figures.split_ms} ms`,
  );
  console.log(JSON.stringify({
    bench: "data",
    figures,
    targets: {
      load_seconds: {
        value: figures.load_seconds,
        target: `<= ${TARGET_SECONDS}`,
        met: loadSeconds <= TARGET_SECONDS && count === 50_000,
      },
    },
  }));
  return 0;
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main();
  } catch (e) {
    console.error(`bench/data.ts failed: ${failureText(e)}`);
    code = 1;
  }
  Deno.exit(code);
}
