// The imports between server/ modules form no cycle: a module is read before those that
// use it, and hooks/, kube/ and credential/ stay layers (a cycle is how a layer starts leaking).
import { expect } from 'chai';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../server');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : []);
}

/** The server/ files `file` imports (type-only imports included: they couple the modules too). */
function importsOf(file: string): string[] {
  const specifiers = [...readFileSync(file, 'utf8').matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+'(\.{1,2}\/[^']+)'/gms)].map((match) => match[1]!);
  return specifiers.map((specifier) => resolve(dirname(file), specifier.replace(/\.js$/, '.ts')));
}

/** Every cycle, as the list of files around it (each found once, from its first file in DFS order). */
function importCycles(files: string[]): string[][] {
  const graph = new Map(files.map((file) => [file, importsOf(file)]));
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of files) if (!state.has(file)) visit(file);
  return cycles;
}

describe('server/ imports', function () {
  it('the check finds a cycle through a type-only and a multi-line import', function () {
    const dir = mkdtempSync(join(tmpdir(), 'import-cycle-'));
    try {
      writeFileSync(join(dir, 'a.ts'), "import type { B } from './b.js';\nexport type A = B;\n");
      writeFileSync(join(dir, 'b.ts'), "import {\n  type A,\n} from './a.js';\nexport type B = A;\n");
      expect(importCycles(sourceFiles(dir)).map((cycle) => cycle.map((file) => relative(dir, file)))).to.deep.equal([['a.ts', 'b.ts', 'a.ts']]);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('form no cycle', function () {
    const cycles = importCycles(sourceFiles(root)).map((cycle) => cycle.map((file) => relative(root, file)).join(' → '));
    expect(cycles).to.deep.equal([]);
  });
});
