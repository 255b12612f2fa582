-- The application role, named by the app_role variable. A DO body is dollar-quoted, so the
-- variable reaches it through a transaction-local setting instead of substitution.
SELECT pg_catalog.set_config('pgstep.app_role', :'app_role', true);

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles
                   WHERE rolname = pg_catalog.current_setting('pgstep.app_role')) THEN
        EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN',
                                  pg_catalog.current_setting('pgstep.app_role'));
    END IF;
END
$$;
