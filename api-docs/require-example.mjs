/**
 * TypeDoc plugin: every exported top-level symbol of Postern's public API must carry an
 * `@example` block.
 *
 * TypeDoc's own `validation.notDocumented` only checks that a comment exists; the API
 * reference promises a usage example for every class, function, interface, type alias,
 * variable and enum reachable from the package's entry points (`.` and `./testing`).
 * This plugin walks the converted project once, after conversion, and reports each
 * symbol whose comment (or whose first call signature's comment, for functions) has no
 * `@example` tag. The report is a TypeDoc warning, so with `treatWarningsAsErrors` in
 * typedoc.json a missing example fails `npm run docs` like a missing comment does.
 *
 * It does not check members (properties, methods) or the correctness of the snippet;
 * the snippets are read by people, not compiled.
 *
 * @module
 */
import { Application, ReflectionKind } from 'typedoc';

/** The kinds that need an example; members only need a comment (typedoc.json). */
const NEEDS_EXAMPLE =
  ReflectionKind.Class |
  ReflectionKind.Interface |
  ReflectionKind.TypeAlias |
  ReflectionKind.Function |
  ReflectionKind.Variable |
  ReflectionKind.Enum;

/** @param {import('typedoc').DeclarationReflection} reflection */
function hasExample(reflection) {
  if (reflection.comment?.getTag('@example')) return true;
  return (reflection.signatures ?? []).some((s) => s.comment?.getTag('@example') !== undefined);
}

/** @param {Application} app */
export function load(app) {
  app.on(Application.EVENT_VALIDATE_PROJECT, (project) => {
    const missing = project
      .getReflectionsByKind(NEEDS_EXAMPLE)
      .filter((r) => r.parent?.kindOf(ReflectionKind.SomeModule | ReflectionKind.Project))
      .filter((r) => !hasExample(/** @type {any} */ (r)))
      .map((r) => r.getFriendlyFullName())
      .sort();
    for (const name of missing) {
      app.logger.warn(
        `${name} has no @example block; add one to its doc comment (see api-docs/README.md)`,
      );
    }
  });
}
