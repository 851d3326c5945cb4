// Solidity mutation testing (npm run test:mutation:sol). SuMo (@morenabarboni/sumo) cannot drive
// Hardhat 3 (see docs/mutation.md), so this applies the operators of ./operators.ts one at a time
// to a scratch copy of the project, compiles only the contracts the mutant changes, and runs only
// the tests of that contract's area. A mutant is killed when a test fails, survived when all pass,
// invalid when it does not compile, timeout when the tests run past 3x the unmutated run.
//
//   tsx scripts/mutation/sol.ts [--contract contracts/x/Y.sol]... [--max N] [--sample] [--out F]
import { spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";

import { apply, mutantsOf, type Mutant } from "./operators.js";
import { SOL_SAMPLE } from "./sample.js";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "../..");

/** Production contract -> the root files to compile for it and the test files that cover it. */
export const AREAS: Record<string, { build: string[]; tests: string }> = {
  "contracts/token/OPGToken.sol": {
    build: ["contracts/token/OPGToken.sol"],
    tests: "test/contracts/token",
  },
  "contracts/libraries/VestingMath.sol": {
    build: ["contracts/vesting/VestingVault.sol"],
    tests: "test/contracts/vesting",
  },
  "contracts/vesting/VestingVault.sol": {
    build: ["contracts/vesting/VestingVault.sol"],
    tests: "test/contracts/vesting",
  },
  "contracts/staking/NodeStaking.sol": {
    build: ["contracts/staking/NodeStaking.sol"],
    tests: "test/contracts/staking",
  },
  "contracts/anchoring/InferenceLedger.sol": {
    build: ["contracts/anchoring/InferenceLedger.sol"],
    tests: "test/contracts/anchoring",
  },
  "contracts/libraries/LedgerTypes.sol": {
    build: ["contracts/anchoring/InferenceLedger.sol"],
    tests: "test/contracts/anchoring",
  },
  "contracts/anchoring/examples/RiskGatedVault.sol": {
    build: ["contracts/anchoring/examples/RiskGatedVault.sol"],
    tests: "test/contracts/anchoring/RiskGatedVault.test.ts",
  },
  "contracts/registry/ModelRegistry.sol": {
    build: ["contracts/registry/ModelRegistry.sol"],
    tests: "test/contracts/registry",
  },
  "contracts/rewards/ContributorRewards.sol": {
    build: ["contracts/rewards/ContributorRewards.sol"],
    tests: "test/contracts/rewards",
  },
  "contracts/rewards/RewardsMerkle.sol": {
    build: ["contracts/rewards/ContributorRewards.sol"],
    tests: "test/contracts/rewards",
  },
  "contracts/tee/TeeRegistry.sol": {
    build: ["contracts/tee/TeeRegistry.sol"],
    tests: "test/contracts/tee",
  },
  "contracts/tee/QuorumAttestationVerifier.sol": {
    build: ["contracts/tee/QuorumAttestationVerifier.sol"],
    tests: "test/contracts/tee",
  },
  "contracts/tee/DevAttestationVerifier.sol": {
    build: ["contracts/tee/DevAttestationVerifier.sol"],
    tests: "test/contracts/tee",
  },
  "contracts/governance/OPGGovernor.sol": {
    build: ["contracts/governance/OPGGovernor.sol"],
    tests: "test/contracts/governance",
  },
  "contracts/governance/OPGTimelock.sol": {
    build: ["contracts/governance/OPGTimelock.sol"],
    tests: "test/contracts/governance",
  },
};

type Status = "killed" | "survived" | "invalid" | "timeout";
interface Result extends Mutant {
  status: Status;
  seconds: number;
}

function testFiles(dir: string): string[] {
  if (dir.endsWith(".ts")) return [dir];
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".test.ts"))
    .map((f) => join(dir, f))
    .sort();
}

function sh(cwd: string, args: string[], timeoutMs?: number) {
  const t0 = Date.now();
  // The tool from node_modules/.bin, not through npx: under `npx -c '...'` (.ci/run) npm exports
  // the command as npm_config_call, which a nested npx reads as its own -c and refuses.
  const env: NodeJS.ProcessEnv = { ...process.env, CI: "" };
  delete env.npm_config_call;
  const r = spawnSync(join(cwd, "node_modules", ".bin", args[0]!), args.slice(1), {
    cwd,
    encoding: "utf8",
    timeout: timeoutMs,
    env,
    maxBuffer: 64 << 20,
  });
  const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === "ETIMEDOUT";
  return {
    code: r.status,
    timedOut,
    seconds: (Date.now() - t0) / 1000,
    out: `${r.stdout}${r.stderr}`,
  };
}

function scratchCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), "opg-mutation-"));
  for (const e of readdirSync(ROOT)) {
    if (e === "node_modules" || e === ".git" || e === "reports" || e === "coverage") continue;
    cpSync(join(ROOT, e), join(dir, e), { recursive: true, verbatimSymlinks: true });
  }
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  return dir;
}

function parseArgs(argv: string[]) {
  const o = {
    contracts: [] as string[],
    max: Infinity,
    sample: false,
    out: "reports/mutation-sol.json",
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--contract") o.contracts.push(argv[++i]!);
    else if (a === "--max") o.max = Number(argv[++i]);
    else if (a === "--sample") o.sample = true;
    else if (a === "--out") o.out = argv[++i]!;
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const byFile = new Map<string, Mutant[]>();
  const wanted = opts.contracts.length ? opts.contracts : Object.keys(AREAS);
  for (const file of wanted) {
    if (!AREAS[file])
      throw new Error(`${file} is not a production contract known to scripts/mutation/sol.ts`);
    let ms = mutantsOf(file, readFileSync(join(ROOT, file), "utf8"));
    if (opts.sample) ms = ms.filter((m) => SOL_SAMPLE.includes(m.id));
    if (ms.length) byFile.set(file, ms.slice(0, opts.max));
  }
  if (opts.sample) {
    const all = [...byFile.values()].flat().map((m) => m.id);
    const missing = SOL_SAMPLE.filter((id) => !all.includes(id));
    if (missing.length)
      throw new Error(
        `sampled mutants no longer generated (source changed?): ${missing.join(", ")}`,
      );
  }

  // The scratch copy takes the project's artifacts, so only the mutated contract is recompiled.
  if (!existsSync(join(ROOT, "artifacts", "contracts")))
    throw new Error("no artifacts: run `npm run build` first");
  const work = scratchCopy();

  const results: Result[] = [];
  try {
    for (const [file, ms] of byFile) {
      const area = AREAS[file]!;
      const tests = testFiles(area.tests);
      const original = readFileSync(join(work, file), "utf8");
      const clean = sh(work, ["hardhat", "test", "mocha", "--no-compile", ...tests]);
      if (clean.code !== 0)
        throw new Error(`unmutated tests of ${file} fail:\n${clean.out.slice(-3000)}`);
      const limit = Math.max(60, clean.seconds * 3) * 1000;
      console.log(`${file}: ${ms.length} mutants, unmutated tests ${clean.seconds.toFixed(1)} s`);
      for (const mu of ms) {
        const t0 = Date.now();
        writeFileSync(join(work, file), apply(original, mu));
        let status: Status;
        const build = sh(work, ["hardhat", "build", "--quiet", "--no-typechain", ...area.build]);
        if (build.code !== 0) status = "invalid";
        else {
          const run = sh(
            work,
            ["hardhat", "test", "mocha", "--no-compile", "--bail", ...tests],
            limit,
          );
          status = run.timedOut ? "timeout" : run.code === 0 ? "survived" : "killed";
        }
        const seconds = (Date.now() - t0) / 1000;
        results.push({ ...mu, status, seconds });
        console.log(
          `  ${status.padEnd(8)} ${seconds.toFixed(1).padStart(6)} s  ${mu.id}  ${JSON.stringify(mu.original)} -> ${JSON.stringify(mu.replacement)}`,
        );
      }
      writeFileSync(join(work, file), original);
      const rebuilt = sh(work, ["hardhat", "build", "--quiet", "--no-typechain", ...area.build]);
      if (rebuilt.code !== 0) throw new Error(`restoring ${file} failed:\n${rebuilt.out}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  const table: Record<string, Record<Status | "score", number | string>> = {};
  for (const r of results) {
    const row = (table[r.file] ??= { killed: 0, survived: 0, invalid: 0, timeout: 0, score: "" });
    (row[r.status] as number)++;
  }
  for (const row of Object.values(table)) {
    const k = (row.killed as number) + (row.timeout as number);
    const valid = k + (row.survived as number);
    row.score = valid ? `${((100 * k) / valid).toFixed(1)} %` : "-";
  }
  console.table(table);
  mkdirSync(dirname(join(ROOT, opts.out)), { recursive: true });
  writeFileSync(
    join(ROOT, opts.out),
    JSON.stringify({ date: new Date().toISOString(), table, results }, null, 2),
  );
  const survivors = results.filter((r) => r.status === "survived");
  if (survivors.length) {
    console.log(
      `survivors:\n${survivors.map((s) => `  ${s.id}  ${JSON.stringify(s.original)} -> ${JSON.stringify(s.replacement)}`).join("\n")}`,
    );
  }
  if (opts.sample && results.some((r) => r.status !== "killed")) {
    console.error("a sampled mutant was not killed");
    process.exit(1);
  }
}

main();
