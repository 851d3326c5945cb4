import { expect } from "chai";
import { network } from "hardhat";

import { measurementFromPcrs } from "../../../offchain/staking/units.js";
import { INFERENCE, OPG, VERIFIER, stakingFixtures } from "../staking/fixtures.js";

const { ethers, networkHelpers } = await network.create();
const { deployed } = stakingFixtures(ethers);
const loadFixture = networkHelpers.loadFixture.bind(networkHelpers);
const time = networkHelpers.time;

const ZERO = ethers.ZeroAddress;
const DAY = 86_400n;
const IMAGE = ethers.id("image v1");
const IMAGE2 = ethers.id("image v2");
const DOC = ethers.toUtf8Bytes("nitro attestation document");

/** A VERIFIER node (`node`, operated by `operator`, signed by `signer`) and image v1 approved. */
async function teeFixture() {
  const f = await deployed();
  await f.staking
    .connect(f.operator)
    .register(f.node, VERIFIER, f.signer.address, 30_000n * OPG, "https://tee.example");
  await f.tee.connect(f.governance).approveMeasurement(IMAGE, "v1");
  const [enclave, enclave2] = [ethers.Wallet.createRandom(), ethers.Wallet.createRandom()];
  return { ...f, enclave: enclave.address, enclave2: enclave2.address };
}

async function enclaveFixture() {
  const f = await teeFixture();
  await f.tee.connect(f.operator).registerEnclave(f.node, f.enclave, IMAGE, DOC);
  return f;
}

describe("TeeRegistry", () => {
  describe("constructor", () => {
    it("sets staking, the verifier, the lifetime and hands the roles to governance", async () => {
      const { tee, staking, devVerifier, governance, deployer } = await loadFixture(deployed);
      expect(await tee.staking()).to.equal(await staking.getAddress());
      expect(await tee.verifier()).to.equal(await devVerifier!.getAddress());
      expect(await tee.registrationTtl()).to.equal(DAY);
      expect(await tee.hasRole(await tee.GOVERNANCE_ROLE(), governance.address)).to.be.true;
      expect(await tee.hasRole(await tee.DEFAULT_ADMIN_ROLE(), deployer.address)).to.be.false;
    });

    it("reverts with TeeZeroAddress and TeeInvalidRegistrationTtl", async () => {
      const { staking, devVerifier, deployer } = await loadFixture(deployed);
      const factory = await ethers.getContractFactory("TeeRegistry");
      const s = await staking.getAddress();
      const v = await devVerifier!.getAddress();
      for (const args of [
        [ZERO, v, deployer.address, DAY],
        [s, ZERO, deployer.address, DAY],
        [s, v, ZERO, DAY],
      ] as const) {
        await expect(factory.deploy(...args)).to.be.revertedWithCustomError(
          factory,
          "TeeZeroAddress",
        );
      }
      for (const ttl of [0n, 30n * DAY + 1n]) {
        await expect(factory.deploy(s, v, deployer.address, ttl))
          .to.be.revertedWithCustomError(factory, "TeeInvalidRegistrationTtl")
          .withArgs(ttl);
      }
    });
  });

  describe("approveMeasurement", () => {
    it("approves an image", async () => {
      const { tee, governance } = await loadFixture(teeFixture);
      await expect(tee.connect(governance).approveMeasurement(IMAGE2, "v2"))
        .to.emit(tee, "MeasurementApproved")
        .withArgs(IMAGE2, "v2");
      expect(await tee.isMeasurementApproved(IMAGE2)).to.be.true;
    });

    it("reverts with TeeZeroMeasurement and TeeMeasurementAlreadyApproved", async () => {
      const { tee, governance } = await loadFixture(teeFixture);
      await expect(
        tee.connect(governance).approveMeasurement(ethers.ZeroHash, ""),
      ).to.be.revertedWithCustomError(tee, "TeeZeroMeasurement");
      await expect(tee.connect(governance).approveMeasurement(IMAGE, "again"))
        .to.be.revertedWithCustomError(tee, "TeeMeasurementAlreadyApproved")
        .withArgs(IMAGE);
    });

    it("approves a retired image again", async () => {
      const { tee, governance } = await loadFixture(teeFixture);
      await tee.connect(governance).revokeMeasurement(IMAGE, false);
      await expect(tee.connect(governance).approveMeasurement(IMAGE, "v1 again"))
        .to.emit(tee, "MeasurementApproved")
        .withArgs(IMAGE, "v1 again");
      expect(await tee.measurementStatus(IMAGE)).to.deep.equal([true, false, 0n]);
    });

    it("reverts with TeeMeasurementRevokedForCause for an image revoked for cause, for good", async () => {
      const { tee, governance } = await loadFixture(teeFixture);
      await tee.connect(governance).revokeMeasurement(IMAGE, true);
      await expect(tee.connect(governance).approveMeasurement(IMAGE, "v1 fixed?"))
        .to.be.revertedWithCustomError(tee, "TeeMeasurementRevokedForCause")
        .withArgs(IMAGE);
      expect(await tee.isMeasurementApproved(IMAGE)).to.be.false;
    });

    it("reverts with TeeMeasurementRevokedForCause for a retired image later revoked for cause", async () => {
      const { tee, governance } = await loadFixture(teeFixture);
      await tee.connect(governance).revokeMeasurement(IMAGE, false);
      await tee.connect(governance).revokeMeasurement(IMAGE, true);
      await expect(tee.connect(governance).approveMeasurement(IMAGE, "again"))
        .to.be.revertedWithCustomError(tee, "TeeMeasurementRevokedForCause")
        .withArgs(IMAGE);
    });
  });

  describe("revokeMeasurement", () => {
    for (const forCause of [false, true]) {
      it(`disables every enclave running the image at once (forCause ${forCause})`, async () => {
        const { tee, staking, governance, operator2, signer2, node2, enclave, enclave2 } =
          await loadFixture(enclaveFixture);
        await staking
          .connect(operator2)
          .register(node2, VERIFIER, signer2.address, 30_000n * OPG, "");
        await tee.connect(operator2).registerEnclave(node2, enclave2, IMAGE, DOC);
        expect(await tee.isActiveEnclave(enclave)).to.be.true;
        expect(await tee.isActiveEnclave(enclave2)).to.be.true;
        const tx = tee.connect(governance).revokeMeasurement(IMAGE, forCause);
        await expect(tx).to.emit(tee, "MeasurementRevoked").withArgs(IMAGE, forCause);
        const revokedAt = BigInt(await time.latest());
        expect(await tee.isActiveEnclave(enclave)).to.be.false;
        expect(await tee.isActiveEnclave(enclave2)).to.be.false;
        expect(await tee.isMeasurementApproved(IMAGE)).to.be.false;
        expect(await tee.measurementStatus(IMAGE)).to.deep.equal([false, forCause, revokedAt]);
      });
    }

    it("escalates a retired image to revoked for cause, keeping the first revocation time", async () => {
      const { tee, governance } = await loadFixture(teeFixture);
      await tee.connect(governance).revokeMeasurement(IMAGE, false);
      const retiredAt = BigInt(await time.latest());
      await time.increase(DAY);
      await expect(tee.connect(governance).revokeMeasurement(IMAGE, true))
        .to.emit(tee, "MeasurementRevoked")
        .withArgs(IMAGE, true);
      expect(await tee.measurementStatus(IMAGE)).to.deep.equal([false, true, retiredAt]);
    });

    it("reverts with TeeMeasurementNotApproved for an image never approved", async () => {
      const { tee, governance } = await loadFixture(teeFixture);
      for (const forCause of [false, true]) {
        await expect(tee.connect(governance).revokeMeasurement(IMAGE2, forCause))
          .to.be.revertedWithCustomError(tee, "TeeMeasurementNotApproved")
          .withArgs(IMAGE2);
      }
    });

    it("reverts with TeeMeasurementNotApproved for a second retirement and a second revocation for cause", async () => {
      const { tee, governance } = await loadFixture(teeFixture);
      await tee.connect(governance).revokeMeasurement(IMAGE, false);
      await expect(tee.connect(governance).revokeMeasurement(IMAGE, false))
        .to.be.revertedWithCustomError(tee, "TeeMeasurementNotApproved")
        .withArgs(IMAGE);
      await tee.connect(governance).revokeMeasurement(IMAGE, true);
      for (const forCause of [false, true]) {
        await expect(tee.connect(governance).revokeMeasurement(IMAGE, forCause))
          .to.be.revertedWithCustomError(tee, "TeeMeasurementNotApproved")
          .withArgs(IMAGE);
      }
    });
  });

  describe("measurementStatus", () => {
    it("is all zero for an image never approved, and approved with no revocation once approved", async () => {
      const { tee } = await loadFixture(teeFixture);
      expect(await tee.measurementStatus(IMAGE2)).to.deep.equal([false, false, 0n]);
      expect(await tee.measurementStatus(IMAGE)).to.deep.equal([true, false, 0n]);
    });
  });

  describe("setVerifier and setRegistrationTtl", () => {
    it("set the verifier and the lifetime", async () => {
      const { tee, governance, stranger } = await loadFixture(teeFixture);
      await expect(tee.connect(governance).setVerifier(stranger.address))
        .to.emit(tee, "VerifierSet")
        .withArgs(stranger.address);
      expect(await tee.verifier()).to.equal(stranger.address);
      await expect(tee.connect(governance).setRegistrationTtl(3_600n))
        .to.emit(tee, "RegistrationTtlSet")
        .withArgs(3_600n);
      expect(await tee.registrationTtl()).to.equal(3_600n);
    });

    it("revert with TeeZeroAddress and TeeInvalidRegistrationTtl", async () => {
      const { tee, governance } = await loadFixture(teeFixture);
      await expect(tee.connect(governance).setVerifier(ZERO)).to.be.revertedWithCustomError(
        tee,
        "TeeZeroAddress",
      );
      await expect(tee.connect(governance).setRegistrationTtl(0n))
        .to.be.revertedWithCustomError(tee, "TeeInvalidRegistrationTtl")
        .withArgs(0n);
    });
  });

  describe("registerEnclave", () => {
    it("registers the key for the node with the verifier's document hash", async () => {
      const { tee, operator, node, enclave } = await loadFixture(teeFixture);
      const tx = tee.connect(operator).registerEnclave(node, enclave, IMAGE, DOC);
      const expiresAt = BigInt(await time.latest()) + 1n + DAY;
      await expect(tx)
        .to.emit(tee, "EnclaveRegistered")
        .withArgs(enclave, node, IMAGE, ethers.keccak256(DOC), expiresAt);
      expect(await tee.isActiveEnclave(enclave)).to.be.true;
      expect(await tee.nodeOfEnclave(enclave)).to.equal(node);
      expect(await tee.getEnclave(enclave)).to.deep.equal([
        node,
        expiresAt,
        expiresAt - DAY,
        0n,
        IMAGE,
      ]);
    });

    it("accepts the node's signer as the caller", async () => {
      const { tee, signer, node, enclave } = await loadFixture(teeFixture);
      await expect(tee.connect(signer).registerEnclave(node, enclave, IMAGE, DOC)).to.emit(
        tee,
        "EnclaveRegistered",
      );
      expect(await tee.nodeOfEnclave(enclave)).to.equal(node);
    });

    it("reverts with TeeEnclaveTaken for a second registration by the same node, under any image", async () => {
      const { tee, governance, operator, signer, node, enclave } =
        await loadFixture(enclaveFixture);
      await tee.connect(governance).approveMeasurement(IMAGE2, "v2");
      for (const [who, image] of [
        [operator, IMAGE],
        [signer, IMAGE2],
      ] as const) {
        await expect(tee.connect(who).registerEnclave(node, enclave, image, DOC))
          .to.be.revertedWithCustomError(tee, "TeeEnclaveTaken")
          .withArgs(enclave, node);
      }
      expect((await tee.getEnclave(enclave)).measurement).to.equal(IMAGE);
    });

    it("reverts with TeeEnclaveTaken for a deregistered key, by its node or another", async () => {
      const { tee, staking, operator, operator2, signer2, node, node2, enclave } =
        await loadFixture(enclaveFixture);
      await tee.connect(operator).deregisterEnclave(enclave);
      await staking
        .connect(operator2)
        .register(node2, VERIFIER, signer2.address, 30_000n * OPG, "");
      await expect(tee.connect(operator).registerEnclave(node, enclave, IMAGE, DOC))
        .to.be.revertedWithCustomError(tee, "TeeEnclaveTaken")
        .withArgs(enclave, node);
      await expect(tee.connect(operator2).registerEnclave(node2, enclave, IMAGE, DOC))
        .to.be.revertedWithCustomError(tee, "TeeEnclaveTaken")
        .withArgs(enclave, node);
      expect(await tee.nodeOfEnclave(enclave)).to.equal(node);
    });

    it("reverts with TeeMeasurementNotApproved for a retired image and for one revoked for cause", async () => {
      const { tee, governance, operator, node, enclave } = await loadFixture(teeFixture);
      await tee.connect(governance).approveMeasurement(IMAGE2, "v2");
      await tee.connect(governance).revokeMeasurement(IMAGE, false);
      await tee.connect(governance).revokeMeasurement(IMAGE2, true);
      for (const image of [IMAGE, IMAGE2]) {
        await expect(tee.connect(operator).registerEnclave(node, enclave, image, DOC))
          .to.be.revertedWithCustomError(tee, "TeeMeasurementNotApproved")
          .withArgs(image);
      }
    });

    it("reverts with TeeZeroAddress for a zero key", async () => {
      const { tee, operator, node } = await loadFixture(teeFixture);
      await expect(
        tee.connect(operator).registerEnclave(node, ZERO, IMAGE, DOC),
      ).to.be.revertedWithCustomError(tee, "TeeZeroAddress");
    });

    it("reverts with TeeNotVerifierNode for an INFERENCE or unknown node", async () => {
      const { tee, staking, operator2, signer2, node2, enclave } = await loadFixture(teeFixture);
      const unknown = ethers.Wallet.createRandom().address;
      await expect(tee.connect(operator2).registerEnclave(unknown, enclave, IMAGE, DOC))
        .to.be.revertedWithCustomError(tee, "TeeNotVerifierNode")
        .withArgs(unknown, 0);
      await staking
        .connect(operator2)
        .register(node2, INFERENCE, signer2.address, 30_000n * OPG, "");
      await expect(tee.connect(operator2).registerEnclave(node2, enclave, IMAGE, DOC))
        .to.be.revertedWithCustomError(tee, "TeeNotVerifierNode")
        .withArgs(node2, INFERENCE);
    });

    it("reverts with TeeNotNodeController for anyone but the operator or signer", async () => {
      const { tee, stranger, node, enclave } = await loadFixture(teeFixture);
      await expect(tee.connect(stranger).registerEnclave(node, enclave, IMAGE, DOC))
        .to.be.revertedWithCustomError(tee, "TeeNotNodeController")
        .withArgs(node, stranger.address);
    });

    it("reverts with TeeNodeNotActive for a jailed node", async () => {
      const { tee, staking, stranger, operator, node, enclave } = await loadFixture(teeFixture);
      await time.increase(3_601n);
      await staking.connect(stranger).jailInactive(node);
      await expect(tee.connect(operator).registerEnclave(node, enclave, IMAGE, DOC))
        .to.be.revertedWithCustomError(tee, "TeeNodeNotActive")
        .withArgs(node);
    });

    it("reverts with TeeEnclaveTaken for a key of another node", async () => {
      const { tee, staking, operator2, signer2, node, node2, enclave } =
        await loadFixture(enclaveFixture);
      await staking
        .connect(operator2)
        .register(node2, VERIFIER, signer2.address, 30_000n * OPG, "");
      await expect(tee.connect(operator2).registerEnclave(node2, enclave, IMAGE, DOC))
        .to.be.revertedWithCustomError(tee, "TeeEnclaveTaken")
        .withArgs(enclave, node);
    });

    it("reverts with TeeMeasurementNotApproved for an unapproved image", async () => {
      const { tee, operator, node, enclave } = await loadFixture(teeFixture);
      await expect(tee.connect(operator).registerEnclave(node, enclave, IMAGE2, DOC))
        .to.be.revertedWithCustomError(tee, "TeeMeasurementNotApproved")
        .withArgs(IMAGE2);
    });

    it("reverts with the verifier's error when it rejects the attestation", async () => {
      const { tee, devVerifier, operator, node, enclave } = await loadFixture(teeFixture);
      await expect(
        tee.connect(operator).registerEnclave(node, enclave, IMAGE, "0x"),
      ).to.be.revertedWithCustomError(devVerifier!, "DevVerifierEmptyAttestation");
    });
  });

  describe("heartbeat", () => {
    it("renews the registration when sent by the enclave key, the operator or the signer", async () => {
      const { tee, operator, signer, node } = await loadFixture(teeFixture);
      const key = ethers.Wallet.createRandom().connect(ethers.provider);
      await operator.sendTransaction({ to: key.address, value: ethers.parseEther("1") });
      await tee.connect(operator).registerEnclave(node, key.address, IMAGE, DOC);
      for (const who of [key, operator, signer]) {
        await time.increase(DAY / 2n);
        const tx = tee.connect(who).heartbeat(key.address);
        await expect(tx)
          .to.emit(tee, "EnclaveHeartbeat")
          .withArgs(key.address, BigInt(await time.latest()) + 1n + DAY);
      }
      expect(await tee.isActiveEnclave(key.address)).to.be.true;
    });

    it("reverts with TeeUnknownEnclave and TeeNotNodeController", async () => {
      const { tee, stranger, enclave, enclave2, node } = await loadFixture(enclaveFixture);
      await expect(tee.connect(stranger).heartbeat(enclave2))
        .to.be.revertedWithCustomError(tee, "TeeUnknownEnclave")
        .withArgs(enclave2);
      await expect(tee.connect(stranger).heartbeat(enclave))
        .to.be.revertedWithCustomError(tee, "TeeNotNodeController")
        .withArgs(node, stranger.address);
    });

    it("reverts with TeeMeasurementNotApproved once the image is revoked", async () => {
      const { tee, governance, operator, enclave } = await loadFixture(enclaveFixture);
      await tee.connect(governance).revokeMeasurement(IMAGE, false);
      await expect(tee.connect(operator).heartbeat(enclave))
        .to.be.revertedWithCustomError(tee, "TeeMeasurementNotApproved")
        .withArgs(IMAGE);
    });
  });

  describe("renewEnclave", () => {
    it("renews the registration with a fresh attestation, from the key itself, the operator or the signer", async () => {
      const { tee, operator, signer, node } = await loadFixture(teeFixture);
      const key = ethers.Wallet.createRandom().connect(ethers.provider);
      await operator.sendTransaction({ to: key.address, value: ethers.parseEther("1") });
      await tee.connect(operator).registerEnclave(node, key.address, IMAGE, DOC);
      const { registeredAt } = await tee.getEnclave(key.address);
      for (const [i, who] of [key, operator, signer].entries()) {
        await time.increase(DAY / 2n);
        const fresh = ethers.toUtf8Bytes(`fresh document ${i}`);
        const tx = await tee.connect(who).renewEnclave(key.address, fresh);
        const renewedAt = BigInt((await ethers.provider.getBlock(tx.blockNumber!))!.timestamp);
        await expect(tx)
          .to.emit(tee, "EnclaveRegistered")
          .withArgs(key.address, node, IMAGE, ethers.keccak256(fresh), renewedAt + DAY);
        expect((await tee.getEnclave(key.address)).expiresAt).to.equal(renewedAt + DAY);
      }
      expect((await tee.getEnclave(key.address)).registeredAt).to.equal(registeredAt);
      expect(await tee.isActiveEnclave(key.address)).to.be.true;
    });

    it("brings back a registration that lapsed", async () => {
      const { tee, operator, enclave } = await loadFixture(enclaveFixture);
      await time.increase(2n * DAY);
      expect(await tee.isActiveEnclave(enclave)).to.be.false;
      await tee.connect(operator).renewEnclave(enclave, DOC);
      expect(await tee.isActiveEnclave(enclave)).to.be.true;
    });

    it("reverts with TeeUnknownEnclave, TeeNotNodeController and TeeEnclaveDeregistered", async () => {
      const { tee, stranger, operator, enclave, enclave2, node } =
        await loadFixture(enclaveFixture);
      await expect(tee.connect(operator).renewEnclave(enclave2, DOC))
        .to.be.revertedWithCustomError(tee, "TeeUnknownEnclave")
        .withArgs(enclave2);
      await expect(tee.connect(stranger).renewEnclave(enclave, DOC))
        .to.be.revertedWithCustomError(tee, "TeeNotNodeController")
        .withArgs(node, stranger.address);
      await tee.connect(operator).deregisterEnclave(enclave);
      const deregisteredAt = BigInt(await time.latest());
      await expect(tee.connect(operator).renewEnclave(enclave, DOC))
        .to.be.revertedWithCustomError(tee, "TeeEnclaveDeregistered")
        .withArgs(enclave, deregisteredAt);
    });

    it("reverts with TeeMeasurementNotApproved once the image is revoked", async () => {
      const { tee, governance, operator, enclave } = await loadFixture(enclaveFixture);
      await tee.connect(governance).revokeMeasurement(IMAGE, false);
      await expect(tee.connect(operator).renewEnclave(enclave, DOC))
        .to.be.revertedWithCustomError(tee, "TeeMeasurementNotApproved")
        .withArgs(IMAGE);
    });

    it("reverts with the verifier's error when it rejects the attestation", async () => {
      const { tee, devVerifier, operator, enclave } = await loadFixture(enclaveFixture);
      await expect(tee.connect(operator).renewEnclave(enclave, "0x")).to.be.revertedWithCustomError(
        devVerifier!,
        "DevVerifierEmptyAttestation",
      );
    });
  });

  describe("deregisterEnclave", () => {
    it("retires the key: inactive from now on, still bound to its node", async () => {
      const { tee, signer, node, enclave } = await loadFixture(enclaveFixture);
      const { registeredAt } = await tee.getEnclave(enclave);
      await expect(tee.connect(signer).deregisterEnclave(enclave))
        .to.emit(tee, "EnclaveDeregistered")
        .withArgs(enclave, node);
      const deregisteredAt = BigInt(await time.latest());
      expect(await tee.nodeOfEnclave(enclave)).to.equal(node);
      expect(await tee.isActiveEnclave(enclave)).to.be.false;
      expect(await tee.getEnclave(enclave)).to.deep.equal([
        node,
        0n,
        registeredAt,
        deregisteredAt,
        IMAGE,
      ]);
    });

    it("reverts with TeeEnclaveDeregistered for a later heartbeat, renewal or deregistration", async () => {
      const { tee, operator, enclave } = await loadFixture(enclaveFixture);
      await tee.connect(operator).deregisterEnclave(enclave);
      const deregisteredAt = BigInt(await time.latest());
      for (const call of [
        () => tee.connect(operator).heartbeat(enclave),
        () => tee.connect(operator).renewEnclave(enclave, DOC),
        () => tee.connect(operator).deregisterEnclave(enclave),
      ]) {
        await expect(call())
          .to.be.revertedWithCustomError(tee, "TeeEnclaveDeregistered")
          .withArgs(enclave, deregisteredAt);
      }
    });

    it("retires a key whose registration lapsed", async () => {
      const { tee, operator, node, enclave } = await loadFixture(enclaveFixture);
      await time.increase(2n * DAY);
      await expect(tee.connect(operator).deregisterEnclave(enclave))
        .to.emit(tee, "EnclaveDeregistered")
        .withArgs(enclave, node);
    });

    it("reverts with TeeUnknownEnclave and TeeNotNodeController", async () => {
      const { tee, stranger, operator, node, enclave, enclave2 } =
        await loadFixture(enclaveFixture);
      await expect(tee.connect(operator).deregisterEnclave(enclave2))
        .to.be.revertedWithCustomError(tee, "TeeUnknownEnclave")
        .withArgs(enclave2);
      await expect(tee.connect(stranger).deregisterEnclave(enclave))
        .to.be.revertedWithCustomError(tee, "TeeNotNodeController")
        .withArgs(node, stranger.address);
    });
  });

  describe("accountableNodeOf", () => {
    /** The enclave registered at `registeredAt`; `at(t)` is what the registry answers for a signature at t. */
    async function registeredEnclave() {
      const f = await enclaveFixture();
      const { registeredAt } = await f.tee.getEnclave(f.enclave);
      const at = (t: bigint) => f.tee.accountableNodeOf(f.enclave, t);
      return { ...f, registeredAt, at };
    }

    it("answers the node from the registration on, not before", async () => {
      const { node, registeredAt, at } = await loadFixture(registeredEnclave);
      expect(await at(registeredAt - 1n)).to.equal(ZERO);
      expect(await at(registeredAt)).to.equal(node);
      expect(await at(registeredAt + 1n)).to.equal(node);
      expect(await at(2n ** 64n)).to.equal(node);
    });

    it("answers zero for a key that never registered", async () => {
      const { tee, enclave2 } = await loadFixture(registeredEnclave);
      for (const t of [0n, BigInt(await time.latest())])
        expect(await tee.accountableNodeOf(enclave2, t)).to.equal(ZERO);
    });

    it("answers the node up to its deregistration, zero from then on", async () => {
      const { tee, operator, node, registeredAt, at, enclave } =
        await loadFixture(registeredEnclave);
      await time.increase(3_600n);
      await tee.connect(operator).deregisterEnclave(enclave);
      const deregisteredAt = BigInt(await time.latest());
      expect(await at(registeredAt)).to.equal(node);
      expect(await at(deregisteredAt - 1n)).to.equal(node);
      expect(await at(deregisteredAt)).to.equal(ZERO);
      expect(await at(deregisteredAt + 1n)).to.equal(ZERO);
    });

    it("answers the node up to the image's retirement, zero from then on", async () => {
      const { tee, governance, node, at } = await loadFixture(registeredEnclave);
      await time.increase(3_600n);
      await tee.connect(governance).revokeMeasurement(IMAGE, false);
      const revokedAt = BigInt(await time.latest());
      expect(await at(revokedAt - 1n)).to.equal(node);
      expect(await at(revokedAt)).to.equal(ZERO);
      expect(await at(revokedAt + 1n)).to.equal(ZERO);
    });

    it("keeps a retirement window void after the image is approved again", async () => {
      // Approved at t0 (the fixture), retired at t1, approved again at t2, retired again at t3: what the key
      // signed while the image was retired ([t1, t2) and from t3) answers to no node, whatever came after.
      const { tee, governance, node, registeredAt, at } = await loadFixture(registeredEnclave);
      await time.increase(3_600n);
      await tee.connect(governance).revokeMeasurement(IMAGE, false);
      const t1 = BigInt(await time.latest());
      await time.increase(3_600n);
      await tee.connect(governance).approveMeasurement(IMAGE, "v1 again");
      const t2 = BigInt(await time.latest());
      const expectWindows = async (end: bigint | null) => {
        expect(await at(registeredAt), "before the retirement").to.equal(node);
        expect(await at(t1 - 1n)).to.equal(node);
        expect(await at(t1), "retired").to.equal(ZERO);
        expect(await at(t2 - 1n), "still retired").to.equal(ZERO);
        expect(await at(t2), "approved again").to.equal(node);
        expect(await at(t2 + 1n)).to.equal(node);
        if (end !== null) {
          expect(await at(end - 1n)).to.equal(node);
          expect(await at(end), "retired again").to.equal(ZERO);
        }
      };
      await expectWindows(null);
      await time.increase(3_600n);
      await tee.connect(governance).revokeMeasurement(IMAGE, false);
      await expectWindows(BigInt(await time.latest()));
    });

    it("answers zero for every signing time once the image is revoked for cause", async () => {
      const { tee, governance, registeredAt, at } = await loadFixture(registeredEnclave);
      await time.increase(3_600n);
      await tee.connect(governance).revokeMeasurement(IMAGE, true);
      const revokedAt = BigInt(await time.latest());
      for (const t of [registeredAt, revokedAt - 1n, revokedAt, revokedAt + 1n])
        expect(await at(t)).to.equal(ZERO);
    });

    it("voids everything once a retired image is revoked for cause", async () => {
      const { tee, governance, registeredAt, at } = await loadFixture(registeredEnclave);
      await tee.connect(governance).revokeMeasurement(IMAGE, false);
      await tee.connect(governance).revokeMeasurement(IMAGE, true);
      expect(await at(registeredAt)).to.equal(ZERO);
    });

    it("keeps answering the node whatever happens later to the registration or the node", async () => {
      const { tee, staking, operator, stranger, node, registeredAt, at, enclave } =
        await loadFixture(registeredEnclave);
      // Lapsed registration (no heartbeat for longer than the lifetime).
      await time.increase(2n * DAY);
      expect(await tee.isActiveEnclave(enclave)).to.be.false;
      expect(await at(registeredAt)).to.equal(node);
      // The VERIFIER node jailed for missed heartbeats, then exited with its stake unbonding.
      await staking.connect(stranger).jailInactive(node);
      await staking.connect(operator).exit(node);
      expect(await at(registeredAt)).to.equal(node);
      expect(await at(BigInt(await time.latest()))).to.equal(node);
    });
  });

  describe("isActiveEnclave", () => {
    it("is false from the expiry until a heartbeat", async () => {
      const { tee, operator, enclave } = await loadFixture(enclaveFixture);
      const { expiresAt } = await tee.getEnclave(enclave);
      await time.increaseTo(expiresAt - 1n);
      expect(await tee.isActiveEnclave(enclave)).to.be.true;
      await time.increaseTo(expiresAt);
      expect(await tee.isActiveEnclave(enclave)).to.be.false;
      await time.increaseTo(expiresAt + 1n);
      expect(await tee.isActiveEnclave(enclave)).to.be.false;
      await tee.connect(operator).heartbeat(enclave);
      expect(await tee.isActiveEnclave(enclave)).to.be.true;
    });

    it("follows the node: jailed, below its minimum or exited means inactive", async () => {
      const { tee, staking, operator, slasher, node, enclave } = await loadFixture(enclaveFixture);
      await staking.connect(operator).unbond(node, 5_001n * OPG);
      expect(await tee.isActiveEnclave(enclave)).to.be.false;
      await staking.connect(operator).increaseStake(node, 100n * OPG); // room for the 1 bps slash below
      expect(await tee.isActiveEnclave(enclave)).to.be.true;
      await staking.connect(slasher).slash(node, 1n, ZERO, true, ethers.ZeroHash);
      expect(await tee.isActiveEnclave(enclave)).to.be.false;
      await time.increase(DAY);
      await staking.connect(operator).unjail(node);
      await tee.connect(operator).heartbeat(enclave); // a day passed: the registration expired
      expect(await tee.isActiveEnclave(enclave)).to.be.true;
      await staking.connect(operator).exit(node);
      expect(await tee.isActiveEnclave(enclave)).to.be.false;
    });

    it("is false for an unknown key", async () => {
      const { tee, enclave2 } = await loadFixture(enclaveFixture);
      expect(await tee.isActiveEnclave(enclave2)).to.be.false;
      expect(await tee.nodeOfEnclave(enclave2)).to.equal(ZERO);
    });
  });

  describe("measurementOf", () => {
    const pcrs = ["0x" + "01".repeat(48), "0x" + "02".repeat(48), "0x" + "03".repeat(48)];

    it("hashes PCR0 ‖ PCR1 ‖ PCR2 as the off-chain tools do", async () => {
      const { tee } = await loadFixture(deployed);
      expect(await tee.measurementOf(pcrs[0]!, pcrs[1]!, pcrs[2]!)).to.equal(
        measurementFromPcrs(pcrs),
      );
      expect(measurementFromPcrs(pcrs)).to.equal(ethers.keccak256(ethers.concat(pcrs)));
    });

    it("reverts with TeeInvalidPcrLength for a PCR that is not 48 bytes", async () => {
      const { tee } = await loadFixture(deployed);
      const short = "0x" + "01".repeat(32);
      await expect(tee.measurementOf(short, pcrs[1]!, pcrs[2]!))
        .to.be.revertedWithCustomError(tee, "TeeInvalidPcrLength")
        .withArgs(0n, 32n);
      await expect(tee.measurementOf(pcrs[0]!, short, pcrs[2]!))
        .to.be.revertedWithCustomError(tee, "TeeInvalidPcrLength")
        .withArgs(1n, 32n);
      await expect(tee.measurementOf(pcrs[0]!, pcrs[1]!, short))
        .to.be.revertedWithCustomError(tee, "TeeInvalidPcrLength")
        .withArgs(2n, 32n);
    });
  });
});
