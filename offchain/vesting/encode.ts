/**
 * Canonical encoding of a schedule and the plan hash, exactly as VestingVault computes them:
 *   leaf(id)      = keccak256(abi.encode(uint256 id, ScheduleParams params))
 *   planHash(0)   = 0x00..00
 *   planHash(i+1) = keccak256(abi.encode(bytes32 planHash(i), bytes32 leaf(i)))
 * ScheduleParams = (address beneficiary, bytes32 category, uint128 total, uint40 start, uint40 cliff,
 *                   uint128 cliffAmount, uint40 end, bool revocable, (uint32 timestamp, uint96 amount)[] tranches)
 */
import { AbiCoder, ZeroHash, keccak256 } from "ethers";

import type { ScheduleParams } from "./plan.js";

export const SCHEDULE_PARAMS_ABI =
  "tuple(address beneficiary, bytes32 category, uint128 total, uint40 start, uint40 cliff, uint128 cliffAmount, uint40 end, bool revocable, tuple(uint32 timestamp, uint96 amount)[] tranches)";

const coder = AbiCoder.defaultAbiCoder();

export function scheduleLeaf(id: number | bigint, params: ScheduleParams): string {
  return keccak256(coder.encode(["uint256", SCHEDULE_PARAMS_ABI], [id, params]));
}

export function extendPlanHash(previous: string, leaf: string): string {
  return keccak256(coder.encode(["bytes32", "bytes32"], [previous, leaf]));
}

/** The plan hash after the first `count` schedules (all of them by default). */
export function planHashOf(schedules: ScheduleParams[], count = schedules.length): string {
  let hash = ZeroHash;
  for (let id = 0; id < count; id++) hash = extendPlanHash(hash, scheduleLeaf(id, schedules[id]!));
  return hash;
}
