// `hardhat test mocha test/offchain/tee` hands the folder to mocha as one file; this index
// makes that import load every suite here (a module already loaded by path runs once).
import "./cbor.test.js";
import "./nitro.test.js";
import "./dev.test.js";
import "./enclave.test.js";
import "./server.test.js";
import "./cli.test.js";
