/**
 * The pipeline's enclave check over one pool of keep-alive HTTP connections (node:http), one call per
 * receipt. Same answers and checks as EnclaveClient#verify (offchain/tee/client.ts), which uses
 * fetch: profiling the relayer under the benchmark showed fetch's per-request cost (undici, web
 * streams, a chunked body write) at ~20 % of the service's CPU; a plain request with one
 * Content-Length body on a reused socket costs a fraction of that.
 */
import { Agent, request } from "node:http";

import { getAddress, recoverAddress } from "ethers";

import { VerificationError } from "../common/errors.js";
import { verdictDigest, type LedgerDomain, type Receipt } from "../chain/eip712.js";
import type { QuantisedTensorJson, TensorJson } from "../inference/tensor.js";
import { EnclaveRequestError } from "../tee/client.js";
import type { NotSelected, SignedVerdict } from "../tee/enclave.js";
import type { EnclaveVerifier } from "./pipeline.js";

function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}

class StaleSocketError extends Error {}

export class KeepAliveEnclaveVerifier implements EnclaveVerifier {
  private readonly agent: Agent;
  private readonly target: URL;
  private readonly expected: string;

  constructor(
    url: string,
    /** The enclave address the caller has verified (attestation + registry). */
    readonly enclave: string,
    private readonly domain: LedgerDomain,
    maxSockets = 64,
  ) {
    this.target = new URL("/verify", url);
    this.expected = getAddress(enclave);
    this.agent = new Agent({ keepAlive: true, maxSockets });
  }

  async verify(body: {
    receipt: Receipt;
    inputs: Record<string, TensorJson>;
    outputs?: QuantisedTensorJson[];
    sampleRate?: number;
  }): Promise<SignedVerdict | NotSelected> {
    const json = (await this.post(body)) as unknown as SignedVerdict | NotSelected;
    if (!json.selected) return json;
    const digest = verdictDigest(this.domain, json.verdict);
    if (digest !== json.digest || recoverAddress(digest, json.signature) !== this.expected) {
      throw new VerificationError("verdict is not signed by the expected enclave", {
        details: { expected: this.expected, digest },
      });
    }
    return json;
  }

  /** Closes the idle connections. */
  close(): void {
    this.agent.destroy();
  }

  private async post(body: unknown): Promise<Record<string, unknown>> {
    const payload = Buffer.from(JSON.stringify(body, bigintReplacer));
    try {
      return await this.send(payload);
    } catch (error) {
      // A kept-alive socket the enclave closed just as we reused it: the request never reached it
      // (and /verify is deterministic anyway), so it is sent once more on a fresh connection.
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
                  `enclave answered ${status} to POST /verify: ${typeof json.message === "string" ? json.message : ""}`,
                  { details: { status, error: json.error, enclaveDetails: json.details } },
                ),
              );
              return;
            }
            resolve(json);
          });
        },
      );
      req.on("error", (cause: NodeJS.ErrnoException) => {
        if (req.reusedSocket && cause.code === "ECONNRESET") {
          reject(new StaleSocketError());
          return;
        }
        reject(
          new EnclaveRequestError(`enclave at ${this.target.origin} is unreachable`, {
            details: { path: "/verify" },
            cause,
          }),
        );
      });
      req.end(payload);
    });
  }
}
