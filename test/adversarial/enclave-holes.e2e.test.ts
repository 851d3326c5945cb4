/**
 * Issue 12's holes, each tried end to end against the processes an operator runs: a `hardhat node`
 * with the protocol deployed as production deploys it, the enclave (`opg enclave start`) and the
 * relayer (`opg relayer start`) as separate processes, and `opg explorer` for the passthrough. One
 * system is started for the whole file; every attack is asserted with the named error (HTTP status
 * and error body, or the contract's custom error and arguments) and the honest path runs next to it
 * in the same run. The holes that move the chain's time (sampling rate through governance, the
 * registration lapse and a revocation for cause) run last, in that order.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import type { Wallet } from "ethers";
import { AbiCoder, JsonRpcProvider, getAddress, id, keccak256 } from "ethers";

import { parseReceiptBundle } from "../../offchain/chain/bundle.js";
import { DigestSigner } from "../../offchain/chain/ecdsa.js";
import { FULL_SAMPLE_RATE_PPM, ledgerDomain, type Receipt } from "../../offchain/chain/eip712.js";
import { buildReceiptBatch } from "../../offchain/chain/merkle.js";
import { signBatch, signReceipt } from "../../offchain/chain/receipts.js";
import { SECP256K1_N } from "../../offchain/common/private-key.js";
import { localClock, passProposal } from "../../offchain/governance/proposals.js";
import { encodeInputs } from "../../offchain/inference/tensor.js";
import { httpRequestId } from "../../offchain/relayer/pipeline.js";
import { AUTH_HEADER, authHeader } from "../../offchain/tee/auth.js";
import { roleAccounts } from "../helpers/accounts.js";
import { devMeasurement } from "../helpers/protocol.js";
import type { HardhatNode } from "../helpers/processes.js";
import { ROOT, freePort, rpc, run, startHardhatNode } from "../helpers/processes.js";
import {
  RISK_MLP,
  deploySystem,
  getJson,
  postJson,
  relayerEnv,
  riskInput,
  startEnclave,
  startOpg,
  stopProc,
  until,
  writeRelayerConfig,
  type Proc,
  type System,
} from "../e2e/relayer-system.js";

const OPG = path.join(ROOT, "bin", "opg.mjs");
const abi = AbiCoder.defaultAbiCoder();

type Enclave = Awaited<ReturnType<typeof startEnclave>>;
interface HttpAnswer {
  status: number;
  json: Record<string, unknown>;
}

/** The enclave's clock on a local chain: the later of the wall clock and the latest block's time. */
async function enclaveTime(provider: JsonRpcProvider): Promise<bigint> {
  const block = (await provider.send("eth_getBlockByNumber", ["latest", false])) as {
    timestamp: string;
  };
  const chain = BigInt(block.timestamp);
  const wall = BigInt(Math.floor(Date.now() / 1000));
  return chain > wall ? chain : wall;
}

/** One request to the enclave, signed as auth.ts says by `signer` (or with the header given). */
async function enclaveCall(
  enclave: { url: string; address: string },
  method: "GET" | "POST",
  route: string,
  body: unknown,
  auth: { signer: DigestSigner; provider: JsonRpcProvider } | { header: string } | null,
): Promise<HttpAnswer> {
  const text = body === undefined ? "" : JSON.stringify(body);
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (auth !== null && "header" in auth) headers[AUTH_HEADER] = auth.header;
  if (auth !== null && "signer" in auth) {
    headers[AUTH_HEADER] = authHeader(
      auth.signer,
      enclave.address,
      method,
      route,
      await enclaveTime(auth.provider),
      Buffer.from(text, "utf8"),
    );
  }
  const res = await fetch(`${enclave.url}${route}`, {
    method,
    headers,
    ...(method === "POST" ? { body: text } : {}),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** `opg receipt verify` on a bundle written to `dir`. */
async function verifyBundle(
  dir: string,
  name: string,
  bundle: unknown,
  rpcUrl: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const file = path.join(dir, `${name}.json`);
  await writeFile(file, JSON.stringify(bundle));
  return run(process.execPath, [OPG, "receipt", "verify", file, "--rpc", rpcUrl]);
}

describe("adversarial e2e: issue 12's holes against a running enclave, relayer and hardhat node", function () {
  this.timeout(300_000);
  let node: HardhatNode;
  let system: System;
  let enclave: Enclave;
  let enclavePort: number;
  let relayer: Proc & { url: string };
  let dir: string;
  let outsider: Wallet;
  let outsiderAuth: { signer: DigestSigner; provider: JsonRpcProvider };
  let clientAuth: { signer: DigestSigner; provider: JsonRpcProvider };
  const retired: Proc[] = [];
  /** An honest HTTP inference, anchored, and its bundle (hole 1), verified again in hole 7. */
  let honest: { requestId: string; bundle: Record<string, unknown> };
  let inputCounter = 1_000;

  /** An honest inference through the relayer's public API. */
  async function infer(): Promise<HttpAnswer> {
    const res = await postJson(`${relayer.url}/v1/inferences`, {
      modelId: RISK_MLP.modelId,
      inputs: riskInput(inputCounter++),
    });
    expect(res.status, JSON.stringify(res.json)).to.equal(200);
    return res;
  }

  async function anchored(requestId: string): Promise<Record<string, unknown>> {
    return until(`anchoring of ${requestId}`, async () => {
      const r = await getJson(`${relayer.url}/v1/receipts/${requestId}`);
      return r.json.status === "anchored" ? (r.json.bundle as Record<string, unknown>) : null;
    }).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${relayer.output().slice(-4000)}`);
    });
  }

  before(async () => {
    node = await startHardhatNode();
    system = await deploySystem(node.url);
    enclavePort = await freePort();
    // A fixed port, so that the enclave restarted in hole 2 answers at the URL the relayer knows.
    enclave = await startEnclave(system, node.url, ["--port", String(enclavePort)]);
    const config = await writeRelayerConfig(system, enclave.url, node.url, {
      enclave: { recheckMs: 300 },
    });
    dir = config.dir;
    const proc = await startOpg(["relayer", "start", "--config", config.file], relayerEnv(system));
    relayer = { ...proc, url: String(proc.line.url) };
    ({ outsider } = await roleAccounts(system.admin, system.provider, ["outsider"]));
    outsiderAuth = { signer: new DigestSigner(outsider.privateKey), provider: system.provider };
    clientAuth = {
      signer: new DigestSigner(system.nodeSigner.privateKey),
      provider: system.provider,
    };
  });
  after(async () => {
    if (relayer !== undefined) await stopProc(relayer, "SIGKILL");
    if (enclave !== undefined) await stopProc(enclave, "SIGKILL");
    for (const p of retired) await stopProc(p, "SIGKILL");
    await system?.close();
    await node?.stop();
  });

  describe("hole 1: batch signing as a blank cheque", () => {
    it("an outsider cannot get a batch cut and signed: POST /v1/batches answers 401 without the client's credential and 403 with its own; the old POST /sign-batch does not exist (404)", async () => {
      const before = (await getJson(`${enclave.url}/info`)).json.stats as {
        nextSequence: number;
      };
      const none = await enclaveCall(enclave, "POST", "/v1/batches", { maxSize: 256 }, null);
      expect(none.status).to.equal(401);
      expect(none.json.error).to.equal("UnauthenticatedError");
      expect(none.json.message).to.equal(`missing ${AUTH_HEADER} header`);
      const own = await enclaveCall(enclave, "POST", "/v1/batches", { maxSize: 256 }, outsiderAuth);
      expect(own.status).to.equal(403);
      expect(own.json.error).to.equal("ForbiddenError");
      expect((own.json.details as { signer: string }).signer).to.equal(outsider.address);
      const old = await enclaveCall(enclave, "POST", "/sign-batch", { root: id("mine") }, null);
      expect(old.status).to.equal(404);
      expect(old.json).to.deep.include({
        error: "HttpError",
        message: "no route POST /sign-batch",
      });
      const after = (await getJson(`${enclave.url}/info`)).json.stats as { nextSequence: number };
      expect(after.nextSequence).to.equal(before.nextSequence);
    });

    it("anchorBatch with a root the outsider made up reverts LedgerInvalidBatchSigner under the real enclave's address, and LedgerInactiveEnclave under its own key", async () => {
      const { chainId } = await system.provider.getNetwork();
      const domain = ledgerDomain(chainId, await system.ledger.getAddress());
      const asOf = (await enclaveTime(system.provider)) - 10n;
      const fabricated: Receipt[] = [0, 1, 2].map((i) => ({
        requestId: id(`fabricated request ${i}`),
        modelId: RISK_MLP.modelId,
        inputHash: id(`fabricated input ${i}`),
        outputHash: id(`fabricated output ${i}`),
        node: system.gpuNode,
        execConfigHash: id("cpu"),
        timestamp: asOf,
      }));
      const signing = {
        node: system.gpuNode,
        signer: system.nodeSigner.address,
        asOf,
        sampleRatePpm: FULL_SAMPLE_RATE_PPM,
      };
      const ledger = system.ledger.connect(outsider);
      const sequence = await system.ledger.nextSequenceOf(enclave.address);
      const underReal = buildReceiptBatch(enclave.address, sequence, fabricated, 3, signing);
      await expect(
        ledger.anchorBatch(
          underReal.batch,
          await signBatch(outsider, domain, underReal.batch),
          underReal.usage.modelIds,
          underReal.usage.counts,
        ),
      )
        .to.be.revertedWithCustomError(system.ledger, "LedgerInvalidBatchSigner")
        .withArgs(enclave.address, outsider.address);
      const underOwn = buildReceiptBatch(outsider.address, 0n, fabricated, 3, signing);
      await expect(
        ledger.anchorBatch(
          underOwn.batch,
          await signBatch(outsider, domain, underOwn.batch),
          underOwn.usage.modelIds,
          underOwn.usage.counts,
        ),
      )
        .to.be.revertedWithCustomError(system.ledger, "LedgerInactiveEnclave")
        .withArgs(outsider.address);
      expect(await system.ledger.nextSequenceOf(enclave.address)).to.equal(sequence);
    });

    it("honest: a real inference through the relayer is anchored and its receipt verifies with opg receipt verify", async () => {
      const res = await infer();
      const requestId = String(res.json.requestId);
      const bundle = await anchored(requestId);
      honest = { requestId, bundle };
      const verify = await verifyBundle(dir, "honest", bundle, node.url);
      expect(verify.code, verify.stdout + verify.stderr).to.equal(0);
      expect(verify.stdout).to.match(/receipt verified: all \d+ checks passed\n/);
      expect(verify.stdout).to.not.match(/FAIL|WARN/);
    });

    it("a receipt attributed to the real GPU node but signed by another key is refused by the enclave (ForbiddenError, even on the client's authenticated path) and fails opg receipt verify (receipt signature)", async () => {
      const receipt = parseReceiptBundle(JSON.stringify(honest.bundle)).receipt;
      const { chainId } = await system.provider.getNetwork();
      const domain = ledgerDomain(chainId, await system.ledger.getAddress());
      const fabricated: Receipt = {
        ...receipt,
        requestId: id("fabricated in the node's name"),
        timestamp: await enclaveTime(system.provider),
      };
      const forged = await signReceipt(outsider, domain, fabricated);
      const item = {
        receipt: { ...fabricated, timestamp: fabricated.timestamp.toString() },
        nodeSignature: forged,
        inputs: riskInput(0),
        outputs: [],
      };
      // The outsider itself: refused at the door.
      const own = await enclaveCall(
        enclave,
        "POST",
        "/v1/receipts",
        { items: [item] },
        outsiderAuth,
      );
      expect(own.status).to.equal(403);
      expect(own.json.error).to.equal("ForbiddenError");
      // Smuggled through the client's own credential: the item is refused on its signature.
      const smuggled = await enclaveCall(
        enclave,
        "POST",
        "/v1/receipts",
        { items: [item] },
        clientAuth,
      );
      expect(smuggled.status).to.equal(200);
      const [result] = smuggled.json.results as Array<Record<string, unknown>>;
      expect(result).to.deep.include({ ok: false, status: 403, error: "ForbiddenError" });
      expect((result!.details as { signer: string }).signer).to.equal(outsider.address);
      const logged = await enclaveCall(
        enclave,
        "GET",
        `/v1/receipts/${fabricated.requestId}`,
        undefined,
        clientAuth,
      );
      expect(logged.status).to.equal(404);

      // The honest bundle with the node's signature swapped for the outsider's over the same receipt.
      const swapped = await signReceipt(outsider, domain, receipt);
      const verify = await verifyBundle(
        dir,
        "forged-signature",
        { ...honest.bundle, nodeSignature: swapped },
        node.url,
      );
      expect(verify.code, verify.stdout + verify.stderr).to.equal(1);
      expect(verify.stdout).to.contain(
        `FAIL  receipt signature: signed by ${outsider.address}, but the batch's receipts are signed by ${system.nodeSigner.address}`,
      );
      expect(verify.stderr).to.contain("VerificationError: receipt verification failed");
      // A receipt with another output under the honest proof: not in the stored root.
      const bundle = parseReceiptBundle(JSON.stringify(honest.bundle));
      expect(
        await system.ledger.verifyReceipt(
          bundle.batchId,
          { ...bundle.receipt, outputHash: id("another output") },
          bundle.proof,
        ),
      ).to.equal(false);
      expect(
        await system.ledger.verifyReceipt(bundle.batchId, bundle.receipt, bundle.proof),
      ).to.equal(true);
    });
  });

  describe("hole 4: contradicting an honest node", () => {
    it("an outsider cannot get a verdict: POST /v1/receipts answers 401 without a credential, 403 with its own, and GET /v1/receipts/<id> likewise", async () => {
      const res = await infer();
      const requestId = String(res.json.requestId);
      const receipt = res.json.receipt as Record<string, unknown>;
      const item = {
        receipt,
        nodeSignature: res.json.nodeSignature,
        inputs: riskInput(inputCounter - 1),
        outputs: res.json.outputs,
      };
      const none = await enclaveCall(enclave, "POST", "/v1/receipts", { items: [item] }, null);
      expect(none.status).to.equal(401);
      expect(none.json.error).to.equal("UnauthenticatedError");
      const own = await enclaveCall(
        enclave,
        "POST",
        "/v1/receipts",
        { items: [item] },
        outsiderAuth,
      );
      expect(own.status).to.equal(403);
      expect(own.json.error).to.equal("ForbiddenError");
      const look = await enclaveCall(enclave, "GET", `/v1/receipts/${requestId}`, undefined, null);
      expect(look.status).to.equal(401);
      const lookOwn = await enclaveCall(
        enclave,
        "GET",
        `/v1/receipts/${requestId}`,
        undefined,
        outsiderAuth,
      );
      expect(lookOwn.status).to.equal(403);
    });

    it("one verdict per receipt: a repeat is answered with the stored verdict (GET /v1/receipts/<id> and a second POST), and the honest GPU output within the model's tolerance is agreed", async () => {
      const res = await infer();
      const requestId = String(res.json.requestId);
      const v = res.json.verification as {
        selected: boolean;
        verdict: { agree: boolean; outputHash: string; receiptHash: string; timestamp: string };
        enclaveSignature: string;
      };
      expect(v.selected).to.equal(true);
      expect(v.verdict.agree).to.equal(true);
      expect(v.verdict.outputHash).to.equal(
        String((res.json.receipt as { outputHash: string }).outputHash).toLowerCase(),
      );
      const logged = await enclaveCall(
        enclave,
        "GET",
        `/v1/receipts/${requestId}`,
        undefined,
        clientAuth,
      );
      expect(logged.status).to.equal(200);
      expect(logged.json.verdict).to.deep.equal(v.verdict);
      expect(logged.json.signature).to.equal(v.enclaveSignature);
      expect(logged.json.duplicate).to.equal(true);
      const tolerance = BigInt(
        (
          (await getJson(`${relayer.url}/v1/models`)).json.models as Array<{
            modelId: string;
            tolerance: number;
          }>
        ).find((m) => m.modelId === RISK_MLP.modelId)!.tolerance,
      );
      expect(BigInt(String(logged.json.maxDiff)) <= tolerance).to.equal(true);
      // The same receipt sent again (the client's own path): the stored verdict, not a new draw.
      const again = await enclaveCall(
        enclave,
        "POST",
        "/v1/receipts",
        {
          items: [
            {
              receipt: res.json.receipt,
              nodeSignature: res.json.nodeSignature,
              inputs: riskInput(inputCounter - 1),
              outputs: res.json.outputs,
            },
          ],
        },
        clientAuth,
      );
      expect(again.status).to.equal(200);
      const [answer] = again.json.results as Array<{
        ok: boolean;
        result: Record<string, unknown>;
      }>;
      expect(answer!.ok).to.equal(true);
      expect(answer!.result.duplicate).to.equal(true);
      expect(answer!.result.verdict).to.deep.equal(v.verdict);
      expect(answer!.result.signature).to.equal(v.enclaveSignature);
      await anchored(requestId);
    });
  });

  describe("hole 5: the open door", () => {
    it("every client route answers outsiders 401 (no or malformed credential) or 403 (its own key)", async () => {
      const routes: Array<["GET" | "POST", string, unknown]> = [
        ["POST", "/v1/receipts", { items: [{}] }],
        ["POST", "/v1/batches", { maxSize: 1 }],
        ["GET", "/v1/batches?from=0", undefined],
        ["GET", `/v1/receipts/${honest.requestId}`, undefined],
      ];
      for (const [method, route, body] of routes) {
        const none = await enclaveCall(enclave, method, route, body, null);
        expect(none.status, `${method} ${route}`).to.equal(401);
        expect(none.json.error).to.equal("UnauthenticatedError");
        const bad = await enclaveCall(enclave, method, route, body, { header: "1.0xdead" });
        expect(bad.status, `${method} ${route}`).to.equal(401);
        expect(bad.json.message).to.equal(`malformed ${AUTH_HEADER} header`);
        const own = await enclaveCall(enclave, method, route, body, outsiderAuth);
        expect(own.status, `${method} ${route}`).to.equal(403);
        expect(own.json.error).to.equal("ForbiddenError");
        expect(own.json.message).to.equal(
          `x-opg-auth is not signed by node ${system.gpuNode}'s signer (this is enclave ${enclave.address})`,
        );
      }
    });

    it("2,000 outsider calls leave the enclave up, its log untouched, and serving the honest client", async () => {
      const before = (await getJson(`${enclave.url}/info`)).json.stats as Record<string, number>;
      const statuses = new Map<number, number>();
      const kinds = [
        () => enclaveCall(enclave, "POST", "/v1/receipts", { items: [{}] }, null),
        () => enclaveCall(enclave, "POST", "/v1/batches", { maxSize: 1 }, outsiderAuth),
        () => enclaveCall(enclave, "GET", "/v1/batches?from=0", undefined, { header: "x" }),
        () => enclaveCall(enclave, "GET", `/v1/receipts/${honest.requestId}`, undefined, null),
      ];
      for (let wave = 0; wave < 2_000 / 50; wave++) {
        const answers = await Promise.all(
          Array.from({ length: 50 }, (_, i) => kinds[(wave * 50 + i) % kinds.length]!()),
        );
        for (const a of answers) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
      }
      expect(Object.fromEntries(statuses)).to.deep.equal({ 401: 1_500, 403: 500 });
      expect(enclave.child.exitCode).to.equal(null);
      const after = (await getJson(`${enclave.url}/info`)).json.stats as Record<string, number>;
      expect(after.logged).to.equal(before.logged);
      expect(after.nextSequence).to.equal(before.nextSequence);
      // The honest client, served as before.
      const res = await infer();
      await anchored(String(res.json.requestId));
    });
  });

  describe("hole 6: HTTP ids squatting on-chain ids", () => {
    it("HTTP jobs cannot take the next on-chain request ids (a requestId field is refused, an idempotency key equal to one is derived into the HTTP id space); the on-chain requests are fulfilled with their own receipts", async () => {
      const ledgerAddress = await system.ledger.getAddress();
      const { chainId } = await system.provider.getNetwork();
      const requested = await system.ledger.queryFilter(
        system.ledger.filters.InferenceRequested(),
        system.deployBlock,
      );
      // InferenceLedger: requestId = keccak256(abi.encode(block.chainid, address(this), ++_requestNonce)).
      const predicted = [1, 2].map((k) =>
        keccak256(
          abi.encode(
            ["uint256", "address", "uint256"],
            [chainId, ledgerAddress, requested.length + k],
          ),
        ),
      );
      const field = await postJson(`${relayer.url}/v1/inferences`, {
        modelId: RISK_MLP.modelId,
        inputs: riskInput(1),
        requestId: predicted[0],
      });
      expect(field.status).to.equal(400);
      expect(field.json.error).to.equal("InputError");
      expect(String(field.json.message)).to.match(/must NOT have additional properties/);
      const squatted: string[] = [];
      for (const p of predicted) {
        const res = await postJson(`${relayer.url}/v1/inferences`, {
          modelId: RISK_MLP.modelId,
          inputs: riskInput(inputCounter++),
          idempotencyKey: p,
        });
        expect(res.status, JSON.stringify(res.json)).to.equal(200);
        expect(res.json.requestId).to.not.equal(p);
        expect(res.json.requestId).to.equal(httpRequestId(getAddress(system.gpuNode), p));
        squatted.push(String(res.json.requestId));
      }

      const input = encodeInputs([
        {
          name: "features",
          dtype: "float32",
          dims: [1, 16],
          data: Float32Array.from(riskInput(4242).features.data),
        },
      ]);
      const ledger = system.ledger.connect(system.requester);
      const onChain: string[] = [];
      for (let i = 0; i < 2; i++) {
        const receipt = await (
          await ledger.requestInference(RISK_MLP.modelId, input, 0, 3600, 0)
        ).wait();
        const log = receipt!.logs
          .map((l) => system.ledger.interface.parseLog(l))
          .find((p) => p?.name === "InferenceRequested");
        onChain.push(String(log!.args.requestId));
      }
      expect(onChain).to.deep.equal(predicted);
      await rpc(node.url, "evm_mine"); // the listener's one confirmation
      for (const requestId of onChain) {
        await until(`fulfilment of ${requestId}`, async () =>
          BigInt(await system.ledger.requestHashOf(requestId)) === 0n ? true : null,
        ).catch((e: unknown) => {
          throw new Error(`${String(e)}\n${relayer.output().slice(-4000)}`);
        });
        const bundle = parseReceiptBundle(JSON.stringify(await anchored(requestId)));
        expect(bundle.receipt.requestId).to.equal(requestId);
        expect(bundle.receipt.inputHash).to.equal(keccak256(input));
      }
      const fulfilled = await system.ledger.queryFilter(
        system.ledger.filters.InferenceFulfilled(),
        system.deployBlock,
      );
      expect(fulfilled.map((e) => e.args.requestId)).to.include.members(onChain);
      for (const requestId of squatted) {
        const bundle = parseReceiptBundle(JSON.stringify(await anchored(requestId)));
        expect(bundle.receipt.requestId).to.equal(requestId);
      }
    });
  });

  describe("hole 2: sequence wedging", () => {
    it("outsiders cannot consume sequence numbers; the relayer's /readyz says ready while all is well", async () => {
      const onChain = await system.ledger.nextSequenceOf(enclave.address);
      for (let i = 0; i < 20; i++) {
        const res = await enclaveCall(enclave, "POST", "/v1/batches", { maxSize: 1 }, outsiderAuth);
        expect(res.status).to.equal(403);
      }
      const res = await infer();
      await anchored(String(res.json.requestId));
      expect(await system.ledger.nextSequenceOf(enclave.address)).to.equal(onChain + 1n);
      const ready = await getJson(`${relayer.url}/readyz`);
      expect(ready).to.deep.equal({ status: 200, json: { ready: true } });
    });

    it("the enclave stopped: /readyz answers 503 with the reason and inferences 503; restarted with a new key, /readyz names the unchecked key until it is registered, then anchoring resumes by itself", async () => {
      await stopProc(enclave, "SIGKILL");
      retired.push(enclave);
      const down = await until("readyz to see the enclave gone", async () => {
        const r = await getJson(`${relayer.url}/readyz`);
        return r.status === 503 ? r : null;
      });
      expect(down.json).to.deep.equal({ ready: false, reason: "enclave unreachable" });
      const refused = await postJson(`${relayer.url}/v1/inferences`, {
        modelId: RISK_MLP.modelId,
        inputs: riskInput(inputCounter++),
      });
      expect(refused.status).to.equal(503);
      expect(refused.json.error).to.equal("EnclaveRequestError");

      const restarted = await startEnclave(system, node.url, ["--port", String(enclavePort)], {
        register: false,
      });
      enclave = restarted;
      expect(restarted.url).to.equal(retired[0]!.line.url);
      expect(restarted.address).to.not.equal(String(retired[0]!.line.enclave));
      // From the moment the new key answers, /readyz must not say ready: it is not checked yet.
      for (let i = 0; i < 10; i++) {
        const r = await getJson(`${relayer.url}/readyz`);
        expect(r.status, JSON.stringify(r.json)).to.equal(503);
        expect(String(r.json.reason)).to.contain(`now holds key ${restarted.address}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const unchecked = await until("readyz to say why the new key is refused", async () => {
        const r = await getJson(`${relayer.url}/readyz`);
        return r.status === 503 && String(r.json.reason).includes("does not pass its check yet")
          ? r
          : null;
      });
      expect(String(unchecked.json.reason)).to.match(
        new RegExp(
          `^the enclave at ${restarted.url.replace(/[.]/g, "\\.")}/? now holds key ${restarted.address}, which does not pass its check yet: `,
        ),
      );
      // The operator registers the new key with its attestation, as `opg enclave attestation` gives it.
      const nonce = Buffer.from(id(`restart-${restarted.address}`).slice(2), "hex").toString("hex");
      const att = (await getJson(`${restarted.url}/attestation?nonce=${nonce}`)).json as {
        document: string;
      };
      await system.registerEnclave(restarted.address, Buffer.from(att.document, "base64"));
      await until("readyz ready again", async () => {
        const r = await getJson(`${relayer.url}/readyz`);
        return r.status === 200 ? r : null;
      });
      const res = await infer();
      const bundle = await anchored(String(res.json.requestId));
      const parsed = parseReceiptBundle(JSON.stringify(bundle));
      expect(parsed.batchId >> 64n).to.equal(BigInt(restarted.address));
      expect(await system.ledger.nextSequenceOf(restarted.address)).to.equal(1n);
    });
  });

  describe("hole 9: the explorer's passthrough", () => {
    let explorer: { child: ChildProcess; url: string } | undefined;
    after(async () => {
      if (explorer !== undefined && explorer.child.exitCode === null) {
        await new Promise<void>((resolve) => {
          explorer!.child.once("exit", () => resolve());
          explorer!.child.kill("SIGTERM");
        });
      }
    });

    it("opg explorer refuses a repeated or case-variant method key, a 0..0xffffffffff eth_getLogs (400), an oversized body (413) and a malformed URI (400); an honest call is forwarded", async () => {
      const dist = await mkdtemp(path.join(tmpdir(), "opg-adv-dist-"));
      await writeFile(path.join(dist, "index.html"), "<!doctype html><title>OPG</title>");
      // The test deployment's record names its plan by a placeholder path; point it at the plan it used.
      const record = JSON.parse(
        await readFile(path.join(system.deploymentDir, "deployment.json"), "utf8"),
      ) as { vesting: { planFile: string } };
      record.vesting.planFile = path.join(ROOT, "deployments/localhost/vesting-plan.json");
      const deployment = await mkdtemp(path.join(tmpdir(), "opg-adv-deployment-"));
      await writeFile(path.join(deployment, "deployment.json"), JSON.stringify(record));
      const child = spawn(
        process.execPath,
        [
          OPG,
          "explorer",
          "--rpc",
          node.url,
          "--port",
          "0",
          "--deployment",
          deployment,
          "--dist",
          dist,
        ],
        { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
      );
      let output = "";
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no explorer:\n${output}`)), 60_000);
        const onData = (d: Buffer): void => {
          output += d.toString();
          const m = /OPG explorer: (http:\/\/\S+)/.exec(output);
          if (m !== null) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        };
        child.stdout.on("data", onData);
        child.stderr.on("data", onData);
        child.on("exit", (code) => reject(new Error(`explorer exited ${code}:\n${output}`)));
      });
      explorer = { child, url };
      const rpcUrl = new URL("rpc", url).toString();
      const raw = async (body: string): Promise<HttpAnswer> => {
        const res = await fetch(rpcUrl, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        });
        return { status: res.status, json: (await res.json()) as Record<string, unknown> };
      };
      const errorOf = (a: HttpAnswer) => a.json.error as { code: number; message: string };

      const twice = await raw(
        '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","method":"eth_sendTransaction","params":[]}',
      );
      expect(twice.status).to.equal(400);
      expect(errorOf(twice)).to.deep.equal({
        code: -32600,
        message: 'invalid JSON-RPC request: the key "method" appears twice in one object',
      });
      const escaped = await raw(
        '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","\\u006dethod":"evm_mine","params":[]}',
      );
      expect(escaped.status).to.equal(400);
      expect(errorOf(escaped).message).to.contain('the key "method" appears twice');
      const variant = await raw(
        '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","Method":"eth_sendTransaction","params":[]}',
      );
      expect(variant.status).to.equal(400);
      expect(errorOf(variant).message).to.equal(
        'invalid JSON-RPC request: the call has the unexpected key "Method" (a call has only jsonrpc, id, method, params)',
      );
      const wide = await raw(
        JSON.stringify({
          jsonrpc: "2.0",
          id: 2,
          method: "eth_getLogs",
          params: [{ fromBlock: "0x0", toBlock: "0xffffffffff" }],
        }),
      );
      expect(wide.status).to.equal(400);
      expect(errorOf(wide).code).to.equal(-32005);
      expect(errorOf(wide).message).to.contain(
        "eth_getLogs block range 0 to 1099511627775 is 1099511627776 blocks, more than this explorer's cap of 10000",
      );
      const big = await raw(
        JSON.stringify({
          jsonrpc: "2.0",
          id: 3,
          method: "eth_chainId",
          params: ["x".repeat(1 << 20)],
        }),
      );
      expect(big.status).to.equal(413);
      expect(errorOf(big).message).to.equal(`request body too large: more than ${1 << 20} bytes`);
      const uri = await fetch(new URL("/%E0%A4%A", url));
      expect(uri.status).to.equal(400);
      expect(await uri.text()).to.equal('malformed URI: "%E0%A4%A" is not valid percent-encoding');
      const write = await raw(
        JSON.stringify({ jsonrpc: "2.0", id: 4, method: "eth_sendTransaction", params: [{}] }),
      );
      expect(errorOf(write)).to.deep.include({ code: -32601 });

      // Honest calls.
      const chain = await raw(JSON.stringify({ jsonrpc: "2.0", id: 5, method: "eth_chainId" }));
      expect(chain).to.deep.equal({
        status: 200,
        json: { jsonrpc: "2.0", id: 5, result: "0x7a69" },
      });
      const logs = await raw(
        JSON.stringify({
          jsonrpc: "2.0",
          id: 6,
          method: "eth_getLogs",
          params: [
            {
              fromBlock: "earliest",
              toBlock: "latest",
              address: await system.ledger.getAddress(),
              topics: [system.ledger.interface.getEvent("BatchAnchored").topicHash],
            },
          ],
        }),
      );
      expect(logs.status, JSON.stringify(logs.json)).to.equal(200);
      const anchoredLogs = await system.ledger.queryFilter(
        system.ledger.filters.BatchAnchored(),
        0,
      );
      expect((logs.json.result as unknown[]).length).to.equal(anchoredLogs.length);
    });
  });

  describe("hole 10: key input", () => {
    const report = (key: string) =>
      run(
        process.execPath,
        [
          OPG,
          "evidence",
          "report",
          "--enclave",
          enclave.url,
          "--rpc",
          node.url,
          "--ledger",
          system.ledger.target as string,
          "--key-env",
          "OPG_ADV_KEY",
        ],
        { OPG_ADV_KEY: key },
      );

    it("opg evidence report with a key of all zeros, or at the curve order, exits 2 with an InputError naming the variable (never the key); a valid key runs", async () => {
      const zero = `0x${"00".repeat(32)}`;
      const order = `0x${SECP256K1_N.toString(16)}`;
      const [z, n, ok] = await Promise.all([
        report(zero),
        report(order),
        report(`0x${(SECP256K1_N - 1n).toString(16)}`),
      ]);
      expect(z.code, z.stderr).to.equal(2);
      expect(z.stderr).to.contain(
        "InputError: OPG_ADV_KEY is not a valid secp256k1 private key: it is zero",
      );
      expect(n.code, n.stderr).to.equal(2);
      expect(n.stderr).to.contain(
        "InputError: OPG_ADV_KEY is not a valid secp256k1 private key: it is not below the curve order n",
      );
      expect(n.stderr + n.stdout).to.not.contain(SECP256K1_N.toString(16));
      expect(ok.code, ok.stdout + ok.stderr).to.equal(0);
      expect(ok.stdout).to.contain("no evidence published after that index");
    });
  });

  // Last: these move the chain's time by days.
  describe("hole 3: the sampling draw asked in advance", () => {
    it("there is no route to ask for a draw (404), the receipt route that draws answers outsiders 401; GET /info shows the chain's rate and follows governance's setSampleRate", async () => {
      const ask = await enclaveCall(enclave, "POST", "/verify", { receipt: {} }, null);
      expect(ask.status).to.equal(404);
      expect(ask.json.message).to.equal("no route POST /verify");
      const draw = await enclaveCall(enclave, "POST", "/v1/receipts", { items: [{}] }, null);
      expect(draw.status).to.equal(401);

      const info = (await getJson(`${enclave.url}/info`)).json;
      expect(info.sampleRatePpm).to.equal(Number(await system.ledger.sampleRate()));
      const target = Number(info.sampleRatePpm) === 500_000 ? 250_000 : 500_000;
      await system.setSampleRate(target, [enclave.address]);
      expect(Number(await system.ledger.sampleRate())).to.equal(target);
      await until(
        "GET /info to follow the chain's rate",
        async () => {
          const r = await getJson(`${enclave.url}/info`);
          return r.json.sampleRatePpm === target ? r : null;
        },
        30_000,
      );
      // Honest: requests still anchor at the new rate; each answer says the rate it was drawn at.
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await infer();
        ids.push(String(res.json.requestId));
      }
      for (const requestId of ids) {
        const logged = await enclaveCall(
          enclave,
          "GET",
          `/v1/receipts/${requestId}`,
          undefined,
          clientAuth,
        );
        expect(logged.json.sampleRatePpm).to.equal(target);
        await anchored(requestId);
      }
    });
  });

  describe("hole 7: receipts after the enclave's registration lapses", () => {
    it("past the registration's expiry opg receipt verify still passes; after governance revokes the image for cause it passes with the named warning", async () => {
      for (const key of [String(retired[0]!.line.enclave), enclave.address]) {
        const record = await system.tee.getEnclave(key);
        const now = BigInt((await system.provider.getBlock("latest"))!.timestamp);
        if (record.expiresAt > now) {
          await rpc(node.url, "evm_increaseTime", [Number(record.expiresAt - now) + 60]);
          await rpc(node.url, "evm_mine");
        }
        expect(await system.tee.isActiveEnclave(key)).to.equal(false);
      }
      const lapsed = await verifyBundle(dir, "lapsed", honest.bundle, node.url);
      expect(lapsed.code, lapsed.stdout + lapsed.stderr).to.equal(0);
      expect(lapsed.stdout).to.match(/receipt verified: all \d+ checks passed\n/);
      expect(lapsed.stdout).to.not.match(/FAIL|WARN/);

      // Governance revokes the enclave image for cause: a governor proposal through the timelock.
      const clock = new JsonRpcProvider(node.url, undefined, {
        staticNetwork: true,
        cacheTimeout: -1,
      });
      await passProposal(
        system.governance,
        { proposer: system.proposer, voters: [system.proposer] },
        {
          calls: [
            {
              target: await system.tee.getAddress(),
              value: 0n,
              data: system.tee.interface.encodeFunctionData("revokeMeasurement", [
                devMeasurement(),
                true,
              ]),
            },
          ],
          description: "adversarial e2e: revoke the enclave image for cause",
        },
        localClock(clock),
      );
      clock.destroy();
      const status = await system.tee.measurementStatus(devMeasurement());
      expect(status.revokedForCause).to.equal(true);
      const revoked = await verifyBundle(dir, "revoked", honest.bundle, node.url);
      expect(revoked.code, revoked.stdout + revoked.stderr).to.equal(0);
      expect(revoked.stdout).to.match(
        /WARN {2}batch enclave: .* was revoked for cause at .* \[warning: enclave image revoked for cause\]/,
      );
      expect(revoked.stdout).to.match(
        /receipt verified: all \d+ checks passed, with warnings: enclave image revoked for cause/,
      );
    });
  });
});
