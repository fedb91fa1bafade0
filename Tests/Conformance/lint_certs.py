#!/usr/bin/env python3
"""Checks PEM certificate chains the way the peers check theirs: `openssl verify` against the
root, and pkilint's RFC 5280 linters (`lint_pkix_cert` on every certificate and
`lint_pkix_signer_signee_cert_chain` on every issuer/subject pair).

usage: lint_certs.py FILE.pem [FILE.pem ...]
Each file is one chain: leaf first, root last (the root may be omitted when the leaf is the root).
The chain is verified as of the leaf's issuance (its notBefore plus meshd's 60 s backdating).
Prints a JSON object {file: [problems]}; findings at WARNING or above count, except pkilint's
false `pkix.invalid_uri_syntax` on spiffe:// URIs. Exit status: 0 when no file has a problem.
"""
import contextlib
import datetime
import io
import json
import os
import subprocess
import sys
import tempfile

from pkilint.bin import lint_pkix_cert, lint_pkix_signer_signee_cert_chain

ALLOWED = {"pkix.invalid_uri_syntax"}


def split_pem(text):
    blocks, current = [], []
    for line in text.splitlines():
        current.append(line)
        if line.startswith("-----END"):
            blocks.append("\n".join(current) + "\n")
            current = []
    return blocks


def run_linter(main, args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["lint", "-s", "WARNING", "-f", "JSON", *args])
    findings = []
    for result in json.loads(out.getvalue())["results"]:
        for finding in result.get("finding_descriptions", []):
            code = finding.get("code", "")
            if code in ALLOWED and "spiffe://" in json.dumps(result):
                continue
            findings.append(f"{code} ({finding.get('severity')}) at {result.get('node_path')}: {finding.get('message') or ''}".strip())
    return findings


def check(path, scratch):
    with open(path) as handle:
        blocks = split_pem(handle.read())
    if not blocks:
        return ["no certificate"]
    files = []
    for index, block in enumerate(blocks):
        name = os.path.join(scratch, f"{os.path.basename(path)}.{index}.pem")
        with open(name, "w") as handle:
            handle.write(block)
        files.append(name)
    problems = []
    root = files[-1]
    untrusted = os.path.join(scratch, os.path.basename(path) + ".untrusted.pem")
    with open(untrusted, "w") as handle:
        handle.write("".join(blocks[1:-1]) if len(blocks) > 2 else "")
    command = ["openssl", "verify", "-CAfile", root, "-attime", str(issued_at(files[0]))]
    if len(blocks) > 2:
        command += ["-untrusted", untrusted]
    command.append(files[0])
    verified = subprocess.run(command, capture_output=True, text=True)
    if verified.returncode != 0:
        problems.append("openssl verify: " + (verified.stdout + verified.stderr).strip())
    for index, name in enumerate(files):
        problems += [f"cert {index}: {finding}" for finding in run_linter(lint_pkix_cert.main, [name])]
        if index + 1 < len(files):
            problems += [f"chain {index + 1}->{index}: {finding}" for finding in
                         run_linter(lint_pkix_signer_signee_cert_chain.main, [files[index + 1], name])]
    return problems


def issued_at(leaf):
    """The moment the leaf was issued: meshd backdates notBefore by 60 s. Chains are verified as
    of then, so that short-lived certificates a test made minutes ago still verify."""
    start = subprocess.run(["openssl", "x509", "-in", leaf, "-noout", "-startdate"], capture_output=True, text=True, check=True)
    moment = datetime.datetime.strptime(start.stdout.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")
    return int(moment.replace(tzinfo=datetime.timezone.utc).timestamp()) + 61


def main():
    report = {}
    with tempfile.TemporaryDirectory() as scratch:
        for path in sys.argv[1:]:
            report[path] = check(path, scratch)
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0 if all(not problems for problems in report.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
