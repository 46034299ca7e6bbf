// Every published package builds the same way; see the shared config for why.
export { default } from '../../tsup.package.config.js';
