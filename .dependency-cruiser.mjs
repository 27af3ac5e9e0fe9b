/**
 * Postern's layers, from the ground up, and the rules that keep imports pointing down.
 *
 * Each floor may import its own floor and the floors below it, never one above; rooms
 * that share a floor do not import each other. `npx depcruise src` checks the tree
 * against these rules, and test/unit/layers.test.ts runs the same check in `npm test`.
 *
 * Why the order is what it is:
 * - smtp-reply.ts is the one value every layer speaks (code + enhanced status + text).
 * - errors.ts and types.ts are the contracts between layers; clock, resolver,
 *   connector, service-network, log and queue-id are the injected services and leaves
 *   built on them, beside builtin (node's modules loaded on first use).
 * - util/ sits above the log, since its path checks report what they fix.
 * - address/ parses and formats addresses; tables/ (the dict layer) builds its search
 *   orders from address parts; config/ parses table parameters into TableSpecs.
 * - rewrite/ (trivial-rewrite) resolves with tables and parameters; deliver/ (the
 *   agents) uses the Rewriter's results; queue/ (stores, qmgr, bounce) runs the agents;
 *   cleanup/ writes into the queue.
 * - receive/, dkim/ and metrics/ are peers over cleanup and the queue: receivers
 *   reach Cleanup only through the Submission port (types.ts), so none imports cleanup/.
 * - mta/ wires everything (master(8)); testing/ and cli/ build on the Mta; index.ts
 *   and exports/ (the package's entry points) only re-export.
 */

/** Floors, lowest first: each a list of rooms (a name and a path pattern). */
export const FLOORS = [
  [['smtp-reply', '^src/smtp-reply\\.ts$']],
  [['contracts', '^src/(errors|types)\\.ts$']],
  [
    [
      'services',
      '^src/(builtin|clock|resolver|connector|service-network|log|log-fields|log-format|queue-id)\\.ts$',
    ],
  ],
  [['util', '^src/util/']],
  [['address', '^src/address/']],
  [['tables', '^src/tables/']],
  [['config', '^src/config/']],
  [['rewrite', '^src/rewrite/']],
  [['deliver', '^src/deliver/']],
  [['queue', '^src/queue/']],
  [['cleanup', '^src/cleanup/']],
  [
    ['receive', '^src/receive/'],
    ['dkim', '^src/dkim/'],
    ['metrics', '^src/metrics/'],
  ],
  [['mta', '^src/mta/']],
  [['testing', '^src/testing/']],
  [['cli', '^src/cli/']],
  [['index', '^src/(index\\.ts$|exports/)']],
];

const layerRules = FLOORS.flatMap((floor, level) => {
  const above = FLOORS.slice(level + 1).flat();
  return floor.flatMap(([name, path]) => {
    const rules = [];
    if (above.length > 0) {
      rules.push({
        name: `${name}-imports-only-below`,
        comment: `${name} may not import a higher layer (${above.map(([n]) => n).join(', ')})`,
        severity: 'error',
        from: { path },
        to: { path: above.map(([, p]) => p) },
      });
    }
    const peers = floor.filter(([n]) => n !== name);
    if (peers.length > 0) {
      rules.push({
        name: `${name}-apart-from-peers`,
        comment: `${name} may not import its peers on the same floor (${peers.map(([n]) => n).join(', ')})`,
        severity: 'error',
        from: { path },
        to: { path: peers.map(([, p]) => p) },
      });
    }
    return rules;
  });
});

const QUEUE_PARTS = ['stores', 'qmgr', 'bounce'];

const queueRules = [
  ...QUEUE_PARTS.map((part) => ({
    name: `queue-${part}-apart`,
    comment: `queue/${part}/ may not import the queue's other parts (${QUEUE_PARTS.filter((p) => p !== part).join(', ')}): they meet in the QueueStore contract`,
    severity: 'error',
    from: { path: `^src/queue/${part}/` },
    to: { path: `^src/queue/(${QUEUE_PARTS.filter((p) => p !== part).join('|')})/` },
  })),
  {
    name: 'queue-contract-below-parts',
    comment: 'the QueueStore contract and its shared rules may not import stores, qmgr or bounce',
    severity: 'error',
    from: { path: '^src/queue/[^/]+\\.ts$', pathNot: '^src/queue/queue-control\\.ts$' },
    to: { path: '^src/queue/(stores|qmgr|bounce)/' },
  },
];

export default {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'modules may not import each other in a loop',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    ...layerRules,
    ...queueRules,
    {
      name: 'receive-through-submission',
      comment:
        'receivers reach Cleanup only through the Submission port (types.ts), never by importing cleanup/',
      severity: 'error',
      from: { path: '^src/receive/' },
      to: { path: '^src/cleanup/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^src/',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
