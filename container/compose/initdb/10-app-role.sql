-- Runs once, when the data volume is initialised: the role CloudNativePG creates for the
-- application, which sql/documentdb grants DocumentDB's admin role to.
CREATE ROLE app LOGIN;
