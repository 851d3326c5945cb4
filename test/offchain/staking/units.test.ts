import { mkdtemp, mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";

import { InputError } from "../../../offchain/common/errors.js";
import { readAddresses, requireAddress } from "../../../offchain/staking/addresses.js";
import {
  formatOpg,
  measurementFromPcrs,
  parseAddress,
  parseBytes32,
  parseOpg,
  parseRole,
  roleName,
} from "../../../offchain/staking/units.js";

function inputError(fn: () => unknown, message: RegExp): InputError {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(InputError);
    expect((error as InputError).message).to.match(message);
    expect((error as InputError).exitCode).to.equal(2);
    return error as InputError;
  }
  throw new Error("expected an InputError");
}

describe("offchain/staking units", () => {
  describe("parseRole", () => {
    it("accepts inference/gpu and verifier/tee in any case", () => {
      expect(parseRole("inference")).to.equal(1);
      expect(parseRole("GPU")).to.equal(1);
      expect(parseRole(" Verifier ")).to.equal(2);
      expect(parseRole("tee")).to.equal(2);
      expect(roleName(1)).to.equal("INFERENCE");
      expect(roleName(2n)).to.equal("VERIFIER");
      expect(roleName(0)).to.equal("NONE");
    });

    it("rejects anything else, saying which roles exist", () => {
      const error = inputError(() => parseRole("miner"), /unknown node role "miner"/);
      expect(error.hint).to.contain("--role inference");
    });
  });

  describe("parseAddress", () => {
    it("checksums a valid address", () => {
      expect(parseAddress("0x" + "ab".repeat(20), "node")).to.equal(
        "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB",
      );
    });

    it("rejects a malformed or zero address, naming the option", () => {
      expect(
        inputError(() => parseAddress("0x123", "node"), /node is not an address/).details,
      ).to.deep.equal({
        node: "0x123",
      });
      inputError(
        () => parseAddress("0x" + "00".repeat(20), "signer"),
        /signer is the zero address/,
      );
    });
  });

  describe("parseOpg and formatOpg", () => {
    it("converts whole and fractional OPG to wei and back", () => {
      expect(parseOpg("25000")).to.equal(25_000n * 10n ** 18n);
      expect(parseOpg("0.5")).to.equal(5n * 10n ** 17n);
      expect(formatOpg(25_000n * 10n ** 18n)).to.equal("25000");
      expect(formatOpg(5n * 10n ** 17n)).to.equal("0.5");
    });

    it("rejects non-numbers, too many decimals, zero and negatives", () => {
      inputError(() => parseOpg("lots"), /amount is not an OPG amount/);
      inputError(() => parseOpg("1.0000000000000000001"), /not an OPG amount/);
      inputError(() => parseOpg("0"), /amount must be positive/);
      inputError(
        () => parseOpg("-5", "stake"),
        /stake must be positive|stake is not an OPG amount/,
      );
    });
  });

  describe("parseBytes32 and measurementFromPcrs", () => {
    it("accepts 32-byte hex and hashes three 48-byte PCRs, with or without 0x", () => {
      expect(parseBytes32("0x" + "AA".repeat(32), "measurement")).to.equal("0x" + "aa".repeat(32));
      expect(
        measurementFromPcrs(["01".repeat(48), "0x" + "02".repeat(48), "03".repeat(48)]),
      ).to.match(/^0x[0-9a-f]{64}$/);
    });

    it("rejects short values and the wrong number or size of PCRs", () => {
      inputError(
        () => parseBytes32("0x1234", "measurement"),
        /measurement is not a 32-byte hex value/,
      );
      inputError(() => measurementFromPcrs(["01".repeat(48)]), /exactly three PCRs/);
      inputError(
        () => measurementFromPcrs(["01".repeat(48), "02".repeat(32), "03".repeat(48)]),
        /PCR1 is not 48 bytes/,
      );
    });
  });

  describe("readAddresses and requireAddress", () => {
    async function root(content?: string): Promise<string> {
      const dir = await mkdtemp(path.join(tmpdir(), "opg-addr-"));
      if (content !== undefined) {
        await mkdir(path.join(dir, "deployments", "localhost"), { recursive: true });
        await writeFile(path.join(dir, "deployments", "localhost", "addresses.json"), content);
      }
      return dir;
    }

    it("reads a flat name -> address record", async () => {
      const address = "0x" + "12".repeat(20);
      const addresses = await readAddresses(
        "localhost",
        await root(JSON.stringify({ NodeStaking: address })),
      );
      expect(requireAddress(addresses, "NodeStaking", "localhost")).to.equal(address);
    });

    it("says to deploy first when the record is missing", async () => {
      const error = await readAddresses("localhost", await root()).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(InputError);
      expect((error as InputError).message).to.equal(
        'no deployment record for network "localhost"',
      );
      expect((error as InputError).hint).to.contain("deployments/localhost/addresses.json");
    });

    it("rejects bad JSON, a non-object and a bad address", async () => {
      for (const [content, message] of [
        ["{", /not valid JSON/],
        ["[1]", /must be a JSON object/],
        [JSON.stringify({ NodeStaking: "0x12" }), /bad address for NodeStaking/],
      ] as const) {
        const error = await readAddresses("localhost", await root(content)).then(
          () => null,
          (e: unknown) => e,
        );
        expect(error).to.be.instanceOf(InputError);
        expect((error as InputError).message).to.match(message);
      }
    });

    it("names the missing contract and the ones present", () => {
      const error = inputError(
        () => requireAddress({ OPGToken: "0x" + "12".repeat(20) }, "TeeRegistry", "localhost"),
        /has no TeeRegistry/,
      );
      expect(error.details).to.deep.equal({ known: "OPGToken" });
    });
  });
});
