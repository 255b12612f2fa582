-- pgstep: rerun-when SELECT pg_catalog.string_agg(name || '=' || default_version, ',' ORDER BY name) FROM pg_catalog.pg_available_extensions WHERE name IN ('documentdb_core', 'documentdb')
-- Runs again whenever the image brings another default version of the extensions, not on
-- every sync. documentdb_core is not updated by documentdb's own update, so it goes first.
ALTER EXTENSION documentdb_core UPDATE;
ALTER EXTENSION documentdb UPDATE;
