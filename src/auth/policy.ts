import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Authenticator, RequestContext } from './context.ts';
import { DEFAULT_RULES, DEPRECATED_RULES } from './policy-rules.ts';
import { gazeError } from '../domain/errors.ts';

// A small evaluator for oslo.policy check strings: `role:x`, `rule:x`, `field:%(target)s`,
// `'literal':%(target)s`, `@`, `!`, `not`, `and`, `or` and parentheses. Rules are parsed once.

type Node =
  { kind: 'true' } | { kind: 'false' } | { kind: 'not'; expr: Node } | { kind: 'and' | 'or'; items: Node[] } | { kind: 'check'; left: string; right: string };

export type PolicyTarget = Record<string, string | boolean | null | undefined>;

function tokenize(text: string): string[] {
  // `%(field)s` holds parentheses that are not grouping: protect them as `%{field}s` first.
  const protectedText = text.replace(/%\((\w+)\)s/g, '%{$1}s');
  const spaced = protectedText.replace(/\(/g, ' ( ').replace(/\)/g, ' ) ');
  return spaced.split(/\s+/).filter((t) => t !== '');
}

/** Parses a check string; what cannot be understood denies, as in oslo.policy, and is told in `problems`. */
function parseRule(text: string, problems: string[]): Node {
  const tokens = tokenize(text);
  if (tokens.length === 0) return { kind: 'true' };
  let pos = 0;
  const peek = () => tokens[pos];
  const parseOr = (): Node => {
    const items = [parseAnd()];
    while (peek()?.toLowerCase() === 'or') {
      pos++;
      items.push(parseAnd());
    }
    return items.length === 1 ? items[0]! : { kind: 'or', items };
  };
  const parseAnd = (): Node => {
    const items = [parseNot()];
    while (peek()?.toLowerCase() === 'and') {
      pos++;
      items.push(parseNot());
    }
    return items.length === 1 ? items[0]! : { kind: 'and', items };
  };
  const parseNot = (): Node => {
    if (peek()?.toLowerCase() === 'not') {
      pos++;
      return { kind: 'not', expr: parseNot() };
    }
    return parseAtom();
  };
  const parseAtom = (): Node => {
    const token = tokens[pos++];
    if (token === undefined) throw new Error(`unexpected end of policy rule '${text}'`);
    if (token === '(') {
      const inner = parseOr();
      if (tokens[pos++] !== ')') throw new Error(`unbalanced parentheses in policy rule '${text}'`);
      return inner;
    }
    return parseCheck(token, text, problems);
  };
  try {
    const node = parseOr();
    if (pos !== tokens.length) throw new Error(`unexpected '${tokens[pos]}' in policy rule '${text}'`);
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
      const checks = inner.map((check) => parseCheck(String(check).replace(/%\((\w+)\)s/g, '%{$1}s'), text, problems));
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

export class Policy {
  private readonly rules = new Map<string, Node>();
  /**
   * `[oslo_policy] enforce_new_defaults = False`: the deprecated rules count too, and Glance's legacy
   * checks apply (only an image's owner or an admin changes it).
   */
  readonly legacyDefaults: boolean;
  /** What an operator should know of the policy files that does not stop the service (oslo.policy logs them). */
  readonly warnings: string[] = [];

  constructor(overrides: Record<string, unknown> = {}, opts: { enforceNewDefaults?: boolean } = {}) {
    this.legacyDefaults = opts.enforceNewDefaults === false;
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
  static fromFiles(files: readonly string[], opts: { enforceNewDefaults?: boolean } = {}): Policy {
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
    if (left === 'role') return ctx.roles.includes(interpolate(right, target).toLowerCase());
    const expected = interpolate(right, target);
    // `'literal':%(field)s` compares a constant with a target field.
    if (/^'.*'$/.test(left)) return left.slice(1, -1) === expected;
    // oslo.context's policy values: `is_admin` is not among them, so `is_admin:True` never matches in Glance.
    const credentials: Record<string, string | boolean | null> = {
      project_id: ctx.projectId,
      user_id: ctx.userId,
    };
    const actual = credentials[left];
    if (actual === undefined || actual === null) return false;
    if (typeof actual === 'boolean') return String(actual).toLowerCase() === expected.toLowerCase();
    return actual === expected;
  }
}

function interpolate(text: string, target: PolicyTarget): string {
  return text.replace(/%\{(\w+)\}s/g, (_, key: string) => {
    const value = target[key];
    return value === undefined || value === null ? '\u0000missing' : String(value);
  });
}

/** The policy target of an image, as Glance builds it. */
export function imageTarget(image: { owner: string | null; visibility: string }, memberId?: string | null): PolicyTarget {
  return {
    project_id: image.owner,
    owner: image.owner,
    visibility: image.visibility,
    // Glance puts the caller's project as member_id when the caller is a member of the image.
    member_id: memberId ?? null,
  };
}

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
