import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { gazeError } from '../domain/errors.ts';
import type { JsonSchema } from './image.ts';
import { pformat, pyRepr } from './python-repr.ts';

// Validation errors read like Python's jsonschema messages, which is what Glance shows.

function describe(err: ErrorObject, data: unknown, root: unknown): string {
  const value = err.instancePath
    .split('/')
    .slice(1)
    .reduce<unknown>((node, seg) => (node as Record<string, unknown>)?.[seg.replace(/~1/g, '/').replace(/~0/g, '~')], data);
  const params = err.params as Record<string, unknown>;
  let text: string;
  switch (err.keyword) {
    case 'enum':
      text = `${pyRepr(value)} is not one of ${pyRepr(params.allowedValues)}`;
      break;
    case 'type': {
      const types = String(params.type).split(',');
      text = `${pyRepr(value)} is not of type ${types.map((t) => `'${t}'`).join(', ')}`;
      break;
    }
    case 'maxLength':
      text = `${pyRepr(value)} is too long`;
      break;
    case 'minLength':
      text = `${pyRepr(value)} is too short`;
      break;
    case 'pattern':
      text = `${pyRepr(value)} does not match ${pyRepr(params.pattern)}`;
      break;
    case 'required':
      text = `${pyRepr(params.missingProperty)} is a required property`;
      break;
    case 'minimum':
      text = `${pyRepr(value)} is less than the minimum of ${pyRepr(params.limit)}`;
      break;
    case 'maximum':
      text = `${pyRepr(value)} is greater than the maximum of ${pyRepr(params.limit)}`;
      break;
    case 'uniqueItems':
      text = `${pyRepr(value)} has non-unique elements`;
      break;
    case 'additionalProperties': {
      const extras = [params.additionalProperty].flat();
      text = `Additional properties are not allowed (${extras.map((extra) => pyRepr(extra)).join(', ')} ${extras.length === 1 ? 'was' : 'were'} unexpected)`;
      break;
    }
    default:
      text = err.message ?? 'is invalid';
  }
  const steps = jsonschemaPath(root, err) ?? err.schemaPath.replace(/^#\//, '').split('/').slice(0, -1);
  const schemaPath = steps.map((seg) => `[${/^\d+$/.test(seg) ? seg : pyRepr(seg)}]`).join('');
  const at = err.instancePath
    .split('/')
    .slice(1)
    .map((seg) => `[${/^\d+$/.test(seg) ? seg : pyRepr(seg)}]`)
    .join('');
  // jsonschema's str(): the schema and the instance as pprint shows them, indented by four.
  const shown = (v: unknown) => pformat(v, 72).replace(/^/gm, '    ');
  return `${text}\n\nFailed validating '${err.keyword}' in schema${schemaPath}:\n${shown(err.parentSchema ?? {})}\n\nOn instance${at}:\n${shown(value)}`;
}

type SchemaNode = { $ref?: string; properties?: Record<string, unknown>; additionalProperties?: unknown; items?: unknown };

/** A local `$ref` followed to what it names (jsonschema shows the schema it resolved to). */
function resolved(root: unknown, node: unknown): unknown {
  for (let hops = 0; hops < 8 && typeof (node as SchemaNode | null)?.$ref === 'string'; hops++) {
    const ref = (node as SchemaNode).$ref!;
    if (!ref.startsWith('#/')) break;
    node = ref
      .slice(2)
      .split('/')
      .reduce<unknown>((n, key) => (n as Record<string, unknown> | undefined)?.[key], root);
  }
  return node;
}

/**
 * The schema path jsonschema names: the way from the root to the instance's place, through properties,
 * additionalProperties and items, with each `$ref` followed and not named. ajv names the referenced
 * schema's own path instead. Null where the way does not lead to the error's schema.
 */
function jsonschemaPath(root: unknown, err: ErrorObject): string[] | null {
  const path: string[] = [];
  let node = resolved(root, root) as SchemaNode | undefined;
  for (const raw of err.instancePath.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (node?.properties && Object.hasOwn(node.properties, seg)) {
      path.push('properties', seg);
      node = resolved(root, node.properties[seg]) as SchemaNode;
    } else if (node && typeof node.additionalProperties === 'object') {
      path.push('additionalProperties');
      node = resolved(root, node.additionalProperties) as SchemaNode;
    } else if (node && typeof node.items === 'object') {
      path.push('items');
      node = resolved(root, node.items) as SchemaNode;
    } else return null;
  }
  return node === err.parentSchema ? path : null;
}

// Every violation is collected, so that the one reported is the one Glance reports: jsonschema's
// best_match over its errors, in the order it meets them.
// strictNumbers: a number beyond a double's range (1e400, Python's inf) is no integer, as in Python.
const ajv = new Ajv({ strict: false, allErrors: true, verbose: true, validateFormats: false, strictNumbers: true });

const WEAK_KEYWORDS = new Set(['anyOf', 'oneOf']);

/** Python jsonschema's type check, for best_match's preference of a value of the wrong type. */
function isType(value: unknown, type: string): boolean {
  switch (type) {
    case 'null':
      return value === null;
    case 'boolean':
      return typeof value === 'boolean';
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'string':
      return typeof value === 'string';
    case 'array':
      return Array.isArray(value);
    case 'object':
      return value !== null && typeof value === 'object' && !Array.isArray(value);
    default:
      return false;
  }
}

/** jsonschema's relevance: shallower first, then not anyOf/oneOf, then a value that is not of its schema's type. */
function relevance(err: ErrorObject): number[] {
  const depth = err.instancePath === '' ? 0 : err.instancePath.split('/').length - 1;
  const declared = (err.parentSchema as { type?: string | string[] } | undefined)?.type;
  const matchesType = declared === undefined ? false : [declared].flat().some((t) => isType(err.data, t));
  return [-depth, WEAK_KEYWORDS.has(err.keyword) ? 0 : 1, matchesType ? 0 : 1];
}

/** Where jsonschema meets the error: the position of each step of its schema path among the keys of that level. */
function visitOrder(schema: unknown, err: ErrorObject): number[] {
  const order: number[] = [];
  let node = schema;
  for (const raw of err.schemaPath.replace(/^#\/?/, '').split('/')) {
    const step = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object') break;
    order.push(Array.isArray(node) ? Number(step) : Object.keys(node).indexOf(step));
    node = (node as Record<string, unknown>)[step];
  }
  return order;
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? -1) - (b[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

/** The error Glance's jsonschema.validate would raise: the most relevant, the first met among equals. */
function bestMatch(schema: unknown, errors: ErrorObject[]): ErrorObject {
  const ranked = errors.map((err) => ({ err, relevance: relevance(err), order: visitOrder(schema, err) }));
  ranked.sort((a, b) => compare(b.relevance, a.relevance) || compare(a.order, b.order));
  const best = ranked[0]!.err;
  if (best.keyword !== 'additionalProperties' || !('additionalProperty' in best.params)) return best;
  // jsonschema names every unexpected property in one error, sorted.
  const extras = errors
    .filter((e) => e.keyword === best.keyword && e.instancePath === best.instancePath && e.schemaPath === best.schemaPath)
    .map((e) => String(e.params.additionalProperty))
    .sort();
  return { ...best, params: { additionalProperty: extras } };
}

export class SchemaValidator {
  private readonly fn: ValidateFunction;
  private readonly schema: JsonSchema;

  constructor(
    readonly name: string,
    schema: JsonSchema,
  ) {
    // The served schema carries non-validating keys (name, links, is_base); ajv ignores them in lax mode.
    this.schema = { ...schema, $id: undefined };
    this.fn = ajv.compile(this.schema);
  }

  /** Throws 400 "Provided object does not match schema '<name>': ..." naming the violation Glance names. */
  validate(data: unknown): void {
    if (!this.fn(data)) throw gazeError('SCHEMA_MISMATCH', this.name, describe(bestMatch(this.schema, this.fn.errors!), data, this.schema));
  }
}
