// `hardhat test mocha test/offchain/inference` hands the folder to mocha as one file; this index
// makes that import load every suite here (a module already loaded by path runs once).
import "./models.test.js";
import "./tensor.test.js";
import "./engine.test.js";
import "./receipt.test.js";
import "./calibrate.test.js";
