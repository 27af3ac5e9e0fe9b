/**
 * The layer order of src/ holds (.dependency-cruiser.mjs says which and why): no module
 * imports a higher layer or a peer on its own floor, no modules import each other in a
 * loop (dependency-cruiser, and madge as a second reader), and the same rules do flag an
 * upward import and a cycle when a tree has them.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { cruise, type ICruiseOptions, type IViolation } from 'dependency-cruiser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');

interface LayerConfig {
  readonly forbidden: NonNullable<ICruiseOptions['ruleSet']>['forbidden'];
  readonly options: ICruiseOptions;
}

let config: LayerConfig;

beforeAll(async () => {
  const loaded = (await import(pathToFileURL(join(ROOT, '.dependency-cruiser.mjs')).href)) as {
    default: LayerConfig;
  };
  config = loaded.default;
});

/** The violations of the layer rules in `dirs` under `baseDir`, as `rule: from → to`. */
async function violations(baseDir: string, dirs: string[]): Promise<string[]> {
  const result = await cruise(dirs, {
    ...config.options,
    baseDir,
    tsConfig: { fileName: join(baseDir, 'tsconfig.json') },
    validate: true,
    ruleSet: { forbidden: config.forbidden },
  });
  if (typeof result.output === 'string') throw new Error('expected a cruise result object');
  return result.output.summary.violations.map(
    (v: IViolation) => `${v.rule.name}: ${v.from} → ${v.to}`,
  );
}

describe('layers of src/', () => {
  it('no import points up a layer, across a floor or in a circle', async () => {
    expect(await violations(ROOT, ['src'])).toEqual([]);
  });

  it('madge finds no circular import either', async () => {
    const { stdout } = await promisify(execFile)(
      join(ROOT, 'node_modules/.bin/madge'),
      ['--circular', '--extensions', 'ts', '--json', '--no-spinner', 'src'],
      { cwd: ROOT },
    );
    expect(JSON.parse(stdout)).toEqual([]);
  });
});

describe('the layer rules', () => {
  let tree: string;

  beforeAll(async () => {
    tree = await mkdtemp(join(tmpdir(), 'postern-layers-'));
    const files: Record<string, string> = {
      'tsconfig.json': JSON.stringify({
        compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true },
      }),
      // An address module that reaches up to the Mta.
      'src/address/parse.ts': "import { Mta } from '../mta/mta.js';\nexport const parse = Mta;\n",
      'src/mta/mta.ts': 'export class Mta {}\n',
      // A receiver that reaches Cleanup directly instead of through the Submission port.
      'src/receive/smtpd-session.ts':
        "import { Cleanup } from '../cleanup/cleanup.js';\nexport const session = Cleanup;\n",
      'src/cleanup/cleanup.ts': 'export class Cleanup {}\n',
      // A store that imports the queue manager.
      'src/queue/stores/file-store.ts':
        "import { QueueManager } from '../qmgr/queue-manager.js';\nexport const store = QueueManager;\n",
      'src/queue/qmgr/queue-manager.ts': 'export class QueueManager {}\n',
      // Two tables that import each other.
      'src/tables/a.ts': "import { b } from './b.js';\nexport const a = (): unknown => b;\n",
      'src/tables/b.ts': "import { a } from './a.js';\nexport const b = (): unknown => a;\n",
    };
    for (const [path, text] of Object.entries(files)) {
      await mkdir(dirname(join(tree, path)), { recursive: true });
      await writeFile(join(tree, path), text);
    }
  });

  afterAll(async () => {
    await rm(tree, { recursive: true, force: true });
  });

  it('flag an upward import, a receiver importing cleanup/, a store importing qmgr/ and a cycle', async () => {
    const found = await violations(tree, ['src']);
    expect(found).toEqual(
      expect.arrayContaining([
        'address-imports-only-below: src/address/parse.ts → src/mta/mta.ts',
        'receive-through-submission: src/receive/smtpd-session.ts → src/cleanup/cleanup.ts',
        'queue-stores-apart: src/queue/stores/file-store.ts → src/queue/qmgr/queue-manager.ts',
        'no-circular: src/tables/a.ts → src/tables/b.ts',
      ]),
    );
  });
});
