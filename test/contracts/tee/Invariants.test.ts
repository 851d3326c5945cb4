/** The invariants of INVARIANTS.md next to this file, checked after every step of random sequences. */
import { expect } from "chai";
import type { ContractTransactionResponse } from "ethers";
import fc from "fast-check";
import { network } from "hardhat";

import { fuzzOptions } from "../../helpers/fuzz.js";
import { OPG, VERIFIER, stakingFixtures } from "../staking/fixtures.js";

const { ethers, networkHelpers } = await network.create();
const { deployed } = stakingFixtures(ethers);
const loadFixture = networkHelpers.loadFixture.bind(networkHelpers);

const ZERO = ethers.ZeroAddress;
const DOC = "0x01";
const IMAGES = [ethers.id("image a"), ethers.id("image b"), ethers.id("image c")];
const KEYS = Array.from({ length: 5 }, (_, i) =>
  ethers.getAddress("0x" + "e7".repeat(19) + "0" + i),
);

type Action =
  | { kind: "approve"; image: number }
  | { kind: "revoke"; image: number; forCause: boolean }
  | { kind: "register"; node: number; key: number; image: number }
  | { kind: "deregister"; key: number }
  | { kind: "heartbeat"; key: number; renew: boolean }
  | { kind: "exit"; node: number }
  | { kind: "sign"; key: number }
  | { kind: "warp"; seconds: number };

const image = fc.integer({ min: 0, max: IMAGES.length - 1 });
const key = fc.integer({ min: 0, max: KEYS.length - 1 });
const nodeIndex = fc.integer({ min: 0, max: 1 });
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("approve" as const), image }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("revoke" as const), image, forCause: fc.boolean() }),
  },
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant("register" as const), node: nodeIndex, key, image }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("deregister" as const), key }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("heartbeat" as const), key, renew: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("exit" as const), node: nodeIndex }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("sign" as const), key }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("warp" as const),
      seconds: fc.integer({ min: 1, max: 2 * 86_400 }),
    }),
  },
);
/** Every image approved and two keys registered first, then a long random sequence. */
const sequence = fc
  .tuple(image, image, fc.array(action, { minLength: 10, maxLength: 40, size: "max" }))
  .map(([a, b, rest]): Action[] => [
    ...IMAGES.map((_, i): Action => ({ kind: "approve", image: i })),
    { kind: "register", node: 0, key: 0, image: a },
    { kind: "register", node: 1, key: 1, image: b },
    ...rest,
  ]);

/** Two VERIFIER nodes (operated by `operator` and `operator2`) and nothing approved yet. */
async function twoVerifiers() {
  const f = await deployed();
  await f.staking
    .connect(f.operator)
    .register(f.node, VERIFIER, f.signer.address, 30_000n * OPG, "");
  await f.staking
    .connect(f.operator2)
    .register(f.node2, VERIFIER, f.signer2.address, 30_000n * OPG, "");
  return f;
}

describe("TeeRegistry invariants (fast-check)", function () {
  this.timeout(600_000);

  it("hold after every step of random registration, revocation and time sequences", async () => {
    await fc.assert(
      fc.asyncProperty(sequence, async (actions) => {
        const f = await loadFixture(twoVerifiers);
        const { tee, staking, governance } = f;
        const nodes = [f.node, f.node2];
        const operators = [f.operator, f.operator2];
        const ttl = await tee.registrationTtl();

        // The model: each image's approval changes (approve, revoke, ...) and cause; each key's registration.
        const images = IMAGES.map(() => ({ changes: [] as bigint[], cause: false }));
        const approvedAt = (m: number, t: bigint) =>
          images[m]!.changes.filter((c) => c <= t).length % 2 === 1;
        const approvedNow = (m: number) => images[m]!.changes.length % 2 === 1;
        const enclaves = new Map<
          string,
          {
            node: number;
            image: number;
            registeredAt: bigint;
            deregisteredAt: bigint;
            expiresAt: bigint;
          }
        >();
        const exited = [false, false];
        const observed: Array<{ key: string; at: bigint; answer: string }> = [];

        const mined = async (tx: Promise<ContractTransactionResponse>) => {
          const receipt = (await (await tx).wait())!;
          return BigInt((await ethers.provider.getBlock(receipt.blockNumber))!.timestamp);
        };
        /** The model's accountableNodeOf. */
        const accountable = (k: string, t: bigint) => {
          const e = enclaves.get(k);
          if (e === undefined || t < e.registeredAt) return ZERO;
          if (e.deregisteredAt !== 0n && t >= e.deregisteredAt) return ZERO;
          if (images[e.image]!.cause || !approvedAt(e.image, t)) return ZERO;
          return nodes[e.node]!;
        };

        /** Asserts the refusal of a call on a key that never registered or was deregistered; true if so. */
        const refusedUnlessLive = async (
          tx: Promise<ContractTransactionResponse>,
          k: string,
          e: { deregisteredAt: bigint } | undefined,
        ) => {
          if (e === undefined) {
            await expect(tx).to.be.revertedWithCustomError(tee, "TeeUnknownEnclave").withArgs(k);
            return true;
          }
          if (e.deregisteredAt !== 0n) {
            await expect(tx)
              .to.be.revertedWithCustomError(tee, "TeeEnclaveDeregistered")
              .withArgs(k, e.deregisteredAt);
            return true;
          }
          return false;
        };

        const check = async () => {
          const now = BigInt(await networkHelpers.time.latest());
          for (const k of KEYS) {
            const e = enclaves.get(k);
            expect(await tee.nodeOfEnclave(k), "1: a key's node never changes").to.equal(
              e === undefined ? ZERO : nodes[e.node],
            );
            const active =
              e !== undefined &&
              e.deregisteredAt === 0n &&
              now < e.expiresAt &&
              approvedNow(e.image) &&
              !exited[e.node];
            expect(await tee.isActiveEnclave(k), "4: active exactly when the model says").to.equal(
              active,
            );
            if (e === undefined) continue;
            // 3: accountableNodeOf at every boundary the key and its image have had.
            const probes = new Set<bigint>([e.registeredAt - 1n, e.registeredAt, now]);
            if (e.deregisteredAt !== 0n) {
              probes.add(e.deregisteredAt - 1n);
              probes.add(e.deregisteredAt);
            }
            for (const c of images[e.image]!.changes) {
              probes.add(c - 1n);
              probes.add(c);
            }
            for (const t of probes) {
              expect(
                await tee.accountableNodeOf(k, t),
                `3: accountableNodeOf(${k}, ${t})`,
              ).to.equal(accountable(k, t));
            }
          }
          // 2: what a key signed is judged as it was when it was signed, whatever happened since,
          // except that a revocation for cause voids everything the image's enclaves signed.
          for (const o of observed) {
            const e = enclaves.get(o.key);
            const expected = e !== undefined && images[e.image]!.cause ? ZERO : o.answer;
            expect(
              await tee.accountableNodeOf(o.key, o.at),
              "2: evidence keeps the standing it had when signed",
            ).to.equal(expected);
          }
        };

        for (const a of actions) {
          switch (a.kind) {
            case "approve": {
              const m = images[a.image]!;
              const tx = tee.connect(governance).approveMeasurement(IMAGES[a.image]!, "");
              if (m.cause) {
                await expect(tx)
                  .to.be.revertedWithCustomError(tee, "TeeMeasurementRevokedForCause")
                  .withArgs(IMAGES[a.image]);
              } else if (approvedNow(a.image)) {
                await expect(tx)
                  .to.be.revertedWithCustomError(tee, "TeeMeasurementAlreadyApproved")
                  .withArgs(IMAGES[a.image]);
              } else {
                m.changes.push(await mined(tx));
              }
              break;
            }
            case "revoke": {
              const m = images[a.image]!;
              const tx = tee.connect(governance).revokeMeasurement(IMAGES[a.image]!, a.forCause);
              const escalation =
                m.changes.length > 0 && !approvedNow(a.image) && a.forCause && !m.cause;
              if (approvedNow(a.image)) {
                m.changes.push(await mined(tx));
                if (a.forCause) m.cause = true;
              } else if (escalation) {
                await mined(tx);
                m.cause = true;
              } else {
                await expect(tx)
                  .to.be.revertedWithCustomError(tee, "TeeMeasurementNotApproved")
                  .withArgs(IMAGES[a.image]);
              }
              break;
            }
            case "register": {
              const k = KEYS[a.key]!;
              const owner = enclaves.get(k);
              const tx = tee
                .connect(operators[a.node])
                .registerEnclave(nodes[a.node]!, k, IMAGES[a.image]!, DOC);
              if (exited[a.node]) {
                await expect(tx)
                  .to.be.revertedWithCustomError(tee, "TeeNodeNotActive")
                  .withArgs(nodes[a.node]);
              } else if (owner !== undefined) {
                // 1: a key registers once, for one node, even after its deregistration.
                await expect(tx)
                  .to.be.revertedWithCustomError(tee, "TeeEnclaveTaken")
                  .withArgs(k, nodes[owner.node]);
              } else if (!approvedNow(a.image)) {
                await expect(tx)
                  .to.be.revertedWithCustomError(tee, "TeeMeasurementNotApproved")
                  .withArgs(IMAGES[a.image]);
              } else {
                const t = await mined(tx);
                enclaves.set(k, {
                  node: a.node,
                  image: a.image,
                  registeredAt: t,
                  deregisteredAt: 0n,
                  expiresAt: t + ttl,
                });
              }
              break;
            }
            case "deregister": {
              const k = KEYS[a.key]!;
              const e = enclaves.get(k);
              const tx = tee.connect(operators[e?.node ?? 0]).deregisterEnclave(k);
              if (await refusedUnlessLive(tx, k, e)) break;
              e!.deregisteredAt = await mined(tx);
              e!.expiresAt = 0n;
              break;
            }
            case "heartbeat": {
              const k = KEYS[a.key]!;
              const e = enclaves.get(k);
              const as = tee.connect(operators[e?.node ?? 0]);
              const tx = a.renew ? as.renewEnclave(k, DOC) : as.heartbeat(k);
              if (await refusedUnlessLive(tx, k, e)) break;
              if (!approvedNow(e!.image)) {
                await expect(tx)
                  .to.be.revertedWithCustomError(tee, "TeeMeasurementNotApproved")
                  .withArgs(IMAGES[e!.image]);
              } else {
                e!.expiresAt = (await mined(tx)) + ttl;
              }
              break;
            }
            case "exit":
              if (exited[a.node]) break;
              await mined(staking.connect(operators[a.node]).exit(nodes[a.node]!));
              exited[a.node] = true;
              break;
            case "sign": {
              // The key signs at the chain's current time; its standing then is final from the next block.
              const k = KEYS[a.key]!;
              const at = BigInt(await networkHelpers.time.latest());
              const answer = await tee.accountableNodeOf(k, at);
              expect(answer, "3: at signing time").to.equal(accountable(k, at));
              observed.push({ key: k, at, answer });
              await networkHelpers.mine();
              break;
            }
            case "warp":
              await networkHelpers.time.increase(a.seconds);
              break;
          }
          await check();
        }
      }),
      fuzzOptions(40),
    );
  });
});
