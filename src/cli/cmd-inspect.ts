/**
 * `supar-transform inspect model.onnx [--json]`: what is in a model (IR, opsets, producer, op histogram,
 * initializers, inputs/outputs with shapes, metadata, functions, subgraphs, external data). Reads only;
 * external references are checked (file present, inside the model's folder, long enough).
 */
import * as path from 'node:path';
import type { Command } from 'commander';
import type { CliContext } from './main.js';
import { readModel } from '../onnx/codec.js';
import { checkExternalData } from '../onnx/external.js';
import { addTransformFlags } from './transform-options.js';
import { planView, wantsPlanView } from './plan-view.js';
import { findStoredMasks, type StoredMask } from '../passes/mask-storage.js';
import { summarizeModel, type Dim, type ModelSummary, type ValueSummary } from '../onnx/summary.js';

export interface InspectReport extends ModelSummary {
  file: string;
  fileBytes: number;
  /** A transformed model's masks, densities read from the mask tensors (bool or bit-packed); absent otherwise. */
  masks?: StoredMask[];
}

export function register(program: Command, _ctx: CliContext): void {
  addTransformFlags(program
    .command('inspect <model>')
    .description('print IR version, opsets, producer, op histogram, initializers, inputs and outputs; with --density (or another transform flag) the planned transform instead')
    .option('--json', 'print the same facts as deterministic JSON'))
    .action(async (file: string, opts: { json?: boolean }) => {
      if (wantsPlanView(opts)) return void process.stdout.write(await planView(file, opts));
      const report = inspectFile(file);
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatInspect(report));
    });
}

export function inspectFile(file: string): InspectReport {
  const loaded = readModel(file);
  checkExternalData(loaded.model, loaded.baseDir);
  const masks = findStoredMasks(loaded.model, loaded.baseDir);
  return { file: path.basename(loaded.path), fileBytes: loaded.fileBytes, ...summarizeModel(loaded.model), ...(masks ? { masks } : {}) };
}

const int = (n: number) => n.toLocaleString('en-US');

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

function shapeText(shape: Dim[] | null): string {
  if (shape === null) return '(unknown rank)';
  return `[${shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

function valueTable(values: ValueSummary[]): string[] {
  const nameW = Math.max(...values.map((v) => v.name.length), 4);
  const typeW = Math.max(...values.map((v) => v.type.length), 4);
  return values.map((v) => `  ${v.name.padEnd(nameW)}  ${v.type.padEnd(typeW)}  ${shapeText(v.shape)}`);
}

/** Joins items into lines no wider than `width`; the first starts with `lead`, the rest are indented to match. */
function wrap(items: string[], lead: string, width = 100): string[] {
  const indent = ' '.repeat(lead.length);
  const lines: string[] = [];
  let line = '';
  for (const it of items) {
    if (line && indent.length + line.length + 2 + it.length > width) { lines.push(line); line = it; }
    else line = line ? `${line}, ${it}` : it;
  }
  if (line) lines.push(line);
  return lines.map((l, i) => (i === 0 ? lead : indent) + l);
}

/** The compact human view of `inspect`. */
export function formatInspect(r: InspectReport): string {
  const producer = r.producer.name ? `${r.producer.name}${r.producer.version ? ` ${r.producer.version}` : ''}` : '(none)';
  const init = r.initializers;
  const out = [
    `${r.file}  ${int(r.fileBytes)} bytes · ir_version ${r.irVersion} · producer ${producer} · graph '${r.graphName}'`,
    ...wrap(r.opsets.map((o) => `${o.domain} ${o.version}`), 'opsets: '),
    `nodes ${int(r.nodes.main)}${r.nodes.total !== r.nodes.main ? ` (${int(r.nodes.total)} with subgraphs)` : ''} · ${r.ops.length} op types · functions ${r.functions.count}${r.functions.count ? ` (${r.functions.names.join(', ')})` : ''} · subgraphs ${r.subgraphs}`,
    ...wrap(r.ops.map((o) => `${o.op} ${o.count}`), '  '),
    `initializers ${int(init.count)} · ${int(init.parameters)} parameters · ${formatBytes(init.bytes)}`,
  ];
  if (init.byDtype.length > 1) {
    const w = Math.max(...init.byDtype.map((d) => d.dtype.length));
    out.push(...init.byDtype.map((d) => `  ${d.dtype.padEnd(w)}  ${int(d.count)} tensors · ${int(d.parameters)} parameters · ${formatBytes(d.bytes)}`));
  } else if (init.byDtype.length === 1) {
    out[out.length - 1] += ` (all ${init.byDtype[0]!.dtype})`;
  }
  if (r.sparseInitializers) out.push(`sparse initializers ${r.sparseInitializers}`);
  if (r.constants.count) out.push(`Constant nodes ${int(r.constants.count)} · ${int(r.constants.parameters)} values · ${formatBytes(r.constants.bytes)}`);
  out.push(`inputs (${r.inputs.length}${r.initializerInputs ? `; ${r.initializerInputs} more are initializers` : ''}):`, ...valueTable(r.inputs));
  out.push(`outputs (${r.outputs.length}):`, ...valueTable(r.outputs));
  if (r.metadataProps.length) out.push('metadata:', ...r.metadataProps.map((p) => `  ${p.key} = ${oneLine(p.value)}`));
  else out.push('metadata: none');
  if (r.masks) out.push(...maskLines(r.masks));
  const ext = r.externalData;
  out.push(ext.used ? `external data: yes · ${ext.tensors} tensors · ${formatBytes(ext.bytes)} in ${ext.files.join(', ')}` : 'external data: no');
  return `${out.join('\n')}\n`;
}

/** `masks 12 (bits, 1.50 KiB): 4,096 of 16,384 entries kept`, then one line per mask with its density. */
function maskLines(masks: StoredMask[]): string[] {
  if (masks.length === 0) return ['masks: none'];
  const kinds = [...new Set(masks.map((m) => m.storage))].join(' and ');
  const kept = masks.reduce((s, m) => s + m.non_zeros, 0);
  const total = masks.reduce((s, m) => s + m.elements, 0);
  const w = Math.max(...masks.map((m) => m.tensor.length));
  return [
    `masks ${masks.length} (${kinds}, ${formatBytes(masks.reduce((s, m) => s + m.bytes, 0))}): ${int(kept)} of ${int(total)} entries kept`,
    ...masks.map((m) => `  ${m.tensor.padEnd(w)}  [${m.shape.join(', ')}]  density ${m.density.toPrecision(4).replace(/\.?0+$/, '')}  ${int(m.non_zeros)} of ${int(m.elements)}`),
  ];
}

/** Metadata values may hold JSON or prose: show one line, cut at 120 characters. */
function oneLine(s: string): string {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length > 120 ? `${flat.slice(0, 117)}…` : flat;
}
