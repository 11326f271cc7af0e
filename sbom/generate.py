#!/usr/bin/env python3
"""Writes sbom/irsa-doctor.cdx.json: a CycloneDX 1.5 document of the crates
the image's binary is made of (docs/image.md, "Supply chain").

Which crates: what cargo's own resolver links into irsa-doctor for the
image's target, `cargo tree -p irsa-doctor --target x86_64-unknown-linux-musl
-e normal,no-proc-macro`: normal dependencies only, with the features that
build enables. Left out, because none of their code is in the binary:
build dependencies and build scripts, procedural macros and the crates only
they use (they run inside rustc at build time), dev-dependencies, the test
kit, crates for other platforms, and features only the tests or the test kit
enable. cargo-cyclonedx reads `cargo metadata`, whose resolve unifies the
features of the whole workspace and its dev-dependencies, so it listed
crates only the tests bring (ring, untrusted 0.7, getrandom 0.2) and every
proc-macro as if the binary held them. `cargo +nightly build --unit-graph`
for the release musl binary compiles exactly this list for the target.

Each crate's license, description and repository come from `cargo metadata`,
its SHA-256 from Cargo.lock. The output is the same for the same Cargo.lock:
no timestamp, no serial number, no path of the machine that made it.
Run from anywhere, offline: python3 sbom/generate.py
"""

import json
import pathlib
import subprocess
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGET = "x86_64-unknown-linux-musl"
PACKAGE = "irsa-doctor"


def cargo(*args):
    return subprocess.run(
        ["cargo", *args, "--locked", "--offline"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def tree():
    """The linked crates as (name, version) and the edges between them."""
    out = cargo(
        "tree", "-p", PACKAGE, "--target", TARGET, "-e", "normal,no-proc-macro",
        "--prefix", "depth", "--format", "{p}",
    )
    crates, edges, path = set(), set(), []
    for line in out.splitlines():
        depth = len(line) - len(line.lstrip("0123456789"))
        level = int(line[:depth])
        # "name v1.2.3", then " (*)" for a subtree shown before, or the
        # path of a path dependency, which only the root is.
        name, version = line[depth:].split()[:2]
        crate = (name, version.removeprefix("v"))
        del path[level:]
        if path:
            edges.add((path[-1], crate))
        path.append(crate)
        crates.add(crate)
    return crates, edges


def ref(crate):
    name, version = crate
    return f"pkg:cargo/{name}@{version}"


def main():
    crates, edges = tree()
    root = next(c for c in crates if c[0] == PACKAGE)
    meta = json.loads(
        cargo("metadata", "--format-version", "1", "--filter-platform", TARGET)
    )
    packages = {(p["name"], p["version"]): p for p in meta["packages"]}
    lock = tomllib.loads((ROOT / "Cargo.lock").read_text())
    checksums = {
        (p["name"], p["version"]): p.get("checksum") for p in lock["package"]
    }

    def component(crate):
        p = packages[crate]
        c = {
            "type": "application" if crate == root else "library",
            "bom-ref": PACKAGE + "@" + crate[1] if crate == root else ref(crate),
            "name": crate[0],
            "version": crate[1],
        }
        if p.get("description"):
            c["description"] = " ".join(p["description"].split())
        if crate != root:
            c["scope"] = "required"
        if checksums.get(crate):
            c["hashes"] = [{"alg": "SHA-256", "content": checksums[crate]}]
        if p.get("license"):
            c["licenses"] = [{"expression": p["license"]}]
        if crate != root:
            c["purl"] = ref(crate)
        if p.get("repository"):
            c["externalReferences"] = [{"type": "vcs", "url": p["repository"]}]
        return c

    def bom_ref(crate):
        return component(crate)["bom-ref"]

    bom = {
        "$schema": "http://cyclonedx.org/schema/bom-1.5.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "tools": {
                "components": [
                    {"type": "application", "name": "sbom/generate.py"},
                ]
            },
            "component": component(root),
            "properties": [
                {"name": "cdx:rustc:sbom:target:triple", "value": TARGET},
            ],
        },
        "components": [component(c) for c in sorted(crates - {root})],
        "dependencies": [
            {
                "ref": bom_ref(c),
                "dependsOn": sorted(bom_ref(d) for (p, d) in edges if p == c),
            }
            for c in sorted(crates)
        ],
    }
    out = ROOT / "sbom" / "irsa-doctor.cdx.json"
    out.write_text(json.dumps(bom, indent=2, ensure_ascii=False) + "\n")
    print(f"{out.relative_to(ROOT)}: {len(crates) - 1} crates for {TARGET}")


if __name__ == "__main__":
    main()
