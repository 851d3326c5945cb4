/**
 * `opg:vesting:audit`: compares what the chain holds with the published plan, field by field.
 * A difference is anything the plan does not explain; a note is a legitimate change since creation
 * (a beneficiary rotation, a revocation of a revocable schedule, releases).
 */
import type { OPGToken, VestingVault } from "../../types/ethers-contracts/index.js";

import { readVault } from "./chain.js";
import { planHashOf } from "./encode.js";
import { termsOf } from "./math.js";
import type { Plan } from "./plan.js";
import { formatOpg, formatTime } from "./plan.js";

export interface AuditReport {
  ok: boolean;
  planHash: { file: string; chain: string };
  sealed: boolean;
  schedules: number;
  differences: string[];
  notes: string[];
}

export async function auditVault(
  vault: VestingVault,
  token: OPGToken,
  plan: Plan,
): Promise<AuditReport> {
  const state = await readVault(vault);
  const differences: string[] = [];
  const notes: string[] = [];
  const filePlanHash = planHashOf(plan.schedules.map((s) => s.params));

  if (state.planHash !== filePlanHash) {
    differences.push(`plan hash: chain ${state.planHash}, published file ${filePlanHash}`);
  }
  if (!state.sealed) differences.push("the vault is not sealed: schedules can still be added");
  if (state.token.toLowerCase() !== (await token.getAddress()).toLowerCase()) {
    differences.push(
      `token: vault pays ${state.token}, deployment record says ${await token.getAddress()}`,
    );
  }
  if (state.schedules.length !== plan.schedules.length) {
    differences.push(
      `schedule count: chain ${state.schedules.length}, published file ${plan.schedules.length}`,
    );
  }

  const rotations = new Map<number, Array<{ previous: string; next: string }>>();
  for (const log of await vault.queryFilter(vault.filters.BeneficiaryTransferred(), 0)) {
    const id = Number(log.args.id);
    rotations.set(id, [
      ...(rotations.get(id) ?? []),
      { previous: log.args.previous, next: log.args.next },
    ]);
  }

  let owed = 0n;
  for (const planned of plan.schedules) {
    const chain = state.schedules[planned.id];
    if (chain === undefined) continue;
    const label = `schedule ${planned.id} (${planned.name})`;
    const want = termsOf(planned.params);
    const compare = (
      field: string,
      onChain: unknown,
      inFile: unknown,
      show: (v: unknown) => string = String,
    ) => {
      if (onChain !== inFile)
        differences.push(
          `${label}: ${field} is ${show(onChain)} on chain, ${show(inFile)} in the plan`,
        );
    };
    const time = (v: unknown) => formatTime(v as bigint);
    const amount = (v: unknown) => `${formatOpg(v as bigint)} OPG`;
    compare("kind", chain.kind, planned.params.tranches.length > 0 ? "tranches" : "linear");
    compare("category", chain.category, planned.categoryName);
    compare("total", chain.total, want.total, amount);
    compare("start", chain.start, want.start, time);
    compare("cliff", chain.cliff, want.cliff, time);
    compare("cliff amount", chain.cliffAmount, want.cliffAmount, amount);
    compare("end", chain.end, want.end, time);
    compare("revocable", chain.revocable, planned.params.revocable);
    compare("tranche count", chain.tranches.length, want.tranches.length);
    want.tranches.forEach((tr, i) => {
      const got = chain.tranches[i];
      if (got === undefined) return;
      compare(`tranche ${i} time`, got.timestamp, tr.timestamp, time);
      compare(`tranche ${i} amount`, got.amount, tr.amount, amount);
    });

    // The beneficiary may have rotated: follow the events from the planned address.
    let current = planned.params.beneficiary;
    for (const r of rotations.get(planned.id) ?? []) {
      if (r.previous.toLowerCase() !== current.toLowerCase()) {
        differences.push(
          `${label}: beneficiary rotation from ${r.previous} does not follow ${current}`,
        );
      }
      notes.push(`${label}: beneficiary rotated ${r.previous} -> ${r.next}`);
      current = r.next;
    }
    if (chain.beneficiary.toLowerCase() !== current.toLowerCase()) {
      differences.push(
        `${label}: beneficiary is ${chain.beneficiary} on chain, ${current} by the plan and its rotations`,
      );
    }
    if (chain.revoked) {
      if (!planned.params.revocable)
        differences.push(`${label}: revoked although the plan says non-revocable`);
      notes.push(
        `${label}: revoked, vesting capped at ${formatOpg(chain.terms.revokedCap ?? 0n)} OPG`,
      );
    }
    if (chain.released > 0n)
      notes.push(`${label}: ${formatOpg(chain.released)} OPG released so far`);
    owed += (chain.terms.revokedCap ?? chain.total) - chain.released;
  }

  // Solvency: the vault must hold at least what it still owes.
  const balance = await token.balanceOf(state.address);
  if (balance < owed) {
    differences.push(
      `vault balance ${formatOpg(balance)} OPG is below what it owes, ${formatOpg(owed)} OPG`,
    );
  }

  return {
    ok: differences.length === 0,
    planHash: { file: filePlanHash, chain: state.planHash },
    sealed: state.sealed,
    schedules: state.schedules.length,
    differences,
    notes,
  };
}

export function formatAudit(report: AuditReport): string {
  const lines = [
    `plan hash (published file): ${report.planHash.file}`,
    `plan hash (chain):          ${report.planHash.chain}`,
    `sealed: ${report.sealed ? "yes" : "no"}, schedules on chain: ${report.schedules}`,
  ];
  for (const note of report.notes) lines.push(`  note: ${note}`);
  if (report.ok) lines.push("AUDIT OK: every schedule and the plan hash match the published plan");
  else {
    lines.push(`AUDIT FAILED: ${report.differences.length} difference(s)`);
    for (const d of report.differences) lines.push(`  - ${d}`);
  }
  return lines.join("\n");
}
