// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IInferenceConsumer
/// @notice Implemented by contracts that request inferences from InferenceLedger and want the verified output
///         delivered to them.
interface IInferenceConsumer {
    /// @notice Called by InferenceLedger when a request is fulfilled, with at most the request's `callbackGasLimit`
    ///         gas. By then the ledger has checked the GPU node's receipt signature, the enclave's agreeing verdict
    ///         and that keccak256(output) == outputHash, and has paid the node. A revert or running out of gas here
    ///         does not undo the fulfilment; the ledger records the outcome in `InferenceFulfilled`.
    /// @dev Implementations must check that msg.sender is the ledger.
    /// @param requestId The ledger's request id.
    /// @param modelId The model that was run.
    /// @param outputHash keccak-256 of `output`.
    /// @param output The model output in the canonical (quantised) tensor encoding.
    function onInferenceResult(
        bytes32 requestId,
        bytes32 modelId,
        bytes32 outputHash,
        bytes calldata output
    ) external;
}
