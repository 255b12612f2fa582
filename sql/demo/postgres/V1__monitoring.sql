-- Cluster-wide tooling lives in the postgres database, as CloudNativePG's postInitSQL puts it:
-- here pg_stat_statements, from PostgreSQL's contrib package.
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
