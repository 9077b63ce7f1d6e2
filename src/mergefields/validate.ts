/**
 * The check a template passes when a webhook is saved: it compiles, and renders valid output for
 * its MIME type with the sample data, with no data, and with data in which every field it names
 * exists.
 *
 * @module
 */
import { TemplateRenderError } from '../errors.js';
import { compileTemplate, type PayloadMimeType } from './compile.js';
import { isLimitError } from './encode.js';

/** Sample data with every referenced field present: arrays of two elements, leaves `'sample'`. */
function syntheticSample(fields: readonly string[]): unknown {
  interface Shape {
    keys: Map<string, Shape>;
    element: Shape | undefined;
  }
  const shape = (): Shape => ({ keys: new Map(), element: undefined });
  const root = shape();
  for (const field of fields) {
    let node = root;
    for (const seg of field.match(/\[\d*\]|[^.[\]]+/g) ?? []) {
      if (seg.startsWith('[')) {
        node.element ??= shape();
        node = node.element;
      } else {
        let next = node.keys.get(seg);
        if (next === undefined) {
          next = shape();
          node.keys.set(seg, next);
        }
        node = next;
      }
    }
  }
  const materialize = (s: Shape): unknown => {
    if (s.element !== undefined) {
      const el = materialize(s.element);
      return [el, el];
    }
    if (s.keys.size === 0) return 'sample';
    const obj: Record<string, unknown> = {};
    for (const [k, v] of s.keys) obj[k] = materialize(v);
    return obj;
  };
  return root.keys.size === 0 ? {} : materialize(root);
}

/**
 * Validates a template at save time: compiles it, then renders it against the sample data (or an
 * empty object), an empty object, and generated data in which every referenced field exists and
 * every `#each` array has two elements, checking each output is valid for the MIME type (JSON
 * parses; XML is well-formed, which for XML templates compiling already guarantees). Throws
 * TemplateSyntaxError or TemplateRenderError. Limits hit only with the generated data are ignored.
 *
 * @param source - template text
 * @param mimeType - output type
 * @param sample - example event data, e.g. from the host app's event catalog
 */
export function validateTemplate(source: string, mimeType: PayloadMimeType, sample?: unknown): void {
  const template = compileTemplate(source, mimeType);
  const check = (data: unknown, what: string, ignoreLimits: boolean): void => {
    try {
      template.render(data);
    } catch (err) {
      if (ignoreLimits && isLimitError(err)) return;
      if (err instanceof TemplateRenderError && what !== '') {
        throw new TemplateRenderError(`${err.message} (${what})`, { cause: err });
      }
      throw err;
    }
  };
  if (sample !== undefined) check(sample, '', false);
  check({}, sample === undefined ? '' : 'with empty data', false);
  check(syntheticSample(template.fields), 'with generated data: every field set, arrays of 2 items', true);
}
