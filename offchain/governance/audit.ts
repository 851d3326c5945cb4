/**
 * opg:governance:audit: every role of every contract of a deployment and who holds it, read from the
 * chain, compared with deployments/<network>/governance.json.
 *
 * AccessControl keeps no list of a role's members, so they are rebuilt from the RoleGranted/RoleRevoked
 * events since each contract's deployment block and every member is confirmed with hasRole. The roles
 * themselves come from the contract's ABI (every `*_ROLE()` constant) and from the events (a role id no
 * constant names). Ownable contracts are checked by owner() and pendingOwner(); settings (the governor's,
 * the timelock's delay) by their view functions.
 *
 * Problems (the audit fails, exit 1): any holder, owner or setting that differs from the record; a power
 * (admin, governance, proposer, canceller, slasher, ownership) held by an account without code, i.e. one
 * key; a deployed contract with roles that the record does not cover; parameters under which stakers
 * cannot unbond before a governance change lands.
 */
import Table from "cli-table3";
import type { Provider } from "ethers";
import { Contract, ZeroAddress, getAddress, id as keccakText } from "ethers";

import { InputError } from "../common/errors.js";
import { readRecord } from "../chain/deployment.js";

import { interfaceOf } from "./contracts.js";
import { checkExitWindow } from "./params.js";
import type { GovernanceRecord } from "./record.js";
import { governancePath, readGovernanceRecord } from "./record.js";

/** Roles (and ownership) whose holder can change parameters, roles, or slash: never a single key. */
export const POWER_ROLES: readonly string[] = [
  "DEFAULT_ADMIN_ROLE",
  "GOVERNANCE_ROLE",
  "GOVERNOR_ROLE",
  "SLASHER_ROLE",
  "GOVERNANCE_SLASHER_ROLE",
  "PROPOSER_ROLE",
  "CANCELLER_ROLE",
  "owner",
];

const ROLE_GRANTED = keccakText("RoleGranted(bytes32,address,address)");
const ROLE_REVOKED = keccakText("RoleRevoked(bytes32,address,address)");

export interface Holder {
  address: string;
  /** A contract name, a label from the record ("guardian"), "anyone" for address(0), or "". */
  label: string;
  /** Whether the address has code (a contract) or not (a key, or nobody). */
  contract: boolean;
}

export interface AuditRow {
  contract: string;
  /** A role name (or its id when no constant names it), "owner", "pendingOwner", or a setting's name. */
  item: string;
  kind: "role" | "owner" | "setting";
  /** Holders on chain (roles, owner), or the value (settings). */
  actual: Holder[] | string;
  /** What governance.json says (undefined: it says nothing). */
  expected: Holder[] | string | undefined;
  ok: boolean;
}

export interface GovernanceAudit {
  network: string;
  chainId: string;
  rows: AuditRow[];
  problems: string[];
  /** Contracts of the record that have no roles and no owner (listed so the reader sees they were looked at). */
  roleless: string[];
  ok: boolean;
}

export interface AuditOptions {
  /** Blocks per eth_getLogs request (default 10,000). */
  logChunk?: number;
}

/**
 * Audits the chain behind `provider` against `record`; `addresses` (addresses.json) adds contracts the
 * record may not cover.
 */
export async function auditGovernance(
  provider: Provider,
  record: GovernanceRecord,
  addresses: Record<string, string>,
  options: AuditOptions = {},
): Promise<GovernanceAudit> {
  const { chainId } = await provider.getNetwork();
  if (chainId.toString() !== record.chainId) {
    throw new InputError(
      `the governance record is for chain ${record.chainId}; this network is chain ${chainId}`,
      { hint: "use the --network the record was written for" },
    );
  }
  const rows: AuditRow[] = [];
  const problems: string[] = [];
  const roleless: string[] = [];
  const codeCache = new Map<string, boolean>();
  const hasCode = async (a: string) => {
    if (!codeCache.has(a))
      codeCache.set(a, a !== ZeroAddress && (await provider.getCode(a)) !== "0x");
    return codeCache.get(a)!;
  };
  const names = new Map<string, string>();
  for (const [name, c] of Object.entries(record.contracts)) names.set(getAddress(c.address), name);
  for (const [name, a] of Object.entries(addresses)) names.set(getAddress(a), name);
  for (const [a, label] of Object.entries(record.labels)) {
    if (!names.has(getAddress(a))) names.set(getAddress(a), label);
  }
  const holder = async (a: string): Promise<Holder> => ({
    address: getAddress(a),
    label: a === ZeroAddress ? "anyone" : (names.get(getAddress(a)) ?? ""),
    contract: await hasCode(getAddress(a)),
  });
  const show = (a: string) => {
    const n = a === ZeroAddress ? "anyone" : names.get(getAddress(a));
    return n === undefined ? getAddress(a) : `${n} (${getAddress(a)})`;
  };

  // Every contract of the record, and any contract of addresses.json the record leaves out.
  const all = new Map(Object.entries(record.contracts).map(([n, c]) => [n, c] as const));
  for (const [name, address] of Object.entries(addresses)) {
    if (all.has(name)) {
      if (getAddress(all.get(name)!.address) !== getAddress(address)) {
        problems.push(
          `${name}: governance.json has ${getAddress(all.get(name)!.address)}, addresses.json ${getAddress(address)}`,
        );
      }
      continue;
    }
    const iface = interfaceOf(name);
    if (
      iface !== undefined &&
      (iface.getFunction("hasRole") ?? iface.getFunction("owner")) !== null
    ) {
      problems.push(
        `${name} (${address}) has roles or an owner but governance.json does not cover it`,
      );
    }
  }

  for (const [name, expected] of all) {
    const address = getAddress(expected.address);
    if (!(await hasCode(address))) {
      problems.push(`${name}: no code at ${address}`);
      continue;
    }
    const iface = interfaceOf(name);
    if (iface === undefined) {
      problems.push(`${name}: unknown contract, its roles cannot be read`);
      continue;
    }
    const contract = new Contract(address, iface, provider);
    let covered = false;

    // Roles: constants of the ABI and ids seen in events, members rebuilt from the events.
    if (iface.getFunction("hasRole") !== null) {
      covered = true;
      const roleNames = new Map<string, string>();
      const constants: string[] = [];
      iface.forEachFunction((fn) => {
        if (fn.name.endsWith("_ROLE") && fn.inputs.length === 0) constants.push(fn.name);
      });
      for (const role of constants) {
        roleNames.set((await contract.getFunction(`${role}()`)()) as string, role);
      }
      const members = await replayRoles(provider, address, expected.fromBlock, options.logChunk);
      for (const roleId of members.keys())
        if (!roleNames.has(roleId)) roleNames.set(roleId, roleId);
      for (const role of Object.keys(expected.roles ?? {})) {
        if (![...roleNames.values()].includes(role)) {
          problems.push(`${name}: governance.json names ${role}, which ${name} does not have`);
        }
      }
      const roles = [...roleNames].sort(
        ([, a], [, b]) => roleOrder(a) - roleOrder(b) || a.localeCompare(b),
      );
      for (const [roleId, role] of roles) {
        const onChain = [...(members.get(roleId) ?? new Set<string>())];
        for (const m of onChain) {
          if (!((await contract.getFunction("hasRole")(roleId, m)) as boolean)) {
            problems.push(`${name} ${role}: the events say ${show(m)} holds it, hasRole says no`);
          }
        }
        const want = (expected.roles?.[role] ?? []).map((a) => getAddress(a));
        const actual = await Promise.all(onChain.map(holder));
        const ok = sameSet(onChain, want);
        rows.push({
          contract: name,
          item: role,
          kind: "role",
          actual,
          expected: await Promise.all(want.map(holder)),
          ok,
        });
        for (const extra of onChain.filter((m) => !want.includes(m))) {
          problems.push(
            `${name} ${role} is held by ${show(extra)}, which governance.json does not list`,
          );
        }
        for (const missing of want.filter((m) => !onChain.includes(m))) {
          problems.push(
            `${name} ${role}: governance.json lists ${show(missing)}, which does not hold it`,
          );
        }
        if (POWER_ROLES.includes(role)) {
          for (const h of actual.filter((x) => !x.contract)) {
            problems.push(
              `${name} ${role} is held by ${show(h.address)}, an account without code (one key)`,
            );
          }
        }
      }
    }

    // Ownership (Ownable / Ownable2Step).
    if (iface.getFunction("owner") !== null) {
      covered = true;
      const owner = getAddress((await contract.getFunction("owner")()) as string);
      const want = expected.owner === undefined ? undefined : getAddress(expected.owner);
      const h = await holder(owner);
      rows.push({
        contract: name,
        item: "owner",
        kind: "owner",
        actual: [h],
        expected: want === undefined ? undefined : [await holder(want)],
        ok: owner === want,
      });
      if (want === undefined)
        problems.push(`${name}: owned by ${show(owner)}; governance.json names no owner`);
      else if (owner !== want)
        problems.push(`${name} is owned by ${show(owner)}, not ${show(want)}`);
      if (!h.contract)
        problems.push(`${name} is owned by ${show(owner)}, an account without code (one key)`);
      if (iface.getFunction("pendingOwner") !== null) {
        const pending = getAddress((await contract.getFunction("pendingOwner")()) as string);
        const ok = pending === ZeroAddress;
        rows.push({
          contract: name,
          item: "pendingOwner",
          kind: "owner",
          actual: ok ? [] : [await holder(pending)],
          expected: [],
          ok,
        });
        if (!ok) problems.push(`${name}: ${show(pending)} may accept its ownership (pendingOwner)`);
      }
    }

    // Settings named by the record.
    for (const [setting, want] of Object.entries(expected.settings ?? {})) {
      covered = true;
      if (iface.getFunction(`${setting}()`) === null) {
        problems.push(
          `${name}: governance.json names setting ${setting}, which ${name} does not have`,
        );
        continue;
      }
      const value = String(await contract.getFunction(`${setting}()`)());
      const ok = normalise(value) === normalise(want);
      const shown = names.has(normalise(value)) ? holderText(await holder(value)) : value;
      rows.push({
        contract: name,
        item: setting,
        kind: "setting",
        actual: shown,
        expected: names.has(normalise(want)) ? holderText(await holder(want)) : want,
        ok,
      });
      if (!ok) problems.push(`${name} ${setting} is ${shown}, governance.json says ${want}`);
    }
    if (!covered) roleless.push(name);
  }

  // Stakers can leave before a governance change lands.
  const exit = await exitWindowProblem(provider, all);
  if (exit !== null) problems.push(exit);

  return {
    network: record.network,
    chainId: record.chainId,
    rows,
    problems,
    roleless,
    ok: problems.length === 0,
  };
}

/** Members of each role of `address`, replayed from RoleGranted/RoleRevoked since `fromBlock`. */
export async function replayRoles(
  provider: Provider,
  address: string,
  fromBlock: number,
  chunk = 10_000,
): Promise<Map<string, Set<string>>> {
  const latest = await provider.getBlockNumber();
  const members = new Map<string, Set<string>>();
  for (let from = fromBlock; from <= latest; from += chunk) {
    const logs = await provider.getLogs({
      address,
      topics: [[ROLE_GRANTED, ROLE_REVOKED]],
      fromBlock: from,
      toBlock: Math.min(latest, from + chunk - 1),
    });
    logs.sort((a, b) => a.blockNumber - b.blockNumber || a.index - b.index);
    for (const log of logs) {
      const role = log.topics[1]!;
      const account = getAddress(`0x${log.topics[2]!.slice(26)}`);
      const set = members.get(role) ?? new Set<string>();
      if (log.topics[0] === ROLE_GRANTED) set.add(account);
      else set.delete(account);
      members.set(role, set);
    }
  }
  return members;
}

async function exitWindowProblem(
  provider: Provider,
  contracts: Map<string, { address: string }>,
): Promise<string | null> {
  const staking = contracts.get("NodeStaking");
  const governor = contracts.get("OPGGovernor");
  const timelock = contracts.get("OPGTimelock");
  if (staking === undefined || governor === undefined || timelock === undefined) return null;
  const s = new Contract(staking.address, interfaceOf("NodeStaking")!, provider);
  const g = new Contract(governor.address, interfaceOf("OPGGovernor")!, provider);
  const t = new Contract(timelock.address, interfaceOf("OPGTimelock")!, provider);
  try {
    const params = (await s.getFunction("params")()) as { unbondingDelay: bigint };
    checkExitWindow(
      {
        unbondingDelay: params.unbondingDelay,
        votingDelay: (await g.getFunction("votingDelay")()) as bigint,
        votingPeriod: (await g.getFunction("votingPeriod")()) as bigint,
        timelockDelay: (await t.getFunction("getMinDelay")()) as bigint,
      },
      "the parameters on chain",
    );
    return null;
  } catch (error) {
    if (error instanceof InputError) return error.message;
    throw error;
  }
}

function roleOrder(role: string): number {
  const i = POWER_ROLES.indexOf(role);
  return i < 0 ? POWER_ROLES.length : i;
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

function normalise(v: string): string {
  return /^0x[0-9a-fA-F]{40}$/.test(v) ? getAddress(v) : v;
}

const plain = { head: [] as string[], border: [] as string[] };
/** No rule between rows: one line per role reads as a list. */
const compact = { mid: "", "left-mid": "", "mid-mid": "", "right-mid": "" };

function holderText(h: Holder): string {
  const kind = h.contract ? "" : h.address === ZeroAddress ? "" : " [no code]";
  return h.label === "" ? `${h.address}${kind}` : `${h.label} ${h.address.slice(0, 8)}…${kind}`;
}

/** The audit as a table (contract, role or setting, holders on chain, expected, check) and its verdict. */
export function formatGovernanceAudit(a: GovernanceAudit): string {
  const table = new Table({
    head: ["contract", "role / setting", "held by (chain)", "expected (governance.json)", ""],
    style: plain,
    chars: compact,
  });
  const cell = (v: Holder[] | string | undefined) =>
    v === undefined
      ? "(not in record)"
      : typeof v === "string"
        ? v
        : v.length === 0
          ? "-"
          : v.map(holderText).join("\n");
  for (const r of a.rows) {
    table.push([r.contract, r.item, cell(r.actual), cell(r.expected), r.ok ? "ok" : "DIFF"]);
  }
  const lines = [`Governance of ${a.network} (chain ${a.chainId})`, table.toString()];
  if (a.roleless.length > 0) lines.push(`no roles and no owner: ${a.roleless.join(", ")}`);
  if (a.ok) {
    lines.push(
      "AUDIT OK: every role, owner and setting matches governance.json; no power is held by a single key",
    );
  } else {
    lines.push(`AUDIT FAILED: ${a.problems.length} problem(s)`);
    for (const p of a.problems) lines.push(`  - ${p}`);
  }
  return lines.join("\n");
}

/** The record and the deployed contracts of a deployment folder, as auditGovernance takes them. */
export async function loadAuditInputs(
  dir: string,
  recordFile?: string,
): Promise<{ record: GovernanceRecord; addresses: Record<string, string> }> {
  const record = await readGovernanceRecord(recordFile ?? governancePath(dir));
  const deployment = await readRecord(dir);
  const addresses = Object.fromEntries(
    Object.entries(deployment?.contracts ?? {}).map(([n, c]) => [n, c.address]),
  );
  return { record, addresses };
}
