/**
 * The relayer's keys from the Hardhat keystore: a keystore made by Hardhat itself (`npx hardhat
 * keystore set`, its own code and file format) is read back by offchain/common/hardhat-keystore.ts,
 * and every way it can fail is an InputError naming the problem, never the key or the password.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { Wallet } from "ethers";

import { aesGcmSivDecrypt, polyval } from "../../../offchain/common/aes-gcm-siv.js";
import { InputError } from "../../../offchain/common/errors.js";
import {
  KeystoreError,
  defaultKeystorePath,
  unlockKeystore,
  type KeystoreProblem,
} from "../../../offchain/common/hardhat-keystore.js";
import { loadSecrets, parseRelayerConfig } from "../../../offchain/relayer/config.js";
import { hardhatKeystoreSet, keystoreEnv, keystorePathIn } from "../../helpers/keystore.js";

const PASSWORD = "relayer keystore pw";
const NODE_KEY = Wallet.createRandom().privateKey;
const TX_KEY = Wallet.createRandom().privateKey;
const BAD_VALUE = "0xnot-a-private-key";
const ZERO_KEY = `0x${"00".repeat(32)}`;

const hex = (s: string): Buffer => Buffer.from(s, "hex");

const BASE = {
  chain: {
    rpcUrl: "http://127.0.0.1:8545",
    chainId: 31337,
    ledger: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
  },
  node: { address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" },
  enclave: { url: "http://127.0.0.1:7000" },
  models: { dir: "models" },
  store: { path: "relayer.db" },
};

/** The KeystoreError `promise` rejects with; checks it is an InputError with that problem. */
async function keystoreErrorOf(
  promise: Promise<unknown>,
  problem: KeystoreProblem,
): Promise<KeystoreError> {
  const error = await promise.then(
    () => expect.fail(`expected a KeystoreError (${problem})`),
    (e: unknown) => e,
  );
  expect(error).to.be.instanceOf(KeystoreError);
  expect(error).to.be.instanceOf(InputError);
  const ke = error as KeystoreError;
  expect(ke.problem, ke.message).to.equal(problem);
  expect(ke.details.problem).to.equal(problem);
  return ke;
}

/** Everything an error would print: message, details, hint and the causes' messages. */
function printed(error: Error): string {
  const parts = [error instanceof InputError ? error.format() : error.message];
  let cause = error.cause;
  while (cause instanceof Error) {
    parts.push(cause.message);
    cause = cause.cause;
  }
  return parts.join("\n");
}

function expectNoSecret(text: string): void {
  for (const secret of [NODE_KEY, TX_KEY, BAD_VALUE, PASSWORD]) {
    expect(text).to.not.contain(secret);
    expect(text).to.not.contain(secret.replace(/^0x/, ""));
  }
}

describe("offchain/common/aes-gcm-siv", () => {
  // RFC 8452, appendix A (POLYVAL) and C.2 (AEAD_AES_256_GCM_SIV), the first vectors.
  it("computes POLYVAL as RFC 8452 appendix A", () => {
    const h = hex("25629347589242761d31f826ba4b757b");
    const x = hex("4f4f95668c83dfb6401762bb2d01a262d1a24ddd2721d006bbe45f20d3c9f362");
    expect(polyval(h, x).toString("hex")).to.equal("f7a3b47b846119fae5b7866cf5e5b77e");
  });

  const key = hex("0100000000000000000000000000000000000000000000000000000000000000");
  const nonce = hex("030000000000000000000000");
  const vectors: Array<[string, string]> = [
    ["", "07f5f4169bbf55a8400cd47ea6fd400f"],
    ["0100000000000000", "c2ef328e5c71c83b843122130f7364b761e0b97427e3df28"],
    [
      "010000000000000000000000000000000200000000000000000000000000000003000000000000000000000000000000",
      "c00d121893a9fa603f48ccc1ca3c57ce7499245ea0046db16c53c7c66fe717e39cf6c748837b61f6ee3adcee17534ed5790bc96880a99ba804bd12c0e6a22cc4",
    ],
  ];
  for (const [plaintext, sealed] of vectors) {
    it(`decrypts RFC 8452 C.2's ${plaintext.length / 2}-byte vector`, () => {
      expect(aesGcmSivDecrypt(key, nonce, hex(sealed)).toString("hex")).to.equal(plaintext);
    });
  }

  it("refuses a flipped bit, a wrong key and a short input", () => {
    const sealed = hex(vectors[1]![1]);
    sealed[0] = (sealed[0] as number) ^ 1;
    expect(() => aesGcmSivDecrypt(key, nonce, sealed)).to.throw("authentication failed");
    const other = Buffer.from(key);
    other[31] = 1;
    expect(() => aesGcmSivDecrypt(other, nonce, hex(vectors[0]![1]))).to.throw(
      "authentication failed",
    );
    expect(() => aesGcmSivDecrypt(key, nonce, Buffer.alloc(15))).to.throw("authentication failed");
  });
});

describe("relayer keys from the Hardhat keystore", function () {
  this.timeout(120_000);
  let home: string;
  let file: string;

  before(async () => {
    home = await mkdtemp(path.join(tmpdir(), "opg-keystore-"));
    await hardhatKeystoreSet(home, PASSWORD, "OPG_NODE_SIGNER_KEY", NODE_KEY);
    await hardhatKeystoreSet(home, PASSWORD, "OPG_RELAYER_TX_KEY", TX_KEY);
    await hardhatKeystoreSet(home, PASSWORD, "BAD_VALUE", BAD_VALUE);
    await hardhatKeystoreSet(home, PASSWORD, "ZERO_KEY", ZERO_KEY);
    file = keystorePathIn(home);
  });
  after(async () => rm(home, { recursive: true, force: true }));

  const keystoreKeys = (patch: Record<string, unknown> = {}) =>
    parseRelayerConfig({ ...BASE, keys: { source: "keystore", keystorePath: file, ...patch } })
      .keys;

  describe("the keystore file Hardhat wrote", () => {
    it("is where defaultKeystorePath says (what `npx hardhat keystore path` prints)", async () => {
      expect(defaultKeystorePath(keystoreEnv(home))).to.equal(file);
      const json = JSON.parse(await readFile(file, "utf8")) as { version: string };
      expect(json.version).to.equal("hardhat-v3-keystore-1");
    });

    it("unlocks with its password and gives back each secret as stored", async () => {
      const keystore = await unlockKeystore(file, PASSWORD);
      expect(keystore.names).to.deep.equal([
        "BAD_VALUE",
        "OPG_NODE_SIGNER_KEY",
        "OPG_RELAYER_TX_KEY",
        "ZERO_KEY",
      ]);
      expect(keystore.get("OPG_NODE_SIGNER_KEY")).to.equal(NODE_KEY);
      expect(keystore.get("BAD_VALUE")).to.equal(BAD_VALUE);
      keystore.close();
    });
  });

  describe("loadSecrets with keys.source keystore", () => {
    it("loads both keys, the password from OPG_KEYSTORE_PASSWORD", async () => {
      const secrets = await loadSecrets(keystoreKeys(), {
        env: { OPG_KEYSTORE_PASSWORD: PASSWORD, OPG_NODE_SIGNER_KEY: TX_KEY },
      });
      // The keystore, not the environment's OPG_NODE_SIGNER_KEY.
      expect(secrets.nodeSigner.privateKey).to.equal(NODE_KEY);
      expect(secrets.txSigner.privateKey).to.equal(TX_KEY);
    });

    it("finds Hardhat's keystore when no path is configured", async () => {
      const keys = parseRelayerConfig({ ...BASE, keys: { source: "keystore" } }).keys;
      const secrets = await loadSecrets(keys, {
        env: { ...keystoreEnv(home), OPG_KEYSTORE_PASSWORD: PASSWORD },
      });
      expect(secrets.txSigner.address).to.equal(new Wallet(TX_KEY).address);
    });

    it("asks for the password when the environment has none", async () => {
      const questions: string[] = [];
      const secrets = await loadSecrets(keystoreKeys(), {
        env: {},
        askPassword: (question) => {
          questions.push(question);
          return Promise.resolve(PASSWORD);
        },
      });
      expect(questions).to.deep.equal([`Password for the Hardhat keystore ${file}: `]);
      expect(secrets.nodeSigner.privateKey).to.equal(NODE_KEY);
    });

    describe("when something is wrong, an InputError names the problem and no secret", () => {
      it("a wrong password", async () => {
        const error = await keystoreErrorOf(
          loadSecrets(keystoreKeys(), { env: { OPG_KEYSTORE_PASSWORD: `${PASSWORD}!` } }),
          "wrong-password",
        );
        expect(error.message).to.equal(`wrong password for the keystore ${file}`);
        expectNoSecret(printed(error));
      });

      it("no password and no terminal to ask on", async () => {
        const error = await keystoreErrorOf(
          loadSecrets(keystoreKeys(), { env: {}, askPassword: null }),
          "no-password",
        );
        expect(error.format()).to.contain("OPG_KEYSTORE_PASSWORD");
      });

      it("a key name the keystore does not hold", async () => {
        const error = await keystoreErrorOf(
          loadSecrets(keystoreKeys({ txKeyName: "RELAYER_TX" }), {
            env: { OPG_KEYSTORE_PASSWORD: PASSWORD },
          }),
          "missing-key",
        );
        expect(error.message).to.equal(`key RELAYER_TX is not in the keystore ${file}`);
        expect(error.details.keys).to.include("OPG_RELAYER_TX_KEY");
        expect(error.hint).to.equal("npx hardhat keystore set RELAYER_TX");
        expectNoSecret(printed(error));
      });

      it("a value that is not a private key, reported by its length", async () => {
        const error = await keystoreErrorOf(
          loadSecrets(keystoreKeys({ nodeSignerKeyName: "BAD_VALUE" }), {
            env: { OPG_KEYSTORE_PASSWORD: PASSWORD },
          }),
          "malformed-key",
        );
        expect(error.message).to.contain("BAD_VALUE in the keystore");
        expect(error.details.length).to.equal(BAD_VALUE.length);
        expectNoSecret(printed(error));
      });

      it("a key of zero (not a secp256k1 private key), naming the entry", async () => {
        const error = await keystoreErrorOf(
          loadSecrets(keystoreKeys({ txKeyName: "ZERO_KEY" }), {
            env: { OPG_KEYSTORE_PASSWORD: PASSWORD },
          }),
          "malformed-key",
        );
        expect(error.message).to.equal(
          `ZERO_KEY in the keystore ${file} is not a valid secp256k1 private key: it is zero`,
        );
        expect(printed(error)).to.not.contain("00".repeat(32));
      });

      it("a missing file", async () => {
        const missing = path.join(home, "nowhere", "keystore.json");
        const error = await keystoreErrorOf(
          loadSecrets(keystoreKeys({ keystorePath: missing }), {
            env: { OPG_KEYSTORE_PASSWORD: PASSWORD },
          }),
          "missing-file",
        );
        expect(error.message).to.equal(`no Hardhat keystore at ${missing}`);
      });

      it("a file that is not a Hardhat keystore", async () => {
        const other = path.join(home, "other.json");
        await writeFile(other, JSON.stringify({ version: 3, crypto: {} }));
        const error = await keystoreErrorOf(unlockKeystore(other, PASSWORD), "format");
        expect(error.details.problems).to.be.an("array").that.is.not.empty;
      });

      it("a keystore modified after Hardhat wrote it (its HMAC)", async () => {
        const json = JSON.parse(await readFile(file, "utf8")) as {
          secrets: Record<string, unknown>;
        };
        // Swap two entries: each still decrypts, but the file is no longer what Hardhat signed.
        const { OPG_NODE_SIGNER_KEY: a, OPG_RELAYER_TX_KEY: b } = json.secrets;
        json.secrets.OPG_NODE_SIGNER_KEY = b;
        json.secrets.OPG_RELAYER_TX_KEY = a;
        const tampered = path.join(home, "tampered.json");
        await writeFile(tampered, JSON.stringify(json));
        const error = await keystoreErrorOf(unlockKeystore(tampered, PASSWORD), "integrity");
        expect(error.message).to.contain("integrity check");
        expectNoSecret(printed(error));
      });
    });
  });
});
