#!/usr/bin/env bash
# Runs tests/boto3/test_*.py (the DynamoDB and the S3 endpoint) against the release `nimbus` binary with boto3
# installed into a venv under target/. Skips (exit 0, with a message) when python3 is
# missing or pip cannot reach the package index; any test failure fails the script.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v python3 >/dev/null; then
    echo "boto3 tests SKIPPED: python3 is not installed"
    exit 0
fi
venv=target/boto3-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import boto3" 2>/dev/null; then
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        echo "boto3 tests SKIPPED: python3 cannot create a venv (install python3-venv)"
        exit 0
    fi
    if ! "$venv/bin/pip" install --quiet --disable-pip-version-check "boto3>=1.28,<2" 2>target/boto3-pip.log; then
        echo "boto3 tests SKIPPED: pip could not install boto3 (no network?); see target/boto3-pip.log"
        exit 0
    fi
fi
cargo build --release --quiet --bin nimbus
for test in tests/boto3/test_*.py; do
    NIMBUS_BIN="$PWD/target/release/nimbus" "$venv/bin/python" "$test"
done
