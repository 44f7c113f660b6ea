/** Rule-file text quoted in a one-line message: control and line-separator characters escaped, long text cut. */

/** Longest quoted text, in characters, before it is cut with '…'. */
export const MAX_QUOTED = 120;

/** `text` safe to put between quotes in a one-line message (`\n` → `\\n`, U+2028 → `\\u2028`, …). */
export function shown(text: string, max = MAX_QUOTED): string {
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  return cut.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, (c) => {
    const named: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
    return named[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}
