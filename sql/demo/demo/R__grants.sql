-- Re-applied whenever this file changes.
GRANT USAGE ON SCHEMA app TO :"app_role";
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA app TO :"app_role";
