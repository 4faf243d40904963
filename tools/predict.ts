/**
 * Predicts the sentiment of new texts with every trained model of a committed run (its
 * models, layout and encoder loaded back from the run's caches, see
 * `lib/experiment/predict.ts`), printing each model's P(positive):
 *
 *     deno task predict --run use-lite-5k "A wonderful, moving film." "Dull and far too long."
 *     deno task predict --run use-lite-5k --file reviews.txt      # one review per line
 *
 * Flags: `--run NAME` (required: a folder of `results/`), `--results DIR` (default
 * `results/`), `--file PATH` (one review per line; blank lines skipped), `--models a,b`
 * (model ids; default all of the run), `--json` (one JSON object per text instead of the
 * table), `--help`. Exit status: 0 done, 1 the run could not be loaded or a text was
 * refused, 2 usage error.
 *
 * @module
 */
import { join } from "node:path";
import { projectRoot } from "../lib/config.ts";
import { loadRun } from "../lib/experiment/predict.ts";
import type { ModelPrediction } from "../lib/experiment/predict.ts";
import { nearest } from "../lib/experiment/schema.ts";

const FLAGS = ["run", "results", "file", "models", "json", "help"];
const SWITCHES = new Set(["json", "help"]);

const USAGE = `deno task predict --run NAME [--results DIR] [--models a,b] [--json] "text" …
deno task predict --run NAME --file PATH        (one review per line)

Prints P(positive) of every model (and seed) of the committed run NAME for each text.`;

/** Flags and positional texts of the command line. */
function parse(args: string[]): { flags: Record<string, string>; texts: string[] } {
  const flags: Record<string, string> = {};
  const texts: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith("--")) {
      texts.push(arg);
      continue;
    }
    const name = arg.slice(2);
    if (!FLAGS.includes(name)) {
      const near = nearest(name, FLAGS);
      throw new Error(`unknown flag ${arg}${near ? ` (did you mean --${near}?)` : ""}; see --help`);
    }
    if (SWITCHES.has(name)) flags[name] = "true";
    else if (args[i + 1] === undefined) throw new Error(`--${name} needs a value`);
    else flags[name] = args[++i];
  }
  return { flags, texts };
}

/** The texts to predict: the positional ones, then the file's non-blank lines. */
async function textsOf(flags: Record<string, string>, given: string[]): Promise<string[]> {
  const texts = [...given];
  if (flags.file) {
    let content: string;
    try {
      content = await Deno.readTextFile(flags.file);
    } catch (e) {
      throw new Error(`--file ${flags.file}: ${(e as Error).message}`);
    }
    texts.push(...content.split(/\r?\n/).filter((line) => line.trim().length > 0));
    if (texts.length === given.length) throw new Error(`--file ${flags.file} has no text`);
  }
  if (texts.length === 0) throw new Error(`give texts to predict, or --file PATH; see --help`);
  return texts;
}

function excerpt(text: string, length = 70): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > length ? `${flat.slice(0, length)}…` : flat;
}

/** One table per text: model, seed, P(positive), predicted label. */
function printTable(texts: string[], predictions: ModelPrediction[]): void {
  const width = Math.max(5, ...predictions.map((p) => p.model.length));
  texts.forEach((text, i) => {
    console.log(`\ntext ${i + 1}: ${JSON.stringify(excerpt(text))}`);
    console.log(`  ${"model".padEnd(width)}  seed  P(positive)  label`);
    for (const p of predictions) {
      const prob = p.probabilities[i];
      console.log(
        `  ${p.model.padEnd(width)}  ${String(p.seed ?? "–").padStart(4)}  ` +
          `${prob.toFixed(4).padStart(11)}  ${prob > 0.5 ? "positive" : "negative"}`,
      );
    }
  });
}

async function main(): Promise<number> {
  let flags: Record<string, string>, texts: string[];
  try {
    const parsed = parse(Deno.args);
    flags = parsed.flags;
    if (flags.help) {
      console.log(USAGE);
      return 0;
    }
    if (!flags.run) throw new Error("--run NAME is required (a folder of results/); see --help");
    texts = await textsOf(flags, parsed.texts);
  } catch (e) {
    console.error(`predict: ${(e as Error).message}`);
    return 2;
  }
  let run;
  try {
    console.error(`loading the models of ${flags.run} …`);
    run = await loadRun(flags.run, {
      resultsDir: flags.results ?? join(projectRoot, "results"),
      models: flags.models?.split(",").map((m) => m.trim()).filter(Boolean),
    });
  } catch (e) {
    console.error(`predict: ${(e as Error).message}`);
    return 1;
  }
  try {
    const predictions = await run.predict(texts);
    if (flags.json) {
      texts.forEach((text, i) => {
        const models = predictions.map((p) => ({
          model: p.model,
          seed: p.seed,
          probability: p.probabilities[i],
        }));
        console.log(JSON.stringify({ text, models }));
      });
    } else {
      console.log(`run ${run.name} (encoder ${run.encoder}): P(positive) per model`);
      printTable(texts, predictions);
    }
    return 0;
  } catch (e) {
    console.error(`predict: ${(e as Error).message}`);
    return 1;
  } finally {
    await run.dispose();
  }
}

Deno.exit(await main());
