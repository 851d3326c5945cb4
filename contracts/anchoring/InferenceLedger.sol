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
    // Types
    // -------------------------------------------------------------------------------------------------------------

    /// @dev One slot, read once per anchoring: the rate governance requires and the one before its last change.
    struct SampleRate {
        uint32 ratePpm;
        uint32 previousRatePpm;
        uint40 changedAt;
    }

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

    /// @notice How far ahead of the chain's clock a signed time (a batch's or a verdict's) may be.
    uint64 public constant MAX_CLOCK_SKEW = 5 minutes;

    /// @notice The longest a slashed offence type keeps its node from being slashed again for it.
    uint40 public constant MAX_OFFENCE_COOLDOWN = 90 days;

    /// @notice The longest assignment window governance can set.
    uint32 public constant MAX_ASSIGNMENT_WINDOW = 1 hours;

    /// @notice A sample rate of 1 (every receipt re-executed), in parts per million.
    uint32 public constant FULL_SAMPLE_RATE = 1_000_000;

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

    SampleRate private _sampleRate;
    /// @dev batchId = enclave << 64 | sequence: a batch's slot is its root, and an enclave's anchored sequences are
    ///      always a prefix 0..n-1 (each needs the one before), so no counter is written per anchoring.
    mapping(uint256 batchId => bytes32 root) private _roots;

    uint256 private _requestNonce;
    mapping(bytes32 requestId => bytes32 requestHash) private _pendingRequests;

    mapping(bytes32 offenceKey => bool slashed) private _slashedOffences;
    mapping(Offence offence => SlashParams params) private _slashParams;
    mapping(address node => mapping(Offence offence => uint40 slashedAt)) private _lastSlashAt;
    uint32 private _maxCallbackGas;
    uint32 private _assignmentWindow;

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
        // Defaults, changeable by governance: lying about an output costs 10% and a jail, an equivocating enclave
        // 20%; one slash per offence type and node per day; every receipt re-executed.
        _setSlashParams(Offence.DOUBLE_RECEIPT, 1_000, true, 1 days);
        _setSlashParams(Offence.CONTRADICTED_RECEIPT, 1_000, true, 1 days);
        _setSlashParams(Offence.BATCH_EQUIVOCATION, 2_000, true, 1 days);
        _setMaxCallbackGas(500_000);
        _sampleRate = SampleRate({
            ratePpm: FULL_SAMPLE_RATE,
            previousRatePpm: FULL_SAMPLE_RATE,
            changedAt: 0
        });
        emit SampleRateSet(FULL_SAMPLE_RATE);
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
        // Checks: well-formed, signed by an active enclave in sequence, with the signed usage summary, over receipts
        // of an INFERENCE node signed by its signer, sampled at no less than governance's rate.
        batchId = _batchIdOf(batch.enclave, batch.sequence);
        _checkBatch(batch, batchId, signature, modelIds, counts);

        // Effects: one slot per batch (its root); the rest of the batch is in the event.
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
        uint64 verdictTimestamp,
        bytes calldata enclaveSignature,
        bytes calldata output
    ) external nonReentrant {
        // Checks.
        address enclave = _checkFulfilment(
            request,
            receipt,
            nodeSignature,
            verdictTimestamp,
            enclaveSignature,
            output
        );

        // Effects: the request is settled (the freed slot refunds gas).
        delete _pendingRequests[receipt.requestId];

        // Interactions: pay the node's payee (its operator unless it set one: node ids are not keys anyone holds),
        // then call the requester back with capped gas; no outcome of the callback can undo the fulfilment.
        if (request.fee > 0) FEE_TOKEN.safeTransfer(STAKING.payeeOf(receipt.node), request.fee);
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
        // Checks: one node answered one question (request, model, input, config) with two outputs, both signed by a
        // key that was the node's signer at the receipt's date.
        bytes32 hashA = a.hash();
        bytes32 hashB = b.hash();
        if (
            a.node != b.node ||
            a.requestId != b.requestId ||
            a.modelId != b.modelId ||
            a.inputHash != b.inputHash ||
            a.execConfigHash != b.execConfigHash ||
            a.outputHash == b.outputHash
        ) revert LedgerReceiptsNotConflicting(hashA, hashB);
        _checkEvidenceSignature(a.node, hashA, signatureA, a.timestamp);
        _checkEvidenceSignature(a.node, hashB, signatureB, b.timestamp);

        // Effects and interactions: the offence is dated by the later of the two receipts.
        bytes32 key = keccak256(abi.encode(Offence.DOUBLE_RECEIPT, a.node, a.requestId));
        return
            _slash(
                Offence.DOUBLE_RECEIPT,
                a.node,
                key,
                a.timestamp > b.timestamp ? a.timestamp : b.timestamp
            );
    }

    /// @inheritdoc IInferenceLedger
    function reportContradictedReceipt(
        Receipt calldata receipt,
        bytes calldata nodeSignature,
        bytes32 verdictOutputHash,
        uint64 verdictTimestamp,
        bytes calldata enclaveSignature
    ) external nonReentrant returns (uint256 slashed) {
        // Checks: the node signed the receipt; an enclave key that was registered, under an image not revoked for
        // cause, when it signed, signed a disagreeing verdict naming another output. Whatever the registry says now.
        bytes32 receiptHash = receipt.hash();
        if (verdictOutputHash == receipt.outputHash)
            revert LedgerVerdictNotContradicting(receiptHash, verdictOutputHash);
        _checkEvidenceSignature(receipt.node, receiptHash, nodeSignature, receipt.timestamp);
        _checkSignedTime(verdictTimestamp);
        address enclave = ECDSA.recoverCalldata(
            _hashTypedDataV4(
                Verdict({
                    receiptHash: receiptHash,
                    agree: false,
                    outputHash: verdictOutputHash,
                    timestamp: verdictTimestamp
                }).hash()
            ),
            enclaveSignature
        );
        if (TEE_REGISTRY.accountableNodeOf(enclave, verdictTimestamp) == address(0)) {
            revert LedgerUnaccountableEnclave(enclave, verdictTimestamp);
        }

        // Effects and interactions: the offence is dated when the enclave caught it.
        bytes32 key = keccak256(abi.encode(Offence.CONTRADICTED_RECEIPT, receiptHash));
        return _slash(Offence.CONTRADICTED_RECEIPT, receipt.node, key, verdictTimestamp);
    }

    /// @inheritdoc IInferenceLedger
    function reportBatchEquivocation(
        Batch calldata a,
        bytes calldata signatureA,
        Batch calldata b,
        bytes calldata signatureB
    ) external nonReentrant returns (uint256 slashed) {
        // Checks: see _checkEquivocation.
        address node = _checkEquivocation(a, signatureA, b, signatureB);

        // Effects and interactions: the VERIFIER node the key is bound to answers for it.
        bytes32 key = keccak256(abi.encode(Offence.BATCH_EQUIVOCATION, a.enclave, a.sequence));
        return _slash(Offence.BATCH_EQUIVOCATION, node, key, a.asOf > b.asOf ? a.asOf : b.asOf);
    }

    // -------------------------------------------------------------------------------------------------------------
    // External functions: governance
    // -------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IInferenceLedger
    function setSlashParams(
        Offence offence,
        uint16 bps,
        bool jail,
        uint40 cooldown
    ) external onlyRole(GOVERNOR_ROLE) {
        _setSlashParams(offence, bps, jail, cooldown);
    }

    /// @inheritdoc IInferenceLedger
    function setSampleRate(uint32 ratePpm) external onlyRole(GOVERNOR_ROLE) {
        if (ratePpm == 0 || ratePpm > FULL_SAMPLE_RATE) revert LedgerInvalidSampleRate(ratePpm);
        // Batches the enclaves signed before this change, at the rate then in force, stay anchorable.
        _sampleRate = SampleRate({
            ratePpm: ratePpm,
            previousRatePpm: _sampleRate.ratePpm,
            changedAt: uint40(block.timestamp)
        });
        emit SampleRateSet(ratePpm);
    }

    /// @inheritdoc IInferenceLedger
    function setMaxCallbackGas(uint32 maxCallbackGas_) external onlyRole(GOVERNOR_ROLE) {
        _setMaxCallbackGas(maxCallbackGas_);
    }

    // -------------------------------------------------------------------------------------------------------------
    // External views
    // -------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IInferenceLedger
    function setAssignmentWindow(uint32 windowSeconds) external onlyRole(GOVERNOR_ROLE) {
        if (windowSeconds > MAX_ASSIGNMENT_WINDOW)
            revert LedgerInvalidAssignmentWindow(windowSeconds, MAX_ASSIGNMENT_WINDOW);
        _assignmentWindow = windowSeconds;
        emit AssignmentWindowSet(windowSeconds);
    }

    /// @inheritdoc IInferenceLedger
    function seedOf(bytes32 requestId) external view returns (bytes32) {
        return _seedOf(requestId);
    }

    /// @inheritdoc IInferenceLedger
    function assignmentWindow() external view returns (uint32) {
        return _assignmentWindow;
    }

    /// @inheritdoc IInferenceLedger
    function eligibleAt(InferenceRequest calldata request, address node) external view returns (uint64) {
        return _eligibleAt(request, node);
    }

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
    function sampleRate() external view returns (uint32) {
        return _sampleRate.ratePpm;
    }

    /// @inheritdoc IInferenceLedger
    function lastSlashOf(address node, Offence offence) external view returns (uint256) {
        return _lastSlashAt[node][offence];
    }

    /// @inheritdoc IInferenceLedger
    function nextSequenceOf(address enclave) external view returns (uint64) {
        return _nextSequenceOf(enclave);
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
        bytes32 outputHash,
        uint64 timestamp
    ) external view returns (bytes32) {
        return
            _hashTypedDataV4(
                Verdict({
                    receiptHash: receiptHash,
                    agree: agree,
                    outputHash: outputHash,
                    timestamp: timestamp
                }).hash()
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
    function batchIdOf(address enclave, uint64 sequence) external pure returns (uint256) {
        return _batchIdOf(enclave, sequence);
    }

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
            callbackGasLimit: callbackGasLimit,
            requestedAt: uint64(block.timestamp),
            seed: _seedOf(requestId)
        });
        _pendingRequests[requestId] = keccak256(abi.encode(request));
        _emitRequested(requestId, request, input, inputUri);

        // Interactions: escrow the fee.
        if (fee > 0) FEE_TOKEN.safeTransferFrom(msg.sender, address(this), fee);
    }

    function _emitRequested(
        bytes32 requestId,
        InferenceRequest memory request,
        bytes memory input,
        string memory inputUri
    ) private {
        emit InferenceRequested(
            requestId,
            request.requester,
            request.modelId,
            request.inputHash,
            request.fee,
            request.deadline,
            request.callbackGasLimit,
            input,
            inputUri,
            request.requestedAt,
            request.seed
        );
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
            batch.node,
            batch.sequence,
            batch.root,
            batch.count,
            batch.reexecuted,
            modelIds,
            counts
        );
    }

    /// @dev The repeat rule: once a node is slashed for an offence type, that slash covers every offence of the type
    ///      dated at or before it, and no new one is slashed until its cooldown has passed; so a leaked key (a
    ///      former one can only sign for dates before its rotation) cannot drain a node one offence at a time.
    ///      Marks the offence used, then asks NodeStaking to slash with the offence's governance parameters; a slash
    ///      that takes nothing reverts, so the evidence stays reportable.
    function _slash(
        Offence offence,
        address node,
        bytes32 key,
        uint256 datedAt
    ) private returns (uint256 slashed) {
        // Checks
        if (_slashedOffences[key]) revert LedgerOffenceAlreadySlashed(key);
        SlashParams memory params = _slashParams[offence];
        uint256 last = _lastSlashAt[node][offence];
        if (last != 0) {
            if (datedAt <= last) revert LedgerOffenceCovered(offence, node, datedAt, last);
            uint256 until = last + params.cooldown;
            if (block.timestamp < until) revert LedgerOffenceCooldown(offence, node, until);
        }

        // Effects
        _slashedOffences[key] = true;
        _lastSlashAt[node][offence] = uint40(block.timestamp);

        // Interactions
        slashed = STAKING.slash(node, params.bps, msg.sender, params.jail, key);
        if (slashed == 0) revert LedgerNothingToSlash(node, key);
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

    function _setSlashParams(Offence offence, uint16 bps, bool jail, uint40 cooldown) private {
        if (bps == 0 || bps > _MAX_BPS) revert LedgerInvalidSlashBps(bps);
        if (cooldown > MAX_OFFENCE_COOLDOWN)
            revert LedgerInvalidOffenceCooldown(cooldown, MAX_OFFENCE_COOLDOWN);
        _slashParams[offence] = SlashParams({bps: bps, jail: jail, cooldown: cooldown});
        emit SlashParamsSet(offence, bps, jail, cooldown);
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
        uint64 verdictTimestamp,
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

        // An active GPU node signed the receipt, in its turn, and an active enclave agreed with it.
        bytes32 receiptHash = receipt.hash();
        _checkInferenceNode(receipt.node, true);
        uint64 eligible = _eligibleAt(request, receipt.node);
        if (block.timestamp < eligible) revert LedgerNotYetEligible(requestId, receipt.node, eligible);
        _checkReceiptSignature(receipt.node, receiptHash, nodeSignature);
        enclave = ECDSA.recoverCalldata(
            _hashTypedDataV4(
                Verdict({
                    receiptHash: receiptHash,
                    agree: true,
                    outputHash: actual,
                    timestamp: verdictTimestamp
                }).hash()
            ),
            enclaveSignature
        );
        if (!TEE_REGISTRY.isActiveEnclave(enclave)) revert LedgerInactiveEnclave(enclave);
    }

    /// @dev Unknown before the request's block (its prevrandao), so no node knows its turn in advance.
    function _seedOf(bytes32 requestId) private view returns (bytes32) {
        return keccak256(abi.encode(block.prevrandao, requestId));
    }

    /// @dev See {IInferenceLedger-eligibleAt}. A stake below the minimum (an inactive node, refused anyway) counts as
    ///      the minimum; window <= 2^32, u < 2^64 and minStake <= 2^96 keep the product within 256 bits.
    function _eligibleAt(InferenceRequest calldata request, address node) private view returns (uint64) {
        uint256 window = _assignmentWindow;
        if (window == 0) return request.requestedAt;
        uint256 minimum = STAKING.minStake(INodeStakingCore.Role.INFERENCE);
        uint256 stake = STAKING.activeStakeOf(node);
        if (stake < minimum) stake = minimum;
        if (stake == 0) return request.requestedAt;
        uint256 u = uint64(uint256(keccak256(abi.encode(request.seed, node))));
        return request.requestedAt + uint64(((window * u * minimum) / stake) >> 64);
    }

    /// @dev Everything `anchorBatch` checks.
    function _checkBatch(
        Batch calldata batch,
        uint256 batchId,
        bytes calldata signature,
        bytes32[] calldata modelIds,
        uint32[] calldata counts
    ) private view {
        // A well-formed batch whose usage summary is the signed one, signed at a time the chain has reached.
        if (batch.root == bytes32(0) || batch.count == 0 || batch.reexecuted > batch.count) {
            revert LedgerInvalidBatch(batch.root, batch.count, batch.reexecuted);
        }
        _checkUsage(batch, modelIds, counts);
        _checkSignedTime(batch.asOf);
        _checkSampleRate(batch);

        // Signed by the enclave key, in sequence, and the enclave is active.
        address enclave = batch.enclave;
        address recovered = ECDSA.recoverCalldata(_hashTypedDataV4(batch.hash()), signature);
        if (recovered != enclave) revert LedgerInvalidBatchSigner(enclave, recovered);
        // In sequence: not anchored yet, and the one before it is (batchId - 1 is (enclave, sequence - 1)).
        if (_roots[batchId] != bytes32(0) || (batch.sequence != 0 && _roots[batchId - 1] == bytes32(0))) {
            revert LedgerUnexpectedSequence(enclave, batch.sequence, _nextSequenceOf(enclave));
        }
        if (!TEE_REGISTRY.isActiveEnclave(enclave)) revert LedgerInactiveEnclave(enclave);
        _checkBatchNode(batch);
    }

    /// @dev Sampled at governance's rate (or, if signed before the last change, at the rate then in force).
    function _checkSampleRate(Batch calldata batch) private view {
        SampleRate memory required = _sampleRate;
        uint32 rate = batch.sampleRatePpm;
        if (
            rate > FULL_SAMPLE_RATE ||
            (rate < required.ratePpm && (batch.asOf >= required.changedAt || rate < required.previousRatePpm))
        ) revert LedgerSampleRateTooLow(rate, required.ratePpm);
    }

    /// @dev The batch's receipts are an INFERENCE node's, signed (as the enclave checked one by one) by a key that was
    ///      that node's signer when the enclave signed the batch: the chain, not the enclave's view of it, decides.
    function _checkBatchNode(Batch calldata batch) private view {
        address node = batch.node;
        (INodeStakingCore.Role role, bool valid) = STAKING.signerStatus(node, batch.signer, batch.asOf);
        if (role != INodeStakingCore.Role.INFERENCE) revert LedgerNotInferenceNode(node, role);
        if (!valid) revert LedgerInvalidBatchNodeSigner(node, batch.signer);
    }

    /// @dev One enclave, one sequence number, two different batches, both signed by the enclave key while it was
    ///      registered to its node; returns that node.
    function _checkEquivocation(
        Batch calldata a,
        bytes calldata signatureA,
        Batch calldata b,
        bytes calldata signatureB
    ) private view returns (address node) {
        bytes32 hashA = a.hash();
        bytes32 hashB = b.hash();
        address enclave = a.enclave;
        if (enclave != b.enclave || a.sequence != b.sequence || hashA == hashB) {
            revert LedgerBatchesNotConflicting(hashA, hashB);
        }
        address recoveredA = ECDSA.recoverCalldata(_hashTypedDataV4(hashA), signatureA);
        if (recoveredA != enclave) revert LedgerInvalidBatchSigner(enclave, recoveredA);
        address recoveredB = ECDSA.recoverCalldata(_hashTypedDataV4(hashB), signatureB);
        if (recoveredB != enclave) revert LedgerInvalidBatchSigner(enclave, recoveredB);
        _checkSignedTime(a.asOf);
        _checkSignedTime(b.asOf);
        node = TEE_REGISTRY.accountableNodeOf(enclave, a.asOf);
        if (node == address(0)) revert LedgerUnaccountableEnclave(enclave, a.asOf);
        if (TEE_REGISTRY.accountableNodeOf(enclave, b.asOf) == address(0)) {
            revert LedgerUnaccountableEnclave(enclave, b.asOf);
        }
    }

    /// @dev The anchored sequences are a prefix: find its end by doubling, then bisection (O(log n) reads).
    function _nextSequenceOf(address enclave) private view returns (uint64) {
        uint256 base = uint256(uint160(enclave)) << 64;
        if (_roots[base] == bytes32(0)) return 0;
        uint64 low = 0; // anchored
        uint64 high = 1; // first candidate that may not be
        while (_roots[base | high] != bytes32(0)) {
            low = high;
            // unchecked: high < 2^63 here, since an enclave cannot anchor 2^63 batches.
            unchecked {
                high *= 2;
            }
        }
        while (high - low > 1) {
            uint64 mid = low + (high - low) / 2;
            if (_roots[base | mid] != bytes32(0)) low = mid;
            else high = mid;
        }
        return high;
    }

    /// @dev A signed time (the enclave's clock) may run ahead of the chain's by at most MAX_CLOCK_SKEW.
    function _checkSignedTime(uint64 signedAt) private view {
        if (signedAt > block.timestamp + MAX_CLOCK_SKEW)
            revert LedgerSignedInFuture(signedAt, block.timestamp);
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

    /// @dev As evidence, the receipt of an INFERENCE node was signed by the node's signer at the receipt's date: its
    ///      current key, or a key it rotated away from after that date. Rotating cannot erase a lie already signed,
    ///      and a leaked former key cannot sign new ones.
    function _checkEvidenceSignature(
        address node,
        bytes32 receiptHash,
        bytes calldata signature,
        uint64 datedAt
    ) private view {
        _checkSignedTime(datedAt);
        address recovered = ECDSA.recoverCalldata(_hashTypedDataV4(receiptHash), signature);
        (INodeStakingCore.Role role, bool valid) = STAKING.signerStatus(node, recovered, datedAt);
        if (role != INodeStakingCore.Role.INFERENCE) revert LedgerNotInferenceNode(node, role);
        if (!valid) revert LedgerInvalidReceiptSigner(node, STAKING.signerOf(node), recovered);
    }

    // -------------------------------------------------------------------------------------------------------------
    // Private pure functions
    // -------------------------------------------------------------------------------------------------------------

    /// @dev enclave << 64 | sequence.
    function _batchIdOf(address enclave, uint64 sequence) private pure returns (uint256) {
        return (uint256(uint160(enclave)) << 64) | sequence;
    }

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
