import type { TagRepository } from '../../domain/repositories';
import { TagKeyGoneError, TagLimitExceededError, type ProjectTag, type Tag, type TagFilter, type TaggedKey, type TagRemoval } from '../../domain/tags';
import { groupByKey, keyRecord, tagOf, tagsByKey, type KeyRow, type TagRow } from '../rows';
import { KEY_EXISTS } from './key-exists';
import type { SqliteSession } from './session';
import { sqliteCode } from './sqlite-errors';

/**
 * Key tags (migration 9); the semantics are TagRepository's (src/domain/repositories.ts). Tags go
 * with their key by the foreign key's ON DELETE CASCADE.
 */

/**
 * The project's keys that exist at now and that a TagFilter finds, with one statement for every
 * filter: the tag entries come as one JSON array bound as a parameter, and a key is found when no
 * entry lacks a tag of the key with that tag key and one of its values (none: any value).
 * Parameters: project, now, the alias fragment twice (NULL: any), the entries as JSON.
 */
const MATCHING = `FROM keys k
 WHERE k.project_id = ? AND k.provisioned = 1 AND ${KEY_EXISTS}
   AND (? IS NULL OR instr(lower(k.key_alias), ?) > 0)
   AND NOT EXISTS (
     SELECT 1 FROM json_each(?) AS f
      WHERE NOT EXISTS (
        SELECT 1 FROM key_tags t
         WHERE t.key_id = k.key_id AND t.tag_key = json_extract(f.value, '$.key')
           AND (json_array_length(f.value, '$.values') = 0
                OR t.tag_value IN (SELECT v.value FROM json_each(f.value, '$.values') AS v))))`;

type MatchParameters = [string, number, string | null, string | null, string];

function matchParameters(projectId: string, filter: TagFilter): MatchParameters {
  const name = filter.nameContains ?? null;
  return [projectId, filter.now, name, name, JSON.stringify(filter.tags.map((tag) => ({ key: tag.key, values: tag.values })))];
}

export class SqliteTagRepository implements TagRepository {
  private readonly statements;

  constructor(private readonly session: SqliteSession) {
    const { db } = session;
    this.statements = {
      forKey: db.prepare<[string], TagRow>('SELECT key_id, tag_key, tag_value FROM key_tags WHERE key_id = ? ORDER BY tag_key'),
      upsert: db.prepare<[string, string, string]>(
        'INSERT INTO key_tags (key_id, tag_key, tag_value) VALUES (?, ?, ?) ON CONFLICT (key_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value',
      ),
      countForKey: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM key_tags WHERE key_id = ?'),
      remove: db.prepare<[string, string, string | null, string | null]>('DELETE FROM key_tags WHERE key_id = ? AND tag_key = ? AND (? IS NULL OR tag_value = ?)'),
      projectTags: db.prepare<[string, number], Pick<TagRow, 'tag_key' | 'tag_value'>>(
        `SELECT DISTINCT t.tag_key, t.tag_value FROM key_tags t JOIN keys k ON k.key_id = t.key_id
          WHERE k.project_id = ? AND k.provisioned = 1 AND ${KEY_EXISTS}
          ORDER BY t.tag_key, t.tag_value`,
      ),
      find: db.prepare<[...MatchParameters, number, number], KeyRow>(`SELECT k.* ${MATCHING} ORDER BY k.creation_date, k.rowid LIMIT ? OFFSET ?`),
      count: db.prepare<MatchParameters, { n: number }>(`SELECT count(*) AS n ${MATCHING}`),
      tagsOf: db.prepare<[string], TagRow>('SELECT key_id, tag_key, tag_value FROM key_tags WHERE key_id IN (SELECT value FROM json_each(?)) ORDER BY key_id, tag_key'),
    };
  }

  async forKey(keyId: string): Promise<Tag[]> {
    return this.statements.forKey.all(keyId).map(tagOf);
  }

  async put(keyId: string, tags: readonly Tag[], maxPerKey: number): Promise<void> {
    try {
      await this.session.atomic(() => {
        for (const tag of tags) this.statements.upsert.run(keyId, tag.key, tag.value);
        // Counted after the writes, in the same transaction: a refusal undoes them all.
        if (this.statements.countForKey.get(keyId)!.n > maxPerKey) throw new TagLimitExceededError();
      });
    } catch (error) {
      // By code, not instanceof (sqlite-errors.ts).
      if (sqliteCode(error) === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw new TagKeyGoneError();
      throw error;
    }
  }

  async remove(keyId: string, tags: readonly TagRemoval[]): Promise<number> {
    return this.session.atomic(() => {
      let removed = 0;
      for (const tag of tags) removed += this.statements.remove.run(keyId, tag.key, tag.value ?? null, tag.value ?? null).changes;
      return removed;
    });
  }

  async projectTags(projectId: string, now: number): Promise<ProjectTag[]> {
    return groupByKey(this.statements.projectTags.all(projectId, now));
  }

  async find(projectId: string, filter: TagFilter, page: { readonly offset: number; readonly limit: number }): Promise<{ keys: TaggedKey[]; total: number }> {
    const parameters = matchParameters(projectId, filter);
    const records = this.statements.find.all(...parameters, page.limit, page.offset).map(keyRecord);
    const tags = tagsByKey(this.statements.tagsOf.all(JSON.stringify(records.map((record) => record.keyId))));
    return {
      keys: records.map((record) => ({ record, tags: tags.get(record.keyId) ?? [] })),
      total: this.statements.count.get(...parameters)!.n,
    };
  }

  async count(projectId: string, filter: TagFilter): Promise<number> {
    return this.statements.count.get(...matchParameters(projectId, filter))!.n;
  }
}
