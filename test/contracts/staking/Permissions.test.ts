import { expect } from "chai";
import type { Signer } from "ethers";
import { network } from "hardhat";

import { deployStakingAndTee } from "../../../offchain/staking/deploy.js";
import { DELAY, EVIDENCE, INFERENCE, JAIL_COOLDOWN, OPG, SUPPLY } from "./fixtures.js";

/**
 * The role/permission matrix: every privileged function of NodeStaking, TeeRegistry and the quorum
 * verifier called by every actor. Only the holder of the function's role succeeds; everyone else,
 * including an account holding no role at all, gets AccessControlUnauthorizedAccount (or, for
 * operator and signer functions, StakingNotOperator / StakingNotSigner).
 */
const { ethers, networkHelpers } = await network.create();
const loadFixture = networkHelpers.loadFixture.bind(networkHelpers);
const time = networkHelpers.time;
const ZERO = ethers.ZeroAddress;

async function matrixFixture() {
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
    nobody,
    a1,
    a2,
    a3,
  ] = await ethers.getSigners();
  const token = await ethers.deployContract("OPGToken", [deployer!.address, SUPPLY]);
  const contracts = await deployStakingAndTee(ethers, {
    token: await token.getAddress(),
    governance: governance!.address,
    treasury: governance!.address,
    veto: veto!.address,
    governanceSlasher: governanceSlasher!.address,
    slashers: [slasher!.address],
    quorum: { attesters: [a1!.address, a2!.address, a3!.address], threshold: 2 },
  });
  const { staking, tee } = contracts;
  const node = ethers.getAddress("0x" + "11".repeat(20));
  const node2 = ethers.getAddress("0x" + "22".repeat(20));
  for (const [op, id, key] of [
    [operator!, node, signer!],
    [operator2!, node2, signer2!],
  ] as const) {
    await token.transfer(op.address, 100_000n * OPG);
    await token.connect(op).approve(await staking.getAddress(), ethers.MaxUint256);
    await staking
      .connect(op)
      .register(id, INFERENCE, key.address, 50_000n * OPG, "https://x.example");
  }
  // node: a matured unbonding entry, jailed for a missed heartbeat, cool-down over.
  await staking.connect(operator).unbond(node, OPG);
  await time.increase(DELAY + 1n);
  await staking.connect(nobody).jailInactive(node);
  await time.increase(JAIL_COOLDOWN);
  // node2: a pending governance slash (request 1), for the veto.
  await staking.connect(governanceSlasher).requestSlash(node2, false, 1n, ZERO, false, EVIDENCE);
  await tee.connect(governance).approveMeasurement(ethers.id("m1"), "m1");
  const actors = {
    deployer: deployer!,
    governance: governance!,
    veto: veto!,
    governanceSlasher: governanceSlasher!,
    slasher: slasher!,
    operator: operator!,
    signer: signer!,
    nobody: nobody!,
  };
  return { ...contracts, quorumVerifier: contracts.quorumVerifier!, actors, node, a3: a3! };
}

type F = Awaited<ReturnType<typeof matrixFixture>>;
type Actor = keyof F["actors"];
type Call = (f: F, as: Signer) => Promise<unknown>;

const roleHolders: Record<string, Actor[]> = {
  DEFAULT_ADMIN_ROLE: ["governance"],
  GOVERNANCE_ROLE: ["governance"],
  VETO_ROLE: ["veto"],
  GOVERNANCE_SLASHER_ROLE: ["governanceSlasher"],
  SLASHER_ROLE: ["slasher"],
};

const roleRows: Array<{
  contract: "staking" | "tee" | "quorumVerifier";
  fn: string;
  role: string;
  call: Call;
}> = [
  {
    contract: "staking",
    fn: "setMinStake",
    role: "GOVERNANCE_ROLE",
    call: (f, s) => f.staking.connect(s).setMinStake(1, OPG),
  },
  {
    contract: "staking",
    fn: "setUnbondingDelay",
    role: "GOVERNANCE_ROLE",
    call: (f, s) => f.staking.connect(s).setUnbondingDelay(1n),
  },
  {
    contract: "staking",
    fn: "setVetoWindow",
    role: "GOVERNANCE_ROLE",
    call: (f, s) => f.staking.connect(s).setVetoWindow(1n),
  },
  {
    contract: "staking",
    fn: "setHeartbeatTimeout",
    role: "GOVERNANCE_ROLE",
    call: (f, s) => f.staking.connect(s).setHeartbeatTimeout(1n),
  },
  {
    contract: "staking",
    fn: "setJailCooldown",
    role: "GOVERNANCE_ROLE",
    call: (f, s) => f.staking.connect(s).setJailCooldown(1n),
  },
  {
    contract: "staking",
    fn: "setBountyBps",
    role: "GOVERNANCE_ROLE",
    call: (f, s) => f.staking.connect(s).setBountyBps(1n),
  },
  {
    contract: "staking",
    fn: "setSlashDestination",
    role: "GOVERNANCE_ROLE",
    call: (f, s) => f.staking.connect(s).setSlashDestination(true, ZERO),
  },
  {
    contract: "staking",
    fn: "slash",
    role: "SLASHER_ROLE",
    call: (f, s) => f.staking.connect(s).slash(f.node, 1n, ZERO, false, EVIDENCE),
  },
  {
    contract: "staking",
    fn: "slashAmount",
    role: "SLASHER_ROLE",
    call: (f, s) => f.staking.connect(s).slashAmount(f.node, 1n, ZERO, false, EVIDENCE),
  },
  {
    contract: "staking",
    fn: "requestSlash",
    role: "GOVERNANCE_SLASHER_ROLE",
    call: (f, s) => f.staking.connect(s).requestSlash(f.node, false, 1n, ZERO, false, EVIDENCE),
  },
  {
    contract: "staking",
    fn: "vetoSlash",
    role: "VETO_ROLE",
    call: (f, s) => f.staking.connect(s).vetoSlash(1n),
  },
  {
    contract: "staking",
    fn: "grantRole",
    role: "DEFAULT_ADMIN_ROLE",
    call: async (f, s) => f.staking.connect(s).grantRole(await f.staking.SLASHER_ROLE(), ZERO),
  },
  {
    contract: "staking",
    fn: "revokeRole",
    role: "DEFAULT_ADMIN_ROLE",
    call: async (f, s) => f.staking.connect(s).revokeRole(await f.staking.VETO_ROLE(), ZERO),
  },
  {
    contract: "tee",
    fn: "approveMeasurement",
    role: "GOVERNANCE_ROLE",
    call: (f, s) => f.tee.connect(s).approveMeasurement(ethers.id("m2"), "m2"),
  },
  {
    contract: "tee",
    fn: "revokeMeasurement",
    role: "GOVERNANCE_ROLE",
    call: (f, s) => f.tee.connect(s).revokeMeasurement(ethers.id("m1"), false),
  },
  {
    contract: "tee",
    fn: "revokeMeasurement for cause",
    role: "GOVERNANCE_ROLE",
    call: (f, s) => f.tee.connect(s).revokeMeasurement(ethers.id("m1"), true),
  },
  {
    contract: "tee",
    fn: "setVerifier",
    role: "GOVERNANCE_ROLE",
    call: async (f, s) => f.tee.connect(s).setVerifier(await f.quorumVerifier.getAddress()),
  },
  {
    contract: "tee",
    fn: "setRegistrationTtl",
    role: "GOVERNANCE_ROLE",
    call: (f, s) => f.tee.connect(s).setRegistrationTtl(60n),
  },
  {
    contract: "tee",
    fn: "grantRole",
    role: "DEFAULT_ADMIN_ROLE",
    call: async (f, s) => f.tee.connect(s).grantRole(await f.tee.GOVERNANCE_ROLE(), ZERO),
  },
  {
    contract: "quorumVerifier",
    fn: "addAttester",
    role: "GOVERNANCE_ROLE",
    call: (f, s) =>
      f.quorumVerifier.connect(s).addAttester(ethers.getAddress("0x" + "ab".repeat(20))),
  },
  {
    contract: "quorumVerifier",
    fn: "removeAttester",
    role: "GOVERNANCE_ROLE",
    call: (f, s) => f.quorumVerifier.connect(s).removeAttester(f.a3.address),
  },
  {
    contract: "quorumVerifier",
    fn: "setThreshold",
    role: "GOVERNANCE_ROLE",
    call: (f, s) => f.quorumVerifier.connect(s).setThreshold(3n),
  },
  {
    contract: "quorumVerifier",
    fn: "setMaxAge",
    role: "GOVERNANCE_ROLE",
    call: (f, s) => f.quorumVerifier.connect(s).setMaxAge(60n),
  },
  {
    contract: "quorumVerifier",
    fn: "grantRole",
    role: "DEFAULT_ADMIN_ROLE",
    call: async (f, s) =>
      f.quorumVerifier.connect(s).grantRole(await f.quorumVerifier.GOVERNANCE_ROLE(), ZERO),
  },
];

const operatorRows: Array<{ fn: string; call: Call }> = [
  { fn: "increaseStake", call: (f, s) => f.staking.connect(s).increaseStake(f.node, 1n) },
  { fn: "unbond", call: (f, s) => f.staking.connect(s).unbond(f.node, 1n) },
  { fn: "withdraw", call: (f, s) => f.staking.connect(s).withdraw(f.node) },
  { fn: "exit", call: (f, s) => f.staking.connect(s).exit(f.node) },
  {
    fn: "rotateSigner",
    call: (f, s) =>
      f.staking.connect(s).rotateSigner(f.node, ethers.getAddress("0x" + "cd".repeat(20))),
  },
  {
    fn: "setMetadata",
    call: (f, s) => f.staking.connect(s).setMetadata(f.node, "https://y.example"),
  },
  { fn: "unjail", call: (f, s) => f.staking.connect(s).unjail(f.node) },
  {
    fn: "setPayee",
    call: (f, s) =>
      f.staking.connect(s).setPayee(f.node, ethers.getAddress("0x" + "ef".repeat(20))),
  },
];

const actorNames: Actor[] = [
  "deployer",
  "governance",
  "veto",
  "governanceSlasher",
  "slasher",
  "operator",
  "signer",
  "nobody",
];

describe("Permissions", () => {
  for (const row of roleRows) {
    describe(`${row.contract}.${row.fn} (${row.role})`, () => {
      for (const actor of actorNames) {
        const allowed = roleHolders[row.role]!.includes(actor);
        it(`${allowed ? "succeeds" : "reverts with AccessControlUnauthorizedAccount"} for ${actor}`, async () => {
          const f = await loadFixture(matrixFixture);
          const as = f.actors[actor];
          const tx = row.call(f, as);
          if (allowed) {
            await expect(tx).not.to.revert(ethers);
          } else {
            const contract = f[row.contract];
            await expect(tx)
              .to.be.revertedWithCustomError(contract, "AccessControlUnauthorizedAccount")
              .withArgs(as.address, await contract.getFunction(row.role).staticCall());
          }
        });
      }
    });
  }

  for (const row of operatorRows) {
    describe(`staking.${row.fn} (operator only)`, () => {
      for (const actor of actorNames) {
        const allowed = actor === "operator";
        it(`${allowed ? "succeeds" : "reverts with StakingNotOperator"} for ${actor}`, async () => {
          const f = await loadFixture(matrixFixture);
          const as = f.actors[actor];
          const tx = row.call(f, as);
          if (allowed) await expect(tx).not.to.revert(ethers);
          else
            await expect(tx)
              .to.be.revertedWithCustomError(f.staking, "StakingNotOperator")
              .withArgs(f.node, as.address, f.actors.operator.address);
        });
      }
    });
  }

  describe("staking.heartbeat (signer only)", () => {
    for (const actor of actorNames) {
      const allowed = actor === "signer";
      it(`${allowed ? "succeeds" : "reverts with StakingNotSigner"} for ${actor}`, async () => {
        const f = await loadFixture(matrixFixture);
        const as = f.actors[actor];
        const tx = f.staking.connect(as).heartbeat(f.node);
        if (allowed) await expect(tx).not.to.revert(ethers);
        else
          await expect(tx)
            .to.be.revertedWithCustomError(f.staking, "StakingNotSigner")
            .withArgs(f.node, as.address, f.actors.signer.address);
      });
    }
  });
});
