/**
 * The time the off-chain parts put in what they sign (receipt timestamps, verdict timestamps, a
 * batch's `asOf`) and compare with what the chain records (signer rotations, registrations).
 *
 * On a real network that is the machine's clock, which the chain follows within seconds. A local
 * development chain can be moved forward by hand (`evm_increaseTime`, the soak's simulated month),
 * so there the clock follows the chain: never behind the latest block's timestamp plus the time
 * elapsed since it was seen, never behind the machine's clock, and never going backwards. Only
 * local chains may use it: on a real network the RPC is not trusted for time.
 */
import { InputError } from "../common/errors.js";

/** Chain ids of local development chains (Hardhat, Ganache/anvil defaults). */
export const LOCAL_CHAIN_IDS: readonly bigint[] = [31337n, 1337n];

export interface Clock {
  /** Unix seconds. */
  now(): bigint;
}

export const systemClock: Clock = { now: () => BigInt(Math.floor(Date.now() / 1000)) };

export type ClockMode = "system" | "chain";

/** Follows a local chain's latest block time (see the file's comment). */
export class ChainClock implements Clock {
  private seenTimestamp = 0n;
  private seenAtMs = 0;
  private last = 0n;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly latestBlockTimestamp: () => Promise<bigint>,
    private readonly refreshMs = 1_000,
  ) {}

  now(): bigint {
    const wall = BigInt(Math.floor(Date.now() / 1000));
    const chain = this.seenTimestamp + BigInt(Math.floor((Date.now() - this.seenAtMs) / 1000));
    let t = wall > chain ? wall : chain;
    if (t < this.last) t = this.last;
    this.last = t;
    return t;
  }

  /** Reads the chain's latest block time now. */
  async sync(): Promise<void> {
    const ts = await this.latestBlockTimestamp();
    this.seenTimestamp = ts;
    this.seenAtMs = Date.now();
  }

  /** Syncs once, then every `refreshMs` in the background (failures keep the last reading). */
  async start(): Promise<void> {
    await this.sync();
    this.timer = setInterval(() => {
      this.sync().catch(() => undefined);
    }, this.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** The default mode for a chain: "chain" on local chains, "system" elsewhere. */
export function defaultClockMode(chainId: bigint): ClockMode {
  return LOCAL_CHAIN_IDS.includes(chainId) ? "chain" : "system";
}

/** Refuses a chain-following clock on a real network, where the RPC's time is not to be trusted. */
export function checkClockMode(mode: ClockMode, chainId: bigint): void {
  if (mode === "chain" && !LOCAL_CHAIN_IDS.includes(chainId)) {
    throw new InputError(`a clock that follows the chain is only allowed on local chains`, {
      details: { chainId, localChainIds: LOCAL_CHAIN_IDS },
    });
  }
}
