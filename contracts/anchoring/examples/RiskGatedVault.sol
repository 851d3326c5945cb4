// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {IInferenceConsumer} from "../../interfaces/IInferenceConsumer.sol";
import {IInferenceLedger} from "../../interfaces/IInferenceLedger.sol";

/// @title RiskGatedVault
/// @notice Example consumer of InferenceLedger: an ETH vault whose withdrawals are gated by a verified risk score.
///         A withdrawal locks the amount and asks the ledger to run the vault's risk model on features the vault
///         builds itself (account, amount, balance before); the fulfilment arrives with the GPU node's receipt and
///         an enclave's agreement already checked by the ledger. A score at or below MAX_RISK_SCORE releases the
///         amount for `withdraw`; a higher one (or a malformed output) returns it to the balance; an expired request
///         can be cancelled for the fee back.
/// @dev The model's output is read as one ABI-encoded uint256 (a 32-byte big-endian score).
contract RiskGatedVault is IInferenceConsumer, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice A withdrawal waiting for its risk score.
    struct PendingWithdrawal {
        address account;
        uint96 fee;
        uint128 amount;
        uint64 deadline;
        bytes32 inputHash;
        bytes32 seed;
    }

    /// @notice Seconds a risk request may wait before it can be cancelled.
    uint64 public constant REQUEST_TTL = 1 hours;
    /// @notice Gas the ledger gives `onInferenceResult` (enough for the bookkeeping below).
    uint32 public constant CALLBACK_GAS = 100_000;

    IInferenceLedger public immutable LEDGER;
    IERC20 public immutable FEE_TOKEN;
    bytes32 public immutable RISK_MODEL_ID;
    uint256 public immutable MAX_RISK_SCORE;

    mapping(address account => uint256 amount) public balanceOf;
    mapping(address account => uint256 amount) public withdrawableOf;
    mapping(bytes32 requestId => PendingWithdrawal withdrawal) private _pending;

    event Deposited(address indexed account, uint256 amount);
    event WithdrawalRequested(
        address indexed account,
        bytes32 indexed requestId,
        uint256 amount,
        bytes features
    );
    event WithdrawalApproved(
        address indexed account,
        bytes32 indexed requestId,
        uint256 amount,
        uint256 riskScore
    );
    event WithdrawalRejected(
        address indexed account,
        bytes32 indexed requestId,
        uint256 amount,
        bytes output
    );
    event WithdrawalCancelled(address indexed account, bytes32 indexed requestId, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);

    error VaultZeroAmount();
    error VaultInsufficientBalance(address account, uint256 balance, uint256 amount);
    error VaultNotLedger(address caller);
    error VaultUnknownRequest(bytes32 requestId);
    error VaultWrongModel(bytes32 modelId, bytes32 expected);
    error VaultNothingToWithdraw(address account);

    constructor(IInferenceLedger ledger, IERC20 feeToken, bytes32 riskModelId, uint256 maxRiskScore) {
        LEDGER = ledger;
        FEE_TOKEN = feeToken;
        RISK_MODEL_ID = riskModelId;
        MAX_RISK_SCORE = maxRiskScore;
    }

    /// @notice Deposits ETH.
    function deposit() external payable {
        if (msg.value == 0) revert VaultZeroAmount();
        balanceOf[msg.sender] += msg.value;
        emit Deposited(msg.sender, msg.value);
    }

    /// @notice Locks `amount` and requests its risk score, paying `fee` OPG (approved to this vault) to the ledger.
    function requestWithdrawal(uint128 amount, uint96 fee) external nonReentrant returns (bytes32 requestId) {
        // Checks.
        uint256 balance = balanceOf[msg.sender];
        if (amount == 0) revert VaultZeroAmount();
        if (amount > balance) revert VaultInsufficientBalance(msg.sender, balance, amount);

        // Effects: lock the amount.
        balanceOf[msg.sender] = balance - amount;

        // Interactions: take the fee and ask the ledger.
        bytes memory features = abi.encode(msg.sender, amount, balance);
        if (fee > 0) {
            FEE_TOKEN.safeTransferFrom(msg.sender, address(this), fee);
            FEE_TOKEN.forceApprove(address(LEDGER), fee);
        }
        requestId = LEDGER.requestInference(RISK_MODEL_ID, features, fee, REQUEST_TTL, CALLBACK_GAS);
        _pending[requestId] = PendingWithdrawal({
            account: msg.sender,
            fee: fee,
            amount: amount,
            deadline: uint64(block.timestamp) + REQUEST_TTL,
            inputHash: keccak256(features),
            seed: LEDGER.seedOf(requestId)
        });
        emit WithdrawalRequested(msg.sender, requestId, amount, features);
    }

    /// @inheritdoc IInferenceConsumer
    function onInferenceResult(bytes32 requestId, bytes32 modelId, bytes32, bytes calldata output) external {
        // Checks: only the ledger delivers verified results, for a pending withdrawal of our model.
        if (msg.sender != address(LEDGER)) revert VaultNotLedger(msg.sender);
        if (modelId != RISK_MODEL_ID) revert VaultWrongModel(modelId, RISK_MODEL_ID);
        PendingWithdrawal memory withdrawal = _pending[requestId];
        if (withdrawal.account == address(0)) revert VaultUnknownRequest(requestId);

        // Effects: release or return the locked amount.
        delete _pending[requestId];
        if (output.length == 32 && uint256(bytes32(output)) <= MAX_RISK_SCORE) {
            withdrawableOf[withdrawal.account] += withdrawal.amount;
            emit WithdrawalApproved(
                withdrawal.account,
                requestId,
                withdrawal.amount,
                uint256(bytes32(output))
            );
        } else {
            balanceOf[withdrawal.account] += withdrawal.amount;
            emit WithdrawalRejected(withdrawal.account, requestId, withdrawal.amount, output);
        }
    }

    /// @notice Cancels an expired withdrawal request: the amount returns to the balance and the fee to its payer.
    function cancelExpired(bytes32 requestId) external nonReentrant {
        // Checks.
        PendingWithdrawal memory withdrawal = _pending[requestId];
        if (withdrawal.account == address(0)) revert VaultUnknownRequest(requestId);

        // Effects.
        delete _pending[requestId];
        balanceOf[withdrawal.account] += withdrawal.amount;
        emit WithdrawalCancelled(withdrawal.account, requestId, withdrawal.amount);

        // Interactions: the ledger checks expiry and refunds the fee to this vault, which passes it on.
        LEDGER.refund(
            requestId,
            IInferenceLedger.InferenceRequest({
                requester: address(this),
                fee: withdrawal.fee,
                modelId: RISK_MODEL_ID,
                inputHash: withdrawal.inputHash,
                deadline: withdrawal.deadline,
                callbackGasLimit: CALLBACK_GAS,
                requestedAt: withdrawal.deadline - REQUEST_TTL,
                seed: withdrawal.seed
            })
        );
        if (withdrawal.fee > 0) FEE_TOKEN.safeTransfer(withdrawal.account, withdrawal.fee);
    }

    /// @notice Sends the caller everything approved for withdrawal.
    function withdraw() external nonReentrant {
        uint256 amount = withdrawableOf[msg.sender];
        if (amount == 0) revert VaultNothingToWithdraw(msg.sender);
        withdrawableOf[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        Address.sendValue(payable(msg.sender), amount);
    }

    /// @notice The pending withdrawal behind `requestId` (account zero when none).
    function pendingOf(bytes32 requestId) external view returns (PendingWithdrawal memory) {
        return _pending[requestId];
    }
}
