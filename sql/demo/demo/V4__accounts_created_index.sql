-- pgstep: no-transaction
-- Built without blocking writes; IF NOT EXISTS lets a later run finish an interrupted one.
CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_created_at_idx ON app.accounts (created_at);
