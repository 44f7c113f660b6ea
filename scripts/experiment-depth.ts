/**
 * Depth transfer (CompleteP, Dey et al. 2025; issue 8) at CPU scale, through the CLI a user runs:
 *   npm run experiment:depth                 # depths 2, 4, 8; 100 steps per run; about 5–10 minutes on 2 cores
 *   npm run experiment:depth -- --steps 300 --depths 2,4,8,16 --seed 1 --tag check-…
 * GPT-style models (fixtures/gpt-builder.ts, width 128, 4 heads) at each depth are built into a temp folder;
 * `sweep --models … --base-model <shallowest>` trains every (rule set, depth, base LR) on byte-level text read
 * at run time from installed packages (src/experiments/text-corpus.ts), and `coord-check --models` records the
 * stream after the last block. CompleteP (m_L^-1 on every branch) should keep the loss-optimal LR within one
 * grid step across depths; µP (no depth rules) should not. Writes docs/img/depth-<tag>.svg (loss vs LR),
 * docs/img/depth-<tag>.optima.svg (optimal LR vs depth) and
 * docs/results/depth-<tag>.* (optima table, sweep and coord-check JSON). Progress on stderr.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { buildGpt } from '../fixtures/gpt-builder.js';
import { encodeModel } from '../src/onnx/codec.js';
import { loadTextCorpus } from '../src/experiments/text-corpus.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: o } = parseArgs({ options: {
  depths: { type: 'string', default: '2,4,8' }, width: { type: 'string', default: '128' }, steps: { type: 'string', default: '100' },
  lrs: { type: 'string', default: '2^-14:2^-7' }, rules: { type: 'string', default: 'completep,mup' }, batch: { type: 'string', default: '8' },
  seq: { type: 'string', default: '32' }, seed: { type: 'string', default: '0' }, tag: { type: 'string', default: 'reduced' }, jobs: { type: 'string', default: String(os.availableParallelism()) },
} });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supar-depth-'));
const depths = o.depths!.split(',').map(Number);
const models = depths.map((L) => {
  const f = path.join(dir, `gpt-d${o.width}-L${L}.onnx`);
  fs.writeFileSync(f, encodeModel(buildGpt({ vocab: 256, dModel: Number(o.width), layers: L, heads: 4, maxPos: Number(o.seq), seed: 1 })));
  return f;
});
const text = path.join(dir, 'corpus.txt');
fs.writeFileSync(text, loadTextCorpus(4 << 20).bytes);
const tsx = pathToFileURL(createRequire(path.join(ROOT, 'package.json')).resolve('tsx')).href;
const cli = (args: string[]) => {
  process.stderr.write(`$ supar-transform ${args.join(' ')}\n`);
  const r = spawnSync(process.execPath, ['--import', tsx, path.join(ROOT, 'test', 'cli-entry.ts'), ...args], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`exit ${r.status}`);
  return r.stdout;
};
const common = ['--models', models.join(','), '--base-model', models[0]!, '--densities', '1', '--rules', o.rules!, '--batch', o.batch!, '--seq', o.seq!, '--seed', o.seed!, '--data', text, '--jobs', o.jobs!];
const t0 = Date.now();
const table = cli(['sweep', ...common, '--lrs', o.lrs!, '--steps', o.steps!, '--last-k', String(Math.max(1, Math.round(Number(o.steps) / 10))), '--out', path.join(dir, 'sweep')]);
const verdicts = cli(['coord-check', ...common, '--lr', '2^-10', '--steps', '10', '--out', path.join(dir, 'cc')]);
const minutes = ((Date.now() - t0) / 60000).toFixed(1);
const res = path.join(ROOT, 'docs', 'results');
const img = path.join(ROOT, 'docs', 'img');
fs.copyFileSync(path.join(dir, 'sweep', 'sweep.svg'), path.join(img, `depth-${o.tag}.svg`));
fs.copyFileSync(path.join(dir, 'sweep', 'sweep.optima.svg'), path.join(img, `depth-${o.tag}.optima.svg`));
fs.copyFileSync(path.join(dir, 'sweep', 'sweep.json'), path.join(res, `depth-${o.tag}.sweep.json`));
fs.copyFileSync(path.join(dir, 'cc', 'coord-check.json'), path.join(res, `depth-${o.tag}.coord-check.json`));
for (const r of o.rules!.split(',')) fs.copyFileSync(path.join(dir, 'cc', `coord-check.${r}.svg`), path.join(img, `depth-${o.tag}-coord.${r}.svg`));
fs.writeFileSync(path.join(res, `depth-${o.tag}.md`), `Depth sweep (${o.tag}): width ${o.width}, depths ${o.depths} (base ${depths[0]}), ${o.steps} steps, batch ${o.batch}×${o.seq}, seed ${o.seed}, byte-level text, ${minutes} min on ${os.availableParallelism()} cores.\n\n${table}\nCoordinate check across depths (LR 2^-10, the sweep's optimum, 10 steps):\n\n\`\`\`\n${verdicts}\`\`\`\n`);
process.stderr.write(`wrote docs/results/depth-${o.tag}.md (${minutes} min)\n`);
