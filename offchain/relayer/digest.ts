/**
 * The receipt's EIP-712 digest on the hot path. Same bytes as `receiptDigest` in
 * offchain/chain/eip712.ts (the tests check both agree), but with the domain separator and type hash
 * computed once and keccak-256 from native/ (ethers' TypedDataEncoder takes ~0.4 ms per receipt).
 */
import { TypedDataEncoder, getBytes, id } from "ethers";

import { keccak256 } from "../../native/index.js";
import { RECEIPT_TYPES, type LedgerDomain, type Receipt } from "../chain/eip712.js";

const RECEIPT_TYPEHASH = getBytes(
  id(`Receipt(${RECEIPT_TYPES.Receipt.map((f) => `${f.type} ${f.name}`).join(",")})`),
);

export class ReceiptHasher {
  private readonly prefix: Buffer;

  constructor(domain: LedgerDomain) {
    // "\x19\x01" || domainSeparator, reused for every digest.
    this.prefix = Buffer.concat([
      Buffer.from([0x19, 0x01]),
      Buffer.from(getBytes(TypedDataEncoder.hashDomain(domain))),
    ]);
  }

  /** keccak256(abi.encode(RECEIPT_TYPEHASH, fields...)): the receipt's struct hash. */
  structHash(r: Receipt): Uint8Array {
    const buf = Buffer.alloc(32 * 8);
    buf.set(RECEIPT_TYPEHASH, 0);
    buf.write(r.requestId.slice(2), 32, 32, "hex");
    buf.write(r.modelId.slice(2), 64, 32, "hex");
    buf.write(r.inputHash.slice(2), 96, 32, "hex");
    buf.write(r.outputHash.slice(2), 128, 32, "hex");
    buf.write(r.node.slice(2), 160 + 12, 20, "hex");
    buf.write(r.execConfigHash.slice(2), 192, 32, "hex");
    buf.writeBigUInt64BE(r.timestamp, 224 + 24);
    return keccak256(buf);
  }

  /** The EIP-712 digest the node signs: keccak256("\x19\x01" || domainSeparator || structHash). */
  digest(r: Receipt): string {
    const data = Buffer.concat([this.prefix, this.structHash(r)]);
    return `0x${Buffer.from(keccak256(data)).toString("hex")}`;
  }
}
