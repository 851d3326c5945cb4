/**
 * RelayerService: wires the store, the inference engine, the enclave client, the pipeline, the
 * batcher, the listener, the transaction sender and the HTTP API; starts and stops them in order.
 * Shutdown: stop taking requests, let the listener and batcher finish their round, stop the
 * sender, close the store.
 */
import type { DatabaseSync } from "node:sqlite";

import {
  AbiCoder,
  Contract,
  JsonRpcProvider,
  Network,
  getAddress,
  keccak256,
  type Wallet,
} from "ethers";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";

import { loadAbi } from "../chain/artifacts.js";
import { ledgerDomain, receiptStructHash } from "../chain/eip712.js";
import { InputError } from "../common/errors.js";
import { InferenceEngine } from "../inference/engine.js";
import { EnclaveClient } from "../tee/client.js";
import { createApi } from "./api.js";
import { Batcher } from "./batcher.js";
import type { RelayerConfig, RelayerSecrets } from "./config.js";
import { openDatabase } from "./db.js";
import { checkEnclave, enclaveCheckOptions } from "./enclave-check.js";
import { KeepAliveEnclaveVerifier } from "./enclave-http.js";
import { Listener } from "./listener.js";
import { RelayerMetrics } from "./metrics.js";
import { InferencePipeline } from "./pipeline.js";
import { TxSender } from "./sender/index.js";
import { JobStore, type JobRecord } from "./store.js";
import type { TxSenderLike } from "./tx.js";
import { JobWriter } from "./writer.js";

/** Offence.CONTRADICTED_RECEIPT in IInferenceLedger. */
const CONTRADICTED_RECEIPT = 1;

export interface ServiceDeps {
  provider?: JsonRpcProvider;
  /** Builds the sender (default: TxSender on the store's database, configured by `config.sender`). */
  sender?: (
    db: DatabaseSync,
    wallet: Wallet,
    provider: JsonRpcProvider,
    log: Logger,
  ) => TxSenderLike;
  metrics?: RelayerMetrics;
}

export class RelayerService {
  private app: FastifyInstance | null = null;
  private stopping = false;
  private acceptedSincePoke = 0;
  url = "";

  private constructor(
    readonly config: RelayerConfig,
    readonly db: DatabaseSync,
    readonly store: JobStore,
    readonly engine: InferenceEngine,
    readonly provider: JsonRpcProvider,
    readonly ledger: Contract,
    readonly enclave: EnclaveClient,
    readonly sender: TxSenderLike,
    readonly batcher: Batcher,
    readonly listener: Listener | null,
    readonly pipeline: InferencePipeline,
    readonly metrics: RelayerMetrics,
    private readonly log: Logger,
    private readonly verifier: KeepAliveEnclaveVerifier,
  ) {}

  static async create(
    config: RelayerConfig,
    secrets: RelayerSecrets,
    log: Logger,
    deps: ServiceDeps = {},
  ): Promise<RelayerService> {
    const metrics = deps.metrics ?? new RelayerMetrics();
    const chainId = BigInt(config.chain.chainId);
    const provider =
      deps.provider ??
      new JsonRpcProvider(config.chain.rpcUrl, Network.from(chainId), {
        staticNetwork: true,
        pollingInterval: config.chain.pollIntervalMs,
      });
    // Asked of the RPC itself: with a static network, provider.getNetwork() only echoes the config.
    let rpcChainId: bigint;
    try {
      rpcChainId = BigInt(String(await provider.send("eth_chainId", [])));
    } catch (cause) {
      throw new InputError(`the chain RPC at ${config.chain.rpcUrl} is unreachable`, {
        details: { rpcUrl: config.chain.rpcUrl },
        cause,
      });
    }
    if (rpcChainId !== chainId) {
      throw new InputError("the RPC's chain id is not the configured one", {
        details: { configured: chainId, rpc: rpcChainId },
      });
    }
    const ledgerAddress = getAddress(config.chain.ledger);
    if ((await provider.getCode(ledgerAddress)) === "0x") {
      throw new InputError("no contract at the configured ledger address", {
        details: { ledger: ledgerAddress },
      });
    }
    const ledger = new Contract(
      ledgerAddress,
      loadAbi("contracts/anchoring/InferenceLedger.sol", "InferenceLedger"),
      provider,
    );
    const domain = ledgerDomain(chainId, ledgerAddress);

    // The enclave's address: from its attestation (fresh nonce, trusted root), bound to this chain
    // and ledger, and active in the ledger's TeeRegistry with the attested image (enclave-check.ts).
    const checked = await checkEnclave({
      ...enclaveCheckOptions(config),
      provider,
      log: log.child({ part: "enclave-check" }),
    });
    const enclave = new EnclaveClient(config.enclave.url, checked.address, domain);
    const verifier = new KeepAliveEnclaveVerifier(config.enclave.url, enclave.enclave, domain);

    const engine = new InferenceEngine({
      config: config.models.engine,
      logger: log.child({ part: "engine" }),
    });
    await engine.loadModelsDir(config.models.dir);

    const db = openDatabase(config.store.path);
    const store = new JobStore(db);
    const txSigner = secrets.txSigner;
    const sender = deps.sender
      ? deps.sender(db, txSigner, provider, log)
      : new TxSender({
          db,
          provider,
          signer: txSigner,
          confirmations: config.sender.confirmations,
          pollIntervalMs: config.chain.pollIntervalMs,
          stuckAfterMs: config.sender.stuckAfterMs,
          feeBumpPercent: config.sender.feeBumpPercent,
          ...(config.sender.maxFeePerGasWei === undefined
            ? {}
            : { maxFeePerGasCap: BigInt(config.sender.maxFeePerGasWei) }),
          revertInterface: ledger.interface,
          logger: log.child({ part: "sender" }),
          // Anchor and fulfil failures are counted by their waiters; evidence has none.
          metrics: {
            onFailed: (kind) => {
              if (kind === "evidence") metrics.failures.inc({ stage: "evidence" });
            },
            gasUsed: (kind, gas) => {
              if (kind === "evidence") metrics.gasSpent.inc({ kind }, Number(gas));
            },
          },
        });

    const ledgerIface = ledger.interface;
    sender.registerDoneCheck("evidence", async (intent) => {
      const receiptHash = intent.key.slice("evidence:".length);
      const key = keccak256(
        AbiCoder.defaultAbiCoder().encode(
          ["uint8", "bytes32"],
          [CONTRADICTED_RECEIPT, receiptHash],
        ),
      );
      return Boolean(await ledger.getFunction("isOffenceSlashed").staticCall(key));
    });
    const submitEvidence = (job: JobRecord): void => {
      if (!config.evidence.submit || job.verdict === null || job.enclaveSignature === null) return;
      const receiptHash = receiptStructHash(job.receipt);
      sender.submit({
        key: `evidence:${receiptHash}`,
        kind: "evidence",
        to: ledgerAddress,
        data: ledgerIface.encodeFunctionData("reportContradictedReceipt", [
          job.receipt,
          job.nodeSignature,
          job.verdict.outputHash,
          job.enclaveSignature,
        ]),
      });
      log.warn(
        { at: "RelayerService#evidence", requestId: job.requestId, receiptHash },
        "evidence submitted",
      );
    };

    const pipeline = new InferencePipeline({
      engine,
      nodeSigner: secrets.nodeSigner,
      node: getAddress(config.node.address),
      domain,
      enclave: verifier,
      sampleRate: config.enclave.sampleRate,
      corruptOutputs: config.faultInjection.corruptOutputs,
      metrics,
      log: log.child({ part: "pipeline" }),
      onRejected: submitEvidence,
    });
    const batcher = new Batcher({
      store,
      enclave,
      sender,
      ledger,
      provider,
      maxSize: config.batch.maxSize,
      maxAgeMs: config.batch.maxAgeMs,
      deployBlock: config.chain.deployBlock,
      maxBlockRange: config.listener.maxBlockRange,
      pollMs: Math.min(
        config.chain.pollIntervalMs,
        Math.max(10, Math.floor(config.batch.maxAgeMs / 4)),
      ),
      metrics,
      log: log.child({ part: "batcher" }),
    });
    const listener = config.listener.enabled
      ? new Listener({
          db,
          store,
          pipeline,
          sender,
          ledger,
          provider,
          confirmations: config.listener.confirmations,
          deployBlock: config.chain.deployBlock,
          maxBlockRange: config.listener.maxBlockRange,
          pollMs: config.chain.pollIntervalMs,
          metrics,
          log: log.child({ part: "listener" }),
        })
      : null;
    if (config.faultInjection.corruptOutputs) {
      log.warn(
        { at: "RelayerService#create" },
        "FAULT INJECTION: the GPU node corrupts every output",
      );
    }
    return new RelayerService(
      config,
      db,
      store,
      engine,
      provider,
      ledger,
      enclave,
      sender,
      batcher,
      listener,
      pipeline,
      metrics,
      log,
      verifier,
    );
  }

  /** Starts the sender, batcher and listener, then the API; resolves with the API's URL. */
  async start(): Promise<string> {
    const { config, metrics, store } = this;
    metrics.queueSource = () => {
      const s = store.stats();
      const c = this.listener?.counts() ?? {};
      return {
        unbatched: s.jobs.pending,
        open_batches: s.batches.built + s.batches.signed,
        chain_requests: (c.new ?? 0) + (c.submitted ?? 0),
      };
    };
    this.sender.start();
    this.batcher.start();
    this.listener?.start();
    this.app = createApi({
      pipeline: this.pipeline,
      writer: new JobWriter(store),
      store,
      engine: this.engine,
      metrics,
      chainId: BigInt(config.chain.chainId),
      ledger: getAddress(config.chain.ledger),
      bodyLimit: config.api.bodyLimitBytes,
      proofOf: (job) => this.batcher.proofOf(job),
      notReady: () => this.notReady(),
      // A full batch's worth accepted since the last hint: wake the batcher now rather than at
      // its next poll (it counts what is really pending itself; this is only a hint, and an
      // in-memory count rather than a COUNT(*) per request).
      onAccepted: () => {
        if (++this.acceptedSincePoke >= config.batch.maxSize) {
          this.acceptedSincePoke = 0;
          this.batcher.poke();
        }
      },
    });
    this.url = await this.app.listen({ host: config.api.host, port: config.api.port });
    this.log.info(
      { at: "RelayerService#start", url: this.url, enclave: this.enclave.enclave },
      "relayer listening",
    );
    return this.url;
  }

  private async notReady(): Promise<string | null> {
    if (this.stopping) return "shutting down";
    try {
      await this.provider.getBlockNumber();
    } catch {
      return "chain RPC unreachable";
    }
    try {
      const res = await fetch(`${this.config.enclave.url}/info`);
      if (!res.ok) return `enclave answered ${res.status}`;
    } catch {
      return "enclave unreachable";
    }
    return null;
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.app?.close();
    await this.listener?.stop();
    await this.batcher.stop();
    await this.sender.stop();
    this.verifier.close();
    await this.engine.close();
    this.db.close();
    this.provider.destroy();
    this.log.info({ at: "RelayerService#stop" }, "relayer stopped");
  }
}
