"""Windows lab machines: defaults for the hosts of the `windows` group.

Every `@winssh/HOST` of inventory.py is put in this group by the connector (a `windows = [...]` list in
inventory.py is the same group), so these values apply to Windows hosts only, over group_data/all.py.
The keys are the ones of group_data/all.py (Contract 3 of docs/architecture.md); the Windows deploy is
described in docs/windows.md. Uncomment a line to change it for every Windows host; set the same key in
a host's data in inventory.py to change it for one host.
"""

# A Windows host, whatever all.py says (the @winssh connector implies it too).
impots_os = "windows"

# Where the app, its venv and its instance folder go. Kept here so that an install root set for Linux
# in all.py never reaches a Windows host. No space in the path keeps Apache and mod_wsgi simple.
impots_install_root = "C:/impots"

# --- Which Apache ---
# "laragon": Laragon's Apache (<laragon>/bin/apache/httpd-*: the version Laragon's menu selected, else
# the newest), vhosts in <laragon>/etc/apache2/sites-enabled, Laragon's own certificate
# (<laragon>/etc/ssl/laragon.crt) unless impots_tls gives files.
# "apache-lounge": the Apache Lounge zip unpacked in C:/Apache24 (usually the Apache2.4 service),
# vhosts in conf/extra included from httpd.conf; with impots_tls "local-ca" a CA and certificate are
# made on the controller (.artifacts/<host>/impots-ca.pem is the CA to trust).
# impots_windows_layout = "laragon"
# impots_laragon_root = "C:/laragon"
# Another Apache folder than the detected one (it must have bin/httpd.exe, include/ and lib/).
# impots_apache_root = None

# Trust the deploy's own CA (impots_tls "local-ca" when the deploy makes one: .artifacts/<host>/impots-ca.pem)
# in the host's LocalMachine Root store, so browsers on the machine open the sites without a warning.
# False: leave the store alone.
# impots_windows_trust_ca = True
# Windows accounts that run Laragon's Apache (Laragon starts it as the user who runs Laragon, not as a
# service) and must read the app, its venv and its instance folder: "DOMAIN\\user", or ".\\user" for a
# local account.
# impots_windows_apache_accounts = ["LAB\\student", ".\\labuser"]

# --- Which Python builds the venv ---
# None: the newest 64-bit Python 3.11+ installed by python.org's installer (Apache must be 64-bit too)
# (install "for all users": C:/Program Files/Python3xx). Or a path such as
# "C:/Program Files/Python311/python.exe".
# impots_windows_python = None

# --- Network ---
# The hosts-file block (C:/Windows/System32/drivers/etc/hosts) maps every site name to this address.
# impots_hosts_address = "127.0.0.1"
# Used for the `Listen ...:443` line the deploy adds when httpd.conf has none (Apache Lounge). Port 80
# and Laragon's 443 keep the Listen lines of their own httpd.conf.
# impots_listen_address = "127.0.0.1"

# mod_wsgi runs in embedded mode on Windows (no daemon mode there): impots_daemon_processes and
# impots_daemon_threads are not used on Windows hosts.

# --- Databases (MariaDB/MySQL, PostgreSQL, Redis) ---
# The deploy does not install them: Laragon ships MySQL/MariaDB (and optionally PostgreSQL and Redis);
# on Apache Lounge hosts install MariaDB/MySQL and PostgreSQL (their services) yourself. It creates the
# database and user of impots_database on each DBMS a site uses, with the password of the secrets file,
# then runs the app's seed. It connects as these administrator accounts (defaults: MySQL "root" without
# a password, as Laragon has it; PostgreSQL "postgres" without a password).
# Give administrator passwords in the controller's environment, never here (this file is in git):
#   IMPOTS_MYSQL_ADMIN_PASSWORD, IMPOTS_PGRES_ADMIN_PASSWORD (the password chosen in the installer).
# impots_mysql_admin_user = "root"
# impots_pgres_admin_user = "postgres"
# Redis (sessions, impots_with_redissession): on Laragon, <laragon>/bin/redis/*/redis-server.exe is
# started when nothing answers on 127.0.0.1:6379; elsewhere Redis (or Memurai) must already run.
