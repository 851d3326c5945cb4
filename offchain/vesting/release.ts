/** `opg:vesting:release`: releases one, several or all releasable schedules (anyone may call). */
import type { VestingVault } from "../../types/ethers-contracts/index.js";
import { InputError } from "../common/errors.js";

export interface ReleaseResult {
  released: Array<{ id: number; beneficiary: string; amount: bigint }>;
  skipped: number[];
  txHash: string | null;
}

/** Parses "3", "1,2,5" or "all" into schedule ids (null = all). */
export function parseIds(spec: string): number[] | null {
  if (spec.trim() === "all") return null;
  const ids = spec.split(",").map((part) => part.trim());
  return ids.map((part) => {
    if (!/^\d+$/.test(part)) {
      throw new InputError(`"${part}" is not a schedule id`, {
        hint: 'use ids like 0,3,7 or "all"',
      });
    }
    return Number(part);
  });
}

export async function releaseSchedules(
  vault: VestingVault,
  ids: number[] | null,
): Promise<ReleaseResult> {
  const count = Number(await vault.scheduleCount());
  const wanted = ids ?? Array.from({ length: count }, (_, i) => i);
  for (const id of wanted) {
    if (id >= count) {
      throw new InputError(`schedule ${id} does not exist`, {
        details: { scheduleCount: count },
        hint: `ids run from 0 to ${count - 1}; see npx hardhat opg:vesting:calendar`,
      });
    }
  }
  // The transaction lands in a later block, at least one second after the latest: vesting only grows
  // with time, so whatever is releasable at latest + 1 is releasable when it is mined.
  const latest = await vault.runner!.provider!.getBlock("latest");
  const at = BigInt(latest!.timestamp) + 1n;
  const releasable = await Promise.all(wanted.map((id) => vault.releasableAt(id, at)));
  const due = wanted.filter((_, i) => releasable[i]! > 0n);
  const skipped = wanted.filter((_, i) => releasable[i] === 0n);
  if (due.length === 0) return { released: [], skipped, txHash: null };

  const tx = await vault.releaseMany(due);
  const receipt = await tx.wait();
  const released: ReleaseResult["released"] = [];
  for (const log of receipt?.logs ?? []) {
    const parsed = vault.interface.parseLog(log);
    if (parsed?.name === "Released") {
      released.push({
        id: Number(parsed.args.getValue("id")),
        beneficiary: String(parsed.args.getValue("beneficiary")),
        amount: BigInt(parsed.args.getValue("amount") as bigint),
      });
    }
  }
  return { released, skipped, txHash: tx.hash };
}
