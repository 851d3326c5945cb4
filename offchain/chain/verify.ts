/**
 * Checks a receipt bundle against the chain: every check is reported with why it failed, so
 * `opg receipt verify` can print them and a relayer or explorer can show them.
 *
 * A receipt's validity rests on what the chain recorded when its batch was anchored, not on the
 * registry's state today: InferenceLedger accepted the batch only from an active enclave, naming
 * the GPU node and the signer key that was the node's at the batch's `asOf` (read back from the
 * anchoring transaction's calldata). So an enclave registration that lapsed since, a node that
 * rotated its key or left, does not make a correctly anchored receipt fail. What the chain learned
 * later that undermines it is reported: the enclave's image revoked for cause, or the enclave's node
 * slashed for equivocation, as named warnings (the receipt still matches the stored root, but the
 * enclave that vouched for it is no longer trusted); this receipt contradicted by an enclave, or
 * its node slashed for a double receipt on this request, as failures.
 */
import {
  AbiCoder,
  Contract,
  Interface,
  JsonRpcProvider,
  Network,
  ZeroAddress,
  getAddress,
  keccak256,
} from "ethers";
import type { Provider } from "ethers";

import { InputError } from "../common/errors.js";
import type { LedgerAbis } from "./artifacts.js";
import type { ReceiptBundle } from "./bundle.js";
import { ledgerDomain, receiptStructHash } from "./eip712.js";
import { verifyReceiptProof } from "./merkle.js";
import { recoverReceiptSigner, recoverVerdictSigner } from "./receipts.js";

export interface Check {
  name: string;
  ok: boolean;
  /** What was found: why it passed, or why not. */
  detail: string;
  /** A named warning: the check passes, but the chain has since learned something against it. */
  warning?: string;
}

const INFERENCE_ROLE = 1n;
/** IInferenceLedger.Offence */
const OFFENCE = { DOUBLE_RECEIPT: 0, CONTRADICTED_RECEIPT: 1, BATCH_EQUIVOCATION: 2 } as const;

/** What the anchoring transaction's calldata says about the batch. */
interface AnchoredBatch {
  enclave: string;
  sequence: bigint;
  root: string;
  count: bigint;
  node: string;
  signer: string;
  asOf: bigint;
  sampleRatePpm: bigint;
  block: number;
}

/** Connects to a JSON-RPC URL, failing fast (InputError) when it does not answer eth_chainId. */
export async function connectRpc(url: string, timeoutMs = 10_000): Promise<JsonRpcProvider> {
  let chainId: bigint;
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = (await response.json()) as { result?: unknown };
    if (typeof body.result !== "string") throw new Error(`no chain id in ${JSON.stringify(body)}`);
    chainId = BigInt(body.result);
  } catch (cause) {
    throw new InputError("cannot reach the JSON-RPC endpoint", {
      details: { rpc: url, reason: cause instanceof Error ? cause.message : String(cause) },
      hint: "pass --rpc with the URL of a node of the chain the receipt was anchored on",
      cause,
    });
  }
  return new JsonRpcProvider(url, undefined, { staticNetwork: Network.from(chainId) });
}

function errorName(iface: Interface, error: unknown): string {
  const data = (error as { data?: unknown }).data;
  if (typeof data === "string") {
    const parsed = iface.parseError(data);
    if (parsed !== null) return `${parsed.name}(${parsed.args.join(", ")})`;
  }
  return error instanceof Error ? error.message : String(error);
}

/** Runs every check of `bundle` against the chain behind `provider`; never throws for a failed check. */
export async function verifyReceiptBundle(
  bundle: ReceiptBundle,
  provider: Provider,
  abis: LedgerAbis,
): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (name: string, ok: boolean, detail: string, warning?: string): boolean => {
    checks.push({ name, ok, detail, ...(warning !== undefined ? { warning } : {}) });
    return ok;
  };
  const contracts = await connectContracts(bundle, provider, abis, add);
  if (contracts === null) return checks;
  const { ledger, ledgerIface, staking, tee } = contracts;
  const { receipt } = bundle;
  const domain = ledgerDomain(bundle.chainId, bundle.ledger);

  // The batch: its root is stored, and the transaction that anchored it says what it was.
  let root: string;
  try {
    root = (await ledger.getFunction("rootOf")(bundle.batchId)) as string;
  } catch (error) {
    add("batch anchored", false, `batch ${bundle.batchId}: ${errorName(ledgerIface, error)}`);
    return checks;
  }
  add("batch anchored", true, `batch ${bundle.batchId} has root ${root}`);
  const anchored = await readAnchoringTx(bundle, root, provider, ledgerIface);
  if (!add("anchoring transaction", anchored.batch !== null, anchored.detail)) return checks;
  const batch = anchored.batch!;

  // The GPU node: the batch holds its receipts, and the key that signed this one was the node's
  // signer at the batch's time (as NodeStaking recorded it; the ledger checked it when anchoring).
  const role = (await staking.getFunction("roleOf")(receipt.node)) as bigint;
  add(
    "node role",
    role === INFERENCE_ROLE && getAddress(receipt.node) === batch.node,
    role !== INFERENCE_ROLE
      ? `${receipt.node} has role ${role} in NodeStaking, not INFERENCE (1)`
      : getAddress(receipt.node) === batch.node
        ? `${receipt.node} is an INFERENCE node, and the batch holds its receipts`
        : `the receipt names ${receipt.node}, but the batch holds the receipts of ${batch.node}`,
  );
  const recovered = recoverReceiptSigner(domain, receipt, bundle.nodeSignature);
  const [, validAtBatch] = (await staking.getFunction("signerStatus")(
    batch.node,
    batch.signer,
    batch.asOf,
  )) as [bigint, boolean];
  add(
    "receipt signature",
    recovered === batch.signer && validAtBatch,
    recovered !== batch.signer
      ? `signed by ${recovered}, but the batch's receipts are signed by ${batch.signer}`
      : validAtBatch
        ? `signed by ${recovered}, the node's signer at ${isoTime(batch.asOf)} (NodeStaking.signerStatus)`
        : `signed by ${recovered}, which NodeStaking does not record as the node's signer at ${isoTime(batch.asOf)}`,
  );

  // The enclave that built the batch, and whether the chain has turned against it since.
  await checkEnclave("batch enclave", batch.enclave, batch.asOf, tee, ledger, provider, add);

  // The enclave's verdict, when the receipt was re-executed.
  if (bundle.verdict !== undefined && bundle.enclaveSignature !== undefined) {
    const { verdict } = bundle;
    const receiptHash = receiptStructHash(receipt);
    const about = verdict.receiptHash.toLowerCase() === receiptHash.toLowerCase();
    add(
      "verdict subject",
      about,
      about
        ? "the verdict is about this receipt"
        : `the verdict is about ${verdict.receiptHash}, not ${receiptHash}`,
    );
    const agrees =
      verdict.agree && verdict.outputHash.toLowerCase() === receipt.outputHash.toLowerCase();
    add(
      "verdict agrees",
      agrees,
      agrees
        ? "the enclave re-executed and got the same output (within the model's tolerance)"
        : `the enclave disagreed: agree=${verdict.agree}, its output hash ${verdict.outputHash}`,
    );
    const enclave = recoverVerdictSigner(domain, verdict, bundle.enclaveSignature);
    await checkEnclave("verdict enclave", enclave, verdict.timestamp, tee, ledger, provider, add);
  }

  // What the chain learned about this receipt itself: contradicted, or a second output signed.
  const contradicted = (await ledger.getFunction("isOffenceSlashed")(
    offenceKey(["uint8", "bytes32"], [OFFENCE.CONTRADICTED_RECEIPT, receiptStructHash(receipt)]),
  )) as boolean;
  const doubled = (await ledger.getFunction("isOffenceSlashed")(
    offenceKey(
      ["uint8", "address", "bytes32"],
      [OFFENCE.DOUBLE_RECEIPT, receipt.node, receipt.requestId],
    ),
  )) as boolean;
  add(
    "no evidence against it",
    !contradicted && !doubled,
    contradicted
      ? "an enclave contradicted this receipt and its node was slashed for it (reportContradictedReceipt)"
      : doubled
        ? "its node was slashed for signing two outputs for this request (reportDoubleReceipt)"
        : "no contradiction or double receipt of this receipt was reported",
  );

  // The proof, locally and on chain.
  const local = verifyReceiptProof(root, receipt, bundle.proof);
  add(
    "merkle proof",
    local,
    local
      ? `the receipt's leaf and ${bundle.proof.length} sibling hashes give the stored root`
      : "the receipt's leaf and the proof do not give the stored root (receipt altered or wrong proof)",
  );
  const onChain = (await ledger.getFunction("verifyReceipt")(
    bundle.batchId,
    receipt,
    bundle.proof,
  )) as boolean;
  add(
    "verifyReceipt",
    onChain,
    onChain
      ? "InferenceLedger.verifyReceipt returned true"
      : "InferenceLedger.verifyReceipt returned false",
  );
  return checks;
}

/** The checks as lines: PASS, WARN (a named warning) or FAIL, the check's name and what was found. */
export function formatChecks(checks: readonly Check[]): string {
  return checks
    .map(
      (c) =>
        `  ${c.ok ? (c.warning !== undefined ? "WARN" : "PASS") : "FAIL"}  ${c.name}: ${c.detail}${c.warning !== undefined ? ` [warning: ${c.warning}]` : ""}`,
    )
    .join("\n");
}

type Add = (name: string, ok: boolean, detail: string, warning?: string) => boolean;

/** The chain and ledger the bundle names, and the contracts the ledger depends on; null on failure. */
async function connectContracts(
  bundle: ReceiptBundle,
  provider: Provider,
  abis: LedgerAbis,
  add: Add,
): Promise<{ ledger: Contract; ledgerIface: Interface; staking: Contract; tee: Contract } | null> {
  const { chainId } = await provider.getNetwork();
  const sameChain = chainId === bundle.chainId;
  if (
    !add(
      "chain",
      sameChain,
      sameChain
        ? `RPC serves chain ${chainId}, as the bundle says`
        : `RPC serves chain ${chainId}, but the bundle was anchored on chain ${bundle.chainId}`,
    )
  ) {
    return null;
  }
  const code = await provider.getCode(bundle.ledger);
  if (
    !add(
      "ledger contract",
      code !== "0x",
      code !== "0x"
        ? `code at ${bundle.ledger}`
        : `no contract at ${bundle.ledger} on chain ${chainId}`,
    )
  ) {
    return null;
  }
  const ledgerIface = new Interface(abis.ledger);
  const ledger = new Contract(bundle.ledger, ledgerIface, provider);
  try {
    const stakingAddress = (await ledger.getFunction("STAKING")()) as string;
    const teeAddress = (await ledger.getFunction("TEE_REGISTRY")()) as string;
    return {
      ledger,
      ledgerIface,
      staking: new Contract(stakingAddress, abis.staking, provider),
      tee: new Contract(teeAddress, abis.tee, provider),
    };
  } catch (error) {
    add(
      "ledger contract",
      false,
      `the contract does not answer as an InferenceLedger: ${errorName(ledgerIface, error)}`,
    );
    return null;
  }
}

/** The batch as the anchoring transaction's calldata and BatchAnchored event give it. */
async function readAnchoringTx(
  bundle: ReceiptBundle,
  root: string,
  provider: Provider,
  ledgerIface: Interface,
): Promise<{ batch: AnchoredBatch | null; detail: string }> {
  const [tx, txReceipt] = await Promise.all([
    provider.getTransaction(bundle.anchorTx),
    provider.getTransactionReceipt(bundle.anchorTx),
  ]);
  if (tx === null || txReceipt === null) {
    return { batch: null, detail: `transaction ${bundle.anchorTx} not found` };
  }
  if (txReceipt.status !== 1) {
    return { batch: null, detail: `transaction ${bundle.anchorTx} reverted` };
  }
  const emitted = txReceipt.logs.some((log) => {
    if (log.address.toLowerCase() !== bundle.ledger.toLowerCase()) return false;
    const parsed = ledgerIface.parseLog(log);
    return (
      parsed?.name === "BatchAnchored" &&
      (parsed.args.getValue("batchId") as bigint) === bundle.batchId &&
      (parsed.args.getValue("root") as string).toLowerCase() === root.toLowerCase()
    );
  });
  if (!emitted) {
    return {
      batch: null,
      detail: `transaction ${bundle.anchorTx} did not anchor batch ${bundle.batchId} on ${bundle.ledger}`,
    };
  }
  const call =
    tx.to !== null && tx.to.toLowerCase() === bundle.ledger.toLowerCase()
      ? ledgerIface.parseTransaction({ data: tx.data })
      : null;
  if (call?.name !== "anchorBatch") {
    return {
      batch: null,
      detail: `transaction ${bundle.anchorTx} anchored the batch through another contract: its batch header cannot be read from the calldata`,
    };
  }
  const b = call.args.getValue("batch") as Record<string, unknown>;
  const batch: AnchoredBatch = {
    enclave: getAddress(String(b.enclave)),
    sequence: BigInt(b.sequence as bigint),
    root: String(b.root),
    count: BigInt(b.count as bigint),
    node: getAddress(String(b.node)),
    signer: getAddress(String(b.signer)),
    asOf: BigInt(b.asOf as bigint),
    sampleRatePpm: BigInt(b.sampleRatePpm as bigint),
    block: txReceipt.blockNumber,
  };
  return {
    batch,
    detail: `block ${batch.block}: ${batch.count} receipt${batch.count === 1n ? "" : "s"} of node ${batch.node} by enclave ${batch.enclave} (sequence ${batch.sequence}), as of ${isoTime(batch.asOf)}, sampled at ${Number(batch.sampleRatePpm) / 10_000} %`,
  };
}

/**
 * The enclave key answered for what it signed at `at` (TeeRegistry.accountableNodeOf): registered
 * then under an image not revoked for cause. A revocation for cause, or the enclave's node slashed
 * for equivocation, is a named warning.
 */
async function checkEnclave(
  name: string,
  enclave: string,
  at: bigint,
  tee: Contract,
  ledger: Contract,
  provider: Provider,
  add: Add,
): Promise<void> {
  const accountable = getAddress(
    (await tee.getFunction("accountableNodeOf")(enclave, at)) as string,
  );
  const record = (await tee.getFunction("getEnclave")(enclave)) as {
    node: string;
    measurement: string;
  };
  const status = (await tee.getFunction("measurementStatus")(record.measurement)) as {
    revokedForCause: boolean;
    revokedAt: bigint;
  };
  if (accountable === ZeroAddress && !status.revokedForCause) {
    add(
      name,
      false,
      getAddress(record.node) === ZeroAddress
        ? `${enclave} never registered in the TeeRegistry`
        : `${enclave} was not registered (or was retired) at ${isoTime(at)}`,
    );
    return;
  }
  if (status.revokedForCause) {
    add(
      name,
      true,
      `${enclave} (node ${record.node}) signed this at ${isoTime(at)}; its image ${record.measurement} was revoked for cause at ${isoTime(status.revokedAt)}`,
      "enclave image revoked for cause",
    );
    return;
  }
  const slashes = await ledger.queryFilter(
    ledger.filters.OffenceSlashed!(OFFENCE.BATCH_EQUIVOCATION, accountable),
    0,
    await provider.getBlockNumber(),
  );
  if (slashes.length > 0) {
    add(
      name,
      true,
      `${enclave} (node ${accountable}) signed this at ${isoTime(at)}; its node was slashed for signing two batches with one sequence number`,
      "enclave node slashed for equivocation",
    );
    return;
  }
  add(
    name,
    true,
    `${enclave} was registered to VERIFIER node ${accountable} at ${isoTime(at)} (TeeRegistry.accountableNodeOf)`,
  );
}

function offenceKey(types: string[], values: unknown[]): string {
  return keccak256(AbiCoder.defaultAbiCoder().encode(types, values));
}

function isoTime(seconds: bigint): string {
  const ms = Number(seconds) * 1000;
  return Number.isFinite(ms) && ms < 8.64e15 ? new Date(ms).toISOString() : `${seconds} s`;
}
