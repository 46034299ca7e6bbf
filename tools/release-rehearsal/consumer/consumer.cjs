// CommonJS consumer of the published @sandbox/preview-core: require() resolves the package's CommonJS
// build, which builds a whole app and answers the error contract. Exits 0 when everything holds.
const assert = require('node:assert/strict');
const preview = require('@sandbox/preview-core');

const app = preview.createPreviewApp({ internalServiceKey: 'k' });
assert.equal(typeof app, 'function', 'createPreviewApp returns an Express app');
assert.equal(typeof app.listen, 'function', 'createPreviewApp returns an Express app');

const forbidden = preview.previewErrors.forbidden();
assert.equal(forbidden.status, 403);
assert.equal(forbidden.code, 'FORBIDDEN');
assert.ok(preview.isPreviewError(forbidden), 'isPreviewError(previewErrors.forbidden())');
assert.ok(!preview.isPreviewError(new Error('plain')), 'isPreviewError(new Error())');
assert.equal(typeof preview.createPreviewRouter, 'function');
console.log('OK');
