// Property protections (Glance's property_protection_file): who may create, read, update and delete
// which extra image properties. Base attributes are never governed; admins are not exempt.

import { readFileSync } from 'node:fs';
import type { RequestContext } from './context.ts';
import type { Policy } from './policy.ts';

export type PropertyOperation = 'create' | 'read' | 'update' | 'delete';
export const PROPERTY_OPERATIONS: readonly PropertyOperation[] = ['create', 'read', 'update', 'delete'];

/** Who asks: roles are enough in `roles` format; `policies` format uses whatever else is known. */
export type ProtectionCaller = { roles: string[] } & Partial<RequestContext>;

type Permission = { kind: 'everyone' } | { kind: 'no-one' } | { kind: 'roles'; roles: ReadonlySet<string> } | { kind: 'policy'; rule: string };

interface Section {
  name: string;
  pattern: RegExp;
  ops: Record<PropertyOperation, Permission>;
}

/** The policy calls made here: evaluate a rule, and know whether a rule exists at all. */
export type ProtectionPolicy = Pick<Policy, 'check' | 'has'>;

export class PropertyProtectionConfigError extends Error {
  constructor(source: string, detail: string) {
    super(`Invalid configuration in property protection file ${source}: ${detail}`);
    this.name = 'PropertyProtectionConfigError';
  }
}

// Glance (since 2025.2, bug #2085321) puts this section first so that its own os_glance_* bookkeeping
// (import progress, failed stores) is never blocked or hidden; user sections named os_glance* are dropped.
const OS_GLANCE_SECTION = 'os_glance.*';

export class PropertyProtections {
  /** Things an operator should know that do not stop the service (Glance logs them as warnings). */
  readonly warnings: string[] = [];

  private constructor(
    private readonly sections: Section[],
    private readonly policy: ProtectionPolicy,
  ) {}

  /** Parses the INI text of a protection file; throws PropertyProtectionConfigError when Glance would refuse it. */
  static parse(text: string, format: string, policy: ProtectionPolicy, source = '(text)'): PropertyProtections {
    const fmt = format.trim().toLowerCase();
    if (fmt !== 'roles' && fmt !== 'policies') {
      throw new PropertyProtectionConfigError(source, `invalid property_protection_rule_format '${format}': use 'roles' or 'policies'`);
    }
    const { defaults, sections: raw } = parseIni(text, source);
    const warnings: string[] = [];
    const unknown = new Set<string>();
    const everyone: Permission = { kind: 'everyone' };
    const sections: Section[] = [
      {
        name: OS_GLANCE_SECTION,
        pattern: /^os_glance/,
        ops: { create: everyone, read: everyone, update: everyone, delete: everyone },
      },
    ];
    for (const [name, options] of raw) {
      if (name.startsWith('os_glance')) {
        warnings.push(`section [${name}] is ignored: os_glance properties are reserved for the service`);
        continue;
      }
      const pattern = compilePattern(name, source);
      const ops = {} as Record<PropertyOperation, Permission>;
      for (const op of PROPERTY_OPERATIONS) {
        const value = options.get(op) ?? defaults.get(op);
        if (value === undefined) throw new PropertyProtectionConfigError(source, `section [${name}] has no '${op}' option`);
        ops[op] = fmt === 'roles' ? rolesPermission(name, op, value, source) : policyPermission(name, op, value, source);
        const p = ops[op];
        if (p.kind === 'roles' && p.roles.size === 0) {
          warnings.push(`[${name}] ${op} is empty: no role will be allowed to perform this operation`);
        }
        if (p.kind === 'policy' && !policy.has(p.rule) && !unknown.has(p.rule)) {
          // Glance enforces `rule:<name>`, which oslo.policy resolves to its `default` rule when the name is unknown.
          unknown.add(p.rule);
          warnings.push(`[${name}] ${op} names policy rule '${p.rule}', which is not defined: the 'default' rule decides in its place`);
        }
      }
      sections.push({ name, pattern, ops });
    }
    // Current Glance's own os_glance section means a file always has rules (Glance 25 checked nothing
    // for a file without sections): no other property matches one, so none is allowed.
    if (sections.length === 1) warnings.push('the file defines no sections: every extra property is denied');
    const protections = new PropertyProtections(sections, policy);
    protections.warnings.push(...warnings);
    return protections;
  }

  /** May this caller perform `op` on the extra property `property`? No matching section: no. */
  allows(op: PropertyOperation, property: string, ctx: ProtectionCaller): boolean {
    const section = this.sections.find((s) => s.pattern.test(property));
    if (!section) return false;
    const permission = section.ops[op];
    switch (permission.kind) {
      case 'everyone':
        return true;
      case 'no-one':
        return false;
      case 'roles':
        return callerRoles(ctx).some((r) => permission.roles.has(r));
      case 'policy':
        // Glance enforces the rule with an empty target: only the caller's credentials count.
        return this.policy.check(permission.rule, fullContext(ctx), {});
    }
  }

  /**
   * The operation that writing `property` amounts to: an update when the caller can see it already,
   * else a create (a property the caller cannot read counts as absent, as in Glance's PATCH).
   */
  writeOperation(property: string, exists: boolean, ctx: ProtectionCaller): 'create' | 'update' {
    return exists && this.allows('read', property, ctx) ? 'update' : 'create';
  }

  /** May this caller write `property` (that the image has already, or not)? */
  mayWrite(property: string, exists: boolean, ctx: ProtectionCaller): boolean {
    return this.allows(this.writeOperation(property, exists, ctx), property, ctx);
  }
}

/** Reads the file named by `[DEFAULT] property_protection_file`; null when protections are off. */
export function loadPropertyProtections(file: string | null, format: string, policy: ProtectionPolicy): PropertyProtections | null {
  if (!file) return null;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PropertyProtectionConfigError(file, `cannot read the file (${(err as Error).message})`);
  }
  return PropertyProtections.parse(text, format, policy, file);
}

function rolesPermission(section: string, op: string, value: string, source: string): Permission {
  if (value === '') return { kind: 'roles', roles: new Set() };
  const roles = value.split(',').map((r) => r.trim());
  if (roles.includes('@') && roles.includes('!')) {
    throw new PropertyProtectionConfigError(source, `malformed rule [${section}] ${op} = ${value}: '@' and '!' are mutually exclusive`);
  }
  if (roles.includes('!')) return { kind: 'no-one' };
  if (roles.includes('@')) return { kind: 'everyone' };
  return { kind: 'roles', roles: new Set(roles.map((r) => r.toLowerCase())) };
}

function policyPermission(section: string, op: string, value: string, source: string): Permission {
  if (value === '') return { kind: 'roles', roles: new Set() };
  if (value.includes(',')) {
    throw new PropertyProtectionConfigError(source, `[${section}] ${op} = ${value}: one policy rule per operation (combine rules in the policy file)`);
  }
  if (value === '!') return { kind: 'no-one' };
  if (value === '@') return { kind: 'everyone' };
  return { kind: 'policy', rule: value };
}

/** The caller's roles as Glance weighs them here: a service's (X-Service-Token) beside the user's, lower-cased. */
function callerRoles(ctx: ProtectionCaller): string[] {
  return [...ctx.roles, ...(ctx.serviceRoles ?? [])].map((r) => r.trim().toLowerCase());
}

function fullContext(ctx: ProtectionCaller): RequestContext {
  const roles = callerRoles(ctx);
  return {
    userId: ctx.userId ?? null,
    projectId: ctx.projectId ?? null,
    roles,
    isAdmin: ctx.isAdmin ?? roles.includes('admin'),
    authToken: ctx.authToken ?? null,
    serviceCatalog: ctx.serviceCatalog ?? [],
    requestId: ctx.requestId ?? '',
    readOnly: ctx.readOnly ?? false,
    serviceRoles: ctx.serviceRoles ?? [],
  };
}

/**
 * Section names are Python regular expressions matched with re.search. The few Python-only spellings an
 * operator may use are translated; anything JavaScript cannot compile is a configuration error.
 */
function compilePattern(name: string, source: string): RegExp {
  let text = name;
  let flags = '';
  const inline = /^\(\?([ims]+)\)/.exec(text);
  if (inline) {
    flags = [...new Set(inline[1])].join('');
    text = text.slice(inline[0].length);
  }
  text = text.replace(/\(\?P<(\w+)>/g, '(?<$1>').replace(/\(\?P=(\w+)\)/g, '\\k<$1>');
  // Python's \A and \Z: the very start and end of the name (an escaped backslash before them is a literal).
  text = text.replace(/\\[\s\S]/g, (escape) => (escape === '\\A' ? '(?<![\\s\\S])' : escape === '\\Z' ? '(?![\\s\\S])' : escape));
  try {
    return new RegExp(text, flags);
  } catch (err) {
    throw new PropertyProtectionConfigError(source, `malformed property protection rule [${name}]: ${(err as Error).message}`);
  }
}

/**
 * The subset of Python's configparser that Glance relies on: `[section]` headers taken verbatim (regexes
 * such as `[^x_.*]` or `[.*]`, which the `ini` package splits at dots), `key = value` or `key: value`
 * with lower-cased keys, `#`/`;` full-line comments, indented continuation lines, a `[DEFAULT]` section
 * whose options every section inherits, and duplicate sections or options refused. Order is kept.
 */
function parseIni(text: string, source: string): { defaults: Map<string, string>; sections: Array<[string, Map<string, string>]> } {
  const defaults = new Map<string, string>();
  const sections = new Map<string, Map<string, string>>();
  const values = new Map<Map<string, string>, Map<string, string[]>>();
  let current: Map<string, string> | null = null;
  let currentName = '';
  let option: string | null = null;
  let indent = Number.MAX_SAFE_INTEGER;
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const multiline = (section: Map<string, string>) => {
    let m = values.get(section);
    if (!m) values.set(section, (m = new Map()));
    return m;
  };
  for (const [index, line] of lines.entries()) {
    const lineNo = index + 1;
    const stripped = line.trim();
    if (stripped.startsWith('#') || stripped.startsWith(';')) continue;
    if (stripped === '') {
      if (current && option) multiline(current).get(option)!.push('');
      continue;
    }
    const lineIndent = line.length - line.trimStart().length;
    if (current && option && lineIndent > indent) {
      multiline(current).get(option)!.push(stripped);
      continue;
    }
    indent = lineIndent;
    const header = /^\[(.+)\]/.exec(stripped);
    if (header) {
      currentName = header[1]!;
      if (currentName === 'DEFAULT') current = defaults;
      else {
        if (sections.has(currentName)) throw new PropertyProtectionConfigError(source, `line ${lineNo}: section [${currentName}] appears twice`);
        current = new Map();
        sections.set(currentName, current);
      }
      option = null;
      continue;
    }
    if (!current) throw new PropertyProtectionConfigError(source, `line ${lineNo}: an option before any [section] header`);
    const m = /^(.*?)\s*([=:])\s*(.*)$/.exec(stripped);
    if (!m || m[1] === '') throw new PropertyProtectionConfigError(source, `line ${lineNo}: cannot parse '${stripped}'`);
    const key = m[1]!.toLowerCase();
    if (multiline(current).has(key)) throw new PropertyProtectionConfigError(source, `line ${lineNo}: option '${key}' appears twice in [${currentName}]`);
    option = key;
    multiline(current).set(key, [m[3]!.trim()]);
  }
  for (const [section, opts] of values) {
    for (const [key, parts] of opts) section.set(key, parts.join('\n').trimEnd());
  }
  return { defaults, sections: [...sections] };
}
