/**
 * Deploys NodeStaking, TeeRegistry and the attestation verifiers, and hands their roles to governance.
 * Used by the tests, the lead's deploy script and the demo.
 */
import type { HardhatEthers } from "@nomicfoundation/hardhat-ethers/types";

import type {
  DevAttestationVerifier,
  NodeStaking,
  QuorumAttestationVerifier,
  TeeRegistry,
} from "../../types/ethers-contracts/index.js";
import { InputError } from "../common/errors.js";
import { LOCAL_CHAIN_IDS } from "./units.js";

/** NodeStaking's parameters (INodeStakingTypes.Params), amounts in wei, durations in seconds. */
export interface StakingParams {
  minStakeInference: bigint;
  minStakeVerifier: bigint;
  unbondingDelay: bigint;
  vetoWindow: bigint;
  heartbeatTimeout: bigint;
  jailCooldown: bigint;
  bountyBps: bigint;
  burnSlashed: boolean;
  treasury: string;
}

const OPG = 10n ** 18n;
const HOUR = 3600n;
const DAY = 24n * HOUR;

/** The defaults of a fresh deployment (governance changes them through the timelock). */
export const DEFAULT_STAKING_PARAMS: Omit<StakingParams, "burnSlashed" | "treasury"> = {
  minStakeInference: 10_000n * OPG,
  minStakeVerifier: 25_000n * OPG,
  unbondingDelay: 7n * DAY,
  vetoWindow: 2n * DAY,
  heartbeatTimeout: HOUR,
  jailCooldown: DAY,
  bountyBps: 1_000n,
};

/** How long an enclave registration (or heartbeat) keeps it fresh, by default. */
export const DEFAULT_REGISTRATION_TTL = DAY;

export interface QuorumOptions {
  attesters: string[];
  threshold: number;
  /** Seconds an attestation stays usable after it was issued (default 1 hour). */
  maxAge?: bigint;
}

export interface DeployStakingOptions {
  /** The OPG token (staking token; burnable). */
  token: string;
  /** Receives DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE on every contract (the TimelockController). */
  governance: string;
  /** Where slashed stake (less the bounty) goes; when absent it is burned. */
  treasury?: string;
  /** VETO_ROLE holder (default: governance). */
  veto?: string;
  /** GOVERNANCE_SLASHER_ROLE holder (default: governance). */
  governanceSlasher?: string;
  /** SLASHER_ROLE holders: contracts that slash on objective evidence (e.g. InferenceLedger). */
  slashers?: string[];
  /** Overrides of DEFAULT_STAKING_PARAMS. */
  params?: Partial<Omit<StakingParams, "burnSlashed" | "treasury">>;
  registrationTtl?: bigint;
  /** Also deploy the M-of-N quorum verifier. */
  quorum?: QuorumOptions;
  /** Which verifier TeeRegistry starts with (default: "quorum" when deployed, else "dev"). */
  activeVerifier?: "dev" | "quorum";
  /**
   * Keep DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE on the deployer as well (e.g. to grant SLASHER_ROLE to a
   * contract deployed later, then renounce). Default false: the deployer keeps no role.
   */
  keepDeployerAdmin?: boolean;
}

export interface StakingContracts {
  staking: NodeStaking;
  tee: TeeRegistry;
  /** Absent on chains that are not local (the dev verifier refuses to deploy there). */
  devVerifier: DevAttestationVerifier | undefined;
  quorumVerifier: QuorumAttestationVerifier | undefined;
  /** Name -> address, in the shape of deployments/<network>/addresses.json. */
  addresses: Record<string, string>;
}

export async function deployStakingAndTee(
  ethers: HardhatEthers,
  options: DeployStakingOptions,
): Promise<StakingContracts> {
  const [deployer] = await ethers.getSigners();
  if (deployer === undefined) throw new InputError("no deployer account is configured");
  const { chainId } = await ethers.provider.getNetwork();
  const isLocal = LOCAL_CHAIN_IDS.includes(chainId);
  const activeVerifier = options.activeVerifier ?? (options.quorum ? "quorum" : "dev");
  if (activeVerifier === "quorum" && options.quorum === undefined) {
    throw new InputError("activeVerifier is 'quorum' but no quorum options were given");
  }
  if (activeVerifier === "dev" && !isLocal) {
    throw new InputError("the development verifier can only be deployed on a local chain", {
      details: { chainId },
      hint: "pass quorum: { attesters, threshold } to use the quorum verifier",
    });
  }

  const params: StakingParams = {
    ...DEFAULT_STAKING_PARAMS,
    ...options.params,
    burnSlashed: options.treasury === undefined,
    treasury: options.treasury ?? ethers.ZeroAddress,
  };
  const staking = await ethers.deployContract("NodeStaking", [
    options.token,
    deployer.address,
    params,
  ]);
  const stakingAddress = await staking.getAddress();

  const devVerifier = isLocal ? await ethers.deployContract("DevAttestationVerifier") : undefined;
  const quorumVerifier =
    options.quorum === undefined
      ? undefined
      : await ethers.deployContract("QuorumAttestationVerifier", [
          deployer.address,
          options.quorum.attesters,
          options.quorum.threshold,
          options.quorum.maxAge ?? HOUR,
        ]);
  const verifier = activeVerifier === "quorum" ? quorumVerifier : devVerifier;
  if (verifier === undefined) throw new InputError("no verifier was deployed");
  const tee = await ethers.deployContract("TeeRegistry", [
    stakingAddress,
    await verifier.getAddress(),
    deployer.address,
    options.registrationTtl ?? DEFAULT_REGISTRATION_TTL,
  ]);

  // Roles: governance everywhere, the veto and slasher roles on staking, then the deployer steps back.
  const governance = options.governance;
  const wait = async (tx: Promise<{ wait: () => Promise<unknown> }>) => (await tx).wait();
  const admins = [staking, tee, ...(quorumVerifier ? [quorumVerifier] : [])];
  for (const c of admins) {
    await wait(c.grantRole(await c.DEFAULT_ADMIN_ROLE(), governance));
    await wait(c.grantRole(await c.GOVERNANCE_ROLE(), governance));
  }
  await wait(staking.grantRole(await staking.VETO_ROLE(), options.veto ?? governance));
  await wait(
    staking.grantRole(
      await staking.GOVERNANCE_SLASHER_ROLE(),
      options.governanceSlasher ?? governance,
    ),
  );
  for (const slasher of options.slashers ?? []) {
    await wait(staking.grantRole(await staking.SLASHER_ROLE(), slasher));
  }
  if (
    options.keepDeployerAdmin !== true &&
    governance.toLowerCase() !== deployer.address.toLowerCase()
  ) {
    for (const c of admins) {
      await wait(c.renounceRole(await c.GOVERNANCE_ROLE(), deployer.address));
      await wait(c.renounceRole(await c.DEFAULT_ADMIN_ROLE(), deployer.address));
    }
  }

  const addresses: Record<string, string> = {
    NodeStaking: stakingAddress,
    TeeRegistry: await tee.getAddress(),
  };
  if (devVerifier) addresses.DevAttestationVerifier = await devVerifier.getAddress();
  if (quorumVerifier) addresses.QuorumAttestationVerifier = await quorumVerifier.getAddress();
  return { staking, tee, devVerifier, quorumVerifier, addresses };
}
