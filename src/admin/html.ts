/**
 * HTML with escaping by default: the {@link html} tag escapes every interpolated value unless it
 * is already {@link SafeHtml} (the result of another `html` template). Nothing reaches a page
 * without passing through it, so a template, a response body or a description containing
 * `<script>` shows as text.
 *
 * @module
 */

/** Markup that is safe to insert as is: only {@link html} and {@link joinHtml} make it. */
export class SafeHtml {
  /** @internal use {@link html}. */
  constructor(readonly markup: string) {}

  toString(): string {
    return this.markup;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * Escapes text for an HTML text node or a quoted attribute value (`&`, `<`, `>`, `"`, `'`).
 * Every attribute the views write is quoted, so this is enough for both.
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** What a template may interpolate: text (escaped), markup, lists of either, or nothing. */
export type HtmlValue = SafeHtml | string | number | boolean | null | undefined | readonly HtmlValue[];

function render(value: HtmlValue): string {
  if (value instanceof SafeHtml) return value.markup;
  if (value === null || value === undefined || value === false) return '';
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

/**
 * The tag of every view: `html\`<td>${text}</td>\`` escapes `text`. `null`, `undefined` and
 * `false` render nothing (for `${condition && html\`…\`}`); arrays are concatenated.
 */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '');
  return new SafeHtml(out);
}

/** Items rendered one after the other, each escaped unless it is markup. */
export function joinHtml(items: readonly HtmlValue[], separator: HtmlValue = ''): SafeHtml {
  return new SafeHtml(items.map(render).join(render(separator)));
}
