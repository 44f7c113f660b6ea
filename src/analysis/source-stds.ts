/**
 * What the analysis learned of weights in external data from one read of each (tensor-jobs.ts
 * `ValueSurvey`): the shared-copy check's fingerprint and the init report's std before (nonZeroMoments of
 * the values, accumulated as the init job would: same chunks, same decode), so neither the shared-copy check
 * nor a resample job reads those values again. Filled by worker threads before the analysis
 * (`surveyExternalWeights`, transform.ts) or by the shared-copy check itself (sharing.ts). Keyed by where the
 * values are — the input's data file, byte offset, element type and count — which the transform never
 * changes; one instance per transform.
 */
import type { ModelProto } from 'onnx-buf';
import { bitsPerElement, DataType } from '../onnx/dtype.js';
import { externalInfo, isExternal, resolveExternalPath } from '../onnx/external.js';
import { dimsOf, elementCount } from '../onnx/tensor.js';
import type { SurveyTask, ValueSurveyResult } from '../passes/tensor-jobs.js';

export class SourceStds {
  private readonly surveys = new Map<string, ValueSurveyResult>();

  private static key(file: string, offset: number, dataType: number, elements: number): string {
    return `${file}\0${offset}\0${dataType}\0${elements}`;
  }

  record(file: string, offset: number, dataType: number, elements: number, survey: ValueSurveyResult): void {
    this.surveys.set(SourceStds.key(file, offset, dataType, elements), survey);
  }

  /** The fingerprint and std recorded for these values, or undefined. */
  survey(file: string, offset: number, dataType: number, elements: number): ValueSurveyResult | undefined {
    return this.surveys.get(SourceStds.key(file, offset, dataType, elements));
  }

  /** The std recorded for these values, or undefined (the job then measures it from the source). */
  find(file: string, offset: number, dataType: number, elements: number): number | undefined {
    return this.survey(file, offset, dataType, elements)?.std;
  }

  get size(): number {
    return this.surveys.size;
  }
}

const SURVEYED_TYPES: ReadonlySet<number> = new Set([DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE]);

/**
 * Below this many entries a weight is left to the analysis' own read: a round trip to a worker costs more
 * than reading it (a model may hold thousands of small external tensors).
 */
export const SURVEY_MIN_ELEMENTS = 1 << 16;

/**
 * Surveys, on `pool`'s worker threads, every float initializer of the main graph held in external data with
 * at least `minElements` entries (what the shared-copy check would read), and records the results in `stds`.
 * A weight whose survey fails (a missing or short data file) is left out: the analysis then reads it itself
 * and says what is wrong, as without threads.
 */
export async function surveyExternalWeights(model: ModelProto, baseDir: string, pool: { survey(tasks: SurveyTask[]): Promise<(ValueSurveyResult | undefined)[]> }, stds: SourceStds, minElements = SURVEY_MIN_ELEMENTS): Promise<void> {
  const tasks: SurveyTask[] = [];
  const seen = new Set<string>();
  for (const t of model.graph?.initializer ?? []) {
    if (!isExternal(t) || !SURVEYED_TYPES.has(t.dataType)) continue;
    const elements = elementCount(dimsOf(t));
    if (elements < Math.max(2, minElements)) continue;
    let file: string, offset: number, length: number | undefined;
    try {
      ({ offset, length } = externalInfo(t));
      file = resolveExternalPath(t, baseDir);
    } catch {
      continue; // the analysis reports it
    }
    const key = `${file}\0${offset}\0${t.dataType}\0${elements}`;
    if (seen.has(key)) continue;
    seen.add(key);
    tasks.push({ name: t.name, elements, dataType: t.dataType, source: { kind: 'file', file, offset, length: length ?? elements * (bitsPerElement(t.dataType) / 8) } });
  }
  if (tasks.length === 0) return;
  const results = await pool.survey(tasks);
  tasks.forEach((task, i) => {
    const r = results[i];
    if (r && task.source.kind === 'file') stds.record(task.source.file, task.source.offset, task.dataType, task.elements, r);
  });
}
