/**
 * What `opg:deploy` checks before its first transaction, and the plan of transactions it will send.
 *
 * A deployment to a real network must not stop half-way for a reason that was knowable before it began
 * (issue 14: on chain 4242 the old deploy refused the development verifier only after OPGToken, a sealed
 * VestingVault and NodeStaking were on chain). So every refusal that depends only on the options, the
 * chain id, the deployment record and the deployer's balance is made here, as a DeployPreflightError
 * whose `problem` names what is wrong, and nothing is sent:
 *
 *   chain       the record belongs to another chain; a development verifier asked for off 31337/1337
 *   plan        the plan has no rewards-pool schedule, or differs from the one the record started with
 *   verifier    no verifier off local chains; quorum attesters not distinct non-zero addresses, threshold
 *               not in 1..attesters, max age not in 1 s..7 d; another kind than a resumed record's
 *   governance  guardian / rewards updater missing (or the deployer) off local chains; stakers could not
 *               exit before a governance change lands; governor settings out of range
 *   balance     the deployer cannot pay for the remaining transactions at the current fee (estimate)
 *
 * `planSystemDeployment` lists the transactions in order (contract deploys and calls with their key
 * arguments); `opg:deploy --dry-run` prints it and stops.
 */
import type { HardhatEthers } from "@nomicfoundation/hardhat-ethers/types";
import { ZeroAddress, formatEther, getAddress, isAddress } from "ethers";

import type { BaseErrorOptions } from "../common/errors.js";
import { InputError } from "../common/errors.js";
import type { DeploymentRecord } from "../chain/deployment.js";
import { readRecord } from "../chain/deployment.js";
import type { GovernorSettings } from "../governance/params.js";
import {
  DEFAULT_GOVERNOR_SETTINGS,
  DEFAULT_TIMELOCK_DELAY,
  checkExitWindow,
  resolveKeyHolders,
  seconds,
} from "../governance/params.js";
import type { StakingParams } from "../staking/deploy.js";
import { DEFAULT_STAKING_PARAMS } from "../staking/deploy.js";
import { planHashOf } from "../vesting/encode.js";
import type { Plan } from "../vesting/plan.js";
import { loadPlan } from "../vesting/plan.js";
import type { SystemDeployOptions } from "./system.js";

export const LOCAL_CHAIN_IDS = [31337n, 1337n];

/** QuorumAttestationVerifier.MAX_ATTESTATION_AGE. */
export const MAX_QUORUM_MAX_AGE = 7n * 86_400n;
/** Seconds a quorum attestation stays usable after the attesters checked the document (default 1 day). */
export const DEFAULT_QUORUM_MAX_AGE = 86_400n;

export type PreflightProblem = "chain" | "plan" | "verifier" | "governance" | "balance";

/** A deployment refused before anything was sent; `problem` names the part of the configuration. */
export class DeployPreflightError extends InputError {
  override name = "DeployPreflightError";
  constructor(
    readonly problem: PreflightProblem,
    message: string,
    options: BaseErrorOptions = {},
  ) {
    super(message, { ...options, details: { problem, ...options.details } });
  }
}

/** Which IAttestationVerifier TeeRegistry checks enclave attestations with. */
export type VerifierConfig =
  { kind: "dev" } | { kind: "quorum"; attesters: string[]; threshold: number; maxAge: bigint };

/**
 * The verifier options as the task gets them: `--verifier dev|quorum`, `--attesters 0xA,0xB,0xC`,
 * `--threshold 2`, `--attestation-max-age 86400`. Undefined when no verifier was named (the default:
 * the development verifier on a local chain, a refusal elsewhere).
 */
export function parseVerifierOptions(given: {
  verifier: string;
  attesters: string;
  threshold: number;
  maxAge: bigint;
}): VerifierConfig | undefined {
  const kind = given.verifier.trim();
  const attesters = given.attesters
    .split(",")
    .map((a) => a.trim())
    .filter((a) => a !== "");
  if (kind === "") {
    if (attesters.length > 0 || given.threshold !== 0)
      throw new DeployPreflightError(
        "verifier",
        "--attesters and --threshold need --verifier quorum",
        {
          hint: "pass --verifier quorum --attesters 0xA,0xB,0xC --threshold 2",
        },
      );
    return undefined;
  }
  if (kind === "dev") {
    if (attesters.length > 0 || given.threshold !== 0)
      throw new DeployPreflightError(
        "verifier",
        "the development verifier takes no attesters or threshold",
      );
    return { kind: "dev" };
  }
  if (kind !== "quorum")
    throw new DeployPreflightError("verifier", `--verifier is ${kind}, expected dev or quorum`, {
      details: { verifier: kind },
    });
  const bad = attesters.find((a) => !isAddress(a));
  if (bad !== undefined)
    throw new DeployPreflightError("verifier", `attester ${String(bad)} is not an address`, {
      details: { attester: bad },
      hint: "--attesters takes comma-separated 0x-prefixed addresses",
    });
  return {
    kind: "quorum",
    attesters: attesters.map((a) => getAddress(a)),
    threshold: given.threshold,
    maxAge: given.maxAge,
  };
}

/** The verifier this chain gets: checked against the chain and the quorum contract's own rules. */
export function checkVerifierConfig(
  chainId: bigint,
  config: VerifierConfig | undefined,
): VerifierConfig {
  const local = LOCAL_CHAIN_IDS.includes(chainId);
  const quorumHint =
    "pass --verifier quorum --attesters 0xA,0xB,0xC --threshold 2 (docs/staking-tee.md)";
  if (config === undefined) {
    if (local) return { kind: "dev" };
    throw new DeployPreflightError(
      "verifier",
      `chain ${chainId} is not local: deploy the quorum verifier with its attesters`,
      { details: { chainId }, hint: quorumHint },
    );
  }
  if (config.kind === "dev") {
    if (local) return config;
    throw new DeployPreflightError(
      "chain",
      `chain ${chainId} is not local: the development attestation verifier accepts any document and deploys only on 31337/1337`,
      { details: { chainId }, hint: quorumHint },
    );
  }
  const { attesters, threshold, maxAge } = config;
  if (attesters.length === 0)
    throw new DeployPreflightError("verifier", "the quorum verifier needs at least one attester", {
      hint: quorumHint,
    });
  const seen = new Set<string>();
  for (const a of attesters) {
    const address = getAddress(a);
    if (address === ZeroAddress)
      throw new DeployPreflightError("verifier", "an attester is the zero address");
    if (seen.has(address))
      throw new DeployPreflightError("verifier", `attester ${address} is listed twice`, {
        details: { attester: address },
      });
    seen.add(address);
  }
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > attesters.length)
    throw new DeployPreflightError(
      "verifier",
      `the quorum threshold ${threshold} is not in 1..${attesters.length} (the number of attesters)`,
      { details: { threshold, attesters: attesters.length } },
    );
  if (maxAge < 1n || maxAge > MAX_QUORUM_MAX_AGE)
    throw new DeployPreflightError(
      "verifier",
      `the attestation max age ${maxAge} s is not in 1..${MAX_QUORUM_MAX_AGE} s (7 d)`,
      { details: { maxAge } },
    );
  return { kind: "quorum", attesters: [...seen], threshold, maxAge };
}

/** The parts of SystemDeployOptions the preflight reads (offchain/deploy/system.ts). */
export type PreflightOptions = Pick<
  SystemDeployOptions,
  | "dir"
  | "plan"
  | "planFile"
  | "batchSize"
  | "timelockDelay"
  | "votingDelay"
  | "votingPeriod"
  | "quorumPercent"
  | "proposalThreshold"
  | "stakingParams"
  | "rewardsDelay"
  | "rewardsUpdater"
  | "guardian"
  | "verifier"
  | "beneficiarySigners"
  | "assignmentWindow"
>;

/** One transaction of the deployment, in order. */
export interface PlannedStep {
  kind: "deploy" | "call";
  /** "OPGToken" (deploy) or "NodeStaking.grantRole" (call). */
  target: string;
  /** The key arguments, readable. */
  args: string;
  /** An upper estimate of its gas (measured on the project's contracts, with a margin). */
  gas: bigint;
  /** Already done according to the deployment record (a resumed deployment skips it). */
  done: boolean;
}

export interface DeployPreflight {
  chainId: bigint;
  local: boolean;
  deployer: string;
  balance: bigint;
  /** The fee per gas the estimate uses (maxFeePerGas, else gasPrice). */
  feePerGas: bigint;
  /** Gas of the steps not yet done × feePerGas. */
  estimatedCost: bigint;
  verifier: VerifierConfig;
  guardian: string;
  rewardsUpdater: string;
  defaulted: Array<"guardian" | "rewardsUpdater">;
  settings: GovernorSettings;
  timelockDelay: bigint;
  stakingParams: StakingParams;
  /** InferenceLedger's assignment window of on-chain requests, in seconds (0: a race). */
  assignmentWindow: number;
  steps: PlannedStep[];
  /** Things that will make the run pause (it can be resumed), said before it starts. */
  notes: string[];
}

/** InferenceLedger's assignment window off local chains unless given (docs/anchoring.md). */
export const DEFAULT_ASSIGNMENT_WINDOW_SECONDS = 30;
/** InferenceLedger.MAX_ASSIGNMENT_WINDOW. */
export const MAX_ASSIGNMENT_WINDOW_SECONDS = 3_600;

/**
 * Gas per kind of step, upper estimates: the gas used by a deployment of this project on a Hardhat
 * chain, rounded up by about a quarter (contract sizes change with the code; rerun a deploy on a local
 * chain and compare when they do).
 */
const GAS: Record<string, bigint> = {
  OPGToken: 2_600_000n,
  VestingVault: 3_900_000n,
  NodeStaking: 6_400_000n,
  DevAttestationVerifier: 250_000n,
  QuorumAttestationVerifier: 1_700_000n,
  TeeRegistry: 3_300_000n,
  ModelRegistry: 1_500_000n,
  InferenceLedger: 6_500_000n,
  ContributorRewards: 3_200_000n,
  OPGTimelock: 2_300_000n,
  OPGGovernor: 5_500_000n,
  approve: 60_000n,
  createSchedules: 260_000n, // per schedule
  seal: 80_000n,
  call: 120_000n,
};

function deployStep(record: DeploymentRecord | undefined, name: string, args: string): PlannedStep {
  return {
    kind: "deploy",
    target: name,
    args,
    gas: GAS[name] ?? 3_000_000n,
    done: record?.contracts[name] !== undefined,
  };
}

function callStep(target: string, args: string, gas = GAS.call!, done = false): PlannedStep {
  return { kind: "call", target, args, gas, done };
}

/**
 * Every check above, then the plan. Reads the chain (chain id, balance, fees) and the record; sends
 * nothing.
 */
export async function preflightSystem(
  ethers: HardhatEthers,
  options: PreflightOptions,
): Promise<DeployPreflight> {
  const [deployer] = await ethers.getSigners();
  if (deployer === undefined)
    throw new DeployPreflightError("chain", "no deployer account is configured for this network");
  const me = deployer.address;
  const { chainId } = await ethers.provider.getNetwork();
  const local = LOCAL_CHAIN_IDS.includes(chainId);

  // Chain: a record of another chain would be refused after connecting, so refuse it now.
  const record = await readRecord(options.dir);
  if (record !== undefined && record.chainId !== chainId.toString())
    throw new DeployPreflightError(
      "chain",
      `the deployment record in ${options.dir} is for chain ${record.chainId}, not ${chainId}`,
      { hint: "use the right --network, or move the old record away to deploy afresh" },
    );

  // Plan: the rewards pool funds ContributorRewards; a resumed run must seal the plan it started.
  const { plan } = options;
  const pool = plan.schedules.find((s) => s.categoryName === "rewards-pool");
  if (pool === undefined)
    throw new DeployPreflightError("plan", "the plan has no schedule in category rewards-pool", {
      details: { planFile: options.planFile },
      hint: "ContributorRewards is funded by the plan's rewards-pool schedule; add one to the plan",
    });
  const planHash = planHashOf(plan.schedules.map((s) => s.params));
  if (record?.vesting !== undefined && record.vesting.planHash !== planHash)
    throw new DeployPreflightError("plan", "the plan file changed since this deployment started", {
      details: { recorded: record.vesting.planHash, file: planHash, planFile: options.planFile },
      hint: "a sealed plan cannot change; restore the published file or deploy afresh on a new record",
    });

  // Verifier: a resumed deployment keeps the kind it started with (TeeRegistry points at it).
  const verifier = checkVerifierConfig(chainId, options.verifier);
  const started = (["DevAttestationVerifier", "QuorumAttestationVerifier"] as const).find(
    (name) => record?.contracts[name] !== undefined,
  );
  const wanted = verifier.kind === "dev" ? "DevAttestationVerifier" : "QuorumAttestationVerifier";
  if (started !== undefined && started !== wanted)
    throw new DeployPreflightError(
      "verifier",
      `this deployment started with ${started}; it cannot continue with ${wanted}`,
      {
        details: { dir: options.dir },
        hint: "rerun with the verifier it started with, or move the record away to deploy afresh",
      },
    );

  // Governance: key holders, the exit window, the governor's settings.
  let holders: ReturnType<typeof resolveKeyHolders>;
  try {
    holders = resolveKeyHolders(chainId, me, options);
  } catch (error) {
    throw asPreflight("governance", error);
  }
  for (const [key, address] of [
    ["--guardian", holders.guardian],
    ["--rewards-updater", holders.rewardsUpdater],
  ] as const) {
    if (!isAddress(address) || getAddress(address) === ZeroAddress)
      throw new DeployPreflightError("governance", `${key} is not a non-zero address`, {
        details: { [key]: address },
      });
    if (!local && getAddress(address) === getAddress(me))
      throw new DeployPreflightError(
        "governance",
        `chain ${chainId} is not local: ${key} must not be the deployer ${me}`,
        { hint: "the deployer keeps no power after the deployment; name the council or service" },
      );
  }
  const stakingParams: StakingParams = {
    ...DEFAULT_STAKING_PARAMS,
    ...options.stakingParams,
    burnSlashed: true,
    treasury: ZeroAddress,
  };
  const settings: GovernorSettings = {
    votingDelay: options.votingDelay ?? DEFAULT_GOVERNOR_SETTINGS.votingDelay,
    votingPeriod: options.votingPeriod ?? DEFAULT_GOVERNOR_SETTINGS.votingPeriod,
    proposalThreshold: options.proposalThreshold ?? DEFAULT_GOVERNOR_SETTINGS.proposalThreshold,
    quorumPercent: options.quorumPercent ?? DEFAULT_GOVERNOR_SETTINGS.quorumPercent,
  };
  const timelockDelay = options.timelockDelay ?? DEFAULT_TIMELOCK_DELAY;
  try {
    checkExitWindow(
      { unbondingDelay: stakingParams.unbondingDelay, ...settings, timelockDelay },
      "the deploy's parameters",
    );
  } catch (error) {
    throw asPreflight("governance", error);
  }
  if (settings.quorumPercent < 1n || settings.quorumPercent > 100n)
    throw new DeployPreflightError(
      "governance",
      `the governor's quorum ${settings.quorumPercent}% is not in 1..100`,
    );
  if (settings.votingPeriod < 1n || settings.votingPeriod > 0xffff_ffffn)
    throw new DeployPreflightError(
      "governance",
      `the voting period ${settings.votingPeriod} s is not in 1..2^32-1`,
    );
  if (settings.votingDelay > 0xffff_ffff_ffffn)
    throw new DeployPreflightError(
      "governance",
      `the voting delay ${settings.votingDelay} s does not fit uint48`,
    );
  if (settings.proposalThreshold > plan.totalSupply)
    throw new DeployPreflightError(
      "governance",
      "the proposal threshold is above the whole OPG supply: no one could ever propose",
      { details: { proposalThreshold: settings.proposalThreshold, supply: plan.totalSupply } },
    );

  const assignmentWindow =
    options.assignmentWindow ?? (local ? 0 : DEFAULT_ASSIGNMENT_WINDOW_SECONDS);
  if (
    !Number.isInteger(assignmentWindow) ||
    assignmentWindow < 0 ||
    assignmentWindow > MAX_ASSIGNMENT_WINDOW_SECONDS
  )
    throw new DeployPreflightError(
      "governance",
      `the assignment window ${assignmentWindow} s is not an integer in 0..${MAX_ASSIGNMENT_WINDOW_SECONDS}`,
      { details: { assignmentWindow } },
    );

  // The plan of transactions, then what it costs.
  const notes: string[] = [];
  const steps = planSteps(record, options, {
    me,
    verifier,
    guardian: holders.guardian,
    rewardsUpdater: holders.rewardsUpdater,
    settings,
    timelockDelay,
    stakingParams,
    assignmentWindow,
  });
  if (record?.contracts.ContributorRewards === undefined) {
    const beneficiary = getAddress(pool.params.beneficiary);
    const signers = await Promise.all(
      (options.beneficiarySigners ?? []).map(async (s) => getAddress(await s.getAddress())),
    );
    if (!signers.includes(beneficiary))
      notes.push(
        `the rewards-pool schedule #${pool.id}'s beneficiary ${beneficiary} is not an account here: the run pauses after ContributorRewards is deployed until ${beneficiary} calls VestingVault.transferBeneficiary(${pool.id}, ContributorRewards); then run the deploy again`,
      );
  }
  const fees = await ethers.provider.getFeeData();
  const feePerGas = fees.maxFeePerGas ?? fees.gasPrice ?? 0n;
  const gas = steps.filter((s) => !s.done).reduce((sum, s) => sum + s.gas, 0n);
  const estimatedCost = gas * feePerGas;
  const balance = await ethers.provider.getBalance(me);
  if (balance < estimatedCost)
    throw new DeployPreflightError(
      "balance",
      `the deployer ${me} holds ${formatEther(balance)} ETH; the deployment needs about ${formatEther(estimatedCost)} ETH`,
      {
        details: { balance, estimatedCost, gas, feePerGas },
        hint: `fund ${me} with at least ${formatEther(estimatedCost - balance)} ETH more, then run it again (a --dry-run prints the plan)`,
      },
    );

  return {
    chainId,
    local,
    deployer: me,
    balance,
    feePerGas,
    estimatedCost,
    verifier,
    guardian: holders.guardian,
    rewardsUpdater: holders.rewardsUpdater,
    defaulted: holders.defaulted,
    settings,
    timelockDelay,
    stakingParams,
    assignmentWindow,
    steps,
    notes,
  };
}

/** An InputError about `problem` as a DeployPreflightError (same message, details and hint). */
export function asPreflight(problem: PreflightProblem, error: unknown): unknown {
  if (!(error instanceof InputError) || error instanceof DeployPreflightError) return error;
  return new DeployPreflightError(problem, error.message, {
    details: error.details,
    ...(error.hint === undefined ? {} : { hint: error.hint }),
    cause: error,
  });
}

function planSteps(
  record: DeploymentRecord | undefined,
  options: PreflightOptions,
  c: {
    me: string;
    verifier: VerifierConfig;
    guardian: string;
    rewardsUpdater: string;
    settings: GovernorSettings;
    timelockDelay: bigint;
    stakingParams: StakingParams;
    assignmentWindow: number;
  },
): PlannedStep[] {
  const { plan } = options;
  const batchSize = options.batchSize ?? 10;
  const created = record?.vesting?.created ?? 0;
  const sealed = record?.vesting?.sealed != null;
  const steps: PlannedStep[] = [];
  const total = plan.totalSupply.toString();
  steps.push(deployStep(record, "OPGToken", `supply ${total} wei to the deployer ${c.me}`));
  steps.push(deployStep(record, "VestingVault", "token OPGToken, owner the deployer"));
  for (let first = 0; first < plan.schedules.length; first += batchSize) {
    const batch = plan.schedules.slice(first, first + batchSize);
    const done = sealed || first + batch.length <= created;
    const sum = batch.reduce((a, s) => a + s.params.total, 0n);
    steps.push(callStep("OPGToken.approve", `VestingVault, ${sum} wei`, GAS.approve, done));
    steps.push(
      callStep(
        "VestingVault.createSchedules",
        `schedules ${first}..${first + batch.length - 1}`,
        GAS.createSchedules! * BigInt(batch.length),
        done,
      ),
    );
  }
  const planHash = planHashOf(plan.schedules.map((s) => s.params));
  steps.push(
    callStep("VestingVault.seal", `plan hash ${planHash} (${options.planFile})`, GAS.seal, sealed),
  );
  steps.push(
    deployStep(
      record,
      "NodeStaking",
      `token OPGToken, unbonding delay ${seconds(c.stakingParams.unbondingDelay)}, slashed stake burnt`,
    ),
  );
  const v = c.verifier;
  if (v.kind === "dev") {
    steps.push(
      deployStep(record, "DevAttestationVerifier", "local chains only, accepts any document"),
    );
  } else {
    steps.push(
      deployStep(
        record,
        "QuorumAttestationVerifier",
        `attesters ${v.attesters.join(", ")}; threshold ${v.threshold} of ${v.attesters.length}; max age ${seconds(v.maxAge)}`,
      ),
    );
  }
  const verifierName = v.kind === "dev" ? "DevAttestationVerifier" : "QuorumAttestationVerifier";
  const tee = record?.contracts.TeeRegistry !== undefined;
  steps.push(deployStep(record, "TeeRegistry", `staking NodeStaking, verifier ${verifierName}`));
  steps.push(deployStep(record, "ModelRegistry", ""));
  steps.push(
    deployStep(record, "InferenceLedger", "NodeStaking, TeeRegistry, ModelRegistry, OPGToken"),
  );
  const ledger = record?.contracts.InferenceLedger !== undefined;
  steps.push(
    callStep("NodeStaking.grantRole", "SLASHER_ROLE -> InferenceLedger", GAS.call, ledger && tee),
  );
  if (c.assignmentWindow > 0)
    steps.push(
      callStep("InferenceLedger.setAssignmentWindow", `${c.assignmentWindow} s`, GAS.call, ledger),
    );
  steps.push(
    deployStep(
      record,
      "ContributorRewards",
      `updater ${c.rewardsUpdater}, guardian ${c.guardian}, root delay ${seconds(options.rewardsDelay ?? 86_400n)}`,
    ),
  );
  const pool = plan.schedules.find((s) => s.categoryName === "rewards-pool")!;
  const rewards = record?.contracts.ContributorRewards !== undefined;
  steps.push(
    callStep(
      "VestingVault.transferBeneficiary",
      `schedule #${pool.id} -> ContributorRewards (sent by its beneficiary ${getAddress(pool.params.beneficiary)})`,
      GAS.call,
      rewards,
    ),
  );
  steps.push(
    callStep("ContributorRewards.bindSchedule", `VestingVault #${pool.id}`, GAS.call, rewards),
  );
  steps.push(
    deployStep(
      record,
      "OPGTimelock",
      "delay 0 while the deployment hands over; the deployer proposes",
    ),
  );
  const s = c.settings;
  steps.push(
    deployStep(
      record,
      "OPGGovernor",
      `voting delay ${seconds(s.votingDelay)}, voting period ${seconds(s.votingPeriod)}, quorum ${s.quorumPercent}%, proposal threshold ${s.proposalThreshold} wei`,
    ),
  );
  const governed: Array<[string, string[]]> = [
    ["NodeStaking", ["DEFAULT_ADMIN_ROLE", "GOVERNANCE_ROLE", "GOVERNANCE_SLASHER_ROLE"]],
    ...(v.kind === "quorum"
      ? ([["QuorumAttestationVerifier", ["DEFAULT_ADMIN_ROLE", "GOVERNANCE_ROLE"]]] as Array<
          [string, string[]]
        >)
      : []),
    ["TeeRegistry", ["DEFAULT_ADMIN_ROLE", "GOVERNANCE_ROLE"]],
    ["InferenceLedger", ["DEFAULT_ADMIN_ROLE", "GOVERNOR_ROLE"]],
    ["ContributorRewards", ["DEFAULT_ADMIN_ROLE"]],
  ];
  const handedOver = record?.contracts.OPGGovernor !== undefined;
  steps.push(
    callStep("NodeStaking.grantRole", `VETO_ROLE -> guardian ${c.guardian}`, GAS.call, handedOver),
  );
  for (const [name, roles] of governed)
    steps.push(
      callStep(
        `${name}.grantRole`,
        `${roles.join(", ")} -> OPGTimelock`,
        GAS.call! * BigInt(roles.length),
        handedOver,
      ),
    );
  steps.push(callStep("VestingVault.transferOwnership", "-> OPGTimelock", GAS.call, handedOver));
  steps.push(
    callStep(
      "OPGTimelock.schedule+execute",
      "VestingVault.acceptOwnership()",
      GAS.call! * 2n,
      handedOver,
    ),
  );
  if (getAddress(c.guardian) !== getAddress(c.me))
    steps.push(callStep("NodeStaking.renounceRole", "VETO_ROLE (deployer)", GAS.call, handedOver));
  for (const [name, roles] of governed)
    steps.push(
      callStep(
        `${name}.renounceRole`,
        `${[...roles].reverse().join(", ")} (deployer)`,
        GAS.call! * BigInt(roles.length),
        handedOver,
      ),
    );
  steps.push(
    callStep(
      "OPGTimelock.scheduleBatch+executeBatch",
      `PROPOSER_ROLE, CANCELLER_ROLE, EXECUTOR_ROLE -> OPGGovernor; updateDelay(${seconds(c.timelockDelay)})`,
      GAS.call! * 6n,
      handedOver,
    ),
  );
  steps.push(
    callStep(
      "OPGTimelock.renounceRole",
      "PROPOSER_ROLE, CANCELLER_ROLE, EXECUTOR_ROLE, DEFAULT_ADMIN_ROLE (deployer)",
      GAS.call! * 4n,
      handedOver,
    ),
  );
  return steps;
}

/** The published plan file, read and validated; a missing or invalid file is problem "plan". */
export async function loadPlanForDeploy(file: string): Promise<Plan> {
  try {
    return await loadPlan(file);
  } catch (error) {
    throw asPreflight("plan", error);
  }
}

/** The plan as `opg:deploy --dry-run` prints it. */
export function formatPreflight(p: DeployPreflight, network: string): string {
  const lines: string[] = [];
  lines.push(
    `Preflight OK for ${network} (chain ${p.chainId}, ${p.local ? "local" : "not local"}): deployer ${p.deployer}`,
  );
  lines.push(
    `  balance ${formatEther(p.balance)} ETH; estimated cost ${formatEther(p.estimatedCost)} ETH at ${p.feePerGas} wei/gas`,
  );
  const v = p.verifier;
  lines.push(
    v.kind === "dev"
      ? "  verifier: DevAttestationVerifier (local chains only)"
      : `  verifier: QuorumAttestationVerifier, ${v.threshold} of ${v.attesters.length} attesters, max age ${seconds(v.maxAge)}`,
  );
  lines.push(`  guardian ${p.guardian}; rewards updater ${p.rewardsUpdater}`);
  const pending = p.steps.filter((s) => !s.done);
  lines.push(
    `Plan: ${pending.length} step(s)${pending.length < p.steps.length ? ` (${p.steps.length - pending.length} already done)` : ""}:`,
  );
  let n = 0;
  for (const s of p.steps) {
    const mark = s.done ? "   done" : `${String(++n).padStart(4)}.`;
    const args = s.args === "" ? "" : `  ${s.args}`;
    lines.push(`${mark} ${s.kind === "deploy" ? "deploy" : "call  "} ${s.target}${args}`);
  }
  if (pending.length < p.steps.length)
    lines.push(
      "Note: calls are marked done from the record's contracts; each is checked on chain when the run reaches it, and only what is missing is sent",
    );
  for (const note of p.notes) lines.push(`Note: ${note}`);
  return lines.join("\n");
}
