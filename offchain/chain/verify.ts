/**
 * Checks a receipt bundle against the chain: every check is reported with why it failed, so
 * `opg receipt verify` can print them and a relayer or explorer can show them.
 */
import { Contract, Interface, JsonRpcProvider, Network, ZeroAddress, getAddress } from "ethers";
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
}

const INFERENCE_ROLE = 1n;

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
  const add = (name: string, ok: boolean, detail: string): boolean => {
    checks.push({ name, ok, detail });
    return ok;
  };
  const { receipt } = bundle;

  // The chain and the ledger are the ones the bundle names; nothing else is meaningful otherwise.
  const { chainId } = await provider.getNetwork();
  if (
    !add(
      "chain",
      chainId === bundle.chainId,
      chainId === bundle.chainId
        ? `RPC serves chain ${chainId}, as the bundle says`
        : `RPC serves chain ${chainId}, but the bundle was anchored on chain ${bundle.chainId}`,
    )
  ) {
    return checks;
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
    return checks;
  }
  const ledgerIface = new Interface(abis.ledger);
  const ledger = new Contract(bundle.ledger, ledgerIface, provider);
  let stakingAddress: string;
  let teeAddress: string;
  try {
    stakingAddress = (await ledger.getFunction("STAKING")()) as string;
    teeAddress = (await ledger.getFunction("TEE_REGISTRY")()) as string;
  } catch (error) {
    add(
      "ledger contract",
      false,
      `the contract does not answer as an InferenceLedger: ${errorName(ledgerIface, error)}`,
    );
    return checks;
  }
  const staking = new Contract(stakingAddress, abis.staking, provider);
  const tee = new Contract(teeAddress, abis.tee, provider);
  const domain = ledgerDomain(bundle.chainId, bundle.ledger);

  // The GPU node's signature, by the node's signer in NodeStaking.
  const role = (await staking.getFunction("roleOf")(receipt.node)) as bigint;
  add(
    "node role",
    role === INFERENCE_ROLE,
    role === INFERENCE_ROLE
      ? `${receipt.node} is an INFERENCE node`
      : `${receipt.node} has role ${role} in NodeStaking, not INFERENCE (1)`,
  );
  const signer = getAddress((await staking.getFunction("signerOf")(receipt.node)) as string);
  const recovered = recoverReceiptSigner(domain, receipt, bundle.nodeSignature);
  // A key the node has rotated away from still attributes the receipts it signed to the node.
  const former =
    recovered !== signer &&
    ((await staking.getFunction("wasSignerOf")(receipt.node, recovered)) as boolean);
  add(
    "receipt signature",
    (recovered === signer && signer !== ZeroAddress) || former,
    recovered === signer
      ? `signed by ${recovered}, the node's signer (NodeStaking.signerOf)`
      : former
        ? `signed by ${recovered}, a former signer of the node (NodeStaking.wasSignerOf; now ${signer})`
        : `signed by ${recovered}, but NodeStaking.signerOf(${receipt.node}) is ${signer}`,
  );

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
        ? "the enclave re-executed and got the same output"
        : `the enclave disagreed: agree=${verdict.agree}, its output hash ${verdict.outputHash}`,
    );
    const enclave = recoverVerdictSigner(domain, verdict, bundle.enclaveSignature);
    const active = (await tee.getFunction("isActiveEnclave")(enclave)) as boolean;
    add(
      "verdict enclave",
      active,
      active
        ? `signed by ${enclave}, an active enclave`
        : `signed by ${enclave}, which is not an active enclave in the TeeRegistry`,
    );
  }

  // The batch: its root is stored, the anchoring transaction emitted it (with its enclave), the enclave is
  // still active, and the proof holds locally and on chain.
  let root: string;
  try {
    root = (await ledger.getFunction("rootOf")(bundle.batchId)) as string;
  } catch (error) {
    add("batch anchored", false, `batch ${bundle.batchId}: ${errorName(ledgerIface, error)}`);
    return checks;
  }
  add("batch anchored", true, `batch ${bundle.batchId} has root ${root}`);

  const txReceipt = await provider.getTransactionReceipt(bundle.anchorTx);
  let enclave: string | undefined;
  let why = `transaction ${bundle.anchorTx} not found`;
  if (txReceipt !== null) {
    why = `transaction ${bundle.anchorTx} did not anchor batch ${bundle.batchId} on ${bundle.ledger}`;
    for (const log of txReceipt.logs) {
      if (log.address.toLowerCase() !== bundle.ledger.toLowerCase()) continue;
      const parsed = ledgerIface.parseLog(log);
      if (
        parsed?.name === "BatchAnchored" &&
        (parsed.args.getValue("batchId") as bigint) === bundle.batchId &&
        (parsed.args.getValue("root") as string).toLowerCase() === root.toLowerCase()
      ) {
        enclave = parsed.args.getValue("enclave") as string;
        const sequence = parsed.args.getValue("sequence") as bigint;
        const count = parsed.args.getValue("count") as bigint;
        why = `block ${txReceipt.blockNumber}: ${count} receipt${count === 1n ? "" : "s"}, enclave ${enclave} sequence ${sequence}`;
      }
    }
    if (txReceipt.status !== 1) {
      enclave = undefined;
      why = `transaction ${bundle.anchorTx} reverted`;
    }
  }
  add("anchoring transaction", enclave !== undefined, why);
  if (enclave !== undefined) {
    const active = (await tee.getFunction("isActiveEnclave")(enclave)) as boolean;
    add(
      "batch enclave",
      active,
      active
        ? `${enclave} is an active enclave`
        : `${enclave} is not an active enclave now (revoked measurement, expired, or its node inactive)`,
    );
  }
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
