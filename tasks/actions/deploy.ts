import path from "node:path";

import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import {
  formatPreflight,
  loadPlanForDeploy,
  parseVerifierOptions,
  preflightSystem,
} from "../../offchain/deploy/preflight.js";
import type { SystemDeployOptions } from "../../offchain/deploy/system.js";
import { deploySystem } from "../../offchain/deploy/system.js";
import { parseAddress, parseOpg } from "../../offchain/staking/units.js";
import { InputError } from "../../offchain/common/errors.js";
import { connect, planPath, runTask } from "../lib.js";

/** A whole number of seconds, or an InputError naming the flag. */
function parseSeconds(value: string, flag: string): number {
  if (!/^[0-9]{1,7}$/.test(value.trim()))
    throw new InputError(`${flag} must be a whole number of seconds, got "${value}"`, {
      details: { [flag]: value },
    });
  return Number(value.trim());
}

export default async function deploy(
  args: {
    plan: string;
    batchSize: number;
    timelockDelay: bigint;
    votingDelay: bigint;
    votingPeriod: bigint;
    quorum: bigint;
    proposalThreshold: string;
    unbondingDelay: bigint;
    assignmentWindow: string;
    guardian: string;
    rewardsUpdater: string;
    verifier: string;
    attesters: string;
    threshold: number;
    attestationMaxAge: bigint;
    dryRun: boolean;
  },
  hre: HardhatRuntimeEnvironment,
): Promise<void> {
  await runTask(async () => {
    const { ethers, networkName, dir } = await connect(hre);
    const file = planPath(hre, dir, args.plan);
    const plan = await loadPlanForDeploy(file);
    const signers = await ethers.getSigners();
    const root = hre.config.paths.root;
    const verifier = parseVerifierOptions({
      verifier: args.verifier,
      attesters: args.attesters,
      threshold: args.threshold,
      maxAge: args.attestationMaxAge,
    });
    const options: SystemDeployOptions = {
      dir,
      network: networkName,
      plan,
      planFile: path.relative(root, file),
      batchSize: args.batchSize,
      timelockDelay: args.timelockDelay,
      votingDelay: args.votingDelay,
      votingPeriod: args.votingPeriod,
      quorumPercent: args.quorum,
      proposalThreshold:
        args.proposalThreshold.trim() === "0"
          ? 0n
          : parseOpg(args.proposalThreshold, "--proposal-threshold"),
      stakingParams: { unbondingDelay: args.unbondingDelay },
      ...(args.assignmentWindow.trim() === ""
        ? {}
        : { assignmentWindow: parseSeconds(args.assignmentWindow, "--assignment-window") }),
      ...(args.guardian === "" ? {} : { guardian: parseAddress(args.guardian, "--guardian") }),
      ...(args.rewardsUpdater === ""
        ? {}
        : { rewardsUpdater: parseAddress(args.rewardsUpdater, "--rewards-updater") }),
      beneficiarySigners: signers,
      ...(verifier === undefined ? {} : { verifier }),
      log: (m) => console.log(`  ${m}`),
    };
    // Every check before the first transaction; the plan is printed either way.
    const preflight = await preflightSystem(ethers, options);
    console.log(formatPreflight(preflight, networkName));
    if (args.dryRun) {
      console.log("Dry run: nothing was sent.");
      return;
    }
    console.log(
      `Deploying the OPG protocol to ${networkName} as ${signers[0]!.address}; plan ${path.relative(root, file)}`,
    );
    const system = await deploySystem(ethers, { ...options, preflight });
    console.log(
      `Done. Plan hash ${system.planHash}; governance: OPGGovernor ${await system.governor.getAddress()} behind OPGTimelock ${await system.timelock.getAddress()}; the deployer holds no role`,
    );
    const verifierName =
      system.quorumVerifier === undefined ? "DevAttestationVerifier" : "QuorumAttestationVerifier";
    console.log(
      `TEE attestations: ${verifierName} ${system.addresses[verifierName]} (TeeRegistry ${system.addresses.TeeRegistry})`,
    );
    console.log(
      `Record: ${path.relative(root, dir)}/deployment.json, addresses.json, rewards.json, governance.json`,
    );
  });
}
