/**
 * Where a JSON config's syntax goes wrong: the line and column of the first mistake and
 * what was expected there, for a message an operator can act on (`postern.json: not
 * valid JSON at line 12, column 3: expected "," or "}" after a property value`). V8's
 * own JSON.parse() messages give an offset for some mistakes and none for others, and
 * may quote the whole file.
 *
 * Postfix counterpart: none (main.cf is not JSON); postconf(1) names the file and line.
 *
 * Does not: parse values (JSON.parse() does, once the text is known to be good); accept
 * anything JSON.parse() refuses, or refuse anything it accepts.
 *
 * @module
 */

/**
 * The first syntax mistake in a JSON text.
 *
 * @example
 * ```ts
 * const at: JsonSyntaxError = { line: 3, column: 1, offset: 14, expected: 'a property name in double quotes' };
 * ```
 */
export interface JsonSyntaxError {
  /** 1-based line. */
  readonly line: number;
  /** 1-based column, in characters. */
  readonly column: number;
  /** 0-based offset in the text. */
  readonly offset: number;
  /** What should have been there. */
  readonly expected: string;
}

/** Thrown from inside the scan to its top, and caught there (never escapes). */
class Mistake {
  constructor(
    readonly offset: number,
    readonly expected: string,
  ) {}
}

const WHITESPACE = /[ \t\n\r]*/y;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9A-Fa-f]{4}))*"/y;

/**
 * The first syntax mistake of `text`, or undefined when it is valid JSON.
 *
 * @example
 * ```ts
 * jsonSyntaxError('{\n  "a": 1,\n}'); // { line: 3, column: 1, offset: 12, expected: 'a property name in double quotes' }
 * ```
 */
export function jsonSyntaxError(text: string): JsonSyntaxError | undefined {
  let at = 0;
  const skip = (): void => {
    WHITESPACE.lastIndex = at;
    WHITESPACE.exec(text);
    at = WHITESPACE.lastIndex;
  };
  const match = (re: RegExp): boolean => {
    re.lastIndex = at;
    if (!re.test(text)) return false;
    at = re.lastIndex;
    return true;
  };
  const value = (): void => {
    skip();
    const c = text[at];
    if (c === '{') {
      at++;
      skip();
      if (text[at] === '}') {
        at++;
        return;
      }
      for (;;) {
        skip();
        if (text[at] !== '"') throw new Mistake(at, 'a property name in double quotes');
        if (!match(STRING)) throw new Mistake(at, stringProblem(text, at));
        skip();
        if (text[at] !== ':') throw new Mistake(at, '":" after the property name');
        at++;
        value();
        skip();
        if (text[at] === '}') {
          at++;
          return;
        }
        if (text[at] !== ',') throw new Mistake(at, '"," or "}" after a property value');
        at++;
      }
    }
    if (c === '[') {
      at++;
      skip();
      if (text[at] === ']') {
        at++;
        return;
      }
      for (;;) {
        value();
        skip();
        if (text[at] === ']') {
          at++;
          return;
        }
        if (text[at] !== ',') throw new Mistake(at, '"," or "]" after an array item');
        at++;
      }
    }
    if (c === '"') {
      if (!match(STRING)) throw new Mistake(at, stringProblem(text, at));
      return;
    }
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, at)) {
        at += word.length;
        return;
      }
    }
    if (!match(NUMBER))
      throw new Mistake(
        at,
        'a value (a string in double quotes, number, true, false, null, { or [)',
      );
  };
  try {
    value();
    skip();
    if (at < text.length) throw new Mistake(at, 'the end of the text after the value');
    return undefined;
  } catch (err) {
    if (!(err instanceof Mistake)) throw err;
    const before = text.slice(0, err.offset).split('\n');
    return {
      line: before.length,
      column: (before.at(-1) ?? '').length + 1,
      offset: err.offset,
      expected: err.expected,
    };
  }
}

/** What is wrong in the string that starts at `start`. */
function stringProblem(text: string, start: number): string {
  for (let i = start + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (text[i] === '"') break;
    if (c < 0x20) return 'the string to end with " before the end of the line';
    if (text[i] === '\\') i++;
  }
  return 'a string closed by " with valid escapes (\\", \\\\, \\n, \\uXXXX)';
}
