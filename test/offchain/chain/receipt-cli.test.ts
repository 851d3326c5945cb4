/**
 * `opg receipt verify` end to end: a `hardhat node` JSON-RPC chain started here (loopback, free
 * port, stopped after) with the protocol deployed as production deploys it (test/e2e/relayer-system:
 * NodeStaking, TeeRegistry, InferenceLedger, a governor and its timelock), an enclave key registered
 * for the TEE node, a batch of the GPU node's receipts anchored, then the CLI run as a child process
 * on good, altered and malformed bundle files, and after the registry changed.
 */
import { execFile } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { expect } from "chai";
import { Wallet } from "ethers";

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
import { buildProposal } from "../../../offchain/governance/actions.js";
import { localClock, passProposal } from "../../../offchain/governance/proposals.js";
import { MODEL_ID, makeReceipt, random32 } from "../../contracts/anchoring/helpers.js";
import { deploySystem, devMeasurement, type System } from "../../e2e/relayer-system.js";
import {
  freePort,
  rpc as rpcCall,
  startHardhatNode,
  type HardhatNode,
} from "../../helpers/processes.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

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

describe("opg receipt verify", function () {
  this.timeout(300_000);

  let node: HardhatNode | undefined;
  let system: System;
  let rpc = "";
  let dir = "";
  let good: ReceiptBundle;

  before(async () => {
    node = await startHardhatNode();
    rpc = node.url;
    dir = await mkdtemp(path.join(tmpdir(), "opg-receipt-"));
    system = await deploySystem(rpc);

    // The TEE node's enclave key, registered with its (development) attestation.
    const enclave = Wallet.createRandom();
    await system.registerEnclave(enclave.address, new Uint8Array([1]));
    // Receipts dated at the registration (not at a "latest" block the provider may still have
    // cached from before it): the enclave answers for what it signed from registeredAt on.
    const asOf = BigInt((await system.tee.getEnclave(enclave.address)).registeredAt);

    const { chainId } = await system.provider.getNetwork();
    const domain = ledgerDomain(chainId, await system.ledger.getAddress());
    const receipts = Array.from({ length: 5 }, () =>
      makeReceipt(system.gpuNode, { modelId: MODEL_ID, timestamp: asOf }),
    );
    const built = buildReceiptBatch(enclave.address, 0n, receipts, 1, {
      node: system.gpuNode,
      signer: system.nodeSigner.address,
      asOf,
      sampleRatePpm: FULL_SAMPLE_RATE_PPM,
    });
    const signature = await signBatch(enclave, domain, built.batch);
    const tx = await system.ledger.connect(system.admin).getFunction("anchorBatch")(
      built.batch,
      signature,
      built.usage.modelIds,
      built.usage.counts,
    );
    await tx.wait();

    const receipt = receipts[2]!;
    const verdict = buildVerdict(receipt, receipt.outputHash, asOf);
    good = buildReceiptBundle({
      chainId,
      ledger: await system.ledger.getAddress(),
      receipt,
      nodeSignature: await signReceipt(system.nodeSigner, domain, receipt),
      verdict,
      enclaveSignature: await signVerdict(enclave, domain, verdict),
      batchId: await system.ledger.getFunction("batchIdOf")(enclave.address, 0n),
      proof: built.tree.proof(2),
      anchorTx: (tx as { hash: string }).hash,
    });
  });

  after(async () => {
    await system?.close();
    await node?.stop();
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
      /FAIL {2}receipt signature: signed by 0x[0-9a-fA-F]{40}, but the batch's receipts are signed by/,
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

  it("still passes once the enclave's registration has lapsed: validity rests on what the chain recorded at anchoring", async () => {
    const ttl = Number(await system.tee.registrationTtl());
    await rpcCall(rpc, "evm_increaseTime", [ttl + 60]);
    await rpcCall(rpc, "evm_mine");
    const r = await runCli(["receipt", "verify", await write("lapsed.json", good), "--rpc", rpc]);
    expect(r.stdout).to.match(
      /PASS {2}batch enclave: 0x[0-9a-fA-F]{40} was registered to VERIFIER node/,
    );
    expect(r.stdout).to.include("PASS  verdict enclave");
    expect(r.stdout).to.not.include("FAIL");
    expect(r.code, r.stdout + r.stderr).to.equal(0);
  });

  it("shows a named warning, not a silent pass, once governance revokes the enclave's image for cause", async () => {
    const proposal = await buildProposal(
      { action: "revoke-measurement", measurement: devMeasurement(), forCause: "true" },
      { addresses: system.governance.addresses },
    );
    await passProposal(
      system.governance,
      { proposer: system.proposer, voters: [system.proposer] },
      proposal,
      localClock(system.provider),
    );
    const r = await runCli(["receipt", "verify", await write("revoked.json", good), "--rpc", rpc]);
    expect(r.stdout).to.match(
      /WARN {2}batch enclave: .* revoked for cause .*\[warning: enclave image revoked for cause\]/,
    );
    expect(r.stdout).to.include("WARN  verdict enclave");
    expect(r.stdout).to.include("PASS  verifyReceipt");
    expect(r.stdout).to.include("receipt verified: all");
    expect(r.stdout).to.include("with warnings: enclave image revoked for cause");
    expect(r.code).to.equal(0);
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
