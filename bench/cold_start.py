"""``make bench-cold-start``: cold start of GET /patients/{id} as Lambda runs it.

For each variant, over ``--runs`` fresh processes (default 20, interleaved):
the time from starting the process to the first response of
``app.app(event, context)`` for a REST proxy event of ``GET /patients/{id}``,
and the process's peak resident memory (VmHWM: ``ru_maxrss`` would count the
parent it was forked from). Variants:

* minimal: a Chalice app generated here whose one route reads one row through
  the SQLAlchemy ORM, in the development environment (with bytecode);
* ours, development: this project's app.py from the checkout (with bytecode);
* ours, artifact: ``make package``'s deployment.zip unzipped read-only and run
  with ``python -I -S -B``, as Lambda runs it;
* ours, artifact without bytecode: the same tree with every ``__pycache__``
  removed, as ``chalice package`` alone ships it, pruned alike (for comparison);
* ours, FHIR read, development and artifact: the same app and trees, whose first
  request is ``GET /fhir/Patient/{id}`` instead (the FHIR code loads only then);
* with ``--against REF``: the app of git revision REF (e.g. ``main``, before a
  change), exported here and run in the development environment, so that a JSON
  read's cold start before and after the change is compared within each round.

Each round starts every variant once, back to back, so a variant's ratio to the
minimal app is taken within one round (the machine's load shifts between rounds,
not within one): the figure is the median of those per-round ratios, with its
quartiles and range. Targets (issue 14): ours, in the development environment and
from the artifact, within 1.15x of minimal, and under 128 MB; a FHIR read's cold
start within 1.3x of a JSON read's from the same tree (issue 22), taken per round
the same way. Nothing here is asserted: it prints figures.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.config.settings import PROJECT_ROOT
from chalicelib.http.gateway_responses import FHIR_MEDIA_TYPE
from chalicelib.scopes import PATIENTS_READ
from chalicelib.storage.migrate import upgrade_database
from deploy.bytecode import ArtifactSize
from deploy.lambda_events import allowed_token_context, rest_event
from deploy.lambda_runtime import LambdaContainer, lambda_environment, unpack_task_root
from deploy.package import build_package

MINIMAL_APP = """
import os

from chalice import Chalice
from sqlalchemy import String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Patient(Base):
    __tablename__ = "patients"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


engine = create_engine(os.environ["DATABASE_URL"])
app = Chalice(app_name="minimal")


@app.route("/patients/{patient_id}")
def get_patient(patient_id):
    with Session(engine) as session:
        patient = session.get(Patient, int(patient_id))
        return {"id": patient.id, "name": patient.name}
"""
TARGET_VS_MINIMAL = 1.15
TARGET_PEAK_MB = 128
TARGET_FHIR_VS_JSON = 1.3


@dataclass
class Variant:
    name: str
    task_root: Path
    isolated: bool
    fhir: bool = False  # the first request is GET /fhir/Patient/{id}, not GET /patients/{id}
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    peak_kb: list[int] = field(default_factory=list)

    def median_ms(self) -> float:
        return statistics.median(self.seconds) * 1000

    def peak_mb(self) -> float:
        return max(self.peak_kb) / 1024

    def ratios_to(self, reference: Variant) -> list[float]:
        """Per round: this variant's time over the reference's, started next to it."""
        return [ours / theirs for ours, theirs in zip(self.seconds, reference.seconds, strict=True)]

    def cpu_ratios_to(self, reference: Variant) -> list[float]:
        """The same for the CPU time the process used: less moved by other work on the machine."""
        return [ours / theirs for ours, theirs in zip(self.cpu_seconds, reference.cpu_seconds, strict=True)]


def spread(ratios: list[float]) -> str:
    """Median of the per-round ratios, its quartiles and range."""
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    return (
        f"{statistics.median(ratios):.2f}x (quartiles {quartiles[0]:.2f}-{quartiles[2]:.2f},"
        f" range {min(ratios):.2f}-{max(ratios):.2f}, {len(ratios)} rounds)"
    )


def read_event(fhir: bool) -> dict[str, Any]:
    """A REST proxy event reading patient 1, through the FHIR face or the JSON API."""
    resource = "/fhir/Patient/{patient_id}" if fhir else "/patients/{patient_id}"
    event = rest_event(
        "GET",
        resource,
        resource.replace("{patient_id}", "1"),
        path_parameters={"patient_id": "1"},
        authorizer=allowed_token_context("bench", PATIENTS_READ),
    )
    if fhir:
        event["headers"]["Accept"] = FHIR_MEDIA_TYPE
        if "multiValueHeaders" in event:
            event["multiValueHeaders"]["Accept"] = [FHIR_MEDIA_TYPE]
    return event


def cold_start(variant: Variant, env: dict[str, str]) -> tuple[float, float, int]:
    event = read_event(variant.fhir)
    started = time.perf_counter()
    with LambdaContainer(variant.task_root, env, isolated=variant.isolated) as container:
        response = container.invoke("app.app", event)
        elapsed = time.perf_counter() - started
        usage = container.report()
    if response["statusCode"] != 200:
        raise RuntimeError(f"{variant.name}: {event['path']} answered {response}")
    return elapsed, float(usage["cpu_seconds"]), int(usage["peak_rss_kb"])


def prepare_database(directory: Path) -> str:
    url = f"sqlite:///{directory / 'bench.db'}"
    upgrade_database(url)
    with sqlite3.connect(directory / "bench.db") as connection:
        connection.execute(
            "INSERT INTO patients (id, name, email, email_key, phone, phone_e164, version, created_at,"
            " updated_at) VALUES (1, 'Bench Patient', 'bench@example.com', 'bench@example.com', NULL,"
            " NULL, 1, '2026-11-25 12:00:00', '2026-11-25 12:00:00')"
        )
    return url


def export_revision(revision: str, directory: Path) -> Path:
    """The tree of git ``revision`` of this checkout, written under ``directory``."""
    directory.mkdir()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision],  # noqa: S607 - the developer's git
        cwd=PROJECT_ROOT,
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, check=True)  # noqa: S607
    return directory


def prepare_variants(
    workdir: Path, with_artifact: bool, against: str | None = None
) -> tuple[list[Variant], ArtifactSize | None]:
    minimal = workdir / "minimal"
    minimal.mkdir()
    (minimal / "app.py").write_text(textwrap.dedent(MINIMAL_APP))
    variants = [
        Variant("minimal Chalice + SQLAlchemy ORM (dev env)", minimal, isolated=False),
        Variant("ours (dev env)", PROJECT_ROOT, isolated=False),
        Variant("ours, FHIR read (dev env)", PROJECT_ROOT, isolated=False, fhir=True),
    ]
    if against is not None:
        before = export_revision(against, workdir / "against")
        variants.append(Variant(f"{against} (dev env)", before, isolated=False))
    size = None
    if with_artifact:
        package = build_package(workdir / "package")
        size = package.size
        artifact = unpack_task_root(package.deployment_zip, workdir / "var-task")
        without_bytecode = workdir / "var-task-sources-only"
        shutil.copytree(artifact, without_bytecode, ignore=shutil.ignore_patterns("__pycache__"))
        variants += [
            Variant("ours (artifact, read-only, -I -S -B)", artifact, isolated=True),
            Variant("ours (artifact without bytecode, -B)", without_bytecode, isolated=True),
            Variant("ours, FHIR read (artifact, -I -S -B)", artifact, isolated=True, fhir=True),
        ]
    return variants, size


def report(variants: list[Variant], size: ArtifactSize | None, runs: int) -> None:
    print(f"\ncold start to the first response, {runs} fresh processes each")
    print(f"{'variant':44} {'median':>9} {'min':>9} {'max':>9} {'peak RSS':>10}")
    for v in variants:
        print(
            f"{v.name:44} {v.median_ms():7.0f}ms {min(v.seconds) * 1000:7.0f}ms"
            f" {max(v.seconds) * 1000:7.0f}ms {v.peak_mb():8.1f}MB"
        )
    minimal = variants[0]
    json_reads = [v for v in variants[1:] if not v.fhir]
    ours = variants[1]
    print(f"\nGET /patients/{{id}}: per-round ratio to minimal, median (target <= {TARGET_VS_MINIMAL}x):")
    for v in json_reads:
        print(f"  {v.name:42} {spread(v.ratios_to(minimal))}")
    print("the same for the CPU time each process used (process start to first answer):")
    for v in json_reads:
        print(f"  {v.name:42} {spread(v.cpu_ratios_to(minimal))}")
    print(
        f"\nGET /fhir/Patient/{{id}}: per-round ratio to GET /patients/{{id}} from the same tree (target <="
        f" {TARGET_FHIR_VS_JSON}x), wall and CPU:"
    )
    for fhir_read in (v for v in variants if v.fhir):
        json_read = next(v for v in json_reads if v.task_root == fhir_read.task_root)
        print(f"  {fhir_read.name:42} {spread(fhir_read.ratios_to(json_read))}")
        print(f"  {'':42} {spread(fhir_read.cpu_ratios_to(json_read))}")
    for before in (v for v in json_reads if v.task_root.name == "against"):
        print(f"\nGET /patients/{{id}}: {ours.name} over {before.name}, per round (unchanged: about 1.0x):")
        print(f"  wall {spread(ours.ratios_to(before))}")
        print(f"  CPU  {spread(ours.cpu_ratios_to(before))}")
    print(f"peak memory: minimal {minimal.peak_mb():.1f} MB", end="")
    for v in variants[1:]:
        if "without bytecode" not in v.name:
            print(f", {v.name} {v.peak_mb():.1f} MB", end="")
    print(f" (target < {TARGET_PEAK_MB} MB)")
    if size is not None:
        print(
            f"deployment.zip: {size.zipped / 1e6:.1f} MB zipped, {size.unzipped / 1e6:.1f} MB unzipped"
            f" (pruned, with bytecode; chalice's own zip {size.zipped_before / 1e6:.1f} MB;"
            " Lambda: 50 MB zipped, 250 MB unzipped)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-artifact", action="store_true", help="skip building and timing the artifact")
    parser.add_argument("--against", metavar="REF", help="also time a JSON read of git revision REF's app")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cold-start-") as name:
        workdir = Path(name)
        env = lambda_environment(
            APP_STAGE="dev", DATABASE_URL=prepare_database(workdir), API_TOKENS="bench:cold-start"
        )
        variants, size = prepare_variants(workdir, with_artifact=not args.no_artifact, against=args.against)
        for variant in variants:  # not timed: writes the dev bytecode, warms the page cache
            cold_start(variant, env)
        for _ in range(args.runs):
            for variant in variants:
                seconds, cpu_seconds, peak_kb = cold_start(variant, env)
                variant.seconds.append(seconds)
                variant.cpu_seconds.append(cpu_seconds)
                variant.peak_kb.append(peak_kb)
            print(".", end="", flush=True, file=sys.stderr)
        report(variants, size, args.runs)
        for directory in workdir.glob("var-task*"):  # read-only trees: let the cleanup remove them
            for path in [directory, *directory.rglob("*")]:
                if path.is_dir():
                    path.chmod(0o755)


if __name__ == "__main__":
    main()
