#!/usr/bin/env node
// Reads the TAP output of `npm test` (node's test runner) and fails unless the run is complete:
//   - at least MIN tests ran (.ci/min-tests: raise it when tests are added; a drop means tests vanished),
//   - none failed or was cancelled,
//   - every skip and todo gives a reason listed in ENVIRONMENTAL below. A test skipped because a file is
//     missing is a failure here, so a fresh clone runs exactly what a developer checkout runs.
// Usage: node .ci/check-tests.mjs <npm-test.log> <MIN>
import { readFileSync } from 'node:fs';

/** Reasons a test may skip: they depend on the machine, never on what the checkout holds. */
const ENVIRONMENTAL = [
  /running as root: chmod 000 does not block reads/,
  /the CUDA provider is installed here/,
  // .ci/run installs slurm-wlm and munge; this remains only where a one-node cluster cannot start (the reason says why).
  /^no Slurm cluster: /,
  // .ci/run installs chromium (SwiftShader's Vulkan, the headless browser); these remain only where it could not.
  /^no WebGPU adapter \(/,
  /^chromium not installed /,
  /^chromium found no WebGPU adapter$/,
  /Vulkan loader and SwiftShader are not installed/,
  /^not linux-x64 /,
  /^a GPU provider starts in this process$/,
];

const [file, minText] = process.argv.slice(2);
const log = readFileSync(file, 'utf8');
const min = Number(minText);
const total = (key) => {
  const m = [...log.matchAll(new RegExp(`^# ${key} (\\d+)$`, 'gm'))];
  return m.length ? Number(m.at(-1)[1]) : NaN;
};
const counts = Object.fromEntries(['tests', 'pass', 'fail', 'cancelled', 'skipped', 'todo'].map((k) => [k, total(k)]));
const directives = [...log.matchAll(/^\s*(?:not )?ok \d+ - (.*?) # (SKIP|TODO)\b ?(.*)$/gm)].map((m) => ({ name: m[1], kind: m[2], reason: m[3] }));
const unexplained = directives.filter((d) => !ENVIRONMENTAL.some((re) => re.test(d.reason)));

const problems = [];
if (!Number.isFinite(counts.tests)) problems.push('no "# tests N" line: the runner did not finish');
else if (counts.tests < min) problems.push(`${counts.tests} tests ran, fewer than the ${min} of .ci/min-tests: tests vanished`);
if (counts.fail > 0 || counts.cancelled > 0) problems.push(`${counts.fail} failed, ${counts.cancelled} cancelled`);
if (counts.skipped + counts.todo !== directives.length) problems.push(`${counts.skipped} skipped + ${counts.todo} todo, but ${directives.length} SKIP/TODO lines were read`);
for (const d of unexplained) problems.push(`${d.kind} "${d.name}": ${d.reason || '(no reason)'} — not an environmental reason (.ci/check-tests.mjs)`);

console.log(`check-tests: ${counts.tests} tests (floor ${min}), ${counts.pass} pass, ${counts.fail} fail, ${counts.skipped} skipped, ${counts.todo} todo${directives.length ? `; skips: ${directives.map((d) => d.reason).join('; ')}` : ''}`);
if (problems.length) {
  for (const p of problems) console.error(`check-tests: ${p}`);
  process.exit(1);
}
