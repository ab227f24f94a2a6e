// A reader's walk through one sync, counted: how often someone following the request from
// `sync()` in server/hooks/sync.ts has to jump to another file, and come back to one already
// read (issue: "today enters 22 files and comes back 50 times to a file it had left").
//   npx tsx scripts/sync-walk.ts [rootDir] [--trace] [--json] [--order=evaluation] [--reread=jump|always] [--reach=start-file]
//
// The rules, chosen so that any commit's tree gives a comparable number:
// - A reading, not an execution: every call written in a body is followed, whatever branch it is on.
// - Order (default "written"): a call is reached where its callee's name is written, so
//   `end(await refuse(x))` reads end, then refuse, and `a().b()` reads a, then b. With
//   --order=evaluation an argument's calls come before the call that receives them.
// - A call is followed into the declaration the type checker resolves it to (through imports
//   and re-exports; a method through its class) when that declaration has a body under
//   server/; the walk of the callee happens at the call. Node, libraries and type-only
//   imports never move the reader.
// - A call to an interface member (TargetAccess.ensureServiceAccount, a callback property)
//   cannot be followed statically: it is listed as a boundary call, with where it is declared.
// - Inline callbacks and local functions are read where they are written, as part of the
//   enclosing body; a call to a function that encloses the walk or is nested in one being
//   read (recursion included) is not followed again.
// - Each function is read once (default --reread=never): a reader who has read a function
//   knows it, and a later call to it moves them nowhere. --reread=jump still jumps to its file
//   without reading it again; --reread=always reads it again at every call.
// - Reach (default "all"): calls are followed from every function read. --reach=start-file
//   follows only the calls written in sync()'s own file, one hop, as the issue's hand count did.
//   --reach=hooks follows every call through server/hooks/ (the orchestration) and looks at a
//   callee elsewhere (credential/, kube/) without following its own calls.
// - The reader is in one file at a time. An entry into F is a call that moves the reader into
//   F from another file. A comeback is a move into a file the reader was in earlier: counted
//   (a) on calls only, and (b) on calls and returns, a return to the caller's file being a move too.
import { readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export type CallOrder = 'written' | 'evaluation';

export type Reread = 'never' | 'jump' | 'always';
export type Reach = 'all' | 'hooks' | 'start-file';

export interface WalkRules {
  order: CallOrder;
  reread: Reread;
  reach: Reach;
}

export interface BoundaryCall {
  /** "Interface.member", as the reader sees it. */
  callee: string;
  /** Where the member is declared, relative to the root. */
  file: string;
  /** The file the call is written in. */
  from: string;
}

export interface Move {
  kind: 'call' | 'return';
  from: string;
  to: string;
  /** The function entered (call) or the one returned to (return). */
  function: string;
}

export interface SyncWalk {
  /** Every file the reader was in, in the order first reached, the start included. */
  files: string[];
  entriesPerFile: Record<string, number>;
  comebacksByCalls: number;
  comebacksWithReturns: number;
  boundaryCalls: BoundaryCall[];
  trace: Move[];
}

export const defaultRules: WalkRules = { order: 'written', reread: 'never', reach: 'all' };

type Body = ts.FunctionLikeDeclaration & { body: ts.ConciseBody };
type Call = ts.CallExpression | ts.NewExpression;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : []);
}

/** One Program over server/, with the options the repository compiles it with. */
function serverProgram(root: string): ts.Program {
  const configPath = join(root, 'tsconfig.json');
  const config = ts.readConfigFile(configPath, (path) => ts.sys.readFile(path));
  if (config.error) throw new Error(ts.flattenDiagnosticMessageText(config.error.messageText, '\n'));
  const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, root, { noEmit: true }, configPath);
  return ts.createProgram({ rootNames: sourceFiles(join(root, 'server')), options });
}

/** `(f)`, `f as T`, `f satisfies T`, `f!`: still f. */
function unwrapped(expression: ts.Expression): ts.Expression {
  if (ts.isParenthesizedExpression(expression) || ts.isAsExpression(expression) || ts.isSatisfiesExpression(expression)
    || ts.isNonNullExpression(expression) || ts.isTypeAssertionExpression(expression)) return unwrapped(expression.expression);
  return expression;
}

const withBody = (node: ts.Node | undefined): node is Body =>
  node !== undefined && ts.isFunctionLike(node) && 'body' in node && node.body !== undefined;

/** The function a declaration names: itself, the function a variable or property holds, or a class's constructor. */
function bodyOf(declaration: ts.Declaration): Body | undefined {
  if (withBody(declaration)) return declaration;
  if ((ts.isVariableDeclaration(declaration) || ts.isPropertyAssignment(declaration) || ts.isPropertyDeclaration(declaration))
    && declaration.initializer) {
    const initializer = unwrapped(declaration.initializer);
    return withBody(initializer) ? initializer : undefined;
  }
  if (!ts.isClassLike(declaration)) return undefined;
  for (const member of declaration.members) if (ts.isConstructorDeclaration(member) && withBody(member)) return member;
  return undefined;
}

function symbolOf(checker: ts.TypeChecker, node: ts.Node): ts.Symbol | undefined {
  const symbol = checker.getSymbolAtLocation(node);
  return symbol && symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
}

/** The token that names what is called: a method's name, not the object it is called on. */
function calleeName(call: Call): ts.Node {
  const callee = unwrapped(call.expression);
  if (ts.isPropertyAccessExpression(callee)) return callee.name;
  if (ts.isElementAccessExpression(callee)) return callee.argumentExpression;
  return callee;
}

type Resolved = { body: Body } | { boundary: ts.Declaration } | undefined;

function resolveCall(checker: ts.TypeChecker, call: Call): Resolved {
  const declarations = symbolOf(checker, calleeName(call))?.declarations ?? [];
  const signature = checker.getResolvedSignature(call)?.declaration;
  for (const declaration of [...(signature && !ts.isJSDocSignature(signature) ? [signature] : []), ...declarations]) {
    const body = bodyOf(declaration);
    if (body) return { body };
  }
  const member = [signature, ...declarations].find((declaration) => declaration !== undefined
    && (ts.isMethodSignature(declaration) || ts.isPropertySignature(declaration) || ts.isCallSignatureDeclaration(declaration)
      || (ts.isMethodDeclaration(declaration) && !declaration.body)));
  return member ? { boundary: member } : undefined;
}

/** The calls a body's reader meets, in the rule's order; nested functions' calls where they are written. */
function callsIn(body: Body, order: CallOrder): Call[] {
  const calls: Call[] = [];
  const visit = (node: ts.Node) => {
    const isCall = ts.isCallExpression(node) || ts.isNewExpression(node);
    if (isCall && order === 'written') calls.push(node);
    ts.forEachChild(node, visit);
    if (isCall && order === 'evaluation') calls.push(node);
  };
  if (body.body) visit(body.body);
  if (order === 'evaluation') return calls;
  const at = (call: Call) => calleeName(call).getStart();
  return calls.sort((left, right) => at(left) - at(right));
}

function functionName(body: Body): string {
  const owner = ts.isClassLike(body.parent) && body.parent.name ? `${body.parent.name.text}.` : '';
  if (ts.isConstructorDeclaration(body)) return `new ${owner.slice(0, -1) || '(class)'}`;
  if (body.name) return owner + body.name.getText();
  const holder = body.parent;
  if (ts.isVariableDeclaration(holder) || ts.isPropertyAssignment(holder) || ts.isPropertyDeclaration(holder)) return holder.name.getText();
  return '(anonymous)';
}

function boundaryName(member: ts.Declaration): string {
  const owner = member.parent;
  const ownerName = (ts.isInterfaceDeclaration(owner) || ts.isClassLike(owner)) && owner.name ? owner.name.text
    : ts.isTypeAliasDeclaration(owner.parent) ? owner.parent.name.text : '(type)';
  const name = ts.getNameOfDeclaration(member);
  return `${ownerName}.${name ? name.getText() : '()'}`;
}

/** Where the reader is, and what moving costs. */
class Reader {
  readonly files: string[] = [];
  readonly entriesPerFile: Record<string, number> = {};
  comebacksByCalls = 0;
  comebacksWithReturns = 0;
  readonly trace: Move[] = [];

  constructor(private current: string) {
    this.files.push(current);
  }

  get file(): string {
    return this.current;
  }

  call(to: string, name: string): void {
    if (to === this.current) return;
    this.entriesPerFile[to] = (this.entriesPerFile[to] ?? 0) + 1;
    if (this.files.includes(to)) {
      this.comebacksByCalls += 1;
      this.comebacksWithReturns += 1;
    } else {
      this.files.push(to);
    }
    this.trace.push({ kind: 'call', from: this.current, to, function: name });
    this.current = to;
  }

  /** Every file returned to was read before: the caller's. */
  returnTo(to: string, name: string): void {
    if (to === this.current) return;
    this.comebacksWithReturns += 1;
    this.trace.push({ kind: 'return', from: this.current, to, function: name });
    this.current = to;
  }
}

class Walker {
  private readonly reader: Reader;
  private readonly stack: Body[] = [];
  private readonly read = new Set<Body>();
  private readonly startFile: string;
  readonly boundaryCalls: BoundaryCall[] = [];

  constructor(private readonly root: string, private readonly checker: ts.TypeChecker, private readonly rules: WalkRules, start: Body) {
    this.startFile = this.fileOf(start);
    this.reader = new Reader(this.startFile);
  }

  result(): SyncWalk {
    const { files, entriesPerFile, comebacksByCalls, comebacksWithReturns, trace } = this.reader;
    return { files, entriesPerFile, comebacksByCalls, comebacksWithReturns, boundaryCalls: this.boundaryCalls, trace };
  }

  private fileOf(node: ts.Node): string {
    return relative(this.root, node.getSourceFile().fileName);
  }

  private inServer(node: ts.Node): boolean {
    return this.fileOf(node).startsWith(`server${'/'}`) && !node.getSourceFile().isDeclarationFile;
  }

  /** Already being read: the function itself (recursion) or a function nested in one on the stack. */
  private beingRead(body: Body): boolean {
    return this.stack.some((frame) => frame.getSourceFile() === body.getSourceFile() && frame.pos <= body.pos && body.end <= frame.end);
  }

  walk(body: Body): void {
    this.stack.push(body);
    this.read.add(body);
    for (const call of callsIn(body, this.rules.order)) this.follow(call, body);
    this.stack.pop();
  }

  private follow(call: Call, caller: Body): void {
    const resolved = resolveCall(this.checker, call);
    if (!resolved) return;
    if ('boundary' in resolved) {
      if (this.inServer(resolved.boundary)) {
        this.boundaryCalls.push({ callee: boundaryName(resolved.boundary), file: this.fileOf(resolved.boundary), from: this.fileOf(call) });
      }
      return;
    }
    const { body } = resolved;
    const known = this.read.has(body);
    if (!this.inServer(body) || this.beingRead(body) || (known && this.rules.reread === 'never')) return;
    this.reader.call(this.fileOf(body), functionName(body));
    if (this.readsInto(body, known)) this.walk(body);
    this.reader.returnTo(this.fileOf(caller), functionName(caller));
  }

  private readsInto(body: Body, known: boolean): boolean {
    if (known && this.rules.reread !== 'always') return false;
    // One hop: the callee is looked at (and counts as read), its own calls are not followed.
    if ((this.rules.reach === 'start-file' && this.fileOf(body) !== this.startFile)
      || (this.rules.reach === 'hooks' && !this.fileOf(body).startsWith('server/hooks/'))) {
      this.read.add(body);
      return false;
    }
    return true;
  }
}

/** The function `sync` that server/hooks/sync.ts exports, wherever it is declared. */
function syncFunction(program: ts.Program, root: string): Body {
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(join(root, 'server', 'hooks', 'sync.ts'));
  const module = source && checker.getSymbolAtLocation(source);
  const exported = module && checker.getExportsOfModule(module).find((symbol) => symbol.name === 'sync');
  const target = exported && (exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported);
  const body = target?.declarations?.map(bodyOf).find((found) => found !== undefined);
  if (!body) throw new Error(`no exported function sync in ${join(root, 'server', 'hooks', 'sync.ts')}`);
  return body;
}

export function walkSync(root: string, rules: Partial<WalkRules> = {}): SyncWalk {
  const absoluteRoot = resolve(root);
  const program = serverProgram(absoluteRoot);
  const start = syncFunction(program, absoluteRoot);
  const walker = new Walker(absoluteRoot, program.getTypeChecker(), { ...defaultRules, ...rules }, start);
  walker.walk(start);
  return walker.result();
}

function report(walk: SyncWalk, withTrace: boolean): string {
  const entries = Object.entries(walk.entriesPerFile).sort(([leftFile, left], [rightFile, right]) => right - left || leftFile.localeCompare(rightFile));
  const boundaries = new Map<string, number>();
  for (const call of walk.boundaryCalls) boundaries.set(`${call.callee} (${call.file})`, (boundaries.get(`${call.callee} (${call.file})`) ?? 0) + 1);
  return [
    `files: ${walk.files.length}`,
    ...walk.files.map((file) => `  ${file}`),
    'entries per file:',
    ...entries.map(([file, count]) => `  ${String(count).padStart(3)}  ${file}`),
    `comebacks (calls only): ${walk.comebacksByCalls}`,
    `comebacks (calls and returns): ${walk.comebacksWithReturns}`,
    `boundary calls: ${walk.boundaryCalls.length}`,
    ...[...boundaries].map(([callee, count]) => `  ${String(count).padStart(3)}  ${callee}`),
    ...(withTrace ? ['trace:', ...walk.trace.map((move) => `  ${move.kind === 'call' ? '->' : '<-'} ${move.to}  ${move.function}`)] : []),
  ].join('\n');
}

function option<const Value extends string>(args: string[], name: string, values: readonly Value[], fallback: Value): Value {
  const given = args.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
  if (given === undefined) return fallback;
  const value = values.find((known) => known === given);
  if (!value) throw new Error(`--${name} is one of ${values.join(', ')}`);
  return value;
}

function main(args: string[]): void {
  const root = args.find((arg) => !arg.startsWith('--')) ?? fileURLToPath(new URL('..', import.meta.url));
  const walk = walkSync(root, {
    order: option(args, 'order', ['written', 'evaluation'], defaultRules.order),
    reread: option(args, 'reread', ['never', 'jump', 'always'], defaultRules.reread),
    reach: option(args, 'reach', ['all', 'hooks', 'start-file'], defaultRules.reach),
  });
  if (args.includes('--json')) {
    const { files, entriesPerFile, comebacksByCalls, comebacksWithReturns, boundaryCalls } = walk;
    console.log(JSON.stringify({ files, entriesPerFile, comebacksByCalls, comebacksWithReturns, boundaryCalls }, undefined, 2));
  } else {
    console.log(report(walk, args.includes('--trace')));
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) main(process.argv.slice(2));
