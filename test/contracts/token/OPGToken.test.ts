import { expect } from "chai";
import { network } from "hardhat";

const { ethers, networkHelpers } = await network.create();

const SUPPLY = ethers.parseEther("1000000000");

async function deployToken() {
  const [deployer, alice, bob] = await ethers.getSigners();
  const token = await ethers.deployContract("OPGToken", [deployer!.address, SUPPLY]);
  return { token, deployer: deployer!, alice: alice!, bob: bob! };
}

describe("OPGToken", () => {
  describe("constructor", () => {
    it("mints the whole supply once to the holder", async () => {
      const { token, deployer } = await networkHelpers.loadFixture(deployToken);
      expect(await token.totalSupply()).to.equal(SUPPLY);
      expect(await token.INITIAL_SUPPLY()).to.equal(SUPPLY);
      expect(await token.balanceOf(deployer.address)).to.equal(SUPPLY);
      expect(await token.symbol()).to.equal("OPG");
      expect(await token.decimals()).to.equal(18n);
    });

    it("reverts with OPGTokenInvalidGenesis for the zero holder", async () => {
      const factory = await ethers.getContractFactory("OPGToken");
      await expect(factory.deploy(ethers.ZeroAddress, SUPPLY))
        .to.be.revertedWithCustomError(factory, "OPGTokenInvalidGenesis")
        .withArgs(ethers.ZeroAddress, SUPPLY);
    });

    it("reverts with OPGTokenInvalidGenesis for a zero supply", async () => {
      const [deployer] = await ethers.getSigners();
      const factory = await ethers.getContractFactory("OPGToken");
      await expect(factory.deploy(deployer!.address, 0n))
        .to.be.revertedWithCustomError(factory, "OPGTokenInvalidGenesis")
        .withArgs(deployer!.address, 0n);
    });
  });

  describe("supply", () => {
    it("has no mint function in its ABI", async () => {
      const { token } = await networkHelpers.loadFixture(deployToken);
      const names: string[] = [];
      token.interface.forEachFunction((f) => names.push(f.name.toLowerCase()));
      expect(names.filter((n) => n.includes("mint"))).to.deep.equal([]);
    });

    it("only falls through burns", async () => {
      const { token, deployer } = await networkHelpers.loadFixture(deployToken);
      await expect(token.burn(ethers.parseEther("1")))
        .to.emit(token, "Transfer")
        .withArgs(deployer.address, ethers.ZeroAddress, ethers.parseEther("1"));
      expect(await token.totalSupply()).to.equal(SUPPLY - ethers.parseEther("1"));
    });
  });

  describe("votes", () => {
    it("uses a timestamp clock", async () => {
      const { token } = await networkHelpers.loadFixture(deployToken);
      expect(await token.CLOCK_MODE()).to.equal("mode=timestamp");
      expect(await token.clock()).to.equal(BigInt(await networkHelpers.time.latest()));
    });

    it("counts delegated balances", async () => {
      const { token, deployer, alice } = await networkHelpers.loadFixture(deployToken);
      await token.transfer(alice.address, 100n);
      await token.connect(alice).delegate(alice.address);
      expect(await token.getVotes(alice.address)).to.equal(100n);
      expect(await token.getVotes(deployer.address)).to.equal(0n);
    });
  });

  describe("permit", () => {
    it("approves by signature and bumps the nonce", async () => {
      const { token, deployer, bob } = await networkHelpers.loadFixture(deployToken);
      const deadline = BigInt(await networkHelpers.time.latest()) + 3600n;
      const { chainId } = await ethers.provider.getNetwork();
      const signature = await deployer.signTypedData(
        {
          name: "OpenGradient",
          version: "1",
          chainId,
          verifyingContract: await token.getAddress(),
        },
        {
          Permit: [
            { name: "owner", type: "address" },
            { name: "spender", type: "address" },
            { name: "value", type: "uint256" },
            { name: "nonce", type: "uint256" },
            { name: "deadline", type: "uint256" },
          ],
        },
        { owner: deployer.address, spender: bob.address, value: 5n, nonce: 0n, deadline },
      );
      const { v, r, s } = ethers.Signature.from(signature);
      await token.permit(deployer.address, bob.address, 5n, deadline, v, r, s);
      expect(await token.allowance(deployer.address, bob.address)).to.equal(5n);
      expect(await token.nonces(deployer.address)).to.equal(1n);
    });
  });
});
