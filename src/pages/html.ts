/**
 * HTML templating for the pages: a tagged template literal that escapes every interpolated value unless it
 * is already `Html` (the result of another `html` template, or `raw()` for trusted markup such as the SVG
 * the plot module writes, which escapes its own text).
 *
 * Why not a template library: the pages are views of typed objects (the report, study results), so loops
 * and conditionals are TypeScript `map`/`?:` checked by the compiler; logic-less Mustache would need a
 * second, untyped view model, and Eta/EJS compile templates with `new Function` at run time. What a library
 * would add here is the escaping, which is this one function, escaping by default (a forgotten escape is
 * not possible: only `raw()` skips it).
 */

/** Markup that is safe to insert as is. */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

export type HtmlValue = Html | string | number | boolean | null | undefined | readonly HtmlValue[];

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML content and quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** Trusted markup, inserted unescaped. */
export function raw(markup: string): Html {
  return new Html(markup);
}

/** One value as markup: Html as is, arrays concatenated, null/undefined/false as nothing, the rest escaped. */
function render(v: HtmlValue): string {
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(render).join('');
  if (v === null || v === undefined || v === false) return '';
  return escapeHtml(String(v));
}

/** The tag: `html\`<td>${name}</td>\`` escapes `name`. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new Html(out);
}

/** An SVG document (as figureSvg writes it) as inline markup: without its XML declaration. */
export function inlineSvg(svg: string): Html {
  return raw(svg.replace(/^<\?xml[^>]*>\s*/, ''));
}

/** A whole page: doctype, UTF-8, a title, one inline style sheet and optional inline script; nothing external. */
export function page(title: string, style: string, body: Html, script?: string): string {
  return html`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>${raw(style)}</style>
</head>
<body>
${body}
${script ? html`<script>${raw(script)}</script>` : ''}
</body>
</html>
`.text;
}

/** Shared look of every page: system fonts only (no web fonts), compact tables. */
export const BASE_STYLE = `
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 1.5rem; color: #222; max-width: 1400px; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85rem; } th, td { padding: 0.2rem 0.5rem; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
th { background: #f5f5f5; position: sticky; top: 0; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.85em; }
.warnings { background: #fff4e5; border-left: 4px solid #f28e2b; padding: 0.5rem 1rem; }
.ok { color: #2f7d32; } .bad { color: #c62828; font-weight: bold; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: 0.2rem 1rem; } dl.summary dt { font-weight: bold; } dl.summary dd { margin: 0; }
svg { max-width: 100%; height: auto; }
`;
