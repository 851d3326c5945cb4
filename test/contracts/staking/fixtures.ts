import type { HardhatEthers } from "@nomicfoundation/hardhat-ethers/types";

import { DEFAULT_STAKING_PARAMS, deployStakingAndTee } from "../../../offchain/staking/deploy.js";

export const OPG = 10n ** 18n;
export const SUPPLY = 1_000_000_000n * OPG;
export const INFERENCE = 1;
export const VERIFIER = 2;
export const MIN_INFERENCE = DEFAULT_STAKING_PARAMS.minStakeInference;
export const MIN_VERIFIER = DEFAULT_STAKING_PARAMS.minStakeVerifier;
export const DELAY = DEFAULT_STAKING_PARAMS.unbondingDelay;
export const VETO_WINDOW = DEFAULT_STAKING_PARAMS.vetoWindow;
export const HEARTBEAT_TIMEOUT = DEFAULT_STAKING_PARAMS.heartbeatTimeout;
export const JAIL_COOLDOWN = DEFAULT_STAKING_PARAMS.jailCooldown;
export const BOUNTY_BPS = DEFAULT_STAKING_PARAMS.bountyBps;
export const EVIDENCE = "0x" + "ee".repeat(32);

/** What a slash takes from each part of a node's stake, as `reference` below computes it. */
export interface SlashSplit {
  /** The whole amount taken: floor(total × bps / 10,000), or min(amount, total). */
  amount: bigint;
  fromActive: bigint;
  /** One per unbonding entry, in queue order. */
  fromEntries: bigint[];
  /** floor(amount × bountyBps / 10,000) for an outsider, 0 for the node itself. */
  bounty: bigint;
}

/**
 * Reference model of NodeStaking's `_take` and bounty, written from its specification: the parts
 * (active, entry 0, entry 1, ...) are walked with a running total; part i loses
 * floor(cum_i × amount / total) − floor(cum_{i−1} × amount / total). Exact to the wei, so a test can
 * assert each part with `equal` (a rounding change moves one part by 1 and fails it).
 */
export function referenceSlash(
  active: bigint,
  entries: readonly bigint[],
  slash: { bps: bigint } | { amount: bigint },
  insider = false,
  bountyBps: bigint = BOUNTY_BPS,
): SlashSplit {
  const total = entries.reduce((sum, e) => sum + e, active);
  const amount =
    "bps" in slash ? (total * slash.bps) / 10_000n : slash.amount < total ? slash.amount : total;
  if (amount === 0n)
    return { amount, fromActive: 0n, fromEntries: entries.map(() => 0n), bounty: 0n };
  const fromActive = (active * amount) / total;
  let cum = active;
  let taken = fromActive;
  const fromEntries = entries.map((e) => {
    cum += e;
    const soFar = (cum * amount) / total;
    const part = soFar - taken;
    taken = soFar;
    return part;
  });
  return { amount, fromActive, fromEntries, bounty: insider ? 0n : (amount * bountyBps) / 10_000n };
}

/** Fixtures shared by the staking and TEE tests, bound to one connection's `ethers`. */
export function stakingFixtures(ethers: HardhatEthers) {
  async function deployed() {
    const signers = await ethers.getSigners();
    const [
      deployer,
      governance,
      veto,
      governanceSlasher,
      slasher,
      operator,
      operator2,
      signer,
      signer2,
      reporter,
      treasury,
      stranger,
    ] = signers;
    if (!deployer || !governance || !veto || !governanceSlasher || !slasher || !operator) {
      throw new Error("accounts");
    }
    if (!operator2 || !signer || !signer2 || !reporter || !treasury || !stranger)
      throw new Error("accounts");
    const token = await ethers.deployContract("OPGToken", [deployer.address, SUPPLY]);
    const contracts = await deployStakingAndTee(ethers, {
      token: await token.getAddress(),
      governance: governance.address,
      treasury: treasury.address,
      veto: veto.address,
      governanceSlasher: governanceSlasher.address,
      slashers: [slasher.address],
    });
    const stakingAddress = await contracts.staking.getAddress();
    for (const account of [operator, operator2]) {
      await token.transfer(account.address, 1_000_000n * OPG);
      await token.connect(account).approve(stakingAddress, ethers.MaxUint256);
    }
    const node = ethers.getAddress("0x" + "11".repeat(20));
    const node2 = ethers.getAddress("0x" + "22".repeat(20));
    return {
      token,
      ...contracts,
      stakingAddress,
      deployer,
      governance,
      veto,
      governanceSlasher,
      slasher,
      operator,
      operator2,
      signer,
      signer2,
      reporter,
      treasury,
      stranger,
      node,
      node2,
    };
  }

  /** One INFERENCE node (`node`, 20,000 OPG, operated by `operator`, signed by `signer`). */
  async function registered() {
    const f = await deployed();
    await f.staking
      .connect(f.operator)
      .register(f.node, INFERENCE, f.signer.address, 20_000n * OPG, "https://gpu-1.example.org");
    return f;
  }

  /** `registered` plus three unbonding entries of 1,000, 2,000 and 3,000 OPG, one hour apart. */
  async function unbonding() {
    const f = await registered();
    for (const amount of [1_000n, 2_000n, 3_000n]) {
      await f.staking.connect(f.operator).unbond(f.node, amount * OPG);
      await ethers.provider.send("evm_increaseTime", [3600]);
      await ethers.provider.send("evm_mine", []);
    }
    return f;
  }

  return { deployed, registered, unbonding };
}
