import type { TagRepository } from '../../domain/repositories';
import { TagKeyGoneError, TagLimitExceededError, type ProjectTag, type Tag, type TagFilter, type TaggedKey, type TagRemoval } from '../../domain/tags';
import { groupByKey, keyRecord, tagOf, tagsByKey, type KeyRow, type TagRow } from '../rows';
import { isForeignKeyViolation } from './errors';
import type { Executor } from './executor';
import { KEY_COLUMNS, keyExists } from './key-repository';

/** Key tags in PostgreSQL (migration 9); the semantics are TagRepository's (src/domain/repositories.ts). */

/**
 * The project's keys that exist at $2 and that a TagFilter finds, in one statement for every
 * filter (as SQLite's, src/store/sqlite/tag-repository.ts): $1 the project, $3 the alias fragment
 * (NULL: any), $4 the tag entries as a JSON array; a key is found when no entry lacks a tag of the
 * key with that tag key and one of its values (none: any value).
 */
const MATCHING = `FROM keys k
 WHERE k.project_id = $1 AND k.provisioned AND ${keyExists(2)}
   AND ($3::text IS NULL OR strpos(lower(k.key_alias), $3::text) > 0)
   AND NOT EXISTS (
     SELECT 1 FROM jsonb_array_elements($4::jsonb) AS f (entry)
      WHERE NOT EXISTS (
        SELECT 1 FROM key_tags t
         WHERE t.key_id = k.key_id AND t.tag_key = f.entry ->> 'key'
           AND (jsonb_array_length(f.entry -> 'values') = 0
                OR t.tag_value IN (SELECT jsonb_array_elements_text(f.entry -> 'values')))))`;

function matchParameters(projectId: string, filter: TagFilter): unknown[] {
  return [projectId, filter.now, filter.nameContains ?? null, JSON.stringify(filter.tags.map((tag) => ({ key: tag.key, values: tag.values })))];
}

export class PostgresTagRepository implements TagRepository {
  constructor(private readonly db: Executor) {}

  async forKey(keyId: string): Promise<Tag[]> {
    const { rows } = await this.db.query<TagRow>('SELECT key_id, tag_key, tag_value FROM key_tags WHERE key_id = $1 ORDER BY tag_key', [keyId]);
    return rows.map(tagOf);
  }

  async put(keyId: string, tags: readonly Tag[], maxPerKey: number): Promise<void> {
    try {
      await this.db.atomic(async (tx) => {
        // The key's row locked: the tags of one key are written and counted one writer at a time,
        // on every instance (two writers adding one tag each to a key with nine would both count
        // ten otherwise). No row: the key is gone.
        const { rowCount } = await tx.query('SELECT 1 FROM keys WHERE key_id = $1 FOR UPDATE', [keyId]);
        if (!rowCount) throw new TagKeyGoneError();
        await tx.query(
          `INSERT INTO key_tags (key_id, tag_key, tag_value) SELECT $1, tag_key, tag_value FROM unnest($2::text[], $3::text[]) AS t (tag_key, tag_value)
           ON CONFLICT (key_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value`,
          [keyId, tags.map((tag) => tag.key), tags.map((tag) => tag.value)],
        );
        const { rows } = await tx.query<{ n: number }>('SELECT count(*) AS n FROM key_tags WHERE key_id = $1', [keyId]);
        if (rows[0]!.n > maxPerKey) throw new TagLimitExceededError();
      });
    } catch (error) {
      if (isForeignKeyViolation(error, 'key_tags_key_fk')) throw new TagKeyGoneError();
      throw error;
    }
  }

  async remove(keyId: string, tags: readonly TagRemoval[]): Promise<number> {
    return this.db.atomic(async (tx) => {
      let removed = 0;
      for (const tag of tags) {
        const { rowCount } = await tx.query('DELETE FROM key_tags WHERE key_id = $1 AND tag_key = $2 AND ($3::text IS NULL OR tag_value = $3::text)', [
          keyId,
          tag.key,
          tag.value ?? null,
        ]);
        removed += rowCount ?? 0;
      }
      return removed;
    });
  }

  async projectTags(projectId: string, now: number): Promise<ProjectTag[]> {
    const { rows } = await this.db.query<Pick<TagRow, 'tag_key' | 'tag_value'>>(
      `SELECT DISTINCT t.tag_key, t.tag_value FROM key_tags t JOIN keys k ON k.key_id = t.key_id
        WHERE k.project_id = $1 AND k.provisioned AND ${keyExists(2)}
        ORDER BY t.tag_key, t.tag_value`,
      [projectId, now],
    );
    return groupByKey(rows);
  }

  async find(projectId: string, filter: TagFilter, page: { readonly offset: number; readonly limit: number }): Promise<{ keys: TaggedKey[]; total: number }> {
    const parameters = matchParameters(projectId, filter);
    const found = await this.db.query<KeyRow>(`SELECT ${KEY_COLUMNS.split(', ').map((column) => `k.${column}`).join(', ')} ${MATCHING} ORDER BY k.creation_date, k.seq LIMIT $5 OFFSET $6`, [
      ...parameters,
      page.limit,
      page.offset,
    ]);
    const records = found.rows.map(keyRecord);
    const { rows } = await this.db.query<TagRow>('SELECT key_id, tag_key, tag_value FROM key_tags WHERE key_id = ANY($1::text[]) ORDER BY key_id, tag_key', [
      records.map((record) => record.keyId),
    ]);
    const tags = tagsByKey(rows);
    return { keys: records.map((record) => ({ record, tags: tags.get(record.keyId) ?? [] })), total: await this.count(projectId, filter) };
  }

  async count(projectId: string, filter: TagFilter): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(`SELECT count(*) AS n ${MATCHING}`, matchParameters(projectId, filter));
    return rows[0]!.n;
  }
}
