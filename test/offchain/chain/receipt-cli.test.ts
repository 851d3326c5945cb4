/**
 * `opg receipt verify` end to end: a `hardhat node` JSON-RPC chain started here (loopback, free
 * port, killed after), the ledger deployed on it with the staking/TEE test doubles, a batch
 * anchored, then the CLI run as a child process on good, altered and malformed bundle files.
 */
import { execFile, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { expect } from "chai";
import { ContractFactory, JsonRpcProvider, NonceManager, Wallet } from "ethers";
import type { Contract } from "ethers";

import { readFileSync } from "node:fs";
import { buildReceiptBundle, formatReceiptBundle } from "../../../offchain/chain/bundle.js";
import type { ReceiptBundle } from "../../../offchain/chain/bundle.js";
import { FULL_SAMPLE_RATE_PPM, ledgerDomain } from "../../../offchain/chain/eip712.js";
import { buildReceiptBatch } from "../../../offchain/chain/merkle.js";
import {
  buildVerdict,
  signBatch,
  signReceipt,
  signVerdict,
} from "../../../offchain/chain/receipts.js";
import { MODEL_ID, SIGNED_AT, makeReceipt, random32 } from "../../contracts/anchoring/helpers.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
// Hardhat node's first default account (public test mnemonic).
const DEPLOYER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function startNode(port: number): Promise<ChildProcess> {
  const cli = path.join(root, "node_modules", "hardhat", "dist", "src", "cli.js");
  const child = spawn(
    process.execPath,
    [cli, "node", "--hostname", "127.0.0.1", "--port", String(port)],
    {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(
      () => reject(new Error(`hardhat node did not start:\n${output}`)),
      120_000,
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("Started HTTP")) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`hardhat node exited with ${code}:\n${output}`));
    });
  });
}

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(root, "bin", "opg.mjs"), ...args],
      { cwd: root, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function artifact(source: string, name: string): { abi: []; bytecode: string } {
  const file = path.join(root, "artifacts", source, `${name}.json`);
  return JSON.parse(readFileSync(file, "utf8")) as { abi: []; bytecode: string };
}

async function deploy(
  signer: NonceManager,
  source: string,
  name: string,
  args: unknown[] = [],
): Promise<Contract> {
  const { abi, bytecode } = artifact(source, name);
  const contract = await new ContractFactory(abi, bytecode, signer).deploy(...args);
  await contract.waitForDeployment();
  return contract as Contract;
}

describe("opg receipt verify", function () {
  this.timeout(240_000);

  let node: ChildProcess | undefined;
  let rpc = "";
  let dir = "";
  let good: ReceiptBundle;
  let tee: Contract;
  let enclaveAddress = "";
  let verifierNode = "";
  let provider: JsonRpcProvider | undefined;

  before(async () => {
    const port = await freePort();
    node = await startNode(port);
    rpc = `http://127.0.0.1:${port}`;
    dir = await mkdtemp(path.join(tmpdir(), "opg-receipt-"));

    provider = new JsonRpcProvider(rpc, undefined, { staticNetwork: true });
    const deployer = new NonceManager(new Wallet(DEPLOYER_KEY, provider));
    const admin = await deployer.getAddress();
    const token = await deploy(deployer, "contracts/token/OPGToken.sol", "OPGToken", [
      admin,
      10n ** 27n,
    ]);
    const staking = await deploy(
      deployer,
      "contracts/mocks/MockNodeStaking.sol",
      "MockNodeStaking",
    );
    tee = await deploy(deployer, "contracts/mocks/MockTeeRegistry.sol", "MockTeeRegistry");
    const registry = await deploy(
      deployer,
      "contracts/registry/ModelRegistry.sol",
      "ModelRegistry",
    );
    const ledger = await deploy(
      deployer,
      "contracts/anchoring/InferenceLedger.sol",
      "InferenceLedger",
      [
        admin,
        await staking.getAddress(),
        await tee.getAddress(),
        await registry.getAddress(),
        await token.getAddress(),
      ],
    );

    const gpuSigner = Wallet.createRandom();
    const gpuNode = Wallet.createRandom().address;
    const enclave = Wallet.createRandom();
    enclaveAddress = enclave.address;
    verifierNode = Wallet.createRandom().address;
    await (
      await staking.getFunction("setNode")(gpuNode, 1, gpuSigner.address, true, 10n ** 22n)
    ).wait();
    await (await tee.getFunction("setEnclave")(enclave.address, verifierNode, true)).wait();

    const { chainId } = await provider.getNetwork();
    const domain = ledgerDomain(chainId, await ledger.getAddress());
    const receipts = Array.from({ length: 5 }, () => makeReceipt(gpuNode, { modelId: MODEL_ID }));
    const built = buildReceiptBatch(enclave.address, 0n, receipts, 1, {
      node: gpuNode,
      signer: gpuSigner.address,
      asOf: SIGNED_AT,
      sampleRatePpm: FULL_SAMPLE_RATE_PPM,
    });
    const signature = await signBatch(enclave, domain, built.batch);
    const tx = await ledger.getFunction("anchorBatch")(
      built.batch,
      signature,
      built.usage.modelIds,
      built.usage.counts,
    );
    await tx.wait();

    const receipt = receipts[2]!;
    const verdict = buildVerdict(receipt, receipt.outputHash, SIGNED_AT);
    good = buildReceiptBundle({
      chainId,
      ledger: await ledger.getAddress(),
      receipt,
      nodeSignature: await signReceipt(gpuSigner, domain, receipt),
      verdict,
      enclaveSignature: await signVerdict(enclave, domain, verdict),
      batchId: (await ledger.getFunction("batchIdOf")(enclave.address, 0n)) as bigint,
      proof: built.tree.proof(2),
      anchorTx: (tx as { hash: string }).hash,
    });
  });

  after(() => {
    provider?.destroy();
    if (node?.pid !== undefined) node.kill("SIGTERM");
  });

  async function write(name: string, bundle: ReceiptBundle | string): Promise<string> {
    const file = path.join(dir, name);
    await writeFile(file, typeof bundle === "string" ? bundle : formatReceiptBundle(bundle));
    return file;
  }

  it("passes every check of a good receipt and exits 0", async () => {
    const { code, stdout } = await runCli([
      "receipt",
      "verify",
      await write("good.json", good),
      "--rpc",
      rpc,
    ]);
    expect(stdout).to.include("PASS  receipt signature");
    expect(stdout).to.include("PASS  verdict enclave");
    expect(stdout).to.include("PASS  merkle proof");
    expect(stdout).to.include("PASS  verifyReceipt");
    expect(stdout).to.include("PASS  anchoring transaction");
    expect(stdout).to.not.include("FAIL");
    expect(stdout).to.include("receipt verified");
    expect(code).to.equal(0);
  });

  it("fails an altered output hash: signature, verdict and proof, and exits 1", async () => {
    const altered = { ...good, receipt: { ...good.receipt, outputHash: random32() } };
    const { code, stdout, stderr } = await runCli([
      "receipt",
      "verify",
      await write("altered.json", altered),
      "--rpc",
      rpc,
    ]);
    expect(stdout).to.match(
      /FAIL {2}receipt signature: signed by 0x[0-9a-fA-F]{40}, but NodeStaking.signerOf/,
    );
    expect(stdout).to.include("FAIL  verdict subject");
    expect(stdout).to.include("FAIL  merkle proof");
    expect(stdout).to.include("FAIL  verifyReceipt: InferenceLedger.verifyReceipt returned false");
    expect(stderr).to.include("receipt verification failed");
    expect(code).to.equal(1);
  });

  it("fails a wrong proof and a batch that was never anchored", async () => {
    const wrongProof = { ...good, proof: [random32(), ...good.proof.slice(1)] };
    const r1 = await runCli([
      "receipt",
      "verify",
      await write("proof.json", wrongProof),
      "--rpc",
      rpc,
    ]);
    expect(r1.stdout).to.include("PASS  receipt signature");
    expect(r1.stdout).to.include("FAIL  merkle proof");
    expect(r1.code).to.equal(1);
    const noBatch = { ...good, batchId: 9n };
    const r2 = await runCli([
      "receipt",
      "verify",
      await write("batch.json", noBatch),
      "--rpc",
      rpc,
    ]);
    expect(r2.stdout).to.include("FAIL  batch anchored: batch 9: LedgerUnknownBatch(9)");
    expect(r2.code).to.equal(1);
  });

  it("fails when the bundle names another chain or ledger", async () => {
    const r1 = await runCli([
      "receipt",
      "verify",
      await write("chain.json", { ...good, chainId: 1n }),
      "--rpc",
      rpc,
    ]);
    expect(r1.stdout).to.include("FAIL  chain:");
    expect(r1.code).to.equal(1);
    const elsewhere = { ...good, ledger: Wallet.createRandom().address };
    const r2 = await runCli([
      "receipt",
      "verify",
      await write("ledger.json", elsewhere),
      "--rpc",
      rpc,
    ]);
    expect(r2.stdout).to.include("FAIL  ledger contract: no contract at");
    expect(r2.code).to.equal(1);
  });

  it("fails when the anchoring transaction is not the batch's", async () => {
    const r = await runCli([
      "receipt",
      "verify",
      await write("tx.json", { ...good, anchorTx: random32() }),
      "--rpc",
      rpc,
    ]);
    expect(r.stdout).to.include("FAIL  anchoring transaction");
    expect(r.code).to.equal(1);
  });

  it("fails when the enclave is no longer active", async () => {
    await (await tee.getFunction("setEnclave")(enclaveAddress, verifierNode, false)).wait();
    try {
      const r = await runCli([
        "receipt",
        "verify",
        await write("inactive.json", good),
        "--rpc",
        rpc,
      ]);
      expect(r.stdout).to.include("FAIL  verdict enclave");
      expect(r.stdout).to.include("FAIL  batch enclave");
      expect(r.stdout).to.include("PASS  verifyReceipt");
      expect(r.code).to.equal(1);
    } finally {
      await (await tee.getFunction("setEnclave")(enclaveAddress, verifierNode, true)).wait();
    }
  });

  it("exits 2 for a malformed file, a missing file, an unreachable RPC and missing artifacts", async () => {
    const malformed = await runCli([
      "receipt",
      "verify",
      await write("bad.json", "{ nope"),
      "--rpc",
      rpc,
    ]);
    expect(malformed.stderr).to.include("not valid JSON");
    expect(malformed.code).to.equal(2);
    const wrongShape = await runCli([
      "receipt",
      "verify",
      await write("shape.json", '{"format":"x"}'),
      "--rpc",
      rpc,
    ]);
    expect(wrongShape.stderr).to.include("receipt bundle is malformed");
    expect(wrongShape.code).to.equal(2);
    const missing = await runCli(["receipt", "verify", path.join(dir, "none.json"), "--rpc", rpc]);
    expect(missing.stderr).to.include("cannot read the receipt file");
    expect(missing.code).to.equal(2);
    const port = await freePort();
    const file = await write("good.json", good);
    const down = await runCli(["receipt", "verify", file, "--rpc", `http://127.0.0.1:${port}`]);
    expect(down.stderr).to.include("cannot reach the JSON-RPC endpoint");
    expect(down.code).to.equal(2);
    const noArtifacts = await runCli(["receipt", "verify", file, "--rpc", rpc, "--artifacts", dir]);
    expect(noArtifacts.stderr).to.include("contract artifact for InferenceLedger is missing");
    expect(noArtifacts.stderr).to.include("npx hardhat build");
    expect(noArtifacts.code).to.equal(2);
    const noRpc = await runCli(["receipt", "verify", file]);
    expect(noRpc.code).to.equal(2);
  });
});
