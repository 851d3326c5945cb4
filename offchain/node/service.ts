/**
 * NodeService (`opg node run`): the NodeKeeper (offchain/staking/keeper.ts) with its transaction
 * sender on its own SQLite store, and a small HTTP face: GET /healthz, /readyz (503 with the reason
 * while the node is at risk: heartbeat overdue, enclave unregistered or lapsing, a transaction
 * failing), /status (the keeper's view) and /metrics (Prometheus).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

import { Contract, Interface, JsonRpcProvider, Network, getAddress, type Wallet } from "ethers";
import type { Logger } from "pino";
import { Counter, Gauge, Registry } from "prom-client";

import { loadAbi } from "../chain/artifacts.js";
import { ChainClock, defaultClockMode, systemClock, type Clock } from "../chain/clock.js";
import { stringifyJson } from "../common/json.js";
import { openDatabase } from "../relayer/db.js";
import { TxSender } from "../relayer/sender/index.js";
import { NodeKeeper, type KeeperEnclave } from "../staking/keeper.js";
import type { NodeConfig } from "./config.js";

export class NodeMetrics {
  readonly registry = new Registry();
  readonly heartbeatAge = new Gauge({
    name: "opg_node_heartbeat_age_seconds",
    help: "Seconds since the node's last heartbeat on chain (jailable past the heartbeat timeout)",
    registers: [this.registry],
  });
  readonly enclaveExpiresIn = new Gauge({
    name: "opg_node_enclave_expires_in_seconds",
    help: "Seconds until the enclave's registration lapses (VERIFIER nodes)",
    registers: [this.registry],
  });
  readonly jailed = new Gauge({
    name: "opg_node_jailed",
    help: "1 while the node is jailed",
    registers: [this.registry],
  });
  readonly atRisk = new Gauge({
    name: "opg_node_at_risk",
    help: "1 while the node is at risk (see /readyz for why)",
    registers: [this.registry],
  });
  readonly failures = new Counter({
    name: "opg_node_failures_total",
    help: "Heartbeats, registrations and renewals that failed, by action",
    labelNames: ["action"] as const,
    registers: [this.registry],
  });
}

/** The enclave's HTTP API as the keeper needs it (public routes only). */
export function httpEnclave(url: string): KeeperEnclave {
  const base = url.replace(/\/$/, "");
  const get = async (path: string): Promise<Record<string, unknown>> => {
    const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`enclave answered ${res.status} to GET ${path.split("?")[0]}`);
    return body;
  };
  return {
    address: async () => String((await get("/info")).enclave),
    attestation: async (nonce) =>
      Buffer.from(
        String((await get(`/attestation?nonce=${Buffer.from(nonce).toString("hex")}`)).document),
        "base64",
      ),
  };
}

export class NodeService {
  private server: Server | null = null;
  private timer: NodeJS.Timeout | undefined;
  url = "";

  private constructor(
    readonly config: NodeConfig,
    readonly keeper: NodeKeeper,
    readonly metrics: NodeMetrics,
    private readonly sender: TxSender,
    private readonly provider: JsonRpcProvider,
    private readonly chainClock: ChainClock | null,
    private readonly close: () => void,
    private readonly log: Logger,
  ) {}

  static async create(config: NodeConfig, signer: Wallet, log: Logger): Promise<NodeService> {
    const chainId = BigInt(config.chain.chainId);
    const provider = new JsonRpcProvider(config.chain.rpcUrl, Network.from(chainId), {
      staticNetwork: true,
      pollingInterval: config.chain.pollIntervalMs,
    });
    const ledger = new Contract(
      getAddress(config.chain.ledger),
      loadAbi("contracts/anchoring/InferenceLedger.sol", "InferenceLedger"),
      provider,
    );
    const staking = new Contract(
      getAddress(String(await ledger.getFunction("STAKING")())),
      loadAbi("contracts/staking/NodeStaking.sol", "NodeStaking"),
      provider,
    );
    const tee = new Contract(
      getAddress(String(await ledger.getFunction("TEE_REGISTRY")())),
      loadAbi("contracts/tee/TeeRegistry.sol", "TeeRegistry"),
      provider,
    );
    let clock: Clock = systemClock;
    let chainClock: ChainClock | null = null;
    if ((config.chain.clock ?? defaultClockMode(chainId)) === "chain") {
      chainClock = new ChainClock(async () =>
        BigInt((await provider.getBlock("latest"))?.timestamp ?? 0),
      );
      await chainClock.start();
      clock = chainClock;
    }
    const db = openDatabase(config.store.path);
    const sender = new TxSender({
      db,
      provider,
      signer: signer.connect(provider),
      confirmations: config.sender.confirmations,
      pollIntervalMs: config.chain.pollIntervalMs,
      stuckAfterMs: config.sender.stuckAfterMs,
      feeBumpPercent: config.sender.feeBumpPercent,
      // Reverts decoded with both contracts' custom errors.
      revertInterface: new Interface([
        ...staking.interface.fragments,
        ...tee.interface.fragments.filter((f) => f.type === "error"),
      ]),
      logger: log.child({ part: "sender" }),
    });
    const metrics = new NodeMetrics();
    const keeper = new NodeKeeper({
      provider,
      staking,
      tee,
      node: getAddress(config.node.address),
      sender,
      clock,
      ...(config.enclave !== undefined ? { enclave: httpEnclave(config.enclave.url) } : {}),
      ...(config.keeper.heartbeatEverySeconds !== undefined
        ? { heartbeatEverySeconds: config.keeper.heartbeatEverySeconds }
        : {}),
      ...(config.keeper.renewBeforeSeconds !== undefined
        ? { renewBeforeSeconds: config.keeper.renewBeforeSeconds }
        : {}),
      pollMs: config.chain.pollIntervalMs,
      log: log.child({ part: "keeper" }),
      onFailure: (action) => metrics.failures.inc({ action }),
    });
    return new NodeService(
      config,
      keeper,
      metrics,
      sender,
      provider,
      chainClock,
      () => db.close(),
      log,
    );
  }

  async start(): Promise<string> {
    this.sender.start();
    this.keeper.start();
    this.timer = setInterval(() => this.observe(), 1_000);
    this.timer.unref();
    this.server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      const send = (status: number, body: unknown, type = "application/json"): void => {
        const text = typeof body === "string" ? body : stringifyJson(body, 0);
        res.writeHead(status, { "content-type": type });
        res.end(text);
      };
      const status = this.keeper.status();
      if (req.method === "GET" && path === "/healthz") return send(200, { ok: true });
      if (req.method === "GET" && path === "/status") return send(200, { status });
      if (req.method === "GET" && path === "/readyz") {
        const reason = status === null ? "no keeper round yet" : status.risk;
        return send(reason === null ? 200 : 503, {
          ready: reason === null,
          ...(reason === null ? {} : { reason }),
        });
      }
      if (req.method === "GET" && path === "/metrics") {
        this.metrics.registry
          .metrics()
          .then((text) => send(200, text, this.metrics.registry.contentType))
          .catch(() => send(500, { error: "InternalError" }));
        return;
      }
      send(404, { error: "NotFound", message: `no route ${req.method} ${path}` });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(this.config.api.port, this.config.api.host, () => resolve());
    });
    const address = this.server.address() as AddressInfo;
    this.url = `http://${this.config.api.host}:${address.port}`;
    this.log.info({ at: "NodeService#start", url: this.url }, "node service listening");
    return this.url;
  }

  private observe(): void {
    const s = this.keeper.status();
    if (s === null) return;
    this.metrics.heartbeatAge.set(s.heartbeatAge);
    this.metrics.jailed.set(s.jailed ? 1 : 0);
    this.metrics.atRisk.set(s.risk === null ? 0 : 1);
    if (s.enclaveExpiresIn !== null) this.metrics.enclaveExpiresIn.set(s.enclaveExpiresIn);
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
    await this.keeper.stop();
    await this.sender.stop();
    this.chainClock?.stop();
    this.close();
    this.provider.destroy();
    this.log.info({ at: "NodeService#stop" }, "node service stopped");
  }
}
