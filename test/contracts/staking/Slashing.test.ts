import { expect } from "chai";
import { network } from "hardhat";

import {
  BOUNTY_BPS,
  DELAY,
  EVIDENCE,
  JAIL_COOLDOWN,
  OPG,
  VETO_WINDOW,
  referenceSlash,
  stakingFixtures,
} from "./fixtures.js";

const { ethers, networkHelpers } = await network.create();
const { registered, unbonding } = stakingFixtures(ethers);
const loadFixture = networkHelpers.loadFixture.bind(networkHelpers);
const time = networkHelpers.time;

const ZERO = ethers.ZeroAddress;
const PENDING = 1n;
const VETOED = 2n;
const EXECUTED = 3n;
const JAIL_SLASH = 0n;

/** `unbonding`: 14,000 active + entries of 1,000, 2,000, 3,000 = 20,000 OPG. */
describe("NodeStaking slashing", () => {
  describe("slash", () => {
    it("takes bps of active stake and of every unbonding entry", async () => {
      const { staking, slasher, reporter, treasury, token, node } = await loadFixture(unbonding);
      const tx = staking.connect(slasher).slash(node, 1_000n, reporter.address, false, EVIDENCE);
      const bounty = (2_000n * OPG * BOUNTY_BPS) / 10_000n;
      await expect(tx)
        .to.emit(staking, "Slashed")
        .withArgs(
          node,
          slasher.address,
          EVIDENCE,
          1_400n * OPG,
          600n * OPG,
          reporter.address,
          bounty,
          treasury.address,
          false,
        );
      await expect(tx).to.changeTokenBalances(
        ethers,
        token,
        [reporter, treasury, await staking.getAddress()],
        [bounty, 2_000n * OPG - bounty, -2_000n * OPG],
      );
      expect(await staking.stakeOf(node)).to.deep.equal([12_600n * OPG, 5_400n * OPG]);
      const entries = await staking.unbondingEntries(node);
      expect(entries.map((e) => e.amount)).to.deep.equal([900n * OPG, 1_800n * OPG, 2_700n * OPG]);
    });

    it("returns the amount taken", async () => {
      const { staking, slasher, node } = await loadFixture(unbonding);
      expect(
        await staking.connect(slasher).slash.staticCall(node, 2_500n, ZERO, false, EVIDENCE),
      ).to.equal(5_000n * OPG);
    });

    it("takes everything at 10,000 bps and leaves the node inactive", async () => {
      const { staking, slasher, node } = await loadFixture(unbonding);
      await staking.connect(slasher).slash(node, 10_000n, ZERO, false, EVIDENCE);
      expect(await staking.stakeOf(node)).to.deep.equal([0n, 0n]);
      expect((await staking.unbondingEntries(node)).map((e) => e.amount)).to.deep.equal([
        0n,
        0n,
        0n,
      ]);
      expect(await staking.isActive(node)).to.be.false;
    });

    it("reaches entries that have matured but were not withdrawn", async () => {
      const { staking, slasher, node } = await loadFixture(unbonding);
      await time.increase(DELAY * 2n);
      await staking.connect(slasher).slash(node, 5_000n, ZERO, false, EVIDENCE);
      expect(await staking.withdrawable(node)).to.equal(3_000n * OPG);
    });

    it("jails the node when asked", async () => {
      const { staking, slasher, node } = await loadFixture(unbonding);
      const tx = staking.connect(slasher).slash(node, 1n, ZERO, true, EVIDENCE);
      const until = BigInt(await time.latest()) + 1n + JAIL_COOLDOWN;
      await expect(tx).to.emit(staking, "NodeJailed").withArgs(node, JAIL_SLASH, until);
      expect(await staking.isActive(node)).to.be.false;
      expect((await staking.getNode(node)).jailedUntil).to.equal(until);
    });

    it("keeps the later release when a node is jailed again with a shorter cool-down", async () => {
      const { staking, slasher, governance, node } = await loadFixture(unbonding);
      await staking.connect(slasher).slash(node, 1n, ZERO, true, EVIDENCE);
      const { jailedUntil } = await staking.getNode(node);
      await staking.connect(governance).setJailCooldown(0n);
      await expect(staking.connect(slasher).slash(node, 1n, ZERO, true, EVIDENCE))
        .to.emit(staking, "NodeJailed")
        .withArgs(node, JAIL_SLASH, jailedUntil);
      expect((await staking.getNode(node)).jailedUntil).to.equal(jailedUntil);
    });

    it("pays no bounty without a reporter", async () => {
      const { staking, slasher, treasury, token, node } = await loadFixture(unbonding);
      await expect(
        staking.connect(slasher).slash(node, 1_000n, ZERO, false, EVIDENCE),
      ).to.changeTokenBalance(ethers, token, treasury, 2_000n * OPG);
    });

    describe("when the reporter is the offender itself", () => {
      /** `unbonding` plus a payee set by the operator and a signer rotated once (signer -> signer2). */
      async function insiders() {
        const f = await unbonding();
        await f.staking.connect(f.operator).setPayee(f.node, f.operator2.address);
        await f.staking.connect(f.operator).rotateSigner(f.node, f.signer2.address);
        return f;
      }
      const cases = [
        ["its operator", "operator"],
        ["its payee", "operator2"],
        ["its current signer key", "signer2"],
        ["a signer key it rotated away from", "signer"],
      ] as const;
      for (const [name, who] of cases) {
        it(`pays no bounty to ${name}: the whole slash goes to the treasury`, async () => {
          const f = await loadFixture(insiders);
          const reporter = f[who];
          const tx = f.staking
            .connect(f.slasher)
            .slash(f.node, 1_000n, reporter.address, false, EVIDENCE);
          await expect(tx)
            .to.emit(f.staking, "Slashed")
            .withArgs(
              f.node,
              f.slasher.address,
              EVIDENCE,
              1_400n * OPG,
              600n * OPG,
              reporter.address,
              0n,
              f.treasury.address,
              false,
            );
          await expect(tx).to.changeTokenBalances(
            ethers,
            f.token,
            [reporter, f.treasury],
            [0n, 2_000n * OPG],
          );
        });
      }

      it("pays the bounty to an outsider", async () => {
        const f = await loadFixture(insiders);
        const bounty = (2_000n * OPG * BOUNTY_BPS) / 10_000n;
        await expect(
          f.staking.connect(f.slasher).slash(f.node, 1_000n, f.reporter.address, false, EVIDENCE),
        ).to.changeTokenBalances(
          ethers,
          f.token,
          [f.reporter, f.treasury],
          [bounty, 2_000n * OPG - bounty],
        );
      });

      it("pays no bounty to the operator through slashAmount and governance slashes either", async () => {
        const f = await loadFixture(insiders);
        await expect(
          f.staking
            .connect(f.slasher)
            .slashAmount(f.node, 1_000n * OPG, f.operator.address, false, EVIDENCE),
        ).to.changeTokenBalances(ethers, f.token, [f.operator, f.treasury], [0n, 1_000n * OPG]);
        await f.staking
          .connect(f.governanceSlasher)
          .requestSlash(f.node, true, 1_000n * OPG, f.signer.address, false, EVIDENCE);
        await time.increase(VETO_WINDOW);
        await expect(
          f.staking.connect(f.stranger).executeSlash(await f.staking.slashRequestCount()),
        ).to.changeTokenBalances(ethers, f.token, [f.signer, f.treasury], [0n, 1_000n * OPG]);
      });
    });

    it("burns the remainder when governance chose burning", async () => {
      const { staking, slasher, reporter, governance, token, node } = await loadFixture(unbonding);
      await staking.connect(governance).setSlashDestination(true, ZERO);
      const supply = await token.totalSupply();
      const bounty = (2_000n * OPG * BOUNTY_BPS) / 10_000n;
      await expect(staking.connect(slasher).slash(node, 1_000n, reporter.address, false, EVIDENCE))
        .to.emit(staking, "Slashed")
        .withArgs(
          node,
          slasher.address,
          EVIDENCE,
          1_400n * OPG,
          600n * OPG,
          reporter.address,
          bounty,
          ZERO,
          false,
        );
      expect(await token.totalSupply()).to.equal(supply - (2_000n * OPG - bounty));
    });

    it("takes nothing from a node that has nothing left", async () => {
      const { staking, slasher, operator, node, token } = await loadFixture(registered);
      await staking.connect(operator).exit(node);
      await time.increase(DELAY);
      await staking.connect(operator).withdraw(node);
      await expect(staking.connect(slasher).slash(node, 10_000n, ZERO, false, EVIDENCE))
        .to.emit(staking, "Slashed")
        .withArgs(
          node,
          slasher.address,
          EVIDENCE,
          0n,
          0n,
          ZERO,
          0n,
          await staking.params().then((p) => p.treasury),
          false,
        )
        .and.not.to.emit(token, "Transfer");
    });

    it("reverts with StakingInvalidBps for 0 and above 10,000", async () => {
      const { staking, slasher, node } = await loadFixture(registered);
      for (const bps of [0n, 10_001n]) {
        await expect(staking.connect(slasher).slash(node, bps, ZERO, false, EVIDENCE))
          .to.be.revertedWithCustomError(staking, "StakingInvalidBps")
          .withArgs(bps);
      }
    });

    it("reverts with StakingUnknownNode for an unknown node", async () => {
      const { staking, slasher, node2 } = await loadFixture(registered);
      await expect(staking.connect(slasher).slash(node2, 1n, ZERO, false, EVIDENCE))
        .to.be.revertedWithCustomError(staking, "StakingUnknownNode")
        .withArgs(node2);
    });

    it("reverts with AccessControlUnauthorizedAccount without SLASHER_ROLE", async () => {
      const { staking, stranger, node } = await loadFixture(registered);
      await expect(staking.connect(stranger).slash(node, 1n, ZERO, false, EVIDENCE))
        .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, await staking.SLASHER_ROLE());
    });
  });

  describe("slashAmount", () => {
    it("takes exactly the amount, pro rata across active and every entry", async () => {
      const { staking, slasher, node } = await loadFixture(unbonding);
      const amount = 1_000n * OPG + 7n; // not a round share: exercises the running-total rounding
      await staking.connect(slasher).slashAmount(node, amount, ZERO, false, EVIDENCE);
      const [active, unbondingTotal] = await staking.stakeOf(node);
      expect(20_000n * OPG - active - unbondingTotal).to.equal(amount);
      const entries = await staking.unbondingEntries(node);
      expect(entries.reduce((s, e) => s + e.amount, 0n)).to.equal(unbondingTotal);
      // Worked by hand: 0.7, 0.75, 0.85 and 1.0 of the amount, each floored, minus the previous floor.
      // Flooring each part alone would give 700 + 4, 50 + 0, 100 + 0, 150 + 1: 2 wei short.
      const parts = [700n * OPG + 4n, 50n * OPG + 1n, 100n * OPG, 150n * OPG + 2n];
      const was = [14_000n, 1_000n, 2_000n, 3_000n].map((x) => x * OPG);
      const split = referenceSlash(was[0]!, was.slice(1), { amount });
      expect([split.fromActive, ...split.fromEntries]).to.deep.equal(parts);
      expect([active, ...entries.map((e) => e.amount)]).to.deep.equal(
        was.map((w, k) => w - parts[k]!),
      );
    });

    it("emits the exact active and unbonding parts and the floored bounty", async () => {
      const { staking, slasher, reporter, treasury, node } = await loadFixture(unbonding);
      const amount = 1_000n * OPG + 7n;
      const split = referenceSlash(
        14_000n * OPG,
        [1_000n, 2_000n, 3_000n].map((x) => x * OPG),
        {
          amount,
        },
      );
      // 10% of 1,000 OPG + 7 wei, floored: the 0.7 wei is dropped.
      expect(BOUNTY_BPS).to.equal(1_000n);
      expect(split.bounty).to.equal(100n * OPG);
      await expect(
        staking.connect(slasher).slashAmount(node, amount, reporter.address, false, EVIDENCE),
      )
        .to.emit(staking, "Slashed")
        .withArgs(
          node,
          slasher.address,
          EVIDENCE,
          700n * OPG + 4n,
          300n * OPG + 3n,
          reporter.address,
          split.bounty,
          treasury.address,
          false,
        );
    });

    it("caps the amount at what the node has", async () => {
      const { staking, slasher, node } = await loadFixture(unbonding);
      expect(
        await staking
          .connect(slasher)
          .slashAmount.staticCall(node, 1_000_000n * OPG, ZERO, false, EVIDENCE),
      ).to.equal(20_000n * OPG);
      await staking.connect(slasher).slashAmount(node, 1_000_000n * OPG, ZERO, false, EVIDENCE);
      expect(await staking.stakeOf(node)).to.deep.equal([0n, 0n]);
    });

    it("reverts with StakingInvalidAmount for zero", async () => {
      const { staking, slasher, node } = await loadFixture(registered);
      await expect(staking.connect(slasher).slashAmount(node, 0n, ZERO, false, EVIDENCE))
        .to.be.revertedWithCustomError(staking, "StakingInvalidAmount")
        .withArgs(0n);
    });

    it("reverts with StakingUnknownNode and AccessControlUnauthorizedAccount", async () => {
      const { staking, slasher, stranger, node, node2 } = await loadFixture(registered);
      await expect(staking.connect(slasher).slashAmount(node2, 1n, ZERO, false, EVIDENCE))
        .to.be.revertedWithCustomError(staking, "StakingUnknownNode")
        .withArgs(node2);
      await expect(staking.connect(stranger).slashAmount(node, 1n, ZERO, false, EVIDENCE))
        .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, await staking.SLASHER_ROLE());
    });
  });

  describe("governance slashes", () => {
    async function requested() {
      const f = await unbonding();
      await f.staking
        .connect(f.governanceSlasher)
        .requestSlash(f.node, false, 5_000n, f.reporter.address, true, EVIDENCE);
      return f;
    }

    describe("requestSlash", () => {
      it("records a pending request executable after the veto window", async () => {
        const { staking, governanceSlasher, reporter, node } = await loadFixture(unbonding);
        const tx = staking
          .connect(governanceSlasher)
          .requestSlash(node, true, 10n * OPG, reporter.address, false, EVIDENCE);
        const executableAt = BigInt(await time.latest()) + 1n + VETO_WINDOW;
        await expect(tx)
          .to.emit(staking, "SlashRequested")
          .withArgs(
            1n,
            node,
            governanceSlasher.address,
            true,
            10n * OPG,
            reporter.address,
            false,
            EVIDENCE,
            executableAt,
          );
        expect(await staking.slashRequestCount()).to.equal(1n);
        const r = await staking.slashRequest(1n);
        expect([
          r.node,
          r.executableAt,
          r.status,
          r.byAmount,
          r.jail,
          r.reporter,
          r.value,
          r.evidenceHash,
        ]).to.deep.equal([
          node,
          executableAt,
          PENDING,
          true,
          false,
          reporter.address,
          10n * OPG,
          EVIDENCE,
        ]);
        expect((await staking.getNode(node)).pendingSlashes).to.equal(1n);
      });

      it("reverts with StakingInvalidBps, StakingInvalidAmount and StakingUnknownNode", async () => {
        const { staking, governanceSlasher, node, node2 } = await loadFixture(unbonding);
        const s = staking.connect(governanceSlasher);
        await expect(s.requestSlash(node, false, 0n, ZERO, false, EVIDENCE))
          .to.be.revertedWithCustomError(staking, "StakingInvalidBps")
          .withArgs(0n);
        await expect(s.requestSlash(node, false, 10_001n, ZERO, false, EVIDENCE))
          .to.be.revertedWithCustomError(staking, "StakingInvalidBps")
          .withArgs(10_001n);
        await expect(s.requestSlash(node, true, 0n, ZERO, false, EVIDENCE))
          .to.be.revertedWithCustomError(staking, "StakingInvalidAmount")
          .withArgs(0n);
        await expect(s.requestSlash(node2, false, 1n, ZERO, false, EVIDENCE))
          .to.be.revertedWithCustomError(staking, "StakingUnknownNode")
          .withArgs(node2);
      });
    });

    describe("vetoSlash", () => {
      it("cancels the request within the window and unfreezes withdrawals", async () => {
        const { staking, veto, operator, node } = await loadFixture(requested);
        await expect(staking.connect(veto).vetoSlash(1n))
          .to.emit(staking, "SlashVetoed")
          .withArgs(1n, veto.address);
        expect((await staking.slashRequest(1n)).status).to.equal(VETOED);
        expect((await staking.getNode(node)).pendingSlashes).to.equal(0n);
        await time.increase(DELAY * 2n);
        await expect(staking.connect(operator).withdraw(node)).to.emit(staking, "Withdrawn");
      });

      it("vetoes one second before the window closes", async () => {
        const { staking, veto } = await loadFixture(requested);
        const { executableAt } = await staking.slashRequest(1n);
        await time.setNextBlockTimestamp(executableAt - 1n);
        await expect(staking.connect(veto).vetoSlash(1n))
          .to.emit(staking, "SlashVetoed")
          .withArgs(1n, veto.address);
        expect((await staking.slashRequest(1n)).status).to.equal(VETOED);
      });

      it("reverts with StakingVetoWindowClosed one second after the window closes", async () => {
        const { staking, veto } = await loadFixture(requested);
        const { executableAt } = await staking.slashRequest(1n);
        await time.setNextBlockTimestamp(executableAt + 1n);
        await expect(staking.connect(veto).vetoSlash(1n))
          .to.be.revertedWithCustomError(staking, "StakingVetoWindowClosed")
          .withArgs(1n, executableAt);
      });

      it("reverts with StakingVetoWindowClosed once the window is over", async () => {
        const { staking, veto } = await loadFixture(requested);
        const { executableAt } = await staking.slashRequest(1n);
        await time.setNextBlockTimestamp(executableAt);
        await expect(staking.connect(veto).vetoSlash(1n))
          .to.be.revertedWithCustomError(staking, "StakingVetoWindowClosed")
          .withArgs(1n, executableAt);
      });

      it("reverts with StakingUnknownRequest and StakingRequestNotPending", async () => {
        const { staking, veto } = await loadFixture(requested);
        await expect(staking.connect(veto).vetoSlash(2n))
          .to.be.revertedWithCustomError(staking, "StakingUnknownRequest")
          .withArgs(2n);
        await staking.connect(veto).vetoSlash(1n);
        await expect(staking.connect(veto).vetoSlash(1n))
          .to.be.revertedWithCustomError(staking, "StakingRequestNotPending")
          .withArgs(1n, VETOED);
      });
    });

    describe("executeSlash", () => {
      it("lets anyone execute after the window; the slash reaches stake that unbonded meanwhile", async () => {
        const { staking, stranger, operator, reporter, node } = await loadFixture(requested);
        // The operator tries to escape: unbonds the rest and waits past the unbonding delay.
        await staking.connect(operator).unbond(node, 14_000n * OPG);
        await time.increase(DELAY + 1n);
        await expect(staking.connect(operator).withdraw(node)).to.be.revertedWithCustomError(
          staking,
          "StakingSlashPending",
        );
        const tx = staking.connect(stranger).executeSlash(1n);
        await expect(tx)
          .to.emit(staking, "SlashExecuted")
          .withArgs(1n, 10_000n * OPG);
        await expect(tx).to.emit(staking, "NodeJailed");
        await expect(tx)
          .to.emit(staking, "Slashed")
          .withArgs(
            node,
            stranger.address,
            EVIDENCE,
            0n,
            10_000n * OPG,
            reporter.address,
            1_000n * OPG,
            await staking.params().then((p) => p.treasury),
            true,
          );
        expect(await staking.stakeOf(node)).to.deep.equal([0n, 10_000n * OPG]);
        expect((await staking.slashRequest(1n)).status).to.equal(EXECUTED);
        expect((await staking.getNode(node)).pendingSlashes).to.equal(0n);
        await expect(staking.connect(operator).withdraw(node)).to.emit(staking, "Withdrawn");
      });

      it("executes by amount", async () => {
        const { staking, governanceSlasher, stranger, node } = await loadFixture(unbonding);
        await staking
          .connect(governanceSlasher)
          .requestSlash(node, true, 123n * OPG, ZERO, false, EVIDENCE);
        await time.increase(VETO_WINDOW);
        await expect(staking.connect(stranger).executeSlash(1n))
          .to.emit(staking, "SlashExecuted")
          .withArgs(1n, 123n * OPG);
      });

      for (const offset of [0n, 1n]) {
        it(`executes at executableAt + ${offset}`, async () => {
          const { staking, stranger } = await loadFixture(requested);
          const { executableAt } = await staking.slashRequest(1n);
          await time.setNextBlockTimestamp(executableAt + offset);
          await expect(staking.connect(stranger).executeSlash(1n)).to.emit(
            staking,
            "SlashExecuted",
          );
          expect((await staking.slashRequest(1n)).status).to.equal(EXECUTED);
        });
      }

      it("reverts with StakingVetoWindowOpen before the window is over", async () => {
        const { staking, stranger } = await loadFixture(requested);
        const { executableAt } = await staking.slashRequest(1n);
        await time.setNextBlockTimestamp(executableAt - 1n);
        await expect(staking.connect(stranger).executeSlash(1n))
          .to.be.revertedWithCustomError(staking, "StakingVetoWindowOpen")
          .withArgs(1n, executableAt);
      });

      it("reverts with StakingRequestNotPending after execution or veto, and StakingUnknownRequest", async () => {
        const { staking, stranger } = await loadFixture(requested);
        await time.increase(VETO_WINDOW);
        await staking.connect(stranger).executeSlash(1n);
        await expect(staking.connect(stranger).executeSlash(1n))
          .to.be.revertedWithCustomError(staking, "StakingRequestNotPending")
          .withArgs(1n, EXECUTED);
        await expect(staking.connect(stranger).executeSlash(9n))
          .to.be.revertedWithCustomError(staking, "StakingUnknownRequest")
          .withArgs(9n);
      });
    });
  });
});
