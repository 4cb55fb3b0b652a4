"""Every knob of the impots deploy (Contract 3 of docs/architecture.md), with its default.

Uncomment a line to change it for every host; set the same key in inventory.py's host data to
change it for one host. Values are checked before anything runs: a mistake stops the run with
"<host>: <key>: <problem>".
"""

# --- Sites: one Apache vhost each, HTTPS on 443 (HTTP on 80 redirects), name in the hosts file ---
# kind "impots" needs dbms "mysql" (MariaDB/MySQL) or "pgres" (PostgreSQL); "date-time" is the small
# date/time example. alias is the WSGIScriptAlias mount point: "/" or "/path" (e.g. "/show-date-time").
# impots_sites = [
#     {"name": "flask-impots-withmysql", "kind": "impots", "dbms": "mysql", "alias": "/impots"},
#     {"name": "flask-impots-withpgres", "kind": "impots", "dbms": "pgres", "alias": "/impots"},
#     {"name": "date-time-server", "kind": "date-time", "alias": "/"},
# ]

# --- The application (written to <install_root>/instance/impots.json) ---
# URL prefix of the app's routes after the alias: "" or "/segment[/segment]".
# impots_prefix_url = "/do"
# CSRF token as a last URL segment (spec §5.3).
# impots_with_csrftoken = False
# Sessions kept in Redis (127.0.0.1:6379) rather than in signed cookies.
# impots_with_redissession = True
# Application users: passlib pbkdf2_sha256 hashes only, never clear passwords. Make one with
#   .venv/bin/python -c "from passlib.hash import pbkdf2_sha256; print(pbkdf2_sha256.hash('secret'))"
# impots_users = [{"login": "admin", "password_hash": "$pbkdf2-sha256$29000$..."}]  # default: admin/admin
# Administrator alert mail (spec §8.2). With a "user", give its password in IMPOTS_SMTP_PASSWORD.
# impots_admin_mail = {
#     "smtp_server": "localhost", "smtp_port": 25, "from": "guest@localhost.com",
#     "to": "guest@localhost.com", "subject": "plantage du serveur de calcul d'impôts",
#     "tls": False, "user": None,
# }

# Largest request body the app accepts, in bytes (1024 to 10485760); a bigger one gets HTTP 413.
# Apache's own limit (LimitRequestBody) is derived from it.
# impots_max_request_bytes = 65536

# --- mod_wsgi ---
# Version built into the venv: "6.1.1", or "5.0.2" (the 5.0 line) for a host where 6.x does not build.
# impots_mod_wsgi_version = "6.1.1"
# Daemon mode (Linux): processes and threads per site.
# impots_daemon_processes = 2
# impots_daemon_threads = 15

# Extra Apache directives added as they are to every HTTPS vhost (beyond Contract 3; `apachectl
# configtest` runs before any reload, and a refused configuration is rolled back).
# impots_vhost_extra = ["Header always set X-Lab-Room B12"]

# --- Databases: the same database and user names on MariaDB and PostgreSQL ---
# impots_database = {"name": "dbimpots-2019", "user": "admimpots"}

# --- Secrets: never write real values here (this file is in git) ---
# Taken from the environment (IMPOTS_MYSQL_PASSWORD, IMPOTS_PGRES_PASSWORD, IMPOTS_SECRET_KEY,
# IMPOTS_SMTP_PASSWORD) when set; otherwise generated once on the target and kept in
# <install_root>/instance/secrets.json (mode 0640, root and the Apache group only).
# impots_mysql_password = None
# impots_pgres_password = None
# impots_secret_key = None
# impots_smtp_password = None

# --- TLS: a local CA made on the target (its certificate is fetched to .artifacts/<host>/impots-ca.pem
# so clients can verify), or your own files (controller paths; the certificate must name every site) ---
# impots_tls = {"source": "local-ca"}
# impots_tls = {"source": "files", "cert": "certs/lab.pem", "key": "certs/lab.key", "ca": "certs/ca.pem"}
# Strict-Transport-Security max-age sent by every HTTPS vhost, in seconds (0 tells browsers to forget it).
# impots_hsts_max_age = 31536000
# Seconds a run waits while another deploy holds the host (Linux), before it stops naming that run.
# impots_lock_wait = 120
# Linux: Redis memory limit in MB (sessions, throttle counters; the least recently used expiring keys go).
# impots_redis_maxmemory_mb = 64

# --- Network ---
# Address Apache listens on (80 and 443); "*" for every interface (to reach the sites from other machines).
# impots_listen_address = "127.0.0.1"
# Address the hosts-file block maps every site name to.
# impots_hosts_address = "127.0.0.1"

# --- Where things go on the target ---
# impots_install_root = "/opt/impots"            # Linux; "C:/impots" on Windows

# --- Windows only (see provisioning/windows/) ---
# impots_os = "linux"                            # "windows" for Windows hosts (set in inventory.py)
# impots_windows_layout = "laragon"              # or "apache-lounge"
# impots_laragon_root = "C:/laragon"
# impots_apache_root = None                      # override the detected Apache folder
# impots_windows_python = None                   # Python to build the venv from (else detected)
# More Windows keys (CA trust, Apache's accounts, database administrators): see group_data/windows.py.
