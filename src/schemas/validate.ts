import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { gazeError } from '../domain/errors.ts';
import type { JsonSchema } from './image.ts';

// Validation errors read like Python's jsonschema messages, which is what Glance shows.

function pyRepr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(', ')}]`;
  if (typeof value === 'object')
    return `{${Object.entries(value as object)
      .map(([k, v]) => `${pyRepr(k)}: ${pyRepr(v)}`)
      .join(', ')}}`;
  return String(value);
}

function describe(err: ErrorObject, data: unknown): string {
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
    case 'additionalProperties':
      text = `Additional properties are not allowed (${pyRepr(params.additionalProperty)} was unexpected)`;
      break;
    default:
      text = err.message ?? 'is invalid';
  }
  const schemaPath = err.schemaPath
    .replace(/^#\//, '')
    .split('/')
    .slice(0, -1)
    .map((seg) => `[${/^\d+$/.test(seg) ? seg : pyRepr(seg)}]`)
    .join('');
  const at = err.instancePath
    .split('/')
    .slice(1)
    .map((seg) => `[${/^\d+$/.test(seg) ? seg : pyRepr(seg)}]`)
    .join('');
  return `${text}\n\nFailed validating '${err.keyword}' in schema${schemaPath}:\n    ${JSON.stringify(err.parentSchema ?? {})}\n\nOn instance${at}:\n    ${pyRepr(value)}`;
}

const ajv = new Ajv({ strict: false, allErrors: false, verbose: true, validateFormats: false });

export class SchemaValidator {
  private readonly fn: ValidateFunction;

  constructor(
    readonly name: string,
    schema: JsonSchema,
  ) {
    // The served schema carries non-validating keys (name, links, is_base); ajv ignores them in lax mode.
    this.fn = ajv.compile({ ...schema, $id: undefined });
  }

  /** Throws 400 "Provided object does not match schema '<name>': ..." on the first violation. */
  validate(data: unknown): void {
    if (!this.fn(data)) throw gazeError('SCHEMA_MISMATCH', this.name, describe(this.fn.errors![0]!, data));
  }
}
