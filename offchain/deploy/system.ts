/**
 * Deploys the whole protocol, resumably, and hands governance to a TimelockController in the same run:
 *
 *   OPGToken + VestingVault + the published plan (sealed)        offchain/vesting/deploy.ts
 *   NodeStaking, DevAttestationVerifier (local chains), TeeRegistry
 *   ModelRegistry, InferenceLedger (a slasher in NodeStaking)
 *   ContributorRewards, bound to the plan's rewards-pool schedule
 *   OPGTimelock, which ends up holding every governance role and the vault's ownership
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
import { ZeroAddress, ZeroHash, id as keccakId } from "ethers";

import type {
  ContributorRewards,
  DevAttestationVerifier,
  InferenceLedger,
  ModelRegistry,
  NodeStaking,
  OPGTimelock,
  OPGToken,
  TeeRegistry,
  VestingVault,
} from "../../types/ethers-contracts/index.js";
import { InputError } from "../common/errors.js";
import { stringifyJson } from "../common/json.js";
import type { Log } from "../chain/deploy.js";
import { ensureDeployed } from "../chain/deploy.js";
import { readRecord } from "../chain/deployment.js";
import { DEFAULT_REGISTRATION_TTL, DEFAULT_STAKING_PARAMS } from "../staking/deploy.js";
import { deployVesting } from "../vesting/deploy.js";

import { executeThroughTimelock } from "./governance.js";
import type { Plan } from "../vesting/plan.js";

export const LOCAL_CHAIN_IDS = [31337n, 1337n];
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
  /** Seconds every governance change waits in the timelock (default 2 days). */
  timelockDelay?: bigint;
  /** Seconds a proposed rewards root waits before it can be accepted (default 1 day). */
  rewardsDelay?: bigint;
  /** Rewards epochs: length in seconds (default 30 days); they start at the rewards pool's start. */
  epochLength?: bigint;
  /** Holds UPDATER_ROLE on ContributorRewards (proposes rewards roots); default the deployer. */
  rewardsUpdater?: string;
  /**
   * The fast-acting guardian (a security council): VETO_ROLE on NodeStaking (cancels governance slashes
   * within the veto window) and GUARDIAN_ROLE on ContributorRewards (revokes a pending root). It must not
   * be the timelock, whose delay outlasts those windows. Default: the deployer.
   */
  guardian?: string;
  /** Signers that may act for planned beneficiaries (local chains: the node's accounts), to rotate the pool. */
  beneficiarySigners?: Signer[];
  log?: Log;
}

export interface System {
  deployer: Signer;
  token: OPGToken;
  vault: VestingVault;
  staking: NodeStaking;
  tee: TeeRegistry;
  devVerifier: DevAttestationVerifier | undefined;
  registry: ModelRegistry;
  ledger: InferenceLedger;
  rewards: ContributorRewards;
  timelock: OPGTimelock;
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
  const { chainId } = await ethers.provider.getNetwork();
  const local = LOCAL_CHAIN_IDS.includes(chainId);
  const { dir } = options;

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
  const params = { ...DEFAULT_STAKING_PARAMS, burnSlashed: true, treasury: ZeroAddress };
  const staking = await deploy<NodeStaking>("NodeStaking", "NodeStaking", [
    tokenAddress,
    me,
    params,
  ]);
  const stakingAddress = await staking.getAddress();
  if (!local) {
    throw new InputError(
      `chain ${chainId} is not local: deploy the quorum verifier with its attesters`,
      {
        hint: "the development attestation verifier refuses any chain but 31337/1337 (docs/staking-tee.md)",
      },
    );
  }
  const devVerifier = await deploy<DevAttestationVerifier>(
    "DevAttestationVerifier",
    "DevAttestationVerifier",
    [],
  );
  const tee = await deploy<TeeRegistry>("TeeRegistry", "TeeRegistry", [
    stakingAddress,
    await devVerifier.getAddress(),
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

  // 4. Rewards, funded by the plan's rewards-pool schedule.
  const rewards = await deploy<ContributorRewards>("ContributorRewards", "ContributorRewards", [
    tokenAddress,
    me,
    options.rewardsUpdater ?? me,
    options.guardian ?? me,
    options.rewardsDelay ?? DAY,
  ]);
  const rewardsScheduleId = await bindRewardsPool(vesting.vault, rewards, options, log);
  await writeRewardsConfig(
    dir,
    options,
    record.contracts.InferenceLedger!.block,
    rewardsScheduleId,
  );

  // 5. Governance: a timelock, first with no delay so this run can hand everything over, then the real delay.
  const timelock = await deploy<OPGTimelock>("OPGTimelock", "OPGTimelock", [
    0n,
    [me],
    [me],
    ZeroAddress,
  ]);
  const timelockAddress = await timelock.getAddress();
  const guardian = options.guardian ?? me;
  await grant(staking, roleId("VETO_ROLE"), guardian, "NodeStaking VETO_ROLE -> guardian", log);
  const governed: Array<
    [string, { grantRole: GrantRole; hasRole: HasRole; renounceRole: GrantRole }, string[]]
  > = [
    ["NodeStaking", staking, ["DEFAULT_ADMIN_ROLE", "GOVERNANCE_ROLE", "GOVERNANCE_SLASHER_ROLE"]],
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
  const delay = options.timelockDelay ?? 2n * DAY;
  if ((await timelock.getMinDelay()) !== delay) {
    await executeThroughTimelock(
      timelock,
      timelockAddress,
      timelock.interface.encodeFunctionData("updateDelay", [delay]),
      noWait,
    );
    log(`OPGTimelock delay set to ${delay} s: every governance change now waits that long`);
  }

  const addresses = Object.fromEntries(
    Object.entries(record.contracts).map(([n, c]) => [n, c.address]),
  );
  return {
    deployer,
    token: vesting.token,
    vault: vesting.vault,
    staking,
    tee,
    devVerifier,
    registry,
    ledger,
    rewards,
    timelock,
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
