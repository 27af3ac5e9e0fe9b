/**
 * TypeDoc plugin: the doc comment of every main parameter, taken from its declaration.
 * The parameter types (MainParameters, MainParameterInput, MtaConfig, each component's
 * view such as SmtpdParameters) are inferred from the components' parameter tables, so
 * their properties have no comment of their own; each one without a comment gets its
 * table entry's one-line doc, its Postfix name and its default (`@defaultValue`), once.
 *
 * Does not: replace a comment written in the source.
 *
 * @module
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Application, Comment, CommentTag, Converter, ReflectionKind } from 'typedoc';
import { loadSource } from '../scripts/load-source.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * @typedef {{ name: string, postfix: string | null, doc: string, defaultText: string }} Description
 */

/** @param {Description} p */
function commentOf(p) {
  const origin = p.postfix === null ? "Postern's own parameter." : `Postfix \`${p.postfix}\`.`;
  return new Comment(
    [{ kind: 'text', text: `${p.doc} ${origin}` }],
    [new CommentTag('@defaultValue', [{ kind: 'code', text: `\`${p.defaultText}\`` }])],
  );
}

/** @param {Application} app */
export async function load(app) {
  const { MAIN_PARAMETERS } = await loadSource(ROOT, 'src/mta/main-parameters.ts');
  /** @type {Map<string, Description>} */
  const byName = new Map(
    /** @type {any} */ (MAIN_PARAMETERS).describe().map((/** @type {Description} */ p) => [p.name, p]),
  );
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    for (const r of context.project.getReflectionsByKind(ReflectionKind.Property)) {
      const p = byName.get(r.name);
      if (p === undefined || r.hasComment()) continue;
      if (!r.parent?.kindOf(ReflectionKind.Interface | ReflectionKind.Class)) continue;
      r.comment = commentOf(p);
    }
  });
}
