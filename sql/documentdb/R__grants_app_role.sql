-- What FerretDB's application role needs: DocumentDB's admin role, and the right to set
-- documentdb.maxuserlimit. Runs again when this file or the app_role variable changes.
GRANT documentdb_admin_role TO :"app_role";
GRANT SET ON PARAMETER documentdb.maxuserlimit TO :"app_role";
