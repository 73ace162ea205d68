import type { Pool } from 'pg';
import { guarded } from './errors';

/**
 * The PostgreSQL schema, in numbered migrations of the same meaning and numbers as SQLite's
 * (src/store/database.ts), written for this dialect: BIGINT milliseconds since the epoch, BOOLEAN
 * flags, TEXT[] for JSON arrays of names, BYTEA for sealed secrets, and an identity column `seq`
 * where SQLite's rowid orders rows of equal dates. The pending migrations run in one transaction,
 * each recorded in schema_migrations, under a transaction-scoped advisory lock
 * (pg_advisory_xact_lock), so that several instances starting at once on one database migrate it
 * once: the others wait for the COMMIT, then find it done. PostgreSQL's DDL is transactional: a
 * start that dies mid-way leaves the schema as it was, and the lock goes with the transaction.
 */

/** pg_advisory_lock's (int, int) key space: the first number names this service's locks. */
export const ADVISORY_NAMESPACE = 0x4b4d53; // "KMS"
export const MIGRATION_LOCK = 1;

export const MIGRATIONS: readonly string[] = [
  // 1: key metadata.
  `CREATE TABLE keys (
  key_id                  TEXT PRIMARY KEY,
  project_id              TEXT NOT NULL,
  key_alias               TEXT NOT NULL,
  key_description         TEXT NOT NULL DEFAULT '',
  key_spec                TEXT NOT NULL,
  key_usage               TEXT NOT NULL,
  origin                  TEXT NOT NULL,
  key_state               TEXT NOT NULL,
  creation_date           BIGINT NOT NULL,
  scheduled_deletion_date BIGINT,
  material_version        INTEGER NOT NULL DEFAULT 0,
  -- false while the HSM key is being generated: invisible to the API, and rolled back by
  -- reconciliation when a crash interrupted the creation.
  provisioned             BOOLEAN NOT NULL DEFAULT false,
  seq                     BIGINT GENERATED ALWAYS AS IDENTITY,
  CONSTRAINT keys_alias_unique UNIQUE (project_id, key_alias)
);
CREATE INDEX keys_by_project ON keys (project_id, creation_date, seq);
CREATE INDEX keys_pending_deletion ON keys (scheduled_deletion_date) WHERE key_state = '4';

CREATE TABLE key_materials (
  key_id     TEXT NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
  version    INTEGER NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (key_id, version)
);`,
  // 2: credentials. Secret keys are sealed by the HSM; tokens are kept as SHA-256 hashes only.
  `CREATE TABLE credentials (
  id            TEXT PRIMARY KEY,
  kind          TEXT NOT NULL CHECK (kind IN ('aksk', 'token')),
  project_id    TEXT NOT NULL,
  actions       TEXT[] NOT NULL,
  description   TEXT NOT NULL DEFAULT '',
  sealed_secret BYTEA,
  token_hash    TEXT UNIQUE,
  enabled       BOOLEAN NOT NULL DEFAULT true,
  created_at    BIGINT NOT NULL,
  expires_at    BIGINT
);`,
  // 3: grants; a grant goes with its key.
  `CREATE TABLE grants (
  grant_id               TEXT PRIMARY KEY,
  key_id                 TEXT NOT NULL,
  name                   TEXT NOT NULL DEFAULT '',
  grantee_principal      TEXT NOT NULL,
  grantee_principal_type TEXT NOT NULL CHECK (grantee_principal_type IN ('user', 'domain')),
  retiring_principal     TEXT,
  issuing_principal      TEXT NOT NULL,
  operations             TEXT[] NOT NULL,
  creation_date          BIGINT NOT NULL,
  seq                    BIGINT GENERATED ALWAYS AS IDENTITY,
  CONSTRAINT grants_key_fk FOREIGN KEY (key_id) REFERENCES keys (key_id) ON DELETE CASCADE
);
CREATE INDEX grants_by_key ON grants (key_id, creation_date, seq);
CREATE INDEX grants_by_retiring_principal ON grants (retiring_principal, creation_date) WHERE retiring_principal IS NOT NULL;`,
  // 4: rotation settings, the claim of a rotation under way, and seal counts per material version.
  `CREATE TABLE key_rotation (
  key_id           TEXT PRIMARY KEY REFERENCES keys (key_id) ON DELETE CASCADE,
  enabled          BOOLEAN NOT NULL DEFAULT false,
  interval_days    INTEGER NOT NULL DEFAULT 365,
  next_rotation_at BIGINT,
  last_rotation_at BIGINT,
  claimed_at       BIGINT,
  claimed_version  INTEGER
);
CREATE INDEX key_rotation_due ON key_rotation (next_rotation_at) WHERE enabled;
CREATE INDEX key_rotation_claimed ON key_rotation (claimed_at) WHERE claimed_at IS NOT NULL;
ALTER TABLE key_materials ADD COLUMN seals BIGINT NOT NULL DEFAULT 0;
CREATE INDEX key_materials_by_seals ON key_materials (seals);`,
  // 5: the grant whose authority a grant was made on; ending it ends this one (the foreign key is
  // the backstop of grant-repository.ts's explicit cascade).
  `ALTER TABLE grants ADD COLUMN parent_grant_id TEXT;
ALTER TABLE grants ADD CONSTRAINT grants_parent_fk FOREIGN KEY (parent_grant_id) REFERENCES grants (grant_id) ON DELETE CASCADE;
CREATE INDEX grants_by_parent ON grants (parent_grant_id) WHERE parent_grant_id IS NOT NULL;`,
  // 6: coordination across instances. Job leases (job-leases.ts): an item of a job is done by the
  // holder of its unexpired lease; expiry is on the database's clock, the one clock every instance
  // shares. Audit checkpoints: each instance's chain head, so that a chain cut short after its last
  // checkpoint is detected.
  `CREATE TABLE job_leases (
  job        TEXT NOT NULL,
  item       TEXT NOT NULL,
  holder     TEXT NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (job, item)
);
CREATE TABLE audit_checkpoints (
  instance TEXT PRIMARY KEY,
  records  BIGINT NOT NULL,
  head     TEXT NOT NULL,
  at       BIGINT NOT NULL
);`,
  // 7: an unfinished creation claimed for its roll-back (key-repository.ts claimRollback).
  `ALTER TABLE keys ADD COLUMN rolling_back BOOLEAN NOT NULL DEFAULT false;`,
  // 8: aliases (v2), unique in their project, several per key; they go with their key.
  `CREATE TABLE key_aliases (
  project_id  TEXT NOT NULL,
  -- Byte order, as SQLite's: list-aliases pages by alias (next_marker is the last one).
  alias       TEXT COLLATE "C" NOT NULL,
  key_id      TEXT NOT NULL,
  create_time BIGINT NOT NULL,
  update_time BIGINT NOT NULL,
  CONSTRAINT key_aliases_pkey PRIMARY KEY (project_id, alias),
  CONSTRAINT key_aliases_key_fk FOREIGN KEY (key_id) REFERENCES keys (key_id) ON DELETE CASCADE
);
CREATE INDEX key_aliases_by_key ON key_aliases (key_id, alias);`,
  // 9: key tags; a tag key is unique on its key, and tags go with their key. COLLATE "C": keys and
  // values compare and sort by code point (UTF-8 bytes), as SQLite's BINARY does, whatever the
  // database's default collation.
  `CREATE TABLE key_tags (
  key_id    TEXT NOT NULL,
  tag_key   TEXT COLLATE "C" NOT NULL,
  tag_value TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (key_id, tag_key),
  CONSTRAINT key_tags_key_fk FOREIGN KEY (key_id) REFERENCES keys (key_id) ON DELETE CASCADE
);
CREATE INDEX key_tags_by_tag ON key_tags (tag_key, tag_value);`,
  // 10: imported key material (origin external): the wrapping key pair's expiry, the HSM's
  // fingerprint of the first material imported (never the material), whether the token holds it
  // now, and when it expires. One row per key.
  `CREATE TABLE key_imports (
  key_id              TEXT PRIMARY KEY REFERENCES keys (key_id) ON DELETE CASCADE,
  wrapping_expires_at BIGINT,
  fingerprint         BYTEA,
  imported            BOOLEAN NOT NULL DEFAULT false,
  material_expires_at BIGINT
);
CREATE INDEX key_imports_wrapping ON key_imports (wrapping_expires_at) WHERE wrapping_expires_at IS NOT NULL;
CREATE INDEX key_imports_material ON key_imports (material_expires_at) WHERE material_expires_at IS NOT NULL;`,
];

export async function migrate(pool: Pool): Promise<void> {
  const client = await guarded(() => pool.connect());
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    try {
      // Taken before anything is read, and held to the COMMIT: an instance starting meanwhile waits
      // here, then reads the versions this one recorded and finds nothing left to do.
      await client.query('SELECT pg_advisory_xact_lock($1, $2)', [ADVISORY_NAMESPACE, MIGRATION_LOCK]);
      await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())');
      const { rows } = await client.query<{ version: number | null }>('SELECT max(version) AS version FROM schema_migrations');
      const current = rows[0]?.version ?? 0;
      if (current > MIGRATIONS.length) throw new Error(`the database's schema (${current}) is newer than this service's (${MIGRATIONS.length})`);
      for (let next = current; next < MIGRATIONS.length; next++) {
        await client.query(MIGRATIONS[next]!);
        await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [next + 1]);
      }
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch((rollbackFailure: unknown) => {
        broken = rollbackFailure instanceof Error ? rollbackFailure : new Error(String(rollbackFailure));
      });
      throw error;
    }
  } finally {
    // A connection whose ROLLBACK failed is not reused: it may still be inside the transaction.
    client.release(broken);
  }
}
