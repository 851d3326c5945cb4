/**
 * The explorer bundles pure modules from offchain/ (plan and epoch parsing) whose file loaders import
 * node:fs/promises lazily. A page has no files to read: this stands in for that module in the bundle
 * and names the mistake if a loader is ever called in the browser.
 */
export function readFile(file: string): never {
  throw new Error(`the explorer cannot read files (asked for ${file}); pass the data in instead`);
}
