import { readFileSync } from "node:fs";

import { expect } from "chai";

import {
  AttestationError,
  parseCoseSign1,
  readDocumentText,
  verifyAttestation,
} from "../../../offchain/tee/attestation.js";
import { AWS_NITRO_ROOT_G1_PEM } from "../../../offchain/tee/awsRoot.js";
import { encodeCbor, decodeCbor, CborTagged, type CborValue } from "../../../offchain/tee/cbor.js";
import { DevAttestor } from "../../../offchain/tee/devAttestation.js";
import {
  AWS_ROOT_PATH,
  INSIDE,
  NITRO_DOC_PATH,
  NITRO_NONCE,
  NITRO_PCRS,
  awsRoot,
  failingCheck,
  nitroDoc,
} from "./helpers.js";

describe("Nitro attestation verifier: the real AWS document", () => {
  const doc = nitroDoc();
  const roots = [awsRoot()];

  describe("when nothing is altered", () => {
    it("verifies against the AWS root with the clock inside the leaf's validity", () => {
      const v = verifyAttestation(doc, {
        roots,
        at: INSIDE,
        nonce: NITRO_NONCE,
        approvedPcrs: [NITRO_PCRS],
      });
      expect(v.document.moduleId).to.equal("i-0340e0cb833504eb6-enc019c12d31f78864d");
      expect(v.document.timestamp).to.equal(1770918962724);
      expect(v.document.digest).to.equal("SHA384");
      expect(v.document.pcrs.size).to.equal(16);
      expect(Buffer.from(v.document.publicKey ?? []).toString("utf8")).to.equal("dummy");
      expect(v.chain).to.have.length(5);
      expect(v.chain[0]).to.contain("CN=aws.nitro-enclaves");
      expect(v.ageMs).to.equal(INSIDE.getTime() - 1770918962724);
      expect(v.leaf.validFrom).to.equal("Feb 12 17:55:59 2026 GMT");
      expect(v.debug).to.equal(false); // a production enclave: measured PCRs, no allowDebug needed
    });

    it("ships the AWS root that the fixture holds (SHA-256 fingerprint 64:1A:03:21...)", () => {
      expect(AWS_NITRO_ROOT_G1_PEM).to.equal(readFileSync(AWS_ROOT_PATH, "utf8"));
      expect(
        verifyAttestation(doc, { roots: [AWS_NITRO_ROOT_G1_PEM], at: INSIDE }).chain,
      ).to.have.length(5);
    });

    it("accepts the document wrapped in COSE tag 18, and given as hex", () => {
      const tagged = Buffer.concat([Buffer.from([0xd2]), doc]);
      expect(verifyAttestation(tagged, { roots, at: INSIDE }).document.moduleId).to.contain(
        "i-0340e0cb833504eb6",
      );
      expect(readDocumentText(doc.toString("hex"))).to.deep.equal(doc);
      expect(Buffer.from(readDocumentText(readFileSync(NITRO_DOC_PATH))).equals(doc)).to.be.true;
    });
  });

  describe("when a byte is altered", () => {
    it("fails for every single-bit flip across the document (every 17th byte, two bit positions)", () => {
      let tried = 0;
      for (let i = 0; i < doc.length; i += 17) {
        for (const bit of [0x01, 0x80]) {
          const altered = Buffer.from(doc);
          altered[i] = (altered[i] as number) ^ bit;
          expect(
            () => verifyAttestation(altered, { roots, at: INSIDE }),
            `byte ${i} ^ ${bit}`,
          ).to.throw(AttestationError);
          tried++;
        }
      }
      expect(tried).to.be.greaterThan(500);
    });

    it("names the signature check when the signature is altered", () => {
      const altered = Buffer.from(doc);
      altered[altered.length - 1] = (altered[altered.length - 1] as number) ^ 1;
      expect(failingCheck(() => verifyAttestation(altered, { roots, at: INSIDE }))).to.equal(
        "signature",
      );
    });

    it("names the signature check when user_data inside the signed payload is altered", () => {
      const cose = parseCoseSign1(doc);
      const at = Buffer.from(cose.payload).indexOf(Buffer.from("1220b735", "hex"));
      const payload = Buffer.from(cose.payload);
      payload[at + 2] = (payload[at + 2] as number) ^ 1;
      const altered = encodeCbor([cose.protectedBytes, new Map(), payload, cose.signature]);
      expect(failingCheck(() => verifyAttestation(altered, { roots, at: INSIDE }))).to.equal(
        "signature",
      );
    });

    it("names the chain check when the leaf certificate is altered", () => {
      const cose = parseCoseSign1(doc);
      const payload = decodeCbor(cose.payload) as Map<CborValue, CborValue>;
      const leaf = Buffer.from(payload.get("certificate") as Uint8Array);
      leaf[leaf.length - 10] = (leaf[leaf.length - 10] as number) ^ 1; // inside the issuer's signature
      payload.set("certificate", leaf);
      const altered = encodeCbor([
        cose.protectedBytes,
        new Map(),
        encodeCbor(payload),
        cose.signature,
      ]);
      expect(failingCheck(() => verifyAttestation(altered, { roots, at: INSIDE }))).to.equal(
        "chain",
      );
    });

    it("names the cose check for a wrong algorithm, a wrong tag or a wrong shape", () => {
      const cose = parseCoseSign1(doc);
      const es256 = encodeCbor(new Map<CborValue, CborValue>([[1, -7]]));
      expect(
        failingCheck(() =>
          verifyAttestation(encodeCbor([es256, new Map(), cose.payload, cose.signature]), {
            roots,
            at: INSIDE,
          }),
        ),
      ).to.equal("cose");
      expect(
        failingCheck(() =>
          verifyAttestation(encodeCbor(new CborTagged(17, [cose.protectedBytes])), {
            roots,
            at: INSIDE,
          }),
        ),
      ).to.equal("cose");
      expect(
        failingCheck(() =>
          verifyAttestation(encodeCbor([cose.protectedBytes, new Map(), cose.payload]), {
            roots,
            at: INSIDE,
          }),
        ),
      ).to.equal("cose");
      expect(
        failingCheck(() =>
          verifyAttestation(
            encodeCbor([cose.protectedBytes, new Map(), cose.payload, cose.signature.subarray(1)]),
            { roots, at: INSIDE },
          ),
        ),
      ).to.equal("cose");
      expect(
        failingCheck(() => verifyAttestation(Buffer.from("not cbor"), { roots, at: INSIDE })),
      ).to.equal("cose");
    });

    it("names the payload check for missing or mistyped fields", () => {
      const cose = parseCoseSign1(doc);
      const edits: Array<(p: Map<CborValue, CborValue>) => void> = [
        (p) => p.delete("module_id"),
        (p) => p.set("digest", "SHA256"),
        (p) => p.set("timestamp", "now"),
        (p) => p.set("pcrs", new Map<CborValue, CborValue>([[0, new Uint8Array(5)]])),
        (p) => p.set("cabundle", []),
        (p) => p.set("nonce", "text"),
        (p) => p.set("user_data", new Uint8Array(1025)),
      ];
      for (const edit of edits) {
        const payload = decodeCbor(cose.payload) as Map<CborValue, CborValue>;
        edit(payload);
        const altered = encodeCbor([
          cose.protectedBytes,
          new Map(),
          encodeCbor(payload),
          cose.signature,
        ]);
        expect(failingCheck(() => verifyAttestation(altered, { roots, at: INSIDE }))).to.equal(
          "payload",
        );
      }
    });
  });

  describe("when the verifier's expectations differ", () => {
    it("names the root check for another root", () => {
      const dev = new DevAttestor();
      expect(
        failingCheck(() => verifyAttestation(doc, { roots: [dev.rootPem], at: INSIDE })),
      ).to.equal("root");
    });

    it("names the validity check after the leaf expires and before it starts", () => {
      expect(
        failingCheck(() =>
          verifyAttestation(doc, { roots, at: new Date("2026-02-12T20:56:03Z"), maxAgeMs: 1e10 }),
        ),
      ).to.equal("validity");
      expect(
        failingCheck(() => verifyAttestation(doc, { roots, at: new Date("2026-02-12T17:55:58Z") })),
      ).to.equal("validity");
      const err = (() => {
        try {
          verifyAttestation(doc, { roots, at: new Date("2026-02-12T20:56:03Z"), maxAgeMs: 1e10 });
        } catch (e) {
          return e as AttestationError;
        }
        return undefined;
      })();
      expect(err?.details).to.deep.include({ index: 4, validTo: "2026-02-12T20:56:02.000Z" });
    });

    it("accepts the edges of the leaf's validity window", () => {
      expect(
        verifyAttestation(doc, { roots, at: new Date("2026-02-12T17:56:02.724Z") }).ageMs,
      ).to.equal(0);
      expect(
        verifyAttestation(doc, {
          roots,
          at: new Date("2026-02-12T20:56:02Z"),
          maxAgeMs: 3 * 3600 * 1000,
        }).ageMs,
      ).to.be.greaterThan(0);
    });

    it("names the age check when the document is older than maxAge or from the future", () => {
      expect(
        failingCheck(() => verifyAttestation(doc, { roots, at: INSIDE, maxAgeMs: 60_000 })),
      ).to.equal("age");
      expect(
        failingCheck(() =>
          verifyAttestation(doc, { roots, at: new Date("2026-02-12T17:56:00Z"), maxSkewMs: 1000 }),
        ),
      ).to.equal("age");
    });

    it("names the nonce check for a wrong nonce", () => {
      const wrong = Buffer.from(NITRO_NONCE);
      wrong[0] = (wrong[0] as number) ^ 1;
      expect(
        failingCheck(() => verifyAttestation(doc, { roots, at: INSIDE, nonce: wrong })),
      ).to.equal("nonce");
    });

    it("names the pcrs check for an unapproved measurement", () => {
      const other = { ...NITRO_PCRS, 0: "00".repeat(48) };
      expect(
        failingCheck(() => verifyAttestation(doc, { roots, at: INSIDE, approvedPcrs: [other] })),
      ).to.equal("pcrs");
      expect(
        failingCheck(() => verifyAttestation(doc, { roots, at: INSIDE, approvedPcrs: [] })),
      ).to.equal("pcrs");
      expect(
        verifyAttestation(doc, { roots, at: INSIDE, approvedPcrs: [other, NITRO_PCRS] }).chain,
      ).to.have.length(5);
    });

    it("names the public_key and user_data checks", () => {
      expect(
        failingCheck(() =>
          verifyAttestation(doc, { roots, at: INSIDE, publicKey: Buffer.from("other") }),
        ),
      ).to.equal("public_key");
      expect(
        verifyAttestation(doc, { roots, at: INSIDE, publicKey: Buffer.from("dummy") }).ageMs,
      ).to.be.greaterThan(0);
      expect(
        failingCheck(() =>
          verifyAttestation(doc, { roots, at: INSIDE, userData: Buffer.alloc(4) }),
        ),
      ).to.equal("user_data");
    });

    it("says which check failed in the error message and details", () => {
      try {
        verifyAttestation(doc, { roots, at: INSIDE, nonce: Buffer.alloc(20) });
        expect.fail("expected failure");
      } catch (error) {
        expect(error).to.be.instanceOf(AttestationError);
        expect((error as AttestationError).message).to.equal(
          'attestation check "nonce" failed: nonce does not match the one requested',
        );
        expect((error as AttestationError).details).to.deep.include({
          check: "nonce",
          expected: "00".repeat(20),
        });
        expect((error as AttestationError).exitCode).to.equal(1);
      }
    });

    it("rejects a document that is neither CBOR, hex nor base64 text", () => {
      expect(failingCheck(() => readDocumentText("not a document!"))).to.equal("encoding");
    });
  });
});
