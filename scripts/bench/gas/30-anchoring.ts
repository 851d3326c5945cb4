/**
 * Proof anchoring gas: anchorBatch over 1,024 receipts (per-receipt cost), and one on-chain
 * request + fulfilment side by side with one Ethereum Attestation Service attest of a comparable
 * record (EAS deployed from @ethereum-attestation-service/eas-contracts in the same run).
 * Everything runs against the real NodeStaking, TeeRegistry and governance (offchain/deploy/system.ts).
 */
import { EAS__factory, SchemaRegistry__factory } from "@ethereum-attestation-service/eas-contracts";
import {
  AbiCoder,
  ContractFactory,
  Wallet,
  ZeroAddress,
  ZeroHash,
  keccak256,
  toUtf8Bytes,
} from "ethers";
import type { Contract, ContractTransactionResponse } from "ethers";

import { FULL_SAMPLE_RATE_PPM, ledgerDomain } from "../../../offchain/chain/eip712.js";
import { buildProposal } from "../../../offchain/governance/actions.js";
import { governanceOf, localClock, passProposal } from "../../../offchain/governance/proposals.js";
import type { Receipt } from "../../../offchain/chain/eip712.js";
import { buildReceiptBatch } from "../../../offchain/chain/merkle.js";
import {
  buildVerdict,
  signBatch,
  signReceipt,
  signVerdict,
} from "../../../offchain/chain/receipts.js";
import { DEFAULT_ASSIGNMENT_WINDOW_SECONDS } from "../../../offchain/deploy/preflight.js";
import { deployProtocol, gasOf } from "./types.js";
import type { BenchContext, GasCheck, GasRow } from "./types.js";

const RECEIPTS = 1_024;
const MODELS = 4;
const GAS_PER_RECEIPT_GOAL = 100;
const EAS_SCHEMA =
  "bytes32 requestId,bytes32 modelId,bytes32 inputHash,bytes32 outputHash,address node";

const h = (s: string) => keccak256(toUtf8Bytes(s));

export async function measure(ctx: BenchContext): Promise<{ rows: GasRow[]; checks: GasCheck[] }> {
  const { ethers, networkHelpers } = await ctx.connect();
  const signers = await ethers.getSigners();
  const [admin, requester, teeSigner] = [signers[0], signers[1], signers[18]];
  if (admin === undefined || requester === undefined || teeSigner === undefined)
    throw new Error("the bench needs 19 accounts");

  // --- The real protocol, deployed as production deploys it (governance by the governor and timelock).
  // With the assignment window real networks deploy with (fulfil reads the node's stake and turn).
  const system = await deployProtocol(ethers, {
    assignmentWindow: DEFAULT_ASSIGNMENT_WINDOW_SECONDS,
  });
  const { token, staking, tee, registry, ledger } = system;

  // A GPU node and a TEE node staked in NodeStaking; the image approved by a governor proposal; the enclave
  // registered in TeeRegistry, so anchorBatch pays for the real isActiveEnclave checks.
  const params = await staking.params();
  const gpuSigner = Wallet.createRandom();
  const gpuNode = Wallet.createRandom().address;
  const teeNode = Wallet.createRandom().address;
  const enclave = Wallet.createRandom();
  await (await token.approve(await staking.getAddress(), 2n ** 255n)).wait();
  await (
    await staking.register(
      gpuNode,
      1,
      gpuSigner.address,
      params.minStakeInference,
      "https://gpu.bench",
    )
  ).wait();
  await (
    await staking.register(
      teeNode,
      2,
      teeSigner.address,
      params.minStakeVerifier,
      "https://tee.bench",
    )
  ).wait();
  const measurement = h("bench enclave image");
  await passProposal(
    governanceOf(system),
    { proposer: admin, voters: [admin] },
    await buildProposal(
      { action: "approve-measurement", measurement, label: "bench" },
      { addresses: system.addresses },
    ),
    localClock(ethers.provider),
  );
  await (
    await tee.connect(teeSigner).registerEnclave(teeNode, enclave.address, measurement, "0x01")
  ).wait();
  if (!(await tee.isActiveEnclave(enclave.address)))
    throw new Error("the bench enclave is not active");
  const modelIds = Array.from({ length: MODELS }, (_, i) => h(`model ${i}`));
  for (const id of modelIds)
    await registry.registerModel(id, "ipfs://m", h("spec"), [admin.address], [10_000]);
  const { chainId } = await ethers.provider.getNetwork();
  const domain = ledgerDomain(chainId, await ledger.getAddress());

  // --- anchorBatch: an enclave's first batch (sequence 0 has no predecessor to read) and a steady-state one
  // (the goal applies to this one: it also reads that the sequence before it is anchored). No counter is
  // written in either: batchId = enclave << 64 | sequence, and the batch's slot is its root.
  const receiptsFor = (batch: number): Receipt[] =>
    Array.from({ length: RECEIPTS }, (_, i) => ({
      requestId: h(`request ${batch}/${i}`),
      modelId: modelIds[i % MODELS]!,
      inputHash: h(`input ${batch}/${i}`),
      outputHash: h(`output ${batch}/${i}`),
      node: gpuNode,
      execConfigHash: h("cpu"),
      timestamp: 1_700_000_000n + BigInt(i),
    }));
  const anchor = async (sequence: bigint) => {
    const built = buildReceiptBatch(enclave.address, sequence, receiptsFor(Number(sequence)), 32, {
      node: gpuNode,
      signer: gpuSigner.address,
      asOf: BigInt(await networkHelpers.time.latest()),
      sampleRatePpm: FULL_SAMPLE_RATE_PPM,
    });
    const signature = await signBatch(enclave, domain, built.batch);
    return gasOf(
      ledger.anchorBatch(built.batch, signature, built.usage.modelIds, built.usage.counts),
    );
  };
  const firstBatch = await anchor(0n);
  const steadyBatch = await anchor(1n);

  // --- One on-chain request and its fulfilment (fee in OPG, no callback).
  await token.transfer(requester.address, 10n ** 21n);
  await token.connect(requester).approve(await ledger.getAddress(), 2n ** 255n);
  const fee = 10n ** 18n;
  const input = AbiCoder.defaultAbiCoder().encode(["uint256[4]"], [[1n, 2n, 3n, 4n]]);
  const output = AbiCoder.defaultAbiCoder().encode(["uint256"], [42n]);
  const requestOnce = async (callbackGasLimit: number) => {
    const tx = await ledger
      .connect(requester)
      .requestInference(modelIds[0]!, input, fee, 3600n, callbackGasLimit);
    const mined = await tx.wait();
    if (mined === null) throw new Error("request not mined");
    const event = mined.logs
      .map((l) => ledger.interface.parseLog(l))
      .find((l) => l?.name === "InferenceRequested");
    if (event === undefined || event === null) throw new Error("no InferenceRequested event");
    return {
      gas: Number(mined.gasUsed),
      requestId: event.args.getValue("requestId") as string,
      event,
    };
  };
  const fulfilOnce = async (
    requestId: string,
    requester: string,
    event: { args: { getValue(name: string): unknown } },
    callbackGasLimit: number,
  ) => {
    const receipt: Receipt = {
      requestId,
      modelId: modelIds[0]!,
      inputHash: keccak256(input),
      outputHash: keccak256(output),
      node: gpuNode,
      execConfigHash: h("cpu"),
      timestamp: 1_700_000_000n,
    };
    const request = {
      requester,
      fee,
      modelId: modelIds[0]!,
      inputHash: receipt.inputHash,
      deadline: event.args.getValue("deadline") as bigint,
      callbackGasLimit,
      requestedAt: event.args.getValue("requestedAt") as bigint,
      seed: event.args.getValue("seed") as string,
    };
    const nodeSig = await signReceipt(gpuSigner, domain, receipt);
    const verdict = buildVerdict(receipt, receipt.outputHash, 1_700_000_000n);
    const enclaveSig = await signVerdict(enclave, domain, verdict);
    // Past every node's turn (InferenceLedger.eligibleAt).
    await networkHelpers.time.increase(DEFAULT_ASSIGNMENT_WINDOW_SECONDS + 1);
    return gasOf(ledger.fulfil(request, receipt, nodeSig, verdict.timestamp, enclaveSig, output));
  };
  // Warm-up request so that counters and balances are non-zero, as on a live ledger.
  const warm = await requestOnce(0);
  await fulfilOnce(warm.requestId, requester.address, warm.event, 0);
  const req = await requestOnce(0);
  const fulfil = await fulfilOnce(req.requestId, requester.address, req.event, 0);

  // --- The same with a consumer contract's callback (MockInferenceConsumer records the output).
  const consumer = await ethers.deployContract("MockInferenceConsumer", [
    await ledger.getAddress(),
  ]);
  await token.transfer(await consumer.getAddress(), 10n * fee);
  const consumerRequest = async () => {
    const tx = await consumer.request(
      await token.getAddress(),
      modelIds[0]!,
      input,
      fee,
      3600n,
      100_000,
    );
    const mined = await tx.wait();
    if (mined === null) throw new Error("request not mined");
    const event = mined.logs
      .map((l) => {
        try {
          return ledger.interface.parseLog(l);
        } catch {
          return null;
        }
      })
      .find((l) => l?.name === "InferenceRequested");
    if (event === undefined || event === null) throw new Error("no InferenceRequested event");
    return { gas: Number(mined.gasUsed), id: event.args.getValue("requestId") as string, event };
  };
  const warmC = await consumerRequest();
  await fulfilOnce(warmC.id, await consumer.getAddress(), warmC.event, 100_000);
  const reqC = await consumerRequest();
  const fulfilC = await fulfilOnce(reqC.id, await consumer.getAddress(), reqC.event, 100_000);

  // --- Evidence, each the first slash of its type for its node, reported by an outsider (bounty paid, rest
  // burned): a double receipt, a receipt contradicted by the (accountable) enclave's verdict, and the
  // enclave's two batches with one sequence number (last: it jails the TEE node).
  const now = BigInt(await networkHelpers.time.latest());
  const question: Receipt = {
    requestId: h("evidence request"),
    modelId: modelIds[0]!,
    inputHash: h("evidence input"),
    outputHash: h("evidence output"),
    node: gpuNode,
    execConfigHash: h("cpu"),
    timestamp: now,
  };
  const twice = { ...question, outputHash: h("evidence output 2") };
  const doubleReceipt = await gasOf(
    ledger
      .connect(requester)
      .reportDoubleReceipt(
        question,
        await signReceipt(gpuSigner, domain, question),
        twice,
        await signReceipt(gpuSigner, domain, twice),
      ),
  );
  const lie: Receipt = { ...question, requestId: h("evidence lie"), outputHash: h("a lie") };
  const contradiction = buildVerdict(lie, h("the truth"), now);
  const contradicted = await gasOf(
    ledger
      .connect(requester)
      .reportContradictedReceipt(
        lie,
        await signReceipt(gpuSigner, domain, lie),
        contradiction.outputHash,
        contradiction.timestamp,
        await signVerdict(enclave, domain, contradiction),
      ),
  );
  const equivocal = async (label: string) => {
    const built = buildReceiptBatch(
      enclave.address,
      2n,
      [{ ...question, requestId: h(label) }],
      1,
      {
        node: gpuNode,
        signer: gpuSigner.address,
        asOf: now,
        sampleRatePpm: FULL_SAMPLE_RATE_PPM,
      },
    );
    return { batch: built.batch, signature: await signBatch(enclave, domain, built.batch) };
  };
  const [x, y] = [await equivocal("batch x"), await equivocal("batch y")];
  const equivocation = await gasOf(
    ledger.connect(requester).reportBatchEquivocation(x.batch, x.signature, y.batch, y.signature),
  );

  // --- EAS: SchemaRegistry, then EAS, one schema, one attestation of a comparable record.
  const schemaRegistry = (await new ContractFactory(
    SchemaRegistry__factory.abi,
    SchemaRegistry__factory.bytecode,
    admin,
  ).deploy()) as Contract;
  const eas = (await new ContractFactory(EAS__factory.abi, EAS__factory.bytecode, admin).deploy(
    await schemaRegistry.getAddress(),
  )) as Contract;
  await gasOf(
    schemaRegistry.getFunction("register")(
      EAS_SCHEMA,
      ZeroAddress,
      true,
    ) as Promise<ContractTransactionResponse>,
  );
  const schemaUid = keccak256(
    ethers.solidityPacked(["string", "address", "bool"], [EAS_SCHEMA, ZeroAddress, true]),
  );
  const attest = (i: number) =>
    gasOf(
      eas.getFunction("attest")({
        schema: schemaUid,
        data: {
          recipient: requester.address,
          expirationTime: 0n,
          revocable: true,
          refUID: ZeroHash,
          data: AbiCoder.defaultAbiCoder().encode(
            ["bytes32", "bytes32", "bytes32", "bytes32", "address"],
            [h(`eas request ${i}`), modelIds[0]!, keccak256(input), keccak256(output), gpuNode],
          ),
          value: 0n,
        },
      }) as Promise<ContractTransactionResponse>,
    );
  await attest(0); // warm-up, like ours
  const easAttest = await attest(1);

  const perReceipt = (gas: number) => Math.ceil(gas / RECEIPTS);
  const rows: GasRow[] = [
    {
      operation: `anchoring: anchorBatch ${RECEIPTS} receipts, ${MODELS} models, steady state (${perReceipt(steadyBatch)} gas/receipt)`,
      ours: steadyBatch,
      peer: null,
      peerGas: null,
    },
    {
      operation: `anchoring: anchorBatch ${RECEIPTS} receipts, an enclave's first batch (sequence 0, no predecessor to read; ${perReceipt(firstBatch)} gas/receipt)`,
      ours: firstBatch,
      peer: null,
      peerGas: null,
    },
    {
      operation: "anchoring: requestInference (fee in OPG)",
      ours: req.gas,
      peer: null,
      peerGas: null,
    },
    {
      operation: "anchoring: fulfil (receipt + enclave verdict, pays the node's payee)",
      ours: fulfil,
      peer: null,
      peerGas: null,
    },
    {
      operation: "anchoring: request + fulfil, no callback",
      ours: req.gas + fulfil,
      peer: "EAS.attest",
      peerGas: easAttest,
    },
    {
      operation: "anchoring: request + fulfil with a consumer callback",
      ours: reqC.gas + fulfilC,
      peer: null,
      peerGas: null,
    },
    {
      operation:
        "anchoring: reportDoubleReceipt (two signatures at their dates, repeat rule, slash 10 %)",
      ours: doubleReceipt,
      peer: null,
      peerGas: null,
    },
    {
      operation:
        "anchoring: reportContradictedReceipt (accountable enclave at the verdict's time, slash 10 %)",
      ours: contradicted,
      peer: null,
      peerGas: null,
    },
    {
      operation:
        "anchoring: reportBatchEquivocation (two batch signatures, accountable enclave, slash 20 %)",
      ours: equivocation,
      peer: null,
      peerGas: null,
    },
  ];
  const checks: GasCheck[] = [
    {
      name: `anchoring: anchorBatch gas per receipt at ${RECEIPTS} receipts (steady state) <= ${GAS_PER_RECEIPT_GOAL}`,
      value: perReceipt(steadyBatch),
      limit: GAS_PER_RECEIPT_GOAL,
      ok: perReceipt(steadyBatch) <= GAS_PER_RECEIPT_GOAL,
    },
  ];
  return { rows, checks };
}
