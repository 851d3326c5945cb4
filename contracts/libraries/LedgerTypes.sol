// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice A GPU node's signed statement: "for request `requestId`, model `modelId` on input `inputHash` produced
///         `outputHash` under execution config `execConfigHash`". Field order is the EIP-712 type's order.
struct Receipt {
    bytes32 requestId;
    bytes32 modelId;
    bytes32 inputHash;
    bytes32 outputHash;
    address node;
    bytes32 execConfigHash;
    uint64 timestamp;
}

/// @notice An enclave's re-execution verdict over one receipt (`receiptHash` = the receipt's EIP-712 struct hash),
///         signed at `timestamp` (the enclave's clock, unix seconds): evidence built on it counts if the enclave key
///         was registered, under an image not revoked for cause, at that time.
struct Verdict {
    bytes32 receiptHash;
    bool agree;
    bytes32 outputHash;
    uint64 timestamp;
}

/// @notice An enclave's signed batch: the Merkle root over the receipts it received from one GPU node and checked
///         (each signed by `signer`, that node's signer key), and what it summarises. Every figure is the enclave's
///         own computation over those receipts. `asOf` is the enclave's clock at the latest receipt it put in the
///         batch: every receipt was signed by `signer`, and drawn at `sampleRatePpm` (the re-execution rate, parts
///         per million), by then.
struct Batch {
    address enclave;
    uint64 sequence;
    bytes32 root;
    uint32 count;
    uint32 reexecuted;
    bytes32 usageHash;
    address node;
    address signer;
    uint64 asOf;
    uint32 sampleRatePpm;
}

/// @title LedgerTypes
/// @notice The Solidity mirror of offchain/chain/eip712.ts: EIP-712 type hashes, struct hashes, the receipt's
///         Merkle leaf and the usage summary hash. Type strings and field order must stay identical to the
///         TypeScript definitions; test/contracts/anchoring checks the digests against them.
/// @dev All structs are static, so `abi.encode(struct)` is the concatenation of its 32-byte words, which is
///      exactly EIP-712's `encodeData` for these field types (bool as 0/1, address left-padded).
library LedgerTypes {
    /// @notice EIP-712 domain name of InferenceLedger.
    string internal constant DOMAIN_NAME = "OPG InferenceLedger";
    /// @notice EIP-712 domain version of InferenceLedger.
    string internal constant DOMAIN_VERSION = "1";

    bytes32 internal constant RECEIPT_TYPEHASH = keccak256(
        "Receipt(bytes32 requestId,bytes32 modelId,bytes32 inputHash,bytes32 outputHash,address node,"
        "bytes32 execConfigHash,uint64 timestamp)"
    );

    bytes32 internal constant VERDICT_TYPEHASH = keccak256(
        "Verdict(bytes32 receiptHash,bool agree,bytes32 outputHash,uint64 timestamp)"
    );

    bytes32 internal constant BATCH_TYPEHASH = keccak256(
        "Batch(address enclave,uint64 sequence,bytes32 root,uint32 count,uint32 reexecuted,bytes32 usageHash,"
        "address node,address signer,uint64 asOf,uint32 sampleRatePpm)"
    );

    /// @notice EIP-712 struct hash of a receipt (what a verdict's `receiptHash` refers to).
    function hash(Receipt calldata receipt) internal pure returns (bytes32) {
        return keccak256(abi.encode(RECEIPT_TYPEHASH, receipt));
    }

    /// @notice EIP-712 struct hash of a verdict.
    function hash(Verdict memory verdict) internal pure returns (bytes32) {
        return keccak256(abi.encode(VERDICT_TYPEHASH, verdict));
    }

    /// @notice EIP-712 struct hash of a batch.
    function hash(Batch calldata batch) internal pure returns (bytes32) {
        return keccak256(abi.encode(BATCH_TYPEHASH, batch));
    }

    /// @notice OpenZeppelin StandardMerkleTree leaf of a receipt: keccak256(keccak256(abi.encode(fields...))).
    function leaf(Receipt calldata receipt) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(receipt))));
    }

    /// @notice keccak256(abi.encode(bytes32[] modelIds, uint32[] counts)): the batch's usage summary hash.
    function usageHash(
        bytes32[] calldata modelIds,
        uint32[] calldata counts
    ) internal pure returns (bytes32) {
        return keccak256(abi.encode(modelIds, counts));
    }
}
