/**
 * The proof-anchoring part of `npm run demo`, with the real pieces: the ONNX model runs in the
 * inference engine, the GPU node signs EIP-712 receipts, the development enclave re-executes them on CPU
 * and signs a batch, the batch is anchored, a receipt is verified against the chain as an outsider would
 * (runAnchoringDemo); a GPU node that lies is caught by the enclave and slashed with the evidence
 * (runSlashDemo). The same pieces as running services: offchain/demo/relayer.ts.
 */
import path from "node:path";

import type { Signer } from "ethers";
import { id, keccak256, toUtf8Bytes } from "ethers";

import { buildReceiptBundle } from "../chain/bundle.js";
import type { ReceiptBundle } from "../chain/bundle.js";
import { loadLedgerAbis } from "../chain/artifacts.js";
import { receiptStructHash, type LedgerDomain, type Receipt } from "../chain/eip712.js";
import { buildReceiptTree } from "../chain/merkle.js";
import { formatChecks, verifyReceiptBundle } from "../chain/verify.js";
import type { System } from "../deploy/system.js";
import type { InferenceEngine } from "../inference/engine.js";
import { receiptFor, signReceipt } from "../inference/receipt.js";
import { outputHash, outputsFromJson, outputsToJson } from "../inference/tensor.js";
import type { Enclave } from "../tee/enclave.js";
import { formatOpg } from "../vesting/plan.js";

import type { Narrator } from "./narrator.js";

export interface AnchoringDemoContext {
  system: System;
  engine: InferenceEngine;
  enclave: Enclave;
  domain: LedgerDomain;
  gpuNode: string;
  gpuSigner: Signer;
  /** Registers the model and owns its registry entry. */
  modelOwner: Signer;
  /** The model's contributors (70 % / 30 %). */
  contributors: [string, string];
  /** Sends the anchoring transaction (the relayer's key). */
  relayer: Signer;
  /** Anyone: submits the evidence and earns the bounty. */
  watcher: Signer;
  modelsDir: string;
  now: () => Promise<bigint>;
  n: Narrator;
}

export interface AnchoringDemoResult {
  modelId: string;
  batchId: bigint;
  anchoredAt: bigint;
  receipts: number;
  /** The bundle of the receipt verified in the demo (for the explorer's "verify a receipt" box). */
  bundle: ReceiptBundle;
}

/** Deterministic demo features (risk-mlp's input): 16 values in [-1, 1) per row. */
export function features(seed: number): number[] {
  const bytes = keccak256(toUtf8Bytes(`opg-demo-features-${seed}`));
  return Array.from(
    { length: 16 },
    (_, i) => (parseInt(bytes.slice(2 + i * 4, 6 + i * 4), 16) / 65_536) * 2 - 1,
  );
}

/** The model and its contributors, receipts signed and checked, a batch anchored, a receipt verified. */
export async function runAnchoringDemo(ctx: AnchoringDemoContext): Promise<AnchoringDemoResult> {
  const { system, engine, enclave, n } = ctx;
  const { ledger, registry } = system;

  n.section("A model and its contributors; the GPU node infers, the enclave checks");
  const [model] = (await engine.loadModelsDir(ctx.modelsDir)).filter(
    (m) => m.manifest.name === "risk-mlp",
  );
  if (model === undefined) throw new Error(`risk-mlp is not in ${ctx.modelsDir}`);
  const modelId = model.modelId;
  if (!(await registry.isRegistered(modelId))) {
    await (
      await registry
        .connect(ctx.modelOwner)
        .registerModel(
          modelId,
          "ipfs://opg-demo/risk-mlp",
          id("risk-mlp spec v1"),
          ctx.contributors,
          [7_000, 3_000],
        )
    ).wait();
  }
  n.say(
    `model risk-mlp: modelId ${modelId} = keccak-256 of ${path.join("models", "risk-mlp", "model.onnx")}`,
  );
  n.say(`contributors: ${ctx.contributors[0]} 70 %, ${ctx.contributors[1]} 30 % (ModelRegistry)`);

  const receipts: Receipt[] = [];
  const signatures: string[] = [];
  let agreed = 0;
  const count = 8;
  for (let i = 0; i < count; i++) {
    const inputs = { features: { dims: [1, 16], data: features(i) } };
    const result = await engine.run(modelId, inputs);
    const receipt = receiptFor(result, {
      requestId: id(`demo-request-${i}`),
      node: ctx.gpuNode,
      timestamp: await ctx.now(),
    });
    receipts.push(receipt);
    const nodeSignature = await signReceipt(ctx.gpuSigner, ctx.domain, receipt);
    signatures.push(nodeSignature);
    const [outcome] = await enclave.submit([
      { receipt, nodeSignature, inputs, outputs: outputsToJson(result.outputs) },
    ]);
    if (outcome === undefined || !outcome.ok) {
      throw new Error(
        `the enclave refused receipt ${i}: ${outcome?.ok === false ? outcome.message : "no answer"}`,
      );
    }
    if (outcome.result.verdict?.agree === true) agreed += 1;
    if (i === 0) {
      n.say(
        `execution provider: ${engine.provider}; execution-config hash ${result.execConfigHash}`,
      );
      n.say(
        `request 0: risk = ${result.outputs[0]!.values[0]!} / ${result.outputs[0]!.scale} (quantised), outputHash ${receipt.outputHash}`,
      );
    }
  }
  n.say(
    `${count} receipts signed by the GPU node's key and logged by the enclave (it checked each signature against NodeStaking); at governance's sample rate ${enclave.sampleRatePpm / 10_000} % it re-executed ${agreed} of ${count} on CPU and agreed with all`,
  );

  n.section("The enclave cuts and signs the batch itself; the relayer anchors its Merkle root");
  const signed = await enclave.cutBatch(64);
  if (signed === null) throw new Error("the enclave has no receipts to batch");
  const byId = new Map(receipts.map((r, i) => [r.requestId.toLowerCase(), i]));
  const order = signed.requestIds.map((rid) => byId.get(rid)!);
  const tree = buildReceiptTree(order.map((i) => receipts[i]!));
  const tx = await ledger
    .connect(ctx.relayer)
    .anchorBatch(signed.batch, signed.signature, signed.modelIds, signed.counts);
  const mined = await tx.wait();
  const anchoredLog = mined!.logs
    .map((l) => ledger.interface.parseLog(l))
    .find((l) => l?.name === "BatchAnchored");
  const batchId = BigInt(anchoredLog!.args.getValue("batchId") as bigint);
  const block = await mined!.getBlock();
  const sequence = signed.batch.sequence;
  n.say(
    `batch ${batchId} (enclave << 64 | sequence ${sequence}): root ${signed.batch.root}, ${count} receipts of node ${ctx.gpuNode} signed by ${signed.batch.signer}, ${signed.batch.reexecuted} re-executed, gas ${mined!.gasUsed} (${mined!.gasUsed / BigInt(count)} per receipt)`,
  );

  n.section("Anyone verifies a receipt against the chain (what `opg receipt verify` runs)");
  const bundle = buildReceiptBundle({
    chainId: ctx.domain.chainId,
    ledger: await ledger.getAddress(),
    receipt: receipts[3]!,
    nodeSignature: signatures[3]!,
    batchId,
    proof: tree.proof(order.indexOf(3)),
    anchorTx: tx.hash,
  });
  const checks = await verifyReceiptBundle(bundle, ledger.runner!.provider!, loadLedgerAbis());
  n.block(formatChecks(checks));
  if (checks.some((c) => !c.ok)) throw new Error("the demo receipt did not verify");
  const altered = { ...receipts[3]!, outputHash: id("a different answer") };
  n.say(
    `the same proof for an altered receipt: verifyReceipt = ${await ledger.verifyReceipt(batchId, altered, tree.proof(order.indexOf(3)))}`,
  );

  return { modelId, batchId, anchoredAt: BigInt(block.timestamp), receipts: count, bundle };
}

/**
 * A GPU node lies, the enclave catches it, anyone submits the evidence and the node is slashed (and
 * jailed: run it after every step that needs the GPU node active).
 */
export async function runSlashDemo(ctx: AnchoringDemoContext, modelId: string): Promise<void> {
  const { system, engine, enclave, n } = ctx;
  const { ledger, staking } = system;
  const model = engine.get(modelId);

  n.section(
    "A GPU node lies; the enclave catches it; anyone submits the evidence; the node is slashed",
  );
  const inputs = { features: { dims: [1, 16], data: features(99) } };
  const honest = await engine.run(modelId, inputs);
  const forged = outputsToJson(honest.outputs).map((t) => ({
    ...t,
    values: t.values.map((v) => (BigInt(v) + 250_000n).toString()),
  }));
  const lieHash = outputHash(outputsFromJson(model.manifest, forged));
  const badReceipt = receiptFor(
    { ...honest, outputHash: lieHash },
    { requestId: id("demo-request-lie"), node: ctx.gpuNode, timestamp: await ctx.now() },
  );
  const badSignature = await signReceipt(ctx.gpuSigner, ctx.domain, badReceipt);
  n.say(
    `the GPU node signs risk ${forged[0]!.values[0]} / ${forged[0]!.scale} where the model says ${honest.outputs[0]!.values[0]}`,
  );
  const [outcome] = await enclave.submit([
    // Re-executed whatever the draw says, as every on-chain request is (at the 50 % rate a lie
    // escapes one check in two; the slash must outweigh what it gains meanwhile, docs/relayer.md).
    { receipt: badReceipt, nodeSignature: badSignature, inputs, outputs: forged, force: true },
  ]);
  const answer = outcome?.ok === true ? outcome.result : null;
  if (
    answer === null ||
    answer.verdict === null ||
    answer.signature === null ||
    answer.verdict.agree
  )
    throw new Error("the enclave should have re-executed and disagreed");
  const verdict = { verdict: answer.verdict, signature: answer.signature };
  const published = enclave.evidence(0).filter((e) => e.kind === "contradicted");
  n.say(
    `enclave verdict: DISAGREE (max difference ${answer.maxDiff} at ${answer.where}), correct outputHash ${verdict.verdict.outputHash}; published as evidence #${published.at(-1)?.index} on the enclave's GET /evidence, and never batched`,
  );
  const before = await staking.getNode(ctx.gpuNode);
  const watcherAddress = await ctx.watcher.getAddress();
  const bountyBefore = await system.token.balanceOf(watcherAddress);
  const slashTx = await ledger
    .connect(ctx.watcher)
    .reportContradictedReceipt(
      badReceipt,
      badSignature,
      verdict.verdict.outputHash,
      verdict.verdict.timestamp,
      verdict.signature,
    );
  await slashTx.wait();
  const after = await staking.getNode(ctx.gpuNode);
  n.say(
    `reportContradictedReceipt by ${watcherAddress} (tx ${slashTx.hash}): evidence checked on chain`,
  );
  n.say(
    `GPU node stake ${formatOpg(before.active)} -> ${formatOpg(after.active)} OPG; jailed: ${after.jailed}; active: ${await staking.isActive(ctx.gpuNode)}`,
  );
  n.say(
    `bounty to the reporter: ${formatOpg((await system.token.balanceOf(watcherAddress)) - bountyBefore)} OPG`,
  );
  const again = await ledger
    .connect(ctx.watcher)
    .reportContradictedReceipt.staticCall(
      badReceipt,
      badSignature,
      verdict.verdict.outputHash,
      verdict.verdict.timestamp,
      verdict.signature,
    )
    .then(() => "accepted (!)")
    .catch((e: unknown) => (e as { revert?: { name?: string } }).revert?.name ?? "reverted");
  n.say(
    `the same evidence again: ${again} (one slash per offence; receipt ${receiptStructHash(badReceipt).slice(0, 18)}...)`,
  );
}
