/** Reads the vault's schedules from the chain, in the shape the off-chain maths uses. */
import { decodeBytes32String } from "ethers";

import type { VestingVault } from "../../types/ethers-contracts/index.js";

import type { VestingTerms } from "./math.js";

export interface OnChainSchedule {
  id: number;
  beneficiary: string;
  category: string;
  kind: "linear" | "tranches";
  total: bigint;
  released: bigint;
  start: bigint;
  cliff: bigint;
  cliffAmount: bigint;
  end: bigint;
  revocable: boolean;
  revoked: boolean;
  tranches: Array<{ timestamp: bigint; amount: bigint }>;
  terms: VestingTerms;
}

export interface VaultState {
  address: string;
  token: string;
  planHash: string;
  sealed: boolean;
  schedules: OnChainSchedule[];
}

export async function readVault(vault: VestingVault): Promise<VaultState> {
  const [address, token, planHash, sealed, count] = await Promise.all([
    vault.getAddress(),
    vault.TOKEN(),
    vault.planHash(),
    vault.isSealed(),
    vault.scheduleCount(),
  ]);
  const categories = new Map<number, string>();
  for (const log of await vault.queryFilter(vault.filters.ScheduleCreated(), 0)) {
    categories.set(Number(log.args.id), decodeCategory(log.args.category));
  }
  const ids = Array.from({ length: Number(count) }, (_, i) => i);
  const schedules = await Promise.all(
    ids.map(async (id): Promise<OnChainSchedule> => {
      const [s, tranchesRaw] = await Promise.all([vault.getSchedule(id), vault.getTranches(id)]);
      const tranches = tranchesRaw.map((t) => ({ timestamp: t.timestamp, amount: t.amount }));
      const revokedCap = s.revoked ? await revokedCapOf(vault, id) : undefined;
      return {
        id,
        beneficiary: s.beneficiary,
        category: categories.get(id) ?? "?",
        kind: s.kind === 0n ? "linear" : "tranches",
        total: s.total,
        released: s.released,
        start: s.start,
        cliff: s.cliff,
        cliffAmount: s.cliffAmount,
        end: s.end,
        revocable: s.revocable,
        revoked: s.revoked,
        tranches,
        terms: {
          total: s.total,
          start: s.start,
          cliff: s.cliff,
          cliffAmount: s.cliffAmount,
          end: s.end,
          tranches,
          revokedCap,
        },
      };
    }),
  );
  return { address, token, planHash, sealed, schedules };
}

async function revokedCapOf(vault: VestingVault, id: number): Promise<bigint> {
  const [log] = await vault.queryFilter(vault.filters.ScheduleRevoked(id), 0);
  if (log === undefined)
    throw new Error(`schedule ${id} is revoked but its ScheduleRevoked event is missing`);
  return log.args.vested;
}

function decodeCategory(bytes: string): string {
  try {
    return decodeBytes32String(bytes);
  } catch {
    return bytes;
  }
}
