#!/usr/bin/env bash
# npm run setup: everything a fresh clone needs before `npm run demo` and `npm test`, and nothing twice.
#   - Node.js >= 22.13 (Hardhat 3). On a machine with Node 20, run this through the npm registry's Node 22:
#       npx -y -p node@22 -c 'npm run setup && npm run demo'
#   - the dependencies, installed again only when package-lock.json or the Node version changed;
#     ONNXRUNTIME_NODE_INSTALL=skip keeps onnxruntime-node from downloading CUDA providers at install
#     (the CPU provider is bundled; see docs/inference-tee.md for the GPU path);
#   - the contracts compiled and their TypeScript bindings generated (hardhat build).
set -euo pipefail
cd "$(dirname "$0")/.."
# Under `npx -c '...'` npm exports the command as npm_config_call; a nested npx would read it as its
# own -c and refuse its arguments (EUSAGE). Nothing here runs npx, and nothing below should inherit it.
unset npm_config_call

if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=13)?0:1)'; then
  echo "opg setup: Node.js $(node --version) is too old; the project needs >= 22.13." >&2
  echo "  run it through the npm registry's Node 22:  npx -y -p node@22 -c 'npm run setup && npm run demo'" >&2
  exit 1
fi

stamp=node_modules/.opg-setup
want="$(node --version) $(sha256sum package-lock.json | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "opg setup: dependencies up to date ($(node --version))"
else
  echo "opg setup: installing dependencies under Node $(node --version)"
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
  echo "$want" >"$stamp"
fi

echo "opg setup: compiling the contracts"
node_modules/.bin/hardhat build --quiet
echo "opg setup: ready — npm run demo, npm test"
