import type { NetworkConnection } from "hardhat/types/network";

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
