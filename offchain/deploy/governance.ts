/**
 * The deployment's own use of the timelock, while the deployer still holds its proposer and executor roles
 * (and the delay is still zero): schedule the call, let the delay pass, execute; then hand the timelock to
 * the governor and step back. After the deployment nothing goes through the timelock but governor
 * proposals (offchain/governance/proposals.ts).
 * Idempotent: a call already executed is not repeated, one already scheduled is not scheduled again.
 */
import type { ContractTransactionResponse } from "ethers";
import { ZeroHash, id } from "ethers";

import type { OPGTimelock } from "../../types/ethers-contracts/index.js";
import { BaseError, InputError } from "../common/errors.js";
import type { Log } from "../chain/deploy.js";

export interface TimelockCall {
  target: string;
  data: string;
}

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
  await executeBatchThroughTimelock(timelock, [{ target, data }], waitOut);
}

/** The same for several calls in one timelock operation (they run in order, all or none). */
export async function executeBatchThroughTimelock(
  timelock: OPGTimelock,
  calls: TimelockCall[],
  waitOut: (seconds: bigint) => Promise<void>,
): Promise<void> {
  const targets = calls.map((c) => c.target);
  const values = calls.map(() => 0n);
  const datas = calls.map((c) => c.data);
  const one = calls.length === 1 ? calls[0]! : undefined;
  const salt = id(`opg-governance:${targets.join(",")}:${datas.join(",")}`);
  const operation =
    one === undefined
      ? await timelock.hashOperationBatch(targets, values, datas, ZeroHash, salt)
      : await timelock.hashOperation(one.target, 0n, one.data, ZeroHash, salt);
  if (await timelock.isOperationDone(operation)) return;
  if (!(await timelock.isOperation(operation))) {
    const delay = await timelock.getMinDelay();
    await mined(
      one === undefined
        ? timelock.scheduleBatch(targets, values, datas, ZeroHash, salt, delay)
        : timelock.schedule(one.target, 0n, one.data, ZeroHash, salt, delay),
    );
  }
  if (!(await timelock.isOperationReady(operation))) {
    const ready = await timelock.getTimestamp(operation);
    const block = await timelock.runner!.provider!.getBlock("latest");
    await waitOut(ready - BigInt(block!.timestamp));
  }
  await mined(
    one === undefined
      ? timelock.executeBatch(targets, values, datas, ZeroHash, salt)
      : timelock.execute(one.target, 0n, one.data, ZeroHash, salt),
  );
}

/**
 * The timelock has no delay while the deployment hands over governance. A deployment that was started by
 * an older version (delay already set, the deployer still proposer) finds its hand-over scheduled and must
 * come back when it is ready: this says when.
 */
export function deployWaitOut(seconds: bigint): Promise<void> {
  if (seconds <= 0n) return Promise.resolve();
  const at = new Date(Date.now() + Number(seconds) * 1000).toISOString();
  return Promise.reject(
    new BaseError(
      `the hand-over is scheduled in OPGTimelock and executable in ${seconds} s (about ${at})`,
      { hint: "run the deploy again then: it executes the scheduled operation and finishes" },
    ),
  );
}

/**
 * Hands `timelock` to `governor`: the governor becomes its proposer, canceller and executor (one timelock
 * operation, with the delay set to `delay` last), then `deployer` renounces every timelock role it holds,
 * the admin role included. Each step checks the chain first, so a rerun sends nothing.
 */
export async function handOverTimelock(
  timelock: OPGTimelock,
  governor: string,
  deployer: string,
  delay: bigint,
  log: Log,
): Promise<void> {
  const self = await timelock.getAddress();
  const [admin, proposer, canceller, executor] = await Promise.all([
    timelock.DEFAULT_ADMIN_ROLE(),
    timelock.PROPOSER_ROLE(),
    timelock.CANCELLER_ROLE(),
    timelock.EXECUTOR_ROLE(),
  ]);
  const names = new Map([
    [admin, "DEFAULT_ADMIN_ROLE"],
    [proposer, "PROPOSER_ROLE"],
    [canceller, "CANCELLER_ROLE"],
    [executor, "EXECUTOR_ROLE"],
  ]);
  const calls: TimelockCall[] = [];
  const granted: string[] = [];
  for (const role of [proposer, canceller, executor]) {
    if (!(await timelock.hasRole(role, governor))) {
      calls.push({
        target: self,
        data: timelock.interface.encodeFunctionData("grantRole", [role, governor]),
      });
      granted.push(names.get(role)!);
    }
  }
  const current = await timelock.getMinDelay();
  if (current !== delay) {
    calls.push({
      target: self,
      data: timelock.interface.encodeFunctionData("updateDelay", [delay]),
    });
  }
  if (calls.length > 0) {
    if (!(await timelock.hasRole(proposer, deployer))) {
      throw new InputError(
        `OPGTimelock is already governed (the deployer is no longer its proposer); its delay is ${current} s, not ${delay} s`,
        {
          details: { timelock: self, delay: current, requested: delay },
          hint: "change the delay with a governor proposal (opg:gov:propose --target OPGTimelock --signature 'updateDelay(uint256)'), or deploy with the delay it has",
        },
      );
    }
    await executeBatchThroughTimelock(timelock, calls, deployWaitOut);
    if (granted.length > 0) log(`OPGTimelock ${granted.join(", ")} -> OPGGovernor`);
    if (current !== delay) {
      log(`OPGTimelock delay set to ${delay} s: every governance change now waits that long`);
    }
  }
  for (const role of [executor, canceller, proposer, admin]) {
    if (await timelock.hasRole(role, deployer)) {
      await mined(timelock.renounceRole(role, deployer));
      log(`OPGTimelock: deployer renounced ${names.get(role)}`);
    }
  }
}

async function mined(tx: Promise<ContractTransactionResponse>): Promise<void> {
  const receipt = await (await tx).wait();
  if (receipt === null || receipt.status !== 1) throw new Error("timelock transaction failed");
}
