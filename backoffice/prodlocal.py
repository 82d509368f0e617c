"""`make prod-local`: the production processes and settings on this machine, without Docker.

    python -m backoffice.prodlocal

The same processes as docker-compose.yml (Procfile.prod: gunicorn serving the app and its
static files, a Celery worker, Celery beat, and the FlashFX sandbox standing in for FlashFX)
with DEBUG off, against the local PostgreSQL and Redis. Before starting them it:

- writes `<dir>/env` on the first run (dir: PROD_LOCAL_DIR, default var/prod-local) with new
  random secrets (SECRET_KEY, AUDIT_HMAC_KEY, the FlashFX password and webhook secret the sandbox
  shares), readable by this user only, and reuses it afterwards;
- makes a self-signed certificate for 127.0.0.1 and localhost, so gunicorn serves HTTPS and the
  production cookie and HSTS settings hold as they are (the sandbox trusts it for its webhooks);
- creates the database if it does not exist, migrates, collects the static files (hashed and
  compressed) and runs `check --deploy`, which must report nothing.

The environment wins over the env file: DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/flashfx_prod_local), REDIS_URL (default
redis://127.0.0.1:6379/1), PROD_LOCAL_WEB_PORT (8443), PROD_LOCAL_SANDBOX_PORT (8011),
WORKER_CONCURRENCY (2). `python -m backoffice.prodlocal manage <command>` runs a management
command in the same environment, e.g. the first member:
`python -m backoffice.prodlocal manage create_staff alice --role admin`. Ctrl-C stops
everything cleanly (backoffice/devrun.py).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

DEFAULTS = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/flashfx_prod_local",
    "REDIS_URL": "redis://127.0.0.1:6379/1",
    "PROD_LOCAL_WEB_PORT": "8443",
    "PROD_LOCAL_SANDBOX_PORT": "8011",
    "WORKER_CONCURRENCY": "2",
}


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def secrets_file(directory: Path) -> dict[str, str]:
    """The installation's secrets, made once and kept (0600)."""
    path = directory / "env"
    if not path.exists():
        password = secrets.token_urlsafe(24)
        values = {
            "SECRET_KEY": secrets.token_urlsafe(50),
            "AUDIT_HMAC_KEY": secrets.token_urlsafe(32),
            "FLASHFX_PASSWORD": password,
            "SANDBOX_API_PASSWORD": password,  # the sandbox's API user (flashfx/sandbox/settings.py)
            "FLASHFX_WEBHOOK_SECRET": secrets.token_urlsafe(32),  # the sandbox signs with it too
            "SANDBOX_JWT_SECRET": secrets.token_urlsafe(32),
        }
        text = "# make prod-local's secrets, made on its first run. Delete to make new ones.\n"
        text += "".join(f"{k}={v}\n" for k, v in values.items())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
    return read_env_file(path)


def certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (made once, valid a year)."""
    cert, key = directory / "tls.crt", directory / "tls.key"
    if cert.exists() and key.exists():
        return cert, key
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert, key


def environment(directory: Path) -> dict[str, str]:
    """What every process gets: defaults, then the secrets file, then our own environment."""
    env = {**DEFAULTS, **secrets_file(directory)}
    env.update({k: v for k, v in os.environ.items() if k in DEFAULTS or k in env})
    cert, key = certificate(directory)
    web, sandbox = env["PROD_LOCAL_WEB_PORT"], env["PROD_LOCAL_SANDBOX_PORT"]
    env.update(
        {
            "DEBUG": "false",
            "LOG_FORMAT": os.environ.get("LOG_FORMAT", "json"),
            "VAR_DIR": str(directory),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "FLASHFX_API_URL": f"http://127.0.0.1:{sandbox}/",
            "FLASHFX_EMAIL": "api@sandbox.local",
            "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{web} --certfile {cert} --keyfile {key}",
            "SANDBOX_PORT": sandbox,
            "SANDBOX_DB_PATH": str(directory / "sandbox.sqlite3"),
            "SANDBOX_WEBHOOK_URL": f"https://127.0.0.1:{web}/webhooks/flashfx/",
            # The sandbox's webhook sender (httpx) trusts our self-signed certificate. Only the
            # sandbox talks HTTPS to us; FlashFX's URL here is the sandbox's plain one.
            "SSL_CERT_FILE": str(cert),
        }
    )
    return {**os.environ, **env}


def create_database(url: str) -> None:
    """CREATE DATABASE when it does not exist (PostgreSQL; nothing to do for SQLite)."""
    import dj_database_url
    import psycopg
    from psycopg import sql

    config = dj_database_url.parse(url)
    if "postgresql" not in config["ENGINE"]:
        return
    params = {
        "host": config["HOST"] or None,
        "port": config["PORT"] or None,
        "user": config["USER"] or None,
        "password": config["PASSWORD"] or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))
            print(f"Created database {config['NAME']}")


def prepare(env: dict[str, str]) -> None:
    create_database(env["DATABASE_URL"])
    manage = [PYTHON, str(BASE_DIR / "manage.py")]
    for command in (
        ["migrate", "--noinput"],
        ["collectstatic", "--noinput", "--verbosity", "0"],
        ["check", "--deploy", "--fail-level", "WARNING"],
    ):
        subprocess.run([*manage, *command], env=env, cwd=BASE_DIR, check=True)  # noqa: S603 (ours)


def main(argv: list[str]) -> int:
    directory = Path(os.environ.get("PROD_LOCAL_DIR", BASE_DIR / "var" / "prod-local")).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    env = environment(directory)
    if argv[1:2] == ["manage"]:  # a management command in the same environment
        manage = [PYTHON, str(BASE_DIR / "manage.py"), *argv[2:]]
        # The operator's own management command, run as they typed it (no shell).
        return subprocess.run(manage, env=env, cwd=BASE_DIR).returncode  # noqa: S603
    try:
        prepare(env)
    except subprocess.CalledProcessError as exc:
        print(f"make prod-local: {' '.join(exc.cmd[2:4])} failed (status {exc.returncode})")
        return 1
    web = env["PROD_LOCAL_WEB_PORT"]
    print(
        f"\n  Back-office   https://127.0.0.1:{web}/  (self-signed certificate: {directory}/tls.crt)"
        f"\n  FlashFX       the sandbox at {env['FLASHFX_API_URL']}"
        "\n  First member  .venv/bin/python -m backoffice.prodlocal manage create_staff <name> "
        "--role admin\n  Ctrl-C stops everything.\n",
        flush=True,
    )
    os.environ.clear()
    os.environ.update(env)
    from backoffice import devrun

    return devrun.main(["devrun", str(BASE_DIR / "Procfile.prod")])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
