// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {IInferenceConsumer} from "../interfaces/IInferenceConsumer.sol";
import {IInferenceLedger} from "../interfaces/IInferenceLedger.sol";

/// @title MockInferenceConsumer
/// @notice Test consumer whose callback records the result, reverts, burns all its gas, tries to re-enter the
///         ledger with a new request, or observes the ledger mid-fulfilment, as configured.
contract MockInferenceConsumer is IInferenceConsumer {
    enum Behaviour {
        RECORD,
        REVERT,
        BURN_GAS,
        REENTER,
        OBSERVE
    }

    /// @notice Emitted by the callback in RECORD mode.
    event ResultReceived(bytes32 indexed requestId, bytes32 modelId, bytes32 outputHash, bytes output);

    /// @notice The callback's REVERT mode.
    error MockConsumerRefused(bytes32 requestId);

    IInferenceLedger public immutable LEDGER;
    Behaviour public behaviour;
    bytes32 public lastRequestId;
    bytes public lastOutput;

    /// @notice OBSERVE mode: what the callback reads and the call it tries back into the ledger.
    IERC20 public observedToken;
    address public observedPayee;
    bytes public reentryCall;
    /// @notice OBSERVE mode: the ledger's state as the callback saw it (checks-effects-interactions, observed).
    bytes32 public seenRequestHash;
    uint256 public seenPayeeBalance;
    uint256 public seenLedgerBalance;
    bool public reentrySucceeded;
    bytes public reentryResult;

    constructor(IInferenceLedger ledger) {
        LEDGER = ledger;
    }

    /// @notice Chooses what the callback does.
    function setBehaviour(Behaviour behaviour_) external {
        behaviour = behaviour_;
    }

    /// @notice OBSERVE mode: the token and payee whose balances the callback reads, and the calldata it sends
    ///         back to the ledger (a `fulfil` or `refund` of the request being fulfilled, say).
    function setObservation(IERC20 token, address payee, bytes calldata reentry) external {
        observedToken = token;
        observedPayee = payee;
        reentryCall = reentry;
    }

    /// @notice Approves the ledger and requests an inference on `input`.
    function request(
        IERC20 token,
        bytes32 modelId,
        bytes calldata input,
        uint96 fee,
        uint64 ttl,
        uint32 callbackGasLimit
    ) external returns (bytes32) {
        token.approve(address(LEDGER), fee);
        return LEDGER.requestInference(modelId, input, fee, ttl, callbackGasLimit);
    }

    /// @inheritdoc IInferenceConsumer
    function onInferenceResult(
        bytes32 requestId,
        bytes32 modelId,
        bytes32 outputHash,
        bytes calldata output
    ) external {
        if (behaviour == Behaviour.REVERT) revert MockConsumerRefused(requestId);
        if (behaviour == Behaviour.BURN_GAS) {
            // Spin until the gas runs out.
            uint256 i;
            while (gasleft() > 0) ++i;
        }
        if (behaviour == Behaviour.REENTER) LEDGER.requestInference(modelId, output, 0, 1 hours, 0);
        if (behaviour == Behaviour.OBSERVE) {
            seenRequestHash = LEDGER.requestHashOf(requestId);
            seenPayeeBalance = observedToken.balanceOf(observedPayee);
            seenLedgerBalance = observedToken.balanceOf(address(LEDGER));
            // A test double: the low-level call is the point (its failure is recorded, not propagated).
            // solhint-disable-next-line avoid-low-level-calls
            (reentrySucceeded, reentryResult) = address(LEDGER).call(reentryCall);
        }
        lastRequestId = requestId;
        lastOutput = output;
        emit ResultReceived(requestId, modelId, outputHash, output);
    }
}
