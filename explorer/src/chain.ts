/** The chain as the page sees it: a JSON-RPC provider on the server's same-origin /rpc, and the record. */
import { JsonRpcProvider, Network } from "ethers";

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
  const provider = new JsonRpcProvider(rpc, undefined, {
    staticNetwork: Network.from(chainId),
    batchMaxCount: 20,
  });
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
