/** The repeat-rule invariants of INVARIANTS.md next to this file, checked after every step of random sequences. */
import { expect } from "chai";
import { AbiCoder, Wallet, id, keccak256 } from "ethers";
import fc from "fast-check";
import { network } from "hardhat";

import { receiptStructHash } from "../../../offchain/chain/eip712.js";
import { buildVerdict, signReceipt, signVerdict } from "../../../offchain/chain/receipts.js";
import { fuzzOptions } from "../../helpers/fuzz.js";
import { OFFENCE, ROLE, STAKE, deployLedgerSystem, makeReceipt } from "./helpers.js";

const { ethers, networkHelpers } = await network.create();
const time = networkHelpers.time;
const DAY = 86_400;
const abi = AbiCoder.defaultAbiCoder();
const deploy = () => deployLedgerSystem(ethers);

type Offence = "double" | "contradicted";
/** When the evidence is dated: relative to the report's block, or to the node's last slash of the type. */
type Dating = { from: "now"; offset: number } | { from: "last"; offset: number };
type Action =
  | { kind: "report"; node: number; offence: Offence; dating: Dating; wait: number }
  | { kind: "replay" }
  | { kind: "stake"; node: number; stake: bigint }
  | { kind: "cooldown"; offence: Offence; seconds: number }
  | { kind: "warp"; seconds: number };

const dating: fc.Arbitrary<Dating> = fc.oneof(
  fc.record({
    from: fc.constant("now" as const),
    offset: fc.integer({ min: -3 * DAY, max: 300 }),
  }),
  fc.record({ from: fc.constant("last" as const), offset: fc.integer({ min: -2, max: 2 }) }),
);
const offence = fc.constantFrom<Offence>("double", "contradicted");
const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant("report" as const),
      node: fc.integer({ min: 0, max: 1 }),
      offence,
      dating,
      // Seconds after the previous block: often inside a one-day cooldown, sometimes at its edge.
      wait: fc.oneof(fc.integer({ min: 1, max: 2 * DAY }), fc.constantFrom(DAY - 1, DAY, DAY + 1)),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("replay" as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("stake" as const),
      node: fc.integer({ min: 0, max: 1 }),
      stake: fc.oneof(fc.bigInt({ min: 0n, max: 20n }), fc.bigInt({ min: 0n, max: STAKE })),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("cooldown" as const),
      offence,
      seconds: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3 * DAY })),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("warp" as const),
      seconds: fc.integer({ min: 1, max: 3 * DAY }),
    }),
  },
);

describe("InferenceLedger repeat rule (fast-check)", function () {
  this.timeout(600_000);

  it("slashes exactly as the TypeScript model of the rule says, after every step", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(action, { minLength: 10, maxLength: 40, size: "max" }),
        async (actions) => {
          const f = await networkHelpers.loadFixture(deploy);
          const { ledger, staking, enclave, domain, reporter } = f;
          const signers = [f.gpuSigner, Wallet.createRandom()];
          const nodes = [f.gpuNode, Wallet.createRandom().address];
          await staking.setNode(nodes[1]!, ROLE.INFERENCE, signers[1]!.address, true, STAKE);

          // The model: each node's stake, its last slash per offence type, each type's cooldown.
          const stakes = [STAKE, STAKE];
          const last = nodes.map(() => ({ double: 0n, contradicted: 0n }));
          const cooldown = { double: BigInt(DAY), contradicted: BigInt(DAY) };
          const bps = 1_000n;
          const code = {
            double: OFFENCE.DOUBLE_RECEIPT,
            contradicted: OFFENCE.CONTRADICTED_RECEIPT,
          };
          const slashedCalls: Array<() => Promise<unknown>> = [];
          let n = 0;

          for (const a of actions) {
            switch (a.kind) {
              case "report": {
                const at = BigInt(await time.latest()) + BigInt(a.wait);
                const lastSlash = last[a.node]![a.offence];
                const base = a.dating.from === "last" && lastSlash !== 0n ? lastSlash : at;
                let datedAt = base + BigInt(a.dating.offset);
                if (datedAt > at + 300n) datedAt = at + 300n; // never a future-dated refusal here
                const tag = `${a.node}/${n++}`;
                const r = makeReceipt(nodes[a.node]!, { requestId: id(tag), timestamp: datedAt });
                let report: () => Promise<unknown>;
                const key =
                  a.offence === "double"
                    ? keccak256(
                        abi.encode(
                          ["uint8", "address", "bytes32"],
                          [OFFENCE.DOUBLE_RECEIPT, r.node, r.requestId],
                        ),
                      )
                    : keccak256(
                        abi.encode(
                          ["uint8", "bytes32"],
                          [OFFENCE.CONTRADICTED_RECEIPT, receiptStructHash(r)],
                        ),
                      );
                if (a.offence === "double") {
                  const b = { ...r, outputHash: id(`other ${tag}`) };
                  const [sigA, sigB] = [
                    await signReceipt(signers[a.node]!, domain, r),
                    await signReceipt(signers[a.node]!, domain, b),
                  ];
                  report = () => ledger.connect(reporter).reportDoubleReceipt(r, sigA, b, sigB);
                } else {
                  const nodeSig = await signReceipt(signers[a.node]!, domain, r);
                  const v = buildVerdict(r, id(`right ${tag}`), datedAt);
                  const sig = await signVerdict(enclave, domain, v);
                  report = () =>
                    ledger
                      .connect(reporter)
                      .reportContradictedReceipt(r, nodeSig, v.outputHash, v.timestamp, sig);
                }
                await time.setNextBlockTimestamp(at);
                const node = nodes[a.node]!;
                const amount = (stakes[a.node]! * bps) / 10_000n;
                if (lastSlash !== 0n && datedAt <= lastSlash) {
                  await expect(report(), "1: covered by the last slash")
                    .to.be.revertedWithCustomError(ledger, "LedgerOffenceCovered")
                    .withArgs(code[a.offence], node, datedAt, lastSlash);
                  await networkHelpers.mine();
                } else if (lastSlash !== 0n && at < lastSlash + cooldown[a.offence]) {
                  await expect(report(), "2: inside the cooldown")
                    .to.be.revertedWithCustomError(ledger, "LedgerOffenceCooldown")
                    .withArgs(code[a.offence], node, lastSlash + cooldown[a.offence]);
                  await networkHelpers.mine();
                } else if (amount === 0n) {
                  await expect(report(), "3: a slash of nothing reverts")
                    .to.be.revertedWithCustomError(ledger, "LedgerNothingToSlash")
                    .withArgs(node, key);
                  expect(await ledger.isOffenceSlashed(key), "3: still reportable").to.equal(false);
                  await networkHelpers.mine();
                } else {
                  await expect(report(), "4: a valid slash takes exactly its share")
                    .to.emit(ledger, "OffenceSlashed")
                    .withArgs(code[a.offence], node, key, reporter.address, amount);
                  stakes[a.node]! -= amount;
                  last[a.node]![a.offence] = at;
                  slashedCalls.push(report);
                }
                break;
              }
              case "replay": {
                const again = slashedCalls[slashedCalls.length - 1];
                if (again === undefined) break;
                await expect(
                  again(),
                  "5: an offence is slashed once",
                ).to.be.revertedWithCustomError(ledger, "LedgerOffenceAlreadySlashed");
                break;
              }
              case "stake":
                await staking.setNode(
                  nodes[a.node]!,
                  ROLE.INFERENCE,
                  signers[a.node]!.address,
                  true,
                  a.stake,
                );
                stakes[a.node] = a.stake;
                break;
              case "cooldown":
                await ledger.setSlashParams(code[a.offence], 1_000, true, a.seconds);
                cooldown[a.offence] = BigInt(a.seconds);
                break;
              case "warp":
                await time.increase(a.seconds);
                break;
            }
            for (const [i, node] of nodes.entries()) {
              expect(await staking.stakeOf(node), "4: stake").to.equal(stakes[i]);
              for (const o of ["double", "contradicted"] as const)
                expect(await ledger.lastSlashOf(node, code[o]), "6: last slash").to.equal(
                  last[i]![o],
                );
            }
          }
        },
      ),
      fuzzOptions(40),
    );
  });
});
