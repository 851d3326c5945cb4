import { expect } from "chai";
import type { Signer } from "ethers";
import { network } from "hardhat";

import {
  attestationDigest,
  encodeQuorumAttestation,
  quorumDomain,
  signAttestation,
} from "../../../offchain/staking/attestation.js";
import type { AttestationStatement } from "../../../offchain/staking/attestation.js";
import { deployStakingAndTee } from "../../../offchain/staking/deploy.js";
import { OPG, SUPPLY, VERIFIER } from "../staking/fixtures.js";

const { ethers, networkHelpers } = await network.create();
const loadFixture = networkHelpers.loadFixture.bind(networkHelpers);
const time = networkHelpers.time;
const ZERO = ethers.ZeroAddress;
const HOUR = 3_600n;
const IMAGE = ethers.id("image v1");
const DOC = ethers.toUtf8Bytes("nitro attestation document");

async function quorumFixture() {
  const [deployer, governance, operator, signer, a1, a2, a3, outsider] = await ethers.getSigners();
  const token = await ethers.deployContract("OPGToken", [deployer!.address, SUPPLY]);
  const contracts = await deployStakingAndTee(ethers, {
    token: await token.getAddress(),
    governance: governance!.address,
    quorum: { attesters: [a1!.address, a2!.address, a3!.address], threshold: 2 },
  });
  const verifier = contracts.quorumVerifier!;
  const { chainId } = await ethers.provider.getNetwork();
  const domain = quorumDomain(chainId, await verifier.getAddress());
  const node = ethers.Wallet.createRandom().address;
  await token.transfer(operator!.address, 100_000n * OPG);
  await token.connect(operator).approve(await contracts.staking.getAddress(), ethers.MaxUint256);
  await contracts.staking
    .connect(operator)
    .register(node, VERIFIER, signer!.address, 30_000n * OPG, "");
  await contracts.tee.connect(governance).approveMeasurement(IMAGE, "v1");
  return {
    ...contracts,
    verifier,
    domain,
    node,
    governance: governance!,
    operator: operator!,
    attesters: [a1!, a2!, a3!],
    outsider: outsider!,
  };
}

type F = Awaited<ReturnType<typeof quorumFixture>>;

async function statementFor(
  f: F,
  overrides: Partial<AttestationStatement> = {},
): Promise<AttestationStatement> {
  return {
    node: f.node,
    enclaveKey: ethers.getAddress("0x" + "e1".repeat(20)),
    measurement: IMAGE,
    documentHash: ethers.keccak256(DOC),
    issuedAt: BigInt(await time.latest()),
    ...overrides,
  };
}

async function signedBy(
  f: F,
  statement: AttestationStatement,
  signers: Signer[],
): Promise<string[]> {
  return Promise.all(signers.map((s) => signAttestation(s, f.domain, statement)));
}

function sortedBySigner(signers: Signer[] & { address: string }[]) {
  return [...signers].sort((a, b) => (BigInt(a.address) < BigInt(b.address) ? -1 : 1));
}

const coder = ethers.AbiCoder.defaultAbiCoder();
const raw = (s: AttestationStatement, signatures: string[]) =>
  coder.encode(["bytes32", "uint64", "bytes[]"], [s.documentHash, s.issuedAt, signatures]);

describe("QuorumAttestationVerifier", () => {
  describe("constructor", () => {
    it("sets the attesters, threshold, maximum age and governance", async () => {
      const { verifier, attesters, governance } = await loadFixture(quorumFixture);
      expect(await verifier.attesters()).to.deep.equal(attesters.map((a) => a.address));
      expect(await verifier.threshold()).to.equal(2n);
      expect(await verifier.maxAge()).to.equal(HOUR);
      for (const a of attesters) expect(await verifier.isAttester(a.address)).to.be.true;
      expect(await verifier.hasRole(await verifier.GOVERNANCE_ROLE(), governance.address)).to.be
        .true;
    });

    it("reverts with QuorumZeroAddress, QuorumAlreadyAttester, QuorumInvalidThreshold and QuorumInvalidMaxAge", async () => {
      const [admin, a1, a2] = await ethers.getSigners();
      const factory = await ethers.getContractFactory("QuorumAttestationVerifier");
      const two = [a1!.address, a2!.address];
      await expect(factory.deploy(ZERO, two, 1n, HOUR)).to.be.revertedWithCustomError(
        factory,
        "QuorumZeroAddress",
      );
      await expect(factory.deploy(admin!.address, [ZERO], 1n, HOUR)).to.be.revertedWithCustomError(
        factory,
        "QuorumZeroAddress",
      );
      await expect(factory.deploy(admin!.address, [a1!.address, a1!.address], 1n, HOUR))
        .to.be.revertedWithCustomError(factory, "QuorumAlreadyAttester")
        .withArgs(a1!.address);
      for (const t of [0n, 3n]) {
        await expect(factory.deploy(admin!.address, two, t, HOUR))
          .to.be.revertedWithCustomError(factory, "QuorumInvalidThreshold")
          .withArgs(t, 2n);
      }
      for (const age of [0n, 7n * 24n * HOUR + 1n]) {
        await expect(factory.deploy(admin!.address, two, 1n, age))
          .to.be.revertedWithCustomError(factory, "QuorumInvalidMaxAge")
          .withArgs(age);
      }
    });
  });

  describe("verifyAttestation", () => {
    it("accepts threshold signatures, returns the document hash, and the digest matches the off-chain one", async () => {
      const f = await loadFixture(quorumFixture);
      const s = await statementFor(f);
      expect(
        await f.verifier.attestationDigest(
          s.node,
          s.enclaveKey,
          s.measurement,
          s.documentHash,
          s.issuedAt,
        ),
      ).to.equal(attestationDigest(f.domain, s));
      const attestation = encodeQuorumAttestation(
        f.domain,
        s,
        await signedBy(f, s, f.attesters.slice(0, 2)),
      );
      expect(
        await f.verifier.verifyAttestation(s.node, s.enclaveKey, s.measurement, attestation),
      ).to.equal(s.documentHash);
    });

    it("registers an enclave through TeeRegistry", async () => {
      const f = await loadFixture(quorumFixture);
      const s = await statementFor(f);
      const attestation = encodeQuorumAttestation(f.domain, s, await signedBy(f, s, f.attesters));
      await expect(
        f.tee.connect(f.operator).registerEnclave(f.node, s.enclaveKey, IMAGE, attestation),
      )
        .to.emit(f.tee, "EnclaveRegistered")
        .withArgs(
          s.enclaveKey,
          f.node,
          IMAGE,
          s.documentHash,
          BigInt(await time.latest()) + 1n + 86_400n,
        );
      expect(await f.tee.isActiveEnclave(s.enclaveKey)).to.be.true;
    });

    it("reverts with QuorumBelowThreshold for too few signatures", async () => {
      const f = await loadFixture(quorumFixture);
      const s = await statementFor(f);
      const attestation = encodeQuorumAttestation(
        f.domain,
        s,
        await signedBy(f, s, [f.attesters[0]!]),
      );
      await expect(f.verifier.verifyAttestation(s.node, s.enclaveKey, s.measurement, attestation))
        .to.be.revertedWithCustomError(f.verifier, "QuorumBelowThreshold")
        .withArgs(1n, 2n);
    });

    it("reverts with QuorumSignersNotSorted for out-of-order or repeated signers", async () => {
      const f = await loadFixture(quorumFixture);
      const s = await statementFor(f);
      const [lo, hi] = sortedBySigner(f.attesters.slice(0, 2));
      const [sigLo, sigHi] = await signedBy(f, s, [lo!, hi!]);
      await expect(
        f.verifier.verifyAttestation(s.node, s.enclaveKey, s.measurement, raw(s, [sigHi!, sigLo!])),
      )
        .to.be.revertedWithCustomError(f.verifier, "QuorumSignersNotSorted")
        .withArgs(1n, lo!.address);
      await expect(
        f.verifier.verifyAttestation(s.node, s.enclaveKey, s.measurement, raw(s, [sigLo!, sigLo!])),
      )
        .to.be.revertedWithCustomError(f.verifier, "QuorumSignersNotSorted")
        .withArgs(1n, lo!.address);
    });

    it("reverts with QuorumNotAttester for an outsider's signature", async () => {
      const f = await loadFixture(quorumFixture);
      const s = await statementFor(f);
      const attestation = encodeQuorumAttestation(f.domain, s, await signedBy(f, s, [f.outsider]));
      await expect(f.verifier.verifyAttestation(s.node, s.enclaveKey, s.measurement, attestation))
        .to.be.revertedWithCustomError(f.verifier, "QuorumNotAttester")
        .withArgs(0n, f.outsider.address);
    });

    it("binds the node, the key and the image: signatures for another node do not count", async () => {
      const f = await loadFixture(quorumFixture);
      const s = await statementFor(f);
      const attestation = encodeQuorumAttestation(
        f.domain,
        s,
        await signedBy(f, s, f.attesters.slice(0, 2)),
      );
      const other = ethers.Wallet.createRandom().address;
      await expect(
        f.verifier.verifyAttestation(other, s.enclaveKey, s.measurement, attestation),
      ).to.be.revertedWithCustomError(f.verifier, "QuorumNotAttester");
      await expect(
        f.verifier.verifyAttestation(s.node, other, s.measurement, attestation),
      ).to.be.revertedWithCustomError(f.verifier, "QuorumNotAttester");
      await expect(
        f.verifier.verifyAttestation(s.node, s.enclaveKey, ethers.id("x"), attestation),
      ).to.be.revertedWithCustomError(f.verifier, "QuorumNotAttester");
    });

    it("reverts with QuorumInvalidSignature for a malformed signature", async () => {
      const f = await loadFixture(quorumFixture);
      const s = await statementFor(f);
      await expect(
        f.verifier.verifyAttestation(s.node, s.enclaveKey, s.measurement, raw(s, ["0x1234"])),
      )
        .to.be.revertedWithCustomError(f.verifier, "QuorumInvalidSignature")
        .withArgs(0n);
    });

    it("accepts a statement one second younger than the maximum age", async () => {
      const f = await loadFixture(quorumFixture);
      const s = await statementFor(f);
      const attestation = encodeQuorumAttestation(
        f.domain,
        s,
        await signedBy(f, s, f.attesters.slice(0, 2)),
      );
      await time.increaseTo(s.issuedAt + HOUR - 1n);
      expect(
        await f.verifier.verifyAttestation(s.node, s.enclaveKey, s.measurement, attestation),
      ).to.equal(s.documentHash);
    });

    it("accepts a statement issued one second before or exactly at the block, not one after", async () => {
      const f = await loadFixture(quorumFixture);
      const now = BigInt(await time.latest());
      for (const issuedAt of [now - 1n, now, now + 1n]) {
        const s = await statementFor(f, { issuedAt });
        const attestation = encodeQuorumAttestation(
          f.domain,
          s,
          await signedBy(f, s, f.attesters.slice(0, 2)),
        );
        const call = f.verifier.verifyAttestation(s.node, s.enclaveKey, s.measurement, attestation);
        if (issuedAt <= now) expect(await call, `issuedAt ${issuedAt}`).to.equal(s.documentHash);
        else
          await expect(call)
            .to.be.revertedWithCustomError(f.verifier, "QuorumAttestationFromFuture")
            .withArgs(now + 1n, now);
      }
    });

    it("reverts with QuorumAttestationStale past the maximum age", async () => {
      const f = await loadFixture(quorumFixture);
      const s = await statementFor(f);
      const attestation = encodeQuorumAttestation(
        f.domain,
        s,
        await signedBy(f, s, f.attesters.slice(0, 2)),
      );
      await time.increaseTo(s.issuedAt + HOUR);
      expect(
        await f.verifier.verifyAttestation(s.node, s.enclaveKey, s.measurement, attestation),
      ).to.equal(s.documentHash);
      await time.increaseTo(s.issuedAt + HOUR + 1n);
      await expect(f.verifier.verifyAttestation(s.node, s.enclaveKey, s.measurement, attestation))
        .to.be.revertedWithCustomError(f.verifier, "QuorumAttestationStale")
        .withArgs(s.issuedAt, HOUR);
    });

    it("reverts with QuorumAttestationFromFuture for a statement issued after the block", async () => {
      const f = await loadFixture(quorumFixture);
      const now = BigInt(await time.latest());
      const s = await statementFor(f, { issuedAt: now + 100n });
      const attestation = encodeQuorumAttestation(
        f.domain,
        s,
        await signedBy(f, s, f.attesters.slice(0, 2)),
      );
      await expect(f.verifier.verifyAttestation(s.node, s.enclaveKey, s.measurement, attestation))
        .to.be.revertedWithCustomError(f.verifier, "QuorumAttestationFromFuture")
        .withArgs(now + 100n, now);
    });
  });

  describe("governance", () => {
    it("adds and removes attesters", async () => {
      const { verifier, governance, outsider, attesters } = await loadFixture(quorumFixture);
      await expect(verifier.connect(governance).addAttester(outsider.address))
        .to.emit(verifier, "AttesterAdded")
        .withArgs(outsider.address);
      await expect(verifier.connect(governance).removeAttester(attesters[0]!.address))
        .to.emit(verifier, "AttesterRemoved")
        .withArgs(attesters[0]!.address);
      expect(await verifier.isAttester(attesters[0]!.address)).to.be.false;
      expect(await verifier.isAttester(outsider.address)).to.be.true;
    });

    it("reverts with QuorumAlreadyAttester, QuorumZeroAddress and QuorumUnknownAttester", async () => {
      const { verifier, governance, outsider, attesters } = await loadFixture(quorumFixture);
      await expect(verifier.connect(governance).addAttester(attesters[0]!.address))
        .to.be.revertedWithCustomError(verifier, "QuorumAlreadyAttester")
        .withArgs(attesters[0]!.address);
      await expect(verifier.connect(governance).addAttester(ZERO)).to.be.revertedWithCustomError(
        verifier,
        "QuorumZeroAddress",
      );
      await expect(verifier.connect(governance).removeAttester(outsider.address))
        .to.be.revertedWithCustomError(verifier, "QuorumUnknownAttester")
        .withArgs(outsider.address);
    });

    it("reverts with QuorumInvalidThreshold when a removal would leave the threshold unreachable", async () => {
      const { verifier, governance, attesters } = await loadFixture(quorumFixture);
      await verifier.connect(governance).setThreshold(3n);
      await expect(verifier.connect(governance).removeAttester(attesters[0]!.address))
        .to.be.revertedWithCustomError(verifier, "QuorumInvalidThreshold")
        .withArgs(3n, 2n);
    });

    it("sets the threshold and the maximum age, within bounds", async () => {
      const { verifier, governance } = await loadFixture(quorumFixture);
      await expect(verifier.connect(governance).setThreshold(3n))
        .to.emit(verifier, "ThresholdSet")
        .withArgs(3n);
      expect(await verifier.threshold()).to.equal(3n);
      await expect(verifier.connect(governance).setThreshold(4n))
        .to.be.revertedWithCustomError(verifier, "QuorumInvalidThreshold")
        .withArgs(4n, 3n);
      await expect(verifier.connect(governance).setMaxAge(60n))
        .to.emit(verifier, "MaxAgeSet")
        .withArgs(60n);
      expect(await verifier.maxAge()).to.equal(60n);
      await expect(verifier.connect(governance).setMaxAge(0n))
        .to.be.revertedWithCustomError(verifier, "QuorumInvalidMaxAge")
        .withArgs(0n);
    });
  });

  describe("encodeQuorumAttestation (off chain)", () => {
    it("refuses two signatures from one attester", async () => {
      const f = await loadFixture(quorumFixture);
      const s = await statementFor(f);
      const [sig] = await signedBy(f, s, [f.attesters[0]!]);
      expect(() => encodeQuorumAttestation(f.domain, s, [sig!, sig!])).to.throw(
        "two signatures come from the same attester",
      );
    });
  });
});

describe("DevAttestationVerifier", () => {
  it("returns the hash of any non-empty attestation", async () => {
    const verifier = await ethers.deployContract("DevAttestationVerifier");
    expect(await verifier.verifyAttestation(ZERO, ZERO, ethers.ZeroHash, DOC)).to.equal(
      ethers.keccak256(DOC),
    );
  });

  it("reverts with DevVerifierEmptyAttestation for an empty attestation", async () => {
    const verifier = await ethers.deployContract("DevAttestationVerifier");
    await expect(
      verifier.verifyAttestation(ZERO, ZERO, ethers.ZeroHash, "0x"),
    ).to.be.revertedWithCustomError(verifier, "DevVerifierEmptyAttestation");
  });

  it("deploys on chain 1337 and reverts with DevVerifierNotLocalChain elsewhere", async () => {
    for (const [chainId, ok] of [
      [1337, true],
      [11155111, false],
    ] as const) {
      const conn = await network.create({ override: { chainId } });
      const factory = await conn.ethers.getContractFactory("DevAttestationVerifier");
      if (ok) await expect(factory.deploy()).not.to.revert(conn.ethers);
      else
        await expect(factory.deploy())
          .to.be.revertedWithCustomError(factory, "DevVerifierNotLocalChain")
          .withArgs(BigInt(chainId));
    }
  });
});
