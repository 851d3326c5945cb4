/**
 * Deploys the whole protocol, resumably, and hands governance to a TimelockController in the same run:
 *
 *   OPGToken + VestingVault + the published plan (sealed)        offchain/vesting/deploy.ts
 *   NodeStaking, an attestation verifier, TeeRegistry: DevAttestationVerifier on local chains, else
 *     QuorumAttestationVerifier with its attesters and threshold (governed by the timelock like the rest)
 *   ModelRegistry, InferenceLedger (a slasher in NodeStaking)
 *   ContributorRewards, bound to the plan's rewards-pool schedule
 *   OPGTimelock, which ends up holding every governance role and the vault's ownership
 *   OPGGovernor on OPG votes, which ends up the timelock's only proposer, canceller and executor
 *
 * Before sending anything it runs the preflight (offchain/deploy/preflight.ts): chain id and record, plan,
 * verifier configuration, governance configuration (stakers can leave before a governance change lands; off
 * local chains a guardian and a rewards updater that are not the deployer) and the deployer's balance
 * against the estimated cost. Each refusal is a DeployPreflightError naming the problem.
 * At the end the deployer holds no role on any contract, and deployments/<network>/governance.json says
 * who holds what (opg:governance:audit checks the chain against it).
 *
 * Every contract goes through the deployment record (deployments/<network>/deployment.json), and every
 * role grant, rotation and binding checks the chain first, so a rerun after an interruption completes
 * the deployment without repeating anything. deployments/<network>/rewards.json (the epoch
 * configuration of offchain/rewards) is written once.
 */
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";

import type { HardhatEthers } from "@nomicfoundation/hardhat-ethers/types";
import type { BaseContract, ContractTransactionResponse, Signer } from "ethers";
import { ZeroAddress, ZeroHash, getAddress, id as keccakId } from "ethers";

import type {
  ContributorRewards,
  DevAttestationVerifier,
  InferenceLedger,
  ModelRegistry,
  NodeStaking,
  OPGGovernor,
  OPGTimelock,
  OPGToken,
  QuorumAttestationVerifier,
  TeeRegistry,
  VestingVault,
} from "../../types/ethers-contracts/index.js";
import { InputError } from "../common/errors.js";
import { stringifyJson } from "../common/json.js";
import type { Log } from "../chain/deploy.js";
import { ensureDeployed } from "../chain/deploy.js";
import { readRecord } from "../chain/deployment.js";
import { DEFAULT_REGISTRATION_TTL } from "../staking/deploy.js";
import { deployVesting } from "../vesting/deploy.js";

import type { GovernorSettings } from "../governance/params.js";
import { optionName } from "../governance/params.js";
import type { GovernanceRecord } from "../governance/record.js";
import { writeGovernanceRecord } from "../governance/record.js";
import type { StakingParams } from "../staking/deploy.js";
import type { Plan } from "../vesting/plan.js";

import { executeThroughTimelock, handOverTimelock } from "./governance.js";
import type { DeployPreflight, VerifierConfig } from "./preflight.js";
import { preflightSystem } from "./preflight.js";

export { LOCAL_CHAIN_IDS } from "./preflight.js";
const DAY = 86_400n;
/** The timelock has no delay yet while the deployment hands over governance. */
const noWait = async (): Promise<void> => {};

export interface SystemDeployOptions {
  /** deployments/<network> */
  dir: string;
  network: string;
  plan: Plan;
  planFile: string;
  batchSize?: number;
  /** Seconds every governance change waits in the timelock after its proposal passed (default 2 days). */
  timelockDelay?: bigint;
  /** OPGGovernor: seconds from a proposal to the start of voting (default 1 day). */
  votingDelay?: bigint;
  /** OPGGovernor: seconds the vote stays open (default 5 days). */
  votingPeriod?: bigint;
  /** OPGGovernor: quorum in percent of the supply (default 4). */
  quorumPercent?: bigint;
  /** OPGGovernor: votes (wei of OPG) a proposer needs (default 1,000,000 OPG). */
  proposalThreshold?: bigint;
  /** Overrides of NodeStaking's DEFAULT_STAKING_PARAMS (e.g. the unbonding delay). */
  stakingParams?: Partial<Omit<StakingParams, "burnSlashed" | "treasury">>;
  /**
   * InferenceLedger's assignment window of on-chain requests, in seconds (docs/anchoring.md, "Who
   * serves an on-chain request"): default 30 off local chains, 0 (a race) on 31337/1337.
   */
  assignmentWindow?: number;
  /** Seconds a proposed rewards root waits before it can be accepted (default 1 day). */
  rewardsDelay?: bigint;
  /** Rewards epochs: length in seconds (default 30 days); they start at the rewards pool's start. */
  epochLength?: bigint;
  /**
   * Holds UPDATER_ROLE on ContributorRewards (proposes rewards roots). Required off local chains; on
   * 31337/1337 it defaults to the deployer (and the log says so).
   */
  rewardsUpdater?: string;
  /**
   * The fast-acting guardian (a security council): VETO_ROLE on NodeStaking (cancels governance slashes
   * within the veto window) and GUARDIAN_ROLE on ContributorRewards (revokes a pending root). It must not
   * be the timelock, whose delay outlasts those windows. Required off local chains; on 31337/1337 it
   * defaults to the deployer (and the log says so).
   */
  guardian?: string;
  /** Signers that may act for planned beneficiaries (local chains: the node's accounts), to rotate the pool. */
  beneficiarySigners?: Signer[];
  /**
   * The attestation verifier: the development one (local chains only; the default there) or the quorum
   * verifier with its attesters (required off local chains).
   */
  verifier?: VerifierConfig;
  /** A preflight already made for these options (opg:deploy makes it first to print the plan). */
  preflight?: DeployPreflight;
  log?: Log;
}

export interface System {
  deployer: Signer;
  token: OPGToken;
  vault: VestingVault;
  staking: NodeStaking;
  tee: TeeRegistry;
  devVerifier: DevAttestationVerifier | undefined;
  /** The quorum verifier TeeRegistry checks attestations with (chains that are not local). */
  quorumVerifier: QuorumAttestationVerifier | undefined;
  registry: ModelRegistry;
  ledger: InferenceLedger;
  rewards: ContributorRewards;
  timelock: OPGTimelock;
  governor: OPGGovernor;
  planHash: string;
  rewardsScheduleId: number;
  addresses: Record<string, string>;
}

export async function deploySystem(
  ethers: HardhatEthers,
  options: SystemDeployOptions,
): Promise<System> {
  const log = options.log ?? (() => {});
  const [deployer] = await ethers.getSigners();
  if (deployer === undefined)
    throw new InputError("no deployer account is configured for this network");
  const me = deployer.address;
  const { dir } = options;

  // 0. Preflight, before anything is sent (offchain/deploy/preflight.ts): the chain and the record, the
  // plan, the verifier, the governance configuration, and the deployer's balance against the plan's cost.
  const preflight = options.preflight ?? (await preflightSystem(ethers, options));
  const { chainId, verifier, timelockDelay: delay, settings } = preflight;
  const params = preflight.stakingParams;
  const holders = {
    guardian: preflight.guardian,
    rewardsUpdater: preflight.rewardsUpdater,
  };
  for (const key of preflight.defaulted) {
    log(
      `${key} not given (${optionName(key)}): local chain ${chainId}, so it defaults to the deployer ${me}`,
    );
  }

  // 1. Token, vault and the sealed plan.
  const vesting = await deployVesting(deployer, {
    dir,
    network: options.network,
    plan: options.plan,
    planFile: options.planFile,
    ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
    log,
  });
  const record = (await readRecord(dir))!;
  const tokenAddress = await vesting.token.getAddress();

  const deploy = async <T extends BaseContract>(
    name: string,
    artifact: string,
    args: unknown[],
  ): Promise<T> => {
    const factory = await ethers.getContractFactory(artifact, deployer);
    const address = await ensureDeployed(
      deployer,
      record,
      dir,
      name,
      args.map((a) => (typeof a === "bigint" ? a.toString() : a)),
      async () => await factory.deploy(...args),
      log,
    );
    return factory.attach(address) as unknown as T;
  };

  // 2. Staking and the TEE registry (the development verifier only on local chains).
  const staking = await deploy<NodeStaking>("NodeStaking", "NodeStaking", [
    tokenAddress,
    me,
    params,
  ]);
  const stakingAddress = await staking.getAddress();
  let devVerifier: DevAttestationVerifier | undefined;
  let quorumVerifier: QuorumAttestationVerifier | undefined;
  if (verifier.kind === "dev") {
    devVerifier = await deploy<DevAttestationVerifier>(
      "DevAttestationVerifier",
      "DevAttestationVerifier",
      [],
    );
  } else {
    quorumVerifier = await deploy<QuorumAttestationVerifier>(
      "QuorumAttestationVerifier",
      "QuorumAttestationVerifier",
      [me, verifier.attesters, BigInt(verifier.threshold), verifier.maxAge],
    );
  }
  const tee = await deploy<TeeRegistry>("TeeRegistry", "TeeRegistry", [
    stakingAddress,
    await (devVerifier ?? quorumVerifier)!.getAddress(),
    me,
    DEFAULT_REGISTRATION_TTL,
  ]);

  // 3. Models and the ledger.
  const registry = await deploy<ModelRegistry>("ModelRegistry", "ModelRegistry", []);
  const ledger = await deploy<InferenceLedger>("InferenceLedger", "InferenceLedger", [
    me,
    stakingAddress,
    await tee.getAddress(),
    await registry.getAddress(),
    tokenAddress,
  ]);
  await grant(
    staking,
    await staking.SLASHER_ROLE(),
    await ledger.getAddress(),
    "NodeStaking SLASHER_ROLE -> InferenceLedger",
    log,
  );
  // While the deployer still holds GOVERNOR_ROLE (before the handover below).
  const window = BigInt(preflight.assignmentWindow);
  if (
    window !== (await ledger.assignmentWindow()) &&
    (await ledger.hasRole(await ledger.GOVERNOR_ROLE(), me))
  ) {
    await send(ledger.setAssignmentWindow(window));
    log(`InferenceLedger assignment window: ${window} s`);
  }

  // 4. Rewards, funded by the plan's rewards-pool schedule.
  const rewards = await deploy<ContributorRewards>("ContributorRewards", "ContributorRewards", [
    tokenAddress,
    me,
    holders.rewardsUpdater,
    holders.guardian,
    options.rewardsDelay ?? DAY,
  ]);
  const rewardsScheduleId = await bindRewardsPool(vesting.vault, rewards, options, log);
  await writeRewardsConfig(
    dir,
    options,
    record.contracts.InferenceLedger!.block,
    rewardsScheduleId,
  );

  // 5. Governance: a timelock, first with no delay so this run can hand everything over, then the real
  // delay; the governor on OPG votes becomes its proposer, canceller and executor.
  const timelock = await deploy<OPGTimelock>("OPGTimelock", "OPGTimelock", [
    0n,
    [me],
    [me],
    ZeroAddress,
  ]);
  const timelockAddress = await timelock.getAddress();
  const governor = await deploy<OPGGovernor>("OPGGovernor", "OPGGovernor", [
    tokenAddress,
    timelockAddress,
    settings.votingDelay,
    settings.votingPeriod,
    settings.proposalThreshold,
    settings.quorumPercent,
  ]);
  const guardian = holders.guardian;
  await grant(staking, roleId("VETO_ROLE"), guardian, "NodeStaking VETO_ROLE -> guardian", log);
  const governed: Array<
    [string, { grantRole: GrantRole; hasRole: HasRole; renounceRole: GrantRole }, string[]]
  > = [
    ["NodeStaking", staking, ["DEFAULT_ADMIN_ROLE", "GOVERNANCE_ROLE", "GOVERNANCE_SLASHER_ROLE"]],
    ...(quorumVerifier === undefined
      ? []
      : [
          [
            "QuorumAttestationVerifier",
            quorumVerifier,
            ["DEFAULT_ADMIN_ROLE", "GOVERNANCE_ROLE"],
          ] as [string, QuorumAttestationVerifier, string[]],
        ]),
    ["TeeRegistry", tee, ["DEFAULT_ADMIN_ROLE", "GOVERNANCE_ROLE"]],
    ["InferenceLedger", ledger, ["DEFAULT_ADMIN_ROLE", "GOVERNOR_ROLE"]],
    ["ContributorRewards", rewards, ["DEFAULT_ADMIN_ROLE"]],
  ];
  for (const [name, contract, roles] of governed) {
    for (const role of roles)
      await grant(contract, roleId(role), timelockAddress, `${name} ${role} -> OPGTimelock`, log);
  }
  if ((await vesting.vault.owner()) === me) {
    if ((await vesting.vault.pendingOwner()) !== timelockAddress) {
      await send(vesting.vault.transferOwnership(timelockAddress));
    }
    await executeThroughTimelock(
      timelock,
      await vesting.vault.getAddress(),
      vesting.vault.interface.encodeFunctionData("acceptOwnership"),
      noWait,
    );
    log("VestingVault ownership -> OPGTimelock");
  }
  if (guardian !== me && (await staking.hasRole(roleId("VETO_ROLE"), me))) {
    await send(staking.renounceRole(roleId("VETO_ROLE"), me));
  }
  for (const [name, contract, roles] of governed) {
    for (const role of [...roles].reverse()) {
      if (await contract.hasRole(roleId(role), me)) {
        await send(contract.renounceRole(roleId(role), me));
        log(`${name}: deployer renounced ${role}`);
      }
    }
  }
  await handOverTimelock(timelock, await governor.getAddress(), me, delay, log);

  const addresses = Object.fromEntries(
    Object.entries(record.contracts).map(([n, c]) => [n, c.address]),
  );
  await writeGovernanceRecord(
    dir,
    expectedGovernance(options.network, chainId, me, record.contracts, holders, settings, delay),
  );
  return {
    deployer,
    token: vesting.token,
    vault: vesting.vault,
    staking,
    tee,
    devVerifier,
    quorumVerifier,
    registry,
    ledger,
    rewards,
    timelock,
    governor,
    planHash: vesting.planHash,
    rewardsScheduleId,
    addresses,
  };
}

type GrantRole = (role: string, account: string) => Promise<ContractTransactionResponse>;
type HasRole = (role: string, account: string) => Promise<boolean>;

function roleId(name: string): string {
  return name === "DEFAULT_ADMIN_ROLE" ? ZeroHash : keccakId(name);
}

async function send(tx: Promise<ContractTransactionResponse>): Promise<void> {
  const receipt = await (await tx).wait();
  if (receipt === null || receipt.status !== 1) throw new Error("transaction failed");
}

async function grant(
  contract: { grantRole: GrantRole; hasRole: HasRole },
  role: string,
  account: string,
  label: string,
  log: Log,
): Promise<void> {
  if (await contract.hasRole(role, account)) return;
  await send(contract.grantRole(role, account));
  log(label);
}

/**
 * Rotates the plan's rewards-pool schedule to ContributorRewards (its planned beneficiary signs) and binds
 * it, so the rewards contract is funded on the published calendar.
 */
async function bindRewardsPool(
  vault: VestingVault,
  rewards: ContributorRewards,
  options: SystemDeployOptions,
  log: Log,
): Promise<number> {
  const entry = options.plan.schedules.find((s) => s.categoryName === "rewards-pool");
  if (entry === undefined)
    throw new InputError("the plan has no schedule in category rewards-pool");
  const rewardsAddress = await rewards.getAddress();
  const current = (await vault.getSchedule(entry.id)).beneficiary;
  if (current !== rewardsAddress) {
    const signer = await findSigner(options.beneficiarySigners ?? [], current);
    if (signer === undefined) {
      throw new InputError(
        `the rewards-pool schedule's beneficiary ${current} must move it to ContributorRewards`,
        {
          hint: `as ${current}: VestingVault.transferBeneficiary(${entry.id}, ${rewardsAddress}), then run the deploy again`,
        },
      );
    }
    await send(vault.connect(signer).transferBeneficiary(entry.id, rewardsAddress));
    log(
      `rewards-pool schedule #${entry.id} moved to ContributorRewards by its beneficiary ${current}`,
    );
  }
  const pool = await rewards.rewardsPool();
  if (pool.vault === ZeroAddress) {
    await send(rewards.bindSchedule(await vault.getAddress(), entry.id));
    log(`ContributorRewards bound to schedule #${entry.id}: it is funded as that schedule vests`);
  }
  return entry.id;
}

async function findSigner(signers: Signer[], address: string): Promise<Signer | undefined> {
  for (const s of signers)
    if ((await s.getAddress()).toLowerCase() === address.toLowerCase()) return s;
  return undefined;
}

async function writeRewardsConfig(
  dir: string,
  options: SystemDeployOptions,
  fromBlock: number,
  scheduleId: number,
): Promise<void> {
  const file = path.join(dir, "rewards.json");
  try {
    await readFile(file, "utf8");
    return; // written once: epochs must never move
  } catch {
    // not there yet
  }
  const pool = options.plan.schedules[scheduleId]!;
  const config = {
    genesisTime: pool.params.start.toString(),
    epochLength: (options.epochLength ?? 30n * DAY).toString(),
    fromBlock,
  };
  await writeFile(file, stringifyJson(config) + "\n");
}

/**
 * What governance.json says after a deployment: the timelock holds every governance role and the vault,
 * the governor alone proposes, cancels and executes in the timelock, the ledger alone slashes on evidence,
 * the guardian vetoes and revokes, the updater proposes rewards roots; the deployer holds nothing.
 */
function expectedGovernance(
  network: string,
  chainId: bigint,
  deployer: string,
  contracts: Record<string, { address: string; block: number }>,
  holders: { guardian: string; rewardsUpdater: string },
  settings: GovernorSettings,
  delay: bigint,
): GovernanceRecord {
  const at = (name: string) => contracts[name]!.address;
  const from = (name: string) => ({ address: at(name), fromBlock: contracts[name]!.block });
  const timelock = [at("OPGTimelock")];
  const governor = [at("OPGGovernor")];
  const names = new Map<string, string[]>([[getAddress(deployer), ["deployer"]]]);
  for (const [address, name] of [
    [holders.guardian, "guardian"],
    [holders.rewardsUpdater, "rewards updater"],
  ] as const) {
    const key = getAddress(address);
    names.set(key, [...(names.get(key) ?? []), name]);
  }
  const labels = Object.fromEntries([...names].map(([a, n]) => [a, n.join(", ")]));
  return {
    version: 1,
    network,
    chainId: chainId.toString(),
    labels,
    contracts: {
      OPGToken: from("OPGToken"),
      VestingVault: { ...from("VestingVault"), owner: at("OPGTimelock") },
      NodeStaking: {
        ...from("NodeStaking"),
        roles: {
          DEFAULT_ADMIN_ROLE: timelock,
          GOVERNANCE_ROLE: timelock,
          GOVERNANCE_SLASHER_ROLE: timelock,
          SLASHER_ROLE: [at("InferenceLedger")],
          VETO_ROLE: [getAddress(holders.guardian)],
        },
      },
      ...(contracts.DevAttestationVerifier === undefined
        ? {}
        : { DevAttestationVerifier: from("DevAttestationVerifier") }),
      ...(contracts.QuorumAttestationVerifier === undefined
        ? {}
        : {
            QuorumAttestationVerifier: {
              ...from("QuorumAttestationVerifier"),
              roles: { DEFAULT_ADMIN_ROLE: timelock, GOVERNANCE_ROLE: timelock },
            },
          }),
      TeeRegistry: {
        ...from("TeeRegistry"),
        roles: { DEFAULT_ADMIN_ROLE: timelock, GOVERNANCE_ROLE: timelock },
      },
      ModelRegistry: from("ModelRegistry"),
      InferenceLedger: {
        ...from("InferenceLedger"),
        roles: { DEFAULT_ADMIN_ROLE: timelock, GOVERNOR_ROLE: timelock },
      },
      ContributorRewards: {
        ...from("ContributorRewards"),
        roles: {
          DEFAULT_ADMIN_ROLE: timelock,
          GUARDIAN_ROLE: [getAddress(holders.guardian)],
          UPDATER_ROLE: [getAddress(holders.rewardsUpdater)],
        },
      },
      OPGTimelock: {
        ...from("OPGTimelock"),
        roles: {
          DEFAULT_ADMIN_ROLE: timelock,
          PROPOSER_ROLE: governor,
          CANCELLER_ROLE: governor,
          EXECUTOR_ROLE: governor,
        },
        settings: { getMinDelay: delay.toString() },
      },
      OPGGovernor: {
        ...from("OPGGovernor"),
        settings: {
          token: at("OPGToken"),
          timelock: at("OPGTimelock"),
          CLOCK_MODE: "mode=timestamp",
          votingDelay: settings.votingDelay.toString(),
          votingPeriod: settings.votingPeriod.toString(),
          proposalThreshold: settings.proposalThreshold.toString(),
          quorumNumerator: settings.quorumPercent.toString(),
        },
      },
    },
  };
}
