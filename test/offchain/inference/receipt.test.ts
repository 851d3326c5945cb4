import { expect } from "chai";
import { Wallet, keccak256, verifyTypedData } from "ethers";

import { RECEIPT_TYPES, ledgerDomain } from "../../../offchain/chain/eip712.js";
import { InputError } from "../../../offchain/common/errors.js";
import { receiptFor, signReceipt } from "../../../offchain/inference/index.js";

describe("receipts", () => {
  const result = {
    modelId: keccak256("0x01"),
    inputHash: keccak256("0x02"),
    outputHash: keccak256("0x03"),
    execConfigHash: keccak256("0x04"),
  };
  const node = Wallet.createRandom();

  it("carries the result's hashes and the node's fields, and the node's signature recovers", async () => {
    const receipt = receiptFor(result, {
      requestId: keccak256("0x05"),
      node: node.address.toLowerCase(),
      timestamp: 7n,
    });
    expect(receipt).to.deep.equal({
      ...result,
      requestId: keccak256("0x05"),
      node: node.address,
      timestamp: 7n,
    });
    const domain = ledgerDomain(31337n, "0x5FbDB2315678afecb367f032d93F642f64180aa3");
    const signature = await signReceipt(node, domain, receipt);
    expect(verifyTypedData(domain, RECEIPT_TYPES, receipt, signature)).to.equal(node.address);
  });

  it("refuses a malformed requestId and a timestamp beyond uint64", () => {
    expect(() =>
      receiptFor(result, { requestId: "0x12", node: node.address, timestamp: 1n }),
    ).to.throw(InputError, "requestId");
    expect(() =>
      receiptFor(result, {
        requestId: keccak256("0x05"),
        node: node.address,
        timestamp: 2n ** 64n,
      }),
    ).to.throw(InputError, "uint64");
  });
});
