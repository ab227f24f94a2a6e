// No function in server/ is over 50 lines: a longer one does several things, and each of
// them deserves a name a reader can follow (issue 26).
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import ts from 'typescript';

const root = resolve(import.meta.dirname, '..');
const maxLines = 50;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : []);
}

type FunctionLike = ts.FunctionDeclaration | ts.MethodDeclaration | ts.ConstructorDeclaration | ts.ArrowFunction | ts.FunctionExpression
  | ts.GetAccessorDeclaration | ts.SetAccessorDeclaration | ts.ClassStaticBlockDeclaration;

const isFunctionLike = (node: ts.Node): node is FunctionLike =>
  ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isConstructorDeclaration(node)
  || ts.isArrowFunction(node) || ts.isFunctionExpression(node)
  || ts.isGetAccessorDeclaration(node) || ts.isSetAccessorDeclaration(node) || ts.isClassStaticBlockDeclaration(node);

function nameOf(node: FunctionLike): string {
  if ((ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isFunctionExpression(node)) && node.name) return node.name.getText();
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  if (ts.isClassStaticBlockDeclaration(node)) return 'static block';
  if (ts.isGetAccessorDeclaration(node) || ts.isSetAccessorDeclaration(node)) return node.name.getText();
  if (ts.isVariableDeclaration(node.parent) || ts.isPropertyAssignment(node.parent) || ts.isPropertyDeclaration(node.parent)) return node.parent.name.getText();
  return '(anonymous)';
}

/** Each function in `text` over the limit, as "path:line name (n lines)". */
function longFunctions(file: string, text = readFileSync(file, 'utf8')): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    if (isFunctionLike(node)) {
      const start = source.getLineAndCharacterOfPosition(node.getStart()).line + 1;
      const end = source.getLineAndCharacterOfPosition(node.getEnd()).line + 1;
      const lines = end - start + 1;
      if (lines > maxLines) found.push(`${relative(root, file)}:${start} ${nameOf(node)} (${lines} lines)`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe('function length', () => {
  it('counts every kind of function (accessors and static blocks too), nested ones too, and only those over the limit', () => {
    const body = (lines: number) => Array.from({ length: lines - 2 }, (_, index) => `  void ${index};`).join('\n');
    const text = [
      `function declared() {\n${body(51)}\n}`,
      `function short() {\n${body(50)}\n}`,
      `class Holder {\n  constructor() {\n${body(51)}\n  }\n  method() {\n${body(51)}\n  }\n  get getter() {\n${body(51)}\n    return 0;\n  }\n  static {\n${body(51)}\n  }\n}`,
      `const arrow = () => {\n${body(51)}\n};`,
      `const expression = function () {\n${body(51)}\n};`,
      `const outer = () => {\n  const inner = () => {\n${body(51)}\n  };\n};`,
    ].join('\n');
    const names = longFunctions(join(root, 'server', 'sample.ts'), text).map((entry) => entry.split(' ')[1]);
    expect(names).to.deep.equal(['declared', 'constructor', 'method', 'getter', 'static', 'arrow', 'expression', 'outer', 'inner']);
  });

  it(`has no function in server/ over ${maxLines} lines`, () => {
    const long = sourceFiles(join(root, 'server')).flatMap((file) => longFunctions(file));
    expect(long, `functions over ${maxLines} lines:\n${long.join('\n')}`).to.deep.equal([]);
  });
});
