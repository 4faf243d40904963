/**
 * Bench of the data stage: time to load all 50,000 labelled reviews from the IMDB archive
 * (gunzip + tar + UTF-8 decoding + checks), reviews per second and peak memory (RSS sampled
 * every 5 ms), side by side with Python's tarfile reading the same archive
 * (bench/data_reference.py) in the same run. Ends with one JSON line.
 *
 * Usage: deno run -A bench/data.ts [--runs N] [--source PATH]
 * Default source: the shared labelled-only archive (see lib/data defaultImdbSource()).
 */
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";
import { defaultImdbSource, loadImdb, splitReviews } from "../lib/data/mod.ts";

const TARGET_SECONDS = 5;
const python = "/usr/bin/python3";

function argument(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

const runs = Number(argument("--runs") ?? 3);
const source = argument("--source") ?? defaultImdbSource();
if (/^https?:/.test(source) || !existsSync(source)) {
  console.error(
    `bench/data.ts needs a local archive; ${source} is not one. Pass --source PATH or put ` +
      `the shared folder beside the project (see README).`,
  );
  Deno.exit(2);
}

const median = (xs: number[]) => {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const mb = (bytes: number) => bytes / 2 ** 20;

/** One timed load with RSS sampled meanwhile. */
async function timedLoad(): Promise<{ seconds: number; peakRss: number; count: number }> {
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

/** One run of the Python reference in a child process. */
async function referenceLoad(): Promise<{ seconds: number; peakRssMb: number } | undefined> {
  if (!existsSync(python)) return undefined;
  const script = fileURLToPath(new URL("./data_reference.py", import.meta.url));
  const out = await new Deno.Command(python, { args: [script, source] }).output();
  if (!out.success) {
    console.error(`reference failed: ${new TextDecoder().decode(out.stderr)}`);
    return undefined;
  }
  const result = JSON.parse(new TextDecoder().decode(out.stdout));
  return { seconds: result.seconds, peakRssMb: result.peak_rss_mb };
}

console.log(`bench data: loading ${source}, ${runs} runs, each beside the Python reference`);
const baseRss = Deno.memoryUsage().rss;
const ours: { seconds: number; peakRss: number; count: number }[] = [];
const reference: { seconds: number; peakRssMb: number }[] = [];
for (let run = 1; run <= runs; run++) {
  const r = await timedLoad();
  ours.push(r);
  const ref = await referenceLoad();
  if (ref) reference.push(ref);
  console.log(
    `run ${run}: ${r.count} reviews in ${r.seconds.toFixed(2)} s ` +
      `(${(r.count / r.seconds).toFixed(0)} reviews/s), peak RSS ${mb(r.peakRss).toFixed(0)} MB` +
      (ref ? ` | Python tarfile ${ref.seconds.toFixed(2)} s, ${ref.peakRssMb.toFixed(0)} MB` : ""),
  );
}

const reviews = await loadImdb({ source });
const splitStart = performance.now();
splitReviews(reviews, { scheme: "paper", seed: 42 });
splitReviews(reviews, { scheme: "standard", trainSize: 2000, testSize: 2000 });
const splitMs = (performance.now() - splitStart) / 2;

const loadSeconds = median(ours.map((r) => r.seconds));
const count = ours[0].count;
const figures: Record<string, number | string | null> = {
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
  reference_load_seconds: reference.length
    ? Number(median(reference.map((r) => r.seconds)).toFixed(3))
    : null,
  reference_peak_rss_mb: reference.length
    ? Number(Math.max(...reference.map((r) => r.peakRssMb)).toFixed(1))
    : null,
  speedup_vs_reference: reference.length
    ? Number((median(reference.map((r) => r.seconds)) / loadSeconds).toFixed(2))
    : null,
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
