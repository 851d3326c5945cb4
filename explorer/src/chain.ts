/** The chain as the page sees it: a JSON-RPC provider on the server's same-origin /rpc, and the record. */
import { JsonRpcProvider, Network } from "ethers";
import type { BlockTag, Filter, FilterByBlockHash, Log } from "ethers";

export interface DeploymentView {
  record: {
    network: string;
    chainId: string;
    contracts: Record<string, { address: string; block: number }>;
    vesting?: { planFile: string; planHash: string };
  };
  plan: unknown;
  rewards: unknown;
  /** True when the server passes receipt lookups through to a relayer (opg explorer --relayer). */
  relayer: boolean;
  /** Widest eth_getLogs block range the server's /rpc forwards (opg explorer --max-log-range). */
  maxLogBlockRange: number;
}

/** A block tag as a number (negative: back from `latest`); null for "safe"/"finalized". */
function blockNumber(tag: BlockTag | undefined, latest: number): number | null {
  if (tag === undefined || tag === "latest" || tag === "pending") return latest;
  if (tag === "earliest") return 0;
  if (typeof tag === "number") return tag < 0 ? latest + tag : tag;
  if (typeof tag === "bigint") return Number(tag);
  return /^0x[0-9a-fA-F]+$/.test(tag) ? Number(BigInt(tag)) : null;
}

/**
 * The page's provider: its getLogs (and so every `queryFilter` from block 0) asks for at most
 * `maxRange` blocks per call, as the server answers, and joins the pieces.
 */
class RangedLogsProvider extends JsonRpcProvider {
  constructor(
    url: string,
    network: Network,
    private readonly maxRange: number,
  ) {
    super(url, undefined, { staticNetwork: network, batchMaxCount: 20 });
  }

  override async getLogs(filter: Filter | FilterByBlockHash): Promise<Log[]> {
    if ("blockHash" in filter && filter.blockHash != null) return super.getLogs(filter);
    const ranged = filter as Filter;
    const latest = await this.getBlockNumber();
    const from = blockNumber(ranged.fromBlock, latest);
    const to = blockNumber(ranged.toBlock, latest);
    if (from === null || to === null || to - from < this.maxRange) return super.getLogs(filter);
    const logs: Log[] = [];
    for (let start = from; start <= to; start += this.maxRange) {
      const end = Math.min(start + this.maxRange - 1, to);
      logs.push(...(await super.getLogs({ ...ranged, fromBlock: start, toBlock: end })));
    }
    return logs;
  }
}

export interface ChainContext {
  provider: JsonRpcProvider;
  chainId: bigint;
  view: DeploymentView;
  /** Latest block's timestamp (the chain's "now", which a local chain may have moved ahead). */
  now: bigint;
  address(name: string): string;
}

export async function connect(): Promise<ChainContext> {
  const response = await fetch("./deployment.json");
  if (!response.ok) throw new Error(`deployment.json: HTTP ${response.status}`);
  const view = (await response.json()) as DeploymentView;
  const rpc = new URL("./rpc", window.location.href).toString();
  const chainId = BigInt(view.record.chainId);
  const provider = new RangedLogsProvider(rpc, Network.from(chainId), view.maxLogBlockRange);
  const served = BigInt((await provider.send("eth_chainId", [])) as string);
  if (served !== chainId) {
    throw new Error(`the RPC serves chain ${served}, the record is for chain ${chainId}`);
  }
  const block = await provider.getBlock("latest");
  return {
    provider,
    chainId,
    view,
    now: BigInt(block?.timestamp ?? 0),
    address(name: string): string {
      const c = view.record.contracts[name];
      if (c === undefined) throw new Error(`${name} is not in the deployment record`);
      return c.address;
    },
  };
}
