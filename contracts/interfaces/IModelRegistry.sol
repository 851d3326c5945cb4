// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IModelRegistry
/// @notice Models known to the network: modelId (keccak-256 of the model file bytes) -> owner, metadata URI,
///         input/output spec hash and the contributors who share the model's rewards (basis points summing to
///         10,000). Whoever registers a modelId first owns it; only the owner changes its URI, contributors and
///         ownership. The spec hash is fixed at registration, like the model bytes it describes.
interface IModelRegistry {
    /// @notice A registered model (contributors are read through `contributorsOf`).
    struct Model {
        address owner;
        bytes32 specHash;
        string metadataUri;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------------------------------

    /// @notice A model was registered by `owner`.
    event ModelRegistered(
        bytes32 indexed modelId,
        address indexed owner,
        bytes32 specHash,
        string metadataUri
    );

    /// @notice The model's contributors and shares were set (at registration and on every change).
    event ContributorsSet(bytes32 indexed modelId, address[] contributors, uint16[] sharesBps);

    /// @notice The model's metadata URI was changed.
    event MetadataUriSet(bytes32 indexed modelId, string metadataUri);

    /// @notice The model's ownership moved from `previousOwner` to `newOwner`.
    event ModelOwnershipTransferred(
        bytes32 indexed modelId,
        address indexed previousOwner,
        address indexed newOwner
    );

    // ---------------------------------------------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------------------------------------------

    /// @notice The zero modelId is not a model.
    error ModelRegistryZeroModelId();

    /// @notice The modelId is registered already (by `owner`).
    error ModelRegistryAlreadyRegistered(bytes32 modelId, address owner);

    /// @notice No model is registered under `modelId`.
    error ModelRegistryUnknownModel(bytes32 modelId);

    /// @notice `caller` is not the model's `owner`.
    error ModelRegistryNotOwner(bytes32 modelId, address caller, address owner);

    /// @notice The new owner is the zero address.
    error ModelRegistryZeroOwner(bytes32 modelId);

    /// @notice The contributor and share arrays differ in length.
    error ModelRegistryLengthMismatch(uint256 contributors, uint256 shares);

    /// @notice There must be 1..`max` contributors.
    error ModelRegistryInvalidContributorCount(uint256 count, uint256 max);

    /// @notice The contributor at `index` is the zero address.
    error ModelRegistryZeroContributor(uint256 index);

    /// @notice `contributor` appears more than once.
    error ModelRegistryDuplicateContributor(address contributor);

    /// @notice `contributor` has a zero share.
    error ModelRegistryZeroShare(address contributor);

    /// @notice The shares sum to `total` basis points instead of 10,000.
    error ModelRegistrySharesNotWhole(uint256 total);

    // ---------------------------------------------------------------------------------------------------------
    // Functions
    // ---------------------------------------------------------------------------------------------------------

    /// @notice Registers a model with the caller as its owner.
    /// @param modelId keccak-256 of the model file bytes.
    /// @param metadataUri Where the model file and its description can be fetched.
    /// @param specHash keccak-256 of the model's canonical input/output spec (names, shapes, fixed-point scales).
    /// @param contributors Reward recipients, distinct and non-zero (1..MAX_CONTRIBUTORS).
    /// @param sharesBps Each contributor's share in basis points, non-zero, summing to 10,000.
    function registerModel(
        bytes32 modelId,
        string calldata metadataUri,
        bytes32 specHash,
        address[] calldata contributors,
        uint16[] calldata sharesBps
    ) external;

    /// @notice Replaces the model's contributors and shares (owner only), with the same rules as registration.
    function setContributors(
        bytes32 modelId,
        address[] calldata contributors,
        uint16[] calldata sharesBps
    ) external;

    /// @notice Changes the model's metadata URI (owner only).
    function setMetadataUri(bytes32 modelId, string calldata metadataUri) external;

    /// @notice Hands the model to `newOwner` (owner only).
    function transferModelOwnership(bytes32 modelId, address newOwner) external;

    /// @notice The most contributors a model can have (bounds the gas of reward computation and of these checks).
    function MAX_CONTRIBUTORS() external view returns (uint256);

    /// @notice True when `modelId` is registered.
    function isRegistered(bytes32 modelId) external view returns (bool);

    /// @notice The model's owner, spec hash and metadata URI; reverts for an unknown model.
    function modelOf(bytes32 modelId) external view returns (Model memory);

    /// @notice The model's contributors and their shares in basis points (same order); reverts for an unknown model.
    function contributorsOf(
        bytes32 modelId
    ) external view returns (address[] memory contributors, uint16[] memory sharesBps);
}
