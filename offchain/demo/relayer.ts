/**
 * The services part of `npm run demo`: the embedded chain served over JSON-RPC on loopback
 * (offchain/chain/rpc-bridge.ts), the demo's enclave behind its HTTP API (offchain/tee/server.ts),
 * and the relayer (offchain/relayer/service.ts) started as an operator starts it, from a validated
 * config, checking the enclave's attestation and registration before it serves anything. Requests
 * arrive over HTTP and on chain; the relayer infers, has the enclave check a sample, batches and
 * anchors; a receipt fetched from its API is verified against the chain over JSON-RPC.
 */
import type { Server } from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import type { Signer } from "ethers";
import { HDNodeWallet, JsonRpcProvider, Wallet, getAddress } from "ethers";
import type { Logger } from "pino";

import { loadLedgerAbis } from "../chain/artifacts.js";
import { parseReceiptBundle } from "../chain/bundle.js";
import type { Eip1193Provider } from "../chain/rpc-bridge.js";
import { startRpcBridge } from "../chain/rpc-bridge.js";
import { formatChecks, verifyReceiptBundle } from "../chain/verify.js";
import { InputError } from "../common/errors.js";
import type { System } from "../deploy/system.js";
import { encodeInputs } from "../inference/tensor.js";
import { parseRelayerConfig } from "../relayer/config.js";
import { RelayerService } from "../relayer/service.js";
import type { Clock } from "../chain/clock.js";
import type { DevAttestor } from "../tee/devAttestation.js";
import type { Enclave } from "../tee/enclave.js";
import { createEnclaveServer, listen } from "../tee/server.js";

import { features } from "./anchoring.js";
import type { Narrator } from "./narrator.js";

/** Hardhat's default accounts (the embedded chain's). */
const HARDHAT_MNEMONIC = "test test test test test test test test test test test junk";
const HARDHAT_ACCOUNTS = 20;
/** Of the receipts the relayer answers over HTTP, the share the enclave re-executes (set by governance). */
export const DEMO_SAMPLE_RATE_PPM = 500_000;
const HTTP_REQUESTS = 4;
const WAIT_MS = 60_000;

export interface RelayerDemoContext {
  /** The embedded chain (Hardhat's in-process connection). */
  provider: Eip1193Provider;
  system: System;
  /** Block the ledger was deployed at (where the relayer's event scans start). */
  deployBlock: number;
  /** The enclave registered in TeeRegistry: the one served. */
  enclave: Enclave;
  /** Its development attestor (the root certificate the relayer is told to trust). */
  attestor: DevAttestor;
  /** The enclave's clock. */
  clock: Clock;
  /** Sets InferenceLedger's sample rate through governance (parts per million). */
  setSampleRate: (ratePpm: number) => Promise<void>;
  modelId: string;
  gpuNode: string;
  /** The GPU node's signer (NodeStaking.signerOf): a Hardhat default account. */
  gpuSigner: Signer;
  /** The relayer's transaction account: a Hardhat default account. */
  relayer: Signer;
  /** Requests an inference on chain. */
  requester: Signer;
  /** Mines one block (the listener's confirmation). */
  mine: () => Promise<void>;
  modelsDir: string;
  gpuProvider: "auto" | "cpu";
  /** Where the services log (warnings and errors). */
  log: Logger;
  n: Narrator;
}

export interface RelayerDemoResult {
  /** Ids of the requests the relayer served (HTTP, then the on-chain one). */
  requestIds: string[];
  /** Batches the relayer anchored. */
  batchIds: bigint[];
}

interface ReceiptView {
  requestId: string;
  status: string;
  receipt: { node: string; outputHash: string };
  outputs: Array<{ values: string[]; scale: string }>;
  verification: {
    selected: boolean;
    enclave: string;
    verdict?: { agree: boolean; outputHash: string };
  };
  batch: { sequence: string; batchId: string | null; anchorTx: string | null } | null;
  bundle: unknown;
}

/** The private key of a Hardhat default account, checked against the address the flow uses. */
export function hardhatAccountKey(address: string): Wallet {
  const wanted = getAddress(address);
  for (let i = 0; i < HARDHAT_ACCOUNTS; i++) {
    const w = HDNodeWallet.fromPhrase(HARDHAT_MNEMONIC, undefined, `m/44'/60'/0'/0/${i}`);
    if (w.address === wanted) return new Wallet(w.privateKey);
  }
  throw new InputError("not one of Hardhat's default accounts", {
    details: { address: wanted, searched: HARDHAT_ACCOUNTS },
  });
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  const body = (await res.json()) as T;
  if (!res.ok) {
    throw new InputError(`GET ${url} answered ${res.status}`, { details: { body } });
  }
  return body;
}

async function postJson<T>(url: string, body: unknown): Promise<T> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = (await res.json()) as T;
  if (!res.ok) {
    throw new InputError(`POST ${url} answered ${res.status}`, { details: { body: answer } });
  }
  return answer;
}

/** Polls `fn` until it returns non-null. */
async function until<T>(what: string, fn: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await fn();
    if (value !== null) return value;
    if (Date.now() > deadline) {
      throw new InputError(`timed out waiting for ${what}`, { details: { ms: WAIT_MS } });
    }
    await sleep(50);
  }
}

function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.closeAllConnections();
    server.close((error) => (error === undefined ? resolve() : reject(error)));
  });
}

const short = (hex: string): string => `${hex.slice(0, 10)}...`;

export async function runRelayerDemo(ctx: RelayerDemoContext): Promise<RelayerDemoResult> {
  const { n, system } = ctx;
  const ledger = system.ledger;
  const ledgerAddress = await ledger.getAddress();
  n.section("The relayer and the enclave as services: requests over HTTP and on chain");

  const work = await mkdtemp(path.join(tmpdir(), "opg-demo-relayer-"));
  const bridge = await startRpcBridge({ provider: ctx.provider });
  await ctx.setSampleRate(DEMO_SAMPLE_RATE_PPM);
  await ctx.enclave.refresh();
  n.say(
    `governance set InferenceLedger's sample rate to ${DEMO_SAMPLE_RATE_PPM / 10_000} %: the enclave reads it from the chain, and the chain refuses a batch drawn at less`,
  );
  const enclaveServer = createEnclaveServer({
    enclave: ctx.enclave,
    clock: ctx.clock,
    pcrs: ctx.attestor.measurement(),
    devRootPem: ctx.attestor.rootPem,
    logger: ctx.log.child({ part: "enclave" }),
  });
  let relayer: RelayerService | null = null;
  let result: RelayerDemoResult;
  const reader = new JsonRpcProvider(bridge.url, undefined, { staticNetwork: true });
  try {
    const enclaveUrl = await listen(enclaveServer, 0);
    const rootFile = path.join(work, "enclave-root.pem");
    await writeFile(rootFile, ctx.attestor.rootPem);
    const { chainId } = await reader.getNetwork();
    n.say(`JSON-RPC bridge to the embedded chain: ${bridge.url} (loopback; reads and writes)`);
    n.say(
      `enclave ${ctx.enclave.address} serves its HTTP API at ${enclaveUrl}; its development root certificate: ${rootFile}`,
    );

    const gpuKey = hardhatAccountKey(await ctx.gpuSigner.getAddress());
    const txKey = hardhatAccountKey(await ctx.relayer.getAddress());
    const config = parseRelayerConfig(
      {
        chain: {
          rpcUrl: bridge.url,
          chainId: Number(chainId),
          ledger: ledgerAddress,
          deployBlock: ctx.deployBlock,
          pollIntervalMs: 50,
        },
        node: { address: ctx.gpuNode },
        enclave: {
          url: enclaveUrl,
          attestation: { root: rootFile },
        },
        models: {
          dir: ctx.modelsDir,
          engine: { provider: ctx.gpuProvider, allowCpuFallback: true },
        },
        api: { port: 0 },
        batch: { maxSize: 64, maxAgeMs: 200 },
        listener: { confirmations: 1 },
        store: { path: path.join(work, "relayer.db") },
        log: { level: "warn" },
      },
      "demo",
    );
    // As `opg relayer start` does: it reaches the chain at chain.rpcUrl (the bridge).
    relayer = await RelayerService.create(
      config,
      { nodeSigner: gpuKey, txSigner: txKey },
      ctx.log.child({ part: "relayer" }),
    );
    const url = await relayer.start();
    n.say(
      `relayer at ${url}: its start-up check passed (attestation to that root with a fresh nonce, key bound to chain ${chainId} and ledger ${short(ledgerAddress)}, registered and active in TeeRegistry)`,
    );
    n.say(
      `it signs receipts for GPU node ${short(ctx.gpuNode)} with key ${gpuKey.address}, sends transactions from ${txKey.address}`,
    );

    // HTTP requests: a signed receipt and, for a sample chosen by the enclave, its verdict.
    const ids: string[] = [];
    let reexecuted = 0;
    for (let i = 0; i < HTTP_REQUESTS; i++) {
      const view = await postJson<ReceiptView>(`${url}/v1/inferences`, {
        modelId: ctx.modelId,
        inputs: { features: { dims: [1, 16], data: features(100 + i) } },
      });
      ids.push(view.requestId);
      const v = view.verification;
      if (v.selected) reexecuted += 1;
      const out = view.outputs[0]!;
      n.say(
        `POST /v1/inferences -> request ${short(view.requestId)}: risk ${out.values[0]} / ${out.scale}, receipt signed by the node's key; enclave: ${
          v.selected
            ? `re-executed, ${v.verdict?.agree === true ? "AGREE" : "DISAGREE"} (signed verdict)`
            : "not sampled"
        }`,
      );
    }
    n.say(
      `the enclave re-executed ${reexecuted} of ${HTTP_REQUESTS} (sample rate ${DEMO_SAMPLE_RATE_PPM / 10_000} %, drawn by the enclave after the node signed, binding once drawn)`,
    );

    // An on-chain request: the listener sees it, the relayer infers, the enclave checks, fulfil.
    const input = encodeInputs([
      {
        name: "features",
        dtype: "float32",
        dims: [1, 16],
        data: Float32Array.from(features(199)),
      },
    ]);
    const tx = await ledger
      .connect(ctx.requester)
      .requestInference(ctx.modelId, input, 0, 3_600, 0);
    const mined = await tx.wait();
    const requested = mined!.logs
      .map((l) => ledger.interface.parseLog(l))
      .find((l) => l?.name === "InferenceRequested");
    const chainRequest = String(requested!.args.getValue("requestId"));
    n.say(
      `requestInference on the InferenceLedger by ${await ctx.requester.getAddress()}: request ${short(chainRequest)} (tx ${short(tx.hash)})`,
    );
    await ctx.mine(); // the listener serves a request once its block has one confirmation
    const fulfilled = await until(`fulfilment of ${chainRequest}`, async () => {
      const events = await ledger.queryFilter(ledger.filters.InferenceFulfilled(chainRequest));
      return events[0] ?? null;
    });
    const served = await getJson<ReceiptView>(`${url}/v1/receipts/${chainRequest}`);
    n.say(
      `the relayer's listener served it: fulfil in tx ${short(fulfilled.transactionHash)}, outputHash ${short(served.receipt.outputHash)}, enclave ${
        served.verification.verdict?.agree === true ? "AGREE" : "DISAGREE"
      } (on-chain requests are always re-executed)`,
    );
    ids.push(chainRequest);

    // Everything is batched and anchored; every bundle verifies against the chain over JSON-RPC.
    const anchored: ReceiptView[] = [];
    for (const id of ids) {
      anchored.push(
        await until(`anchoring of ${id}`, async () => {
          const view = await getJson<ReceiptView>(`${url}/v1/receipts/${id}`);
          return view.status === "anchored" ? view : null;
        }),
      );
    }
    const batchIds = [...new Set(anchored.map((v) => v.batch!.batchId!))].map((b) => BigInt(b));
    for (const batchId of batchIds) {
      const first = anchored.find((v) => BigInt(v.batch!.batchId!) === batchId)!;
      const anchorTx = first.batch!.anchorTx!;
      const receipt = await reader.getTransactionReceipt(anchorTx);
      const log = receipt!.logs
        .map((l) => ledger.interface.parseLog(l))
        .find((l) => l?.name === "BatchAnchored");
      const count = BigInt(log!.args.getValue("count") as bigint);
      const gas = receipt!.gasUsed;
      n.say(
        `batch ${batchId}: ${count} receipt${count === 1n ? "" : "s"}, enclave sequence ${first.batch!.sequence}, anchored by the relayer in tx ${short(anchorTx)}, gas ${gas} (${gas / count} per receipt)`,
      );
    }
    const abis = loadLedgerAbis();
    let verified = 0;
    for (const [i, view] of anchored.entries()) {
      const bundle = parseReceiptBundle(JSON.stringify(view.bundle));
      const checks = await verifyReceiptBundle(bundle, reader, abis);
      const failed = checks.filter((c) => !c.ok);
      if (i === anchored.length - 1) {
        n.say(
          `GET /v1/receipts/${short(view.requestId)} -> the receipt bundle (batch ${bundle.batchId}, proof, tx), verified over JSON-RPC:`,
        );
        n.block(formatChecks(checks));
      }
      if (failed.length > 0) {
        throw new InputError("a receipt bundle from the relayer did not verify", {
          details: { requestId: view.requestId, failed: failed.map((c) => c.name) },
        });
      }
      verified += 1;
    }
    n.say(`all ${verified} receipt bundles from the relayer verify against the chain`);
    result = { requestIds: ids, batchIds };
  } finally {
    await relayer?.stop();
    await closeServer(enclaveServer);
    reader.destroy();
    await bridge.close();
    await rm(work, { recursive: true, force: true });
  }
  n.say("relayer stopped; enclave server and JSON-RPC bridge closed");
  return result;
}
