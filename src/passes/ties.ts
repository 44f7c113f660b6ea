/**
 * Tied embeddings (DESIGN.md "Tied embeddings"): exporters often store the readout of a tied model as a copy
 * (or a transposed copy) of the embedding table under a generated name. Left alone, the two copies would be
 * initialised and trained apart. This pass makes the tie real: every use of the copy reads the embedding
 * table itself (through `Transpose` for a transposed copy) and the copy is removed, so the table is one
 * parameter with the embedding's init and LR, never masked. Ties by identity need nothing.
 * Copies of any shared parameter (analysis/sharing.ts: ALBERT's layers, dynamo's per-use weights) are folded
 * the same way (through `Reshape` for a copy under other dims): one tensor, so one mask (the mask pass puts
 * `W ⊙ M` before the Transpose/Reshape too), one init, one LR group and one update whose gradient sums every use.
 */
import type { ModelProto } from 'onnx-buf';
import { node } from '../onnx/build.js';
import { GraphIndex, NameAuthority } from '../onnx/ir.js';
import { tiedCopies } from '../plan.js';
import { makeInt64Tensor } from '../onnx/tensor.js';
import { addInitializer, redirectUses, removeIfUnused } from './graph-edit.js';
import type { Pass, PassContext, PassResult } from './manager.js';

export interface TieReportEntry {
  copy: string;
  table: string;
  tie: 'value' | 'value-transposed' | 'value-reshaped';
  /** What the copy's readers read now. */
  now_reads: string;
}

export interface TiePassReport {
  ties: TieReportEntry[];
}

export const tiePass: Pass<TiePassReport> = {
  id: 'ties',
  doc: 'make value ties real: the readout copy of an embedding table reads the table (transposed if needed)',
  run(model: ModelProto, ctx: PassContext): PassResult<TiePassReport> {
    const report: TiePassReport = { ties: [] };
    const names = new NameAuthority(model);
    for (const { copy, table } of tiedCopies(ctx.plan.params)) {
      const index = new GraphIndex(model);
      const shared = table.copies?.includes(copy.name) ?? false;
      const tie = shared ? copy.tie as TieReportEntry['tie'] : copy.tie === 'value-transposed' || table.tie === 'value-transposed' ? 'value-transposed' : 'value';
      let reads = table.name;
      if (tie === 'value-transposed') {
        reads = names.fresh(`${table.name}__transposed`);
        const perm = table.shape.map((_, i) => table.shape.length - 1 - i);
        model.graph!.node.unshift(node('Transpose', [table.name], [reads], { perm }, names.fresh(`supar.tie.${copy.name}`)));
      } else if (tie === 'value-reshaped') {
        reads = names.fresh(`${table.name}__as_${copy.name}`);
        const shape = names.fresh(`supar.tie.${copy.name}.shape`);
        addInitializer(model.graph!, makeInt64Tensor(shape, [copy.shape.length], copy.shape));
        model.graph!.node.unshift(node('Reshape', [table.name, shape], [reads], {}, names.fresh(`supar.tie.${copy.name}`)));
      }
      redirectUses(index, copy.name, reads);
      removeIfUnused(model, copy.name);
      report.ties.push({ copy: copy.name, table: table.name, tie, now_reads: reads });
    }
    return { model, report };
  },
};
