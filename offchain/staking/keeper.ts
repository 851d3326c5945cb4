/**
 * NodeKeeper: keeps a node alive on chain for months without a person, the job of `opg node run`.
 *
 *   - node heartbeats: `NodeStaking.heartbeat(node)` from the node's signer key whenever a third of
 *     the heartbeat timeout has passed since the last one (so one missed round is not a jail);
 *   - for a VERIFIER node, its enclave (the one at `enclave.url`): a key that is not registered yet
 *     (a restarted enclave has a new key) is registered with a fresh attestation document; a
 *     registration is renewed with a fresh attestation (`TeeRegistry.renewEnclave`) once less than
 *     a third of the registration lifetime is left. A heartbeat from the host would prove nothing
 *     about the enclave; a fresh document proves the attested image still holds the key.
 *
 * Transactions go through the transaction sender (idempotency key per period, done check from the
 * chain), so a restart never sends twice and a failure is retried on the next round. Every failure
 * is counted (`failures`) and logged with what to do; `status()` says when the node is at risk: the
 * heartbeat is overdue, or the enclave is not registered or about to lapse.
 */
import { randomBytes } from "node:crypto";

import { getAddress, type Contract, type Provider } from "ethers";
import type { Logger } from "pino";

import type { Clock } from "../chain/clock.js";
import { readBinding } from "../tee/enclave.js";
import { attestedPcrs, parseCoseSign1, parsePayload } from "../tee/attestation.js";
import type { TxSenderLike } from "../relayer/tx.js";
import { measurementFromPcrs } from "./units.js";

export interface KeeperEnclave {
  /** The enclave's key now (its GET /info). */
  address(): Promise<string>;
  /** A fresh attestation document answering `nonce`. */
  attestation(nonce: Uint8Array): Promise<Uint8Array>;
}

export interface KeeperOptions {
  provider: Provider;
  staking: Contract;
  tee: Contract;
  node: string;
  sender: TxSenderLike;
  clock: Clock;
  /** The VERIFIER node's enclave (absent for a GPU node). */
  enclave?: KeeperEnclave;
  /** Heartbeat when this many seconds have passed since the last one (default: timeout / 3). */
  heartbeatEverySeconds?: number;
  /** Renew when fewer seconds than this are left (default: registration lifetime / 3). */
  renewBeforeSeconds?: number;
  pollMs?: number;
  /** How long a round waits for its transaction before it counts as failed (default 30 s). */
  confirmWithinMs?: number;
  log: Logger;
  onFailure?: (action: "heartbeat" | "register" | "renew", reason: string) => void;
}

export interface KeeperStatus {
  node: string;
  /** Seconds since the node's last heartbeat, by the chain. */
  heartbeatAge: number;
  heartbeatTimeout: number;
  jailed: boolean;
  enclave: string | null;
  /** Seconds until the enclave's registration lapses (null: no enclave, or not registered). */
  enclaveExpiresIn: number | null;
  /** Why the node is at risk, or null. */
  risk: string | null;
}

export class NodeKeeper {
  private running = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private last: KeeperStatus | null = null;
  private lastFailure: string | null = null;

  constructor(private readonly o: KeeperOptions) {
    o.sender.registerDoneCheck("heartbeat", async (intent) => {
      const [, node, since] = intent.key.split(":");
      const n = (await o.staking.getFunction("getNode")(node)) as { lastHeartbeat: bigint };
      return BigInt(n.lastHeartbeat) > BigInt(since!);
    });
    o.sender.registerDoneCheck("registration", async (intent) => {
      const [what, key, expiresAt] = intent.key.split(":");
      const e = (await o.tee.getFunction("getEnclave")(key)) as { node: string; expiresAt: bigint };
      if (what === "register") return getAddress(e.node) !== getAddress("0x" + "0".repeat(40));
      return BigInt(e.expiresAt) > BigInt(expiresAt!);
    });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  /** The last round's view of the node (null before the first round). */
  status(): KeeperStatus | null {
    return this.last;
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        await this.tick();
      } catch (error) {
        this.o.log.error(
          { at: "NodeKeeper#run", err: (error as Error).message },
          "keeper round failed",
        );
      }
      if (!this.running) break;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, this.o.pollMs ?? 1_000);
      });
      this.wake = null;
    }
  }

  /** One round: heartbeat if due, then the enclave's registration. */
  async tick(): Promise<KeeperStatus> {
    const { staking, node } = this.o;
    const now = this.o.clock.now();
    const [n, params] = await Promise.all([
      staking.getFunction("getNode")(node) as Promise<{
        lastHeartbeat: bigint;
        jailed: boolean;
        exited: boolean;
      }>,
      staking.getFunction("params")() as Promise<{ heartbeatTimeout: bigint }>,
    ]);
    const timeout = Number(params.heartbeatTimeout);
    const every = BigInt(this.o.heartbeatEverySeconds ?? Math.max(1, Math.floor(timeout / 3)));
    const since = BigInt(n.lastHeartbeat);
    const risks: string[] = [];
    if (!n.exited && now - since >= every) {
      await this.send("heartbeat", `heartbeat:${getAddress(node)}:${since}`, {
        to: await staking.getAddress(),
        data: staking.interface.encodeFunctionData("heartbeat", [node]),
      });
    }
    if (now - since > BigInt(timeout))
      risks.push(`heartbeat overdue by ${now - since - BigInt(timeout)} s`);
    if (n.jailed) risks.push("the node is jailed (its operator unjails it after the cool-down)");

    let enclave: string | null = null;
    let expiresIn: number | null = null;
    if (this.o.enclave !== undefined) {
      const e = await this.keepEnclave(now);
      enclave = e.enclave;
      expiresIn = e.expiresIn;
      if (e.risk !== null) risks.push(e.risk);
    }
    if (this.lastFailure !== null) risks.push(`last transaction failed: ${this.lastFailure}`);
    this.last = {
      node: getAddress(node),
      heartbeatAge: Number(now - since),
      heartbeatTimeout: timeout,
      jailed: n.jailed,
      enclave,
      enclaveExpiresIn: expiresIn,
      risk: risks.length === 0 ? null : risks.join("; "),
    };
    return this.last;
  }

  private async keepEnclave(
    now: bigint,
  ): Promise<{ enclave: string | null; expiresIn: number | null; risk: string | null }> {
    const { tee, node } = this.o;
    let key: string;
    try {
      key = getAddress(await this.o.enclave!.address());
    } catch (error) {
      this.fail("renew", `the enclave does not answer: ${(error as Error).message}`);
      return { enclave: null, expiresIn: null, risk: "the enclave does not answer" };
    }
    const record = (await tee.getFunction("getEnclave")(key)) as {
      node: string;
      expiresAt: bigint;
      deregisteredAt: bigint;
      measurement: string;
    };
    const teeAddress = await tee.getAddress();
    if (getAddress(record.node) === getAddress("0x" + "0".repeat(40))) {
      // A new key (the enclave restarted): register it with its own attestation.
      const doc = await this.o.enclave!.attestation(randomBytes(32));
      const parsed = parsePayload(parseCoseSign1(doc).payload);
      readBinding(parsed.publicKey, parsed.userData); // the document binds this key
      const measurement = measurementFromPcrs(attestedPcrs(doc));
      await this.send("registration", `register:${key}:0`, {
        to: teeAddress,
        data: tee.interface.encodeFunctionData("registerEnclave", [node, key, measurement, doc]),
      });
      return { enclave: key, expiresIn: null, risk: `enclave ${key} is not registered yet` };
    }
    if (getAddress(record.node) !== getAddress(node)) {
      const why = `enclave ${key} is registered to another node (${record.node})`;
      this.fail("register", why);
      return { enclave: key, expiresIn: null, risk: why };
    }
    if (BigInt(record.deregisteredAt) !== 0n) {
      return {
        enclave: key,
        expiresIn: 0,
        risk: `enclave ${key} was deregistered: restart it for a new key`,
      };
    }
    const ttl = Number((await tee.getFunction("registrationTtl")()) as bigint);
    const before = BigInt(this.o.renewBeforeSeconds ?? Math.max(1, Math.floor(ttl / 3)));
    const expiresAt = BigInt(record.expiresAt);
    const left = expiresAt - now;
    if (left < before) {
      const doc = await this.o.enclave!.attestation(randomBytes(32));
      await this.send("registration", `renew:${key}:${expiresAt}`, {
        to: teeAddress,
        data: tee.interface.encodeFunctionData("renewEnclave", [key, doc]),
      });
    }
    return {
      enclave: key,
      expiresIn: Number(left),
      risk: left <= 0n ? `enclave ${key}'s registration lapsed ${-left} s ago` : null,
    };
  }

  /** Submits (idempotently) and waits; a failure is counted, logged and retried next round. */
  private async send(
    kind: "heartbeat" | "registration",
    key: string,
    tx: { to: string; data: string },
  ): Promise<void> {
    const { sender, log } = this.o;
    const action =
      kind === "heartbeat" ? "heartbeat" : key.startsWith("register") ? "register" : "renew";
    sender.submit({ key, kind, ...tx });
    sender.retry(key);
    // Bounded: a transaction that cannot be mined (a signer without gas, a node that drops it)
    // must not stall the keeper; the next round looks again under the same key.
    const waitMs = this.o.confirmWithinMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      sender.wait(key),
      new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), waitMs);
      }),
    ]).finally(() => clearTimeout(timer));
    if (outcome === null) {
      this.fail(
        action,
        `the transaction was not confirmed within ${Math.round(waitMs / 1000)} s (does the signer key hold gas?)`,
      );
      return;
    }
    if (outcome.status === "failed") {
      this.fail(action, outcome.reason ?? "reverted");
      return;
    }
    this.lastFailure = null;
    log.info({ at: "NodeKeeper#send", action, key, tx: outcome.txHash || null }, `${action} done`);
  }

  private fail(action: "heartbeat" | "register" | "renew", reason: string): void {
    this.lastFailure = `${action}: ${reason}`;
    this.o.onFailure?.(action, reason);
    this.o.log.error(
      { at: "NodeKeeper", action, reason, node: this.o.node },
      `cannot ${action}: ${reason}`,
    );
  }
}
