/**
 * onnxruntime's run-time failures as one line for a person (exit 6, `ExitCode.runtime`): which node or
 * input, onnxruntime's own cause, and what to do. Every session create and run of the train commands
 * passes its error through `ortFailure`, so none reaches the user as an "unexpected error".
 *
 * The messages parsed are onnxruntime's (onnxruntime/core/framework/*.cc):
 *   "Non-zero status code returned while running <Op> node. Name:'<node>' Status Message: <cause>"
 *   "Got invalid dimensions for input: <name> for the following indices\n index: 0 Got: 8 Expected: 2"
 *   "Invalid rank for input: <name> Got: 2 Expected: 1 Please fix either the inputs/outputs or the model."
 *   "Unexpected input data type. Actual: (tensor(int32)) , expected: (tensor(int64))"
 */
import { ExitCode, UserInputError } from '../errors.js';

const NODE_FAILURE = /running (\S+) node\. Name:'([^']*)' Status Message: ([\s\S]*)/;
const BAD_DIMS = /invalid dimensions for input: (\S+) for the following indices\s+index: (\d+) Got: (\d+) Expected: (\d+)/;
const BAD_RANK = /Invalid rank for input: (\S+) Got: (\d+) Expected: (\d+)/;

/** `what`: the graph and stage, e.g. "train step 3 of the train-step graph". */
export function ortFailure(e: unknown, what: string): UserInputError {
  const message = (e as Error)?.message ?? String(e);
  return new UserInputError(`${what}: ${describeOrtMessage(message)}`, ExitCode.runtime);
}

export function describeOrtMessage(message: string): string {
  const dims = BAD_DIMS.exec(message);
  if (dims) {
    return `onnxruntime refused input '${dims[1]}': dim ${dims[2]} is ${dims[3]}, the model expects ${dims[4]}; ` +
      'feed the model\'s fixed sizes (omit --batch/--seq to use them) or re-export with dynamic axes';
  }
  const rank = BAD_RANK.exec(message);
  if (rank) return `onnxruntime refused input '${rank[1]}': rank ${rank[2]}, the graph expects rank ${rank[3]}; the feeds do not match the graph's inputs (was it built for another objective? see --objective)`;
  const node = NODE_FAILURE.exec(message);
  if (node) {
    const cause = oneLine(node[3]!);
    return `onnxruntime failed in node '${node[2]}' (${node[1]}): ${cause}; ${hintFor(node[1]!, cause)}`;
  }
  return `onnxruntime failed: ${oneLine(message)}; check that the model runs in onnxruntime with inputs of these shapes (rerun with --debug for details)`;
}

function hintFor(op: string, cause: string): string {
  if (op === 'Gather' && /out of (data )?bounds/i.test(cause)) {
    return 'an index is outside a table: token ids must be below the model\'s vocabulary, and --seq no longer than its positions';
  }
  if (op === 'Conv' || op === 'MaxPool' || op === 'AveragePool') return 'the input is too short or small for the model\'s kernels: pass a larger --seq (samples) or the size the model was exported with';
  if (op === 'Reshape' || op === 'Expand' || /shape|dimension|broadcast/i.test(cause)) {
    return 'the export fixed shapes at trace time that these inputs do not fit: use the sizes it was exported with (--batch/--seq) or re-export with dynamic axes';
  }
  return 'check that the model runs in onnxruntime with inputs of these shapes (rerun with --debug for details)';
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim().slice(0, 300);
}
