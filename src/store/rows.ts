import type { AliasRecord } from '../domain/aliases';
import type { CredentialKind, CredentialRecord } from '../domain/credentials';
import type { GranteeType, GrantRecord } from '../domain/grants';
import type { KeyRecord, KeyState } from '../domain/keys';
import type { ProjectTag, Tag } from '../domain/tags';

/**
 * The rows both stores hand back, and their records. The two dialects name every column alike;
 * where a column's type is wider than the domain's (a state, a kind, a list kept as JSON or as an
 * array), it is checked here: the CHECK constraints and the services keep these columns to the
 * domain's values, and a row that is not is refused rather than carried on under a false type.
 * Each store turns its dialect's own shapes (SQLite's 0/1 and JSON text) into these first.
 */

const KEY_STATES: readonly KeyState[] = ['1', '2', '3', '4', '5'];

export function keyState(value: string): KeyState {
  const state = KEY_STATES.find((known) => known === value);
  if (state === undefined) throw new Error(`the store holds an unknown key state: ${JSON.stringify(value)}`);
  return state;
}

export function granteeType(value: string): GranteeType {
  if (value === 'user' || value === 'domain') return value;
  throw new Error(`the store holds an unknown grantee type: ${JSON.stringify(value)}`);
}

export function credentialKind(value: string): CredentialKind {
  if (value === 'aksk' || value === 'token') return value;
  throw new Error(`the store holds an unknown credential kind: ${JSON.stringify(value)}`);
}

/** A list of strings, as PostgreSQL's text[] gives it or SQLite's JSON text parses to. */
export function stringList(value: unknown, column: string): string[] {
  if (Array.isArray(value) && value.every((item): item is string => typeof item === 'string')) return value;
  throw new Error(`the store holds a ${column} that is not a list of strings`);
}

/** A list of strings kept as JSON text (SQLite). */
export function jsonStringList(text: string, column: string): string[] {
  return stringList(JSON.parse(text), column);
}

export interface KeyRow {
  key_id: string;
  project_id: string;
  key_alias: string;
  key_description: string;
  key_spec: string;
  key_usage: string;
  origin: string;
  key_state: string;
  creation_date: number;
  scheduled_deletion_date: number | null;
  material_version: number;
}

export function keyRecord(row: KeyRow): KeyRecord {
  return {
    keyId: row.key_id,
    projectId: row.project_id,
    alias: row.key_alias,
    description: row.key_description,
    keySpec: row.key_spec,
    keyUsage: row.key_usage,
    origin: row.origin,
    state: keyState(row.key_state),
    creationDate: row.creation_date,
    scheduledDeletionDate: row.scheduled_deletion_date,
    materialVersion: row.material_version,
  };
}

export interface GrantRow {
  grant_id: string;
  key_id: string;
  project_id: string;
  name: string;
  grantee_principal: string;
  grantee_principal_type: string;
  retiring_principal: string | null;
  issuing_principal: string;
  creation_date: number;
  parent_grant_id: string | null;
}

/** A grant's record from its row and its operations (the list column, already read by the dialect). */
export function grantRecord(row: GrantRow, operations: string[]): GrantRecord {
  return {
    grantId: row.grant_id,
    keyId: row.key_id,
    projectId: row.project_id,
    name: row.name,
    granteePrincipal: row.grantee_principal,
    granteeType: granteeType(row.grantee_principal_type),
    retiringPrincipal: row.retiring_principal,
    issuingPrincipal: row.issuing_principal,
    operations,
    creationDate: row.creation_date,
    parentGrantId: row.parent_grant_id,
  };
}

export interface CredentialRow {
  id: string;
  kind: string;
  project_id: string;
  description: string;
  sealed_secret: Buffer | null;
  token_hash: string | null;
  created_at: number;
  expires_at: number | null;
}

/** A credential's record from its row, its actions and whether it is enabled (read by the dialect). */
export function credentialRecord(row: CredentialRow, actions: string[], enabled: boolean): CredentialRecord {
  return {
    id: row.id,
    kind: credentialKind(row.kind),
    projectId: row.project_id,
    actions,
    description: row.description,
    sealedSecret: row.sealed_secret,
    tokenHash: row.token_hash,
    enabled,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  };
}

export interface AliasRow {
  project_id: string;
  alias: string;
  key_id: string;
  create_time: number;
  update_time: number;
}

export function aliasRecord(row: AliasRow): AliasRecord {
  return { projectId: row.project_id, alias: row.alias, keyId: row.key_id, createTime: row.create_time, updateTime: row.update_time };
}

export interface TagRow {
  key_id: string;
  tag_key: string;
  tag_value: string;
}

export function tagOf(row: Pick<TagRow, 'tag_key' | 'tag_value'>): Tag {
  return { key: row.tag_key, value: row.tag_value };
}

/** Rows ordered by key id then tag key, as each key's tags in tag key order. */
export function tagsByKey(rows: readonly TagRow[]): Map<string, Tag[]> {
  const byKey = new Map<string, Tag[]>();
  for (const row of rows) {
    const tags = byKey.get(row.key_id) ?? [];
    tags.push(tagOf(row));
    byKey.set(row.key_id, tags);
  }
  return byKey;
}

/** Rows ordered by tag key then value, as each tag key with its values. */
export function groupByKey(rows: readonly Pick<TagRow, 'tag_key' | 'tag_value'>[]): ProjectTag[] {
  const tags: { key: string; values: string[] }[] = [];
  for (const row of rows) {
    const last = tags[tags.length - 1];
    if (last?.key === row.tag_key) last.values.push(row.tag_value);
    else tags.push({ key: row.tag_key, values: [row.tag_value] });
  }
  return tags;
}
