// The layers of ARCHITECTURE.md, top to bottom: a module may import from its own layer and the ones
// below it, never from one above (`npm run lint:layers`).
const LAYERS = [
  ['entry', '^src/cli\\.ts$'],
  ['composition', '^src/(app|configured-parts)\\.ts$'],
  ['http', '^src/http/'],
  ['services', '^src/services/'],
  ['import engine', '^src/import/'],
  ['data path', '^src/(ingest|cache)/'],
  ['parts', '^src/(stores|notify|quota)/'],
  ['infrastructure', '^src/(db|net|auth|schemas|util)/'],
  ['foundations', '^src/(domain|config|formats)/'],
];

module.exports = {
  forbidden: LAYERS.slice(1)
    .map(([name, path], index) => ({
      name: `no-upward-import-from-${name.replace(/ /g, '-')}`,
      comment: `${name} must not import from the layers above it (${LAYERS.slice(0, index + 1)
        .map(([n]) => n)
        .join(', ')})`,
      severity: 'error',
      from: { path },
      to: { path: LAYERS.slice(0, index + 1).map(([, p]) => p) },
    }))
    .concat([
      {
        name: 'no-circular',
        comment: 'modules must not import each other in a circle',
        severity: 'error',
        from: { path: '^src/' },
        to: { circular: true },
      },
    ]),
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
