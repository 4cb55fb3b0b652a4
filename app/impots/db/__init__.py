"""Admin data in MariaDB/MySQL (PyMySQL) or PostgreSQL (psycopg2): schema, seed and the read DAO."""
