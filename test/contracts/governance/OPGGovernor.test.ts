import { expect } from "chai";
import { id } from "ethers";
import { network } from "hardhat";

const { ethers, networkHelpers } = await network.create();
const OPG = 10n ** 18n;
const DAY = 86_400n;

describe("OPGGovernor", () => {
  async function deployed() {
    const [deployer, holder] = await ethers.getSigners();
    const token = await ethers.deployContract("OPGToken", [
      deployer!.address,
      1_000_000_000n * OPG,
    ]);
    const timelock = await ethers.deployContract("OPGTimelock", [0n, [], [], deployer!.address]);
    const governor = await ethers.deployContract("OPGGovernor", [
      await token.getAddress(),
      await timelock.getAddress(),
      DAY,
      5n * DAY,
      1_000_000n * OPG,
      4n,
    ]);
    const g = await governor.getAddress();
    for (const role of ["PROPOSER_ROLE", "CANCELLER_ROLE", "EXECUTOR_ROLE"]) {
      await timelock.grantRole(id(role), g);
    }
    await timelock.renounceRole(ethers.ZeroHash, deployer!.address);
    await token.transfer(holder!.address, 100_000_000n * OPG);
    await token.connect(holder).delegate(holder!.address);
    return { token, timelock, governor, holder: holder! };
  }

  /** Proposes `data` on the governor itself, votes it through and returns what execute needs. */
  async function passed(
    f: Awaited<ReturnType<typeof deployed>>,
    data: string,
    description: string,
  ) {
    const g = await f.governor.getAddress();
    await f.governor.connect(f.holder).propose([g], [0n], [data], description);
    const pid = await f.governor.hashProposal([g], [0n], [data], id(description));
    await networkHelpers.time.increaseTo((await f.governor.proposalSnapshot(pid)) + 1n);
    await f.governor.connect(f.holder).castVote(pid, 1);
    await networkHelpers.time.increaseTo((await f.governor.proposalDeadline(pid)) + 1n);
    await f.governor.queue([g], [0n], [data], id(description));
    const args: [string[], bigint[], string[], string] = [[g], [0n], [data], id(description)];
    return { g, pid, args };
  }

  describe("constructor", () => {
    it("takes the token's timestamp clock: voting delay and period are seconds", async () => {
      const { governor, token } = await networkHelpers.loadFixture(deployed);
      expect(await governor.CLOCK_MODE()).to.equal("mode=timestamp");
      expect(await governor.clock()).to.equal(await token.clock());
      expect(await governor.clock()).to.equal(BigInt(await networkHelpers.time.latest()));
      expect(await governor.votingDelay()).to.equal(DAY);
      expect(await governor.votingPeriod()).to.equal(5n * DAY);
      expect(await governor["quorumNumerator()"]()).to.equal(4n);
    });

    describe("when the token counts votes by block number", () => {
      it("reverts with OPGGovernorClockNotTimestamp", async () => {
        const { timelock } = await networkHelpers.loadFixture(deployed);
        const blocks = await ethers.deployContract("MockBlockClockVotes");
        const factory = await ethers.getContractFactory("OPGGovernor");
        await expect(
          factory.deploy(
            await blocks.getAddress(),
            await timelock.getAddress(),
            DAY,
            5n * DAY,
            0n,
            4n,
          ),
        )
          .to.be.revertedWithCustomError(factory, "OPGGovernorClockNotTimestamp")
          .withArgs("mode=blocknumber&from=default");
      });
    });

    describe("when the quorum is zero", () => {
      it("reverts with OPGGovernorZeroQuorum", async () => {
        const { token, timelock } = await networkHelpers.loadFixture(deployed);
        const factory = await ethers.getContractFactory("OPGGovernor");
        await expect(
          factory.deploy(
            await token.getAddress(),
            await timelock.getAddress(),
            DAY,
            5n * DAY,
            0n,
            0n,
          ),
        ).to.be.revertedWithCustomError(factory, "OPGGovernorZeroQuorum");
      });
    });
  });

  describe("updateQuorumNumerator", () => {
    describe("when governance sets it to zero", () => {
      it("reverts with OPGGovernorZeroQuorum when the proposal executes", async () => {
        const f = await networkHelpers.loadFixture(deployed);
        const data = f.governor.interface.encodeFunctionData("updateQuorumNumerator", [0n]);
        const { args } = await passed(f, data, "quorum to zero");
        await networkHelpers.time.increase(1n);
        await expect(f.governor.execute(...args)).to.be.revertedWithCustomError(
          f.governor,
          "OPGGovernorZeroQuorum",
        );
      });
    });

    describe("when governance sets it to another value", () => {
      it("changes the quorum", async () => {
        const f = await networkHelpers.loadFixture(deployed);
        const data = f.governor.interface.encodeFunctionData("updateQuorumNumerator", [10n]);
        const { args } = await passed(f, data, "quorum to 10 %");
        await f.governor.execute(...args);
        expect(await f.governor["quorumNumerator()"]()).to.equal(10n);
      });
    });

    describe("when anyone else calls it", () => {
      it("reverts with GovernorOnlyExecutor", async () => {
        const { governor, holder } = await networkHelpers.loadFixture(deployed);
        await expect(governor.connect(holder).updateQuorumNumerator(10n))
          .to.be.revertedWithCustomError(governor, "GovernorOnlyExecutor")
          .withArgs(holder.address);
      });
    });
  });
});
