/**
 * Per-layer charts of the report page: density (non-zeros / elements) and init std of the non-zeros before
 * and after, per role, over the layer index the analysis assigned. Drawn with the project's SVG plotter.
 */
import { figureSvg, PALETTE, type PanelSpec, type Series } from '../experiments/plot.js';
import type { TensorReport } from '../report.js';

interface LayerStat { layer: number; elements: number; nonZeros: number; stdBefore: number[]; stdAfter: number[] }

/** Per role, per layer: summed elements and non-zeros, and the measured stds. Tensors without a layer are left out. */
export function layerStats(tensors: readonly TensorReport[]): Map<string, LayerStat[]> {
  const byRole = new Map<string, Map<number, LayerStat>>();
  for (const t of tensors) {
    if (t.layer === null || !t.trained) continue;
    const layers = byRole.get(t.role) ?? new Map<number, LayerStat>();
    byRole.set(t.role, layers);
    const s = layers.get(t.layer) ?? { layer: t.layer, elements: 0, nonZeros: 0, stdBefore: [], stdAfter: [] };
    layers.set(t.layer, s);
    s.elements += t.shape.reduce((a, b) => a * b, 1);
    s.nonZeros += t.non_zeros;
    if (t.init.std_before !== null) s.stdBefore.push(t.init.std_before);
    if (t.init.std_after !== null) s.stdAfter.push(t.init.std_after);
  }
  return new Map([...byRole].map(([role, m]) => [role, [...m.values()].sort((a, b) => a.layer - b.layer)]));
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** The two-panel figure (density per layer, init std per layer), or null when no trained tensor has a layer. */
export function layerChartsSvg(tensors: readonly TensorReport[]): string | null {
  const stats = layerStats(tensors);
  if (stats.size === 0) return null;
  const roles = [...stats.keys()].sort();
  const color = (role: string) => PALETTE[roles.indexOf(role) % PALETTE.length]!;
  const density: PanelSpec = {
    title: 'density per layer (non-zeros / elements)',
    x: { label: 'layer', scale: 'linear' }, y: { label: 'density', scale: 'linear', min: 0, max: 1.05 },
    series: roles.map((role): Series => ({ name: role, color: color(role), points: stats.get(role)!.map((s) => ({ x: s.layer, y: s.nonZeros / s.elements })) })),
  };
  const std: PanelSpec = {
    title: 'init std of the non-zeros per layer (dashed: before)',
    x: { label: 'layer', scale: 'linear' }, y: { label: 'std', scale: 'linear', min: 0 },
    series: roles.flatMap((role): Series[] => {
      const s = stats.get(role)!.filter((x) => x.stdAfter.length > 0);
      if (s.length === 0) return [];
      return [
        { name: role, color: color(role), points: s.map((x) => ({ x: x.layer, y: mean(x.stdAfter) })) },
        { name: `${role} (before)`, color: color(role), dashed: true, points: s.filter((x) => x.stdBefore.length).map((x) => ({ x: x.layer, y: mean(x.stdBefore) })) },
      ];
    }),
  };
  const panels = std.series.length ? [density, std] : [density];
  return figureSvg({ title: 'Per layer', panels, panelWidth: 460, panelHeight: 300 });
}
