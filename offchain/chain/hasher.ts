/**
 * EIP-712 hashes on the hot path (the relayer and the enclave: several per receipt). Same bytes as
 * `receiptStructHash`, `receiptDigest`, `verdictDigest` and `batchDigest` in eip712.ts, which stay the reference
 * (test/offchain/chain/hasher.test.ts checks both agree on random values), but with the domain
 * separator and type hashes computed once and keccak-256 from native/: ethers' TypedDataEncoder
 * re-derives the domain and types on every call (~0.4 ms per digest).
 */
import { TypedDataEncoder, getBytes, id } from "ethers";

import { keccak256 } from "../../native/index.js";
import {
  BATCH_TYPES,
  RECEIPT_TYPES,
  VERDICT_TYPES,
  type Batch,
  type LedgerDomain,
  type Receipt,
  type Verdict,
} from "./eip712.js";

function typeHash(name: string, fields: Array<{ name: string; type: string }>): Uint8Array {
  return getBytes(id(`${name}(${fields.map((f) => `${f.type} ${f.name}`).join(",")})`));
}

const RECEIPT_TYPEHASH = typeHash("Receipt", RECEIPT_TYPES.Receipt);
const VERDICT_TYPEHASH = typeHash("Verdict", VERDICT_TYPES.Verdict);
const BATCH_TYPEHASH = typeHash("Batch", BATCH_TYPES.Batch);

const hex = (bytes: Uint8Array): string => `0x${Buffer.from(bytes).toString("hex")}`;

/**
 * The receipt's Merkle leaf hash, keccak256(keccak256(abi.encode(RECEIPT_LEAF_TYPES values))):
 * the same as the leaf of `buildReceiptTree` / `receiptTree` (StandardMerkleTree). The relayer
 * stores it with each job, so cutting a batch only hashes the tree's inner nodes.
 */
export function receiptLeafHash(r: Receipt): string {
  const buf = Buffer.alloc(32 * 7);
  writeReceiptWords(buf, 0, r);
  return hex(keccak256(keccak256(buf)));
}

/** abi.encode of the receipt's seven fields (32-byte words) at `offset`. */
function writeReceiptWords(buf: Buffer, offset: number, r: Receipt): void {
  buf.write(r.requestId.slice(2), offset, 32, "hex");
  buf.write(r.modelId.slice(2), offset + 32, 32, "hex");
  buf.write(r.inputHash.slice(2), offset + 64, 32, "hex");
  buf.write(r.outputHash.slice(2), offset + 96, 32, "hex");
  buf.write(r.node.slice(2), offset + 128 + 12, 20, "hex");
  buf.write(r.execConfigHash.slice(2), offset + 160, 32, "hex");
  buf.writeBigUInt64BE(r.timestamp, offset + 192 + 24);
}

export class LedgerHasher {
  private readonly prefix: Buffer;

  constructor(domain: LedgerDomain) {
    // "\x19\x01" || domainSeparator, reused for every digest.
    this.prefix = Buffer.concat([
      Buffer.from([0x19, 0x01]),
      Buffer.from(getBytes(TypedDataEncoder.hashDomain(domain))),
    ]);
  }

  /** keccak256(abi.encode(RECEIPT_TYPEHASH, fields...)): the receipt's struct hash. */
  receiptStructHashBytes(r: Receipt): Uint8Array {
    const buf = Buffer.alloc(32 * 8);
    buf.set(RECEIPT_TYPEHASH, 0);
    writeReceiptWords(buf, 32, r);
    return keccak256(buf);
  }

  receiptStructHash(r: Receipt): string {
    return hex(this.receiptStructHashBytes(r));
  }

  /** The EIP-712 digest the node signs: keccak256("\x19\x01" || domainSeparator || structHash). */
  receiptDigest(r: Receipt): string {
    return hex(keccak256(Buffer.concat([this.prefix, this.receiptStructHashBytes(r)])));
  }

  /** The EIP-712 digest of a verdict (what the enclave signs and InferenceLedger recovers). */
  verdictDigest(v: Verdict): string {
    const buf = Buffer.alloc(32 * 5);
    buf.set(VERDICT_TYPEHASH, 0);
    buf.write(v.receiptHash.slice(2), 32, 32, "hex");
    buf[95] = v.agree ? 1 : 0;
    buf.write(v.outputHash.slice(2), 96, 32, "hex");
    buf.writeBigUInt64BE(v.timestamp, 128 + 24);
    return hex(keccak256(Buffer.concat([this.prefix, keccak256(buf)])));
  }

  /** The EIP-712 digest of a batch (what the enclave signs and InferenceLedger recovers). */
  batchDigest(b: Batch): string {
    const buf = Buffer.alloc(32 * 11);
    buf.set(BATCH_TYPEHASH, 0);
    buf.write(b.enclave.slice(2), 32 + 12, 20, "hex");
    buf.writeBigUInt64BE(b.sequence, 64 + 24);
    buf.write(b.root.slice(2), 96, 32, "hex");
    buf.writeUInt32BE(b.count, 128 + 28);
    buf.writeUInt32BE(b.reexecuted, 160 + 28);
    buf.write(b.usageHash.slice(2), 192, 32, "hex");
    buf.write(b.node.slice(2), 224 + 12, 20, "hex");
    buf.write(b.signer.slice(2), 256 + 12, 20, "hex");
    buf.writeBigUInt64BE(b.asOf, 288 + 24);
    buf.writeUInt32BE(b.sampleRatePpm, 320 + 28);
    return hex(keccak256(Buffer.concat([this.prefix, keccak256(buf)])));
  }
}
