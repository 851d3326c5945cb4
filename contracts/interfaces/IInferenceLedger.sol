// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Receipt, Batch} from "../libraries/LedgerTypes.sol";
import {INodeStakingCore} from "./INodeStakingCore.sol";

/// @title IInferenceLedger
/// @notice Proof anchoring for the OPG network.
///         - Enclaves anchor batches: a Merkle root over one GPU node's receipts (OpenZeppelin standard leaf) that
///           the enclave received, checked and summarised itself, signed as EIP-712 `Batch` by an active enclave
///           key, in strict per-enclave sequence (the enclave allocates it). One slot per batch stores its root
///           (batchId = enclave << 64 | sequence); `verifyReceipt` answers from storage. Everything else about the
///           batch (node, counts, usage summary) is in its `BatchAnchored` event and its calldata, so rewards and
///           auditors can recompute from chain data alone.
///         - Consumers request inferences on chain and pay a fee in OPG; a fulfilment carries the GPU node's signed
///           receipt, the enclave's agreeing verdict and the output, which is delivered to the consumer's callback.
///         - Evidence entry points slash through NodeStaking: a GPU node's two receipts with different outputs for
///           one question, a GPU receipt contradicted by an enclave's verdict, an enclave's two batches with one
///           sequence number. Evidence counts if it was valid when signed, whatever the registries say later. Each
///           offence is slashed once, and a slash covers the earlier offences of its type; the caller is the
///           reporter (no bounty when it is the offender's own operator, signer or payee).
/// @dev EIP-712 domain: name "OPG InferenceLedger", version "1", chainId, this contract. Types: LedgerTypes.sol,
///      mirrored from offchain/chain/eip712.ts.
interface IInferenceLedger {
    // ---------------------------------------------------------------------------------------------------------
    // Types
    // ---------------------------------------------------------------------------------------------------------

    /// @notice The slashable offences, each with its own governance parameters.
    enum Offence {
        DOUBLE_RECEIPT, // a GPU node signed two receipts for one request with different outputs
        CONTRADICTED_RECEIPT, // a GPU receipt contradicted by an active enclave's re-execution verdict
        BATCH_EQUIVOCATION // an enclave signed two different batches with one sequence number
    }

    /// @notice An on-chain inference request. Only its hash is stored; fulfilment and refund pass it back in full
    ///         (it is in the `InferenceRequested` event).
    ///         `requestedAt` and `seed` (drawn from the request's block) assign it: see {eligibleAt}.
    struct InferenceRequest {
        address requester;
        uint96 fee;
        bytes32 modelId;
        bytes32 inputHash;
        uint64 deadline;
        uint32 callbackGasLimit;
        uint64 requestedAt;
        bytes32 seed;
    }

    /// @notice How an offence is punished: `bps` of the node's stake, jailed or not, and at most one slash of the
    ///         type per node per `cooldown` seconds (a slash covers every offence of its type dated before it).
    struct SlashParams {
        uint16 bps;
        bool jail;
        uint40 cooldown;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------------------------------

    /// @notice A batch of `node`'s receipts was anchored. `modelIds` (strictly ascending) and `counts` are its usage
    ///         summary, computed by the enclave.
    event BatchAnchored(
        uint256 indexed batchId,
        address indexed enclave,
        address indexed node,
        uint64 sequence,
        bytes32 root,
        uint32 count,
        uint32 reexecuted,
        bytes32[] modelIds,
        uint32[] counts
    );

    /// @notice An inference was requested. `input` is empty when the requester gave only its hash and `inputUri`.
    event InferenceRequested(
        bytes32 indexed requestId,
        address indexed requester,
        bytes32 indexed modelId,
        bytes32 inputHash,
        uint96 fee,
        uint64 deadline,
        uint32 callbackGasLimit,
        bytes input,
        string inputUri,
        uint64 requestedAt,
        bytes32 seed
    );

    /// @notice A request was fulfilled: the node's payee was paid and the callback (if any) ran with
    ///         `callbackSucceeded`.
    event InferenceFulfilled(
        bytes32 indexed requestId,
        address indexed node,
        address indexed enclave,
        bytes32 outputHash,
        bool callbackSucceeded,
        bytes output
    );

    /// @notice An expired request's fee was returned to its requester.
    event RequestRefunded(bytes32 indexed requestId, address indexed requester, uint96 fee);

    /// @notice Evidence of `offence` by `node` was accepted and the node slashed by `slashed`.
    event OffenceSlashed(
        Offence indexed offence,
        address indexed node,
        bytes32 indexed offenceKey,
        address reporter,
        uint256 slashed
    );

    /// @notice Governance changed how `offence` is punished.
    event SlashParamsSet(Offence indexed offence, uint16 bps, bool jail, uint40 cooldown);

    /// @notice Governance changed the rate (parts per million) at which enclaves must re-execute receipts.
    event SampleRateSet(uint32 ratePpm);

    /// @notice Governance changed the largest callback gas a request may ask for.
    event MaxCallbackGasSet(uint32 maxCallbackGas);

    /// @notice Governance changed the assignment window of on-chain requests (see {eligibleAt}).
    event AssignmentWindowSet(uint32 windowSeconds);

    // ---------------------------------------------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------------------------------------------

    /// @notice A constructor dependency is the zero address.
    error LedgerZeroAddress();

    /// @notice The batch's signer is not an active enclave (unknown, revoked measurement, expired, node inactive).
    error LedgerInactiveEnclave(address enclave);

    /// @notice The signature over the batch was made by `recovered`, not by `enclave`.
    error LedgerInvalidBatchSigner(address enclave, address recovered);

    /// @notice The batch's sequence number is not the enclave's next one (`expected`).
    error LedgerUnexpectedSequence(address enclave, uint64 sequence, uint64 expected);

    /// @notice The batch has a zero root, no receipts, or more re-executions than receipts.
    error LedgerInvalidBatch(bytes32 root, uint32 count, uint32 reexecuted);

    /// @notice The usage summary's arrays differ in length.
    error LedgerUsageLengthMismatch(uint256 modelIds, uint256 counts);

    /// @notice The usage summary's modelIds are not strictly ascending at `index`.
    error LedgerUsageNotSorted(uint256 index, bytes32 modelId);

    /// @notice The usage summary's counts sum to `total`, not the batch's `count`.
    error LedgerUsageCountMismatch(uint256 total, uint32 count);

    /// @notice The usage summary hashes to `actual`, not the signed `expected`.
    error LedgerUsageHashMismatch(bytes32 expected, bytes32 actual);

    /// @notice No batch has id `batchId`.
    error LedgerUnknownBatch(uint256 batchId);

    /// @notice The model is not registered in the ModelRegistry.
    error LedgerUnknownModel(bytes32 modelId);

    /// @notice The request's time to live is outside [min, max] seconds.
    error LedgerInvalidTtl(uint64 ttl, uint64 min, uint64 max);

    /// @notice The request asks for more callback gas than governance allows.
    error LedgerCallbackGasTooHigh(uint32 callbackGasLimit, uint32 max);

    /// @notice The request is unknown, already fulfilled or refunded.
    error LedgerRequestNotPending(bytes32 requestId);

    /// @notice The request passed in does not hash to what was stored for `requestId`.
    error LedgerRequestMismatch(bytes32 requestId, bytes32 stored, bytes32 given);

    /// @notice The request expired at `deadline`; it can only be refunded.
    error LedgerRequestExpired(bytes32 requestId, uint64 deadline);

    /// @notice The request has not expired yet (`deadline`); it can only be fulfilled.
    error LedgerRequestNotExpired(bytes32 requestId, uint64 deadline);

    /// @notice The receipt is for another model or input than the request's.
    error LedgerReceiptNotForRequest(bytes32 requestId, bytes32 receiptModelId, bytes32 receiptInputHash);

    /// @notice The node is not an INFERENCE node (its role is `role`).
    error LedgerNotInferenceNode(address node, INodeStakingCore.Role role);

    /// @notice The node is not active in NodeStaking (jailed, exited or under-staked).
    error LedgerInactiveNode(address node);

    /// @notice A receipt signature was made by `recovered`, which was not the node's signer at the receipt's date
    ///         (its current signer is `signer`).
    error LedgerInvalidReceiptSigner(address node, address signer, address recovered);

    /// @notice The batch names `signer`, which was not `node`'s signer when the enclave signed the batch.
    error LedgerInvalidBatchNodeSigner(address node, address signer);

    /// @notice A signed time is ahead of the chain's clock (`chainTime`) by more than MAX_CLOCK_SKEW.
    error LedgerSignedInFuture(uint256 signedAt, uint256 chainTime);

    /// @notice The batch was sampled at `ratePpm`, below governance's `requiredPpm`.
    error LedgerSampleRateTooLow(uint32 ratePpm, uint32 requiredPpm);

    /// @notice A sample rate must be 1..FULL_SAMPLE_RATE parts per million.
    error LedgerInvalidSampleRate(uint32 ratePpm);

    /// @notice The enclave key was not registered (or was deregistered, or its image was revoked for cause or retired)
    ///         at `signedAt`, so what it signed then answers to no node.
    error LedgerUnaccountableEnclave(address enclave, uint256 signedAt);

    /// @notice The node was slashed for this offence type at `lastSlashAt`, which covers offences dated up to then.
    error LedgerOffenceCovered(
        IInferenceLedger.Offence offence,
        address node,
        uint256 datedAt,
        uint256 lastSlashAt
    );

    /// @notice The node was slashed for this offence type recently; its next slash of the type can come at `until`.
    error LedgerOffenceCooldown(IInferenceLedger.Offence offence, address node, uint256 until);

    /// @notice The node has nothing at stake: the evidence stays reportable.
    error LedgerNothingToSlash(address node, bytes32 offenceKey);

    /// @notice An offence cooldown above `max` seconds.
    error LedgerInvalidOffenceCooldown(uint40 cooldown, uint40 max);

    /// @notice keccak256(output) is `actual`, not the receipt's `outputHash`.
    error LedgerOutputMismatch(bytes32 outputHash, bytes32 actual);

    /// @notice Not enough gas is left to give the callback its full `required` limit.
    error LedgerInsufficientCallbackGas(uint256 available, uint256 required);

    /// @notice The two receipts are not for one request and node with different outputs.
    error LedgerReceiptsNotConflicting(bytes32 receiptHashA, bytes32 receiptHashB);

    /// @notice The verdict's output hash is the receipt's own, so it does not contradict the receipt.
    error LedgerVerdictNotContradicting(bytes32 receiptHash, bytes32 outputHash);

    /// @notice The two batches are not one enclave's different batches with one sequence number.
    error LedgerBatchesNotConflicting(bytes32 batchHashA, bytes32 batchHashB);

    /// @notice This offence was slashed already.
    error LedgerOffenceAlreadySlashed(bytes32 offenceKey);

    /// @notice Slash basis points must be 1..10,000.
    error LedgerInvalidSlashBps(uint16 bps);

    /// @notice The largest callback gas must be 1..MAX_CALLBACK_GAS_CEILING.
    error LedgerInvalidMaxCallbackGas(uint32 maxCallbackGas);

    /// @notice `node` may fulfil `requestId` only from `eligibleAt` on (the request's assignment, {eligibleAt}).
    error LedgerNotYetEligible(bytes32 requestId, address node, uint64 eligibleAt);

    /// @notice An assignment window above MAX_ASSIGNMENT_WINDOW.
    error LedgerInvalidAssignmentWindow(uint32 windowSeconds, uint32 max);

    // ---------------------------------------------------------------------------------------------------------
    // Anchoring
    // ---------------------------------------------------------------------------------------------------------

    /// @notice Stores a batch signed by an active enclave and emits its usage summary. Anyone may submit it: the
    ///         enclave built the batch itself from receipts of `batch.node` signed by `batch.signer` (which must have
    ///         been that INFERENCE node's signer at `batch.asOf`), sampled at `batch.sampleRatePpm` (at least the
    ///         governance rate), and signed nothing it did not compute.
    /// @param batch The signed batch; `batch.sequence` must be the enclave's next sequence number.
    /// @param signature The enclave key's EIP-712 signature over `batch`.
    /// @param modelIds The models used in the batch, strictly ascending.
    /// @param counts Receipts per model (same order), summing to `batch.count`; hashed with `modelIds` to
    ///        `batch.usageHash`.
    /// @return batchId The new batch's id, `batchIdOf(batch.enclave, batch.sequence)`.
    function anchorBatch(
        Batch calldata batch,
        bytes calldata signature,
        bytes32[] calldata modelIds,
        uint32[] calldata counts
    ) external returns (uint256 batchId);

    // ---------------------------------------------------------------------------------------------------------
    // On-chain requests
    // ---------------------------------------------------------------------------------------------------------

    /// @notice Requests an inference of a registered model on `input` (hashed on chain), pulling `fee` OPG from the
    ///         caller. The caller is the requester: it receives the callback (when `callbackGasLimit` > 0) and
    ///         any refund.
    /// @param ttl Seconds until the request expires (MIN_TTL..MAX_TTL).
    /// @return requestId keccak256(abi.encode(chainId, this, nonce)).
    function requestInference(
        bytes32 modelId,
        bytes calldata input,
        uint96 fee,
        uint64 ttl,
        uint32 callbackGasLimit
    ) external returns (bytes32 requestId);

    /// @notice Like `requestInference` for an input given by its hash and where to fetch it.
    function requestInferenceByHash(
        bytes32 modelId,
        bytes32 inputHash,
        string calldata inputUri,
        uint96 fee,
        uint64 ttl,
        uint32 callbackGasLimit
    ) external returns (bytes32 requestId);

    /// @notice Fulfils a pending, unexpired request: checks the GPU node's receipt (active INFERENCE node, signed by
    ///         its current signer, for the request's model and input), the active enclave's signature over
    ///         Verdict(receiptHash, agree = true, receipt.outputHash, verdictTimestamp), and keccak256(output); pays
    ///         the fee to the node's payee and calls the requester back with at most `callbackGasLimit` gas. Anyone
    ///         may submit it.
    /// @param request The request as emitted in `InferenceRequested`.
    /// @param receipt The GPU node's receipt; `receipt.requestId` names the request.
    /// @param nodeSignature The node signer's EIP-712 signature over `receipt`.
    /// @param verdictTimestamp When the enclave signed its verdict (its clock).
    /// @param enclaveSignature An active enclave's EIP-712 signature over the agreeing verdict.
    /// @param output The canonical output; its keccak-256 must equal `receipt.outputHash`.
    function fulfil(
        InferenceRequest calldata request,
        Receipt calldata receipt,
        bytes calldata nodeSignature,
        uint64 verdictTimestamp,
        bytes calldata enclaveSignature,
        bytes calldata output
    ) external;

    /// @notice Returns an expired request's fee to its requester. Anyone may call.
    function refund(bytes32 requestId, InferenceRequest calldata request) external;

    // ---------------------------------------------------------------------------------------------------------
    // Evidence
    // ---------------------------------------------------------------------------------------------------------

    /// @notice Slashes a GPU node that signed two receipts for one question (request, model, input and execution
    ///         config) with different outputs, each with a key that was its signer at the receipt's date.
    /// @return slashed The amount NodeStaking took from the node.
    function reportDoubleReceipt(
        Receipt calldata a,
        bytes calldata signatureA,
        Receipt calldata b,
        bytes calldata signatureB
    ) external returns (uint256 slashed);

    /// @notice Slashes a GPU node whose signed receipt an enclave contradicted: the enclave signed
    ///         Verdict(receipt's struct hash, agree = false, verdictOutputHash, verdictTimestamp) with
    ///         verdictOutputHash other than the receipt's output hash, while its key was registered under an image
    ///         not revoked for cause (TeeRegistry.accountableNodeOf). Valid whatever the registry says later.
    /// @return slashed The amount NodeStaking took from the node.
    function reportContradictedReceipt(
        Receipt calldata receipt,
        bytes calldata nodeSignature,
        bytes32 verdictOutputHash,
        uint64 verdictTimestamp,
        bytes calldata enclaveSignature
    ) external returns (uint256 slashed);

    /// @notice Slashes the VERIFIER node of an enclave that signed two different batches with one sequence number
    ///         while its key was registered to that node (the binding is permanent: deregistering cannot escape it).
    /// @return slashed The amount NodeStaking took from the node.
    function reportBatchEquivocation(
        Batch calldata a,
        bytes calldata signatureA,
        Batch calldata b,
        bytes calldata signatureB
    ) external returns (uint256 slashed);

    // ---------------------------------------------------------------------------------------------------------
    // Governance
    // ---------------------------------------------------------------------------------------------------------

    /// @notice Sets how `offence` is punished (GOVERNOR_ROLE).
    function setSlashParams(Offence offence, uint16 bps, bool jail, uint40 cooldown) external;

    /// @notice Sets the rate (parts per million, 1..1,000,000) at which enclaves must re-execute receipts
    ///         (GOVERNOR_ROLE). Batches signed before the change at the rate then in force stay anchorable.
    function setSampleRate(uint32 ratePpm) external;

    /// @notice Sets the largest callback gas a new request may ask for (GOVERNOR_ROLE).
    function setMaxCallbackGas(uint32 maxCallbackGas) external;

    /// @notice Sets the assignment window of on-chain requests, in seconds (GOVERNOR_ROLE); 0: every active GPU node
    ///         may fulfil at once (a race). Applies to pending requests too.
    function setAssignmentWindow(uint32 windowSeconds) external;

    // ---------------------------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------------------------

    /// @notice True when `proof` proves `receipt`'s standard leaf against the stored root of `batchId`.
    /// @dev Reverts with LedgerUnknownBatch for an id that was never anchored.
    function verifyReceipt(
        uint256 batchId,
        Receipt calldata receipt,
        bytes32[] calldata proof
    ) external view returns (bool);

    /// @notice The stored Merkle root of `batchId`; reverts with LedgerUnknownBatch for an id that was never anchored.
    ///         The batch's enclave, sequence number, counts and usage are in its `BatchAnchored` event.
    function rootOf(uint256 batchId) external view returns (bytes32);

    /// @notice The rate (parts per million) at which enclaves must re-execute receipts.
    function sampleRate() external view returns (uint32);

    /// @notice When `node` was last slashed for `offence` (0: never).
    function lastSlashOf(address node, Offence offence) external view returns (uint256);

    /// @notice The sequence number the enclave's next batch must carry (its anchored batches are 0..n-1).
    function nextSequenceOf(address enclave) external view returns (uint64);

    /// @notice The stored hash of a pending request (zero when unknown, fulfilled or refunded).
    function requestHashOf(bytes32 requestId) external view returns (bytes32);

    /// @notice True when the offence with this key was slashed already.
    function isOffenceSlashed(bytes32 offenceKey) external view returns (bool);

    /// @notice How `offence` is punished.
    function slashParamsOf(Offence offence) external view returns (SlashParams memory);

    /// @notice The largest callback gas a new request may ask for.
    function maxCallbackGas() external view returns (uint32);

    /// @notice The seed a request made in this block gets (`InferenceRequest.seed`), for a consumer that keeps its
    ///         requests to pass back to {refund}; meaningful only in the block of the request.
    function seedOf(bytes32 requestId) external view returns (bytes32);

    /// @notice The assignment window of on-chain requests, in seconds.
    function assignmentWindow() external view returns (uint32);

    /// @notice When `node` may fulfil `request`: `requestedAt + window * u * minStake / stake`, where `u` in [0, 1)
    ///         is drawn from the request's seed and the node (keccak256(seed, node), 64 bits), `stake` is the node's
    ///         active stake and `minStake` the INFERENCE minimum. Each node has its own time, unknown before the
    ///         request's block; the first to come is stake-weighted (a node with k times the stake comes k times
    ///         sooner), and by `requestedAt + window` every active node may serve: a silent node only delays it.
    function eligibleAt(InferenceRequest calldata request, address node) external view returns (uint64);

    // ---------------------------------------------------------------------------------------------------------
    // Hashing (the on-chain side of offchain/chain/eip712.ts)
    // ---------------------------------------------------------------------------------------------------------

    /// @notice The EIP-712 digest a GPU node signs for `receipt`.
    function receiptDigest(Receipt calldata receipt) external view returns (bytes32);

    /// @notice The EIP-712 digest an enclave signs for Verdict(receiptHash, agree, outputHash, timestamp).
    function verdictDigest(
        bytes32 receiptHash,
        bool agree,
        bytes32 outputHash,
        uint64 timestamp
    ) external view returns (bytes32);

    /// @notice The EIP-712 digest an enclave signs for `batch`.
    function batchDigest(Batch calldata batch) external view returns (bytes32);

    /// @notice keccak256(abi.encode(request)): what is stored for a pending request.
    function hashRequest(InferenceRequest calldata request) external pure returns (bytes32);

    /// @notice The id of the enclave's batch `sequence`: uint256(uint160(enclave)) << 64 | sequence.
    function batchIdOf(address enclave, uint64 sequence) external pure returns (uint256);

    /// @notice The receipt's EIP-712 struct hash (a verdict's `receiptHash`).
    function receiptStructHash(Receipt calldata receipt) external pure returns (bytes32);

    /// @notice The receipt's OpenZeppelin standard Merkle leaf.
    function receiptLeaf(Receipt calldata receipt) external pure returns (bytes32);
}
