/**
 * Governance goes through the timelock: schedule the call, wait out the delay in public, execute.
 * Idempotent: a call already executed is not repeated, one already scheduled is not scheduled again.
 */
import type { ContractTransactionResponse } from "ethers";
import { ZeroHash, id } from "ethers";

import type { OPGTimelock } from "../../types/ethers-contracts/index.js";

/**
 * Executes `data` on `target` through `timelock` (the caller holds PROPOSER and EXECUTOR roles).
 * `waitOut(seconds)` lets the delay pass: on a real network it waits; on a local chain it moves time.
 */
export async function executeThroughTimelock(
  timelock: OPGTimelock,
  target: string,
  data: string,
  waitOut: (seconds: bigint) => Promise<void>,
): Promise<void> {
  const salt = id(`opg-governance:${target}:${data}`);
  const operation = await timelock.hashOperation(target, 0n, data, ZeroHash, salt);
  if (await timelock.isOperationDone(operation)) return;
  if (!(await timelock.isOperation(operation))) {
    await mined(timelock.schedule(target, 0n, data, ZeroHash, salt, await timelock.getMinDelay()));
  }
  if (!(await timelock.isOperationReady(operation))) {
    const ready = await timelock.getTimestamp(operation);
    const block = await timelock.runner!.provider!.getBlock("latest");
    await waitOut(ready - BigInt(block!.timestamp));
  }
  await mined(timelock.execute(target, 0n, data, ZeroHash, salt));
}

async function mined(tx: Promise<ContractTransactionResponse>): Promise<void> {
  const receipt = await (await tx).wait();
  if (receipt === null || receipt.status !== 1) throw new Error("timelock transaction failed");
}
