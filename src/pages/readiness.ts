/**
 * GPU readiness sections of a report, found generically: any top-level field holding an array of
 * `{graph, nodes, fallbacks[]}` entries (today `cuda`; other providers add their own field the same way),
 * or an object whose fields hold such arrays. The page renders whatever providers the report carries.
 */

export interface ReadinessFallback {
  node?: string;
  op?: string;
  reason?: string;
  [key: string]: unknown;
}

export interface ReadinessEntry {
  graph: string;
  nodes?: number;
  fallbacks: ReadinessFallback[];
  types_unknown?: number;
  [key: string]: unknown;
}

export interface ReadinessSection {
  /** The report field it came from (`cuda`, `webgpu`, or `gpu.webgpu` for a nested one). */
  provider: string;
  entries: ReadinessEntry[];
}

function isEntry(v: unknown): v is ReadinessEntry {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o.graph === 'string' && Array.isArray(o.fallbacks);
}

function isEntryList(v: unknown): v is ReadinessEntry[] {
  return Array.isArray(v) && v.length > 0 && v.every(isEntry);
}

/** The readiness sections of `report`, in its key order. */
export function findReadinessSections(report: object): ReadinessSection[] {
  const out: ReadinessSection[] = [];
  for (const [key, value] of Object.entries(report)) {
    if (isEntryList(value)) out.push({ provider: key, entries: value });
    else if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      for (const [sub, inner] of Object.entries(value)) if (isEntryList(inner)) out.push({ provider: `${key}.${sub}`, entries: inner });
    }
  }
  return out;
}
