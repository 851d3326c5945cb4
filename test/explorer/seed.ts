/**
 * A chain seeded by the demo flow (scripts/demo.ts's steps, quietly): the protocol deployed with the
 * published plan, the vesting calendar run past the 8.08M tranche, a GPU and a TEE node staked, a
 * batch anchored, a lying GPU node slashed on evidence, a rewards epoch proposed, accepted and claimed.
 * Everything lives in Hardhat's in-process chain; the record goes to a temporary folder.
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { network } from "hardhat";
import pino from "pino";

import type { ReceiptBundle } from "../../offchain/chain/bundle.js";
import { ledgerDomain } from "../../offchain/chain/eip712.js";
import { runAnchoringDemo } from "../../offchain/demo/anchoring.js";
import { Narrator } from "../../offchain/demo/narrator.js";
import type { ChainControl } from "../../offchain/demo/vesting.js";
import { runVestingDemo } from "../../offchain/demo/vesting.js";
import { deploySystem } from "../../offchain/deploy/system.js";
import { executeThroughTimelock } from "../../offchain/deploy/governance.js";
import type { System } from "../../offchain/deploy/system.js";
import type { Eip1193Provider } from "../../offchain/explorer/server.js";
import { InferenceEngine } from "../../offchain/inference/engine.js";
import type { RewardsSource } from "../../offchain/rewards/chain.js";
import { runRewardsDemo } from "../../offchain/rewards/demo.js";
import { epochAt } from "../../offchain/rewards/epochs.js";
import { resolveSource } from "../../offchain/rewards/source.js";
import { stakingDemo } from "../../offchain/staking/demo.js";
import { measurementFromPcrs } from "../../offchain/staking/units.js";
import { DevAttestor } from "../../offchain/tee/devAttestation.js";
import { Enclave } from "../../offchain/tee/enclave.js";
import { loadPlan } from "../../offchain/vesting/plan.js";
import { ROOT } from "../helpers/processes.js";

export const PLAN_FILE = path.join("deployments", "localhost", "vesting-plan.json");

export interface SeededChain {
  provider: Eip1193Provider;
  system: System;
  deploymentDir: string;
  bundle: ReceiptBundle;
  gpuNode: string;
  /** Claimed its rewards in the demo. */
  contributor: string;
  /** Earned rewards and has not claimed them. */
  unclaimed: string;
  rewardsSource: RewardsSource;
  rewardsEpoch: bigint;
}

export async function seedDemoChain(): Promise<SeededChain> {
  const { ethers, networkHelpers, provider } = await network.create();
  const signers = await ethers.getSigners();
  const at = (i: number) => signers[i]!;
  const n = new Narrator(() => undefined);
  const chain: ChainControl = {
    now: async () => BigInt(await networkHelpers.time.latest()),
    mineAt: async (t) => networkHelpers.time.increaseTo(t),
    nextBlockAt: async (t) => networkHelpers.time.setNextBlockTimestamp(t),
  };
  const work = await mkdtemp(path.join(tmpdir(), "opg-explorer-"));
  const dir = path.join(work, "deployment");
  const plan = await loadPlan(path.join(ROOT, PLAN_FILE));
  const system = await deploySystem(ethers, {
    dir,
    network: "default",
    plan,
    planFile: PLAN_FILE,
    beneficiarySigners: signers,
  });
  await runVestingDemo({ vault: system.vault, token: system.token, plan }, at(0), at(7), chain, n);

  const { chainId } = await ethers.provider.getNetwork();
  const domain = ledgerDomain(chainId, await system.ledger.getAddress());
  const attestor = new DevAttestor({
    now: () => new Date(Number(BigInt(Date.now()) / 1000n) * 1000),
  });
  const quiet = pino({ level: "warn" }, pino.destination(2));
  const engine = new InferenceEngine({ config: { provider: "cpu" }, logger: quiet });
  const enclaveEngine = new InferenceEngine({ config: { provider: "cpu" }, logger: quiet });
  await enclaveEngine.loadModelsDir(path.join(ROOT, "models"));
  const enclave = new Enclave({
    engine: enclaveEngine,
    attestor,
    chainId,
    ledger: domain.verifyingContract,
  });
  const pcrs = attestor.measurement();
  const staked = await stakingDemo(
    ethers,
    networkHelpers,
    {
      token: system.token,
      staking: system.staking,
      tee: system.tee,
      measurement: measurementFromPcrs([pcrs[0]!, pcrs[1]!, pcrs[2]!]),
      enclaveKey: enclave.address,
      attestation: enclave.attestation(Buffer.from("opg-explorer-registration-nonce")),
      approveMeasurement: async (m, label) => {
        const data = system.tee.interface.encodeFunctionData("approveMeasurement", [m, label]);
        await executeThroughTimelock(system.timelock, await system.tee.getAddress(), data, (s) =>
          networkHelpers.time.increase(s).then(() => undefined),
        );
      },
    },
    () => undefined,
  );
  const contributor = at(11).address;
  const anchored = await runAnchoringDemo({
    system,
    engine,
    enclave,
    domain,
    gpuNode: staked.gpuNode,
    gpuSigner: staked.gpuSigner,
    modelOwner: at(10),
    contributors: [contributor, at(12).address],
    relayer: at(13),
    watcher: at(8),
    modelsDir: path.join(ROOT, "models"),
    now: () => chain.now(),
    n,
  });
  const source = await resolveSource(ethers.provider, { deploymentDir: dir });
  const rewardsEpoch = epochAt(source.config, anchored.anchoredAt);
  await runRewardsDemo({
    source,
    updater: at(0),
    sender: at(9),
    contributor,
    chain,
    log: () => undefined,
    outDir: path.join(work, "rewards"),
    epoch: rewardsEpoch,
  });
  // The TEE operator keeps its node and enclave live after the weeks the rewards epoch took (as a running
  // enclave does), so the anchored batch's enclave is active when the page checks the receipt.
  await (await system.staking.connect(staked.teeSigner).heartbeat(staked.teeNode)).wait();
  await (await system.tee.connect(staked.teeSigner).heartbeat(staked.enclaveKey)).wait();
  return {
    provider,
    system,
    deploymentDir: dir,
    bundle: anchored.bundle,
    gpuNode: staked.gpuNode,
    contributor,
    unclaimed: at(12).address,
    rewardsSource: source,
    rewardsEpoch,
  };
}
