"""Our own idempotent operations for Linux targets, in pyinfra's style: facts in, commands or
``host.noop`` out. Each exists because the stock operation either always reports a change or
cannot keep a secret off the command line (see docs/architecture.md and platform notes)."""
