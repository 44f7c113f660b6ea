/**
 * EmbedLayerNormalization (onnxruntime docs/ContribOperators.md), BERT's embedding block as one op:
 *   e = W_word[ids] + W_pos[position_ids] (+ W_seg[segment_ids]);   y = LayerNorm(e)·γ + β
 *   position_ids default to 0…S−1; output 1 (mask_index) = Σ_s mask[b, s] as int32 (count of 1s, the
 *   right-padding length the fused Attention reads); output 2 = e.
 * Refused: mask_index used without a mask input (onnxruntime then writes zeros).
 */
import { attrFloat } from '../../onnx/build.js';
import { DataType } from '../../onnx/dtype.js';
import { emitLayerNorm } from './norms.js';
import { fail, OK, optionalInput, type DefuseRule } from './types.js';

const EMBED_LN_EPSILON = 1e-12;

export const EMBEDDING_RULES: DefuseRule[] = [{
  id: 'defuse/embed-layer-norm', opType: 'EmbedLayerNormalization', domains: ['com.microsoft'],
  doc: 'EmbedLayerNormalization → Gather(word) + Gather(position) (+ Gather(segment)), LayerNorm; mask_index = ReduceSum(mask = 1)',
  floatInput: 2,
  match: (n, ctx) => {
    if (n.output[1] && ctx.isUsed(n.output[1]) && !optionalInput(n, 7)) return fail('output 1 (mask_index) is used but input 7 (mask) is absent');
    return OK;
  },
  rewrite: (n, ctx, s) => {
    const ids = n.input[0]!;
    let positions = optionalInput(n, 8);
    if (!positions) {
      const seq = s.op('Gather', [s.op('Shape', [ids]), s.i64([1], [])], { axis: 0 });
      positions = s.unsqueeze(s.op('Range', [s.i64([0], []), seq, s.i64([1], [])]), [0]);
    }
    let sum = s.op('Add', [s.op('Gather', [n.input[2]!, ids]), s.op('Gather', [n.input[3]!, positions])]);
    const segments = optionalInput(n, 1);
    const segTable = optionalInput(n, 4);
    if (segments && segTable) sum = s.op('Add', [sum, s.op('Gather', [segTable, segments])]);
    if (n.output[2] && ctx.isUsed(n.output[2])) sum = s.op('Identity', [sum], {}, n.output[2]);
    emitLayerNorm(s, sum, n.input[5]!, optionalInput(n, 6), attrFloat(n, 'epsilon', EMBED_LN_EPSILON), n.output[0]!);
    const maskIndex = n.output[1];
    if (maskIndex && ctx.isUsed(maskIndex)) {
      const ones = s.op('Cast', [s.op('Equal', [n.input[7]!, s.op('Cast', [s.i64([1], [])], { to: ctx.elemType(n.input[7]!) ?? DataType.INT32 })])], { to: DataType.INT32 });
      s.reduceSum(ones, [1], false, maskIndex);
      ctx.noteShape(maskIndex, [ctx.shape(ids)?.[0] ?? 'batch']);
    }
  },
}];
