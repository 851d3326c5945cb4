// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {IInferenceConsumer} from "../interfaces/IInferenceConsumer.sol";
import {IInferenceLedger} from "../interfaces/IInferenceLedger.sol";

/// @title MockInferenceConsumer
/// @notice Test consumer whose callback records the result, reverts, burns all its gas, or tries to re-enter the
///         ledger with a new request, as configured.
contract MockInferenceConsumer is IInferenceConsumer {
    enum Behaviour {
        RECORD,
        REVERT,
        BURN_GAS,
        REENTER
    }

    /// @notice Emitted by the callback in RECORD mode.
    event ResultReceived(bytes32 indexed requestId, bytes32 modelId, bytes32 outputHash, bytes output);

    /// @notice The callback's REVERT mode.
    error MockConsumerRefused(bytes32 requestId);

    IInferenceLedger public immutable LEDGER;
    Behaviour public behaviour;
    bytes32 public lastRequestId;
    bytes public lastOutput;

    constructor(IInferenceLedger ledger) {
        LEDGER = ledger;
    }

    /// @notice Chooses what the callback does.
    function setBehaviour(Behaviour behaviour_) external {
        behaviour = behaviour_;
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
        lastRequestId = requestId;
        lastOutput = output;
        emit ResultReceived(requestId, modelId, outputHash, output);
    }
}
