// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IInferenceConsumer} from "../interfaces/IInferenceConsumer.sol";
import {IInferenceLedger} from "../interfaces/IInferenceLedger.sol";
import {IModelRegistry} from "../interfaces/IModelRegistry.sol";
import {INodeStakingCore} from "../interfaces/INodeStakingCore.sol";
import {ITeeRegistryCore} from "../interfaces/ITeeRegistryCore.sol";
import {Batch, LedgerTypes, Receipt, Verdict} from "../libraries/LedgerTypes.sol";

/// @title InferenceLedger
/// @notice Anchors enclave-signed receipt batches, serves on-chain inference requests and slashes on evidence.
///         See {IInferenceLedger}.
/// @dev Depends only on INodeStakingCore (signers, roles, activity, slash) and ITeeRegistryCore (active enclaves);
///      this contract must be registered as a slasher in NodeStaking.
contract InferenceLedger is IInferenceLedger, EIP712, AccessControl, ReentrancyGuardTransient {
    using LedgerTypes for Receipt;
    using LedgerTypes for Batch;
    using LedgerTypes for Verdict;
    using SafeERC20 for IERC20;

    // -------------------------------------------------------------------------------------------------------------
    // Constants and immutables
    // -------------------------------------------------------------------------------------------------------------

    /// @notice Changes slash parameters and the callback gas limit (held by the timelock).
    bytes32 public constant GOVERNOR_ROLE = keccak256("GOVERNOR_ROLE");

    /// @notice Shortest and longest time to live of an on-chain request, in seconds.
    uint64 public constant MIN_TTL = 1 minutes;
    uint64 public constant MAX_TTL = 30 days;

    /// @notice Upper bound governance can set for a request's callback gas.
    uint32 public constant MAX_CALLBACK_GAS_CEILING = 5_000_000;

    /// @dev Gas the CALL itself may cost before the callee starts (cold account access, memory), on top of the
    ///      1/64 that EIP-150 withholds.
    uint256 private constant _CALL_OVERHEAD = 5_000;

    uint16 private constant _MAX_BPS = 10_000;

    /// @notice NodeStaking: node roles, signers, activity and slashing.
    INodeStakingCore public immutable STAKING;
    /// @notice TeeRegistry: which enclave keys are active and whose VERIFIER node they belong to.
    ITeeRegistryCore public immutable TEE_REGISTRY;
    /// @notice ModelRegistry: on-chain requests must name a registered model.
    IModelRegistry public immutable MODEL_REGISTRY;
    /// @notice The OPG token in which request fees are paid.
    IERC20 public immutable FEE_TOKEN;

    // -------------------------------------------------------------------------------------------------------------
    // Storage
    // -------------------------------------------------------------------------------------------------------------

    uint256 private _batchCount;
    mapping(uint256 batchId => bytes32 root) private _roots;
    mapping(address enclave => uint64 sequence) private _nextSequence;

    uint256 private _requestNonce;
    mapping(bytes32 requestId => bytes32 requestHash) private _pendingRequests;

    mapping(bytes32 offenceKey => bool slashed) private _slashedOffences;
    mapping(Offence offence => SlashParams params) private _slashParams;
    uint32 private _maxCallbackGas;

    // -------------------------------------------------------------------------------------------------------------
    // Constructor
    // -------------------------------------------------------------------------------------------------------------

    /// @param admin Receives DEFAULT_ADMIN_ROLE and GOVERNOR_ROLE (the timelock).
    /// @param staking NodeStaking (this contract must be one of its slashers).
    /// @param teeRegistry TeeRegistry.
    /// @param modelRegistry ModelRegistry.
    /// @param feeToken The OPG token.
    constructor(
        address admin,
        INodeStakingCore staking,
        ITeeRegistryCore teeRegistry,
        IModelRegistry modelRegistry,
        IERC20 feeToken
    ) EIP712(LedgerTypes.DOMAIN_NAME, LedgerTypes.DOMAIN_VERSION) {
        if (
            admin == address(0) ||
            address(staking) == address(0) ||
            address(teeRegistry) == address(0) ||
            address(modelRegistry) == address(0) ||
            address(feeToken) == address(0)
        ) revert LedgerZeroAddress();
        STAKING = staking;
        TEE_REGISTRY = teeRegistry;
        MODEL_REGISTRY = modelRegistry;
        FEE_TOKEN = feeToken;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNOR_ROLE, admin);
        // Defaults, changeable by governance: lying about an output costs 10% and a jail, an equivocating enclave 20%.
        _setSlashParams(Offence.DOUBLE_RECEIPT, 1_000, true);
        _setSlashParams(Offence.CONTRADICTED_RECEIPT, 1_000, true);
        _setSlashParams(Offence.BATCH_EQUIVOCATION, 2_000, true);
        _setMaxCallbackGas(500_000);
    }

    // -------------------------------------------------------------------------------------------------------------
    // External functions: anchoring
    // -------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IInferenceLedger
    function anchorBatch(
        Batch calldata batch,
        bytes calldata signature,
        bytes32[] calldata modelIds,
        uint32[] calldata counts
    ) external returns (uint256 batchId) {
        // Checks: well-formed, signed by an active enclave in sequence, with the signed usage summary.
        _checkBatch(batch, signature, modelIds, counts);

        // Effects: one slot per batch (its root), id = counter; the rest of the batch is in the event.
        _nextSequence[batch.enclave] = batch.sequence + 1;
        batchId = ++_batchCount;
        _roots[batchId] = batch.root;
        _emitBatchAnchored(batchId, batch, modelIds, counts);
    }

    // -------------------------------------------------------------------------------------------------------------
    // External functions: on-chain requests
    // -------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IInferenceLedger
    function requestInference(
        bytes32 modelId,
        bytes calldata input,
        uint96 fee,
        uint64 ttl,
        uint32 callbackGasLimit
    ) external nonReentrant returns (bytes32 requestId) {
        return _request(modelId, keccak256(input), input, "", fee, ttl, callbackGasLimit);
    }

    /// @inheritdoc IInferenceLedger
    function requestInferenceByHash(
        bytes32 modelId,
        bytes32 inputHash,
        string calldata inputUri,
        uint96 fee,
        uint64 ttl,
        uint32 callbackGasLimit
    ) external nonReentrant returns (bytes32 requestId) {
        return _request(modelId, inputHash, "", inputUri, fee, ttl, callbackGasLimit);
    }

    /// @inheritdoc IInferenceLedger
    function fulfil(
        InferenceRequest calldata request,
        Receipt calldata receipt,
        bytes calldata nodeSignature,
        bytes calldata enclaveSignature,
        bytes calldata output
    ) external nonReentrant {
        // Checks.
        address enclave = _checkFulfilment(request, receipt, nodeSignature, enclaveSignature, output);

        // Effects: the request is settled (the freed slot refunds gas).
        delete _pendingRequests[receipt.requestId];

        // Interactions: pay the node, then call the requester back with capped gas; no outcome of the callback can
        // undo the fulfilment.
        if (request.fee > 0) FEE_TOKEN.safeTransfer(receipt.node, request.fee);
        bool callbackSucceeded = _deliver(request, receipt, output);
        emit InferenceFulfilled(
            receipt.requestId,
            receipt.node,
            enclave,
            receipt.outputHash,
            callbackSucceeded,
            output
        );
    }

    /// @inheritdoc IInferenceLedger
    function refund(bytes32 requestId, InferenceRequest calldata request) external nonReentrant {
        // Checks: pending and expired.
        _checkPending(requestId, request);
        if (block.timestamp <= request.deadline) revert LedgerRequestNotExpired(requestId, request.deadline);

        // Effects.
        delete _pendingRequests[requestId];
        emit RequestRefunded(requestId, request.requester, request.fee);

        // Interactions.
        if (request.fee > 0) FEE_TOKEN.safeTransfer(request.requester, request.fee);
    }

    // -------------------------------------------------------------------------------------------------------------
    // External functions: evidence
    // -------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IInferenceLedger
    function reportDoubleReceipt(
        Receipt calldata a,
        bytes calldata signatureA,
        Receipt calldata b,
        bytes calldata signatureB
    ) external nonReentrant returns (uint256 slashed) {
        // Checks: one node, one request, two outputs, both signed by the node's signer.
        bytes32 hashA = a.hash();
        bytes32 hashB = b.hash();
        if (a.node != b.node || a.requestId != b.requestId || a.outputHash == b.outputHash) {
            revert LedgerReceiptsNotConflicting(hashA, hashB);
        }
        _checkInferenceNode(a.node, false);
        _checkEvidenceSignature(a.node, hashA, signatureA);
        _checkEvidenceSignature(a.node, hashB, signatureB);

        // Effects and interactions.
        bytes32 key = keccak256(abi.encode(Offence.DOUBLE_RECEIPT, a.node, a.requestId));
        return _slash(Offence.DOUBLE_RECEIPT, a.node, key);
    }

    /// @inheritdoc IInferenceLedger
    function reportContradictedReceipt(
        Receipt calldata receipt,
        bytes calldata nodeSignature,
        bytes32 verdictOutputHash,
        bytes calldata enclaveSignature
    ) external nonReentrant returns (uint256 slashed) {
        // Checks: the node signed the receipt; an active enclave signed a disagreeing verdict naming another output.
        bytes32 receiptHash = receipt.hash();
        if (verdictOutputHash == receipt.outputHash)
            revert LedgerVerdictNotContradicting(receiptHash, verdictOutputHash);
        _checkInferenceNode(receipt.node, false);
        _checkEvidenceSignature(receipt.node, receiptHash, nodeSignature);
        address enclave = ECDSA.recoverCalldata(
            _hashTypedDataV4(
                Verdict({receiptHash: receiptHash, agree: false, outputHash: verdictOutputHash}).hash()
            ),
            enclaveSignature
        );
        if (!TEE_REGISTRY.isActiveEnclave(enclave)) revert LedgerInactiveEnclave(enclave);

        // Effects and interactions.
        bytes32 key = keccak256(abi.encode(Offence.CONTRADICTED_RECEIPT, receiptHash));
        return _slash(Offence.CONTRADICTED_RECEIPT, receipt.node, key);
    }

    /// @inheritdoc IInferenceLedger
    function reportBatchEquivocation(
        Batch calldata a,
        bytes calldata signatureA,
        Batch calldata b,
        bytes calldata signatureB
    ) external nonReentrant returns (uint256 slashed) {
        // Checks: one enclave, one sequence number, two different batches, both signed by the enclave key.
        bytes32 hashA = a.hash();
        bytes32 hashB = b.hash();
        if (a.enclave != b.enclave || a.sequence != b.sequence || hashA == hashB) {
            revert LedgerBatchesNotConflicting(hashA, hashB);
        }
        address recoveredA = ECDSA.recoverCalldata(_hashTypedDataV4(hashA), signatureA);
        if (recoveredA != a.enclave) revert LedgerInvalidBatchSigner(a.enclave, recoveredA);
        address recoveredB = ECDSA.recoverCalldata(_hashTypedDataV4(hashB), signatureB);
        if (recoveredB != a.enclave) revert LedgerInvalidBatchSigner(a.enclave, recoveredB);
        address node = TEE_REGISTRY.nodeOfEnclave(a.enclave);
        if (node == address(0)) revert LedgerUnknownEnclave(a.enclave);

        // Effects and interactions: the enclave's VERIFIER node answers for it.
        bytes32 key = keccak256(abi.encode(Offence.BATCH_EQUIVOCATION, a.enclave, a.sequence));
        return _slash(Offence.BATCH_EQUIVOCATION, node, key);
    }

    // -------------------------------------------------------------------------------------------------------------
    // External functions: governance
    // -------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IInferenceLedger
    function setSlashParams(Offence offence, uint16 bps, bool jail) external onlyRole(GOVERNOR_ROLE) {
        _setSlashParams(offence, bps, jail);
    }

    /// @inheritdoc IInferenceLedger
    function setMaxCallbackGas(uint32 maxCallbackGas_) external onlyRole(GOVERNOR_ROLE) {
        _setMaxCallbackGas(maxCallbackGas_);
    }

    // -------------------------------------------------------------------------------------------------------------
    // External views
    // -------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IInferenceLedger
    function verifyReceipt(
        uint256 batchId,
        Receipt calldata receipt,
        bytes32[] calldata proof
    ) external view returns (bool) {
        bytes32 root = _roots[batchId];
        if (root == bytes32(0)) revert LedgerUnknownBatch(batchId);
        return MerkleProof.verifyCalldata(proof, root, receipt.leaf());
    }

    /// @inheritdoc IInferenceLedger
    function rootOf(uint256 batchId) external view returns (bytes32 root) {
        root = _roots[batchId];
        if (root == bytes32(0)) revert LedgerUnknownBatch(batchId);
    }

    /// @inheritdoc IInferenceLedger
    function batchCount() external view returns (uint256) {
        return _batchCount;
    }

    /// @inheritdoc IInferenceLedger
    function nextSequenceOf(address enclave) external view returns (uint64) {
        return _nextSequence[enclave];
    }

    /// @inheritdoc IInferenceLedger
    function requestHashOf(bytes32 requestId) external view returns (bytes32) {
        return _pendingRequests[requestId];
    }

    /// @inheritdoc IInferenceLedger
    function isOffenceSlashed(bytes32 offenceKey) external view returns (bool) {
        return _slashedOffences[offenceKey];
    }

    /// @inheritdoc IInferenceLedger
    function slashParamsOf(Offence offence) external view returns (SlashParams memory) {
        return _slashParams[offence];
    }

    /// @inheritdoc IInferenceLedger
    function maxCallbackGas() external view returns (uint32) {
        return _maxCallbackGas;
    }

    /// @inheritdoc IInferenceLedger
    function receiptDigest(Receipt calldata receipt) external view returns (bytes32) {
        return _hashTypedDataV4(receipt.hash());
    }

    /// @inheritdoc IInferenceLedger
    function verdictDigest(
        bytes32 receiptHash,
        bool agree,
        bytes32 outputHash
    ) external view returns (bytes32) {
        return
            _hashTypedDataV4(
                Verdict({receiptHash: receiptHash, agree: agree, outputHash: outputHash}).hash()
            );
    }

    /// @inheritdoc IInferenceLedger
    function batchDigest(Batch calldata batch) external view returns (bytes32) {
        return _hashTypedDataV4(batch.hash());
    }

    // -------------------------------------------------------------------------------------------------------------
    // External pure functions
    // -------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IInferenceLedger
    function hashRequest(InferenceRequest calldata request) external pure returns (bytes32) {
        return keccak256(abi.encode(request));
    }

    /// @inheritdoc IInferenceLedger
    function receiptStructHash(Receipt calldata receipt) external pure returns (bytes32) {
        return receipt.hash();
    }

    /// @inheritdoc IInferenceLedger
    function receiptLeaf(Receipt calldata receipt) external pure returns (bytes32) {
        return receipt.leaf();
    }

    // -------------------------------------------------------------------------------------------------------------
    // Private functions
    // -------------------------------------------------------------------------------------------------------------

    function _request(
        bytes32 modelId,
        bytes32 inputHash,
        bytes memory input,
        string memory inputUri,
        uint96 fee,
        uint64 ttl,
        uint32 callbackGasLimit
    ) private returns (bytes32 requestId) {
        // Checks.
        if (!MODEL_REGISTRY.isRegistered(modelId)) revert LedgerUnknownModel(modelId);
        if (ttl < MIN_TTL || ttl > MAX_TTL) revert LedgerInvalidTtl(ttl, MIN_TTL, MAX_TTL);
        if (callbackGasLimit > _maxCallbackGas)
            revert LedgerCallbackGasTooHigh(callbackGasLimit, _maxCallbackGas);

        // Effects: only the request's hash is stored; fulfil and refund pass the request back.
        requestId = keccak256(abi.encode(block.chainid, address(this), ++_requestNonce));
        InferenceRequest memory request = InferenceRequest({
            requester: msg.sender,
            fee: fee,
            modelId: modelId,
            inputHash: inputHash,
            deadline: uint64(block.timestamp) + ttl,
            callbackGasLimit: callbackGasLimit
        });
        _pendingRequests[requestId] = keccak256(abi.encode(request));
        emit InferenceRequested(
            requestId,
            msg.sender,
            modelId,
            inputHash,
            fee,
            request.deadline,
            callbackGasLimit,
            input,
            inputUri
        );

        // Interactions: escrow the fee.
        if (fee > 0) FEE_TOKEN.safeTransferFrom(msg.sender, address(this), fee);
    }

    /// @dev Calls the requester back when it asked for a callback; true when there was none or it succeeded.
    function _deliver(
        InferenceRequest calldata request,
        Receipt calldata receipt,
        bytes calldata output
    ) private returns (bool) {
        if (request.callbackGasLimit == 0) return true;
        return
            _callBack(
                request.requester,
                request.callbackGasLimit,
                abi.encodeCall(
                    IInferenceConsumer.onInferenceResult,
                    (receipt.requestId, request.modelId, receipt.outputHash, output)
                )
            );
    }

    function _emitBatchAnchored(
        uint256 batchId,
        Batch calldata batch,
        bytes32[] calldata modelIds,
        uint32[] calldata counts
    ) private {
        emit BatchAnchored(
            batchId,
            batch.enclave,
            batch.sequence,
            batch.root,
            batch.count,
            batch.reexecuted,
            modelIds,
            counts
        );
    }

    /// @dev Marks the offence used, then asks NodeStaking to slash with the offence's governance parameters.
    function _slash(Offence offence, address node, bytes32 key) private returns (uint256 slashed) {
        if (_slashedOffences[key]) revert LedgerOffenceAlreadySlashed(key);
        _slashedOffences[key] = true;
        SlashParams memory params = _slashParams[offence];
        slashed = STAKING.slash(node, params.bps, msg.sender, params.jail, key);
        emit OffenceSlashed(offence, node, key, msg.sender, slashed);
    }

    /// @dev Calls `target` with exactly `gasLimit` gas and no return data copied (no return-data bomb). Reverts when
    ///      less than `gasLimit` could reach the callee, so a fulfiller cannot starve a callback on purpose.
    function _callBack(address target, uint256 gasLimit, bytes memory data) private returns (bool success) {
        uint256 available = gasleft();
        uint256 required = gasLimit + gasLimit / 63 + _CALL_OVERHEAD;
        if (available < required) revert LedgerInsufficientCallbackGas(available, required);
        assembly ("memory-safe") {
            success := call(gasLimit, target, 0, add(data, 0x20), mload(data), 0, 0)
        }
    }

    function _setSlashParams(Offence offence, uint16 bps, bool jail) private {
        if (bps == 0 || bps > _MAX_BPS) revert LedgerInvalidSlashBps(bps);
        _slashParams[offence] = SlashParams({bps: bps, jail: jail});
        emit SlashParamsSet(offence, bps, jail);
    }

    function _setMaxCallbackGas(uint32 maxCallbackGas_) private {
        if (maxCallbackGas_ == 0 || maxCallbackGas_ > MAX_CALLBACK_GAS_CEILING) {
            revert LedgerInvalidMaxCallbackGas(maxCallbackGas_);
        }
        _maxCallbackGas = maxCallbackGas_;
        emit MaxCallbackGasSet(maxCallbackGas_);
    }

    // -------------------------------------------------------------------------------------------------------------
    // Private views
    // -------------------------------------------------------------------------------------------------------------

    function _checkPending(bytes32 requestId, InferenceRequest calldata request) private view {
        bytes32 stored = _pendingRequests[requestId];
        if (stored == bytes32(0)) revert LedgerRequestNotPending(requestId);
        bytes32 given = keccak256(abi.encode(request));
        if (stored != given) revert LedgerRequestMismatch(requestId, stored, given);
    }

    /// @dev Everything `fulfil` checks; returns the enclave that agreed.
    function _checkFulfilment(
        InferenceRequest calldata request,
        Receipt calldata receipt,
        bytes calldata nodeSignature,
        bytes calldata enclaveSignature,
        bytes calldata output
    ) private view returns (address enclave) {
        // The request is pending, unexpired, and the receipt answers it with this output.
        bytes32 requestId = receipt.requestId;
        _checkPending(requestId, request);
        if (block.timestamp > request.deadline) revert LedgerRequestExpired(requestId, request.deadline);
        if (receipt.modelId != request.modelId || receipt.inputHash != request.inputHash) {
            revert LedgerReceiptNotForRequest(requestId, receipt.modelId, receipt.inputHash);
        }
        bytes32 actual = keccak256(output);
        if (actual != receipt.outputHash) revert LedgerOutputMismatch(receipt.outputHash, actual);

        // An active GPU node signed the receipt and an active enclave agreed with it.
        bytes32 receiptHash = receipt.hash();
        _checkInferenceNode(receipt.node, true);
        _checkReceiptSignature(receipt.node, receiptHash, nodeSignature);
        enclave = ECDSA.recoverCalldata(
            _hashTypedDataV4(Verdict({receiptHash: receiptHash, agree: true, outputHash: actual}).hash()),
            enclaveSignature
        );
        if (!TEE_REGISTRY.isActiveEnclave(enclave)) revert LedgerInactiveEnclave(enclave);
    }

    /// @dev Everything `anchorBatch` checks.
    function _checkBatch(
        Batch calldata batch,
        bytes calldata signature,
        bytes32[] calldata modelIds,
        uint32[] calldata counts
    ) private view {
        // A well-formed batch whose usage summary is the signed one.
        if (batch.root == bytes32(0) || batch.count == 0 || batch.reexecuted > batch.count) {
            revert LedgerInvalidBatch(batch.root, batch.count, batch.reexecuted);
        }
        _checkUsage(batch, modelIds, counts);

        // Signed by the enclave key, in sequence, and the enclave is active.
        address enclave = batch.enclave;
        address recovered = ECDSA.recoverCalldata(_hashTypedDataV4(batch.hash()), signature);
        if (recovered != enclave) revert LedgerInvalidBatchSigner(enclave, recovered);
        uint64 expected = _nextSequence[enclave];
        if (batch.sequence != expected) revert LedgerUnexpectedSequence(enclave, batch.sequence, expected);
        if (!TEE_REGISTRY.isActiveEnclave(enclave)) revert LedgerInactiveEnclave(enclave);
    }

    /// @dev The node is an INFERENCE node, and active when `mustBeActive` (fulfilment; evidence slashes jailed or
    ///      unbonding nodes too).
    function _checkInferenceNode(address node, bool mustBeActive) private view {
        INodeStakingCore.Role role = STAKING.roleOf(node);
        if (role != INodeStakingCore.Role.INFERENCE) revert LedgerNotInferenceNode(node, role);
        if (mustBeActive && !STAKING.isActive(node)) revert LedgerInactiveNode(node);
    }

    /// @dev The receipt (by struct hash) was signed by the node's current signer.
    function _checkReceiptSignature(
        address node,
        bytes32 receiptHash,
        bytes calldata signature
    ) private view {
        address recovered = ECDSA.recoverCalldata(_hashTypedDataV4(receiptHash), signature);
        address signer = STAKING.signerOf(node);
        if (signer == address(0) || recovered != signer)
            revert LedgerInvalidReceiptSigner(node, signer, recovered);
    }

    /// @dev As evidence, the receipt was signed by the node's current signer or one it has rotated away from: a
    ///      node cannot escape a slash by rotating its key after signing a lie.
    function _checkEvidenceSignature(
        address node,
        bytes32 receiptHash,
        bytes calldata signature
    ) private view {
        address recovered = ECDSA.recoverCalldata(_hashTypedDataV4(receiptHash), signature);
        if (!STAKING.wasSignerOf(node, recovered))
            revert LedgerInvalidReceiptSigner(node, STAKING.signerOf(node), recovered);
    }

    // -------------------------------------------------------------------------------------------------------------
    // Private pure functions
    // -------------------------------------------------------------------------------------------------------------

    /// @dev The usage summary: equal lengths, strictly ascending modelIds, counts summing to the batch's count,
    ///      hashing to the signed usageHash.
    function _checkUsage(
        Batch calldata batch,
        bytes32[] calldata modelIds,
        uint32[] calldata counts
    ) private pure {
        uint256 n = modelIds.length;
        if (n != counts.length) revert LedgerUsageLengthMismatch(n, counts.length);
        uint256 total;
        for (uint256 i = 0; i < n; ++i) {
            if (i > 0 && modelIds[i] <= modelIds[i - 1]) revert LedgerUsageNotSorted(i, modelIds[i]);
            total += counts[i];
        }
        if (total != batch.count) revert LedgerUsageCountMismatch(total, batch.count);
        bytes32 actual = LedgerTypes.usageHash(modelIds, counts);
        if (actual != batch.usageHash) revert LedgerUsageHashMismatch(batch.usageHash, actual);
    }
}
