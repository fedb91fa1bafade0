#!/usr/bin/env bash
# Makes a throwaway root CA and an intermediate signed by it, in Istio's plug-in CA layout:
# root-cert.pem, ca-cert.pem, ca-key.pem (0600), cert-chain.pem (intermediate then root).
# usage: make-plugin-ca.sh DIR [TRUST_DOMAIN]
set -euo pipefail
dir=${1:?usage: make-plugin-ca.sh DIR [TRUST_DOMAIN]}
domain=${2:-cluster.local}
mkdir -p "$dir"
umask 077
cd "$dir"
cat > ext.cnf <<CNF
[root]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
CNF
openssl ecparam -name prime256v1 -genkey -noout -out root-key.pem
openssl req -x509 -new -key root-key.pem -days 3650 -subj "/O=meshd dev/CN=meshd dev root" \
  -extensions root -config <(cat /etc/ssl/openssl.cnf ext.cnf) -out root-cert.pem
openssl ecparam -name prime256v1 -genkey -noout -out ca-key.pem
openssl req -new -key ca-key.pem -subj "/O=meshd dev/CN=meshd dev intermediate ($domain)" -out ca.csr
openssl x509 -req -in ca.csr -CA root-cert.pem -CAkey root-key.pem -CAcreateserial -days 730 \
  -extfile ext.cnf -extensions intermediate -out ca-cert.pem
cat ca-cert.pem root-cert.pem > cert-chain.pem
rm -f ca.csr ext.cnf root-cert.srl
chmod 600 ca-key.pem root-key.pem
chmod 644 root-cert.pem ca-cert.pem cert-chain.pem
echo "plug-in CA written to $dir (root key kept in root-key.pem; meshd needs only the four Istio files)"
