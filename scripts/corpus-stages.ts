/**
 * `npm run corpus:stages [-- --label after] [--only substr] [--no-studies] [--write-known-failures]`
 * (`--only` re-runs the matching files and merges them into the last run of the same label)
 *
 * Runs every file of the corpus (fixtures/hf, see its README) through each stage with the CLI's default flags
 * (test/corpus-harness.ts lists the stages and what each checks), one child process per file (a native crash
 * fails that file only), and writes docs/results/corpus-stages.md (stages reached: overall, per family, per file,
 * failures by reason) and docs/results/corpus-stages.json. `--label` names the run in the page ("before" /
 * "after" the issue-13 fixes); a run keeps the other labels' summaries already in the JSON, so the page shows
 * before and after side by side. `--write-known-failures` rewrites test/corpus-known-failures.json from this run
 * (the test's list of expected failures; it may only shrink).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  ALL_STAGES, KNOWN_FAILURES_FILE, TEST_STAGES, corpusFiles, readManifest, runStages, type Stage, type StageResult,
} from '../test/corpus-harness.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT_MD = path.join(ROOT, 'docs', 'results', 'corpus-stages.md');
const OUT_JSON = path.join(ROOT, 'docs', 'results', 'corpus-stages.json');

interface FileRow { file: string; family: string; exporter: string; static: boolean; stages: Record<Stage, StageResult>; seconds: number }
interface RunSummary { label: string; commit: string; files: number; reached: Record<string, number> }
interface Results { runs: RunSummary[]; label: string; rows: FileRow[]; skipped: { name: string; error: string }[] }

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function one(file: string, stages: readonly Stage[]): Promise<void> {
  const item = corpusFiles().find((f) => f.entry.file === file);
  if (!item) throw new Error(`${file}: not in fixtures/hf/manifest.json`);
  const t0 = Date.now();
  const res = await runStages(item.entry, item.truth, stages);
  process.stdout.write(`\n@@RESULT ${JSON.stringify({ stages: res, seconds: (Date.now() - t0) / 1000 })}\n`);
}

function child(file: string, studies: boolean): { stages: Record<Stage, StageResult>; seconds: number } {
  const tsx = pathToFileURL(createRequire(path.join(ROOT, 'package.json')).resolve('tsx')).href;
  const args = ['--import', tsx, fileURLToPath(import.meta.url), '--one', file, ...(studies ? [] : ['--no-studies'])];
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20, timeout: 600_000 });
  const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('@@RESULT '));
  if (line) return JSON.parse(line.slice('@@RESULT '.length));
  const why = `process ended (status ${r.status}, signal ${r.signal}): ${(r.stderr ?? '').trim().split('\n').at(-1) ?? ''}`;
  const stages = Object.fromEntries(ALL_STAGES.map((s) => [s, { ok: false, reason: why.slice(0, 240) }])) as Record<Stage, StageResult>;
  return { stages, seconds: 0 };
}

function gitCommit(): string {
  const r = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' });
  return (r.stdout ?? '').trim() || 'unknown';
}

function summarize(rows: FileRow[], stages: readonly Stage[], label: string): RunSummary {
  const reached: Record<string, number> = {};
  for (const s of stages) reached[s] = rows.filter((r) => r.stages[s]?.ok).length;
  return { label, commit: gitCommit(), files: rows.length, reached };
}

const pct = (n: number, d: number) => (d ? `${n}/${d} (${Math.round((100 * n) / d)} %)` : '–');

/** A failure's class: its reason with file-specific names and numbers blanked, for grouping. */
function reasonClass(reason: string): string {
  return reason
    .replace(/'[^']*'/g, "'…'").replace(/"[^"]*"/g, '"…"')
    .replace(/\b[\w./:-]*(onnx::|\/m\/|m\.)[\w./:-]*/g, '…')
    .replace(/-?\d+(\.\d+)?(e-?\d+)?/g, 'N')
    .slice(0, 160);
}

function markdown(res: Results, stages: readonly Stage[]): string {
  const rows = res.rows;
  const out: string[] = [];
  out.push('# Corpus: stages reached with default flags', '');
  out.push('Written by `npm run corpus:stages` (scripts/corpus-stages.ts) from the corpus in fixtures/hf (tiny random-init');
  out.push('Hugging Face exports and hand-written modules, TorchScript and dynamo exporters, static and dynamic shapes;');
  out.push('fixtures/hf/README.md). What each stage checks: test/corpus-harness.ts. A stage after a failed one it needs counts');
  out.push('as not reached. coord_check and sweep run tiny studies (2 densities, 2 steps).', '');
  out.push('## Fraction of the corpus reaching each stage', '');
  out.push(`| run | commit | files | ${stages.join(' | ')} |`, `|---|---|---|${stages.map(() => '---').join('|')}|`);
  for (const r of res.runs) out.push(`| ${r.label} | ${r.commit} | ${r.files} | ${stages.map((s) => (r.reached[s] === undefined ? '–' : pct(r.reached[s]!, r.files))).join(' | ')} |`);
  out.push('', `## Per family (${res.label}): files passing / files`, '');
  out.push(`| family | files | ${stages.join(' | ')} |`, `|---|---|${stages.map(() => '---').join('|')}|`);
  const families = [...new Set(rows.map((r) => r.family))];
  for (const f of families) {
    const fr = rows.filter((r) => r.family === f);
    out.push(`| ${f} | ${fr.length} | ${stages.map((s) => `${fr.filter((r) => r.stages[s]?.ok).length}/${fr.length}`).join(' | ')} |`);
  }
  out.push('', `## Per file (${res.label})`, '');
  out.push(`| file | ${stages.join(' | ')} | s |`, `|---|${stages.map(() => '---').join('|')}|---|`);
  for (const r of rows) out.push(`| ${r.file} | ${stages.map((s) => (r.stages[s]?.ok ? '✓' : '✗')).join(' | ')} | ${r.seconds.toFixed(1)} |`);
  out.push('', `## Failures by stage and reason (${res.label})`, '');
  for (const s of stages) {
    const failed = rows.filter((r) => r.stages[s] && !r.stages[s].ok && !r.stages[s].reason.startsWith('not reached'));
    if (failed.length === 0) continue;
    out.push(`### ${s} (${failed.length} files failed here)`, '');
    const groups = new Map<string, FileRow[]>();
    for (const r of failed) {
      const k = reasonClass(r.stages[s].reason);
      groups.set(k, [...(groups.get(k) ?? []), r]);
    }
    for (const [, g] of [...groups].sort((a, b) => b[1].length - a[1].length)) {
      out.push(`- **${g.length}×** ${g[0]!.stages[s].reason.replace(/\|/g, '\\|')}`);
      out.push(`  - ${g.map((r) => r.file).join(', ')}`);
    }
    out.push('');
  }
  if (res.skipped.length) {
    out.push('## Families that did not export', '', ...res.skipped.map((s) => `- ${s.name}: ${s.error}`), '');
  }
  return `${out.join('\n')}\n`;
}

async function all(): Promise<void> {
  const label = arg('--label') ?? 'before';
  const only = arg('--only');
  const studies = !process.argv.includes('--no-studies');
  const stages: readonly Stage[] = studies ? ALL_STAGES : TEST_STAGES;
  const files = corpusFiles().filter((f) => !only || f.entry.file.includes(only));
  const rows: FileRow[] = [];
  for (const { entry } of files) {
    const r = child(entry.file, studies);
    rows.push({ file: entry.file, family: entry.family, exporter: entry.exporter, static: !!entry.static, ...r });
    const marks = stages.map((s) => (r.stages[s]?.ok ? '✓' : '✗')).join('');
    process.stdout.write(`${entry.file.padEnd(36)} ${marks} ${r.seconds.toFixed(1)} s\n`);
  }
  const skipped = readManifest().models.filter((e) => !e.file).map((e) => ({ name: e.name ?? e.family, error: e.error ?? '' }));
  const previous: Results | undefined = fs.existsSync(OUT_JSON) ? JSON.parse(fs.readFileSync(OUT_JSON, 'utf8')) : undefined;
  // Stages this run did not run (--no-studies) keep the previous run's results of the same label.
  if (previous?.label === label) {
    const before = new Map(previous.rows.map((r) => [r.file, r]));
    for (const r of rows) for (const st of ALL_STAGES) if (!r.stages[st] && before.get(r.file)?.stages[st]) r.stages[st] = before.get(r.file)!.stages[st];
  }
  if (only) {
    // A partial run replaces its files' rows in the last run of the same label and keeps the others.
    if (previous?.label !== label) throw new Error(`--only needs a previous full run labelled '${label}' in ${OUT_JSON}`);
    const fresh = new Map(rows.map((r) => [r.file, r]));
    const corpus = new Set(corpusFiles().map((f) => f.entry.file));
    rows.splice(0, rows.length, ...previous.rows.filter((r) => corpus.has(r.file)).map((r) => fresh.get(r.file) ?? r));
    for (const r of fresh.values()) if (!rows.includes(r)) rows.push(r);
    rows.sort((a, b) => a.file.localeCompare(b.file));
  }
  const shown = ALL_STAGES.filter((st) => rows.some((r) => r.stages[st]));
  const runs = [...(previous?.runs ?? []).filter((r) => r.label !== label), summarize(rows, shown, label)];
  const res: Results = { runs, label, rows, skipped };
  fs.mkdirSync(path.dirname(OUT_MD), { recursive: true });
  fs.writeFileSync(OUT_JSON, `${JSON.stringify(res, null, 1)}\n`);
  fs.writeFileSync(OUT_MD, markdown(res, shown));
  process.stdout.write(`wrote ${path.relative(ROOT, OUT_MD)} and ${path.relative(ROOT, OUT_JSON)}\n`);
  if (process.argv.includes('--write-known-failures')) {
    const failures = rows.flatMap((r) => TEST_STAGES.filter((s) => !r.stages[s].ok).map((s) => ({ file: r.file, stage: s, reason: r.stages[s].reason })));
    fs.writeFileSync(KNOWN_FAILURES_FILE, `${JSON.stringify({ note: 'Known corpus failures (file, stage): see test/corpus-suite.ts. Remove a row when it starts passing; never add one.', failures }, null, 1)}\n`);
    process.stdout.write(`wrote ${path.relative(ROOT, KNOWN_FAILURES_FILE)} (${failures.length} known failures)\n`);
  }
}

const oneFile = arg('--one');
if (oneFile) await one(oneFile, process.argv.includes('--no-studies') ? TEST_STAGES : ALL_STAGES);
else await all();
