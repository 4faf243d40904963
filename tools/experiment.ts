/**
 * The real run: USE-lite embeddings of IMDB reviews (standard split), 50×50 DeepInsight
 * images, every registered backbone's classifier, logistic regression and an MLP on the same
 * embeddings, and the two ablations; prints the table of test accuracies with 95% intervals
 * and writes the results as JSON. Every stage is cached (embedding store, image transformer
 * JSON, feature cache, checkpoints, per-model results), so a re-run skips finished work.
 *
 * Usage:
 *   deno run -A tools/experiment.ts [--config FILE.json] [--name NAME] [--train N] [--test N]
 *     [--epochs E] [--backbones a,b,…] [--workers W] [--upsample K] [--out FILE.json]
 *
 * Flags override the config file, which overrides the defaults of `runExperiment`
 * (lib/eval/experiment.ts): 5,000 train / 500 validation / 5,000 test reviews, USE-lite,
 * 50×50 images, every loadable backbone, 3 epochs, two workers.
 */
import { join } from "node:path";
import { formatResultsSummary, runExperiment } from "../lib/eval/mod.ts";
import type { ExperimentConfig } from "../lib/eval/mod.ts";
import { resolveExperimentConfig } from "../lib/eval/experiment.ts";

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

const configPath = flag("config");
const config: ExperimentConfig = configPath
  ? JSON.parse(await Deno.readTextFile(configPath))
  : { name: "use-lite-5k" };
config.name = flag("name") ?? config.name;
config.data = { ...config.data };
config.models = { ...config.models };
const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
if (flag("train")) config.data.trainSize = num(flag("train"));
if (flag("test")) config.data.testSize = num(flag("test"));
if (flag("epochs")) config.models.epochs = num(flag("epochs"));
if (flag("workers")) config.models.workers = num(flag("workers"));
if (flag("upsample")) config.models.upsample = num(flag("upsample"));
if (flag("backbones")) config.models.backbones = flag("backbones")!.split(",");

const resolved = resolveExperimentConfig(config);
console.error(`experiment ${resolved.name}: caches in ${resolved.cacheDir}`);
const controller = new AbortController();
Deno.addSignalListener("SIGINT", () => {
  console.error("\ninterrupted: finished work stays cached; run the same command to resume");
  controller.abort();
});
let results;
try {
  results = await runExperiment(config, { signal: controller.signal });
} catch (e) {
  if (controller.signal.aborted) Deno.exit(130);
  throw e;
}
const out = flag("out") ?? join(resolved.cacheDir, "results.json");
await Deno.writeTextFile(out, JSON.stringify(results, null, 2));
console.log(formatResultsSummary(results));
console.log(`\nresults: ${out}`);
Deno.exit(0);
