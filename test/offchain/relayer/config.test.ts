import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";

import { InputError } from "../../../offchain/common/errors.js";
import {
  applyEnvOverrides,
  loadRelayerConfig,
  loadSecrets,
  parseRelayerConfig,
} from "../../../offchain/relayer/config.js";
import { ROOT, run } from "../../helpers/processes.js";

const GOOD = {
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

const ZERO_KEY = `0x${"00".repeat(32)}`;
const MAX_KEY = `0x${"ff".repeat(32)}`;

/** The InputError thrown by `fn` (fails the test if none is thrown). */
function inputErrorOf(fn: () => unknown): InputError {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(InputError);
    return error as InputError;
  }
  expect.fail("expected an InputError");
}

function problemsOf(input: unknown): string[] {
  const error = inputErrorOf(() => parseRelayerConfig(input, "test.json"));
  expect(error.message).to.contain("test.json");
  return (error.details as { problems: string[] }).problems;
}

describe("offchain/relayer/config", () => {
  describe("parseRelayerConfig", () => {
    it("fills every default of a minimal config", () => {
      const config = parseRelayerConfig(GOOD);
      expect(config.enclave).to.not.have.property("sampleRate");
      expect(config.chain.clock).to.equal(undefined); // the chain id's default (chain/clock.ts)
      expect(config.batch).to.deep.equal({
        maxSize: 1024,
        maxAgeMs: 2000,
        strandedAfterMs: 240_000,
      });
      expect(config.sender).to.deep.equal({
        confirmations: 1,
        stuckAfterMs: 60_000,
        feeBumpPercent: 12,
      });
      // Unset: the relayer derives it from the models it serves (api.ts requestBodyLimit).
      expect(config.api.bodyLimitBytes).to.equal(undefined);
      // Real enclaves by default: a development root must be named.
      expect(config.enclave.attestation).to.deep.equal({
        root: "aws-nitro",
        maxAgeSeconds: 60,
        allowDebug: false,
      });
      expect(config.chain.teeRegistry).to.equal(undefined);
    });

    describe("when a field is wrong", () => {
      const cases: Array<[string, unknown, string]> = [
        [
          "a malformed ledger address",
          { chain: { ...GOOD.chain, ledger: "0x1234" } },
          "chain.ledger",
        ],
        [
          "a URL that is not one",
          { chain: { ...GOOD.chain, rpcUrl: "localhost" } },
          "chain.rpcUrl",
        ],
        [
          "a clock that is neither system nor chain",
          { chain: { ...GOOD.chain, clock: "ntp" } },
          "chain.clock",
        ],
        ["a fractional batch size", { batch: { maxSize: 10.5 } }, "batch.maxSize"],
        [
          "a fee bump below the replacement rule",
          { sender: { feeBumpPercent: 5 } },
          "sender.feeBumpPercent",
        ],
        [
          "a fee cap that is not wei",
          { sender: { maxFeePerGasWei: "1.5" } },
          "sender.maxFeePerGasWei",
        ],
        ["an unknown key", { chain: { ...GOOD.chain, rpc: "x" } }, "chain.rpc"],
        ["a port out of range", { api: { port: 70_000 } }, "api.port"],
      ];
      for (const [what, patch, field] of cases) {
        it(`throws an InputError naming ${field} for ${what}`, () => {
          const problems = problemsOf({ ...GOOD, ...(patch as object) });
          expect(problems.some((p) => p.startsWith(`${field}:`))).to.equal(
            true,
            problems.join("; "),
          );
        });
      }

      it("refuses enclave.sampleRate, saying the rate is now governance's, on chain", () => {
        for (const sampleRate of [1, 0.01]) {
          expect(problemsOf({ ...GOOD, enclave: { ...GOOD.enclave, sampleRate } })).to.deep.equal([
            "enclave.sampleRate: no longer a relayer setting: the enclave draws at the rate governance sets on chain (InferenceLedger.sampleRate)",
          ]);
        }
        expect(problemsOf({ ...GOOD, enclave: { ...GOOD.enclave, rate: 1 } })).to.deep.equal([
          "enclave.rate: unknown key",
        ]);
      });

      it("lists every problem at once, each with its path", () => {
        const rest: Record<string, unknown> = { ...GOOD };
        delete rest.node;
        const problems = problemsOf({ ...rest, store: { path: "" } });
        expect(problems.some((p) => p.startsWith("node:"))).to.equal(true);
        expect(problems.some((p) => p.startsWith("store.path:"))).to.equal(true);
      });
    });

    describe("chain.clock", () => {
      it("defaults to the chain id's mode, and takes system anywhere and chain on local chains", () => {
        for (const chainId of [31337, 1337])
          expect(
            parseRelayerConfig({ ...GOOD, chain: { ...GOOD.chain, chainId, clock: "chain" } }).chain
              .clock,
          ).to.equal("chain");
        const system = { ...GOOD, chain: { ...GOOD.chain, chainId: 1, clock: "system" } };
        expect(parseRelayerConfig(system).chain.clock).to.equal("system");
      });

      it('refuses "chain" on a chain that is not local, naming the chain id', () => {
        const error = inputErrorOf(() =>
          parseRelayerConfig({ ...GOOD, chain: { ...GOOD.chain, chainId: 1, clock: "chain" } }),
        );
        expect(error.message).to.equal(
          "a clock that follows the chain is only allowed on local chains",
        );
        expect(error.details).to.deep.equal({ chainId: 1n, localChainIds: [31337n, 1337n] });
      });
    });

    it("refuses fault injection off a local chain, naming the chain id", () => {
      const error = inputErrorOf(() =>
        parseRelayerConfig({
          ...GOOD,
          chain: { ...GOOD.chain, chainId: 1 },
          faultInjection: { corruptOutputs: true },
        }),
      );
      expect(error.message).to.contain("faultInjection.corruptOutputs");
      expect(error.details).to.deep.equal({ chainId: 1 });
    });
  });

  describe("environment overrides", () => {
    it("override one field each, typed", () => {
      const out = applyEnvOverrides(GOOD, {
        OPG_RELAYER_PORT: "9090",
        OPG_RELAYER_ENCLAVE_URL: "http://127.0.0.1:7001",
      });
      const config = parseRelayerConfig(out);
      expect(config.api.port).to.equal(9090);
      expect(config.enclave.url).to.equal("http://127.0.0.1:7001");
      expect(GOOD).to.not.have.property("api"); // the input is not modified
      expect(GOOD.enclave.url).to.equal("http://127.0.0.1:7000");
    });

    it("refuse OPG_RELAYER_SAMPLE_RATE, which no longer sets anything", () => {
      const error = inputErrorOf(() =>
        applyEnvOverrides(GOOD, { OPG_RELAYER_SAMPLE_RATE: "0.25" }),
      );
      expect(error.message).to.equal(
        "OPG_RELAYER_SAMPLE_RATE is no longer read: enclave.sampleRate is no longer a relayer setting: the enclave draws at the rate governance sets on chain (InferenceLedger.sampleRate)",
      );
      expect(applyEnvOverrides(GOOD, { OPG_RELAYER_SAMPLE_RATE: "" })).to.deep.equal(GOOD);
    });

    it("choose the keystore, the enclave's root and the TeeRegistry", () => {
      const registry = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0";
      const config = parseRelayerConfig(
        applyEnvOverrides(GOOD, {
          OPG_RELAYER_KEYS_SOURCE: "keystore",
          OPG_RELAYER_KEYSTORE: "/secure/keystore.json",
          OPG_RELAYER_ENCLAVE_ROOT: "/etc/opg/dev-root.pem",
          OPG_RELAYER_TEE_REGISTRY: registry,
        }),
      );
      expect(config.keys.source).to.equal("keystore");
      expect(config.keys.keystorePath).to.equal("/secure/keystore.json");
      expect(config.enclave.attestation.root).to.equal("/etc/opg/dev-root.pem");
      expect(config.chain.teeRegistry).to.equal(registry);
      expect(problemsOf(applyEnvOverrides(GOOD, { OPG_RELAYER_KEYS_SOURCE: "vault" }))[0]).to.match(
        /^keys\.source:/,
      );
    });

    it("name the variable when a number does not parse", () => {
      const error = inputErrorOf(() => applyEnvOverrides(GOOD, { OPG_RELAYER_PORT: "eighty" }));
      expect(error.message).to.contain("OPG_RELAYER_PORT");
      expect(error.details).to.deep.equal({ OPG_RELAYER_PORT: "eighty" });
    });
  });

  describe("loadRelayerConfig", () => {
    let dir: string;
    beforeEach(async () => (dir = await mkdtemp(path.join(tmpdir(), "opg-relayer-config-"))));
    afterEach(async () => rm(dir, { recursive: true, force: true }));

    it("names the file when it is not JSON or missing", async () => {
      const file = path.join(dir, "relayer.json");
      await writeFile(file, "{ not json");
      expect(inputErrorOf(() => loadRelayerConfig(file, {})).message).to.contain("not valid JSON");
      const missing = path.join(dir, "missing.json");
      expect(inputErrorOf(() => loadRelayerConfig(missing, {})).details).to.deep.equal({
        file: missing,
      });
    });

    it("applies the environment over the file", async () => {
      const file = path.join(dir, "relayer.json");
      await writeFile(file, JSON.stringify(GOOD));
      const config = loadRelayerConfig(file, { OPG_RELAYER_DB: "/tmp/other.db" });
      expect(config.store.path).to.equal("/tmp/other.db");
    });
  });

  describe("loadSecrets from the environment", () => {
    const key = `0x${"11".repeat(32)}`;
    const keys = parseRelayerConfig(GOOD).keys;

    /** The InputError `promise` rejects with. */
    async function rejectionOf(promise: Promise<unknown>): Promise<InputError> {
      return promise.then(
        () => expect.fail("expected an InputError"),
        (error: unknown) => {
          expect(error).to.be.instanceOf(InputError);
          return error as InputError;
        },
      );
    }

    it("is the default source, reading OPG_NODE_SIGNER_KEY and OPG_RELAYER_TX_KEY", async () => {
      expect(keys).to.deep.equal({
        source: "env",
        nodeSignerKeyName: "OPG_NODE_SIGNER_KEY",
        txKeyName: "OPG_RELAYER_TX_KEY",
      });
      const other = `0x${"22".repeat(32)}`;
      const secrets = await loadSecrets(keys, {
        env: { OPG_NODE_SIGNER_KEY: key, OPG_RELAYER_TX_KEY: other },
      });
      expect(secrets.nodeSigner.privateKey).to.equal(key);
      expect(secrets.txSigner.privateKey).to.equal(other);
    });

    it("reads the variables the config names", async () => {
      const secrets = await loadSecrets(
        { ...keys, nodeSignerKeyName: "GPU_KEY", txKeyName: "TX_KEY" },
        { env: { GPU_KEY: key, TX_KEY: key } },
      );
      expect(secrets.txSigner.privateKey).to.equal(key);
    });

    it("names the missing variable", async () => {
      const error = await rejectionOf(loadSecrets(keys, { env: { OPG_NODE_SIGNER_KEY: key } }));
      expect(error.message).to.contain("OPG_RELAYER_TX_KEY");
    });

    it("reports a malformed key by its length only, never its value", async () => {
      const bad = "0xdeadbeef";
      const error = await rejectionOf(
        loadSecrets(keys, { env: { OPG_NODE_SIGNER_KEY: bad, OPG_RELAYER_TX_KEY: key } }),
      );
      expect(error.message).to.equal(
        `OPG_NODE_SIGNER_KEY must be a 32-byte private key, 0x + 64 hex digits (it has ${bad.length} characters)`,
      );
      expect(error.format()).to.not.contain("deadbeef");
    });

    it("refuses a key of zero or not below the curve order, naming the variable", async () => {
      const zero = await rejectionOf(
        loadSecrets(keys, { env: { OPG_NODE_SIGNER_KEY: ZERO_KEY, OPG_RELAYER_TX_KEY: key } }),
      );
      expect(zero.message).to.equal(
        "OPG_NODE_SIGNER_KEY is not a valid secp256k1 private key: it is zero",
      );
      const high = await rejectionOf(
        loadSecrets(keys, { env: { OPG_NODE_SIGNER_KEY: key, OPG_RELAYER_TX_KEY: MAX_KEY } }),
      );
      expect(high.message).to.equal(
        "OPG_RELAYER_TX_KEY is not a valid secp256k1 private key: it is not below the curve order n",
      );
    });

    it("refuses a key name the Hardhat keystore would not take, naming the field", () => {
      const problems = problemsOf({ ...GOOD, keys: { nodeSignerKeyName: "1-bad" } });
      expect(problems.some((p) => p.startsWith("keys.nodeSignerKeyName:"))).to.equal(true);
    });
  });
  describe("opg relayer start with a key that is not a secp256k1 private key", function () {
    this.timeout(120_000);
    let dir: string;
    let file: string;
    before(async () => {
      dir = await mkdtemp(path.join(tmpdir(), "opg-relayer-key-"));
      file = path.join(dir, "relayer.json");
      await writeFile(file, JSON.stringify({ ...GOOD, store: { path: path.join(dir, "r.db") } }));
    });
    after(async () => rm(dir, { recursive: true, force: true }));

    const cases = [
      { what: "a zero key", key: ZERO_KEY, reason: "it is zero" },
      { what: "a key above n", key: MAX_KEY, reason: "it is not below the curve order n" },
      {
        what: "n itself",
        key: "0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141",
        reason: "it is not below the curve order n",
      },
    ];
    for (const { what, key, reason } of cases) {
      it(`exits 2 with one line naming OPG_NODE_SIGNER_KEY for ${what}, no stack, no key`, async () => {
        const result = await run(
          process.execPath,
          [path.join(ROOT, "bin", "opg.mjs"), "relayer", "start", "--config", file],
          {
            OPG_NODE_SIGNER_KEY: key,
            OPG_RELAYER_TX_KEY: `0x${"22".repeat(32)}`,
            // Node's own ExperimentalWarning for node:sqlite is not ours to assert on.
            NODE_NO_WARNINGS: "1",
          },
          60_000,
        );
        expect(result.code, result.stderr).to.equal(2);
        expect(result.stdout).to.equal("");
        expect(result.stderr).to.equal(
          `InputError: OPG_NODE_SIGNER_KEY is not a valid secp256k1 private key: ${reason}\n`,
        );
        expect(result.stderr).to.not.match(/\bat .+:\d+:\d+/); // no stack frame
        for (const text of [key.slice(2), key.slice(2).toLowerCase(), "22".repeat(32)])
          expect(result.stdout + result.stderr).to.not.contain(text);
      });
    }
  });
});
