import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Authenticator, RequestContext } from './context.ts';
import type { Image } from '../domain/image.ts';
import { DEFAULT_RULES, DEPRECATED_RULES } from './policy-rules.ts';
import { credentialMatches, policyValues, tokenScope } from './policy-credentials.ts';
import { gazeError } from '../domain/errors.ts';
import { pyStr } from '../schemas/python-repr.ts';

// A small evaluator for oslo.policy check strings: `role:x`, `rule:x`, `field:%(target)s`,
// `'literal':%(target)s`, `@`, `!`, `not`, `and`, `or` and parentheses. Rules are parsed once, as
// oslo.policy parses them (its tokens, its literals, its credentials), so that a rule means the same.

type Node =
  { kind: 'true' } | { kind: 'false' } | { kind: 'not'; expr: Node } | { kind: 'and' | 'or'; items: Node[] } | { kind: 'check'; left: string; right: string };

/** What `%(name)s` in a check reads; a name it lacks fails the check (oslo's KeyError). */
export type PolicyTarget = Record<string, unknown>;

type Token = { type: '(' | ')' | 'and' | 'or' | 'not' | 'string'; text: string } | { type: 'check'; text: string };

/**
 * oslo.policy's tokens: words split at white space; parentheses count only at a word's start and end
 * (`or(role:x)` is one check, not an operator); a quoted word is a string, which no rule may hold.
 */
function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  for (const word of text.split(/\s+/)) {
    if (word === '') continue;
    const clean = word.replace(/^\(+/, '');
    for (let i = 0; i < word.length - clean.length; i++) tokens.push({ type: '(', text: '(' });
    if (clean === '') continue;
    const core = clean.replace(/\)+$/, '');
    const lowered = core.toLowerCase();
    if (lowered === 'and' || lowered === 'or' || lowered === 'not') tokens.push({ type: lowered, text: core });
    else if (core !== '' && clean.length >= 2 && (clean[0] === '"' || clean[0] === "'") && clean.at(-1) === clean[0])
      tokens.push({ type: 'string', text: clean });
    else if (core !== '') tokens.push({ type: 'check', text: core });
    for (let i = 0; i < clean.length - core.length; i++) tokens.push({ type: ')', text: ')' });
  }
  return tokens;
}

/** Parses a check string; what cannot be understood denies, as in oslo.policy, and is told in `problems`. */
function parseRule(text: string, problems: string[]): Node {
  const tokens = tokenize(text);
  if (tokens.length === 0) return { kind: 'true' };
  let pos = 0;
  const peek = () => tokens[pos]?.type;
  const parseOr = (): Node => {
    const items = [parseAnd()];
    while (peek() === 'or') {
      pos++;
      items.push(parseAnd());
    }
    return items.length === 1 ? items[0]! : { kind: 'or', items };
  };
  const parseAnd = (): Node => {
    const items = [parseNot()];
    while (peek() === 'and') {
      pos++;
      items.push(parseNot());
    }
    return items.length === 1 ? items[0]! : { kind: 'and', items };
  };
  const parseNot = (): Node => {
    if (peek() === 'not') {
      pos++;
      return { kind: 'not', expr: parseNot() };
    }
    return parseAtom();
  };
  const parseAtom = (): Node => {
    const token = tokens[pos++];
    if (token === undefined) throw new Error(`unexpected end of policy rule '${text}'`);
    if (token.type === '(') {
      const inner = parseOr();
      if (tokens[pos++]?.type !== ')') throw new Error(`unbalanced parentheses in policy rule '${text}'`);
      return inner;
    }
    if (token.type !== 'check') throw new Error(`unexpected '${token.text}' in policy rule '${text}'`);
    return parseCheck(token.text, text, problems);
  };
  try {
    const node = parseOr();
    if (pos !== tokens.length) throw new Error(`unexpected '${tokens[pos]!.text}' in policy rule '${text}'`);
    return node;
  } catch (err) {
    problems.push(`${(err as Error).message}: the rule denies`);
    return { kind: 'false' };
  }
}

/** One check (`@`, `!`, `kind:match`); one that cannot be understood denies alone, as oslo.policy's does. */
function parseCheck(token: string, text: string, problems: string[]): Node {
  if (token === '@') return { kind: 'true' };
  if (token === '!') return { kind: 'false' };
  const colon = token.indexOf(':');
  if (colon < 0) {
    problems.push(`cannot parse policy check '${token}' in '${text}': that check denies`);
    return { kind: 'false' };
  }
  return { kind: 'check', left: token.slice(0, colon), right: token.slice(colon + 1) };
}

/**
 * A rule in oslo.policy's old list syntax: an OR of ANDs of single checks (`[["role:a", "role:b"], ["role:c"]]`,
 * a bare string standing for a list of one); the empty list allows.
 */
function parseListRule(rule: unknown[], problems: string[]): Node {
  if (rule.length === 0) return { kind: 'true' };
  const text = JSON.stringify(rule);
  const alternatives = rule
    .map((inner) => (typeof inner === 'string' ? [inner] : Array.isArray(inner) ? inner : [String(inner)]))
    .filter((inner) => inner.length > 0)
    .map((inner): Node => {
      const checks = inner.map((check) => parseCheck(String(check), text, problems));
      return checks.length === 1 ? checks[0]! : { kind: 'and', items: checks };
    });
  if (alternatives.length === 0) return { kind: 'false' };
  return alternatives.length === 1 ? alternatives[0]! : { kind: 'or', items: alternatives };
}

/** The `rule:NAME` references of a parsed rule. */
function references(node: Node): string[] {
  switch (node.kind) {
    case 'not':
      return references(node.expr);
    case 'and':
    case 'or':
      return node.items.flatMap(references);
    case 'check':
      return node.left === 'rule' ? [node.right] : [];
    default:
      return [];
  }
}

export interface PolicyOptions {
  enforceNewDefaults?: boolean;
  enforceScope?: boolean;
}

/** The rules Glance registers without scope_types (oslo.policy checks no scope for them). */
const UNSCOPED_RULES: ReadonlySet<string> = new Set(['default', 'context_is_admin', 'metadef_default', 'metadef_admin']);

export class Policy {
  private readonly rules = new Map<string, Node>();
  /**
   * `[oslo_policy] enforce_new_defaults = False`: the deprecated rules count too, and Glance's legacy
   * checks apply (only an image's owner or an admin changes it).
   */
  readonly legacyDefaults: boolean;
  /** What an operator should know of the policy files that does not stop the service (oslo.policy logs them). */
  readonly warnings: string[] = [];

  /** `[oslo_policy] enforce_scope`: a token of another scope than a rule's fails it. */
  readonly enforceScope: boolean;

  constructor(overrides: Record<string, unknown> = {}, opts: PolicyOptions = {}) {
    this.legacyDefaults = opts.enforceNewDefaults === false;
    this.enforceScope = opts.enforceScope === true;
    for (const [name, text] of Object.entries({ ...DEFAULT_RULES, ...overrides })) {
      const problems: string[] = [];
      const rule = Array.isArray(text) ? parseListRule(text, problems) : parseRule(String(text), problems);
      this.warnings.push(...problems.map((p) => `rule '${name}': ${p}`));
      const deprecated = DEPRECATED_RULES[name];
      const orDeprecated = this.legacyDefaults && deprecated !== undefined && !(name in overrides) && deprecated !== text;
      this.rules.set(name, orDeprecated ? { kind: 'or', items: [rule, parseRule(deprecated, [])] } : rule);
    }
    for (const [name, rule] of this.rules) {
      for (const missing of new Set(references(rule).filter((ref) => !this.rules.has(ref)))) {
        this.warnings.push(`rule '${name}' refers to rule '${missing}', which is not defined: the 'default' rule decides in its place`);
      }
    }
  }

  /** Reads policy.yaml / policy.json files of rule overrides, in order: a rule of a later file wins. */
  static fromFiles(files: readonly string[], opts: PolicyOptions = {}): Policy {
    if (files.length === 0) return new Policy({}, opts);
    // The YAML parser (about 4 MiB of memory) is loaded only when an operator has a policy file.
    const { parse } = createRequire(import.meta.url)('yaml') as typeof import('yaml');
    const overrides: Record<string, unknown> = {};
    for (const file of files) {
      // A file of comments alone (Debian's policy.d/00_default_policy.yaml) sets nothing.
      let rules: unknown;
      try {
        rules = parse(readFileSync(file, 'utf8')) ?? {};
      } catch (err) {
        throw new Error(`${file}: ${(err as Error).message}`);
      }
      if (typeof rules !== 'object' || Array.isArray(rules)) throw new Error(`${file}: policy file must map rule names to check strings`);
      Object.assign(overrides, rules);
    }
    return new Policy(overrides, opts);
  }

  /** Whether a rule of this name exists (check() falls back to `default` for unknown names). */
  has(rule: string): boolean {
    return this.rules.has(rule);
  }

  /** Glance's `is_admin`: the `context_is_admin` rule, with the caller's own credentials as the target. */
  isAdmin(ctx: RequestContext): boolean {
    return this.check('context_is_admin', ctx, { project_id: ctx.projectId, user_id: ctx.userId, tenant: ctx.projectId, user: ctx.userId });
  }

  check(rule: string, ctx: RequestContext, target: PolicyTarget = {}): boolean {
    // Every rule Glance registers is for project-scoped tokens but these; with enforce_scope, a system-
    // or domain-scoped token fails the others whatever they say (oslo.policy's InvalidScope).
    if (this.enforceScope && !UNSCOPED_RULES.has(rule) && tokenScope(ctx) !== 'project') return false;
    const node = this.rules.get(rule) ?? this.rules.get('default')!;
    return this.evaluate(node, ctx, target, 0, !this.rules.has(rule));
  }

  /** Throws 403 "You are not authorized to complete <rule> action." when denied. */
  enforce(rule: string, ctx: RequestContext, target: PolicyTarget = {}): void {
    if (!this.check(rule, ctx, target)) throw gazeError('POLICY_DENIED', rule);
  }

  private evaluate(node: Node, ctx: RequestContext, target: PolicyTarget, depth: number, fallback = false): boolean {
    if (depth > 20) throw new Error('policy rules refer to each other in a loop');
    switch (node.kind) {
      case 'true':
        return true;
      case 'false':
        return false;
      case 'not':
        return !this.evaluate(node.expr, ctx, target, depth, fallback);
      case 'and':
        return node.items.every((n) => this.evaluate(n, ctx, target, depth, fallback));
      case 'or':
        return node.items.some((n) => this.evaluate(n, ctx, target, depth, fallback));
      case 'check':
        return this.check1(node.left, node.right, ctx, target, depth, fallback);
    }
  }

  private check1(left: string, right: string, ctx: RequestContext, target: PolicyTarget, depth: number, fallback: boolean): boolean {
    if (left === 'rule') {
      // oslo.policy's rules fall back to `default` for a name they do not have; once, so that a
      // `default` that names a missing rule denies rather than loops.
      const node = this.rules.get(right) ?? (fallback ? undefined : this.rules.get('default'));
      return node ? this.evaluate(node, ctx, target, depth + 1, fallback || !this.rules.has(right)) : false;
    }
    const expected = interpolate(right, target);
    if (expected === null) return false; // the target lacks a field the check names
    if (left === 'role') return ctx.roles.includes(expected.toLowerCase());
    // `'public':%(visibility)s`, `True:%(protected)s`: a Python literal compared with the target's field.
    const literal = pythonLiteral(left);
    if (literal !== undefined) return literal === expected;
    // Otherwise a credential, by a dotted path; of a list, any element.
    return credentialMatches(policyValues(ctx), left.split('.'), expected);
  }
}

/** `ast.literal_eval` of a check's left side for the literals a rule can hold; undefined when it is none. */
function pythonLiteral(text: string): string | undefined {
  if (text === 'True' || text === 'False' || text === 'None') return text;
  if (/^[+-]?\d+$/.test(text)) return String(BigInt(text));
  if (text.length >= 2 && (text[0] === "'" || text[0] === '"') && text.at(-1) === text[0] && !text.slice(1, -1).includes(text[0]!)) {
    return text.slice(1, -1);
  }
  return undefined;
}

/** `match % target`: null when the target lacks a field the match names. */
function interpolate(text: string, target: PolicyTarget): string | null {
  let missing = false;
  const result = text.replace(/%\((\w+)\)s/g, (_, key: string) => {
    if (!Object.hasOwn(target, key) || target[key] === undefined) {
      missing = true;
      return '';
    }
    return pyStr(target[key]);
  });
  return missing ? null : result;
}

/**
 * The policy target of an image, as Glance's ImageTarget gives it: the image's fields (`id`, and
 * `project_id` for its owner), then its extra properties; `member_id` is the caller's project when the
 * caller is a member of the image.
 */
export function imageTarget(image: ImageFields, memberId?: string | null): PolicyTarget {
  const target: PolicyTarget = {};
  for (const field of TARGET_FIELDS) if (image[field] !== undefined) target[field] = image[field];
  target.project_id = image.owner;
  target.member_id = memberId ?? null;
  for (const name in image.properties) {
    if (Object.hasOwn(target, name)) continue;
    // A property named __proto__ is a property here too, not the target's prototype.
    if (name === '__proto__') Object.defineProperty(target, name, { value: image.properties[name], enumerable: true, writable: true, configurable: true });
    else target[name] = image.properties[name];
  }
  return target;
}

/** The image's own fields in Glance's target; a field wins over an extra property of its name. */
const TARGET_FIELDS = [
  'id',
  'name',
  'status',
  'visibility',
  'protected',
  'os_hidden',
  'checksum',
  'os_hash_algo',
  'os_hash_value',
  'owner',
  'size',
  'virtual_size',
  'container_format',
  'disk_format',
  'min_ram',
  'min_disk',
  'created_at',
  'updated_at',
] as const;

/** The image as a policy target reads it; tests and callers without a whole image give what they have. */
export type ImageFields = { owner: string | null; visibility: string } & Partial<Omit<Image, 'owner' | 'visibility'>>;

/** An authenticator whose contexts are admin by the policy's `context_is_admin` rule, as Glance decides it. */
export function withPolicyAdmin(auth: Authenticator, policy: Policy): Authenticator {
  return {
    async authenticate(headers, requestId, request) {
      const ctx = await auth.authenticate(headers, requestId, request);
      return { ...ctx, isAdmin: policy.isAdmin(ctx) };
    },
    ...(auth.close && { close: () => auth.close!() }),
  };
}
