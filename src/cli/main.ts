/**
 * The `postern` command line.
 *
 * @module
 */

console.error('postern: not built yet');
process.exit(70);
