import { expect } from "chai";
import { Wallet, ZeroAddress, ZeroHash, getAddress, keccak256, toUtf8Bytes } from "ethers";
import fc from "fast-check";
import { network } from "hardhat";

import { fuzzOptions } from "../../helpers/fuzz.js";

const { ethers, networkHelpers } = await network.create();

const MODEL = keccak256(toUtf8Bytes("model bytes"));
const SPEC = keccak256(toUtf8Bytes("spec"));
/** A model id not registered in the fixtures. */
const FRESH = keccak256(toUtf8Bytes("fresh model"));

async function deployRegistry() {
  const [owner, alice, bob, other] = await ethers.getSigners();
  const registry = await ethers.deployContract("ModelRegistry");
  return { registry, owner: owner!, alice: alice!, bob: bob!, other: other! };
}

async function registered() {
  const f = await networkHelpers.loadFixture(deployRegistry);
  await f.registry.registerModel(
    MODEL,
    "ipfs://model",
    SPEC,
    [f.alice.address, f.bob.address],
    [7_000, 3_000],
  );
  return f;
}

describe("ModelRegistry", () => {
  describe("registerModel", () => {
    it("records the owner, spec, URI and shares, with events", async () => {
      const { registry, owner, alice, bob } = await networkHelpers.loadFixture(deployRegistry);
      const tx = registry.registerModel(
        MODEL,
        "ipfs://model",
        SPEC,
        [alice.address, bob.address],
        [7_000, 3_000],
      );
      await expect(tx)
        .to.emit(registry, "ModelRegistered")
        .withArgs(MODEL, owner.address, SPEC, "ipfs://model");
      await expect(tx)
        .to.emit(registry, "ContributorsSet")
        .withArgs(MODEL, [alice.address, bob.address], [7_000n, 3_000n]);
      expect(await registry.isRegistered(MODEL)).to.equal(true);
      const model = await registry.modelOf(MODEL);
      expect([model.owner, model.specHash, model.metadataUri]).to.deep.equal([
        owner.address,
        SPEC,
        "ipfs://model",
      ]);
      const [contributors, shares] = await registry.contributorsOf(MODEL);
      expect(contributors).to.deep.equal([alice.address, bob.address]);
      expect(shares).to.deep.equal([7_000n, 3_000n]);
    });

    it("accepts MAX_CONTRIBUTORS contributors", async () => {
      const { registry } = await networkHelpers.loadFixture(deployRegistry);
      const n = Number(await registry.MAX_CONTRIBUTORS());
      const contributors = Array.from({ length: n }, () => Wallet.createRandom().address);
      const shares = contributors.map((_, i) => (i === 0 ? 10_000 - (n - 1) * 100 : 100));
      await registry.registerModel(MODEL, "u", SPEC, contributors, shares);
      expect((await registry.contributorsOf(MODEL))[0]).to.have.length(n);
    });

    it("reverts with ModelRegistryZeroModelId for the zero id", async () => {
      const { registry, alice } = await networkHelpers.loadFixture(deployRegistry);
      await expect(
        registry.registerModel(ZeroHash, "u", SPEC, [alice.address], [10_000]),
      ).to.be.revertedWithCustomError(registry, "ModelRegistryZeroModelId");
    });

    it("reverts with ModelRegistryAlreadyRegistered for a taken id", async () => {
      const { registry, owner, other } = await registered();
      await expect(
        registry.connect(other).registerModel(MODEL, "u", SPEC, [other.address], [10_000]),
      )
        .to.be.revertedWithCustomError(registry, "ModelRegistryAlreadyRegistered")
        .withArgs(MODEL, owner.address);
    });

    it("reverts with ModelRegistryLengthMismatch", async () => {
      const { registry, alice } = await networkHelpers.loadFixture(deployRegistry);
      await expect(registry.registerModel(MODEL, "u", SPEC, [alice.address], [5_000, 5_000]))
        .to.be.revertedWithCustomError(registry, "ModelRegistryLengthMismatch")
        .withArgs(1n, 2n);
    });

    it("reverts with ModelRegistryInvalidContributorCount for none or too many", async () => {
      const { registry } = await networkHelpers.loadFixture(deployRegistry);
      await expect(registry.registerModel(MODEL, "u", SPEC, [], []))
        .to.be.revertedWithCustomError(registry, "ModelRegistryInvalidContributorCount")
        .withArgs(0n, 64n);
      const many = Array.from({ length: 65 }, () => Wallet.createRandom().address);
      await expect(
        registry.registerModel(
          MODEL,
          "u",
          SPEC,
          many,
          many.map(() => 1),
        ),
      )
        .to.be.revertedWithCustomError(registry, "ModelRegistryInvalidContributorCount")
        .withArgs(65n, 64n);
    });

    it("reverts with ModelRegistryZeroContributor", async () => {
      const { registry, alice } = await networkHelpers.loadFixture(deployRegistry);
      await expect(
        registry.registerModel(MODEL, "u", SPEC, [alice.address, ZeroAddress], [5_000, 5_000]),
      )
        .to.be.revertedWithCustomError(registry, "ModelRegistryZeroContributor")
        .withArgs(1n);
    });

    it("reverts with ModelRegistryZeroShare", async () => {
      const { registry, alice, bob } = await networkHelpers.loadFixture(deployRegistry);
      await expect(
        registry.registerModel(MODEL, "u", SPEC, [alice.address, bob.address], [10_000, 0]),
      )
        .to.be.revertedWithCustomError(registry, "ModelRegistryZeroShare")
        .withArgs(bob.address);
    });

    it("reverts with ModelRegistryDuplicateContributor", async () => {
      const { registry, alice, bob } = await networkHelpers.loadFixture(deployRegistry);
      await expect(
        registry.registerModel(
          MODEL,
          "u",
          SPEC,
          [alice.address, bob.address, alice.address],
          [4_000, 3_000, 3_000],
        ),
      )
        .to.be.revertedWithCustomError(registry, "ModelRegistryDuplicateContributor")
        .withArgs(alice.address);
    });

    for (const shares of [
      [5_000, 4_999],
      [6_000, 4_001],
    ]) {
      it(`reverts with ModelRegistrySharesNotWhole for ${shares.join("+")}`, async () => {
        const { registry, alice, bob } = await networkHelpers.loadFixture(deployRegistry);
        await expect(registry.registerModel(MODEL, "u", SPEC, [alice.address, bob.address], shares))
          .to.be.revertedWithCustomError(registry, "ModelRegistrySharesNotWhole")
          .withArgs(BigInt(shares[0]! + shares[1]!));
      });
    }
  });

  describe("setContributors", () => {
    it("replaces the contributors and shares", async () => {
      const { registry, other } = await registered();
      await expect(registry.setContributors(MODEL, [other.address], [10_000]))
        .to.emit(registry, "ContributorsSet")
        .withArgs(MODEL, [other.address], [10_000n]);
      const [contributors, shares] = await registry.contributorsOf(MODEL);
      expect(contributors).to.deep.equal([other.address]);
      expect(shares).to.deep.equal([10_000n]);
    });

    it("applies the registration rules", async () => {
      const { registry, other } = await registered();
      await expect(registry.setContributors(MODEL, [other.address], [9_999]))
        .to.be.revertedWithCustomError(registry, "ModelRegistrySharesNotWhole")
        .withArgs(9_999n);
    });

    it("reverts with ModelRegistryNotOwner for anyone but the owner", async () => {
      const { registry, owner, other } = await registered();
      await expect(registry.connect(other).setContributors(MODEL, [other.address], [10_000]))
        .to.be.revertedWithCustomError(registry, "ModelRegistryNotOwner")
        .withArgs(MODEL, other.address, owner.address);
    });

    it("reverts with ModelRegistryUnknownModel for an unknown model", async () => {
      const { registry, other } = await registered();
      await expect(registry.setContributors(SPEC, [other.address], [10_000]))
        .to.be.revertedWithCustomError(registry, "ModelRegistryUnknownModel")
        .withArgs(SPEC);
    });
  });

  describe("duplicate contributors, wherever they sit", () => {
    /** n distinct addresses (deterministic, so a shrunk case replays), shares summing to 10,000. */
    const distinct = (n: number) =>
      Array.from({ length: n }, (_, k) =>
        getAddress("0x" + (k + 1).toString(16).padStart(40, "c")),
      );
    const sharesFor = (n: number) =>
      Array.from({ length: n }, (_, k) => Math.floor(10_000 / n) + (k === 0 ? 10_000 % n : 0));
    /** Where the copy goes: adjacent, first and last, the middle, or anywhere (i < j). */
    const placement = fc.integer({ min: 2, max: 64 }).chain((n) =>
      fc.oneof(
        fc.integer({ min: 0, max: n - 2 }).map((i) => ({ n, i, j: i + 1, layout: "adjacent" })),
        fc.constant({ n, i: 0, j: n - 1, layout: "first/last" }),
        fc.constant({
          n,
          i: Math.floor((n - 1) / 2),
          j: Math.floor((n - 1) / 2) + 1,
          layout: "middle",
        }),
        fc
          .tuple(fc.integer({ min: 0, max: n - 1 }), fc.integer({ min: 0, max: n - 1 }))
          .filter(([a, b]) => a !== b)
          .map(([a, b]) => ({ n, i: Math.min(a, b), j: Math.max(a, b), layout: "anywhere" })),
      ),
    );

    it("reverts with ModelRegistryDuplicateContributor in registerModel and setContributors, and the list without the copy is accepted", async () => {
      const { registry } = await registered();
      await fc.assert(
        fc.asyncProperty(placement, async ({ n, i, j, layout }) => {
          const contributors = distinct(n);
          const shares = sharesFor(n);
          // The list is valid as drawn: only the copy below makes it fail.
          await registry.registerModel.staticCall(FRESH, "u", SPEC, contributors, shares);
          const withCopy = [...contributors];
          withCopy[j] = contributors[i]!;
          const label = `${layout}: n=${n}, copy of ${i} at ${j}`;
          await expect(registry.registerModel(FRESH, "u", SPEC, withCopy, shares), label)
            .to.be.revertedWithCustomError(registry, "ModelRegistryDuplicateContributor")
            .withArgs(contributors[i]!);
          await expect(registry.setContributors(MODEL, withCopy, shares), label)
            .to.be.revertedWithCustomError(registry, "ModelRegistryDuplicateContributor")
            .withArgs(contributors[i]!);
        }),
        fuzzOptions(25),
      );
    });
  });

  describe("setMetadataUri", () => {
    it("changes the URI", async () => {
      const { registry } = await registered();
      await expect(registry.setMetadataUri(MODEL, "ar://new"))
        .to.emit(registry, "MetadataUriSet")
        .withArgs(MODEL, "ar://new");
      expect((await registry.modelOf(MODEL)).metadataUri).to.equal("ar://new");
    });

    it("reverts with ModelRegistryNotOwner for anyone but the owner", async () => {
      const { registry, owner, other } = await registered();
      await expect(registry.connect(other).setMetadataUri(MODEL, "x"))
        .to.be.revertedWithCustomError(registry, "ModelRegistryNotOwner")
        .withArgs(MODEL, other.address, owner.address);
    });

    it("reverts with ModelRegistryUnknownModel for an unknown model", async () => {
      const { registry } = await registered();
      await expect(registry.setMetadataUri(SPEC, "x"))
        .to.be.revertedWithCustomError(registry, "ModelRegistryUnknownModel")
        .withArgs(SPEC);
    });
  });

  describe("transferModelOwnership", () => {
    it("hands the model over; the new owner controls it and the old one no longer does", async () => {
      const { registry, owner, other } = await registered();
      await expect(registry.transferModelOwnership(MODEL, other.address))
        .to.emit(registry, "ModelOwnershipTransferred")
        .withArgs(MODEL, owner.address, other.address);
      expect((await registry.modelOf(MODEL)).owner).to.equal(other.address);
      await registry.connect(other).setMetadataUri(MODEL, "mine");
      await expect(registry.setMetadataUri(MODEL, "x"))
        .to.be.revertedWithCustomError(registry, "ModelRegistryNotOwner")
        .withArgs(MODEL, owner.address, other.address);
    });

    it("reverts with ModelRegistryZeroOwner", async () => {
      const { registry } = await registered();
      await expect(registry.transferModelOwnership(MODEL, ZeroAddress))
        .to.be.revertedWithCustomError(registry, "ModelRegistryZeroOwner")
        .withArgs(MODEL);
    });

    it("reverts with ModelRegistryNotOwner for anyone but the owner", async () => {
      const { registry, owner, other } = await registered();
      await expect(registry.connect(other).transferModelOwnership(MODEL, other.address))
        .to.be.revertedWithCustomError(registry, "ModelRegistryNotOwner")
        .withArgs(MODEL, other.address, owner.address);
    });
  });

  describe("views", () => {
    it("report unknown models", async () => {
      const { registry } = await registered();
      expect(await registry.isRegistered(SPEC)).to.equal(false);
      await expect(registry.modelOf(SPEC))
        .to.be.revertedWithCustomError(registry, "ModelRegistryUnknownModel")
        .withArgs(SPEC);
      await expect(registry.contributorsOf(SPEC))
        .to.be.revertedWithCustomError(registry, "ModelRegistryUnknownModel")
        .withArgs(SPEC);
    });
  });
});
