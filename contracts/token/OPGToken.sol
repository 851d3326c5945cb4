// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @title OPGToken
/// @notice The $OPG token: ERC-20 with EIP-2612 permit, ERC-5805 votes (timestamp clock) and burning.
/// @dev The whole supply is minted once, in the constructor, to `holder`. There is no mint function, so
///      `totalSupply()` can only stay equal to `INITIAL_SUPPLY` or fall through burns: supply is verifiable
///      from the bytecode alone.
contract OPGToken is ERC20, ERC20Burnable, ERC20Permit, ERC20Votes {
    /// @notice The amount minted at deployment (18 decimals).
    uint256 public immutable INITIAL_SUPPLY;

    /// @notice Thrown when the deployment is asked to mint nothing or to the zero address.
    error OPGTokenInvalidGenesis(address holder, uint256 supply);

    /// @param holder Receives the whole supply (the deployer, which then funds the vesting vault).
    /// @param supply The whole supply, in wei (1 OPG = 1e18).
    constructor(address holder, uint256 supply) ERC20("OpenGradient", "OPG") ERC20Permit("OpenGradient") {
        if (holder == address(0) || supply == 0) revert OPGTokenInvalidGenesis(holder, supply);
        INITIAL_SUPPLY = supply;
        _mint(holder, supply);
    }

    /// @notice Votes use timestamps (ERC-6372) so that governance and vesting share one clock.
    function clock() public view override returns (uint48) {
        return uint48(block.timestamp);
    }

    /// @inheritdoc ERC20Permit
    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }

    /// @notice ERC-6372 clock description.
    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() public pure override returns (string memory) {
        return "mode=timestamp";
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }
}
