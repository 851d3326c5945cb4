/**
 * The pipeline's enclave check: every receipt the pipeline hands over in one event-loop turn goes to
 * the enclave in one POST /verify-batch over a pool of keep-alive HTTP connections (node:http).
 * Same answers and checks as EnclaveClient#verify (offchain/tee/client.ts), which sends one receipt
 * per request with fetch: profiling the relayer under the benchmark put fetch's per-request cost
 * (undici, web streams) at ~20 % of the service's CPU, and one round trip per receipt at most of
 * the enclave's; a batch costs one round trip for all the receipts in flight.
 *
 * Each verdict is checked here (its digest recomputed, its signature recovered to the enclave
 * address the caller verified) before the pipeline sees it; one bad answer fails only its receipt.
 */
import { Agent, request } from "node:http";

import { getAddress } from "ethers";

import type { LedgerDomain, Receipt } from "../chain/eip712.js";
import { LedgerHasher } from "../chain/hasher.js";
import type { QuantisedTensorJson, TensorJson } from "../inference/tensor.js";
import { EnclaveRequestError, checkVerdict } from "../tee/client.js";
import type { NotSelected, SignedVerdict, VerifyOutcome } from "../tee/enclave.js";
import type { EnclaveVerifier } from "./pipeline.js";

type VerifyBody = {
  receipt: Receipt;
  inputs: Record<string, TensorJson>;
  outputs?: QuantisedTensorJson[];
  sampleRate?: number;
};

/** Under the enclave server's 4 MiB body limit, with room to spare. */
const MAX_PAYLOAD_BYTES = 3 * 1024 * 1024;

interface Waiting {
  body: VerifyBody;
  resolve: (v: SignedVerdict | NotSelected) => void;
  reject: (e: unknown) => void;
}

function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}

class StaleSocketError extends Error {}

export class KeepAliveEnclaveVerifier implements EnclaveVerifier {
  private readonly agent: Agent;
  private readonly target: URL;
  private readonly expected: string;
  private readonly hasher: LedgerHasher;
  private queue: Waiting[] = [];
  private scheduled = false;
  private inFlight = 0;

  constructor(
    url: string,
    /** The enclave address the caller has verified (attestation + registry). */
    readonly enclave: string,
    domain: LedgerDomain,
    private readonly maxBatch = 256,
    /**
     * Batches at the enclave at once; more receipts wait and go together when one returns (1:
     * measured best on 2 cores, 5-6 receipts per round trip at 1,000/s instead of 3-4).
     */
    private readonly maxInFlight = 1,
    /** A batch the enclave has not answered by then fails (its receipts answer 5xx, not hang). */
    private readonly timeoutMs = 30_000,
    maxSockets = 4,
  ) {
    this.target = new URL("/verify-batch", url);
    this.expected = getAddress(enclave);
    this.hasher = new LedgerHasher(domain);
    this.agent = new Agent({ keepAlive: true, maxSockets });
  }

  /** Resolves with the enclave's checked answer for this receipt (sent with the others of this turn). */
  verify(body: VerifyBody): Promise<SignedVerdict | NotSelected> {
    return new Promise((resolve, reject) => {
      this.queue.push({ body, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /**
   * Sends what waits, at most `maxInFlight` batches at a time: under load, receipts gather while
   * the enclave works on the previous batches, so batches grow with the load (fewer round trips
   * for both sides) without a timer delaying a lone request.
   */
  private flush(): void {
    this.scheduled = false;
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
      this.inFlight++;
      void this.sendBatch(this.queue.splice(0, this.maxBatch)).finally(() => {
        this.inFlight--;
        if (this.queue.length > 0 && !this.scheduled) {
          this.scheduled = true;
          setImmediate(() => this.flush());
        }
      });
    }
  }

  private async sendBatch(batch: Waiting[]): Promise<void> {
    const payload = Buffer.from(
      JSON.stringify({ requests: batch.map((w) => w.body) }, bigintReplacer),
    );
    if (payload.length > MAX_PAYLOAD_BYTES && batch.length > 1) {
      // Large inputs: halves until each request body fits the enclave's limit.
      const half = Math.ceil(batch.length / 2);
      await Promise.all([this.sendBatch(batch.slice(0, half)), this.sendBatch(batch.slice(half))]);
      return;
    }
    let results: unknown;
    try {
      const json = await this.post(payload);
      results = json.results;
    } catch (error) {
      for (const w of batch) w.reject(error);
      return;
    }
    if (!Array.isArray(results) || results.length !== batch.length) {
      const error = new EnclaveRequestError(
        "enclave answered a verify batch with the wrong number of results",
        {
          details: {
            requests: batch.length,
            results: Array.isArray(results) ? results.length : typeof results,
          },
        },
      );
      for (const w of batch) w.reject(error);
      return;
    }
    batch.forEach((w, i) => {
      try {
        w.resolve(this.check(results[i] as VerifyOutcome));
      } catch (error) {
        w.reject(error);
      }
    });
  }

  private check(outcome: VerifyOutcome): SignedVerdict | NotSelected {
    if (!outcome.ok) {
      throw new EnclaveRequestError(
        `enclave answered ${outcome.status} to a verify request: ${outcome.message}`,
        {
          details: {
            status: outcome.status,
            error: outcome.error,
            enclaveDetails: outcome.details,
          },
        },
      );
    }
    return checkVerdict(this.hasher, this.expected, outcome.result);
  }

  /** Closes the idle connections. */
  close(): void {
    this.agent.destroy();
  }

  private async post(payload: Buffer): Promise<Record<string, unknown>> {
    try {
      return await this.send(payload);
    } catch (error) {
      // A kept-alive socket the enclave closed just as we reused it: the request never reached it
      // (and verifying is deterministic anyway), so it is sent once more on a fresh connection.
      if (error instanceof StaleSocketError) return await this.send(payload);
      throw error;
    }
  }

  private send(payload: Buffer): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const req = request(
        this.target,
        {
          method: "POST",
          agent: this.agent,
          headers: { "content-type": "application/json", "content-length": payload.length },
        },
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
            if (status < 200 || status >= 300) {
              reject(
                new EnclaveRequestError(
                  `enclave answered ${status} to POST /verify-batch: ${typeof json.message === "string" ? json.message : ""}`,
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
              `enclave at ${this.target.origin} did not answer within ${this.timeoutMs} ms`,
              { details: { path: "/verify-batch", timeoutMs: this.timeoutMs }, cause },
            ),
          );
          return;
        }
        if (req.reusedSocket && cause.code === "ECONNRESET") {
          reject(new StaleSocketError());
          return;
        }
        reject(
          new EnclaveRequestError(`enclave at ${this.target.origin} is unreachable`, {
            details: { path: "/verify-batch" },
            cause,
          }),
        );
      });
      req.end(payload);
    });
  }
}
