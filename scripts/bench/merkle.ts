/**
 * `npm run bench:merkle`: 1,000,000 (address, uint256) leaves built by the native engine and by
 * @openzeppelin/merkle-tree in the same run, from the same values; the roots must be equal.
 * Writes reports/merkle.json. Goal: native >= 30x faster.
 */
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { StandardMerkleTree } from "@openzeppelin/merkle-tree";

import { buildTree, defaultBackend } from "../../native/index.js";

const LEAVES = Number(process.env.BENCH_MERKLE_LEAVES ?? 1_000_000);
const GOAL = 30;

const leaves: [string, bigint][] = Array.from({ length: LEAVES }, (_, i) => [
  "0x" + randomBytes(20).toString("hex"),
  BigInt(i + 1) * 10n ** 15n,
]);
const backend = defaultBackend().name;

let t0 = performance.now();
const ours = buildTree(leaves, ["address", "uint256"]);
const nativeMs = performance.now() - t0;
console.log(`${backend}: ${LEAVES} leaves in ${(nativeMs / 1000).toFixed(2)} s, root ${ours.root}`);

t0 = performance.now();
const oz = StandardMerkleTree.of(leaves, ["address", "uint256"]);
const ozMs = performance.now() - t0;
console.log(`@openzeppelin/merkle-tree: ${(ozMs / 1000).toFixed(2)} s, root ${oz.root}`);

const rootsMatch = ours.root === oz.root;
const speedup = ozMs / nativeMs;
console.log(
  `speedup ${speedup.toFixed(1)}x (goal >= ${GOAL}x), roots ${rootsMatch ? "match" : "DIFFER"}`,
);

const outDir = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "reports");
await mkdir(outDir, { recursive: true });
await writeFile(
  path.join(outDir, "merkle.json"),
  JSON.stringify(
    {
      leaves: LEAVES,
      backend,
      nativeMs,
      openzeppelinMs: ozMs,
      speedup,
      goal: GOAL,
      rootsMatch,
      root: ours.root,
    },
    null,
    2,
  ) + "\n",
);
if (!rootsMatch || speedup < GOAL) process.exitCode = 1;
