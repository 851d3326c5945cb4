// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IModelRegistry} from "../interfaces/IModelRegistry.sol";

/// @title ModelRegistry
/// @notice modelId -> owner, metadata URI, spec hash and contributor shares. See {IModelRegistry}.
contract ModelRegistry is IModelRegistry {
    /// @dev Storage record of a model; `owner == address(0)` means not registered.
    struct ModelRecord {
        address owner;
        bytes32 specHash;
        string metadataUri;
        address[] contributors;
        uint16[] sharesBps;
    }

    /// @inheritdoc IModelRegistry
    uint256 public constant MAX_CONTRIBUTORS = 64;

    uint256 private constant _WHOLE_BPS = 10_000;

    mapping(bytes32 modelId => ModelRecord record) private _models;

    // -------------------------------------------------------------------------------------------------------------
    // Modifiers
    // -------------------------------------------------------------------------------------------------------------

    modifier onlyModelOwner(bytes32 modelId) {
        address owner = _models[modelId].owner;
        if (owner == address(0)) revert ModelRegistryUnknownModel(modelId);
        if (owner != msg.sender) revert ModelRegistryNotOwner(modelId, msg.sender, owner);
        _;
    }

    // -------------------------------------------------------------------------------------------------------------
    // Owner functions
    // -------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IModelRegistry
    function registerModel(
        bytes32 modelId,
        string calldata metadataUri,
        bytes32 specHash,
        address[] calldata contributors,
        uint16[] calldata sharesBps
    ) external {
        // Checks: a fresh, non-zero id.
        if (modelId == bytes32(0)) revert ModelRegistryZeroModelId();
        address owner = _models[modelId].owner;
        if (owner != address(0)) revert ModelRegistryAlreadyRegistered(modelId, owner);

        // Effects.
        ModelRecord storage record = _models[modelId];
        record.owner = msg.sender;
        record.specHash = specHash;
        record.metadataUri = metadataUri;
        emit ModelRegistered(modelId, msg.sender, specHash, metadataUri);
        _setContributors(modelId, record, contributors, sharesBps);
    }

    /// @inheritdoc IModelRegistry
    function setContributors(
        bytes32 modelId,
        address[] calldata contributors,
        uint16[] calldata sharesBps
    ) external onlyModelOwner(modelId) {
        _setContributors(modelId, _models[modelId], contributors, sharesBps);
    }

    /// @inheritdoc IModelRegistry
    function setMetadataUri(bytes32 modelId, string calldata metadataUri) external onlyModelOwner(modelId) {
        _models[modelId].metadataUri = metadataUri;
        emit MetadataUriSet(modelId, metadataUri);
    }

    /// @inheritdoc IModelRegistry
    function transferModelOwnership(bytes32 modelId, address newOwner) external onlyModelOwner(modelId) {
        if (newOwner == address(0)) revert ModelRegistryZeroOwner(modelId);
        _models[modelId].owner = newOwner;
        emit ModelOwnershipTransferred(modelId, msg.sender, newOwner);
    }

    // -------------------------------------------------------------------------------------------------------------
    // Views
    // -------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IModelRegistry
    function isRegistered(bytes32 modelId) external view returns (bool) {
        return _models[modelId].owner != address(0);
    }

    /// @inheritdoc IModelRegistry
    function modelOf(bytes32 modelId) external view returns (Model memory) {
        ModelRecord storage record = _registered(modelId);
        return Model({owner: record.owner, specHash: record.specHash, metadataUri: record.metadataUri});
    }

    /// @inheritdoc IModelRegistry
    function contributorsOf(
        bytes32 modelId
    ) external view returns (address[] memory contributors, uint16[] memory sharesBps) {
        ModelRecord storage record = _registered(modelId);
        return (record.contributors, record.sharesBps);
    }

    // -------------------------------------------------------------------------------------------------------------
    // Private
    // -------------------------------------------------------------------------------------------------------------

    /// @dev Validates and stores contributors: 1..MAX distinct non-zero addresses, non-zero shares summing to 10,000.
    function _setContributors(
        bytes32 modelId,
        ModelRecord storage record,
        address[] calldata contributors,
        uint16[] calldata sharesBps
    ) private {
        uint256 n = contributors.length;
        if (n != sharesBps.length) revert ModelRegistryLengthMismatch(n, sharesBps.length);
        if (n == 0 || n > MAX_CONTRIBUTORS) revert ModelRegistryInvalidContributorCount(n, MAX_CONTRIBUTORS);
        uint256 total;
        for (uint256 i = 0; i < n; ++i) {
            address contributor = contributors[i];
            if (contributor == address(0)) revert ModelRegistryZeroContributor(i);
            if (sharesBps[i] == 0) revert ModelRegistryZeroShare(contributor);
            for (uint256 j = 0; j < i; ++j) {
                if (contributors[j] == contributor) revert ModelRegistryDuplicateContributor(contributor);
            }
            total += sharesBps[i];
        }
        if (total != _WHOLE_BPS) revert ModelRegistrySharesNotWhole(total);

        record.contributors = contributors;
        record.sharesBps = sharesBps;
        emit ContributorsSet(modelId, contributors, sharesBps);
    }

    function _registered(bytes32 modelId) private view returns (ModelRecord storage record) {
        record = _models[modelId];
        if (record.owner == address(0)) revert ModelRegistryUnknownModel(modelId);
    }
}
