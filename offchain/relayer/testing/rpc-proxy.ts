/**
 * A JSON-RPC forwarder on 127.0.0.1 with a programmable fault plan, for testing the relayer
 * against a misbehaving node: drop a response (the connection is cut), delay it, or answer a
 * JSON-RPC error, either BEFORE forwarding (the node never sees the call) or AFTER (the node has
 * acted, e.g. a transaction really went out, but the caller cannot know).
 */
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type FaultAction =
  | { type: "drop" }
  | { type: "delay"; ms: number }
  | { type: "error"; code?: number; message?: string };

export interface FaultRule {
  /** JSON-RPC method name, or "*" for any. */
  method: string;
  /** "before": the call is not forwarded (delay: forwarded late). "after": forwarded, then the answer is faulted. */
  when: "before" | "after";
  action: FaultAction;
  /** Fault only this many matching calls (default: all). */
  times?: number;
  /** Fault each matching call with this probability (default 1), drawn from the proxy's seeded PRNG. */
  probability?: number;
}

export interface ProxyStats {
  /** Calls seen per method (batch members counted one by one). */
  calls: Record<string, number>;
  /** Faults injected per method. */
  faults: Record<string, number>;
}

interface JsonRpcRequest {
  id?: unknown;
  method?: unknown;
}

export class RpcFaultProxy {
  readonly stats: ProxyStats = { calls: {}, faults: {} };
  private rules: (FaultRule & { used: number })[] = [];
  private random: () => number;

  private constructor(
    private readonly server: Server,
    readonly url: string,
    private readonly upstream: string,
    seed: number,
  ) {
    this.random = mulberry32(seed);
  }

  /** Listens on a free loopback port and forwards to `upstream`. */
  static async start(upstream: string, seed = 1): Promise<RpcFaultProxy> {
    const box: { proxy?: RpcFaultProxy } = {};
    const server = createServer((req, res) => {
      if (box.proxy === undefined) return void res.destroy();
      box.proxy.handle(req, res).catch(() => res.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    box.proxy = new RpcFaultProxy(server, `http://127.0.0.1:${port}`, upstream, seed);
    return box.proxy;
  }

  addRule(rule: FaultRule): void {
    this.rules.push({ ...rule, used: 0 });
  }

  clearRules(): void {
    this.rules = [];
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const parsed = JSON.parse(body) as JsonRpcRequest | JsonRpcRequest[];
    const calls = Array.isArray(parsed) ? parsed : [parsed];
    const methods = calls.map((c) => (typeof c.method === "string" ? c.method : "?"));
    for (const m of methods) this.stats.calls[m] = (this.stats.calls[m] ?? 0) + 1;

    const before = this.pick(methods, "before");
    if (before !== undefined) {
      if (before.action.type === "drop") return void res.destroy();
      if (before.action.type === "error") return this.answerError(res, parsed, before.action);
      await sleep(before.action.ms);
    }
    const upstream = await fetch(this.upstream, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    const answer = await upstream.text();
    const after = this.pick(methods, "after");
    if (after !== undefined) {
      if (after.action.type === "drop") return void res.destroy();
      if (after.action.type === "error") return this.answerError(res, parsed, after.action);
      await sleep(after.action.ms);
    }
    res.writeHead(upstream.status, { "content-type": "application/json" });
    res.end(answer);
  }

  /** The first rule (in insertion order) matching any call of the request and drawn to fire. */
  private pick(methods: string[], when: FaultRule["when"]): FaultRule | undefined {
    for (const rule of this.rules) {
      if (rule.when !== when) continue;
      if (rule.times !== undefined && rule.used >= rule.times) continue;
      const hit = methods.find((m) => rule.method === "*" || rule.method === m);
      if (hit === undefined) continue;
      if (rule.probability !== undefined && this.random() >= rule.probability) continue;
      rule.used += 1;
      this.stats.faults[hit] = (this.stats.faults[hit] ?? 0) + 1;
      return rule;
    }
    return undefined;
  }

  private answerError(
    res: ServerResponse,
    parsed: JsonRpcRequest | JsonRpcRequest[],
    action: { code?: number; message?: string },
  ): void {
    const error = { code: action.code ?? -32603, message: action.message ?? "injected fault" };
    const one = (c: JsonRpcRequest) => ({ jsonrpc: "2.0", id: c.id ?? null, error });
    const payload = Array.isArray(parsed) ? parsed.map(one) : one(parsed);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(payload));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A small seeded PRNG, so a fault plan with probabilities replays the same way. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
