/**
 * Who serves an on-chain request (InferenceLedger.eligibleAt, docs/anchoring.md "Who serves an
 * on-chain request"), computed off chain exactly as the ledger does: a node may fulfil from
 *
 *   requestedAt + floor(window * u * minStake / stake / 2^64)
 *
 * where u = the low 64 bits of keccak256(abi.encode(seed, node)) (so u / 2^64 is in [0, 1)), stake is
 * the node's active stake (at least minStake) and minStake the INFERENCE minimum. With window 0, or a
 * minimum of 0, every node may fulfil at once.
 */
import { AbiCoder, keccak256 } from "ethers";

const U64 = (1n << 64n) - 1n;

/** The draw of `node` for a request's seed: 64 bits, uniform. */
export function assignmentDraw(seed: string, node: string): bigint {
  return (
    BigInt(keccak256(AbiCoder.defaultAbiCoder().encode(["bytes32", "address"], [seed, node]))) & U64
  );
}

export function eligibleAt(
  request: { requestedAt: bigint; seed: string },
  node: string,
  o: { window: bigint; stake: bigint; minStake: bigint },
): bigint {
  if (o.window === 0n) return request.requestedAt;
  const stake = o.stake < o.minStake ? o.minStake : o.stake;
  if (stake === 0n) return request.requestedAt;
  const u = assignmentDraw(request.seed, node);
  return request.requestedAt + (((o.window * u * o.minStake) / stake) >> 64n);
}
