/**
 * A strict little XML parser for the SVG tests: throws on anything not well-formed (unbalanced or
 * mismatched tags, unquoted or duplicate attributes, a bare '&' or '<'), and returns the element tree so
 * tests can count paths, ticks and legend entries.
 */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const ENTITY = /&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g;

function checkText(s: string, where: string): string {
  if (s.includes('<')) throw new Error(`bare '<' in ${where}`);
  if (s.replace(ENTITY, '').includes('&')) throw new Error(`bare '&' in ${where}: ${s.slice(0, 40)}`);
  return s.replace(ENTITY, (_, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[e] ?? '?');
}

function parseAttrs(src: string, tag: string): Record<string, string> {
  const attrs: Record<string, string> = {};
  const re = /\s+([A-Za-z_:][\w:.-]*)="([^"]*)"/y;
  let i = 0;
  while (i < src.length) {
    if (/^\s*$/.test(src.slice(i))) break;
    re.lastIndex = i;
    const m = re.exec(src);
    if (!m) throw new Error(`malformed attributes in <${tag}>: '${src.slice(i, i + 40)}'`);
    if (m[1] in attrs) throw new Error(`duplicate attribute ${m[1]} in <${tag}>`);
    attrs[m[1]] = checkText(m[2], `attribute ${m[1]} of <${tag}>`);
    i = re.lastIndex;
  }
  return attrs;
}

export function parseXml(xml: string): XmlElement {
  const src = xml.replace(/^<\?xml[^?]*\?>\s*/, '');
  const root: XmlElement = { name: '#document', attrs: {}, children: [], text: '' };
  const stack: XmlElement[] = [root];
  const re = /<!--[\s\S]*?-->|<\/([A-Za-z][\w:.-]*)\s*>|<([A-Za-z][\w:.-]*)((?:\s+[^\s=>/]+="[^"]*")*)\s*(\/?)>|([^<]+)|(<)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(src))) {
    const top = stack[stack.length - 1];
    if (m[6]) throw new Error(`malformed tag at ${m.index}: '${src.slice(m.index, m.index + 40)}'`);
    if (m[5] !== undefined) {
      if (stack.length === 1 && m[5].trim()) throw new Error('text outside the root element');
      top.text += checkText(m[5], `text of <${top.name}>`);
    } else if (m[1]) {
      if (top.name !== m[1]) throw new Error(`</${m[1]}> closes <${top.name}>`);
      stack.pop();
    } else if (m[2]) {
      const el: XmlElement = { name: m[2], attrs: parseAttrs(m[3] ?? '', m[2]), children: [], text: '' };
      if (stack.length === 1 && root.children.length) throw new Error('more than one root element');
      top.children.push(el);
      if (!m[4]) stack.push(el);
    }
  }
  if (stack.length !== 1) throw new Error(`unclosed <${stack[stack.length - 1].name}>`);
  if (root.children.length !== 1) throw new Error('no root element');
  return root.children[0];
}

/** All elements below `el` (depth first) that satisfy `pred`. */
export function findAll(el: XmlElement, pred: (e: XmlElement) => boolean): XmlElement[] {
  const out: XmlElement[] = [];
  const walk = (e: XmlElement): void => { if (pred(e)) out.push(e); e.children.forEach(walk); };
  el.children.forEach(walk);
  return out;
}

export const byClass = (cls: string) => (e: XmlElement): boolean => (e.attrs.class ?? '').split(/\s+/).includes(cls);

/** Text content of an element and its descendants. */
export function textOf(e: XmlElement): string {
  return e.text + e.children.map(textOf).join('');
}
