-- DocumentDB, the PostgreSQL extension FerretDB stores its data in. CASCADE brings
-- documentdb_core, pg_cron, vector, postgis, rum and tsm_system_rows. Creating it needs a
-- superuser: CNPG's enableSuperuserAccess and the <cluster>-superuser secret, connected to the
-- postgres database (cron.database_name).
CREATE EXTENSION IF NOT EXISTS documentdb CASCADE;
