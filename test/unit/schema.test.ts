// The generated JSON Schema of topology files.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { topologyJsonSchema } from '../../src/topology/schema.js';

// This file runs as dist/test/unit/schema.test.js: the repository root is three levels up.
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

type JsonObject = Record<string, unknown>;
const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

describe('topologyJsonSchema', () => {
  const schema = topologyJsonSchema();

  test('is an object schema with name, networks and nodes, closed at the top level', () => {
    assert.ok(isObject(schema));
    assert.equal(schema.type, 'object');
    assert.ok(isObject(schema.properties));
    for (const key of ['name', 'networks', 'nodes']) assert.ok(key in schema.properties, `property ${key}`);
    assert.equal(schema.additionalProperties, false);
  });

  test('name and nodes are required; networks is optional', () => {
    assert.ok(isObject(schema));
    const required = schema.required as string[];
    assert.ok(Array.isArray(required));
    assert.ok(required.includes('name'));
    assert.ok(required.includes('nodes'));
    assert.ok(!required.includes('networks'));
  });

  test('carries its title and $id', () => {
    assert.ok(isObject(schema));
    assert.equal(schema.title, 'qnet topology');
    assert.equal(typeof schema.$id, 'string');
    assert.equal(typeof schema.$schema, 'string');
  });

  test('the lab name carries its pattern and length limit', () => {
    assert.ok(isObject(schema) && isObject(schema.properties));
    const name = schema.properties.name;
    assert.ok(isObject(name));
    assert.equal(name.type, 'string');
    assert.equal(name.maxLength, 24);
    assert.equal(typeof name.pattern, 'string');
    const re = new RegExp(name.pattern as string);
    assert.ok(re.test('seed-lab'));
    assert.ok(!re.test('Seed'));
  });

  test('is JSON-serializable and stable', () => {
    assert.equal(JSON.stringify(topologyJsonSchema()), JSON.stringify(schema));
  });
});

describe('qnet schema', () => {
  test('prints valid JSON equal to topologyJsonSchema()', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'qnet.js'), 'schema'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    const printed = JSON.parse(r.stdout) as unknown;
    assert.deepEqual(printed, JSON.parse(JSON.stringify(topologyJsonSchema())));
  });
});
