/**
 * ModelRegistry over JSON-RPC: registering a model (`opg model publish`) and listing the registered
 * ones with their current owner, URI and shares (the relayer's GET /v1/models, the explorer).
 * Imports nothing from node:fs, so the explorer's page uses it as it is.
 */
import { getAddress, isAddress } from "ethers";
import type { Provider, Signer } from "ethers";

import { InputError } from "../common/errors.js";
import { sendOrExplain } from "../staking/revert.js";
import { ModelRegistry__factory } from "../../types/ethers-contracts/index.js";

/** Mirrors ModelRegistry.MAX_CONTRIBUTORS and its 10,000 basis points. */
export const MAX_CONTRIBUTORS = 64;
export const WHOLE_BPS = 10_000;

export interface Contributor {
  address: string;
  shareBps: number;
}

/** A bad `--contributors` list: exit code 2, before any transaction. */
export class ContributorSharesError extends InputError {
  override name = "ContributorSharesError";
}

/**
 * `addr:bps,addr:bps,...` → contributors, checked as ModelRegistry checks them: 1..64 distinct
 * non-zero addresses, whole non-zero basis points summing to 10,000.
 */
export function parseContributors(text: string): Contributor[] {
  const parts = text
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "");
  if (parts.length === 0 || parts.length > MAX_CONTRIBUTORS)
    throw new ContributorSharesError(
      `--contributors needs 1 to ${MAX_CONTRIBUTORS} entries address:basisPoints`,
      { details: { count: parts.length } },
    );
  const out: Contributor[] = [];
  for (const part of parts) {
    const [addr, share, extra] = part.split(":");
    if (addr === undefined || share === undefined || extra !== undefined || !isAddress(addr))
      throw new ContributorSharesError(`"${part}" is not address:basisPoints`, {
        details: { entry: part },
      });
    if (!/^[0-9]+$/.test(share) || Number(share) < 1 || Number(share) > WHOLE_BPS)
      throw new ContributorSharesError(
        `the share of ${addr} must be whole basis points from 1 to ${WHOLE_BPS}`,
        { details: { contributor: addr, share } },
      );
    const address = getAddress(addr);
    if (BigInt(address) === 0n)
      throw new ContributorSharesError("a contributor is the zero address", {
        details: { entry: part },
      });
    if (out.some((c) => c.address === address))
      throw new ContributorSharesError(`${address} is listed twice`, {
        details: { contributor: address },
      });
    out.push({ address, shareBps: Number(share) });
  }
  const total = out.reduce((n, c) => n + c.shareBps, 0);
  if (total !== WHOLE_BPS)
    throw new ContributorSharesError(`the shares sum to ${total} basis points, not ${WHOLE_BPS}`, {
      details: { total, shares: out.map((c) => `${c.address}:${c.shareBps}`) },
    });
  return out;
}

export interface Registration {
  modelId: string;
  specHash: string;
  metadataUri: string;
  contributors: Contributor[];
}

/**
 * ModelRegistry.registerModel from `signer`; a revert becomes a VerificationError naming the custom
 * error and its values (ModelRegistryAlreadyRegistered with the owner, ...).
 */
export async function registerModel(
  signer: Signer,
  registry: string,
  r: Registration,
): Promise<{ txHash: string; block: number; owner: string }> {
  const contract = ModelRegistry__factory.connect(registry, signer);
  return sendOrExplain(
    contract.interface,
    `ModelRegistry.registerModel(${r.modelId})`,
    async () => {
      const tx = await contract.registerModel(
        r.modelId,
        r.metadataUri,
        r.specHash,
        r.contributors.map((c) => c.address),
        r.contributors.map((c) => c.shareBps),
      );
      const receipt = await tx.wait();
      if (receipt === null || receipt.status !== 1)
        throw new Error(`transaction ${tx.hash} failed`);
      return { txHash: tx.hash, block: receipt.blockNumber, owner: await signer.getAddress() };
    },
  );
}

export interface RegisteredModel {
  modelId: string;
  owner: string;
  specHash: string;
  metadataUri: string;
  contributors: Contributor[];
  /** Block of its ModelRegistered event. */
  registeredAt: number;
}

export interface ListOptions {
  fromBlock?: number;
  /** Largest eth_getLogs range per call (default 10,000). */
  maxBlockRange?: number;
}

/** Every registered model, in registration order, with its current owner, URI and shares. */
export async function registeredModels(
  provider: Provider,
  registry: string,
  options: ListOptions = {},
): Promise<RegisteredModel[]> {
  const contract = ModelRegistry__factory.connect(registry, provider);
  const latest = await provider.getBlockNumber();
  const step = options.maxBlockRange ?? 10_000;
  const events = [];
  for (let from = options.fromBlock ?? 0; from <= latest; from += step)
    events.push(
      ...(await contract.queryFilter(
        contract.filters.ModelRegistered(),
        from,
        Math.min(latest, from + step - 1),
      )),
    );
  return Promise.all(
    events.map(async (e) => {
      const modelId = e.args.modelId;
      const [model, [contributors, shares]] = await Promise.all([
        contract.modelOf(modelId),
        contract.contributorsOf(modelId),
      ]);
      return {
        modelId,
        owner: model.owner,
        specHash: model.specHash,
        metadataUri: model.metadataUri,
        contributors: contributors.map((address, i) => ({
          address,
          shareBps: Number(shares[i]),
        })),
        registeredAt: e.blockNumber,
      };
    }),
  );
}
