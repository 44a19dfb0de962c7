// Runs the integration tests one file at a time with the strictest test-runner flags this
// Node.js supports (Debian 12's own Node 18 lacks the newer ones; Node 20.14+ has them all).
'use strict';
const { spawnSync } = require('node:child_process');

const files = process.argv.slice(2).length
  ? process.argv.slice(2)
  : ['sink.selftest.js', 'roundtrip.test.js', 'faults.test.js', 'validate.test.js', 'correlate.test.js', 'k8s.test.js', 'manifests.test.js', 'cloudwatch.test.js', 'ecs.test.js'];
const wanted = ['--test-timeout=60000', '--test-force-exit'];
const flags = wanted.filter((f) => process.allowedNodeEnvironmentFlags.has(f.split('=')[0]));

let failed = 0;
for (const f of files) {
  const r = spawnSync(process.execPath, ['--test', ...flags, f], { stdio: 'inherit', timeout: 600000 });
  if (r.status !== 0) {
    failed++;
    console.error(`run-tests: ${f} failed (${r.error ? r.error.message : `exit ${r.status}`})`);
  }
}
console.log(`run-tests: ${files.length - failed} files passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
