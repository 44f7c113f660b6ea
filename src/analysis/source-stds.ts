/**
 * The std before of weights the analysis read from external data (the shared-copy check reads every
 * candidate whole, chunk by chunk): nonZeroMoments of the values, accumulated as the init job would
 * (tensor-jobs.ts `Moments`, same chunks, same decode), so a resample job need not read the source again.
 * Keyed by where the values are — the input's data file, byte offset, element type and count — which the
 * transform never changes; one instance per transform.
 */
export class SourceStds {
  private readonly stds = new Map<string, number>();

  private static key(file: string, offset: number, dataType: number, elements: number): string {
    return `${file}\0${offset}\0${dataType}\0${elements}`;
  }

  record(file: string, offset: number, dataType: number, elements: number, std: number): void {
    this.stds.set(SourceStds.key(file, offset, dataType, elements), std);
  }

  /** The std recorded for these values, or undefined (the job then measures it from the source). */
  find(file: string, offset: number, dataType: number, elements: number): number | undefined {
    return this.stds.get(SourceStds.key(file, offset, dataType, elements));
  }

  get size(): number {
    return this.stds.size;
  }
}
