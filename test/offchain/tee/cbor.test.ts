import { expect } from "chai";

import {
  CborError,
  CborTagged,
  decodeCbor,
  encodeCbor,
  type CborValue,
} from "../../../offchain/tee/cbor.js";
import { parseCoseSign1, sigStructure } from "../../../offchain/tee/attestation.js";
import { nitroDoc } from "./helpers.js";

const hex = (s: string): Buffer => Buffer.from(s, "hex");

describe("CBOR", () => {
  // RFC 8949 Appendix A.
  const vectors: Array<[CborValue, string]> = [
    [0, "00"],
    [23, "17"],
    [24, "1818"],
    [100, "1864"],
    [1000, "1903e8"],
    [1000000, "1a000f4240"],
    [1000000000000, "1b000000e8d4a51000"],
    [18446744073709551615n, "1bffffffffffffffff"],
    [-1, "20"],
    [-100, "3863"],
    [-1000, "3903e7"],
    [new Uint8Array([1, 2, 3, 4]), "4401020304"],
    ["", "60"],
    ["IETF", "6449455446"],
    ["\u00fc", "62c3bc"],
    [[], "80"],
    [[1, [2, 3], [4, 5]], "8301820203820405"],
    [
      new Map<CborValue, CborValue>([
        [1, 2],
        [3, 4],
      ]),
      "a201020304",
    ],
    [
      new Map<CborValue, CborValue>([
        ["a", 1],
        ["b", [2, 3]],
      ]),
      "a26161016162820203",
    ],
    [new CborTagged(18, []), "d280"],
    [null, "f6"],
    [true, "f5"],
    [false, "f4"],
  ];

  describe("encodeCbor", () => {
    for (const [value, expected] of vectors) {
      it(`encodes ${expected}`, () => expect(encodeCbor(value).toString("hex")).to.equal(expected));
    }
    it("writes a Node Buffer as a plain byte string, never a typed-array tag", () => {
      expect(encodeCbor(Buffer.from([0xaa, 0xbb])).toString("hex")).to.equal("42aabb");
    });
    it("refuses a non-integer number", () =>
      expect(() => encodeCbor(1.5)).to.throw(CborError, "not an integer"));
  });

  describe("decodeCbor", () => {
    for (const [value, encoded] of vectors) {
      it(`decodes ${encoded}`, () => expect(decodeCbor(hex(encoded))).to.deep.equal(value));
    }
    it("decodes indefinite-length arrays and maps", () => {
      expect(decodeCbor(hex("9f018202039f0405ffff"))).to.deep.equal([1, [2, 3], [4, 5]]);
      expect(decodeCbor(hex("bf6161016162820203ff"))).to.deep.equal(
        new Map<CborValue, CborValue>([
          ["a", 1],
          ["b", [2, 3]],
        ]),
      );
    });
    it("rejects truncated input", () =>
      expect(() => decodeCbor(hex("44010203"))).to.throw(CborError, "runs past the end"));
    it("rejects trailing bytes", () =>
      expect(() => decodeCbor(hex("0000"))).to.throw(CborError, "1 trailing bytes"));
    it("rejects duplicate map keys", () =>
      expect(() => decodeCbor(hex("a201020103"))).to.throw(CborError, "duplicate map key 1"));
    it("rejects indefinite-length strings", () =>
      expect(() => decodeCbor(hex("5f4101ff"))).to.throw(CborError, "indefinite"));
    it("rejects floats", () =>
      expect(() => decodeCbor(hex("f93c00"))).to.throw(CborError, "unsupported"));
    it("rejects invalid UTF-8 text", () =>
      expect(() => decodeCbor(hex("61ff"))).to.throw(TypeError));
    it("rejects an unterminated indefinite map", () =>
      expect(() => decodeCbor(hex("bf6161"))).to.throw(CborError, "truncated"));
  });

  describe("COSE Sig_structure", () => {
    it("is encoded byte for byte as RFC 8152 says, for the real Nitro document", () => {
      const cose = parseCoseSign1(nitroDoc());
      const payloadLen = cose.payload.length;
      const expected = Buffer.concat([
        hex("84"), // array(4)
        hex("6a"),
        Buffer.from("Signature1"), // text(10)
        hex("44"),
        hex("a1013822"), // bstr(4) protected header {1: -35}
        hex("40"), // bstr(0) external_aad
        hex("59"),
        Buffer.from([payloadLen >> 8, payloadLen & 0xff]),
        cose.payload, // bstr(len) payload
      ]);
      expect(sigStructure(cose.protectedBytes, cose.payload).equals(expected)).to.be.true;
    });
  });
});
