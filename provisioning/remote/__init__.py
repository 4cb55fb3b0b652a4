"""Code that runs ON a Linux target, as root, with the target's system ``python3`` (3.9 or newer).

Standard library only: it runs before the app's venv exists. Shipped as one zipapp built on the
controller (``provisioning.remote_call.build_helper``) and called through the typed functions of
``provisioning.remote_call``; never imported by the deploy except for ``sql`` (the Windows backend
builds the same account SQL from it).

One module per concern: ``secrets_file`` (the app's secrets), ``sql`` (account SQL, pure text),
``accounts`` (running ``mysql``/``psql``), ``seeder`` (the seeding account and the seed run with it),
``redis_config`` (Redis password file, include, restart), ``apache`` (configuration transaction),
``smoke`` (HTTPS check of a site). Functions return results and raise ``errors.RemoteError``; only
``__main__`` prints and exits.
"""
