/**
 * opg:rewards:* — thin wrappers over offchain/rewards (the same functions as `opg rewards ...`).
 * Addresses come from deployments/<network>/addresses.json, epoch parameters from
 * deployments/<network>/rewards.json; transactions are sent by the network's first account.
 * Exit codes as the CLI: 1 when verification fails, 2 on bad input.
 */
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import { task } from "hardhat/config";

interface EpochArgs {
  epoch: string;
  progress: boolean;
}

async function open(hre: HardhatRuntimeEnvironment, progress: boolean) {
  const [{ connect }, { resolveSource }, { terminalProgress }] = await Promise.all([
    import("./lib.js"),
    import("../offchain/rewards/source.js"),
    import("../offchain/rewards/progress-bar.js"),
  ]);
  const { ethers, dir } = await connect(hre);
  const bar = terminalProgress(progress);
  const source = await resolveSource(ethers.provider, { deploymentDir: dir, progress: bar });
  return { ethers, dir, source, bar };
}

const outRoot = (hre: HardhatRuntimeEnvironment) => `${hre.config.paths.root}/reports/rewards`;

export const rewardsTasks = [
  task("opg:rewards:compute", "Compute an epoch's rewards from chain data; write table and proofs")
    .addOption({ name: "epoch", description: "The epoch (1, 2, ...)", defaultValue: "" })
    .addFlag({ name: "progress", description: "Progress bars on stderr even without a terminal" })
    .setInlineAction(async (args: EpochArgs, hre) => {
      const { runTask, ensureBuilt } = await import("./lib.js");
      await ensureBuilt(hre);
      await runTask(async () => {
        const { parseEpoch } = await import("../offchain/rewards/epochs.js");
        const { computeRewards, writeRewardsOutputs } =
          await import("../offchain/rewards/compute.js");
        const { summarise } = await import("../offchain/rewards/report.js");
        const epoch = parseEpoch(args.epoch);
        const { source, bar } = await open(hre, args.progress);
        const result = await computeRewards(source, epoch);
        const dir = await writeRewardsOutputs(outRoot(hre), result, bar);
        for (const line of summarise(result)) console.log(line);
        console.log(`  wrote ${dir}`);
      });
    })
    .build(),
  task("opg:rewards:propose", "Compute an epoch and propose its root (first account: UPDATER_ROLE)")
    .addOption({ name: "epoch", description: "The epoch (1, 2, ...)", defaultValue: "" })
    .addOption({ name: "uri", description: "Where the table is published", defaultValue: "" })
    .addFlag({ name: "progress", description: "Progress bars on stderr even without a terminal" })
    .setInlineAction(async (args: EpochArgs & { uri: string }, hre) => {
      const { runTask, ensureBuilt } = await import("./lib.js");
      await ensureBuilt(hre);
      await runTask(async () => {
        const { parseEpoch } = await import("../offchain/rewards/epochs.js");
        const { computeRewards, writeRewardsOutputs } =
          await import("../offchain/rewards/compute.js");
        const { proposeRewards } = await import("../offchain/rewards/onchain.js");
        const { summarise } = await import("../offchain/rewards/report.js");
        const epoch = parseEpoch(args.epoch);
        const { ethers, source, bar } = await open(hre, args.progress);
        const [signer] = await ethers.getSigners();
        const result = await computeRewards(source, epoch);
        const dir = await writeRewardsOutputs(outRoot(hre), result, bar);
        for (const line of summarise(result)) console.log(line);
        const p = await proposeRewards(
          signer!,
          result,
          args.uri === "" ? `${dir}/table.json` : args.uri,
        );
        console.log(`proposed epoch ${epoch} in tx ${p.txHash}; acceptable from ${p.validAt}`);
      });
    })
    .build(),
  task(
    "opg:rewards:verify",
    "Recompute an epoch from chain data alone and compare the on-chain root",
  )
    .addOption({ name: "epoch", description: "The epoch (1, 2, ...)", defaultValue: "" })
    .addFlag({ name: "progress", description: "Progress bars on stderr even without a terminal" })
    .setInlineAction(async (args: EpochArgs, hre) => {
      const { runTask, ensureBuilt } = await import("./lib.js");
      await ensureBuilt(hre);
      await runTask(async () => {
        const { parseEpoch } = await import("../offchain/rewards/epochs.js");
        const { verifyRewards } = await import("../offchain/rewards/onchain.js");
        const { formatChecks, summarise } = await import("../offchain/rewards/report.js");
        const epoch = parseEpoch(args.epoch);
        const { source } = await open(hre, args.progress);
        const report = await verifyRewards(source, epoch);
        for (const line of summarise(report.result)) console.log(line);
        for (const line of formatChecks(report.checks)) console.log(line);
        if (!report.ok) {
          console.error(`epoch ${epoch}: the on-chain root does not match the recomputation`);
          process.exitCode = 1;
          return;
        }
        console.log(`epoch ${epoch} verified: the on-chain root matches`);
      });
    })
    .build(),
  task(
    "opg:rewards:claim",
    "Claim an account's rewards against the accepted root (anyone may send)",
  )
    .addOption({ name: "epoch", description: "The accepted root's epoch", defaultValue: "" })
    .addOption({ name: "account", description: "The account to claim for", defaultValue: "" })
    .addOption({
      name: "proof",
      description: "Proof file (default: recompute the epoch)",
      defaultValue: "",
    })
    .addFlag({ name: "progress", description: "Progress bars on stderr even without a terminal" })
    .setInlineAction(async (args: EpochArgs & { account: string; proof: string }, hre) => {
      const { runTask, ensureBuilt } = await import("./lib.js");
      await ensureBuilt(hre);
      await runTask(async () => {
        const { InputError } = await import("../offchain/common/errors.js");
        const { parseEpoch } = await import("../offchain/rewards/epochs.js");
        const { computeRewards, proofFiles } = await import("../offchain/rewards/compute.js");
        const { claimRewards, readProofFile } = await import("../offchain/rewards/onchain.js");
        const { opg } = await import("../offchain/rewards/report.js");
        const epoch = parseEpoch(args.epoch);
        const { ethers, source } = await open(hre, args.progress);
        const [signer] = await ethers.getSigners();
        let proof;
        if (args.proof !== "") {
          proof = await readProofFile(args.proof);
        } else {
          const result = await computeRewards(source, epoch);
          proof = proofFiles(result).find(
            (p) => p.account.toLowerCase() === args.account.toLowerCase(),
          );
          if (proof === undefined) {
            throw new InputError(`the account has earned nothing up to epoch ${epoch}`, {
              details: { account: args.account },
            });
          }
        }
        if (args.account !== "" && proof.account.toLowerCase() !== args.account.toLowerCase()) {
          throw new InputError("the proof file is for another account", {
            details: { account: args.account, proofAccount: proof.account },
          });
        }
        const c = await claimRewards(signer!, proof);
        console.log(
          c.txHash === null
            ? `${c.account} has already received its ${opg(c.cumulativeAmount)} OPG`
            : `claimed ${opg(c.amount)} OPG for ${c.account} in tx ${c.txHash}`,
        );
      });
    })
    .build(),
];
