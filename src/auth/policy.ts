import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { RequestContext } from './context.ts';
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

function parseRule(text: string): Node {
  const tokens = tokenize(text);
  if (tokens.length === 0) return { kind: 'true' };
  let pos = 0;
  const peek = () => tokens[pos];
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
    if (token === '(') {
      const inner = parseOr();
      if (tokens[pos++] !== ')') throw new Error(`unbalanced parentheses in policy rule '${text}'`);
      return inner;
    }
    if (token === '@') return { kind: 'true' };
    if (token === '!') return { kind: 'false' };
    const colon = token.indexOf(':');
    if (colon < 0) throw new Error(`cannot parse policy check '${token}' in '${text}'`);
    return { kind: 'check', left: token.slice(0, colon), right: token.slice(colon + 1) };
  };
  const node = parseOr();
  if (pos !== tokens.length) throw new Error(`unexpected '${tokens[pos]}' in policy rule '${text}'`);
  return node;
}

export class Policy {
  private readonly rules = new Map<string, Node>();
  /**
   * `[oslo_policy] enforce_new_defaults = False`: the deprecated rules count too, and Glance's legacy
   * checks apply (only an image's owner or an admin changes it).
   */
  readonly legacyDefaults: boolean;

  constructor(overrides: Record<string, string> = {}, opts: { enforceNewDefaults?: boolean } = {}) {
    this.legacyDefaults = opts.enforceNewDefaults === false;
    for (const [name, text] of Object.entries({ ...DEFAULT_RULES, ...overrides })) {
      const rule = parseRule(String(text));
      const deprecated = DEPRECATED_RULES[name];
      const orDeprecated = this.legacyDefaults && deprecated !== undefined && !(name in overrides) && deprecated !== text;
      this.rules.set(name, orDeprecated ? { kind: 'or', items: [rule, parseRule(deprecated)] } : rule);
    }
  }

  /** Reads policy.yaml / policy.json files of rule overrides, in order: a rule of a later file wins. */
  static fromFiles(files: readonly string[], opts: { enforceNewDefaults?: boolean } = {}): Policy {
    if (files.length === 0) return new Policy({}, opts);
    // The YAML parser (about 4 MiB of memory) is loaded only when an operator has a policy file.
    const { parse } = createRequire(import.meta.url)('yaml') as typeof import('yaml');
    const overrides: Record<string, string> = {};
    for (const file of files) {
      // A file of comments alone (Debian's policy.d/00_default_policy.yaml) sets nothing.
      const rules: unknown = parse(readFileSync(file, 'utf8')) ?? {};
      if (typeof rules !== 'object' || Array.isArray(rules)) throw new Error(`${file}: policy file must map rule names to check strings`);
      Object.assign(overrides, rules);
    }
    return new Policy(overrides, opts);
  }

  /** Whether a rule of this name exists (check() falls back to `default` for unknown names). */
  has(rule: string): boolean {
    return this.rules.has(rule);
  }

  check(rule: string, ctx: RequestContext, target: PolicyTarget = {}): boolean {
    const node = this.rules.get(rule) ?? this.rules.get('default')!;
    return this.evaluate(node, ctx, target, 0);
  }

  /** Throws 403 "You are not authorized to complete <rule> action." when denied. */
  enforce(rule: string, ctx: RequestContext, target: PolicyTarget = {}): void {
    if (!this.check(rule, ctx, target)) throw gazeError('POLICY_DENIED', rule);
  }

  private evaluate(node: Node, ctx: RequestContext, target: PolicyTarget, depth: number): boolean {
    if (depth > 20) throw new Error('policy rules refer to each other in a loop');
    switch (node.kind) {
      case 'true':
        return true;
      case 'false':
        return false;
      case 'not':
        return !this.evaluate(node.expr, ctx, target, depth);
      case 'and':
        return node.items.every((n) => this.evaluate(n, ctx, target, depth));
      case 'or':
        return node.items.some((n) => this.evaluate(n, ctx, target, depth));
      case 'check':
        return this.check1(node.left, node.right, ctx, target, depth);
    }
  }

  private check1(left: string, right: string, ctx: RequestContext, target: PolicyTarget, depth: number): boolean {
    if (left === 'rule') {
      const node = this.rules.get(right);
      return node ? this.evaluate(node, ctx, target, depth + 1) : false;
    }
    if (left === 'role') return ctx.roles.includes(interpolate(right, target).toLowerCase());
    const expected = interpolate(right, target);
    // `'literal':%(field)s` compares a constant with a target field.
    if (/^'.*'$/.test(left)) return left.slice(1, -1) === expected;
    const credentials: Record<string, string | boolean | null> = {
      project_id: ctx.projectId,
      user_id: ctx.userId,
      is_admin: ctx.isAdmin,
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
