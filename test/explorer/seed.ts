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

import type { ReceiptBundle } from "../../offchain/chain/bundle.js";
import { DEMO_PLAN_FILE, runDemoFlow } from "../../offchain/demo/flow.js";
import { Narrator } from "../../offchain/demo/narrator.js";
import type { System } from "../../offchain/deploy/system.js";
import type { Eip1193Provider } from "../../offchain/explorer/server.js";
import type { RewardsSource } from "../../offchain/rewards/chain.js";
import { ROOT } from "../helpers/processes.js";

export const PLAN_FILE = DEMO_PLAN_FILE;

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
  const connection = await network.create();
  const work = await mkdtemp(path.join(tmpdir(), "opg-explorer-"));
  const dir = path.join(work, "deployment");
  const flow = await runDemoFlow(connection, {
    root: ROOT,
    deploymentDir: dir,
    rewardsOutDir: path.join(work, "rewards"),
    n: new Narrator(() => undefined),
    gpuProvider: "cpu",
  });
  const { system, staked } = flow;
  // The TEE operator keeps its node and enclave live after the weeks the rewards epoch took (as a running
  // enclave does), so the anchored batch's enclave is active when the page checks the receipt.
  await (await system.staking.connect(staked.teeSigner).heartbeat(staked.teeNode)).wait();
  await (await system.tee.connect(staked.teeSigner).heartbeat(staked.enclaveKey)).wait();
  return {
    provider: connection.provider,
    system,
    deploymentDir: dir,
    bundle: flow.anchored.bundle,
    gpuNode: staked.gpuNode,
    contributor: flow.contributor,
    unclaimed: flow.unclaimed,
    rewardsSource: flow.rewardsSource,
    rewardsEpoch: flow.rewardsEpoch,
  };
}
