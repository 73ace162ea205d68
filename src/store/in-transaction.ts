import type { MetadataStore, Repositories } from '../domain/repositories';

/**
 * A store whose repositories are those of an open transaction, `tx` of outer.withTransaction:
 * services built over it do all their reads and writes in that transaction, and their own
 * withTransaction joins it instead of opening another (which the seam does not nest). The
 * command-line tool runs an audited change so, with its audit record written before the commit
 * (src/cli/cli-audit.ts). The change feed, leases and locks stay the outer store's.
 */
export function storeInTransaction(outer: MetadataStore, tx: Repositories): MetadataStore {
  return {
    kind: outer.kind,
    keys: tx.keys,
    grants: tx.grants,
    aliases: tx.aliases,
    rotations: tx.rotations,
    credentials: tx.credentials,
    auditCheckpoints: tx.auditCheckpoints,
    tags: tx.tags,
    imports: tx.imports,
    withTransaction: (work) => work(tx),
    changes: outer.changes,
    leases: outer.leases,
    bootstrap: outer.bootstrap,
    ping: () => outer.ping(),
    observe: (observer) => outer.observe(observer),
    stats: () => outer.stats(),
    close: () => outer.close(),
  };
}
