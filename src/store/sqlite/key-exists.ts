/**
 * The deletion rule (src/domain/keys.ts, isDestroyed) in this store's SQL, the one place it is
 * written here: a key exists unless its deletion window has ended. One bound parameter: now, in
 * ms. It names the keys table's columns (a query that joins keys gives it no other alias). The
 * store contract suite holds it to isDestroyed at the boundary (now == scheduled_deletion_date).
 */
export const KEY_EXISTS = "NOT (key_state = '4' AND scheduled_deletion_date <= ?)";
