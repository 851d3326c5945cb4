import { expect } from "chai";
import {
  Wallet,
  getAddress,
  hexlify,
  keccak256,
  concat,
  recoverAddress,
  randomBytes,
  toBeHex,
  zeroPadValue,
} from "ethers";
import { pino } from "pino";

import { InputError } from "../../../offchain/common/errors.js";
import {
  batchDigest,
  ledgerDomain,
  receiptDigest,
  receiptStructHash,
  verdictDigest,
  type Receipt,
} from "../../../offchain/chain/eip712.js";
import {
  InferenceEngine,
  InferenceInputError,
  UnknownModelError,
  outputHash,
  outputsToJson,
  type InferenceResult,
  type LoadedModel,
  type QuantisedTensor,
} from "../../../offchain/inference/index.js";
import { verifyAttestation } from "../../../offchain/tee/attestation.js";
import { DevAttestor } from "../../../offchain/tee/devAttestation.js";
import {
  BatchConflictError,
  Enclave,
  InputMismatchError,
  bindingUserData,
  readBinding,
  type SignedVerdict,
} from "../../../offchain/tee/enclave.js";
import { isSelected, sampleThreshold } from "../../../offchain/tee/sampling.js";
import { MODELS_DIR } from "../../../scripts/models/generate.js";
import { sampleInputs } from "../inference/reference.js";

const silent = pino({ level: "silent" });
const CHAIN_ID = 31337n;
const LEDGER = getAddress("0x5fbdb2315678afecb367f032d93f642f64180aa3");
const NODE = getAddress("0x70997970c51812dc3a79c7f17720b8c4af1d6f54");

describe("Enclave", () => {
  let gpu: InferenceEngine; // stands in for the GPU node (cpu here: no GPU on this machine)
  let cpu: InferenceEngine;
  let attestor: DevAttestor;
  let enclave: Enclave;
  let risk: LoadedModel;

  before(async () => {
    gpu = new InferenceEngine({ config: { provider: "auto" }, logger: silent });
    cpu = new InferenceEngine({ config: { provider: "cpu" }, logger: silent });
    [risk] = (await gpu.loadModelsDir(MODELS_DIR)) as [LoadedModel];
    await cpu.loadModelsDir(MODELS_DIR);
    attestor = new DevAttestor();
    enclave = new Enclave({ engine: cpu, attestor, chainId: CHAIN_ID, ledger: LEDGER });
  });
  after(async () => {
    await gpu.close();
    await cpu.close();
  });

  const inputs = (seed: number) => ({ features: { dims: [2, 16], data: sampleInputs(seed, 32) } });

  function receiptFor(result: InferenceResult, outputHashOverride?: string): Receipt {
    return {
      requestId: keccak256(randomBytes(32)),
      modelId: result.modelId,
      inputHash: result.inputHash,
      outputHash: outputHashOverride ?? result.outputHash,
      node: NODE,
      execConfigHash: result.execConfigHash,
      timestamp: 1_770_000_000n,
    };
  }

  function shifted(outputs: QuantisedTensor[], delta: bigint): QuantisedTensor[] {
    return outputs.map((t) => {
      const values = BigInt64Array.from(t.values);
      values[0] = (values[0] as bigint) + delta;
      return { ...t, values };
    });
  }

  describe("attestation", () => {
    it("binds the enclave's Ethereum key in public_key and its deployment in user_data", () => {
      const nonce = randomBytes(16);
      const doc = enclave.attestation(nonce);
      const v = verifyAttestation(doc, {
        roots: [attestor.rootPem],
        nonce,
        approvedPcrs: [attestor.measurement()],
      });
      const binding = readBinding(v.document.publicKey, v.document.userData);
      expect(binding).to.deep.equal({
        address: enclave.address,
        chainId: CHAIN_ID,
        ledger: LEDGER,
      });
      expect(hexlify(v.document.userData ?? new Uint8Array())).to.equal(
        hexlify(
          concat([enclave.address, zeroPadValue(toBeHex(CHAIN_ID), 32), LEDGER]),
        ).toLowerCase(),
      );
    });

    it("refuses a binding whose user_data address is not the public key's", () => {
      const other = Wallet.createRandom();
      const userData = bindingUserData(other.address, CHAIN_ID, LEDGER);
      expect(() => readBinding(enclave.publicKey, userData)).to.throw(
        "user_data address is not the attested public key's address",
      );
      expect(() => readBinding(null, userData)).to.throw("does not bind an enclave key");
    });

    it("refuses a nonce shorter than 8 or longer than 64 bytes", () => {
      expect(() => enclave.attestation(new Uint8Array(7))).to.throw(
        InputError,
        "nonce must be 8..64 bytes, got 7",
      );
      expect(() => enclave.attestation(new Uint8Array(65))).to.throw(InputError, "got 65");
    });

    it("only runs on a cpu engine", () => {
      const fake = { provider: "cuda" } as unknown as InferenceEngine;
      expect(
        () => new Enclave({ engine: fake, attestor, chainId: CHAIN_ID, ledger: LEDGER }),
      ).to.throw(InputError, "re-executes on cpu");
    });
  });

  describe("verify", () => {
    it("agrees with an honest receipt and signs the verdict with the registered key", async () => {
      const result = await gpu.run(risk.modelId, inputs(1));
      const receipt = receiptFor(result);
      const signed = (await enclave.verify({
        receipt,
        inputs: inputs(1),
        outputs: outputsToJson(result.outputs),
      })) as SignedVerdict;
      expect(signed.selected).to.be.true;
      expect(signed.verdict).to.deep.equal({
        receiptHash: receiptStructHash(receipt),
        agree: true,
        outputHash: result.outputHash,
      });
      expect(signed.maxDiff).to.equal("0");
      const domain = ledgerDomain(CHAIN_ID, LEDGER);
      expect(signed.digest).to.equal(verdictDigest(domain, signed.verdict));
      expect(recoverAddress(signed.digest, signed.signature)).to.equal(enclave.address);
    });

    it("compares hashes exactly when the GPU outputs are not given", async () => {
      const result = await gpu.run(risk.modelId, inputs(2));
      const honest = (await enclave.verify({
        receipt: receiptFor(result),
        inputs: inputs(2),
      })) as SignedVerdict;
      expect(honest.verdict.agree).to.be.true;
      expect(honest.maxDiff).to.be.null;
      const lying = (await enclave.verify({
        receipt: receiptFor(result, keccak256("0x01")),
        inputs: inputs(2),
      })) as SignedVerdict;
      expect(lying.verdict).to.deep.include({ agree: false, outputHash: result.outputHash });
    });

    it("agrees with a GPU result just inside the tolerance (+tolerance)", async () => {
      const result = await gpu.run(risk.modelId, inputs(3));
      const gpuOutputs = shifted(result.outputs, BigInt(risk.manifest.tolerance));
      const receipt = receiptFor(result, outputHash(gpuOutputs));
      const signed = (await enclave.verify({
        receipt,
        inputs: inputs(3),
        outputs: outputsToJson(gpuOutputs),
      })) as SignedVerdict;
      expect(signed.verdict.agree).to.be.true;
      expect(signed.maxDiff).to.equal(String(risk.manifest.tolerance));
      expect(signed.where).to.equal("risk[0]");
    });

    it("disagrees with a GPU result just outside the tolerance (-(tolerance + 1)), naming the correct output hash", async () => {
      const result = await gpu.run(risk.modelId, inputs(4));
      const gpuOutputs = shifted(result.outputs, -BigInt(risk.manifest.tolerance + 1));
      const receipt = receiptFor(result, outputHash(gpuOutputs));
      const signed = (await enclave.verify({
        receipt,
        inputs: inputs(4),
        outputs: outputsToJson(gpuOutputs),
      })) as SignedVerdict;
      expect(signed.verdict).to.deep.equal({
        receiptHash: receiptStructHash(receipt),
        agree: false,
        outputHash: result.outputHash,
      });
      expect(signed.maxDiff).to.equal(String(risk.manifest.tolerance + 1));
      expect(recoverAddress(signed.digest, signed.signature)).to.equal(enclave.address);
    });

    it("refuses inputs that are not the receipt's", async () => {
      const result = await gpu.run(risk.modelId, inputs(5));
      try {
        await enclave.verify({ receipt: receiptFor(result), inputs: inputs(6) });
        expect.fail("expected InputMismatchError");
      } catch (error) {
        expect(error).to.be.instanceOf(InputMismatchError);
        expect((error as InputMismatchError).details.receiptInputHash).to.equal(result.inputHash);
      }
    });

    it("refuses GPU outputs that are not the receipt's", async () => {
      const result = await gpu.run(risk.modelId, inputs(7));
      const other = outputsToJson(shifted(result.outputs, 1n));
      try {
        await enclave.verify({ receipt: receiptFor(result), inputs: inputs(7), outputs: other });
        expect.fail("expected InputMismatchError");
      } catch (error) {
        expect(error).to.be.instanceOf(InputMismatchError);
        expect((error as Error).message).to.equal(
          "outputs do not hash to the receipt's outputHash",
        );
      }
    });

    it("refuses an unknown model and bad inputs", async () => {
      const result = await gpu.run(risk.modelId, inputs(8));
      const unknown = { ...receiptFor(result), modelId: keccak256("0x02") };
      await enclave.verify({ receipt: unknown, inputs: inputs(8) }).then(
        () => expect.fail("expected UnknownModelError"),
        (e: unknown) => expect(e).to.be.instanceOf(UnknownModelError),
      );
      await enclave
        .verify({
          receipt: receiptFor(result),
          inputs: { features: { dims: [2, 16], data: [NaN] } },
        })
        .then(
          () => expect.fail("expected InferenceInputError"),
          (e: unknown) => expect(e).to.be.instanceOf(InferenceInputError),
        );
    });

    it("re-executes only selected receipts when given a sample rate", async () => {
      const result = await gpu.run(risk.modelId, inputs(9));
      const receipt = receiptFor(result);
      const skipped = await enclave.verify({ receipt, inputs: inputs(9), sampleRate: 0 });
      expect(skipped).to.deep.equal({
        selected: false,
        receiptDigest: receiptDigest(ledgerDomain(CHAIN_ID, LEDGER), receipt),
      });
      expect((await enclave.verify({ receipt, inputs: inputs(9), sampleRate: 1 })).selected).to.be
        .true;
      expect(enclave.isSelected(receipt, 1)).to.be.true;
      await enclave.verify({ receipt, inputs: inputs(9), sampleRate: 1.5 }).then(
        () => expect.fail("expected InputError"),
        (e: unknown) =>
          expect((e as Error).message).to.contain("sample rate must be a number in [0, 1]"),
      );
    });
  });

  describe("signBatch", () => {
    const batch = (sequence: bigint, root = keccak256("0xaa")) => ({
      sequence,
      root,
      count: 10,
      reexecuted: 3,
      usageHash: keccak256("0xbb"),
    });

    it("signs the EIP-712 Batch with the enclave as signer", () => {
      const signed = enclave.signBatch(batch(0n));
      expect(signed.batch.enclave).to.equal(enclave.address);
      expect(signed.digest).to.equal(batchDigest(ledgerDomain(CHAIN_ID, LEDGER), signed.batch));
      expect(recoverAddress(signed.digest, signed.signature)).to.equal(enclave.address);
    });

    it("returns the same signature for the same batch again", () => {
      expect(enclave.signBatch(batch(1n))).to.deep.equal(enclave.signBatch(batch(1n)));
    });

    it("refuses a second, different batch for a sequence it already signed", () => {
      enclave.signBatch(batch(2n));
      try {
        enclave.signBatch(batch(2n, keccak256("0xcc")));
        expect.fail("expected BatchConflictError");
      } catch (error) {
        expect(error).to.be.instanceOf(BatchConflictError);
        expect((error as BatchConflictError).httpStatus).to.equal(409);
        expect((error as BatchConflictError).details).to.deep.include({
          sequence: 2n,
          requestedRoot: keccak256("0xcc"),
        });
      }
    });

    it("refuses a batch claiming more re-executions than receipts", () => {
      expect(() => enclave.signBatch({ ...batch(3n), reexecuted: 11 })).to.throw(
        InputError,
        "reexecuted (11) exceeds count (10)",
      );
    });
  });
});

describe("sampling", () => {
  const digests = Array.from({ length: 10_000 }, (_, i) => keccak256(toBeHex(i, 32)));

  /** |observed - expected| within 5 standard deviations of a binomial(n, p). */
  function expectRate(selected: number, n: number, p: number): void {
    const sd = Math.sqrt(n * p * (1 - p));
    expect(Math.abs(selected - n * p), `selected ${selected} of ${n} at rate ${p}`).to.be.at.most(
      5 * sd + 1e-9,
    );
  }

  it("selects about rate * n receipts, for several rates", () => {
    const secret = randomBytes(32);
    for (const rate of [0.01, 0.1, 0.5, 0.9]) {
      expectRate(digests.filter((d) => isSelected(secret, d, rate)).length, digests.length, rate);
    }
  });

  it("selects none at rate 0 and all at rate 1", () => {
    const secret = randomBytes(32);
    expect(digests.slice(0, 1000).some((d) => isSelected(secret, d, 0))).to.be.false;
    expect(digests.slice(0, 1000).every((d) => isSelected(secret, d, 1))).to.be.true;
  });

  it("is nested: a receipt selected at a rate is selected at every higher rate", () => {
    const secret = randomBytes(32);
    for (const d of digests.slice(0, 2000))
      if (isSelected(secret, d, 0.2)) expect(isSelected(secret, d, 0.3)).to.be.true;
  });

  it("selects independent sets under independent secrets (overlap about rate^2)", () => {
    const a = randomBytes(32);
    const b = randomBytes(32);
    const both = digests.filter((d) => isSelected(a, d, 0.5) && isSelected(b, d, 0.5)).length;
    expectRate(both, digests.length, 0.25);
  });

  it("is keccak256(secret || digest) < floor(rate * 2^53) * 2^203", () => {
    const secret = new Uint8Array(32).fill(7);
    const digest = digests[0] as string;
    const value = BigInt(keccak256(concat([secret, digest])));
    expect(isSelected(secret, digest, 0.5)).to.equal(value < 2n ** 255n);
    expect(sampleThreshold(0.5)).to.equal(2n ** 255n);
    expect(sampleThreshold(1)).to.equal(2n ** 256n);
    expect(sampleThreshold(0)).to.equal(0n);
  });

  it("refuses a bad rate, secret or digest", () => {
    expect(() => sampleThreshold(-0.1)).to.throw(InputError, "sample rate");
    expect(() => sampleThreshold(NaN)).to.throw(InputError, "sample rate");
    expect(() => isSelected(new Uint8Array(31), digests[0] as string, 0.5)).to.throw(
      InputError,
      "32 bytes, got 31",
    );
    expect(() => isSelected(new Uint8Array(32), "0x1234", 0.5)).to.throw(
      InputError,
      "receipt digest",
    );
  });
});
