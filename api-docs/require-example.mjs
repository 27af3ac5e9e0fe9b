/**
 * TypeDoc plugin: the two rules of Postern's API reference that TypeDoc's own validation
 * cannot state.
 *
 * 1. Every exported top-level symbol (class, function, interface, type alias, variable,
 *    enum) reachable from the package's entry points (`.`, `./testing`, `./tables`, ...)
 *    carries an `@example` block. `validation.notDocumented` only checks that a comment exists.
 * 2. Every property of an exported class or interface has a doc comment (its own, or one
 *    inherited from the interface it implements or the class it extends). Properties of
 *    anonymous object types — the variants of a discriminated union, an inline return
 *    type — are described by the comment of the type that holds them, so `Property` is
 *    left out of `requiredToBeDocumented` in typedoc.json and checked here instead.
 *
 * Each miss is a TypeDoc warning, and typedoc.json sets `treatWarningsAsErrors`, so a
 * missing example or comment fails `npm run docs`.
 *
 * Does not: check that a snippet compiles; snippets are read by people, not run.
 *
 * @module
 */
import { Application, ReflectionKind } from 'typedoc';

/** The kinds that need an example; members only need a comment. */
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
    const missingExample = project
      .getReflectionsByKind(NEEDS_EXAMPLE)
      .filter((r) => r.parent?.kindOf(ReflectionKind.SomeModule | ReflectionKind.Project))
      .filter((r) => !hasExample(/** @type {any} */ (r)))
      .map((r) => r.getFriendlyFullName())
      .sort();
    for (const name of missingExample) {
      app.logger.warn(`${name} has no @example block; add one to its doc comment`);
    }
    const missingComment = project
      .getReflectionsByKind(ReflectionKind.Property)
      .filter((r) => r.parent?.kindOf(ReflectionKind.Class | ReflectionKind.Interface))
      .filter((r) => !r.hasComment())
      .map((r) => r.getFriendlyFullName())
      .sort();
    for (const name of missingComment) {
      app.logger.warn(`${name} (Property) has no doc comment; say what it is for`);
    }
  });
}
