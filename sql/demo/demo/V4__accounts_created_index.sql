-- pgstep: no-transaction
-- Built without blocking writes. An interrupted build leaves an invalid index behind, which
-- CREATE INDEX CONCURRENTLY IF NOT EXISTS would skip; dropping it first makes the next run
-- build it again. The drop only runs while the step is not recorded.
DROP INDEX CONCURRENTLY IF EXISTS app.accounts_created_at_idx;
CREATE INDEX CONCURRENTLY accounts_created_at_idx ON app.accounts (created_at);
