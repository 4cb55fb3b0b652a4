"""Database account SQL as text: MariaDB/MySQL and PostgreSQL, for both backends.

Pure functions, no client run here. The Linux target runs this text with ``mysql``/``psql`` (``accounts``);
the Windows deploy imports the same builders and ships their text in its PowerShell scripts, with
``@PASSWORD@`` and ``@SEEDER_PASSWORD@`` as ``password_sql``/``seeder_password_sql`` (the script puts the
quoted passwords in on the host), so both platforms create the same accounts.
"""

from __future__ import annotations

# The app connects over TCP to 127.0.0.1, tools over the socket as localhost: one account for each.
MYSQL_HOSTS = ("localhost", "127.0.0.1")


def mysql_string(value: str) -> str:
    """A MariaDB/MySQL string literal (backslash escapes are on by default)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def mysql_identifier(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def pg_string(value: str) -> str:
    """A PostgreSQL string literal (standard_conforming_strings: only quotes are doubled)."""
    return "'" + value.replace("'", "''") + "'"


def pg_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- least privilege: the app's account reads, a separate seeding account writes ----------------


def seeder_name(user: str) -> str:
    """The seeding account of app account ``user``: owns the schema, writes the course data."""
    return f"{user}_seed"


def mysql_split_accounts_sql(database: str, user: str, password_sql: str, seeder_password_sql: str) -> str:
    """The database, the app's account with SELECT only on it, and the seeding account with all rights
    on it (both hosts each). An app account that had more (older deploys granted ALL) loses it: the
    first GRANT makes sure a grant exists for REVOKE to remove (MariaDB refuses to revoke nothing)."""
    db = mysql_identifier(database)
    seeder = seeder_name(user)
    statements = [f"CREATE DATABASE IF NOT EXISTS {db} CHARACTER SET utf8mb4;"]
    for host in MYSQL_HOSTS:
        app = f"{mysql_string(user)}@{mysql_string(host)}"
        seed = f"{mysql_string(seeder)}@{mysql_string(host)}"
        statements += [
            f"CREATE USER IF NOT EXISTS {app} IDENTIFIED BY {password_sql};",
            f"ALTER USER {app} IDENTIFIED BY {password_sql};",
            f"GRANT SELECT ON {db}.* TO {app};",
            f"REVOKE ALL PRIVILEGES ON {db}.* FROM {app};",
            f"GRANT SELECT ON {db}.* TO {app};",
            f"CREATE USER IF NOT EXISTS {seed} IDENTIFIED BY {seeder_password_sql};",
            f"ALTER USER {seed} IDENTIFIED BY {seeder_password_sql};",
            f"GRANT ALL PRIVILEGES ON {db}.* TO {seed};",
        ]
    statements.append("FLUSH PRIVILEGES;")
    return "\n".join(statements) + "\n"


def mysql_split_state_sql(database: str, user: str) -> str:
    """One row: database count (0/1); app account hosts; seeding account hosts; app hosts with SELECT
    on the database; app privileges other than SELECT on it (rows); seeding hosts with CREATE on it."""
    db = mysql_string(database)
    hosts = ", ".join(mysql_string(host) for host in MYSQL_HOSTS)

    def grantees(name: str) -> str:
        return ", ".join(mysql_string(f"'{name}'@'{host}'") for host in MYSQL_HOSTS)

    def privileges(name: str, condition: str, what: str = "COUNT(DISTINCT GRANTEE)") -> str:
        return (
            f" (SELECT {what} FROM information_schema.SCHEMA_PRIVILEGES WHERE TABLE_SCHEMA={db}"
            f" AND {condition} AND GRANTEE IN ({grantees(name)}))"
        )

    seeder = seeder_name(user)
    return (
        f"SELECT (SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME={db}),"
        f" (SELECT COUNT(*) FROM mysql.user WHERE User={mysql_string(user)} AND Host IN ({hosts})),"
        f" (SELECT COUNT(*) FROM mysql.user WHERE User={mysql_string(seeder)} AND Host IN ({hosts})),"
        + privileges(user, "PRIVILEGE_TYPE='SELECT'")
        + ","
        + privileges(user, "PRIVILEGE_TYPE<>'SELECT'", "COUNT(*)")
        + ","
        + privileges(seeder, "PRIVILEGE_TYPE='CREATE'")
        + ";\n"
    )


def pg_split_roles_sql(database: str, user: str, password_sql: str, seeder_password_sql: str) -> str:
    """Statements run in the ``postgres`` database: both roles (created or given their password again)
    and the database, owned by the seeding role."""
    app, seed, db = pg_identifier(user), pg_identifier(seeder_name(user)), pg_identifier(database)
    app_name, seed_name, db_name = pg_string(user), pg_string(seeder_name(user)), pg_string(database)
    return (
        "SELECT format('CREATE ROLE %I LOGIN', r) FROM unnest(ARRAY["
        f"{app_name}, {seed_name}]) AS r WHERE r NOT IN (SELECT rolname FROM pg_roles)\\gexec\n"
        f"ALTER ROLE {app} WITH LOGIN PASSWORD {password_sql};\n"
        f"ALTER ROLE {seed} WITH LOGIN PASSWORD {seeder_password_sql};\n"
        f"SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0', {db_name}, {seed_name},"
        f" 'UTF8') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = {db_name})\\gexec\n"
        f"ALTER DATABASE {db} OWNER TO {seed};\n"
    )


def pg_split_grants_sql(user: str) -> str:
    """Statements run in the app's database: tables an older deploy let the app's role own go to the
    seeding role; only the seeding role may create in ``public``; the app's role reads every table of
    ``public``, those there now and those the seeding role makes later (default privileges)."""
    app, seed = pg_identifier(user), pg_identifier(seeder_name(user))
    return (
        "SELECT format('ALTER TABLE public.%I OWNER TO %I', tablename, "
        f"{pg_string(seeder_name(user))}) FROM pg_tables WHERE schemaname = 'public'"
        f" AND tableowner = {pg_string(user)}\\gexec\n"
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC;\n"
        f"REVOKE ALL ON SCHEMA public FROM {app};\n"
        f"GRANT USAGE ON SCHEMA public TO {app};\n"
        f"GRANT USAGE, CREATE ON SCHEMA public TO {seed};\n"
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {app};\n"
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {app};\n"
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {seed} IN SCHEMA public GRANT SELECT ON TABLES TO {app};\n"
    )


def pg_split_state_sql(database: str, user: str) -> str:
    """One row ``a|b|c|d`` (``psql -At``, in the ``postgres`` database): the app's role, the seeding
    role, the database, and the seeding role owning it, each 1 or 0."""
    app, seed, db = pg_string(user), pg_string(seeder_name(user)), pg_string(database)
    return (
        f"SELECT (SELECT count(*) FROM pg_roles WHERE rolname = {app}),"
        f" (SELECT count(*) FROM pg_roles WHERE rolname = {seed}),"
        f" (SELECT count(*) FROM pg_database WHERE datname = {db}),"
        " (SELECT count(*) FROM pg_database d JOIN pg_roles r ON d.datdba = r.oid"
        f" WHERE d.datname = {db} AND r.rolname = {seed});\n"
    )


def pg_split_grants_state_sql(user: str) -> str:
    """One row ``a|b|c|d`` in the app's database: tables of ``public`` the app's role owns, tables it
    cannot SELECT, tables it may change, and whether it may CREATE in ``public`` (all 0 when right),
    then ``|e``: default privileges of the seeding role there (1 when set)."""
    app, seed = pg_string(user), pg_string(seeder_name(user))
    table = "format('%I.%I', schemaname, tablename)"  # valid for every row: AND has no order
    return (
        f"SELECT (SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = {app}),"
        " (SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        f" AND NOT has_table_privilege({app}, {table}, 'SELECT')),"
        " (SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        f" AND has_table_privilege({app}, {table}, 'INSERT, UPDATE, DELETE, TRUNCATE')),"
        f" has_schema_privilege({app}, 'public', 'CREATE')::int,"
        " (SELECT count(*) FROM pg_default_acl a JOIN pg_roles r ON a.defaclrole = r.oid"
        f" WHERE r.rolname = {seed} AND a.defaclobjtype = 'r');\n"
    )
