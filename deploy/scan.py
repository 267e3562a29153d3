"""``make scan``: the IaC and image scanners on what ``make package`` renders, with one list of skips.

    python -m deploy.scan [--package-dir DIR]

* checkov on the SAM template as rendered (``sam``), as the SAM translator transforms it with
  every optional part switched on (``sam-transformed``: what CloudFormation deploys, the data tier
  included: checkov evaluates conditions with the parameters' defaults) and on the Terraform configuration
  (``terraform``, its top-level ``terraform`` block removed: checkov's ``terraform_json`` parser refuses
  it). The role policies are ``aws_iam_policy_document`` data sources, so checkov's IAM checks read
  them; the run fails unless they ran on every role policy;
* cfn-lint with the serverless rules (``cfn-lint-serverless``) on the SAM template;
* hadolint on every Dockerfile of the repository, found by name.

Every finding fails the run unless an entry of ``deploy/scan_skips.toml`` skips it (there and only
there: no inline suppression, no ``--skip-check``), and an entry that no longer skips anything
fails it too. The scanners live in their own venv (``.venv-scan``, from ``requirements-scan.txt``):
checkov's dependencies conflict with ours. Without ``--package-dir`` the templates are rendered
afresh into a temporary directory (the zip left as chalice makes it: the scan reads templates only).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.config.settings import PROJECT_ROOT

SCAN_VENV = PROJECT_ROOT / ".venv-scan"
SKIPS_FILE = PROJECT_ROOT / "deploy" / "scan_skips.toml"
DOCS = PROJECT_ROOT / "docs" / "deployment.md"
SKIP_KINDS = {"b": "does not apply", "c": "documented choice"}
SKIP_KEYS = {"tool", "check", "kind", "reason", "docs", "targets", "resources"}
TOOLS = ("checkov", "cfn-lint", "hadolint")
# Where no Dockerfile of ours lives: virtualenvs, build outputs, VCS data.
NOT_OURS = {".git", ".venv", ".venv-scan", "build", "node_modules", ".data", "__pycache__"}
IAM_CHECK = "CKV_AWS_111"  # write access without constraints: one of checkov's IAM policy checks
# Parameters that switch an optional part of the SAM template on (the data tier's): on in the
# transformed target.
SWITCHES = ("CreateDataTier",)


@dataclass(frozen=True)
class Finding:
    tool: str
    target: str
    check: str
    resource: str
    message: str

    def __str__(self) -> str:
        return f"{self.tool} {self.target}: {self.check} {self.resource}: {self.message}"


@dataclass(frozen=True)
class Skip:
    """One reasoned skip: a check of a tool, on some targets and resources (fnmatch patterns)."""

    tool: str
    check: str
    kind: str
    reason: str
    docs: str | None = None
    targets: tuple[str, ...] = ("*",)
    resources: tuple[str, ...] = ("*",)

    def matches(self, finding: Finding) -> bool:
        return (
            finding.tool == self.tool
            and finding.check == self.check
            and any(fnmatch.fnmatchcase(finding.target, t) for t in self.targets)
            and any(fnmatch.fnmatchcase(finding.resource, r) for r in self.resources)
        )

    def __str__(self) -> str:
        return f"{self.tool} {self.check} on {', '.join(self.targets)} / {', '.join(self.resources)}"


class SkipFileError(ValueError):
    """The skip file lists an entry without its tool, check, kind, reason or documented section."""


def load_skips(text: str, doc_anchors: set[str] | None = None) -> list[Skip]:
    """The entries of a skip file (TOML, ``[[skip]]`` tables). Raises SkipFileError.

    ``kind`` is ``b`` (does not apply) or ``c`` (documented choice, whose ``docs`` names a section
    ``docs/deployment.md#anchor``; checked against ``doc_anchors`` when given).
    """
    entries = tomllib.loads(text).get("skip", [])
    skips = []
    for number, entry in enumerate(entries, start=1):
        where = f"skip entry {number} ({entry.get('check', '?')})"
        unknown = set(entry) - SKIP_KEYS
        if unknown:
            raise SkipFileError(f"{where}: unknown keys {sorted(unknown)}")
        missing = [key for key in ("tool", "check", "kind", "reason") if not str(entry.get(key, "")).strip()]
        if missing:
            raise SkipFileError(f"{where}: missing {', '.join(missing)}")
        if entry["tool"] not in TOOLS:
            raise SkipFileError(f"{where}: tool must be one of {', '.join(TOOLS)}")
        if entry["kind"] not in SKIP_KINDS:
            raise SkipFileError(f"{where}: kind must be b (does not apply) or c (documented choice)")
        docs = entry.get("docs")
        if entry["kind"] == "c":
            if not docs or not docs.startswith("docs/deployment.md#"):
                raise SkipFileError(f"{where}: a documented choice names its section, docs/deployment.md#...")
            if doc_anchors is not None and docs.partition("#")[2] not in doc_anchors:
                raise SkipFileError(f"{where}: docs/deployment.md has no section #{docs.partition('#')[2]}")
        skips.append(
            Skip(
                tool=entry["tool"],
                check=entry["check"],
                kind=entry["kind"],
                reason=" ".join(entry["reason"].split()),
                docs=docs,
                targets=tuple(entry.get("targets", ("*",))),
                resources=tuple(entry.get("resources", ("*",))),
            )
        )
    return skips


def markdown_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown document."""
    anchors = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, flags=re.MULTILINE):
        text = re.sub(r"[^\w\- ]", "", heading.lower().replace("`", ""))
        anchors.add(text.replace(" ", "-"))
    return anchors


@dataclass
class Verdict:
    unexpected: list[Finding] = field(default_factory=list)
    skipped: list[tuple[Finding, Skip]] = field(default_factory=list)
    stale: list[Skip] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unexpected and not self.stale


def judge(findings: Iterable[Finding], skips: Sequence[Skip], ran: set[tuple[str, str]]) -> Verdict:
    """Findings split into skipped (by their first matching entry) and unexpected; the entries that
    skipped nothing on a tool and target that ran are stale."""
    verdict = Verdict()
    used: set[int] = set()
    for finding in findings:
        index = next((i for i, skip in enumerate(skips) if skip.matches(finding)), None)
        if index is None:
            verdict.unexpected.append(finding)
        else:
            used.add(index)
            verdict.skipped.append((finding, skips[index]))
    for index, skip in enumerate(skips):
        applies = any(tool == skip.tool and _any_match(target, skip.targets) for tool, target in ran)
        if index not in used and applies:
            verdict.stale.append(skip)
    return verdict


def _any_match(target: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(target, p) for p in patterns)


# The scanners.


@dataclass
class Run:
    tool: str
    target: str
    passed: int | None  # None: the tool reports findings only
    findings: list[Finding]
    seconds: float


def _tool(name: str) -> str:
    path = SCAN_VENV / "bin" / name
    if not path.exists():
        raise SystemExit(
            f"{path} is missing: run `make scan` (it creates .venv-scan from requirements-scan.txt)"
        )
    return str(path)


def run_checkov(target: str, path: Path, framework: str) -> tuple[Run, list[dict[str, Any]]]:
    started = time.monotonic()
    result = subprocess.run(
        [_tool("checkov"), "--skip-download", "-f", str(path), "--framework", framework, "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "LOG_LEVEL": "ERROR"},
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise SystemExit(f"checkov on {target} did not report:\n{result.stdout}\n{result.stderr}") from None
    report = report[0] if isinstance(report, list) else report
    if "results" not in report or report["summary"].get("parsing_errors"):
        raise SystemExit(f"checkov parsed nothing in {target}: {report.get('summary', report)}")
    results = report["results"]
    findings = [
        Finding("checkov", target, check["check_id"], check["resource"], check["check_name"])
        for check in results["failed_checks"]
    ]
    run = Run("checkov", target, len(results["passed_checks"]), findings, time.monotonic() - started)
    return run, results["passed_checks"] + results["failed_checks"]


def json_report(tool: str, target: str, command: list[str]) -> Any:
    """What a scanner that reports JSON on stdout found (its exit status says nothing we use)."""
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        return json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        raise SystemExit(f"{tool} on {target} did not report:\n{result.stdout}\n{result.stderr}") from None


def run_cfn_lint(target: str, path: Path) -> Run:
    started = time.monotonic()
    command = [_tool("cfn-lint"), "--format", "json", "-a", "cfn_lint_serverless.rules", "--", str(path)]
    matches = json_report("cfn-lint", target, command)
    findings = []
    for match in matches:
        location = match.get("Location", {}).get("Path") or []
        resource = (
            str(location[1])
            if len(location) > 1 and location[0] == "Resources"
            else "/".join(map(str, location))
        )
        findings.append(Finding("cfn-lint", target, match["Rule"]["Id"], resource, match["Message"]))
    return Run("cfn-lint", target, None, findings, time.monotonic() - started)


def dockerfiles(root: Path = PROJECT_ROOT) -> list[Path]:
    """Every Dockerfile of the repository (``Dockerfile``, ``Dockerfile.*``, ``*.Dockerfile``)."""
    found = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = sorted(
            d for d in subdirectories if d not in NOT_OURS and not d.startswith(".venv")
        )
        for name in sorted(files):
            if name == "Dockerfile" or name.startswith("Dockerfile.") or name.endswith(".Dockerfile"):
                found.append(Path(directory) / name)
    return found


def run_hadolint(path: Path) -> Run:
    started = time.monotonic()
    target = path.relative_to(PROJECT_ROOT).as_posix()
    issues = json_report("hadolint", target, [_tool("hadolint"), "--format", "json", "--no-fail", str(path)])
    findings = [
        Finding("hadolint", target, issue["code"], f"line {issue['line']}", issue["message"])
        for issue in issues
    ]
    return Run("hadolint", target, None, findings, time.monotonic() - started)


def with_every_switch_on(template: dict[str, Any]) -> dict[str, Any]:
    """The template with its optional parts' switches defaulting to on: checkov evaluates conditions
    with the parameters' defaults, and would not see a resource behind a switch that is off."""
    parameters = template.get("Parameters", {})
    switches = {
        name: {**parameter, "Default": "true"} for name, parameter in parameters.items() if name in SWITCHES
    }
    return {**template, "Parameters": {**parameters, **switches}}


def terraform_for_checkov(config: dict[str, Any]) -> dict[str, Any]:
    """The configuration without its top-level ``terraform`` block, which checkov's parser refuses."""
    return {key: value for key, value in config.items() if key != "terraform"}


def check_iam_checks_ran(config: dict[str, Any], results: list[dict[str, Any]]) -> str | None:
    """None when checkov's IAM checks read every role policy's document; otherwise what went unread."""
    policies = config.get("resource", {}).get("aws_iam_role_policy", {})
    documents = set(config.get("data", {}).get("aws_iam_policy_document", {}))
    read = {
        r["resource"].removeprefix("data.").rpartition(".")[2] for r in results if r["check_id"] == IAM_CHECK
    }
    unread = sorted(name for name in documents if name not in read)
    not_documents = sorted(
        name for name, policy in policies.items() if "data.aws_iam_policy_document." not in policy["policy"]
    )
    if unread or not_documents or not policies:
        return (
            f"IAM checks did not read: documents {unread}, role policies not from a document {not_documents}"
        )
    return None


def scan(package_dir: Path | None = None) -> tuple[list[Run], Verdict, list[str]]:
    """Every scanner on the rendered templates and the Dockerfiles; the verdict against the skip file."""
    from deploy.package import build_package
    from deploy.sam_transform import translate_sam

    skips = load_skips(SKIPS_FILE.read_text(), markdown_anchors(DOCS.read_text()))
    errors: list[str] = []
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="scan-") as scratch_name:
        scratch = Path(scratch_name)
        if package_dir is None:
            package_dir = scratch / "package"
            build_package(package_dir, finish_artifact=False)
        sam_path = package_dir / "sam" / "sam.json"
        sam = json.loads(sam_path.read_text())
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the translator wants a region
        transformed = scratch / "sam-transformed.json"
        transformed.write_text(json.dumps(translate_sam(with_every_switch_on(sam)), indent=1))
        config = json.loads((package_dir / "terraform" / "chalice.tf.json").read_text())
        terraform = scratch / "scan.tf.json"  # checkov's terraform_json reads *.tf.json only
        terraform.write_text(json.dumps(terraform_for_checkov(config), indent=1))

        # Each scanner is a process of its own: run them side by side, one per core.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            checkov_runs = [
                pool.submit(run_checkov, target, path, framework)
                for target, path, framework in (
                    ("sam", sam_path, "cloudformation"),
                    ("sam-transformed", transformed, "cloudformation"),
                    ("terraform", terraform, "terraform_json"),
                )
            ]
            others = [pool.submit(run_cfn_lint, "sam", sam_path)]
            others += [pool.submit(run_hadolint, path) for path in dockerfiles()]
            for future in checkov_runs:
                run, results = future.result()
                runs.append(run)
                problem = check_iam_checks_ran(config, results) if run.target == "terraform" else None
                if problem:
                    errors.append(problem)
            runs.extend(future.result() for future in others)
    findings = [finding for run in runs for finding in run.findings]
    verdict = judge(findings, skips, {(run.tool, run.target) for run in runs})
    return runs, verdict, errors


def report(runs: list[Run], verdict: Verdict, errors: list[str]) -> str:
    skipped_by_run: dict[tuple[str, str], int] = {}
    for finding, _skip in verdict.skipped:
        key = (finding.tool, finding.target)
        skipped_by_run[key] = skipped_by_run.get(key, 0) + 1
    lines = [f"{'tool':<9} {'target':<34} {'passed':>6} {'failed':>6} {'skipped':>7} {'seconds':>7}"]
    for run in runs:
        skipped = skipped_by_run.get((run.tool, run.target), 0)
        passed = "-" if run.passed is None else str(run.passed)
        lines.append(
            f"{run.tool:<9} {run.target:<34} {passed:>6} {len(run.findings) - skipped:>6} {skipped:>7}"
            f" {run.seconds:>7.1f}"
        )
    if not any(run.tool == "hadolint" for run in runs):
        lines.append("hadolint: no Dockerfile in the repository")
    lines.extend(f"FAILED {finding}" for finding in verdict.unexpected)
    lines.extend(f"STALE skip (skips nothing now; remove it): {skip}" for skip in verdict.stale)
    lines.extend(f"ERROR {error}" for error in errors)
    lines.append("scan: OK" if verdict.ok and not errors else "scan: FAILED")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--package-dir", type=Path, help="scan this `make package` output instead of rendering"
    )
    args = parser.parse_args(argv)
    runs, verdict, errors = scan(args.package_dir)
    print(report(runs, verdict, errors))
    return 0 if verdict.ok and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
