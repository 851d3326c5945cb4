/**
 * What the enclave reads from the chain, and why each is safe to read through an RPC its host runs:
 *
 *   - its client node's signer key and the key's record (NodeStaking): only receipts signed by that
 *     key are logged. A lying RPC could make the enclave accept another key, but every batch names
 *     the signer and InferenceLedger checks it against NodeStaking itself, so such a batch never
 *     anchors: the lie costs the liar its own batches, it cannot attribute receipts to a node.
 *   - the sample rate governance requires (InferenceLedger.sampleRate): the batch carries the rate
 *     the enclave drew at, and the chain refuses one below governance's rate.
 *   - its own next sequence number (InferenceLedger.nextSequenceOf), to start numbering and to
 *     drop batches once they are anchored.
 *   - on a local chain only, the latest block time (the development clock, chain/clock.ts).
 */
import { Contract, JsonRpcProvider, Network, getAddress, type Provider } from "ethers";

import { loadAbi } from "../chain/artifacts.js";

export interface SignerRecord {
  node: string;
  since: bigint;
  until: bigint;
}

export interface EnclaveChain {
  signerOf(node: string): Promise<string>;
  signerRecordOf(signer: string): Promise<SignerRecord>;
  sampleRatePpm(): Promise<number>;
  nextSequenceOf(enclave: string): Promise<bigint>;
  latestBlockTimestamp(): Promise<bigint>;
  /** When `enclave` was registered in TeeRegistry (0: never). Optional: in-process views may omit it. */
  registeredAtOf?(enclave: string): Promise<bigint>;
  close(): void;
}

/** EnclaveChain over JSON-RPC: the ledger given, NodeStaking read from it (STAKING). */
export async function connectEnclaveChain(
  rpcUrl: string,
  chainId: bigint,
  ledgerAddress: string,
): Promise<EnclaveChain> {
  const provider = new JsonRpcProvider(rpcUrl, Network.from(chainId), { staticNetwork: true });
  return enclaveChainOver(provider, ledgerAddress, () => provider.destroy());
}

/** EnclaveChain over an existing provider (an in-process chain: the demo). */
export async function enclaveChainOver(
  provider: Provider,
  ledgerAddress: string,
  close: () => void = () => {},
): Promise<EnclaveChain> {
  const ledger = new Contract(
    getAddress(ledgerAddress),
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
  return {
    registeredAtOf: async (enclave) => {
      const e = (await tee.getFunction("getEnclave")(enclave)) as { registeredAt: bigint };
      return BigInt(e.registeredAt);
    },
    signerOf: async (node) => getAddress(String(await staking.getFunction("signerOf")(node))),
    signerRecordOf: async (signer) => {
      const r = (await staking.getFunction("signerRecordOf")(signer)) as {
        node: string;
        since: bigint;
        until: bigint;
      };
      return { node: getAddress(r.node), since: BigInt(r.since), until: BigInt(r.until) };
    },
    sampleRatePpm: async () => Number(await ledger.getFunction("sampleRate")()),
    nextSequenceOf: async (enclave) =>
      BigInt(String(await ledger.getFunction("nextSequenceOf")(enclave))),
    latestBlockTimestamp: async () => {
      const block = await provider.getBlock("latest");
      return BigInt(block?.timestamp ?? 0);
    },
    close,
  };
}
