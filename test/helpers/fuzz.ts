/**
 * fast-check settings for every fuzz test: a fixed seed by default so a CI run is reproducible,
 * `FUZZ_SEED=<n>` to replay a reported failure, `FUZZ_SEED=random` to explore new cases locally, and
 * `FUZZ_RUNS=<n>` to scale the number of runs.
 */
export function fuzzOptions(numRuns: number): { numRuns: number; seed?: number } {
  const runs = process.env.FUZZ_RUNS === undefined ? numRuns : Number(process.env.FUZZ_RUNS);
  const seed = process.env.FUZZ_SEED;
  if (seed === "random") return { numRuns: runs };
  return { numRuns: runs, seed: seed === undefined ? 20261125 : Number(seed) };
}
