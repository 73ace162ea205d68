import Database from 'better-sqlite3';
import { createPrivateFile } from '../../file-modes';

/**
 * The service's embedded SQLite database: one file in the data directory, in WAL mode so that
 * readers never wait for the writer and several processes (the service, the command-line tool) can
 * share it. Migrations run in order, each in one transaction, recorded in PRAGMA user_version.
 */

/** In order; exported for the migration tests (test/unit/grant-store.test.ts builds a database of an older schema). */
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
  creation_date           INTEGER NOT NULL,
  scheduled_deletion_date INTEGER,
  material_version        INTEGER NOT NULL DEFAULT 0,
  -- 0 while the HSM key is being generated: invisible to the API, and rolled back by reconciliation
  -- when a crash interrupted the creation.
  provisioned             INTEGER NOT NULL DEFAULT 0,
  UNIQUE (project_id, key_alias)
) STRICT;
CREATE INDEX keys_by_project ON keys (project_id, creation_date);
CREATE INDEX keys_pending_deletion ON keys (scheduled_deletion_date) WHERE key_state = '4';

CREATE TABLE key_materials (
  key_id     TEXT NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
  version    INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (key_id, version)
) STRICT;`,
  // 2: credentials. Secret keys are sealed by the HSM; tokens are kept as SHA-256 hashes only.
  `
CREATE TABLE credentials (
  id            TEXT PRIMARY KEY,  -- the access key, or the token's id
  kind          TEXT NOT NULL CHECK (kind IN ('aksk', 'token')),
  project_id    TEXT NOT NULL,
  actions       TEXT NOT NULL,     -- JSON array of action patterns
  description   TEXT NOT NULL DEFAULT '',
  sealed_secret BLOB,              -- aksk: the secret key, sealed under the HSM's credential key
  token_hash    TEXT UNIQUE,       -- token: hex SHA-256 of the token
  enabled       INTEGER NOT NULL DEFAULT 1,
  created_at    INTEGER NOT NULL,
  expires_at    INTEGER
) STRICT;
`,
  // 3: grants. A grant lets a principal (see identity/principal-id.ts) use one key for the operations
  // it lists; it goes with its key.
  `
CREATE TABLE grants (
  grant_id               TEXT PRIMARY KEY,  -- 64 lower-case hex digits
  key_id                 TEXT NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
  name                   TEXT NOT NULL DEFAULT '',
  grantee_principal      TEXT NOT NULL,     -- a principal id ('user') or a project id ('domain')
  grantee_principal_type TEXT NOT NULL CHECK (grantee_principal_type IN ('user', 'domain')),
  retiring_principal     TEXT,              -- NULL when the grant names none
  issuing_principal      TEXT NOT NULL,
  operations             TEXT NOT NULL,     -- JSON array of operation names
  creation_date          INTEGER NOT NULL
) STRICT;
CREATE INDEX grants_by_key ON grants (key_id, creation_date);
CREATE INDEX grants_by_retiring_principal ON grants (retiring_principal, creation_date) WHERE retiring_principal IS NOT NULL;
`,
  // 4: rotation. A key without a row has rotation off at the default interval. claimed_* mark a
  // rotation under way (the claim that makes it happen once across processes); seals counts the
  // encryptions under each material version (the GCM IV budget), flushed in batches.
  `
CREATE TABLE key_rotation (
  key_id           TEXT PRIMARY KEY REFERENCES keys (key_id) ON DELETE CASCADE,
  enabled          INTEGER NOT NULL DEFAULT 0,
  interval_days    INTEGER NOT NULL DEFAULT 365,
  next_rotation_at INTEGER,
  last_rotation_at INTEGER,
  claimed_at       INTEGER,
  claimed_version  INTEGER
) STRICT;
CREATE INDEX key_rotation_due ON key_rotation (next_rotation_at) WHERE enabled = 1;
CREATE INDEX key_rotation_claimed ON key_rotation (claimed_at) WHERE claimed_at IS NOT NULL;
ALTER TABLE key_materials ADD COLUMN seals INTEGER NOT NULL DEFAULT 0;
CREATE INDEX key_materials_by_seals ON key_materials (seals);
`,
  // 5: the grant whose authority a grant was made on (a grantee holding create-grant made it), so
  // that ending that grant ends this one too (GrantRepository.removeWithDescendants). NULL for a
  // grant the key's administrator made, and for every grant made before this migration: which
  // authority those used was not recorded. The foreign key is the backstop of the cascade.
  `
ALTER TABLE grants ADD COLUMN parent_grant_id TEXT REFERENCES grants (grant_id) ON DELETE CASCADE;
CREATE INDEX grants_by_parent ON grants (parent_grant_id) WHERE parent_grant_id IS NOT NULL;
`,
  // 6: coordination (src/domain/coordination.ts). job_leases: who does an item of an exactly-once
  // job (a key to delete, a rotation to roll back) until expires_at; a row is deleted when its
  // holder is done, and an expired one is taken over. audit_checkpoints: each instance's audit
  // chain head, so that a chain cut short after its last checkpoint is detected.
  `
CREATE TABLE job_leases (
  job        TEXT NOT NULL,
  item       TEXT NOT NULL,
  holder     TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (job, item)
) STRICT;
CREATE TABLE audit_checkpoints (
  instance TEXT PRIMARY KEY,
  records  INTEGER NOT NULL,
  head     TEXT NOT NULL,
  at       INTEGER NOT NULL
) STRICT;
`,
  // 7: an unfinished creation claimed for its roll-back (key-repository.ts claimRollback): it can
  // no longer be made visible, so the sweep never destroys the material of a key that just became usable.
  `ALTER TABLE keys ADD COLUMN rolling_back INTEGER NOT NULL DEFAULT 0;`,
  // 8: aliases (v2), unique in their project, several per key; they go with their key. Apart from
  // keys.key_alias, create-key's label, which no request resolves (README, "Aliases").
  `
CREATE TABLE key_aliases (
  project_id  TEXT NOT NULL,
  alias       TEXT NOT NULL,
  key_id      TEXT NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
  create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL,
  PRIMARY KEY (project_id, alias)
) STRICT;
CREATE INDEX key_aliases_by_key ON key_aliases (key_id, alias);
`,
  // 9: key tags (issue 20). A tag key is unique on its key (at most 10 tags per key, counted by the
  // repository); tags go with their key. BINARY collation: keys and values compare and sort by
  // code point, as PostgreSQL's COLLATE "C" does. The second index serves the tag searches.
  `
CREATE TABLE key_tags (
  key_id    TEXT NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
  tag_key   TEXT NOT NULL,
  tag_value TEXT NOT NULL,
  PRIMARY KEY (key_id, tag_key)
) STRICT;
CREATE INDEX key_tags_by_tag ON key_tags (tag_key, tag_value);
`,
  // 10: imported key material (origin external; src/domain/imports.ts): the expiry of the wrapping
  // key pair the last import token names, the HSM's fingerprint of the first material imported
  // (never the material), whether the token holds it now, and when it expires. One row per key.
  `
CREATE TABLE key_imports (
  key_id              TEXT PRIMARY KEY REFERENCES keys (key_id) ON DELETE CASCADE,
  wrapping_expires_at INTEGER,
  fingerprint         BLOB,
  imported            INTEGER NOT NULL DEFAULT 0,
  material_expires_at INTEGER
) STRICT;
CREATE INDEX key_imports_wrapping ON key_imports (wrapping_expires_at) WHERE wrapping_expires_at IS NOT NULL;
CREATE INDEX key_imports_material ON key_imports (material_expires_at) WHERE material_expires_at IS NOT NULL;
`,
];

/** Opens the database, migrated to this release's schema. */
export function openDatabase(file: string): Database.Database {
  // 0600, and so its -wal and -shm: it holds sealed secret keys and token hashes (file-modes.ts).
  createPrivateFile(file);
  const db = connect(file);
  try {
    migrate(db);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/** One more connection to a database openDatabase has opened (and migrated): the same settings, no migration. */
export function openConnection(file: string): Database.Database {
  return connect(file);
}

function connect(file: string): Database.Database {
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    // FULL: what the API reported as done survives a power cut, not only a process crash.
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

function migrate(db: Database.Database): void {
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > MIGRATIONS.length) {
      throw new Error(`the database's schema (${version}) is newer than this service's (${MIGRATIONS.length})`);
    }
    for (let next = version; next < MIGRATIONS.length; next++) {
      db.exec(MIGRATIONS[next]!);
      db.pragma(`user_version = ${next + 1}`);
    }
  }).immediate();
}
