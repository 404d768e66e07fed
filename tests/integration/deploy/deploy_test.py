#!/usr/bin/env python3
"""What can be checked of deploy/compose, deploy/k8s and deploy/Dockerfile without a
container engine or a cluster.

* every YAML file under deploy/compose and deploy/k8s parses;
* every Floodgate config they mount passes `floodgate --check-config`;
* compose: files mounted and built from exist, secrets are written by make-secrets.sh,
  Prometheus scrapes exactly the gateway services on their admin port, HAProxy's backends
  are exactly the gateway services on their public port and are checked on the admin port,
  the gateways' upstream, Redis and secret paths name services and secrets that exist,
  the Grafana provisioning points where the dashboard is mounted;
* k8s: every manifest has apiVersion, kind, metadata.name and the namespace, is listed
  in kustomization.yaml (the Secret example is not), ConfigMaps and Secret keys that are
  mounted exist, Services select pods that exist, probes hit /readyz and /healthz on the
  config's admin port, the config's paths lie under the mounted Secret, Redis and the demo
  site are Services on the ports the config names, Prometheus's DNS name is the headless
  admin Service;
* haproxy -c and promtool check config, when installed (both are Debian packages that
  deploy/install-deps.sh installs); kubectl kustomize when kubectl happens to be there;
* make-secrets.sh's output works: a gateway started with the compose config (store:
  memory, loopback ports) and those files answers /readyz, and /metrics with
  prometheus.token but not without it; the example Secret's placeholders are refused;
* the Dockerfile copies everything the build reads, its COPY --from paths are where CMake
  puts the binaries, and its runtime packages cover what ldd reports for floodgate.

    deploy_test.py --floodgate build/x/gateway/floodgate --source-dir . --build-dir build/x
"""
import argparse
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

import yaml

failures = []
checks = 0


def check(ok, what):
    global checks
    checks += 1
    if not ok:
        failures.append(what)
        print("FAIL:", what)
    return ok


def load_all(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def yaml_files(root):
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x != "secrets"]
        out += [os.path.join(d, f) for f in files if f.endswith((".yml", ".yaml"))]
    return sorted(out)


def host_port(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def check_config(floodgate, path, label):
    r = subprocess.run([floodgate, "--check-config", path], capture_output=True, text=True)
    check(r.returncode == 0, f"{label}: floodgate --check-config failed: {r.stderr.strip()}")


# --- every YAML parses --------------------------------------------------------------------

def check_parse(src):
    for root in ("deploy/compose", "deploy/k8s"):
        files = yaml_files(os.path.join(src, root))
        check(files, f"{root}: no YAML files")
        for p in files:
            try:
                load_all(p)
            except yaml.YAMLError as e:
                check(False, f"{os.path.relpath(p, src)}: does not parse: {e}")


# --- compose --------------------------------------------------------------------------------

def check_compose(src, floodgate, tmp):
    cdir = os.path.join(src, "deploy/compose")
    compose = load_all(os.path.join(cdir, "docker-compose.yml"))[0]
    services = compose["services"]
    secrets = compose.get("secrets", {})
    with open(os.path.join(cdir, "make-secrets.sh"), encoding="utf-8") as f:
        make_secrets = f.read()

    def rel(p):
        return os.path.normpath(os.path.join(cdir, p))

    # Files mounted, built from, and secret files.
    for name, svc in services.items():
        b = svc.get("build")
        if b:
            ctx = rel(b["context"])
            check(os.path.isfile(os.path.join(ctx, b.get("dockerfile", "Dockerfile"))),
                  f"compose {name}: build dockerfile {b.get('dockerfile')} missing")
        for v in svc.get("volumes", []):
            source = v.split(":")[0]
            if source.startswith((".", "/")):
                check(os.path.exists(rel(source)), f"compose {name}: mounts {source}, which does not exist")
            else:
                check(source in compose.get("volumes", {}), f"compose {name}: volume {source} not declared")
        for s in svc.get("secrets", []):
            check(s in secrets, f"compose {name}: secret {s} not declared")
        for d in svc.get("depends_on", []):
            check(d in services, f"compose {name}: depends on unknown service {d}")
    for s, spec in secrets.items():
        f = spec["file"]
        check(f.startswith("./secrets/") and os.path.basename(f) in make_secrets,
              f"compose secret {s}: {f} is not one make-secrets.sh writes")

    # The gateway services: the ones running floodgate with a mounted config.
    gateways = {}
    for name, svc in services.items():
        cmd = svc.get("command") or []
        if cmd and cmd[0] == "floodgate":
            cfg_in = cmd[cmd.index("--config") + 1]
            source = next(v.split(":")[0] for v in svc["volumes"] if v.split(":")[1] == cfg_in)
            gateways[name] = (svc, rel(source))
    check(len(gateways) >= 2, f"compose: {len(gateways)} gateway services, expected several")
    configs = {p for _, p in gateways.values()}
    check(len(configs) == 1, "compose: the gateways do not share one config file")
    cfg_path = configs.pop()
    check_config(floodgate, cfg_path, os.path.relpath(cfg_path, src))
    cfg = load_all(cfg_path)[0]
    _, public_port = host_port(cfg["listen"][0]["address"])
    _, admin_port = host_port(cfg["admin"]["address"])

    for name, (svc, _) in gateways.items():
        secret_names = set(svc.get("secrets", []))
        for key, path in (("keys_file", cfg.get("keys_file", "")),
                          ("admin.tokens_file", cfg["admin"].get("tokens_file", ""))):
            check(path.startswith("/run/secrets/") and os.path.basename(path) in secret_names,
                  f"compose {name}: {key} {path} is not one of its secrets {sorted(secret_names)}")
        hc = " ".join(svc.get("healthcheck", {}).get("test", []))
        check(f":{admin_port}/readyz" in hc, f"compose {name}: healthcheck does not ask /readyz on {admin_port}")

    # The upstream and Redis are services, on the ports they listen on.
    for up in cfg["upstreams"].values():
        for server in up["servers"]:
            host, port = host_port(server)
            svc = services.get(host)
            if check(svc is not None, f"compose config: upstream server {server} is not a service"):
                cmd = svc.get("command") or []
                listen = cmd[cmd.index("--listen") + 1] if "--listen" in cmd else ""
                check(listen.endswith(f":{port}"), f"compose {host}: listens on {listen!r}, config says {port}")
    store = urllib.parse.urlparse(cfg["store"])
    check(store.scheme == "redis" and store.hostname in services,
          f"compose config: store {cfg['store']} does not name a service")
    redis_cmd = " ".join(services.get(store.hostname, {}).get("command", []))
    check("--appendonly yes" in redis_cmd, "compose redis: AOF (--appendonly yes) is off")
    check(any(v.split(":")[1] == "/data" for v in services.get(store.hostname, {}).get("volumes", [])),
          "compose redis: /data is not on a volume")

    # Prometheus scrapes exactly the gateways' admin ports, with a mounted token.
    prom_svc = services["prometheus"]
    prom_mounts = {v.split(":")[1]: rel(v.split(":")[0]) for v in prom_svc["volumes"] if v.startswith(".")}
    prom = load_all(prom_mounts["/etc/prometheus/prometheus.yml"])[0]
    job = prom["scrape_configs"][0]
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    check(targets == {f"{g}:{admin_port}" for g in gateways},
          f"compose prometheus: targets {sorted(targets)} are not the gateways' admin ports")
    cred = job["authorization"]["credentials_file"]
    check(cred.startswith("/run/secrets/") and os.path.basename(cred) in prom_svc.get("secrets", []),
          f"compose prometheus: credentials_file {cred} is not a secret of the service")
    for r in prom.get("rule_files", []):
        check(r in prom_mounts, f"compose prometheus: rule file {r} is not mounted")
    promtool_check(prom_mounts["/etc/prometheus/prometheus.yml"], prom, prom_mounts, tmp, "compose")

    # HAProxy: backends are the gateways' public ports, checked on the admin port.
    lb_mounts = {v.split(":")[1]: rel(v.split(":")[0]) for v in services["lb"]["volumes"]}
    hcfg = lb_mounts["/usr/local/etc/haproxy/haproxy.cfg"]
    with open(hcfg, encoding="utf-8") as f:
        htext = f.read()
    backends = set(re.findall(r"^\s*server\s+\S+\s+(\S+)", htext, re.M))
    check(backends == {f"{g}:{public_port}" for g in gateways},
          f"haproxy.cfg: servers {sorted(backends)} are not the gateways' public ports")
    check(re.search(rf"default-server\s.*\bcheck port {admin_port}\b", htext) is not None,
          f"haproxy.cfg: health checks are not on the admin port {admin_port}")
    check("option httpchk GET /readyz" in htext, "haproxy.cfg: the health check is not GET /readyz")
    # /readyz is 503 on every node at once under fail_closed during a Redis outage (and while all
    # start with Redis unreachable): unchecked backups keep the nodes reachable then.
    fallbacks = set(re.findall(r"^\s*server\s+\S+\s+(\S+)\s.*\bbackup\b.*\bno-check\b", htext, re.M))
    check(fallbacks == {f"{g}:{public_port}" for g in gateways},
          f"haproxy.cfg: unchecked backup servers {sorted(fallbacks)} are not the gateways")
    check(not re.search(r"^\s*(cookie|stick)\b", htext, re.M), "haproxy.cfg: stickiness is not needed")
    haproxy = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
    if haproxy:
        r = subprocess.run([haproxy, "-c", "-f", hcfg], capture_output=True, text=True)
        check(r.returncode == 0, f"haproxy -c -f haproxy.cfg: {r.stdout}{r.stderr}")
        # The only warnings allowed: the compose service names do not resolve here.
        for line in (r.stdout + r.stderr).splitlines():
            if "WARNING" in line or "ALERT" in line:
                check("could not resolve address" in line, f"haproxy -c: {line}")
    else:
        print("skipped: haproxy -c (haproxy not installed)")

    # Grafana: the provider's path is where the dashboard is mounted; the data source is a service.
    gsvc = services["grafana"]
    gmounts = {v.split(":")[1]: rel(v.split(":")[0]) for v in gsvc["volumes"] if v.startswith(".")}
    prov = load_all(os.path.join(gmounts["/etc/grafana/provisioning/dashboards"], "floodgate.yml"))[0]
    ppath = prov["providers"][0]["options"]["path"]
    check(any(m.startswith(ppath + "/") and m.endswith(".json") for m in gmounts),
          f"compose grafana: no dashboard mounted under the provider's path {ppath}")
    ds = load_all(os.path.join(gmounts["/etc/grafana/provisioning/datasources"], "prometheus.yml"))[0]
    url = urllib.parse.urlparse(ds["datasources"][0]["url"])
    check(url.hostname in services, f"grafana data source {url.geturl()} is not a service")
    return cfg_path


def promtool_check(path, prom, mounts, tmp, label):
    """promtool check config on a copy whose container paths point at the repository's files."""
    promtool = shutil.which("promtool")
    if not promtool:
        print(f"skipped: promtool check config ({label}; promtool not installed)")
        return
    d = tempfile.mkdtemp(dir=tmp)
    prom = yaml.safe_load(yaml.safe_dump(prom))
    prom["rule_files"] = [os.path.abspath(mounts[r]) for r in prom.get("rule_files", [])]
    token = os.path.join(d, "token")
    with open(token, "w") as f:
        f.write("x" * 32)
    for job in prom["scrape_configs"]:
        job["authorization"]["credentials_file"] = token
    out = os.path.join(d, "prometheus.yml")
    with open(out, "w") as f:
        yaml.safe_dump(prom, f)
    r = subprocess.run([promtool, "check", "config", out], capture_output=True, text=True)
    check(r.returncode == 0, f"promtool check config ({label} {os.path.basename(path)}): {r.stdout}{r.stderr}")


# --- k8s ------------------------------------------------------------------------------------

def check_k8s(src, floodgate, tmp):
    kdir = os.path.join(src, "deploy/k8s")
    kust = load_all(os.path.join(kdir, "kustomization.yaml"))[0]
    ns = kust["namespace"]
    docs = []  # (file, doc)
    for f in sorted(os.listdir(kdir)):
        if not f.endswith((".yaml", ".yml")) or f == "kustomization.yaml":
            continue
        for d in load_all(os.path.join(kdir, f)):
            ok = check(all(k in d for k in ("apiVersion", "kind")) and d.get("metadata", {}).get("name"),
                       f"k8s {f}: a document without apiVersion, kind or metadata.name")
            if ok and d["kind"] != "Namespace":
                check(d["metadata"].get("namespace") == ns,
                      f"k8s {f}: {d['kind']}/{d['metadata']['name']} is not in namespace {ns}")
            docs.append((f, d))
        listed = f in kust["resources"]
        if f.endswith(".example.yaml"):
            check(not listed, f"k8s kustomization.yaml applies {f}, an example with placeholders")
        else:
            check(listed, f"k8s kustomization.yaml does not list {f}")
    for r in kust["resources"]:
        check(os.path.isfile(os.path.join(kdir, r)), f"k8s kustomization.yaml: resource {r} missing")

    def by_kind(kind):
        return {d["metadata"]["name"]: d for _, d in docs if d.get("kind") == kind}

    configmaps = {n: d.get("data", {}) for n, d in by_kind("ConfigMap").items()}
    for g in kust.get("configMapGenerator", []):
        data = {}
        for f in g["files"]:
            p = os.path.normpath(os.path.join(kdir, f))
            check(os.path.isfile(p), f"k8s configMapGenerator {g['name']}: {f} missing")
            data[os.path.basename(f)] = p
        configmaps[g["name"]] = data
    secrets = [d for _, d in docs if d.get("kind") == "Secret"]
    check(len(secrets) == 1, "k8s: expected one Secret example")
    secret = secrets[0] if secrets else {"metadata": {"name": ""}, "stringData": {}}
    secret_keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    services = by_kind("Service")
    workloads = {**by_kind("Deployment"), **by_kind("StatefulSet")}

    # Mounted ConfigMaps and Secret keys exist; Services select pods.
    for name, w in workloads.items():
        pod = w["spec"]["template"]["spec"]
        check(w["spec"]["selector"]["matchLabels"].items() <= w["spec"]["template"]["metadata"]["labels"].items(),
              f"k8s {name}: selector does not match its pod labels")
        for v in pod.get("volumes", []):
            if "configMap" in v:
                check(v["configMap"]["name"] in configmaps, f"k8s {name}: ConfigMap {v['configMap']['name']} missing")
            if "secret" in v:
                check(v["secret"]["secretName"] == secret["metadata"]["name"],
                      f"k8s {name}: Secret {v['secret']['secretName']} is not the example's")
                for it in v["secret"].get("items", []):
                    check(it["key"] in secret_keys, f"k8s {name}: Secret key {it['key']} not in the example")
    pods_labels = [w["spec"]["template"]["metadata"]["labels"] for w in workloads.values()]
    for name, s in services.items():
        sel = s["spec"].get("selector", {})
        check(any(sel.items() <= l.items() for l in pods_labels), f"k8s Service {name} selects no pods")

    # The gateway Deployment and its config.
    fg = workloads["floodgate"]
    pod = fg["spec"]["template"]["spec"]
    c = pod["containers"][0]
    cfg_mount = next(m for m in c["volumeMounts"] if m["mountPath"] == c["args"][c["args"].index("--config") + 1])
    cfg_vol = next(v for v in pod["volumes"] if v["name"] == cfg_mount["name"])
    cfg_text = configmaps[cfg_vol["configMap"]["name"]][cfg_mount["subPath"]]
    cfg_path = os.path.join(tmp, "k8s-floodgate.yaml")
    with open(cfg_path, "w") as f:
        f.write(cfg_text)
    check_config(floodgate, cfg_path, "deploy/k8s/floodgate-config.yaml (floodgate.yaml)")
    cfg = yaml.safe_load(cfg_text)
    _, public_port = host_port(cfg["listen"][0]["address"])
    _, admin_port = host_port(cfg["admin"]["address"])
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    check(ports.get("http") == public_port and ports.get("admin") == admin_port,
          f"k8s floodgate: container ports {ports} are not the config's {public_port}/{admin_port}")
    check(fg["spec"]["replicas"] >= 2, "k8s floodgate: fewer than two replicas")
    check(c["readinessProbe"]["httpGet"]["path"] == "/readyz" and c["readinessProbe"]["httpGet"]["port"] == "admin",
          "k8s floodgate: readiness probe is not /readyz on the admin port")
    check(c["livenessProbe"]["httpGet"]["path"] == "/healthz" and c["livenessProbe"]["httpGet"]["port"] == "admin",
          "k8s floodgate: liveness probe is not /healthz on the admin port")
    sec_vol = next(v for v in pod["volumes"] if "secret" in v)
    sec_mount = next(m for m in c["volumeMounts"] if m["name"] == sec_vol["name"])
    sec_paths = {it["path"] for it in sec_vol["secret"]["items"]}
    for key, path in (("keys_file", cfg.get("keys_file", "")), ("admin.tokens_file", cfg["admin"].get("tokens_file", ""))):
        check(os.path.dirname(path) == sec_mount["mountPath"] and os.path.basename(path) in sec_paths,
              f"k8s config: {key} {path} is not a file of the mounted Secret")
    check(cfg.get("threads", 0) > 0, "k8s config: threads must be set (a container sees the host's cores)")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    shutdown = int(str(cfg.get("timeouts", {}).get("shutdown_grace", "10s")).rstrip("s"))
    check(shutdown + 5 <= grace, f"k8s floodgate: shutdown_grace {shutdown}s + preStop does not fit in {grace}s")
    public = [s for s in services.values() if any(p.get("targetPort") == "http" for p in s["spec"]["ports"])
              and s["spec"].get("selector") == fg["spec"]["selector"]["matchLabels"]]
    check(public and all(s["spec"].get("sessionAffinity", "None") == "None" for s in public),
          "k8s: no public floodgate Service, or one with session affinity")

    def service_port(host, port, what):
        s = services.get(host.split(".")[0])
        if check(s is not None, f"k8s config: {what} {host} is not a Service"):
            check(any(p["port"] == port for p in s["spec"]["ports"]), f"k8s Service {host}: no port {port} ({what})")
        return s

    for up in cfg["upstreams"].values():
        for server in up["servers"]:
            h, p = host_port(server)
            service_port(h, p, "upstream server")
    store = urllib.parse.urlparse(cfg["store"])
    service_port(store.hostname, store.port or 6379, "store")
    redis = workloads.get(store.hostname)
    if check(redis is not None and redis["kind"] == "StatefulSet", "k8s: Redis is not a StatefulSet"):
        args = " ".join(redis["spec"]["template"]["spec"]["containers"][0].get("args", []))
        check("--appendonly yes" in args, "k8s redis: AOF (--appendonly yes) is off")
        check(redis["spec"].get("volumeClaimTemplates"), "k8s redis: no PersistentVolumeClaim")

    # Prometheus: DNS discovery of the headless admin Service, token from the Secret.
    prom_path = configmaps["prometheus-config"]["prometheus.yml"]
    prom = load_all(prom_path)[0]
    job = prom["scrape_configs"][0]
    for sd in job["dns_sd_configs"]:
        check(sd["port"] == admin_port, f"k8s prometheus: scrapes port {sd['port']}, admin is {admin_port}")
        for n in sd["names"]:
            svc, svc_ns = n.split(".")[:2]
            s = services.get(svc)
            check(s is not None and svc_ns == ns and s["spec"].get("clusterIP") == "None"
                  and s["spec"]["selector"] == fg["spec"]["selector"]["matchLabels"],
                  f"k8s prometheus: {n} is not the gateways' headless Service")
    pw = workloads["prometheus"]["spec"]["template"]["spec"]
    pmounts = {}
    for m in pw["containers"][0]["volumeMounts"]:
        v = next(v for v in pw["volumes"] if v["name"] == m["name"])
        if "configMap" in v:
            for key, p in configmaps[v["configMap"]["name"]].items():
                target = m["mountPath"] if m.get("subPath") == key else os.path.join(m["mountPath"], key)
                pmounts[target] = p
        if "secret" in v:
            for it in v["secret"]["items"]:
                pmounts[os.path.join(m["mountPath"], it["path"])] = "(secret)"
    for r in prom.get("rule_files", []):
        check(r in pmounts, f"k8s prometheus: rule file {r} is not mounted")
    check(job["authorization"]["credentials_file"] in pmounts,
          "k8s prometheus: credentials_file is not a mounted Secret key")
    promtool_check(prom_path, prom, pmounts, tmp, "k8s")

    kubectl = shutil.which("kubectl")
    if kubectl:
        r = subprocess.run([kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", kdir],
                           capture_output=True, text=True, timeout=60)
        if check(r.returncode == 0, f"kubectl kustomize deploy/k8s: {r.stderr}"):
            rendered = [d for d in yaml.safe_load_all(r.stdout) if d]
            check(len(rendered) == len(docs) - 1 + len(kust.get("configMapGenerator", [])),
                  f"kubectl kustomize: {len(rendered)} objects rendered")
    else:
        print("skipped: kubectl kustomize (kubectl not installed)")
    return secret


# --- secrets: make-secrets.sh's files work; the example's placeholders do not -----------------

def wait_for_ports(path, proc, seconds=15):
    """The --ports-file lines once the gateway listens, or None if it exits or takes too long."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            return None
        if os.path.exists(path):
            lines = dict(l.split(" ", 1) for l in open(path).read().split("\n") if " " in l)
            if "admin" in lines:
                return lines
        time.sleep(0.05)
    return None


def get(port, path, token=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def runtime_config(compose_cfg_path, tmp, keys, tokens):
    """The compose config, runnable here: loopback ports, the memory store, a local upstream."""
    cfg = load_all(compose_cfg_path)[0]
    cfg["listen"] = [{"address": "127.0.0.1:0"}]
    cfg["admin"] = {"address": "127.0.0.1:0", "tokens_file": tokens, "tokens_env": "FLOODGATE_DEPLOY_TEST_NONE"}
    cfg["keys_file"] = keys
    cfg["store"] = "memory"
    cfg.pop("store_failure", None)
    cfg["state_dir"] = os.path.join(tmp, "state")
    cfg["threads"] = 1
    cfg["access_log"] = "off"
    for up in cfg["upstreams"].values():
        up["servers"] = ["127.0.0.1:9"]
    p = os.path.join(tmp, "runtime.yaml")
    with open(p, "w") as f:
        yaml.safe_dump(cfg, f)
    return p


def check_secrets(src, floodgate, compose_cfg, secret, tmp):
    sdir = os.path.join(tmp, "secrets")
    r = subprocess.run([os.path.join(src, "deploy/compose/make-secrets.sh"), sdir], capture_output=True, text=True)
    if not check(r.returncode == 0, f"make-secrets.sh failed: {r.stderr}"):
        return
    for key in secret.get("stringData", {}):
        check(os.path.isfile(os.path.join(sdir, key)), f"make-secrets.sh does not write {key}, a key of the Secret")
    cfg = runtime_config(compose_cfg, tmp, os.path.join(sdir, "token-keys"), os.path.join(sdir, "admin-tokens"))
    ports = os.path.join(tmp, "ports")
    proc = subprocess.Popen([floodgate, "--config", cfg, "--ports-file", ports],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        lines = wait_for_ports(ports, proc)
        if check(lines is not None, "floodgate did not start with make-secrets.sh's files"):
            admin = int(lines["admin"].rsplit(":", 1)[1])
            token = open(os.path.join(sdir, "prometheus.token")).read().strip()
            check(get(admin, "/readyz") == 200, "floodgate with make-secrets.sh's files: /readyz is not 200")
            check(get(admin, "/metrics", token) == 200, "/metrics with prometheus.token is not 200")
            check(get(admin, "/metrics") == 401, "/metrics without a token is not 401")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if failures:
            print(err)

    # The example Secret's placeholders must stop a gateway, not run it with a public key.
    for key, field in (("token-keys", "keys"), ("admin-tokens", "tokens")):
        d = tempfile.mkdtemp(dir=tmp)
        files = {}
        for k in ("token-keys", "admin-tokens"):
            files[k] = os.path.join(d, k)
            with open(files[k], "w") as f:
                f.write(secret["stringData"][k] if k == key else open(os.path.join(sdir, k)).read())
        cfg = runtime_config(compose_cfg, d, files["token-keys"], files["admin-tokens"])
        ports = os.path.join(d, "ports")
        proc = subprocess.Popen([floodgate, "--config", cfg, "--ports-file", ports],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        started = wait_for_ports(ports, proc) is not None
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate()
        check(not started and proc.returncode != 0 and key in err,
              f"floodgate started with the example Secret's placeholder {key} (exit {proc.returncode}): {err}")


# --- Dockerfile -----------------------------------------------------------------------------

def check_dockerfile(src, build_dir, targets, floodgate):
    with open(os.path.join(src, "deploy/Dockerfile"), encoding="utf-8") as f:
        text = f.read().replace("\\\n", " ")
    copies = []
    from_build = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0] != "COPY":
            continue
        if words[1].startswith("--from="):
            from_build += words[2:-1]
        else:
            copies += words[1:-1]
    for c in copies:
        check(os.path.exists(os.path.join(src, c)), f"Dockerfile: COPY {c}, which does not exist")
    copied = {os.path.normpath(c) for c in copies}
    needed = ["CMakeLists.txt"] + re.findall(r"^add_subdirectory\((\w+)\)",
                                            open(os.path.join(src, "CMakeLists.txt")).read(), re.M)
    for sub in needed:
        if sub == "tests":
            continue
        p = os.path.join(src, sub)
        if sub in copied or not os.path.isdir(p):
            check(sub in copied or os.path.normpath(sub) in copied, f"Dockerfile: does not copy {sub}")
            continue
        for e in os.listdir(p):  # a directory copied piece by piece: every piece but node_modules
            if e in ("node_modules", ".npm-ci.lock"):
                continue
            check(os.path.join(sub, e) in copied, f"Dockerfile: does not copy {sub}/{e}")
    for t in targets:
        relp = os.path.relpath(t, build_dir)
        check(any(f.endswith("/build/" + relp) for f in from_build),
              f"Dockerfile: does not copy {relp} from the build stage")
    # Runtime packages cover the shared libraries floodgate links.
    m = re.search(r"FROM debian:12-slim(.*)", text, re.S)
    runtime = set(re.findall(r"[a-z0-9][a-z0-9.+-]+", m.group(1))) if m else set()
    r = subprocess.run(["ldd", floodgate], capture_output=True, text=True)
    libs = [l.split("=>")[1].split()[0] for l in r.stdout.splitlines() if "=>" in l and "/" in l]
    base = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libzstd1", "liblzma5"}  # in debian:12-slim
    # One dpkg -S for all of them (each call reads the whole package database). Debian 12
    # merges /lib into /usr/lib, and dpkg knows a file under the name its package used: ask
    # for every spelling.
    def spellings(lib):
        out = set()
        for p in (lib, os.path.realpath(lib)):
            out.add(p)
            out.add(p[4:] if p.startswith("/usr/") else "/usr" + p)
        return out
    names = {lib: spellings(lib) for lib in libs}
    q = subprocess.run(["dpkg", "-S"] + sorted(set().union(*names.values())), capture_output=True, text=True)
    owner = {}
    for line in q.stdout.splitlines():
        pkgs, _, path = line.partition(": ")
        owner[path] = pkgs.split(",")[0].split(":")[0].strip()
    for lib, spelled in sorted(names.items()):
        pkg = next((owner[p] for p in spelled if p in owner), None)
        if pkg is None:
            print(f"note: {lib} belongs to no package")
            continue
        check(pkg in base or pkg in runtime, f"Dockerfile: runtime stage lacks {pkg} ({lib})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--floodgate", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--target", action="append", default=[], help="a binary the image copies")
    a = ap.parse_args()
    src = os.path.abspath(a.source_dir)
    with tempfile.TemporaryDirectory(prefix="fg-deploy-test.") as tmp:
        # A part that meets something it cannot read (a missing file, a missing key) stops
        # there with that as its failure; the other parts still run.
        def part(name, fn, *args):
            try:
                return fn(*args)
            except (OSError, KeyError, ValueError, StopIteration, TypeError, IndexError,
                    yaml.YAMLError, subprocess.SubprocessError) as e:
                check(False, f"{name}: stopped at {type(e).__name__}: {e}")
                return None

        part("parse", check_parse, src)
        compose_cfg = part("compose", check_compose, src, a.floodgate, tmp)
        secret = part("k8s", check_k8s, src, a.floodgate, tmp)
        if compose_cfg and secret:
            part("secrets", check_secrets, src, a.floodgate, compose_cfg, secret, tmp)
        part("Dockerfile", check_dockerfile, src, os.path.abspath(a.build_dir),
             [os.path.abspath(t) for t in a.target], a.floodgate)
    print(f"{checks} checks, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
