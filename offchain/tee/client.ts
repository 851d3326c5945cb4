/**
 * The client of the enclave's HTTP API (what the relayer uses): one transport over a pool of
 * keep-alive node:http connections, every authenticated request signed with the node's signer key
 * (auth.ts). The receipts handed over in one event-loop turn go to the enclave in one
 * POST /v1/receipts (profiling put fetch's per-request cost at ~20 % of the relayer's CPU, and one
 * round trip per receipt at most of the enclave's).
 *
 * Answers are checked, not trusted: a verdict's digest is recomputed and its signature must recover
 * to the enclave address the caller verified (attestation + registry); a batch must be signed by
 * that enclave, name this node and its signer, and its root must be the tree over the leaf hashes
 * it lists. So a man in the middle cannot substitute its own.
 */
import { Agent, request } from "node:http";

import { getAddress } from "ethers";

import { buildTreeFromHashes } from "../../native/index.js";
import { BaseError, VerificationError, type BaseErrorOptions } from "../common/errors.js";
import { stringifyJson } from "../common/json.js";
import type { DigestSigner } from "../chain/ecdsa.js";
import { recoverSigner } from "../chain/ecdsa.js";
import type { Batch, LedgerDomain, Receipt, Verdict } from "../chain/eip712.js";
import { LedgerHasher } from "../chain/hasher.js";
import type { Clock } from "../chain/clock.js";
import type { QuantisedTensorJson, TensorJson } from "../inference/tensor.js";
import { AUTH_HEADER, RELAYER_HEADER, authHeader } from "./auth.js";
import type { EvidenceRecord, LoggedReceipt, SignedBatch, SubmitOutcome } from "./enclave.js";

export class EnclaveRequestError extends BaseError {
  override name = "EnclaveRequestError";
  /**
   * What the relayer answers its own caller: the enclave failed it, not the caller. 502 when the
   * enclave answered with an error, 503 when it did not answer (worth retrying); but 413 when the
   * enclave refused the body as too large: the caller's tensors are too big for it, which
   * retrying cannot change (details.limit says the enclave's limit).
   */
  override readonly httpStatus: number;

  constructor(message: string, options: BaseErrorOptions = {}) {
    super(message, options);
    const status = Number(options.details?.status ?? 0);
    this.httpStatus = status === 0 ? 503 : status === 413 ? 413 : 502;
  }

  /** The enclave's HTTP status (0: no answer). */
  get status(): number {
    return Number(this.details.status ?? 0);
  }
}

/** The enclave refused a request body as over its limit (413); details.limit is that limit. */
export class EnclavePayloadTooLargeError extends EnclaveRequestError {
  override name = "EnclavePayloadTooLargeError";
}

export interface SubmitRequest {
  receipt: Receipt;
  nodeSignature: string;
  inputs: Record<string, TensorJson>;
  outputs: QuantisedTensorJson[];
  force?: boolean;
}

export interface AttestationResponse {
  document: Buffer;
  enclave: string;
  publicKey: string;
  userData: string;
}

interface Waiting {
  body: SubmitRequest;
  resolve: (v: LoggedReceipt) => void;
  reject: (e: unknown) => void;
}

class StaleSocketError extends Error {}

function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}

/** A verdict the enclave signed: its digest recomputed, its signature recovering to `expected`. */
export function checkVerdict(
  hasher: LedgerHasher,
  expected: string,
  verdict: Verdict,
  signature: string,
): void {
  const normalised: Verdict = { ...verdict, timestamp: BigInt(verdict.timestamp) };
  const digest = hasher.verdictDigest(normalised);
  if (recoverSigner(digest, signature) !== expected) {
    throw new VerificationError("verdict is not signed by the expected enclave", {
      details: { expected, digest },
    });
  }
}

/**
 * An enclave's published evidence (its public GET /evidence), for anyone who reports it: nothing in
 * it is trusted here, InferenceLedger checks every signature itself.
 */
export async function fetchEvidence(url: string, after = 0): Promise<EvidenceRecord[]> {
  let res: Response;
  try {
    res = await fetch(`${url.replace(/\/$/, "")}/evidence?after=${after}`);
  } catch (cause) {
    throw new EnclaveRequestError(`enclave at ${url} is unreachable`, {
      details: { path: "/evidence" },
      cause,
    });
  }
  const body = (await res.json().catch(() => ({}))) as { evidence?: unknown; message?: unknown };
  if (!res.ok || !Array.isArray(body.evidence)) {
    throw new EnclaveRequestError(`enclave answered ${res.status} to GET /evidence`, {
      details: { status: res.status, message: body.message },
    });
  }
  return body.evidence as EvidenceRecord[];
}

export interface EnclaveClientOptions {
  url: string;
  /** The enclave address the caller has verified (attestation + registry). */
  enclave: string;
  domain: LedgerDomain;
  /** The node this client is: its id, and its signer key (signs the requests). */
  node: string;
  signer: DigestSigner;
  clock: Clock;
  /** Receipts per POST /v1/receipts. */
  maxItems?: number;
  /** Submissions at the enclave at once (1: measured best on 2 cores). */
  maxInFlight?: number;
  /** A request the enclave has not answered by then fails. */
  timeoutMs?: number;
  maxSockets?: number;
  /** Under the enclave's body limit, with room to spare. */
  maxPayloadBytes?: number;
  /** This relayer's id (x-opg-relayer): the enclave serves one relayer at a time. */
  relayerId?: string;
}

export class EnclaveClient {
  readonly url: string;
  readonly enclave: string;
  readonly node: string;
  private readonly agent: Agent;
  private readonly hasher: LedgerHasher;
  private readonly maxItems: number;
  private readonly maxInFlight: number;
  private readonly timeoutMs: number;
  private readonly maxPayloadBytes: number;
  private queue: Waiting[] = [];
  private scheduled = false;
  private inFlight = 0;

  constructor(private readonly o: EnclaveClientOptions) {
    this.url = o.url.replace(/\/$/, "");
    this.enclave = getAddress(o.enclave);
    this.node = getAddress(o.node);
    this.hasher = new LedgerHasher(o.domain);
    this.maxItems = o.maxItems ?? 256;
    this.maxInFlight = o.maxInFlight ?? 1;
    this.timeoutMs = o.timeoutMs ?? 30_000;
    this.maxPayloadBytes = o.maxPayloadBytes ?? 3 * 1024 * 1024;
    this.agent = new Agent({ keepAlive: true, maxSockets: o.maxSockets ?? 4 });
  }

  // ------------------------------------------------------------------ public endpoints

  async info(): Promise<Record<string, unknown>> {
    return this.call("GET", "/info", undefined, false);
  }

  async attestation(nonce: Uint8Array): Promise<AttestationResponse> {
    const json = await this.call(
      "GET",
      `/attestation?nonce=${Buffer.from(nonce).toString("hex")}`,
      undefined,
      false,
    );
    return {
      document: Buffer.from(String(json.document), "base64"),
      enclave: String(json.enclave),
      publicKey: String(json.publicKey),
      userData: String(json.userData),
    };
  }

  // ------------------------------------------------------------------ the client's endpoints

  /** Logs the receipt (sent with the others of this turn); resolves with the enclave's checked answer. */
  submit(body: SubmitRequest): Promise<LoggedReceipt> {
    return new Promise((resolve, reject) => {
      this.queue.push({ body, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /**
   * Claims the enclave for this relayer (`relayerId`): throws EnclaveRequestError with status 409
   * (error RelayerConflictError) while another relayer holds it.
   */
  async claimRelayer(): Promise<{ id: string; idleSeconds: number; leaseSeconds: number }> {
    const json = await this.call("POST", "/v1/relayer", {}, true);
    return json.relayer as { id: string; idleSeconds: number; leaseSeconds: number };
  }

  /** Releases the enclave if this relayer holds it (a relayer stopping cleanly). */
  async releaseRelayer(): Promise<void> {
    if (this.o.relayerId === undefined) return;
    await this.call("DELETE", "/v1/relayer", undefined, true);
  }

  /** Asks the enclave to cut its next batch (null: nothing waits); the answer is checked. */
  async cutBatch(maxSize: number): Promise<SignedBatch | null> {
    const json = await this.call("POST", "/v1/batches", { maxSize }, true);
    if (json.batch === null) return null;
    return this.checkBatch(json.batch as SignedBatch);
  }

  /** The enclave's signed batches not yet anchored, from `sequence` on (checked). */
  async openBatches(fromSequence: bigint): Promise<SignedBatch[]> {
    const json = await this.call("GET", `/v1/batches?from=${fromSequence}`, undefined, true);
    return (json.batches as SignedBatch[]).map((b) => this.checkBatch(b));
  }

  /** A receipt the enclave logged for this node (null: none). */
  async logged(
    requestId: string,
  ): Promise<(LoggedReceipt & { receipt: Receipt; nodeSignature: string }) | null> {
    try {
      const json = (await this.call(
        "GET",
        `/v1/receipts/${requestId}`,
        undefined,
        true,
      )) as unknown as LoggedReceipt & { receipt: Receipt; nodeSignature: string };
      const receipt = { ...json.receipt, timestamp: BigInt(json.receipt.timestamp) };
      return { ...this.checkLogged(json), receipt };
    } catch (error) {
      if (error instanceof EnclaveRequestError && error.status === 404) return null;
      throw error;
    }
  }

  /** Closes the idle connections. */
  close(): void {
    this.agent.destroy();
  }

  // ------------------------------------------------------------------ checks

  private checkLogged<T extends LoggedReceipt>(answer: T): T {
    if (getAddress(answer.enclave) !== this.enclave) {
      throw new VerificationError("answer names another enclave", {
        details: { expected: this.enclave, enclave: answer.enclave },
      });
    }
    if (answer.verdict !== null) {
      if (answer.signature === null) {
        throw new VerificationError("verdict without a signature", {
          details: { requestId: answer.requestId },
        });
      }
      checkVerdict(this.hasher, this.enclave, answer.verdict, answer.signature);
      answer.verdict = { ...answer.verdict, timestamp: BigInt(answer.verdict.timestamp) };
    }
    return answer;
  }

  private checkBatch(raw: SignedBatch): SignedBatch {
    const batch: Batch = {
      ...raw.batch,
      enclave: getAddress(raw.batch.enclave),
      node: getAddress(raw.batch.node),
      signer: getAddress(raw.batch.signer),
      sequence: BigInt(raw.batch.sequence),
      asOf: BigInt(raw.batch.asOf),
    };
    const digest = this.hasher.batchDigest(batch);
    const problems: string[] = [];
    if (batch.enclave !== this.enclave) problems.push("signed for another enclave");
    if (batch.node !== this.node) problems.push("names another node");
    if (recoverSigner(digest, raw.signature) !== this.enclave) problems.push("bad signature");
    if (raw.requestIds.length !== batch.count || raw.leafHashes.length !== batch.count)
      problems.push("leaf count differs from the batch count");
    else if (buildTreeFromHashes(raw.leafHashes).root !== batch.root.toLowerCase())
      problems.push("root is not the tree over the listed leaves");
    if (problems.length > 0) {
      throw new VerificationError(`enclave batch ${batch.sequence} fails its checks`, {
        details: { sequence: batch.sequence, problems },
      });
    }
    return { ...raw, batch, digest };
  }

  // ------------------------------------------------------------------ transport

  /**
   * Sends what waits, at most `maxInFlight` requests at a time: under load, receipts gather while
   * the enclave works on the previous ones, so requests grow with the load without a timer
   * delaying a lone receipt.
   */
  private flush(): void {
    this.scheduled = false;
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
      this.inFlight++;
      void this.sendItems(this.queue.splice(0, this.maxItems)).finally(() => {
        this.inFlight--;
        if (this.queue.length > 0 && !this.scheduled) {
          this.scheduled = true;
          setImmediate(() => this.flush());
        }
      });
    }
  }

  private async sendItems(items: Waiting[]): Promise<void> {
    const payload = Buffer.from(
      JSON.stringify({ items: items.map((w) => w.body) }, bigintReplacer),
    );
    if (payload.length > this.maxPayloadBytes && items.length > 1) {
      // Large inputs: halves until each request body fits the enclave's limit.
      const half = Math.ceil(items.length / 2);
      await Promise.all([this.sendItems(items.slice(0, half)), this.sendItems(items.slice(half))]);
      return;
    }
    let results: unknown;
    try {
      results = (await this.send("POST", "/v1/receipts", payload, true)).results;
    } catch (error) {
      for (const w of items) w.reject(error);
      return;
    }
    if (!Array.isArray(results) || results.length !== items.length) {
      const error = new EnclaveRequestError("enclave answered with the wrong number of results", {
        details: {
          items: items.length,
          results: Array.isArray(results) ? results.length : typeof results,
        },
      });
      for (const w of items) w.reject(error);
      return;
    }
    items.forEach((w, i) => {
      const outcome = results[i] as SubmitOutcome;
      try {
        if (!outcome.ok) {
          throw new EnclaveRequestError(
            `enclave answered ${outcome.status} to a receipt: ${outcome.message}`,
            {
              details: {
                status: outcome.status,
                error: outcome.error,
                enclaveDetails: outcome.details,
              },
            },
          );
        }
        w.resolve(this.checkLogged(outcome.result));
      } catch (error) {
        w.reject(error);
      }
    });
  }

  private async call(
    method: "GET" | "POST" | "DELETE",
    path: string,
    body: unknown,
    auth: boolean,
  ): Promise<Record<string, unknown>> {
    const payload =
      body === undefined ? Buffer.alloc(0) : Buffer.from(stringifyJson(body, 0), "utf8");
    return this.send(method, path, payload, auth);
  }

  private async send(
    method: "GET" | "POST" | "DELETE",
    path: string,
    payload: Buffer,
    auth: boolean,
  ): Promise<Record<string, unknown>> {
    try {
      return await this.once(method, path, payload, auth);
    } catch (error) {
      // A kept-alive socket the enclave closed just as we reused it: the request never reached
      // it, so it is sent once more on a fresh connection (every call is idempotent anyway).
      if (error instanceof StaleSocketError) return await this.once(method, path, payload, auth);
      // Our clock and the enclave's disagree by more than its window (on a local chain whose time
      // just jumped, one clock has seen it and the other not yet): signed once more at the time the
      // enclave says it is. That time only bounds the replay of our own request.
      const enclaveTime = clockOfRefusal(error);
      if (auth && enclaveTime !== null)
        return await this.once(method, path, payload, auth, enclaveTime);
      throw error;
    }
  }

  private once(
    method: "GET" | "POST" | "DELETE",
    path: string,
    payload: Buffer,
    auth: boolean,
    timestamp: bigint = this.o.clock.now(),
  ): Promise<Record<string, unknown>> {
    const headers: Record<string, string | number> = {};
    if (method === "POST") {
      headers["content-type"] = "application/json";
      headers["content-length"] = payload.length;
    }
    if (auth) {
      headers[AUTH_HEADER] = authHeader(
        this.o.signer,
        this.enclave,
        method,
        path,
        timestamp,
        payload,
      );
      if (this.o.relayerId !== undefined) headers[RELAYER_HEADER] = this.o.relayerId;
    }
    return new Promise((resolve, reject) => {
      const req = request(
        new URL(path, this.url),
        { method, agent: this.agent, headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", reject);
          res.on("end", () => {
            let json: Record<string, unknown> = {};
            try {
              json = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
            } catch {
              // reported below with the status
            }
            const status = res.statusCode ?? 0;
            if (status === 413) {
              const limit = (json.details as { limit?: unknown } | undefined)?.limit;
              reject(
                new EnclavePayloadTooLargeError(
                  `enclave refused a ${payload.length}-byte ${method} ${path.split("?")[0]}: its body limit (--max-body) is ${String(limit)} bytes`,
                  {
                    details: {
                      status,
                      error: json.error,
                      limit,
                      length: payload.length,
                      enclaveDetails: json.details,
                    },
                  },
                ),
              );
              return;
            }
            if (status < 200 || status >= 300) {
              reject(
                new EnclaveRequestError(
                  `enclave answered ${status} to ${method} ${path.split("?")[0]}: ${typeof json.message === "string" ? json.message : ""}`,
                  { details: { status, error: json.error, enclaveDetails: json.details } },
                ),
              );
              return;
            }
            resolve(json);
          });
        },
      );
      let timedOut = false;
      req.setTimeout(this.timeoutMs, () => {
        timedOut = true;
        req.destroy();
      });
      req.on("error", (cause: NodeJS.ErrnoException) => {
        if (timedOut) {
          reject(
            new EnclaveRequestError(
              `enclave at ${this.url} did not answer within ${this.timeoutMs} ms`,
              { details: { path, timeoutMs: this.timeoutMs }, cause },
            ),
          );
          return;
        }
        if (req.reusedSocket && cause.code === "ECONNRESET") {
          reject(new StaleSocketError());
          return;
        }
        reject(
          new EnclaveRequestError(`enclave at ${this.url} is unreachable`, {
            details: { path },
            cause,
          }),
        );
      });
      req.end(payload);
    });
  }
}

/** The enclave's clock, when it refused a request's x-opg-auth as outside its time window. */
function clockOfRefusal(error: unknown): bigint | null {
  if (!(error instanceof EnclaveRequestError) || error.status !== 401) return null;
  const details = error.details.enclaveDetails as Record<string, unknown> | undefined;
  const t = details?.enclaveTime;
  if (typeof t !== "string" && typeof t !== "number" && typeof t !== "bigint") return null;
  try {
    const v = BigInt(t);
    return v > 0n ? v : null;
  } catch {
    return null;
  }
}
