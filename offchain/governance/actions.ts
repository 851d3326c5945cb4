/**
 * Named governance actions -> the calls of a proposal, so nobody writes calldata by hand:
 *
 *   approve-measurement  TeeRegistry.approveMeasurement(measurement, label)   --measurement | --pcr0..2, --label
 *   revoke-measurement   TeeRegistry.revokeMeasurement(measurement, cause)    --measurement | --pcr0..2, --for-cause true|false
 *   set-slash-params     InferenceLedger.setSlashParams(offence, bps, jail, cooldown)   --offence --bps --jail --cooldown (s)
 *   set-sample-rate      InferenceLedger.setSampleRate(ppm)                   --rate (0..1) | --ppm (1..1,000,000)
 *   set-min-stake        NodeStaking.setMinStake(role, amount)                --role --amount (OPG)
 *   set-unbonding-delay  NodeStaking.setUnbondingDelay(seconds)               --seconds
 *   set-assignment-window InferenceLedger.setAssignmentWindow(seconds)       --seconds (0..3,600; 0: a race)
 *   call                 any function of any contract                         --target --signature --args [--value]
 *
 * Every argument is checked here (InputError naming it); set-unbonding-delay also refuses a delay under
 * which stakers could not leave before a governance change lands.
 */
import type { Interface } from "ethers";
import { Interface as AbiInterface, FunctionFragment, getAddress, isAddress } from "ethers";

import { InputError } from "../common/errors.js";
import { measurementFromPcrs, parseBytes32, parseOpg, parseRole } from "../staking/units.js";

import { describeCall, interfaceOf } from "./contracts.js";
import { checkExitWindow } from "./params.js";
import type { ProposalCall, ProposalInput } from "./proposals.js";

export const ACTIONS = [
  "approve-measurement",
  "revoke-measurement",
  "set-slash-params",
  "set-sample-rate",
  "set-min-stake",
  "set-unbonding-delay",
  "set-assignment-window",
  "call",
] as const;
export type ActionName = (typeof ACTIONS)[number];

/** IInferenceLedger.Offence, by its number. */
export const OFFENCES = ["DOUBLE_RECEIPT", "CONTRADICTED_RECEIPT", "BATCH_EQUIVOCATION"] as const;

export interface ActionArgs {
  action?: string;
  measurement?: string;
  pcr0?: string;
  pcr1?: string;
  pcr2?: string;
  label?: string;
  offence?: string;
  bps?: string;
  jail?: string;
  cooldown?: string;
  forCause?: string;
  rate?: string;
  ppm?: string;
  role?: string;
  amount?: string;
  seconds?: string;
  target?: string;
  signature?: string;
  /** A JSON array, or comma-separated values for flat argument lists. */
  args?: string;
  /** Wei sent with a raw call. */
  value?: string;
  description?: string;
}

export interface ActionContext {
  /** The deployment's contracts (name -> address): targets of named actions, names for --target. */
  addresses: Record<string, string>;
  /**
   * Reads the governance latency (voting delay, voting period, timelock delay) for set-unbonding-delay's
   * check; required for that action.
   */
  latency?: () => Promise<{ votingDelay: bigint; votingPeriod: bigint; timelockDelay: bigint }>;
}

/** The proposal for a named action (or a raw call): its calls and a description. */
export async function buildProposal(args: ActionArgs, ctx: ActionContext): Promise<ProposalInput> {
  const action = parseAction(args.action);
  const call = await buildCall(action, args, ctx);
  const summary = describeCall(ctx.addresses, call.target, call.data, call.value);
  const description =
    args.description !== undefined && args.description !== ""
      ? args.description
      : `${action}: ${summary}`;
  return { calls: [call], description };
}

function parseAction(value: string | undefined): ActionName {
  if (value === undefined || value === "") {
    throw new InputError("--action is required", { hint: `one of ${ACTIONS.join(", ")}` });
  }
  if (!(ACTIONS as readonly string[]).includes(value)) {
    throw new InputError(`unknown action "${value}"`, { hint: `one of ${ACTIONS.join(", ")}` });
  }
  return value as ActionName;
}

async function buildCall(
  action: ActionName,
  args: ActionArgs,
  ctx: ActionContext,
): Promise<ProposalCall> {
  const to = (name: string): { target: string; iface: Interface } => {
    const target = ctx.addresses[name];
    if (target === undefined) {
      throw new InputError(`the deployment record has no ${name}`, {
        details: { known: Object.keys(ctx.addresses).join(", ") },
      });
    }
    return { target, iface: interfaceOf(name)! };
  };
  const call = (name: string, fn: string, values: unknown[]): ProposalCall => {
    const { target, iface } = to(name);
    return { target, value: 0n, data: iface.encodeFunctionData(fn, values) };
  };
  switch (action) {
    case "approve-measurement":
      return call("TeeRegistry", "approveMeasurement", [measurementOf(args), args.label ?? ""]);
    case "revoke-measurement":
      return call("TeeRegistry", "revokeMeasurement", [
        measurementOf(args),
        parseBool(need(args.forCause, "for-cause"), "for-cause"),
      ]);
    case "set-slash-params":
      return call("InferenceLedger", "setSlashParams", [
        parseOffence(need(args.offence, "offence")),
        parseUint(need(args.bps, "bps"), "bps", 10_000n),
        parseBool(need(args.jail, "jail"), "jail"),
        parseUint(args.cooldown ?? "86400", "cooldown", 90n * 86_400n),
      ]);
    case "set-sample-rate":
      return call("InferenceLedger", "setSampleRate", [sampleRateOf(args)]);
    case "set-min-stake":
      return call("NodeStaking", "setMinStake", [
        parseRole(need(args.role, "role")),
        parseOpg(need(args.amount, "amount")),
      ]);
    case "set-unbonding-delay": {
      const delay = parseUint(need(args.seconds, "seconds"), "seconds");
      if (ctx.latency === undefined) throw new Error("set-unbonding-delay needs ctx.latency");
      checkExitWindow(
        { unbondingDelay: delay, ...(await ctx.latency()) },
        "this unbonding delay and the governor's settings",
      );
      return call("NodeStaking", "setUnbondingDelay", [delay]);
    }
    case "set-assignment-window":
      return call("InferenceLedger", "setAssignmentWindow", [
        parseUint(need(args.seconds, "seconds"), "seconds", 3_600n),
      ]);
    case "call":
      return rawCall(args, ctx.addresses);
  }
}

/** --ppm (1..1,000,000) or --rate (a fraction in (0, 1]). */
function sampleRateOf(args: ActionArgs): bigint {
  const hasPpm = args.ppm !== undefined && args.ppm !== "";
  const hasRate = args.rate !== undefined && args.rate !== "";
  if (hasPpm === hasRate) {
    throw new InputError("pass exactly one of --rate (0..1) and --ppm (1..1,000,000)");
  }
  if (hasPpm) {
    const ppm = parseUint(args.ppm!, "ppm", 1_000_000n);
    if (ppm === 0n)
      throw new InputError("--ppm must be at least 1", { details: { ppm: args.ppm } });
    return ppm;
  }
  const rate = Number(args.rate);
  if (!/^(0(\.[0-9]+)?|1(\.0*)?)$/.test(args.rate!) || !(rate > 0 && rate <= 1)) {
    throw new InputError("--rate must be a decimal fraction in (0, 1]", {
      details: { rate: args.rate },
    });
  }
  const ppm = BigInt(Math.round(rate * 1_000_000));
  if (ppm === 0n)
    throw new InputError("--rate is below one part per million", { details: { rate: args.rate } });
  return ppm;
}

function measurementOf(args: ActionArgs): string {
  const pcrs = [args.pcr0, args.pcr1, args.pcr2].filter(
    (p): p is string => p !== undefined && p !== "",
  );
  if (args.measurement !== undefined && args.measurement !== "") {
    if (pcrs.length > 0)
      throw new InputError("pass either --measurement or --pcr0/--pcr1/--pcr2, not both");
    return parseBytes32(args.measurement, "measurement");
  }
  if (pcrs.length === 0) {
    throw new InputError("no measurement given", {
      hint: "pass --measurement 0x.. or --pcr0 --pcr1 --pcr2",
    });
  }
  return measurementFromPcrs(pcrs);
}

/** A raw call: `--target` (an address or a contract of the record), `--signature "fn(type,...)"`, `--args`. */
function rawCall(args: ActionArgs, addresses: Record<string, string>): ProposalCall {
  const targetArg = need(args.target, "target");
  const target = isAddress(targetArg) ? getAddress(targetArg) : addresses[targetArg];
  if (target === undefined) {
    throw new InputError(
      `--target ${targetArg} is neither an address nor a contract of the record`,
      {
        details: { known: Object.keys(addresses).join(", ") },
      },
    );
  }
  const signature = need(args.signature, "signature").trim();
  let fragment: FunctionFragment;
  try {
    fragment = FunctionFragment.from(signature.replace(/^function\s+/, ""));
  } catch (cause) {
    throw new InputError(`--signature "${signature}" is not a function signature`, {
      cause,
      hint: 'write it as name(type,...), e.g. "setMinStake(uint8,uint256)"',
    });
  }
  const iface: Interface = new AbiInterface([fragment]);
  const values = parseArgs(
    args.args ?? "",
    fragment.inputs.map((i) => i.type),
  );
  let data: string;
  try {
    data = iface.encodeFunctionData(fragment.name, values);
  } catch (cause) {
    throw new InputError(`--args do not fit ${signature}`, {
      cause,
      details: { args: args.args ?? "", reason: (cause as Error).message.split(" (")[0] },
    });
  }
  const value = args.value === undefined || args.value === "" ? 0n : parseUint(args.value, "value");
  return { target, value, data };
}

/** `--args`: a JSON array (any types), or comma-separated values; "true"/"false" become booleans. */
export function parseArgs(text: string, types: string[]): unknown[] {
  const trimmed = text.trim();
  let values: unknown[];
  if (trimmed.startsWith("[")) {
    try {
      values = JSON.parse(trimmed) as unknown[];
    } catch (cause) {
      throw new InputError("--args is not a valid JSON array", { cause, details: { args: text } });
    }
  } else {
    values = trimmed === "" ? [] : trimmed.split(",").map((v) => v.trim());
  }
  if (values.length !== types.length) {
    throw new InputError(
      `--args has ${values.length} value(s); the signature takes ${types.length}`,
      {
        details: { args: text, types: types.join(",") },
      },
    );
  }
  return values.map((v, i) =>
    types[i] === "bool" && typeof v === "string" ? parseBool(v, `argument ${i + 1}`) : v,
  );
}

function parseOffence(value: string): number {
  const key = value.trim().toUpperCase().replace(/-/g, "_");
  const byName = (OFFENCES as readonly string[]).indexOf(key);
  if (byName >= 0) return byName;
  if (/^\d+$/.test(key)) return Number(key);
  throw new InputError(`unknown offence "${value}"`, {
    hint: `one of ${OFFENCES.map((o) => o.toLowerCase().replace(/_/g, "-")).join(", ")} (or its number)`,
  });
}

function parseUint(value: string, what: string, max?: bigint): bigint {
  if (!/^\d+$/.test(value.trim())) {
    throw new InputError(`--${what} must be a whole number`, { details: { [what]: value } });
  }
  const n = BigInt(value.trim());
  if (max !== undefined && n > max) {
    throw new InputError(`--${what} must be at most ${max}`, { details: { [what]: value } });
  }
  return n;
}

function parseBool(value: string, what: string): boolean {
  const v = value.trim().toLowerCase();
  if (v === "true" || v === "yes") return true;
  if (v === "false" || v === "no") return false;
  throw new InputError(`${what} must be true or false`, { details: { [what]: value } });
}

function need(value: string | undefined, option: string): string {
  if (value === undefined || value === "") {
    throw new InputError(`--${option} is required`, { hint: `pass --${option} <value>` });
  }
  return value;
}
