import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import type { HardhatEthers } from "@nomicfoundation/hardhat-ethers/types";
import type { NetworkConnection } from "hardhat/types/network";

import type { System } from "../../../offchain/deploy/system.js";
import { deploySystem } from "../../../offchain/deploy/system.js";
import { loadPlan } from "../../../offchain/vesting/plan.js";

export interface GasRow {
  /** What is measured, e.g. "vesting: create linear+cliff schedule". */
  operation: string;
  /** Gas used by our contract. */
  ours: number;
  /** Peer contract and function, or null where no peer exists on the npm registry. */
  peer: string | null;
  peerGas: number | null;
}

/** An absolute goal from an issue (e.g. heartbeat <= 30,000 gas). */
export interface GasCheck {
  name: string;
  value: number;
  limit: number;
  ok: boolean;
}

export interface BenchContext {
  /** A fresh in-process chain for one module. */
  connect: () => Promise<NetworkConnection>;
}

/** Gas used by a mined transaction. */
export async function gasOf(
  tx: Promise<{ wait: () => Promise<{ gasUsed: bigint } | null> }>,
): Promise<number> {
  const receipt = await (await tx).wait();
  if (receipt === null) throw new Error("transaction was not mined");
  return Number(receipt.gasUsed);
}

const PLAN = "deployments/localhost/vesting-plan.json";

/** The whole protocol as production deploys it (offchain/deploy/system.ts), its record in a temporary folder. */
export async function deployProtocol(
  ethers: HardhatEthers,
  options: { assignmentWindow?: number } = {},
): Promise<System> {
  const dir = await mkdtemp(path.join(tmpdir(), "opg-bench-"));
  try {
    return await deploySystem(ethers, {
      dir,
      network: "bench",
      plan: await loadPlan(PLAN),
      planFile: PLAN,
      beneficiarySigners: await ethers.getSigners(),
      ...options,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
