import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/index.ts';
import { findBesideConfig } from '../config/find-file.ts';
import { imageSchema, SHIPPED_CUSTOM_PROPERTIES, type JsonSchema } from './image.ts';
import { SchemaValidator } from './validate.ts';

/**
 * The custom image properties of the schema-image.json beside the configuration files, as Glance loads
 * them (an operator adds typed properties there, or removes the shipped ones); the shipped set when there
 * is none. Glance, finding none, serves no custom properties at all: Gaze keeps the shipped set, which
 * every packaged Glance has. Refused: a file that is not a JSON object of schemas, a property that
 * redefines a base one (Glance's words), or a schema the validator cannot compile.
 */
export function customImageProperties(configFiles: readonly string[]): Record<string, JsonSchema> {
  const file = findBesideConfig(configFiles, 'schema-image.json');
  if (!file) return SHIPPED_CUSTOM_PROPERTIES;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`${file}: cannot read the custom image properties (${(err as Error).message})`);
  }
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(parsed) || !Object.values(parsed).every(isObject)) throw new ConfigError(`${file}: must map property names to JSON schemas`);
  const base = imageSchema([], [], {}).properties as Record<string, unknown>;
  const conflicting = Object.keys(parsed).filter((name) => name in base);
  if (conflicting.length > 0) throw new ConfigError(`${file}: custom properties (${conflicting.join(', ')}) conflict with base properties`);
  const custom = parsed as Record<string, JsonSchema>;
  try {
    // Compiled here, so that a schema the validator cannot use stops `config check` too, naming the file.
    new SchemaValidator('image', imageSchema([], [], custom));
  } catch (err) {
    throw new ConfigError(`${file}: not a usable JSON schema (${(err as Error).message})`);
  }
  return custom;
}
