"""The servers of the remote stores, for the end-to-end tests: Apache httpd with
mod_dav (WebDAV) and Ceph radosgw (S3 with real SigV4 checking) on 127.0.0.1,
started and stopped by the scripts of tests/servers/; a store (a fresh folder
or key prefix) per test; and a look at what a store holds (a local folder of
its objects) for the walker and the plaintext checks.

S3 is read and written with the small SigV4 client below (standard library
only), independent of umbrafs's own S3 code."""
import base64
import datetime
import hashlib
import hmac
import http.client
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

SERVERS = pathlib.Path(__file__).resolve().parent.parent / "servers"

WEBDAV_USER, WEBDAV_PASSWORD = "e2e", "e2e-dav-pass"
S3_ACCESS_KEY, S3_SECRET_KEY = "E2EACCESSKEY", "E2ESECRETKEY0123456789"
S3_REGION, S3_BUCKET = "us-east-1", "umbrafs-e2e"

# What the servers need installed (the start scripts would apt-get them; the
# tests skip instead, unless CI is set: scripts/setup-debian.sh installs them).
PROGRAMS = {
    "webdav": ["/usr/sbin/apache2", "/usr/lib/apache2/modules/mod_dav_fs.so", "/usr/bin/htpasswd"],
    "s3": ["/usr/bin/radosgw", "/usr/bin/ceph-mon", "/usr/bin/ceph-osd", "/usr/bin/ceph"],
}

# Only what the tests set counts: the machine's CA bundles, profiles, tokens
# or endpoints must not change what umbrafs signs or where it connects.
SCRUBBED_ENV = ("AWS_CA_BUNDLE", "CURL_CA_BUNDLE", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
                "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_DEFAULT_REGION",
                "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "UMBRAFS_WEBDAV_USER", "UMBRAFS_WEBDAV_PASSWORD", "UMBRAFS_S3_PART_SIZE",
                "UMBRAFS_HTTP_RETRY_BASE_MS", "UMBRAFS_HTTP_TRIES")


def missing_programs(kind):
    return [p for p in PROGRAMS[kind] if not os.path.exists(p)]


def ports_free(first, count):
    for port in range(first, first + count):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port_range(first, count):
    """The first port >= first with count free ports from it (other helpers
    may run their own servers on this machine)."""
    port = first
    while not ports_free(port, count):
        port += count
        if port > 60000:
            raise RuntimeError(f"no {count} free ports from {first}")
    return port


def run_script(script, *args, env=None, timeout=180):
    r = subprocess.run([str(SERVERS / script), *map(str, args)], capture_output=True,
                       text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError(f"{script} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)


def unique_name(hint):
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in hint)[:40]
    return f"{safe}-{uuid.uuid4().hex[:8]}"


class Server:
    """A server started once per test session; stop() always runs at its end."""
    kind = None

    def __init__(self, base):
        self.base = pathlib.Path(base)

    def env(self):
        """Variables every umbrafs process of the tests gets for this server."""
        return {}


# ------------------------------------------------------------------ WebDAV


class WebdavServer(Server):
    kind = "webdav"

    def start(self):
        self.port = free_port_range(int(os.environ.get("UMBRAFS_E2E_WEBDAV_PORT", 28080)), 1)
        self.datadir = self.base / "data"
        self.rundir = self.base / "run"
        env = dict(os.environ, RUN_DIR=str(self.rundir))
        run_script("start-apache-webdav.sh", self.port, self.datadir, WEBDAV_USER,
                   WEBDAV_PASSWORD, env=env, timeout=60)
        return self

    def stop(self):
        run_script("stop-apache-webdav.sh", self.port, env=dict(os.environ, RUN_DIR=str(self.rundir)))

    def env(self):
        return {"UMBRAFS_WEBDAV_PASSWORD": WEBDAV_PASSWORD}

    def request(self, method, path, body=None, headers=()):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            auth = f"{WEBDAV_USER}:{WEBDAV_PASSWORD}".encode()
            h = {"Authorization": "Basic " + base64.b64encode(auth).decode(), **dict(headers)}
            c.request(method, urllib.parse.quote(path), body=body, headers=h)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def new_store(self, hint, workdir):
        name = unique_name(hint)
        status, body = self.request("MKCOL", f"/{name}/")
        assert status == 201, f"MKCOL /{name}/: {status} {body[:200]!r}"
        return WebdavStore(self, name, workdir)


class RemoteStore:
    """A store on a server: str() is the STORE argument of umbrafs. workdir
    (the test's tmp_path) holds its cache folder and copies of its objects."""

    def __init__(self, server, name, workdir):
        self.server = server
        self.name = name
        self.workdir = pathlib.Path(workdir)
        self.cache_dir = self.workdir / f"cache-{name}"

    def __str__(self):
        return self.url()

    def __repr__(self):
        return f"<{self.server.kind} store {self.url()}>"


class WebdavStore(RemoteStore):
    def url(self, port=None):
        return f"webdav://{WEBDAV_USER}@127.0.0.1:{port or self.server.port}/{self.name}"

    def through(self, port):
        """(URL, extra environment) to reach this store through a proxy on port."""
        return self.url(port), {}

    def local_view(self):
        """Apache serves a folder of this machine: the store's objects as they are."""
        return self.server.datadir / self.name

    def upload_tree(self, src):
        dst = self.server.datadir / self.name
        shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
        subprocess.run(["chown", "-R", "www-data:www-data", str(dst)], check=True)


# ---------------------------------------------------------------------- S3


def sigv4_headers(method, host, path, query, payload, access_key, secret_key, region):
    """Headers of an AWS Signature V4 signed S3 request (path and query as sent)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload_hash = hashlib.sha256(payload).hexdigest()
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='~')}={urllib.parse.quote(v, safe='~')}"
        for k, v in sorted(query.items()))
    headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join([method, path, canonical_query,
                           "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
                           signed, payload_hash])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret_key).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                                f"SignedHeaders={signed}, Signature={signature}")
    return headers, canonical_query


class S3Server(Server):
    kind = "s3"

    def start(self):
        # radosgw takes PORT, its mon PORT+1 and its OSD PORT+2..PORT+21
        self.port = free_port_range(int(os.environ.get("UMBRAFS_E2E_S3_PORT", 28480)), 22)
        self.datadir = self.base / "rgw"
        try:
            run_script("start-radosgw.sh", self.port, self.datadir, S3_ACCESS_KEY, S3_SECRET_KEY,
                       S3_BUCKET, timeout=150)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            why = f"{e}\n{self.log_tails()}"
            self.stop()  # whatever of mon/osd/rgw did start
            raise RuntimeError(why) from None
        return self

    def log_tails(self, lines=8):
        tails = []
        for log in sorted((self.datadir / "log").glob("*")):
            text = log.read_text(errors="replace").splitlines()
            tails.append(f"--- {log.name}:\n" + "\n".join(text[-lines:]))
        return "\n".join(tails)

    def stop(self):
        run_script("stop-radosgw.sh", self.datadir)

    def endpoint(self, port=None):
        return f"http://127.0.0.1:{port or self.port}"

    def env(self):
        return {"AWS_ACCESS_KEY_ID": S3_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
                "AWS_REGION": S3_REGION, "AWS_ENDPOINT_URL": self.endpoint()}

    def request(self, method, key="", query=None, body=b""):
        """One signed request to the bucket; (status, body bytes)."""
        query = query or {}
        path = urllib.parse.quote(f"/{S3_BUCKET}/{key}", safe="/~")
        host = f"127.0.0.1:{self.port}"
        headers, qs = sigv4_headers(method, host, path, query, body, S3_ACCESS_KEY,
                                    S3_SECRET_KEY, S3_REGION)
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            c.request(method, path + ("?" + qs if qs else ""), body=body or None,
                      headers=headers)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def keys(self, prefix):
        """Every key under prefix (ListObjectsV2, all pages)."""
        ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
        keys, token = [], None
        while True:
            query = {"list-type": "2", "prefix": prefix}
            if token:
                query["continuation-token"] = token
            status, body = self.request("GET", query=query)
            assert status == 200, f"list {prefix}: {status} {body[:300]!r}"
            root = ET.fromstring(body)
            keys += [e.findtext(f"{ns}Key") for e in root.iter(f"{ns}Contents")]
            if root.findtext(f"{ns}IsTruncated") != "true":
                return keys
            token = root.findtext(f"{ns}NextContinuationToken")

    def get(self, key):
        status, body = self.request("GET", key)
        assert status == 200, f"GET {key}: {status} {body[:300]!r}"
        return body

    def put(self, key, data):
        status, body = self.request("PUT", key, body=data)
        assert status == 200, f"PUT {key}: {status} {body[:300]!r}"

    def new_store(self, hint, workdir):
        return S3Store(self, unique_name(hint), workdir)


class S3Store(RemoteStore):
    def url(self):
        return f"s3://{S3_BUCKET}/{self.name}"

    def through(self, port):
        """(URL, extra environment) to reach this store through a proxy on port:
        the client signs the proxy's host:port, which the proxy passes on."""
        return self.url(), {"AWS_ENDPOINT_URL": self.server.endpoint(port)}

    def local_view(self):
        """A fresh local folder of every object of the store, read from the server
        (folder markers "x/" become folders)."""
        dst = pathlib.Path(tempfile.mkdtemp(dir=self.workdir, prefix="s3-objects-"))
        prefix = self.name + "/"
        for key in self.server.keys(prefix):
            rel = key[len(prefix):]
            target = dst / rel
            if rel.endswith("/") or not rel:
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.server.get(key))
        return dst

    def upload_tree(self, src):
        src = pathlib.Path(src)
        for root, dirs, files in os.walk(src):
            rel = pathlib.Path(root).relative_to(src)
            for d in dirs:
                self.server.put(f"{self.name}/{(rel / d).as_posix()}/", b"")
            for f in files:
                self.server.put(f"{self.name}/{(rel / f).as_posix()}",
                                (pathlib.Path(root) / f).read_bytes())


SERVER_CLASSES = {"webdav": WebdavServer, "s3": S3Server}
