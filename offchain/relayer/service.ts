/**
 * RelayerService: wires the store, the inference engine, the enclave client, the pipeline, the
 * batcher, the listener, the transaction sender and the HTTP API; starts and stops them in order.
 * The enclave client signs its requests with the node's signer key (the enclave serves this node
 * only) and timestamps come from the service's clock (chain/clock.ts).
 * Shutdown: stop taking requests, let the listener and batcher finish their round, stop the
 * sender, close the store.
 */
import { randomBytes } from "node:crypto";
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
import { ChainClock, defaultClockMode, systemClock, type Clock } from "../chain/clock.js";
import { DigestSigner } from "../chain/ecdsa.js";
import { ledgerDomain, receiptStructHash } from "../chain/eip712.js";
import { LedgerHasher } from "../chain/hasher.js";
import { registeredModels, type RegisteredModel } from "../chain/models.js";
import { BaseError, InputError } from "../common/errors.js";
import { InferenceEngine } from "../inference/engine.js";
import { EnclaveClient, EnclaveRequestError } from "../tee/client.js";
import { binaryRequestBodyLimit, createApi, requestBodyLimit } from "./api.js";
import { Batcher } from "./batcher.js";
import type { RelayerConfig, RelayerSecrets } from "./config.js";
import { migrate, openDatabase, type Migration } from "./db.js";
import { checkEnclave, enclaveCheckOptions } from "./enclave-check.js";
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

/** The parts the service is made of, built by `RelayerService.create`. */
interface Parts {
  config: RelayerConfig;
  db: DatabaseSync;
  store: JobStore;
  engine: InferenceEngine;
  provider: JsonRpcProvider;
  ledger: Contract;
  enclave: { current: EnclaveClient };
  sender: TxSenderLike;
  batcher: Batcher;
  listener: Listener | null;
  pipeline: InferencePipeline;
  metrics: RelayerMetrics;
  clock: Clock;
  chainClock: ChainClock | null;
  nodeSigner: DigestSigner;
  relayerId: string;
  log: Logger;
}

/** The enclave is held by another relayer of this node (it answered 409 RelayerConflictError). */
export class EnclaveHeldError extends BaseError {
  override name = "EnclaveHeldError";
}

const RELAYER_MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: "the relayer's id, kept with its store (the enclave serves one relayer at a time)",
    sql: "CREATE TABLE relayer_identity (id INTEGER PRIMARY KEY CHECK (id = 1), relayer_id TEXT NOT NULL)",
  },
];

/** This store's relayer id: created once, so a restarted relayer is the same relayer to its enclave. */
export function relayerIdOf(db: DatabaseSync): string {
  migrate(db, "relayer", RELAYER_MIGRATIONS);
  db.prepare("INSERT OR IGNORE INTO relayer_identity (id, relayer_id) VALUES (1, ?)").run(
    randomBytes(16).toString("hex"),
  );
  const row = db.prepare("SELECT relayer_id FROM relayer_identity WHERE id = 1").get() as {
    relayer_id: string;
  };
  return row.relayer_id;
}

/** Claims the enclave for this relayer; EnclaveHeldError while another relayer holds it. */
async function claimEnclave(client: EnclaveClient, relayerId: string, url: string): Promise<void> {
  try {
    await client.claimRelayer();
  } catch (error) {
    if (
      error instanceof EnclaveRequestError &&
      error.status === 409 &&
      error.details.error === "RelayerConflictError"
    ) {
      const details = (error.details.enclaveDetails ?? {}) as Record<string, unknown>;
      throw new EnclaveHeldError(
        `the enclave at ${url} is held by another relayer (${String(details.holder)}): one relayer per enclave`,
        {
          details: { relayer: relayerId, ...details },
          hint: "stop the other relayer (or point this one at its own enclave); the enclave frees itself once the holder has been silent for its --relayer-lease",
          cause: error,
        },
      );
    }
    throw error;
  }
}

export class RelayerService {
  private app: FastifyInstance | null = null;
  private stopping = false;
  private acceptedSincePoke = 0;
  url = "";
  readonly config: RelayerConfig;
  readonly db: DatabaseSync;
  readonly store: JobStore;
  readonly engine: InferenceEngine;
  readonly provider: JsonRpcProvider;
  readonly ledger: Contract;
  private readonly enclaveHolder: { current: EnclaveClient };
  readonly sender: TxSenderLike;
  readonly batcher: Batcher;
  readonly listener: Listener | null;
  readonly pipeline: InferencePipeline;
  readonly metrics: RelayerMetrics;
  private readonly chainClock: ChainClock | null;
  private readonly clock: Clock;
  private readonly nodeSigner: DigestSigner;
  private readonly relayerId: string;
  private readonly log: Logger;
  private enclaveProblem: string | null = null;
  private watchTimer: NodeJS.Timeout | undefined;
  private watching: Promise<void> | null = null;

  private constructor(parts: Parts) {
    this.config = parts.config;
    this.db = parts.db;
    this.store = parts.store;
    this.engine = parts.engine;
    this.provider = parts.provider;
    this.ledger = parts.ledger;
    this.enclaveHolder = parts.enclave;
    this.sender = parts.sender;
    this.batcher = parts.batcher;
    this.listener = parts.listener;
    this.pipeline = parts.pipeline;
    this.metrics = parts.metrics;
    this.chainClock = parts.chainClock;
    this.clock = parts.clock;
    this.nodeSigner = parts.nodeSigner;
    this.relayerId = parts.relayerId;
    this.log = parts.log;
  }

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
    const ledger = await connectLedger(config, provider);
    const ledgerAddress = await ledger.getAddress();
    const domain = ledgerDomain(chainId, ledgerAddress);
    const node = getAddress(config.node.address);

    let clock: Clock = systemClock;
    let chainClock: ChainClock | null = null;
    if ((config.chain.clock ?? defaultClockMode(chainId)) === "chain") {
      // Asked of the node itself (ethers may answer "latest" from a short cache).
      chainClock = new ChainClock(async () => {
        const block = (await provider.send("eth_getBlockByNumber", ["latest", false])) as {
          timestamp?: string;
        } | null;
        return BigInt(block?.timestamp ?? 0);
      });
      await chainClock.start();
      clock = chainClock;
    }

    // The enclave's address: from its attestation (fresh nonce, trusted root), bound to this chain,
    // ledger and node, and active in the ledger's TeeRegistry with the attested image.
    const checked = await checkEnclave({
      ...enclaveCheckOptions(config),
      provider,
      log: log.child({ part: "enclave-check" }),
    });
    const nodeSigner = new DigestSigner(secrets.nodeSigner.signingKey);
    const db = openDatabase(config.store.path);
    const relayerId = relayerIdOf(db);
    const enclave = {
      current: new EnclaveClient({
        url: config.enclave.url,
        enclave: checked.address,
        domain,
        node,
        signer: nodeSigner,
        clock,
        relayerId,
      }),
    };
    // One relayer (one store) per enclave: refused while another relayer holds it.
    await claimEnclave(enclave.current, relayerId, config.enclave.url);

    const engine = new InferenceEngine({
      config: config.models.engine,
      logger: log.child({ part: "engine" }),
    });
    // Each bad model folder is logged by name and skipped; none loading at all is
    // NoModelsLoadedError, which stops the start.
    const { models, failures } = await engine.loadModels(config.models.dir);
    if (failures.length > 0) {
      log.warn(
        {
          at: "RelayerService#create",
          models: models.map((m) => m.manifest.name),
          failed: failures.map((f) => f.dir),
        },
        `starting with ${models.length} models; ${failures.length} model folders did not load`,
      );
    }

    const store = new JobStore(db);
    const sender = deps.sender
      ? deps.sender(db, secrets.txSigner, provider, log)
      : new TxSender({
          db,
          provider,
          signer: secrets.txSigner,
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
    const submitEvidence = evidenceSubmitter(config, sender, ledger, log);

    // Bound once the service exists: the pipeline asks it to check a restarted enclave now.
    const late: { refresh: () => Promise<void> } = { refresh: () => Promise.resolve() };
    const pipeline = new InferencePipeline({
      engine,
      nodeSigner,
      node,
      domain,
      enclave: () => enclave.current,
      refreshEnclave: () => late.refresh(),
      ...(chainClock === null ? {} : { resyncClock: () => chainClock.sync() }),
      clock,
      corruptOutputs: config.faultInjection.corruptOutputs,
      metrics,
      log: log.child({ part: "pipeline" }),
      onRejected: submitEvidence,
    });
    const hasher = new LedgerHasher(domain);
    let listener: Listener | null = null;
    const batcher = new Batcher({
      store,
      enclave: () => enclave.current,
      sender,
      ledger,
      provider,
      maxSize: config.batch.maxSize,
      maxAgeMs: config.batch.maxAgeMs,
      strandedAfterMs: config.batch.strandedAfterMs,
      deployBlock: config.chain.deployBlock,
      maxBlockRange: config.listener.maxBlockRange,
      pollMs: Math.min(
        config.chain.pollIntervalMs,
        Math.max(10, Math.floor(config.batch.maxAgeMs / 4)),
      ),
      resubmit: (jobs) =>
        resubmit(jobs, { enclave: enclave.current, nodeSigner, hasher, clock, store, log }),
      isChainRequest: (requestId) => listener?.hasRequest(requestId) ?? false,

      metrics,
      log: log.child({ part: "batcher" }),
    });
    listener = config.listener.enabled
      ? new Listener({
          db,
          store,
          pipeline,
          sender,
          ledger,
          provider,
          node,
          clock,
          staking: new Contract(
            getAddress(String(await ledger.getFunction("STAKING").staticCall())),
            loadAbi("contracts/staking/NodeStaking.sol", "NodeStaking"),
            provider,
          ),
          turnGraceSeconds: config.listener.turnGraceSeconds,
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
    const service = new RelayerService({
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
      clock,
      chainClock,
      nodeSigner,
      relayerId,
      log,
    });
    late.refresh = () => service.refreshEnclave();
    return service;
  }

  /** The enclave client in use (replaced when the enclave at the configured URL gets a new key). */
  get enclave(): EnclaveClient {
    return this.enclaveHolder.current;
  }

  /**
   * Watches the enclave at the configured URL: when it answers with another key (it restarted, or
   * was rotated to a new image), that key is checked like at start-up (attestation, binding,
   * registry) and, once it passes, used from then on; pending receipts of the old key go to the new
   * enclave's log (the batcher). Until it passes, /readyz says why.
   */
  private async watchEnclave(): Promise<void> {
    const current = this.enclaveHolder.current;
    let key: string;
    let holder: { id?: unknown; idleSeconds?: unknown; leaseSeconds?: unknown } | null;
    try {
      const info = await current.info();
      key = getAddress(String(info.enclave));
      holder = info.relayer ?? null;
    } catch {
      return; // unreachable: /readyz says so
    }
    if (key === current.enclave) {
      // Another relayer took the enclave over while this one was silent past its lease.
      const taken =
        holder !== null &&
        holder.id !== this.relayerId &&
        Number(holder.idleSeconds) < Number(holder.leaseSeconds);
      this.enclaveProblem = taken
        ? `the enclave at ${this.config.enclave.url} is held by another relayer (${String(holder!.id)}); one relayer per enclave`
        : null;
      return;
    }
    try {
      const checked = await checkEnclave({
        ...enclaveCheckOptions(this.config),
        provider: this.provider,
        log: this.log.child({ part: "enclave-check" }),
      });
      this.enclaveHolder.current = new EnclaveClient({
        url: this.config.enclave.url,
        enclave: checked.address,
        domain: ledgerDomain(
          BigInt(this.config.chain.chainId),
          getAddress(this.config.chain.ledger),
        ),
        node: getAddress(this.config.node.address),
        signer: this.nodeSigner,
        clock: this.clock,
        relayerId: this.relayerId,
      });
      current.close();
      this.enclaveProblem = null;
      this.log.warn(
        { at: "RelayerService#watchEnclave", from: current.enclave, to: checked.address },
        "the enclave has a new key: checked and in use",
      );
    } catch (error) {
      this.enclaveProblem = `the enclave at ${this.config.enclave.url} now holds key ${key}, which does not pass its check yet: ${(error as Error).message}`;
    }
  }

  /** Checks the enclave at the configured URL now (one check at a time); see watchEnclave. */
  refreshEnclave(): Promise<void> {
    if (this.stopping) return Promise.resolve();
    this.watching ??= this.watchEnclave().finally(() => (this.watching = null));
    return this.watching;
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
    metrics.oldestUnanchoredSource = () => {
      const oldest = store.oldestUnanchored();
      return oldest === null ? 0 : (Date.now() - oldest) / 1000;
    };
    this.sender.start();
    this.batcher.start();
    this.listener?.start();
    this.watchTimer = setInterval(() => void this.refreshEnclave(), config.enclave.recheckMs);
    // Unset, the limits follow the largest model served (docs/inference-tee.md, "Size limits").
    const manifests = this.engine.list().map((m) => m.manifest);
    const bodyLimit = config.api.bodyLimitBytes ?? requestBodyLimit(manifests);
    const binaryBodyLimit = config.api.binaryBodyLimitBytes ?? binaryRequestBodyLimit(manifests);
    this.app = createApi({
      pipeline: this.pipeline,
      writer: new JobWriter(store),
      store,
      engine: this.engine,
      metrics,
      chainId: BigInt(config.chain.chainId),
      ledger: getAddress(config.chain.ledger),
      node: getAddress(config.node.address),
      bodyLimit,
      binaryBodyLimit,
      proofOf: (job) => this.batcher.proofOf(job),
      registeredModels: () => this.registeredModels(),
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
      {
        at: "RelayerService#start",
        url: this.url,
        enclave: this.enclave.enclave,
        bodyLimit,
        binaryBodyLimit,
      },
      "relayer listening",
    );
    return this.url;
  }

  private registry: Promise<string> | undefined;

  /** ModelRegistry's models (the ledger's MODEL_REGISTRY), scanned from the ledger's deploy block. */
  private async registeredModels(): Promise<RegisteredModel[]> {
    this.registry ??= this.ledger.getFunction("MODEL_REGISTRY").staticCall() as Promise<string>;
    const registry = await this.registry.catch((error: unknown) => {
      this.registry = undefined;
      throw error;
    });
    return registeredModels(this.provider, registry, {
      fromBlock: this.config.chain.deployBlock,
      maxBlockRange: this.config.listener.maxBlockRange,
    });
  }

  private async notReady(): Promise<string | null> {
    if (this.stopping) return "shutting down";
    const stall = this.batcher.stalled();
    if (stall !== null) return stall.reason;
    if (this.enclaveProblem !== null) return this.enclaveProblem;
    try {
      // Asked of the node itself: ethers may answer getBlockNumber from a short cache.
      await this.provider.send("eth_blockNumber", []);
    } catch {
      return "chain RPC unreachable";
    }
    try {
      const key = getAddress(String((await this.enclave.info()).enclave));
      if (key !== this.enclave.enclave) {
        void this.refreshEnclave();
        return `the enclave at ${this.config.enclave.url} now holds key ${key}, not checked yet (in use: ${this.enclave.enclave})`;
      }
    } catch (error) {
      return error instanceof EnclaveRequestError && error.status !== 0
        ? `enclave answered ${error.status}`
        : "enclave unreachable";
    }
    return null;
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.app?.close();
    if (this.watchTimer !== undefined) clearInterval(this.watchTimer);
    await this.watching;
    await this.listener?.stop();
    await this.batcher.stop();
    await this.sender.stop();
    // Frees the enclave for another relayer now rather than after its lease (best effort).
    await this.enclave
      .releaseRelayer()
      .catch((error: unknown) =>
        this.log.warn(
          { at: "RelayerService#stop", err: (error as Error).message },
          "could not release the enclave (it frees itself after its relayer lease)",
        ),
      );
    this.enclave.close();
    this.chainClock?.stop();
    await this.engine.close();
    this.db.close();
    this.provider.destroy();
    this.log.info({ at: "RelayerService#stop" }, "relayer stopped");
  }
}

/** The ledger at the configured address, after checking the RPC serves the configured chain. */
async function connectLedger(config: RelayerConfig, provider: JsonRpcProvider): Promise<Contract> {
  const chainId = BigInt(config.chain.chainId);
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
  return new Contract(
    ledgerAddress,
    loadAbi("contracts/anchoring/InferenceLedger.sol", "InferenceLedger"),
    provider,
  );
}

/**
 * Reports the node's own contradicted receipts when `evidence.submit` is on (no bounty for it: the
 * point is that an operator who runs a faulty node can stop it being used). Anyone else reports
 * from the enclave's GET /evidence (`opg evidence report`).
 */
function evidenceSubmitter(
  config: RelayerConfig,
  sender: TxSenderLike,
  ledger: Contract,
  log: Logger,
): (job: JobRecord) => void {
  sender.registerDoneCheck("evidence", async (intent) => {
    const receiptHash = intent.key.slice("evidence:".length);
    const key = keccak256(
      AbiCoder.defaultAbiCoder().encode(["uint8", "bytes32"], [CONTRADICTED_RECEIPT, receiptHash]),
    );
    return Boolean(await ledger.getFunction("isOffenceSlashed").staticCall(key));
  });
  return (job) => {
    if (!config.evidence.submit || job.verdict === null || job.enclaveSignature === null) return;
    const receiptHash = receiptStructHash(job.receipt);
    sender.submit({
      key: `evidence:${receiptHash}`,
      kind: "evidence",
      to: getAddress(config.chain.ledger),
      data: ledger.interface.encodeFunctionData("reportContradictedReceipt", [
        job.receipt,
        job.nodeSignature,
        job.verdict.outputHash,
        job.verdict.timestamp,
        job.enclaveSignature,
      ]),
    });
    log.warn(
      { at: "RelayerService#evidence", requestId: job.requestId, receiptHash },
      "evidence submitted",
    );
  };
}

/**
 * Sends pending receipts that another enclave logged (a restarted or replaced enclave: a new key)
 * to the current one, with their stored inputs and outputs. A receipt too old for the enclave's
 * window is signed again with a fresh timestamp (same request, same output): it was never anchored.
 */
async function resubmit(
  jobs: JobRecord[],
  deps: {
    enclave: EnclaveClient;
    nodeSigner: DigestSigner;
    hasher: LedgerHasher;
    clock: Clock;
    store: JobStore;
    log: Logger;
  },
): Promise<void> {
  const { enclave, nodeSigner, hasher, clock, store, log } = deps;
  await Promise.all(
    jobs.map(async (job) => {
      if (job.inputs === null) {
        log.error(
          { at: "RelayerService#resubmit", requestId: job.requestId },
          "a receipt of a previous enclave has no stored inputs: it cannot go to the new enclave",
        );
        return;
      }
      const receipt = { ...job.receipt, timestamp: clock.now() };
      const nodeSignature = nodeSigner.sign(hasher.receiptDigest(receipt));
      try {
        const logged = await enclave.submit({
          receipt,
          nodeSignature,
          inputs: job.inputs,
          outputs: job.outputs,
          ...(job.source === "chain" ? { force: true } : {}),
        });
        const agree = logged.verdict === null ? null : logged.verdict.agree;
        store.replaceJob({
          ...job,
          receipt,
          nodeSignature,
          enclave: enclave.enclave,
          selected: logged.selected,
          verdict: logged.verdict,
          enclaveSignature: logged.signature,
          state: agree === false ? "rejected" : "pending",
        });
      } catch (error) {
        log.error(
          {
            at: "RelayerService#resubmit",
            requestId: job.requestId,
            err: (error as Error).message,
          },
          "re-submitting a receipt to the new enclave failed",
        );
      }
    }),
  );
}
