#!/usr/bin/env bash
# Start a real server on 127.0.0.1, run test_remote against it, stop the server (always).
# Usage: run-remote.sh webdav|s3 TEST_BINARY SERVERS_DIR
# Ports: UMBRAFS_TEST_WEBDAV_PORT, UMBRAFS_TEST_S3_PORT; by default the first free one from
# 18080 / 18480 (radosgw also takes the next 21 ports for its mon and osd).
set -euo pipefail
kind=${1:?usage: $0 webdav|s3 TEST_BINARY SERVERS_DIR}
bin=${2:?}; servers=${3:?}
work=$(mktemp -d "${TMPDIR:-/tmp}/umbrafs-remote-$kind.XXXXXX")
chmod 755 "$work"   # apache's workers (www-data) must reach the data below it

# Only what is set here counts: the CI machine's CA bundles would break nothing on plain http,
# but a stray profile, endpoint or token would change what the test signs.
unset AWS_CA_BUNDLE CURL_CA_BUNDLE AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN \
      AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE \
      AWS_DEFAULT_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY \
      UMBRAFS_WEBDAV_USER UMBRAFS_WEBDAV_PASSWORD UMBRAFS_S3_PART_SIZE
export HOME=$work/home                      # no ~/.netrc or ~/.aws of the machine
mkdir -p "$HOME"
export UMBRAFS_HTTP_RETRY_BASE_MS=5         # keep the outage test quick
export UMBRAFS_HTTP_TRIES=3

# The first port from $1 on with $2 free ports in a row (another test run may hold some).
free_ports() {
	local p=$1 span=$2 i
	for ((; p < $1 + 1000; p += span)); do
		for ((i = 0; i < span; i++)); do
			ss -ltnH "sport = :$((p + i))" | grep -q . && continue 2
		done
		echo "$p"
		return
	done
	echo "no $span free ports from $1" >&2
	return 1
}

case $kind in
webdav)
	port=${UMBRAFS_TEST_WEBDAV_PORT:-$(free_ports 18080 1)}
	export RUN_DIR=$work/run
	mkdir -p "$work/data/vault"
	trap '"$servers/stop-apache-webdav.sh" "$port" >/dev/null || true; rm -rf "$work"' EXIT
	started=$("$servers/start-apache-webdav.sh" "$port" "$work/data" test testpass)
	eval "$started"
	export UMBRAFS_WEBDAV_PASSWORD=$WEBDAV_PASS UMBRAFS_TEST_WEBDAV_USER=$WEBDAV_USER
	url="webdav://$WEBDAV_USER@127.0.0.1:$port/vault"
	;;
s3)
	port=${UMBRAFS_TEST_S3_PORT:-$(free_ports 18480 22)}
	trap '"$servers/stop-radosgw.sh" "$work/rgw" >/dev/null || true; rm -rf "$work"' EXIT
	t0=$(date +%s)
	started=$("$servers/start-radosgw.sh" "$port" "$work/rgw" TESTKEY TESTSECRET umbrafs-test) ||
		{ tail -n 20 "$work/rgw/log/start.err" >&2; exit 1; }
	eval "$started"
	echo "# radosgw started in $(( $(date +%s) - t0 )) s"
	export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$S3_SECRET_ACCESS_KEY
	export AWS_REGION=$S3_REGION AWS_ENDPOINT_URL=$S3_ENDPOINT
	export UMBRAFS_S3_PART_SIZE=$((5 << 20))  # 40 MiB test object = 8 parts
	url="s3://umbrafs-test/vault"
	;;
*) echo "unknown kind $kind" >&2; exit 2 ;;
esac
"$bin" "$url"
