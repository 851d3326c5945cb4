import { X509Certificate, randomBytes } from "node:crypto";
import { mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";

import { InputError } from "../../../offchain/common/errors.js";
import {
  AttestationError,
  MAX_NSM_FIELD_BYTES,
  verifyAttestation,
} from "../../../offchain/tee/attestation.js";
import { decodeCbor, encodeCbor, type CborValue } from "../../../offchain/tee/cbor.js";
import { oid, time, uint } from "../../../offchain/tee/der.js";
import {
  DevAttestor,
  createDevRoot,
  devPcrs,
  loadOrCreateDevRoot,
} from "../../../offchain/tee/devAttestation.js";
import { parseCoseSign1 } from "../../../offchain/tee/attestation.js";
import { awsRoot, failingCheck, nitroDoc, INSIDE } from "./helpers.js";

describe("development attestation", () => {
  const attestor = new DevAttestor({ image: "test-image" });
  const nonce = Buffer.from("00112233445566778899", "hex");
  const userData = Buffer.from("requested data");
  const publicKey = Buffer.from("04".padEnd(130, "ab"), "hex");

  describe("DER certificate builder", () => {
    it("encodes DER primitives as X.690 says", () => {
      expect(oid("1.2.840.10045.4.3.3").toString("hex")).to.equal("06082a8648ce3d040303");
      expect(uint(Buffer.from([0x00, 0x80])).toString("hex")).to.equal("02020080");
      expect(uint(Buffer.from([0x00, 0x00, 0x01])).toString("hex")).to.equal("020101");
      expect(time(new Date("2026-02-12T17:55:59Z")).toString("ascii", 2)).to.equal("260212175559Z");
      expect(time(new Date("2050-01-01T00:00:00Z")).toString("hex").slice(0, 2)).to.equal("18");
    });

    it("builds a CA root that node:crypto parses and that verifies its own signature", () => {
      const root = attestor.root;
      expect(root.ca).to.be.true;
      expect(root.subject).to.contain("CN=opg-dev-nitro-root");
      expect(root.verify(root.publicKey)).to.be.true;
      expect(root.publicKey.asymmetricKeyDetails?.namedCurve).to.equal("secp384r1");
      expect(root.toString()).to.equal(attestor.rootPem);
    });

    it("builds a leaf that is not a CA and is signed by the root", () => {
      const payload = decodeCbor(parseCoseSign1(attestor.attest()).payload) as Map<
        CborValue,
        CborValue
      >;
      const leaf = new X509Certificate(Buffer.from(payload.get("certificate") as Uint8Array));
      expect(leaf.ca).to.be.false;
      expect(leaf.checkIssued(attestor.root)).to.be.true;
      expect(leaf.verify(attestor.root.publicKey)).to.be.true;
    });
  });

  describe("documents", () => {
    it("verify with the same verifier under the development root", () => {
      const doc = attestor.attest({ nonce, userData, publicKey });
      const v = verifyAttestation(doc, {
        roots: [attestor.rootPem],
        nonce,
        userData,
        publicKey,
        approvedPcrs: [attestor.measurement()],
      });
      expect(v.document.moduleId).to.equal(attestor.moduleId);
      expect(Buffer.from(v.document.userData ?? [])).to.deep.equal(userData);
      expect(Buffer.from(v.document.publicKey ?? [])).to.deep.equal(publicKey);
      expect(v.chain).to.have.length(2);
    });

    it("carry PCR0..2 derived from the image label, the rest zero", () => {
      expect(devPcrs("test-image").get(0)).to.deep.equal(attestor.pcrs.get(0));
      expect(Buffer.from(attestor.pcrs.get(5) ?? []).equals(Buffer.alloc(48))).to.be.true;
      const other = new DevAttestor({ image: "other-image" });
      const doc = other.attest();
      expect(
        failingCheck(() =>
          verifyAttestation(doc, {
            roots: [other.rootPem],
            approvedPcrs: [attestor.measurement()],
          }),
        ),
      ).to.equal("pcrs");
    });

    it("fail under the AWS root, and the AWS document fails under the development root", () => {
      expect(
        failingCheck(() => verifyAttestation(attestor.attest(), { roots: [awsRoot()] })),
      ).to.equal("root");
      expect(
        failingCheck(() =>
          verifyAttestation(nitroDoc(), { roots: [attestor.rootPem], at: INSIDE }),
        ),
      ).to.equal("root");
    });

    it("fail under another development root", () => {
      expect(
        failingCheck(() =>
          verifyAttestation(attestor.attest(), { roots: [new DevAttestor().rootPem] }),
        ),
      ).to.equal("root");
    });

    it("fail the nonce, user_data and public_key checks when those differ", () => {
      const doc = attestor.attest({ nonce, userData, publicKey });
      const roots = [attestor.rootPem];
      expect(
        failingCheck(() => verifyAttestation(doc, { roots, nonce: Buffer.alloc(10) })),
      ).to.equal("nonce");
      expect(failingCheck(() => verifyAttestation(attestor.attest(), { roots, nonce }))).to.equal(
        "nonce",
      );
      expect(
        failingCheck(() => verifyAttestation(doc, { roots, userData: Buffer.from("other") })),
      ).to.equal("user_data");
      expect(
        failingCheck(() => verifyAttestation(doc, { roots, publicKey: Buffer.alloc(65) })),
      ).to.equal("public_key");
    });

    it("fail the signature check when the payload is altered", () => {
      const cose = parseCoseSign1(attestor.attest({ userData }));
      const payload = decodeCbor(cose.payload) as Map<CborValue, CborValue>;
      payload.set("user_data", Buffer.from("forged data"));
      const forged = encodeCbor([
        cose.protectedBytes,
        new Map(),
        encodeCbor(payload),
        cose.signature,
      ]);
      expect(failingCheck(() => verifyAttestation(forged, { roots: [attestor.rootPem] }))).to.equal(
        "signature",
      );
    });

    it("fail the validity check once the leaf has expired, and the age check before that", () => {
      let now = new Date("2030-01-01T00:00:00Z");
      const pinned = new DevAttestor({ now: () => now, leafValidityMs: 60 * 60 * 1000 });
      const doc = pinned.attest();
      const roots = [pinned.rootPem];
      now = new Date("2030-01-01T00:05:00Z");
      expect(verifyAttestation(doc, { roots, at: now }).ageMs).to.equal(5 * 60 * 1000);
      expect(
        failingCheck(() => verifyAttestation(doc, { roots, at: new Date("2030-01-01T00:30:00Z") })),
      ).to.equal("age");
      expect(
        failingCheck(() =>
          verifyAttestation(doc, { roots, at: new Date("2030-01-01T02:00:00Z"), maxAgeMs: 1e9 }),
        ),
      ).to.equal("validity");
    });

    it("refuse oversized nonce, user_data and public_key", () => {
      expect(() => attestor.attest({ nonce: new Uint8Array(1025) })).to.throw(
        InputError,
        "nonce is 1025 bytes; at most 1024",
      );
      expect(() => attestor.attest({ userData: new Uint8Array(1025) })).to.throw(
        InputError,
        "user_data",
      );
      expect(() => attestor.attest({ publicKey: new Uint8Array(1025) })).to.throw(
        InputError,
        "public_key",
      );
    });
  });
  describe("field sizes (the NSM API's CDDL: up to 1,024 bytes)", () => {
    // Genuine AWS documents found in public repositories carry 746 bytes of user_data.
    for (const size of [746, MAX_NSM_FIELD_BYTES]) {
      it(`verify a document with ${size} bytes of user_data, nonce and public_key`, () => {
        const big = {
          userData: randomBytes(size),
          nonce: randomBytes(size),
          publicKey: randomBytes(size),
        };
        const v = verifyAttestation(attestor.attest(big), {
          roots: [attestor.rootPem],
          ...big,
          approvedPcrs: [attestor.measurement()],
        });
        expect(v.document.userData).to.have.length(size);
        expect(v.document.nonce).to.have.length(size);
        expect(v.document.publicKey).to.have.length(size);
      });
    }

    for (const field of ["user_data", "nonce", "public_key"]) {
      it(`refuse a document with 1,025 bytes of ${field}, naming the field and the sizes`, () => {
        // The attestor will not issue one, so the field is replaced in a genuine document: the
        // payload check refuses it before the signature is looked at.
        const cose = parseCoseSign1(attestor.attest({ userData }));
        const payload = decodeCbor(cose.payload) as Map<CborValue, CborValue>;
        payload.set(field, new Uint8Array(MAX_NSM_FIELD_BYTES + 1));
        const oversized = encodeCbor([
          cose.protectedBytes,
          new Map(),
          encodeCbor(payload),
          cose.signature,
        ]);
        const error = (() => {
          try {
            verifyAttestation(oversized, { roots: [attestor.rootPem] });
          } catch (e) {
            return e;
          }
          return expect.fail("expected an AttestationError");
        })();
        expect(error).to.be.instanceOf(AttestationError);
        expect((error as AttestationError).message).to.equal(
          `attestation check "payload" failed: ${field} is 1025 bytes; at most 1024 allowed`,
        );
        expect((error as AttestationError).details).to.deep.equal({
          check: "payload",
          field,
          length: 1025,
          max: 1024,
        });
      });
    }
  });

  describe("a development root kept in a file (--dev-root)", () => {
    it("is created once (mode 0600) and reused: documents of a restarted enclave verify under it", async () => {
      const file = path.join(await mkdtemp(path.join(tmpdir(), "opg-devroot-")), "root.pem");
      const first = new DevAttestor({ root: await loadOrCreateDevRoot(file) });
      expect((await stat(file)).mode & 0o777).to.equal(0o600);
      const restarted = new DevAttestor({ root: await loadOrCreateDevRoot(file) });
      expect(restarted.rootPem).to.equal(first.rootPem);
      const doc = restarted.attest({ nonce });
      expect(verifyAttestation(doc, { roots: [first.rootPem], nonce }).chain).to.have.length(2);
      // Without the file each start has its own root, which the first one's relayer refuses.
      expect(
        failingCheck(() =>
          verifyAttestation(new DevAttestor().attest(), { roots: [first.rootPem] }),
        ),
      ).to.equal("root");
    });

    it("refuses a file that is not a root, or whose key is not the certificate's", async () => {
      const dir = await mkdtemp(path.join(tmpdir(), "opg-devroot-"));
      const junk = path.join(dir, "junk.pem");
      await writeFile(junk, "not a pem");
      const notRoot = await loadOrCreateDevRoot(junk).catch((e: unknown) => e);
      expect(notRoot).to.be.instanceOf(InputError);
      expect((notRoot as Error).message).to.contain("is not a development root");
      const a = path.join(dir, "a.pem");
      await loadOrCreateDevRoot(a);
      const other = createDevRoot();
      const mixed = path.join(dir, "mixed.pem");
      const keyPem = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n/.exec(
        await readFile(a, "utf8"),
      )![0];
      await writeFile(mixed, keyPem + other.certificate.toString());
      const mismatch = await loadOrCreateDevRoot(mixed).catch((e: unknown) => e);
      expect(mismatch).to.be.instanceOf(InputError);
      expect((mismatch as Error).message).to.contain("the key does not match the certificate");
    });
  });

  describe("debug mode (every PCR zero)", () => {
    const debugAttestor = new DevAttestor({ debug: true });
    const roots = [debugAttestor.rootPem];

    it("issues documents with every PCR zero", () => {
      for (const pcr of debugAttestor.pcrs.values()) expect(pcr.every((b) => b === 0)).to.be.true;
    });

    it("is refused by default, saying why", () => {
      const doc = debugAttestor.attest({ nonce });
      expect(failingCheck(() => verifyAttestation(doc, { roots, nonce }))).to.equal("debug");
      expect(() => verifyAttestation(doc, { roots, nonce, allowDebug: false })).to.throw(
        AttestationError,
        'attestation check "debug" failed: debug-mode enclave: PCRs are all zero; its memory can be read by the host',
      );
    });

    it("is accepted with allowDebug, and reported as debug", () => {
      const v = verifyAttestation(debugAttestor.attest({ nonce }), {
        roots,
        nonce,
        allowDebug: true,
      });
      expect(v.debug).to.equal(true);
      expect(v.document.moduleId).to.equal(debugAttestor.moduleId);
    });

    it("does not touch a document with measured PCRs", () => {
      expect(verifyAttestation(attestor.attest(), { roots: [attestor.rootPem] }).debug).to.equal(
        false,
      );
    });
  });
});
