"""python -m flashfx.sandbox serve|migrate|seed|reset  (see flashfx/sandbox/README.md)."""

from __future__ import annotations

import argparse
import os
import signal
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flashfx.sandbox", description="The local FlashFX simulator."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve", help="migrate, seed if empty, and serve the API, control endpoints and console"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8001)
    serve.add_argument("--no-seed", action="store_true", help="start empty (tests)")
    commands.add_parser("migrate", help="create or update the sandbox's own database")
    commands.add_parser("seed", help="add the demo data unless it is there already")
    commands.add_parser("reset", help="wipe the sandbox's data and settings, then seed it again")
    args = parser.parse_args(argv)

    # Always the sandbox's settings, even when started from a back-office environment.
    os.environ["DJANGO_SETTINGS_MODULE"] = "flashfx.sandbox.settings"
    import django

    django.setup()
    from django.core.management import call_command

    from . import auth, seed

    call_command("migrate", interactive=False, verbosity=0)
    auth.ensure_api_user()
    if args.command == "seed" or (args.command == "serve" and not args.no_seed):
        seed.seed_demo()
    if args.command == "reset":
        seed.reset(with_demo_data=True)
    if args.command == "serve":
        return _serve(args.host, args.port)
    return 0


def _serve(host: str, port: int) -> int:
    from django.conf import settings

    from .clock import Clock
    from .conf import get_config
    from .server import make_server

    def stop(*_: object) -> None:
        raise KeyboardInterrupt  # SIGTERM (make run stopping, docker stop): stop as cleanly as Ctrl-C

    signal.signal(signal.SIGTERM, stop)
    server = make_server(host, port)
    clock = Clock(settings.SANDBOX_CLOCK_INTERVAL) if settings.SANDBOX_CLOCK_INTERVAL > 0 else None
    if clock:
        clock.start()
    config = get_config()
    base = f"http://{host}:{port}/"
    print(
        f"FlashFX sandbox: API {base}  console {base}console/  (database {settings.DB_PATH})",
        flush=True,
    )
    print(
        f"  API user {config['api_email']}; webhooks to {config['webhook_url'] or '(none)'}",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if clock:
            clock.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
