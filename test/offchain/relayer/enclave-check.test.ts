/**
 * The relayer's start-up check of its enclave (offchain/relayer/enclave-check.ts) against the real
 * protocol on a `hardhat node` (test/e2e/relayer-system.ts: TeeRegistry, the dev image approved
 * through the timelock, `opg enclave start` registered with its own attestation). Other enclaves
 * run in process with the same code (Enclave + DevAttestor + the HTTP server), each under its own
 * development root. Last, `opg relayer start` as an operator runs it: refused for an unregistered
 * enclave, started with its keys from the Hardhat keystore, never printing them.
 */
import { createServer, type Server } from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { getAddress, hexlify, randomBytes } from "ethers";
import { pino } from "pino";

import { InputError } from "../../../offchain/common/errors.js";
import { InferenceEngine } from "../../../offchain/inference/engine.js";
import {
  EnclaveCheckError,
  checkEnclave,
  trustedRoot,
  type EnclaveCheckOptions,
  type EnclaveCheckStep,
} from "../../../offchain/relayer/enclave-check.js";
import { DEFAULT_REGISTRATION_TTL } from "../../../offchain/staking/deploy.js";
import { AWS_NITRO_ROOT_G1_PEM } from "../../../offchain/tee/awsRoot.js";
import { DevAttestor } from "../../../offchain/tee/devAttestation.js";
import { systemClock } from "../../../offchain/chain/clock.js";
import { connectEnclaveChain, type EnclaveChain } from "../../../offchain/tee/chain-view.js";
import { Enclave } from "../../../offchain/tee/enclave.js";
import { createEnclaveServer, listen } from "../../../offchain/tee/server.js";
import {
  deploySystem,
  devMeasurement,
  relayerEnv,
  startEnclave,
  startOpg,
  stopProc,
  writeDevRoot,
  writeRelayerConfig,
  type Proc,
  type System,
} from "../../e2e/relayer-system.js";
import { hardhatKeystoreSet, keystorePathIn } from "../../helpers/keystore.js";
import { ROOT, rpc, run, startHardhatNode, type HardhatNode } from "../../helpers/processes.js";

const silent = pino({ level: "silent" });

/** The EnclaveCheckError `promise` rejects with, checked to be at `step`. */
async function checkErrorOf(
  promise: Promise<unknown>,
  step: EnclaveCheckStep,
): Promise<EnclaveCheckError> {
  const error = await promise.then(
    () => expect.fail(`expected an EnclaveCheckError at ${step}`),
    (e: unknown) => e,
  );
  expect(error).to.be.instanceOf(EnclaveCheckError);
  const ce = error as EnclaveCheckError;
  expect(ce.step, ce.message).to.equal(step);
  return ce;
}

interface LocalEnclave {
  url: string;
  address: string;
  rootFile: string;
  /** An attestation document from this enclave (for registering it). */
  attest: () => Buffer;
  close: () => Promise<void>;
}

describe("relayer start-up: the enclave check", function () {
  this.timeout(240_000);
  let node: HardhatNode;
  let system: System;
  let registered: Awaited<ReturnType<typeof startEnclave>>;
  let dir: string;
  let registeredRoot: string;
  let ledger: string;
  let engine: InferenceEngine;
  let chain: EnclaveChain;
  const servers: Array<() => Promise<void>> = [];

  before(async () => {
    node = await startHardhatNode();
    system = await deploySystem(node.url);
    registered = await startEnclave(system, node.url);
    dir = await mkdtemp(path.join(tmpdir(), "opg-enclave-check-"));
    registeredRoot = await writeDevRoot(registered.url, dir);
    ledger = await system.ledger.getAddress();
    engine = new InferenceEngine({ config: { provider: "cpu" }, logger: silent });
    chain = await connectEnclaveChain(node.url, 31337n, ledger);
  });
  after(async () => {
    for (const close of servers) await close();
    chain?.close();
    await engine?.close();
    if (registered !== undefined) await stopProc(registered, "SIGKILL");
    await system?.close();
    await node?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** Options checking the enclave at `url`, trusting `root`, for this deployment. */
  function options(url: string, root: string): EnclaveCheckOptions {
    return {
      url,
      chainId: 31337n,
      ledger,
      node: system.gpuNode,
      root,
      maxAgeMs: 60_000,
      provider: system.provider,
    };
  }

  /** An enclave in this process: its own dev root, chain, ledger, image and clock. */
  async function localEnclave(
    opts: {
      chainId?: bigint;
      ledger?: string;
      node?: string;
      image?: string;
      clockMs?: number;
      debug?: boolean;
    } = {},
  ): Promise<LocalEnclave> {
    const attestor = new DevAttestor({
      ...(opts.image !== undefined ? { image: opts.image } : {}),
      ...(opts.debug !== undefined ? { debug: opts.debug } : {}),
      now: () => new Date(Date.now() + (opts.clockMs ?? 0)),
    });
    const enclave = new Enclave({
      engine,
      attestor,
      chainId: opts.chainId ?? 31337n,
      ledger: opts.ledger ?? ledger,
      clientNode: opts.node ?? system.gpuNode,
      chain,
      clock: systemClock,
    });
    const server = createEnclaveServer({
      enclave,
      clock: systemClock,
      devRootPem: attestor.rootPem,
      logger: silent,
    });
    const url = await listen(server, 0);
    const close = (): Promise<void> => new Promise((r) => server.close(() => r()));
    servers.push(close);
    const rootFile = path.join(dir, `root-${enclave.address}.pem`);
    await writeFile(rootFile, attestor.rootPem);
    return {
      url,
      address: enclave.address,
      rootFile,
      attest: () => enclave.attestation(randomBytes(32)),
      close,
    };
  }

  describe("an enclave registered and active in the ledger's TeeRegistry", () => {
    it("passes: its address comes from the attestation, checked on chain", async () => {
      const checked = await checkEnclave(options(registered.url, registeredRoot));
      expect(checked.address).to.equal(registered.address);
      expect(checked.node).to.equal(getAddress(system.teeNode));
      expect(checked.teeRegistry).to.equal(await system.tee.getAddress());
      expect(checked.measurement).to.equal(devMeasurement());
      expect(checked.ageMs).to.be.lessThan(60_000);
    });

    it("passes when chain.teeRegistry names the ledger's registry, fails naming both if not", async () => {
      const tee = await system.tee.getAddress();
      await checkEnclave({ ...options(registered.url, registeredRoot), teeRegistry: tee });
      const other = getAddress(hexlify(randomBytes(20)));
      const error = await checkErrorOf(
        checkEnclave({ ...options(registered.url, registeredRoot), teeRegistry: other }),
        "registry",
      );
      expect(error.message).to.equal(
        `ledger ${ledger} uses TeeRegistry ${tee}, not the configured ${other}`,
      );
    });

    it("fails against the AWS root (a development enclave is not a real Nitro enclave)", async () => {
      const error = await checkErrorOf(
        checkEnclave(options(registered.url, "aws-nitro")),
        "attestation",
      );
      expect(error.details.check).to.equal("root");
    });

    it("fails once its registration has expired", async () => {
      const snapshot = await rpc<string>(node.url, "evm_snapshot");
      try {
        await rpc(node.url, "evm_increaseTime", [Number(DEFAULT_REGISTRATION_TTL) + 1]);
        await rpc(node.url, "evm_mine");
        const error = await checkErrorOf(
          checkEnclave(options(registered.url, registeredRoot)),
          "inactive",
        );
        expect(error.message).to.match(
          new RegExp(
            `^enclave ${registered.address}'s registration in TeeRegistry 0x[0-9a-fA-F]{40} expired at `,
          ),
        );
      } finally {
        await rpc(node.url, "evm_revert", [snapshot]);
      }
    });
  });

  it("refuses an enclave that is not registered, naming it and the registry", async () => {
    const enclave = await localEnclave();
    const error = await checkErrorOf(
      checkEnclave(options(enclave.url, enclave.rootFile)),
      "registry",
    );
    expect(error.message).to.equal(
      `enclave ${enclave.address} is not registered in TeeRegistry ${await system.tee.getAddress()}`,
    );
  });

  describe("an attestation bound to another deployment or node", () => {
    it("refuses another chain", async () => {
      const enclave = await localEnclave({ chainId: 1n });
      const error = await checkErrorOf(
        checkEnclave(options(enclave.url, enclave.rootFile)),
        "binding",
      );
      expect(error.message).to.equal(
        `enclave ${enclave.address} is bound to chain 1 and ledger ${ledger}, not to this relayer's chain 31337 and ledger ${ledger}`,
      );
    });

    it("refuses another ledger", async () => {
      const otherLedger = getAddress(hexlify(randomBytes(20)));
      const enclave = await localEnclave({ ledger: otherLedger });
      const error = await checkErrorOf(
        checkEnclave(options(enclave.url, enclave.rootFile)),
        "binding",
      );
      expect(error.details.enclaveLedger).to.equal(otherLedger);
      expect(error.message).to.contain(`ledger ${otherLedger}, not to this relayer's`);
    });

    it("refuses an enclave serving another GPU node, naming both", async () => {
      const other = getAddress(hexlify(randomBytes(20)));
      const enclave = await localEnclave({ node: other });
      const error = await checkErrorOf(
        checkEnclave(options(enclave.url, enclave.rootFile)),
        "binding",
      );
      expect(error.message).to.equal(
        `enclave ${enclave.address} serves node ${other}, not this relayer's node ${system.gpuNode}`,
      );
      expect(error.details).to.deep.include({ enclaveNode: other, node: system.gpuNode });
    });
  });

  describe("a document that does not answer this start-up", () => {
    it("refuses a replayed document (another nonce), even from the registered enclave", async () => {
      // A man in the middle serving a document the registered enclave gave someone else earlier.
      const res = await fetch(`${registered.url}/attestation?nonce=${"ab".repeat(32)}`);
      const captured = (await res.json()) as Record<string, unknown>;
      const replay: Server = createServer((_req, reply) => {
        reply.writeHead(200, { "content-type": "application/json" });
        reply.end(JSON.stringify(captured));
      });
      const url = await listen(replay, 0);
      servers.push(() => new Promise((r) => replay.close(() => r())));
      const error = await checkErrorOf(checkEnclave(options(url, registeredRoot)), "attestation");
      expect(error.details.check).to.equal("nonce");
      expect(error.message).to.contain("nonce does not match the one requested");
    });

    it("refuses a stale document (older than attestation.maxAgeSeconds)", async () => {
      const enclave = await localEnclave({ clockMs: -5 * 60_000 });
      const error = await checkErrorOf(
        checkEnclave(options(enclave.url, enclave.rootFile)),
        "attestation",
      );
      expect(error.details.check).to.equal("age");
      expect(error.details.maxAgeMs).to.equal(60_000);
    });

    it("refuses a debug-mode enclave (PCRs all zero) unless attestation.allowDebug is set", async () => {
      const enclave = await localEnclave({ debug: true });
      const error = await checkErrorOf(
        checkEnclave(options(enclave.url, enclave.rootFile)),
        "attestation",
      );
      expect(error.details.check).to.equal("debug");
      expect(error.message).to.contain(
        "debug-mode enclave: PCRs are all zero; its memory can be read by the host",
      );
      // Allowed, its attestation passes and the check goes on to the registry (where it is unknown).
      const next = await checkErrorOf(
        checkEnclave({ ...options(enclave.url, enclave.rootFile), allowDebug: true }),
        "registry",
      );
      expect(next.message).to.equal(
        `enclave ${enclave.address} is not registered in TeeRegistry ${await system.tee.getAddress()}`,
      );
    });

    it("refuses a document under a root the relayer does not trust", async () => {
      const enclave = await localEnclave();
      const error = await checkErrorOf(
        checkEnclave(options(enclave.url, registeredRoot)),
        "attestation",
      );
      expect(error.details.check).to.equal("root");
    });
  });

  it("refuses an enclave registered with an approved image it does not run", async () => {
    // The development verifier on chain accepts any document, so a node can register an enclave
    // running another image under the approved measurement; the relayer reads the PCRs itself.
    const enclave = await localEnclave({ image: "opg-enclave-other" });
    await system.registerEnclave(enclave.address, enclave.attest());
    const error = await checkErrorOf(
      checkEnclave(options(enclave.url, enclave.rootFile)),
      "measurement",
    );
    expect(error.message).to.match(
      new RegExp(
        `^enclave ${enclave.address} attests image 0x[0-9a-f]{64} but is registered in TeeRegistry 0x[0-9a-fA-F]{40} with image ${devMeasurement()}$`,
      ),
    );
  });

  describe("enclave.attestation.root", () => {
    it('is the AWS Nitro root for "aws-nitro", else the PEM file it names', () => {
      expect(trustedRoot("aws-nitro")).to.equal(AWS_NITRO_ROOT_G1_PEM);
      expect(trustedRoot(registeredRoot)).to.contain("BEGIN CERTIFICATE");
    });

    it("is an InputError naming the file when it is missing or not a certificate", async () => {
      const missing = path.join(dir, "missing.pem");
      expect(() => trustedRoot(missing))
        .to.throw(InputError, `cannot read the enclave attestation root ${missing}`)
        .with.property("details")
        .that.deep.equals({ path: missing });
      const junk = path.join(dir, "junk.pem");
      await writeFile(junk, "not a certificate");
      expect(() => trustedRoot(junk)).to.throw(InputError, `${junk} is not a PEM certificate`);
    });
  });

  it("refuses an unreachable enclave", async () => {
    const error = await checkErrorOf(
      checkEnclave(options("http://127.0.0.1:1", registeredRoot)),
      "unreachable",
    );
    expect(error.message).to.equal("enclave at http://127.0.0.1:1 is unreachable");
  });

  describe("opg relayer start", () => {
    const running: Proc[] = [];
    after(async () => {
      for (const p of running) await stopProc(p, "SIGKILL");
    });

    it("exits non-zero, naming the enclave and the registry, when the enclave is not registered", async () => {
      const enclave = await localEnclave();
      const { file } = await writeRelayerConfig(system, enclave.url, node.url);
      const result = await run(
        process.execPath,
        [path.join(ROOT, "bin", "opg.mjs"), "relayer", "start", "--config", file],
        relayerEnv(system),
        60_000,
      );
      expect(result.code, result.stderr).to.equal(1);
      expect(result.stderr).to.contain(
        `EnclaveCheckError: enclave ${enclave.address} is not registered in TeeRegistry ${await system.tee.getAddress()}`,
      );
      expect(result.stdout).to.equal("");
    });

    describe("with its keys in the Hardhat keystore", () => {
      const password = "operator keystore password";
      let home: string;
      before(async () => {
        home = await mkdtemp(path.join(tmpdir(), "opg-relayer-keystore-"));
        await hardhatKeystoreSet(home, password, "GPU_SIGNER", system.nodeSigner.privateKey);
        await hardhatKeystoreSet(home, password, "RELAYER_TX", system.txKey.privateKey);
      });
      after(async () => rm(home, { recursive: true, force: true }));

      const secrets = (): string[] =>
        [system.nodeSigner.privateKey, system.txKey.privateKey, password].flatMap((s) => [
          s,
          s.replace(/^0x/, ""),
        ]);

      async function config(): Promise<string> {
        const { file } = await writeRelayerConfig(system, registered.url, node.url, {
          keys: {
            source: "keystore",
            keystorePath: keystorePathIn(home),
            nodeSignerKeyName: "GPU_SIGNER",
            txKeyName: "RELAYER_TX",
          },
          listener: { enabled: false },
          log: { level: "trace" },
        });
        return file;
      }

      it("starts with them (password from OPG_KEYSTORE_PASSWORD) and never prints them", async () => {
        const proc = await startOpg(["relayer", "start", "--config", await config()], {
          OPG_KEYSTORE_PASSWORD: password,
          OPG_NODE_SIGNER_KEY: "",
          OPG_RELAYER_TX_KEY: "",
        });
        running.push(proc);
        expect(proc.line.event).to.equal("listening");
        expect(proc.line.signer).to.equal(system.nodeSigner.address);
        expect(proc.line.sender).to.equal(system.txKey.address);
        expect(proc.line.enclave).to.equal(registered.address);
        await stopProc(proc);
        const output = `${JSON.stringify(proc.line)}\n${proc.output()}`;
        expect(output).to.contain("enclave attested"); // the trace-level log was written
        for (const secret of secrets()) expect(output).to.not.contain(secret);
      });

      it("exits with code 2 on a wrong password, printing neither the password nor a key", async () => {
        const result = await run(
          process.execPath,
          [path.join(ROOT, "bin", "opg.mjs"), "relayer", "start", "--config", await config()],
          { OPG_KEYSTORE_PASSWORD: "not the password" },
          60_000,
        );
        expect(result.code, result.stderr).to.equal(2);
        expect(result.stderr).to.contain(
          `KeystoreError: wrong password for the keystore ${keystorePathIn(home)}`,
        );
        for (const secret of [...secrets(), "not the password"])
          expect(result.stdout + result.stderr).to.not.contain(secret);
      });
    });
  });
});
