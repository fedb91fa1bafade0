#!/usr/bin/env python3
"""Writes Sources/AdminAPI/openapi.json, the OpenAPI 3 document of meshd's admin API that meshd
serves at /openapi.json. Run after changing a route: python3 scripts/openapi.py > Sources/AdminAPI/openapi.json
"""
import json
err = {"$ref": "#/components/responses/Error"}
rate_limited = {"$ref": "#/components/responses/RateLimited"}
def errs(*codes):
    return {str(c): (rate_limited if c == 429 else err) for c in codes}
def ok(schema=None, ctype="application/json", desc="OK", code="200"):
    r = {"description": desc}
    if schema is not None:
        r["content"] = {ctype: {"schema": schema}}
    return {code: r}
def op(summary, responses, params=None, body=None, security=True, opid=None):
    o = {"summary": summary, "operationId": opid, "responses": responses}
    if params: o["parameters"] = params
    if body: o["requestBody"] = body
    if not security: o["security"] = []
    return o
obj = {"type": "object"}
arr = lambda s: {"type": "array", "items": s}
ref = lambda n: {"$ref": "#/components/schemas/" + n}
p = lambda name, desc: {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": desc}
q = lambda name, desc: {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": desc}
resourceBody = {"required": True, "content": {
    "application/json": {"schema": ref("Resource")},
    "application/yaml": {"schema": ref("Resource")}}}
kp = [p("group", "API group, e.g. networking.istio.io"), p("version", "API version, e.g. v1"), p("plural", "lower-case plural kind, e.g. virtualservices")]
nsp = kp[:2] + [p("namespace", "namespace")] + kp[2:]
named = nsp + [p("name", "resource name")]
corekp = [p("version", "API version: v1"), p("plural", "lower-case plural kind: secrets")]
corensp = corekp[:1] + [p("namespace", "namespace")] + corekp[1:]
corenamed = corensp + [p("name", "resource name")]
paths = {
 "/healthz": {"get": op("Liveness", {**ok({"type": "string"}, "text/plain")}, security=False, opid="healthz")},
 "/readyz": {"get": op("Readiness: 200 once a configuration is loaded", {**ok({"type": "string"}, "text/plain"), "503": {"description": "not ready", "content": {"text/plain": {"schema": {"type": "string"}}}}}, security=False, opid="readyz")},
 "/version": {"get": op("meshd's version", {**ok({"type": "object", "properties": {"version": {"type": "string"}}, "required": ["version"]})}, security=False, opid="version")},
 "/openapi.json": {"get": op("This document", {**ok(obj)}, security=False, opid="openapi")},
 "/ui/api/graph": {"get": op("The service graph the /ui/graph page draws: workloads, services and the traffic between them over the last minute (rates, error rates, p50/p99, mTLS), canary splits, proxies not SYNCED (reader, or the page's cookie)", {**ok(obj), **errs(401)}, opid="serviceGraph")},
 "/ui/api/edge": {"get": op("One edge of the service graph over time (reader, or the page's cookie)", {**ok(obj), **errs(401, 404)}, params=[{"name": "id", "in": "query", "required": True, "schema": {"type": "string"}, "description": "the edge's id, as /ui/api/graph gives it"}], opid="serviceGraphEdge")},
 "/metrics": {"get": op("Prometheus metrics (reader)", {**ok({"type": "string"}, "text/plain"), **errs(401, 403)}, opid="metrics")},
 "/debug/config": {"get": op("Configuration source status (reader)", {**ok(ref("ConfigStatus")), **errs(401, 403)}, opid="debugConfig")},
 "/debug/proxies": {"get": op("Connected proxies (reader)", {**ok(arr(ref("ProxyStatus"))), **errs(401, 403)}, opid="debugProxies")},
 "/apis/{group}/{version}/{plural}": {"get": op("List resources of a kind in every namespace (reader)", {**ok(ref("ResourceList")), **errs(401, 403, 404)}, params=kp, opid="listAll")},
 "/apis/{group}/{version}/namespaces/{namespace}/{plural}": {
   "get": op("List resources of a kind in a namespace (reader)", {**ok(ref("ResourceList")), **errs(401, 403, 404)}, params=nsp, opid="list"),
   "post": op("Create a resource (admin); ?dryRun=All only checks", {**ok(ref("Resource"), desc="created", code="201"), **ok(ref("Resource"), desc="dry run: what would be stored"), **errs(400, 401, 403, 404, 409, 429, 503)}, params=nsp + [q("dryRun", "All: check only")], body=resourceBody, opid="create")},
 "/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}": {
   "get": op("Get a resource (reader)", {**ok(ref("Resource")), **errs(400, 401, 403, 404, 429, 503)}, params=named + [q("reveal", "true: a Secret's data (admin only); other kinds answer 400")], opid="get"),
   "put": op("Replace a resource (admin); metadata.resourceVersion, when given, must be current", {**ok(ref("Resource")), **errs(400, 401, 403, 404, 409, 429, 503)}, params=named + [q("dryRun", "All: check only")], body=resourceBody, opid="replace"),
   "delete": op("Delete a resource (admin)", {**ok({"type": "object", "properties": {"deleted": {"type": "string"}}, "required": ["deleted"]}), **errs(401, 403, 404, 409, 429, 503)}, params=named + [q("resourceVersion", "delete only if still this version"), q("dryRun", "All: check only")], opid="delete")},
 "/api/{version}/{plural}": {"get": op("List core resources (Secrets) in every namespace, without their data (reader)", {**ok(ref("ResourceList")), **errs(401, 403, 404)}, params=corekp, opid="listAllCore")},
 "/api/{version}/namespaces/{namespace}/{plural}": {
   "get": op("List core resources (Secrets) in a namespace, without their data (reader)", {**ok(ref("ResourceList")), **errs(401, 403, 404)}, params=corensp, opid="listCore"),
   "post": op("Create a Secret (admin); ?dryRun=All only checks", {**ok(ref("Resource"), desc="created", code="201"), **ok(ref("Resource"), desc="dry run: what would be stored"), **errs(400, 401, 403, 404, 409, 429, 503)}, params=corensp + [q("dryRun", "All: check only")], body=resourceBody, opid="createCore")},
 "/api/{version}/namespaces/{namespace}/{plural}/{name}": {
   "get": op("Get a Secret without its data (reader), or with it (?reveal=true: admin, audited)", {**ok(ref("Resource")), **errs(400, 401, 403, 404, 429, 503)}, params=corenamed + [q("reveal", "true: include the data (admin only; audited)")], opid="getCore"),
   "put": op("Replace a Secret (admin); metadata.resourceVersion, when given, must be current", {**ok(ref("Resource")), **errs(400, 401, 403, 404, 409, 429, 503)}, params=corenamed + [q("dryRun", "All: check only")], body=resourceBody, opid="replaceCore"),
   "delete": op("Delete a Secret (admin); refused while a Gateway uses it", {**ok({"type": "object", "properties": {"deleted": {"type": "string"}}, "required": ["deleted"]}), **errs(401, 403, 404, 409, 429, 503)}, params=corenamed + [q("resourceVersion", "delete only if still this version"), q("dryRun", "All: check only")], opid="deleteCore")},
 "/v1/proxies": {"get": op("Connected proxies and their xDS status (reader)", {**ok(arr(ref("ProxyStatus"))), **errs(401, 403)}, opid="proxies")},
 "/v1/proxies/{id}/config": {"get": op("What meshd last sent a proxy, as Envoy JSON (reader; secrets without keys)", {**ok(obj), **errs(401, 403, 404)}, params=[p("id", "node id")], opid="proxyConfig")},
 "/v1/workloads/{namespace}/{name}/describe": {"get": op("What applies to a workload, and whether its connections use mTLS (reader)", {**ok(ref("WorkloadDescription")), **errs(400, 401, 403, 404)}, params=[p("namespace", "namespace"), p("name", "WorkloadEntry name")], opid="describe")},
 "/v1/workloads/{namespace}/{name}/sidecar-suggestion": {"get": op("A Sidecar that imports what the workload uses (the services its proxies sent requests to, those whose ALLOW policies name it, the root namespace), with its configuration's size before and after (reader)", {**ok(ref("SidecarSuggestion")), **errs(401, 403, 404, 429)}, params=[p("namespace", "namespace"), p("name", "workload")], opid="suggestSidecar")},
 "/v1/simulate": {"post": op("One request from a workload walked through the served configuration: each step of the caller's and the destinations' proxies, and every outcome with its probability (reader)", {**ok(ref("RequestSimulation")), **errs(400, 401, 403, 429)}, body={"required": True, "content": {"application/json": {"schema": ref("SimulationRequest")}}}, opid="simulate")},
 "/v1/diff": {"post": op("What the resources in the body would change in each proxy's configuration, nothing applied (reader; YAML or JSON, several documents, kubectl Lists)", {**ok(ref("ConfigurationDiff")), **errs(400, 401, 403, 429)}, body={"required": True, "content": {"application/yaml": {"schema": {"type": "string"}}, "application/json": {"schema": obj}}}, opid="diffWith")},
 "/v1/analyze": {"get": op("Problems in the served configuration (reader)", {**ok(arr(ref("AnalysisMessage"))), **errs(401, 403)}, opid="analyze"),
                 "post": op("Problems in the served configuration with the resources in the body added, nothing applied (reader; YAML or JSON, several documents, kubectl Lists)", {**ok(arr(ref("AnalysisMessage"))), **errs(400, 401, 403, 429)}, body={"required": True, "content": {"application/yaml": {"schema": {"type": "string"}}, "application/json": {"schema": obj}}}, opid="analyzeWith")},
 "/v1/audit": {"get": op("The audit log (admin)", {**ok(arr(ref("AuditRecord"))), **errs(401, 403)}, opid="audit")},
 "/v1/tokens": {
   "get": op("Token records, never the tokens (admin)", {**ok(arr(ref("TokenInfo"))), **errs(401, 403)}, opid="tokens"),
   "post": op("Mint a token (admin)", {**ok(ref("MintedToken"), desc="minted", code="201"), **errs(400, 401, 403, 429, 500, 503)}, body={"required": True, "content": {"application/json": {"schema": ref("TokenRequest")}}}, opid="mintToken")},
 "/v1/tokens/{id}": {"delete": op("Revoke a token (admin)", {**ok({"type": "object", "properties": {"revoked": {"type": "string"}}, "required": ["revoked"]}), **errs(401, 403, 404, 429, 500, 503)}, params=[p("id", "token id")], opid="revokeToken")},
 "/v1/ca": {"get": op("The CA's roots, signer and any root rotation (reader)", {**ok(ref("CAStatus")), **errs(401, 403)}, opid="ca")},
 "/v1/ca/root": {"get": op("The trust bundle (public)", {**ok({"type": "string"}, "application/x-pem-file")}, security=False, opid="caRoot")},
 "/v1/ca/rotate-root": {"post": op("Start a phased root rotation (admin)", {**ok(ref("CAStatus"), desc="started", code="202"), **errs(401, 403, 409, 429, 503)}, opid="rotateRoot")},
 "/v1/certificates": {
   "get": op("The issuance ledger (reader)", {**ok(arr(ref("LedgerEntry"))), **errs(401, 403)}, opid="certificates"),
   "post": op("Sign a CSR for the token's workload identity", {**ok({"type": "object", "properties": {"certChain": arr({"type": "string"})}, "required": ["certChain"]}), **errs(400, 401, 403, 429)}, body={"required": True, "content": {"application/json": {"schema": ref("CSRRequest")}}}, opid="signCSR")},
 "/v1/bootstrap": {"post": op("An Envoy bootstrap for a workload, with a new token (admin)", {**ok(obj), **errs(400, 401, 403, 404, 429, 503)}, body={"required": True, "content": {"application/json": {"schema": ref("BootstrapRequest")}}}, opid="bootstrap")},
}
s = lambda **props: {"type": "object", "properties": props}
string = {"type": "string"}
integer = {"type": "integer"}
boolean = {"type": "boolean"}
date = {"type": "string", "format": "date-time"}
certInfo = s(subject=string, fingerprint=string, notAfter=date, serial=string)
certInfo["required"] = ["subject", "fingerprint", "notAfter", "serial"]
schemas = {
 "Error": {**s(code=integer, reason=string, message=string, field=string), "required": ["code", "reason", "message"]},
 "Resource": {**s(apiVersion=string, kind=string, metadata={**s(name=string, namespace=string, labels={"type": "object", "additionalProperties": string}, annotations={"type": "object", "additionalProperties": string}, resourceVersion=string), "required": ["name"]}, spec=obj), "required": ["apiVersion", "kind", "metadata"]},
 "ResourceList": {**s(apiVersion=string, kind=string, items=arr(ref("Resource"))), "required": ["apiVersion", "kind", "items"]},
 "ConfigStatus": {**s(revision=integer, resources=integer, configDirectory=string, rejectedChanges=integer, lastRejection=string, warnings={"type": "object", "additionalProperties": arr(string)}), "required": ["revision", "resources", "rejectedChanges", "warnings"]},
 "ProxyStatus": {**s(proxyID=string, workload=string, peer=string, waiting=string, types={"type": "object", "additionalProperties": {**s(state=string, sentVersion=string, acceptedVersion=string, error=string), "required": ["state"]}}), "required": ["proxyID", "workload", "peer", "types"]},
 "WorkloadDescription": {**s(workload=string, identity=string, labels={"type": "object", "additionalProperties": string}, services=arr(string), virtualServices=arr(string), destinationRules=arr(string), peerAuthentications=arr(string), authorizationPolicies=arr(string), requestAuthentications=arr(string), sidecar=string, gateways=arr(string), workloadGroup=string, health=string,
     inbound=arr({**s(port=integer, mtlsMode=string, decidedBy=string), "required": ["port", "mtlsMode", "decidedBy"]}),
     outbound=arr({**s(host=string, port=integer, client=string, clientReason=string, serverModes=arr(string), result=string), "required": ["host", "port", "client", "clientReason", "serverModes", "result"]})),
     "required": ["workload", "identity", "labels", "services", "virtualServices", "destinationRules", "peerAuthentications", "authorizationPolicies", "requestAuthentications", "inbound", "outbound"]},
 "SidecarSuggestion": {**s(workload=string, hosts=arr({**s(host=string, reason=string), "required": ["host", "reason"]}), sidecar=string, before=ref("ConfigSize"), after=ref("ConfigSize"), observed={"type": "object", "additionalProperties": {"type": "integer"}}), "required": ["workload", "hosts", "sidecar", "before", "after", "observed"]},
 "ConfigSize": {**s(resources={"type": "integer"}, clusters={"type": "integer"}, bytes={"type": "integer"}), "required": ["resources", "clusters", "bytes"]},
 "SimulationRequest": {**s(**{"from": string}, url=string, method=string, headers={"type": "object", "additionalProperties": string}), "required": ["from", "url"]},
 "RequestSimulation": {**s(request={"$ref": "#/components/schemas/SimulationRequest"}, steps=arr({**s(proxy=string, stage=string, detail=string, depth={"type": "integer"}), "required": ["proxy", "stage", "detail", "depth"]}), outcomes=arr({**s(probability={"type": "number"}, status={"type": "integer"}, servedBy=string, reason=string, decidedBy=string), "required": ["probability", "reason"]})), "required": ["request", "steps", "outcomes"]},
 "ConfigurationDiff": {**s(proxies=arr({**s(workload=string, resources=arr({**s(type=string, name=string, change=string, fields=arr({**s(path=string, before=string, after=string), "required": ["path"]})), "required": ["type", "name", "change", "fields"]})), "required": ["workload", "resources"]}), unchanged={"type": "integer"}, warnings=arr(string)), "required": ["proxies", "unchanged", "warnings"]},
 "AnalysisMessage": {**s(level=string, code=string, resource=string, message=string), "required": ["level", "code", "resource", "message"]},
 "AuditRecord": {**s(time=date, who=string, action=string, target=string, result=string), "required": ["time", "who", "action", "target", "result"]},
 "TokenInfo": {**s(id=string, role=string, namespace=string, serviceAccount=string, createdAt=date, expiresAt=date, revoked=boolean, workloadGroup=string), "required": ["id", "role", "createdAt", "revoked"]},
 "TokenRequest": {**s(role={"type": "string", "enum": ["workload", "reader", "admin"]}, namespace=string, serviceAccount=string, ttlSeconds=integer, workloadGroup=string)},
 "MintedToken": {**s(id=string, token=string, role=string, namespace=string, serviceAccount=string, expiresAt=date, workloadGroup=string), "required": ["id", "token", "role"]},
 "CAStatus": {**s(mode=string, trustDomain=string, roots=arr(certInfo), signer=certInfo, defaultTTLSeconds=integer, maximumTTLSeconds=integer, chain=arr(certInfo),
     rotation={**s(phase=string, reason=string, startedAt=date, phaseSince=date, waitingFor=string), "required": ["phase", "reason", "startedAt", "phaseSince", "waitingFor"]}),
     "required": ["mode", "trustDomain", "roots", "signer", "defaultTTLSeconds", "maximumTTLSeconds", "chain"]},
 "LedgerEntry": {**s(serial=string, identity=string, notBefore=date, notAfter=date, caller=string, path=string, issuerKey=string), "required": ["serial", "identity", "notBefore", "notAfter", "caller", "path"]},
 "CSRRequest": {**s(csr=string, ttlSeconds=integer), "required": ["csr"]},
 "BootstrapRequest": {**s(workload=string, workloadGroup=string, address=string, xdsAddress=string, adminAddress=string, tokenTTLSeconds=integer, certificateDirectory=string, delta=boolean, proxyless=boolean)},
}
doc = {"openapi": "3.0.3",
 "info": {"title": "meshd admin API", "version": "0.1.0", "description": "Health, metrics, Istio resources under Kubernetes-style paths, proxy status and config, the CA, tokens and bootstraps. Authenticate with Authorization: Bearer <token>."},
 "servers": [{"url": "/"}],
 "security": [{"bearer": []}],
 "paths": paths,
 "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
   "responses": {"Error": {"description": "an error", "content": {"application/json": {"schema": ref("Error")}}},
                 "RateLimited": {"description": "over the caller's rate: retry after Retry-After seconds", "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}, "description": "seconds to wait"}}, "content": {"application/json": {"schema": ref("Error")}}}},
   "schemas": schemas}}
print(json.dumps(doc, indent=2, sort_keys=True))
