import { assertEquals } from "@std/assert";
import { runJobs } from "../lib/experiment/pool.ts";
import type { Job } from "../lib/experiment/jobs.ts";
import { Random } from "../lib/random.ts";

/** A small separable logistic job: rows on either side of a hyperplane. */
function logisticJob(id: string, seed: number): Job {
  const random = new Random(seed);
  const part = (n: number) => {
    const data = new Float32Array(n * 4);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      labels[i] = i % 2;
      for (let j = 0; j < 4; j++) data[i * 4 + j] = random.normal() + (labels[i] ? 1 : -1);
    }
    return { x: { data, shape: [n, 4] as [number, number] }, labels };
  };
  const train = part(40), test = part(20);
  return {
    kind: "logistic",
    id,
    x: { train: train.x, test: test.x },
    labels: { train: train.labels, test: test.labels },
    l2: [1],
  };
}

Deno.test("runJobs on 2 workers resolves only after every onResult has finished", async () => {
  const jobs = [logisticJob("a", 1), logisticJob("b", 2), logisticJob("c", 3)];
  const stored: string[] = [];
  const results = await runJobs(jobs, 2, {
    // A slow store (a big job file, a slow disk): the pool must wait for it, whichever
    // job finishes last.
    onResult: async (r) => {
      await new Promise((resolve) => setTimeout(resolve, r.id === "c" ? 10 : 400));
      stored.push(r.id);
    },
  });
  assertEquals(stored.toSorted(), ["a", "b", "c"]);
  assertEquals(results.map((r) => r.id), ["a", "b", "c"]);
});
