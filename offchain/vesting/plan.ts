/**
 * The published vesting plan: a JSON file in deployments/<network>/vesting-plan.json.
 *
 * Format (version 1), documented in docs/vesting-plan.md:
 *   amounts   decimal strings in whole OPG, up to 18 decimals ("8080000", "0.5")
 *   times     ISO-8601 UTC to the second ("2027-06-21T00:00:00Z")
 *   addresses EIP-55 checksummed
 * Everything the vault checks on chain is checked here first, with the JSON path of each problem.
 */
import { encodeBytes32String, getAddress, isAddress, parseUnits } from "ethers";
import { z } from "zod";

import { InputError } from "../common/errors.js";

export const PLAN_VERSION = 1;
/** Mirrors VestingVault.MAX_TRANCHES. */
export const MAX_TRANCHES = 64;
const UINT32_MAX = 2n ** 32n - 1n;
const UINT40_MAX = 2n ** 40n - 1n;
const UINT96_MAX = 2n ** 96n - 1n;
const UINT128_MAX = 2n ** 128n - 1n;

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const DECIMAL = /^(0|[1-9]\d*)(\.\d{1,18})?$/;

const isoTime = z
  .string()
  .regex(ISO_UTC, "must be ISO-8601 UTC to the second, like 2027-06-21T00:00:00Z");
const decimalAmount = z
  .string()
  .regex(DECIMAL, 'must be a decimal string in whole OPG with at most 18 decimals, like "8080000"');
const address = z.string().superRefine((value, ctx) => {
  if (!isAddress(value)) {
    ctx.addIssue({ code: "custom", message: "is not an address" });
  } else if (getAddress(value) !== value) {
    ctx.addIssue({ code: "custom", message: `is not checksummed (expected ${getAddress(value)})` });
  }
});
const category = z
  .string()
  .min(1)
  .max(31)
  .regex(/^[a-z0-9][a-z0-9-]*$/, "must be lower-case letters, digits and dashes");

const common = {
  name: z.string().min(1).max(64),
  category,
  beneficiary: address,
  total: decimalAmount,
  start: isoTime,
  revocable: z.boolean(),
  note: z.string().optional(),
};

const linearSchema = z
  .object({
    ...common,
    kind: z.literal("linear"),
    cliff: isoTime.optional(),
    cliffAmount: decimalAmount.optional(),
    end: isoTime,
  })
  .strict();

const tranchedSchema = z
  .object({
    ...common,
    kind: z.literal("tranches"),
    tranches: z
      .array(z.object({ at: isoTime, amount: decimalAmount }).strict())
      .min(1)
      .max(MAX_TRANCHES),
  })
  .strict();

export const planFileSchema = z
  .object({
    version: z.literal(PLAN_VERSION),
    network: z.string().min(1),
    token: z
      .object({ symbol: z.string().min(1), decimals: z.literal(18), totalSupply: decimalAmount })
      .strict(),
    schedules: z.array(z.discriminatedUnion("kind", [linearSchema, tranchedSchema])).min(1),
  })
  .strict();

export type PlanFile = z.infer<typeof planFileSchema>;
export type PlanScheduleEntry = PlanFile["schedules"][number];

/** A schedule in contract units: what VestingVault.createSchedule takes (ScheduleParams). */
export interface ScheduleParams {
  beneficiary: string;
  category: string; // bytes32
  total: bigint;
  start: bigint;
  cliff: bigint; // 0 = none
  cliffAmount: bigint;
  end: bigint; // 0 for tranched
  revocable: boolean;
  tranches: Array<{ timestamp: bigint; amount: bigint }>;
}

export interface PlanSchedule {
  id: number;
  name: string;
  categoryName: string;
  params: ScheduleParams;
}

export interface Plan {
  network: string;
  symbol: string;
  totalSupply: bigint;
  schedules: PlanSchedule[];
}

export class PlanError extends InputError {
  override name = "PlanError";
  readonly problems: string[];
  constructor(source: string, problems: string[]) {
    super(`the vesting plan ${source} is invalid (${problems.length} problem(s))`, {
      details: Object.fromEntries(problems.map((p, i) => [`problem ${i + 1}`, p])),
      hint: "fix the file; the format is described in docs/vesting-plan.md",
    });
    this.problems = problems;
  }
}

export function parseTime(iso: string): bigint {
  const ms = Date.parse(iso);
  if (
    !ISO_UTC.test(iso) ||
    Number.isNaN(ms) ||
    new Date(ms).toISOString() !== iso.replace("Z", ".000Z")
  ) {
    throw new InputError(`not a valid ISO-8601 UTC time: ${iso}`);
  }
  return BigInt(ms / 1000);
}

export function formatTime(seconds: bigint | number): string {
  return new Date(Number(seconds) * 1000).toISOString().replace(".000Z", "Z");
}

export function parseAmount(decimal: string): bigint {
  return parseUnits(decimal, 18);
}

/** Validates a parsed JSON value and converts it into contract units. Throws PlanError listing every problem. */
export function parsePlan(json: unknown, source = "<plan>"): Plan {
  const result = planFileSchema.safeParse(json);
  if (!result.success) {
    throw new PlanError(
      source,
      result.error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`),
    );
  }
  const file = result.data;
  const problems: string[] = [];
  const schedules: PlanSchedule[] = [];
  const names = new Set<string>();
  let sum = 0n;

  file.schedules.forEach((entry, id) => {
    const at = `schedules[${id}]`;
    const here = (msg: string) => problems.push(`${at} (${entry.name}): ${msg}`);
    // An unreal date is reported once; the order checks that would use it are skipped.
    let unrealDate = false;
    const time = (iso: string, field: string): bigint => {
      try {
        return parseTime(iso);
      } catch {
        here(`${field} ${iso} is not a real date`);
        unrealDate = true;
        return 0n;
      }
    };
    if (names.has(entry.name)) here(`name "${entry.name}" is used twice`);
    names.add(entry.name);

    const total = parseAmount(entry.total);
    const start = time(entry.start, "start");
    if (total === 0n) here("total must be > 0");
    if (total > UINT128_MAX) here("total does not fit in uint128");
    if (start > UINT40_MAX) here("start is too far in the future");
    sum += total;

    const params: ScheduleParams = {
      beneficiary: entry.beneficiary,
      category: encodeBytes32String(entry.category),
      total,
      start,
      cliff: 0n,
      cliffAmount: 0n,
      end: 0n,
      revocable: entry.revocable,
      tranches: [],
    };
    if (entry.kind === "linear") {
      params.end = time(entry.end, "end");
      params.cliff = entry.cliff === undefined ? 0n : time(entry.cliff, "cliff");
      params.cliffAmount = entry.cliffAmount === undefined ? 0n : parseAmount(entry.cliffAmount);
      const cliff = params.cliff === 0n ? start : params.cliff;
      if (!unrealDate && start >= params.end)
        here(`start ${entry.start} must be before end ${entry.end}`);
      if (!unrealDate && (cliff < start || cliff > params.end)) {
        here(`cliff ${entry.cliff} must lie between start and end`);
      }
      if (params.cliffAmount > total)
        here(`cliffAmount ${entry.cliffAmount} exceeds total ${entry.total}`);
    } else {
      let previous = start;
      let trancheSum = 0n;
      entry.tranches.forEach((tr, i) => {
        const ts = time(tr.at, `tranches[${i}].at`);
        const amount = parseAmount(tr.amount);
        const ordered = i === 0 ? ts >= previous : ts > previous;
        if (!ordered && !unrealDate) {
          here(
            `tranches[${i}].at ${tr.at} must be ${i === 0 ? "at or after start" : "after the previous tranche"}`,
          );
        }
        if (ts > UINT32_MAX) here(`tranches[${i}].at ${tr.at} is after 2106 (uint32)`);
        if (amount === 0n) here(`tranches[${i}].amount must be > 0`);
        if (amount > UINT96_MAX) here(`tranches[${i}].amount does not fit in uint96`);
        previous = ts;
        trancheSum += amount;
        params.tranches.push({ timestamp: ts, amount });
      });
      if (trancheSum !== total) {
        here(`tranches add up to ${formatOpg(trancheSum)} OPG but total is ${entry.total}`);
      }
    }
    schedules.push({ id, name: entry.name, categoryName: entry.category, params });
  });

  const totalSupply = parseAmount(file.token.totalSupply);
  if (sum > totalSupply) {
    problems.push(
      `schedules add up to ${formatOpg(sum)} OPG, more than the supply ${file.token.totalSupply}`,
    );
  }
  if (problems.length > 0) throw new PlanError(source, problems);
  return { network: file.network, symbol: file.token.symbol, totalSupply, schedules };
}

export async function loadPlan(path: string): Promise<Plan> {
  let text: string;
  try {
    // Imported here, not at the top: the rest of this module runs in the browser (explorer/).
    const { readFile } = await import("node:fs/promises");
    text = await readFile(path, "utf8");
  } catch (cause) {
    throw new InputError(`cannot read the vesting plan ${path}`, {
      cause,
      hint: "pass --plan <file> or create deployments/<network>/vesting-plan.json",
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new PlanError(path, [`not valid JSON: ${(cause as Error).message}`]);
  }
  return parsePlan(json, path);
}

/**
 * Formats wei as OPG with thousands separators, dropping trailing zero decimals. `maxDecimals` truncates
 * (rounds toward zero) for display; exact output is the default.
 */
export function formatOpg(wei: bigint, maxDecimals = 18): string {
  const negative = wei < 0n;
  const abs = negative ? -wei : wei;
  const whole = (abs / 10n ** 18n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const frac = (abs % 10n ** 18n)
    .toString()
    .padStart(18, "0")
    .slice(0, maxDecimals)
    .replace(/0+$/, "");
  return `${negative ? "-" : ""}${whole}${frac ? "." + frac : ""}`;
}

function formatPath(path: PropertyKey[]): string {
  return (
    path.reduce<string>(
      (acc, key) =>
        typeof key === "number" ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key),
      "",
    ) || "(root)"
  );
}
